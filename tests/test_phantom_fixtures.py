"""The shared test phantom (tests/conftest.py) is sigpy's, computed without sigpy."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from tests.conftest import birdcage_maps, make_phantom, shepp_logan


@pytest.mark.parametrize("shape", [(80, 63), (32, 24), (17, 40)])
def test_shepp_logan_and_birdcage_equal_sigpy(shape):
    sp = pytest.importorskip("sigpy")
    mr = pytest.importorskip("sigpy.mri")
    np.testing.assert_array_equal(shepp_logan(*shape), sp.shepp_logan(shape))
    np.testing.assert_array_equal(birdcage_maps(6, *shape), mr.birdcage_maps((6, *shape)))


def test_phantom_kspace_is_the_fft_of_the_coil_images():
    image, maps, kspace = make_phantom(16, 12, 3, noise=0.0)
    coil = maps * image
    expected = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(coil, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    np.testing.assert_allclose(kspace, expected, rtol=0, atol=1e-12)
    assert np.isclose(np.sqrt((np.abs(maps) ** 2).sum(0)).max(), 1.0)
    assert set(np.unique(np.round(np.abs(image), 6))) >= {0.0, 1.0}


_BEFORE: list = []


def _global_state():
    return torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate(), torch.get_num_threads()


def test_a_test_that_changes_global_state():
    _BEFORE.append(_global_state())
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    torch.set_num_threads(1 if torch.get_num_threads() > 1 else 2)


def test_the_next_test_starts_from_the_state_before_it():
    """tests/conftest.py's autouse fixture put everything back after the previous test."""
    if not _BEFORE:
        pytest.skip("runs after test_a_test_that_changes_global_state")
    torch_state, np_state, py_state, threads = _global_state()
    assert torch.equal(torch_state, _BEFORE[0][0])
    assert np.array_equal(np_state, _BEFORE[0][1])
    assert py_state == _BEFORE[0][2] and threads == _BEFORE[0][3]
