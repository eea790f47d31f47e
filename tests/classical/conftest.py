"""The column mask of the classical tests (the phantom is the shared ``phantom`` fixture of
tests/conftest.py: 80 x 63 Shepp-Logan, 6 birdcage coils, complex128)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def column_mask():
    """Random columns at 4x with a 16-column centre, for width 63."""
    rng = np.random.default_rng(1)
    mask = rng.random(63) < 1.0 / 4
    mask[63 // 2 - 8 : 63 // 2 - 8 + 16] = True
    return mask
