"""Fixtures of the preprocessing tests: small synthetic volumes and the embedded Colin27."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from preprocess_helpers import DATA, blob_phantom  # noqa: E402


@pytest.fixture(scope="session")
def blob() -> np.ndarray:
    return blob_phantom()


@pytest.fixture(scope="session")
def colin():
    """Colin27 T1 (float32) and its affine."""
    nib = pytest.importorskip("nibabel")
    img = nib.load(DATA / "colin27_t1.nii.gz")
    return np.asarray(img.dataobj, dtype=np.float32), np.asarray(img.affine)


@pytest.fixture(scope="session")
def colin_bet_mask():
    nib = pytest.importorskip("nibabel")
    return np.asarray(nib.load(DATA / "templates" / "colin27_bet_mask.nii.gz").dataobj) > 0
