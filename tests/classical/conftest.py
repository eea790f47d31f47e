"""Small simulated multi-coil data shared by the classical tests (sigpy phantom and maps)."""

from __future__ import annotations

import numpy as np
import pytest
import sigpy as sp
import sigpy.mri as mr


def _phantom(shape, coils, seed, noise=1e-3):
    image = sp.shepp_logan(shape).astype(np.complex128)
    y, x = np.meshgrid(np.linspace(-1, 1, shape[0]), np.linspace(-1, 1, shape[1]), indexing="ij")
    image = image * np.exp(1j * 0.8 * (x + 0.5 * y))  # smooth phase
    maps = mr.birdcage_maps((coils, *shape)).astype(np.complex128)
    maps /= np.sqrt((np.abs(maps) ** 2).sum(0)).max()
    rng = np.random.default_rng(seed)
    kspace = sp.fft(maps * image, axes=(-2, -1))
    kspace = kspace + noise * (rng.standard_normal(kspace.shape) + 1j * rng.standard_normal(kspace.shape))
    return image, maps, kspace


def _column_mask(width, acceleration, acs, seed):
    rng = np.random.default_rng(seed)
    mask = rng.random(width) < 1.0 / acceleration
    mask[width // 2 - acs // 2 : width // 2 - acs // 2 + acs] = True
    return mask


@pytest.fixture(scope="session")
def phantom():
    """(image (H, W), maps (C, H, W), kspace (C, H, W)) complex128, odd width."""
    return _phantom((80, 63), 6, seed=0)


@pytest.fixture(scope="session")
def column_mask():
    return _column_mask(63, 4, 16, seed=1)
