"""Helpers of the preprocessing tests: synthetic volumes and known rigid motions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

DATA = Path(__file__).resolve().parents[2] / "data"


def blob_phantom(shape=(40, 44, 36), seed: int = 0, values=(0.4, 1.0, 0.7, 0.15)) -> np.ndarray:
    """A smooth asymmetric 'head': four nested/side ellipsoids of intensities ``values``, float64.

    Other ``values`` give another 'contrast' of the same anatomy (e.g. T2-like (0.9, 0.3, 0.5, 1.0)).
    """
    grid = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    x, y, z = grid
    vol = np.zeros(shape)
    vol[(x / 0.8) ** 2 + (y / 0.85) ** 2 + (z / 0.75) ** 2 < 1] = values[0]
    vol[((x - 0.15) / 0.45) ** 2 + ((y + 0.1) / 0.55) ** 2 + (z / 0.5) ** 2 < 1] = values[1]
    vol[((x + 0.35) / 0.2) ** 2 + ((y - 0.35) / 0.15) ** 2 + ((z - 0.2) / 0.25) ** 2 < 1] = values[2]
    vol[((x - 0.3) / 0.12) ** 2 + ((y - 0.45) / 0.2) ** 2 + ((z + 0.3) / 0.15) ** 2 < 1] = values[3]
    rng = np.random.default_rng(seed)
    vol = ndimage.gaussian_filter(vol, 1.0) + 0.01 * rng.standard_normal(shape)
    return np.clip(vol, 0, None)


def rotation(axis: int, degrees: float) -> np.ndarray:
    """4x4 rotation about world axis 0/1/2."""
    t = np.deg2rad(degrees)
    c, s = np.cos(t), np.sin(t)
    r = np.eye(4)
    i, j = [(1, 2), (0, 2), (0, 1)][axis]
    r[i, i] = r[j, j] = c
    r[i, j], r[j, i] = -s, s
    return r


def rigid_about(center: np.ndarray, rotations: list[tuple[int, float]], shift) -> np.ndarray:
    """World rigid map: rotations about ``center``, then a translation."""
    c, ci = np.eye(4), np.eye(4)
    c[:3, 3], ci[:3, 3] = center, -np.asarray(center)
    m = np.eye(4)
    for axis, deg in rotations:
        m = rotation(axis, deg) @ m
    out = c @ m @ ci
    out[:3, 3] += shift
    return out


def move(volume: np.ndarray, affine: np.ndarray, world_map: np.ndarray, order: int = 3) -> np.ndarray:
    """The volume seen after the object moved by ``world_map`` (same grid): out(y) = in(T^-1 y)."""
    m = np.linalg.inv(affine) @ np.linalg.inv(world_map) @ affine
    return ndimage.affine_transform(volume, m[:3, :3], m[:3, 3], order=order, mode="constant")
