"""Shared fixtures: every test that takes ``device`` runs on CPU and, when present, CUDA; one set
of phantoms (:func:`make_phantom`, fixtures ``phantom`` / ``small_phantom``); every test leaves the
global RNGs and torch's thread count as it found them (``_restore_global_state``)."""

from __future__ import annotations

import random
from typing import NamedTuple

import numpy as np
import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

# Tolerances keyed by dtype (STYLE.md).
TOL = {torch.float64: 1e-10, torch.float32: 1e-5, torch.float16: 5e-3, torch.bfloat16: 5e-3}


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)


def pytest_collection_modifyitems(config, items):
    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs CUDA")
        for item in items:
            if "cuda" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def _restore_global_state():
    """Tests are isolated: torch's, numpy's and Python's global RNG states and torch's thread
    count are put back after every test (a test that seeds should still use
    ``torch.random.fork_rng`` or a ``torch.Generator``; this is the safety net)."""
    states = torch.get_rng_state(), np.random.get_state(), random.getstate(), torch.get_num_threads()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    yield
    torch.set_rng_state(states[0])
    np.random.set_state(states[1])
    random.setstate(states[2])
    if torch.get_num_threads() != states[3]:
        torch.set_num_threads(states[3])
    if cuda is not None:
        torch.cuda.set_rng_state_all(cuda)


@pytest.fixture
def single_thread():
    """torch on one thread for the test (reproducible reductions), the thread count restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ------------------------------------------------------------------------------------- phantoms
# One phantom for every k-space test: the modified Shepp-Logan of sigpy.shepp_logan (its 3-D
# ellipsoid table, cut at z = 0) with sigpy.mri.birdcage_maps coils, in numpy float64, so it is the
# same with or without sigpy (tests/test_phantoms.py checks both against sigpy).

# (amplitude, semi-axes (x, y, z), centre (x, y, z), angles (phi, theta, psi) in degrees)
_SHEPP_LOGAN = (
    (1.0, (0.69, 0.92, 0.81), (0.0, 0.0, 0.0), (0, 0, 0)),
    (-0.8, (0.6624, 0.874, 0.78), (0.0, -0.0184, 0.0), (0, 0, 0)),
    (-0.2, (0.11, 0.31, 0.22), (0.22, 0.0, 0.0), (-18, 0, 10)),
    (-0.2, (0.16, 0.41, 0.28), (-0.22, 0.0, 0.0), (18, 0, 10)),
    (0.1, (0.21, 0.25, 0.41), (0.0, 0.35, -0.15), (0, 0, 0)),
    (0.1, (0.046, 0.046, 0.05), (0.0, 0.1, 0.25), (0, 0, 0)),
    (0.1, (0.046, 0.046, 0.05), (0.0, -0.1, 0.25), (0, 0, 0)),
    (0.1, (0.046, 0.046, 0.05), (-0.08, -0.605, 0.0), (0, 0, 0)),
    (0.1, (0.023, 0.023, 0.02), (0.0, -0.606, 0.0), (0, 0, 0)),
    (0.1, (0.023, 0.023, 0.02), (0.06, -0.605, 0.0), (0, 0, 0)),
)


def shepp_logan(height: int, width: int) -> np.ndarray:
    """Modified Shepp-Logan ``(H, W)`` complex128, equal to ``sigpy.shepp_logan((H, W))``."""
    y, x = np.mgrid[-(height // 2) : (height + 1) // 2, -(width // 2) : (width + 1) // 2]
    coords = np.stack([x.ravel() / width * 2, y.ravel() / height * 2, np.zeros(x.size)])
    out = np.zeros(height * width, dtype=np.complex128)
    for amp, scale, offset, (phi, theta, psi) in _SHEPP_LOGAN:
        cf, sf, ct, st, cp, sp = (f(np.radians(a)) for a in (phi, theta, psi) for f in (np.cos, np.sin))
        rot = np.array([[cp * cf - ct * sf * sp, cp * sf + ct * cf * sp, sp * st],
                        [-sp * cf - ct * sf * cp, -sp * sf + ct * cf * cp, cp * st],
                        [st * sf, -st * cf, ct]])
        r2 = (((rot @ coords - np.reshape(offset, (3, 1))) / np.reshape(scale, (3, 1))) ** 2).sum(0)
        out[r2 <= 1] += amp
    return out.reshape(height, width)


def birdcage_maps(coils: int, height: int, width: int, radius: float = 1.5) -> np.ndarray:
    """Birdcage coil sensitivities ``(C, H, W)`` complex128 (RSS 1 at every pixel), equal to
    ``sigpy.mri.birdcage_maps((C, H, W))``."""
    c, y, x = np.mgrid[:coils, :height, :width]
    x_co = (x - width / 2.0) / (width / 2.0) - radius * np.cos(c * (2 * np.pi / coils))
    y_co = (y - height / 2.0) / (height / 2.0) - radius * np.sin(c * (2 * np.pi / coils))
    maps = (1.0 / np.sqrt(x_co**2 + y_co**2)) * np.exp(1j * (np.arctan2(x_co, -y_co) - c * (2 * np.pi / coils)))
    return maps / sum(abs(maps) ** 2) ** 0.5  # (the builtin sum: bit-identical to sigpy)


def fft2c_numpy(x: np.ndarray) -> np.ndarray:
    """Centered orthonormal 2-D FFT over the last two axes (numpy, any precision)."""
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))


class Phantom(NamedTuple):
    """``image`` ``(H, W)``, coil ``maps`` ``(C, H, W)`` (``max_r sum_c |S_c|^2 = 1``) and noisy
    ``kspace`` ``(C, H, W)`` of ``maps * image``, all complex128."""

    image: np.ndarray
    maps: np.ndarray
    kspace: np.ndarray


def make_phantom(height: int = 80, width: int = 63, coils: int = 6, *, seed: int = 0, noise: float = 1e-3,
                 phase: float = 0.8) -> Phantom:
    """The test phantom: Shepp-Logan with a smooth linear phase (``phase`` radians per unit of
    the [-1, 1] grid), birdcage coils, complex Gaussian k-space noise of std ``noise`` (seeded)."""
    y, x = np.meshgrid(np.linspace(-1, 1, height), np.linspace(-1, 1, width), indexing="ij")
    image = shepp_logan(height, width) * np.exp(1j * phase * (x + 0.5 * y))
    maps = birdcage_maps(coils, height, width)
    maps /= np.sqrt((np.abs(maps) ** 2).sum(0)).max()
    rng = np.random.default_rng(seed)
    kspace = fft2c_numpy(maps * image)
    kspace = kspace + noise * (rng.standard_normal(kspace.shape) + 1j * rng.standard_normal(kspace.shape))
    return Phantom(image, maps, kspace)


@pytest.fixture(scope="session")
def phantom() -> Phantom:
    """80 x 63 (odd width), 6 coils, noise 1e-3."""
    return make_phantom()


@pytest.fixture(scope="session")
def small_phantom() -> Phantom:
    """32 x 24, 4 coils, noise 1e-4: for tests that only need some k-space."""
    return make_phantom(32, 24, 4, noise=1e-4)
