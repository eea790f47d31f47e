"""The reliability catalogue: every public entry, fed what a new user (or a crash) would feed it.

What lives here (issue 9). Each case is one ``pytest.param`` of a table and asserts either

* an error: the exception **type** and that the message **names the argument or the file** (and
  for the command line: exit status 2, exactly one line on stderr, no traceback), or
* a result: correct - finite, of the documented dtype/shape, equal to an independent reference
  (numpy in float64, a closed form) - never a silent wrong image.

Files, one per area (other engineers add ``test_<area>.py`` for their modules):

=====================  ===========================================================================
``test_reconstruct``   ``recon.reconstruct``: k-space/mask/maps/flags validation, mask layout rules,
                       geometry limits per method, dtypes in = dtypes out
``test_masks``         ``recon.masks``: accelerations / fractions / seeds / shapes of every mask type
``test_metrics``       ``recon.metrics``: degenerate targets, bad ``maxval``, extreme scales
``test_data_io``       ``recon.data`` I/O: atomic writes and their temporaries, folder scans,
                       NIfTI and fastMRI files, ``SliceDataset`` on bad folders
``test_simulate``      ``recon.data.simulate``: what cannot be simulated is refused, naming the file
``test_cli``           the ``recon`` command line: the one-line promise for every command
``test_crash``         kill -9 of a real ``recon`` process at named points of every write path
                       (and, marked slow, after random delays); nothing lost, nothing partial visible,
                       a rerun succeeds
=====================  ===========================================================================

The failure classes of issue 9 and where their cases are: (2) mask layouts -> test_reconstruct;
(3) geometry -> test_reconstruct; (4) flag types, sens_maps, accelerations, mask shapes, dtypes ->
test_reconstruct, test_masks; (5) degenerate targets -> test_metrics; (6) crash consistency ->
test_data_io, test_crash; (7) command line -> test_cli; (8) simulate -> test_simulate, test_cli.
Classes (1) (learned methods' non-finite output) and the training parts of (6)/(7) are in
``test_learned.py`` / ``test_train.py``.

Adding a case: append a ``pytest.param(...)`` to the table of its area; use :func:`raises_naming`
(from ``reliability_helpers``) for errors. Slow cases (> ~5 s) get ``@pytest.mark.slow``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reliability_helpers import phantom_kspace  # noqa: E402


@pytest.fixture(scope="session")
def kspace() -> np.ndarray:
    """Multi-coil k-space (4, 32, 24) of a smooth disc."""
    return phantom_kspace()
