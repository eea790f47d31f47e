"""Helpers of the reliability catalogue (see conftest.py for what the catalogue is)."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_phantom


@contextlib.contextmanager
def raises_naming(exc_type, *names: str):
    """``pytest.raises(exc_type)`` whose message must contain every one of ``names``."""
    with pytest.raises(exc_type) as info:
        yield info
    message = str(info.value)
    missing = [n for n in names if n not in message]
    assert not missing, f"{exc_type.__name__} message does not name {missing}: {message!r}"


def phantom_kspace(coils: int = 4, height: int = 32, width: int = 24, slices: int | None = None, seed: int = 0,
                   dtype=np.complex64) -> np.ndarray:
    """Multi-coil k-space ``(coils, H, W)`` (or ``(slices, coils, H, W)``, slice ``s`` scaled by
    ``s + 1``) of the shared test phantom (tests/conftest.py), noise 1e-4."""
    kspace = make_phantom(height, width, coils, seed=seed, noise=1e-4).kspace
    if slices is not None:
        kspace = np.stack([kspace * (s + 1) for s in range(slices)])
    return kspace.astype(dtype)


def fft2c(x: np.ndarray) -> np.ndarray:
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))


def ifft2c(x: np.ndarray) -> np.ndarray:
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))


def zero_filled_reference(kspace: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """RSS of the coil images of ``kspace * mask`` in float64 (coils at dim -3)."""
    coil = ifft2c(kspace.astype(np.complex128) * mask)
    return np.sqrt((np.abs(coil) ** 2).sum(axis=-3))


def column_mask(width: int, step: int = 2, center: int = 6) -> np.ndarray:
    mask = np.zeros(width, dtype=np.float32)
    mask[::step] = 1
    mask[width // 2 - center // 2 : width // 2 + center // 2] = 1
    return mask


def one_line(text: str) -> bool:
    return len([line for line in text.splitlines() if line.strip()]) == 1


TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^\s+File \"", re.MULTILINE)

