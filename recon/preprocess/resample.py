"""Resampling a volume to a new voxel size, world coordinates preserved.

Convention (the one of nibabel, NIfTI and SimpleITK): the 4x4 ``affine`` maps a voxel index
``(i, j, k, 1)`` to the world position ``(x, y, z, 1)`` (mm, RAS+) of the voxel's *centre*;
a voxel covers ``index +- 0.5``. Resampling keeps the axes' directions and the field of view
(FOV): the new grid has ``n_new = max(1, round(n * old / new))`` voxels along each axis and is
centred on the old FOV, so when ``n * old / new`` is an integer the outer voxel edges coincide
(the ``grid_mode=True`` rule of ``scipy.ndimage.zoom``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from recon.preprocess._checks import as_affine, as_volume, as_voxel_size

__all__ = ["resample", "voxel_sizes"]


def voxel_sizes(affine: np.ndarray) -> np.ndarray:
    """Voxel sizes (mm) of a 4x4 affine: the norms of its first three columns."""
    return np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3], axis=0)


def resample(volume: np.ndarray | torch.Tensor, affine: np.ndarray, voxel_size: float | Sequence[float],
             order: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Resample a 3-D volume to ``voxel_size`` mm, keeping its world position.

    Interpolation by ``scipy.ndimage`` splines: ``order=3`` cubic B-spline (images; may
    overshoot at sharp edges like any cubic), ``1`` trilinear, ``0`` nearest neighbour (labels
    and masks: values and dtype kept). Samples beyond the last voxel centre (within half a
    voxel of the FOV edge) repeat the edge (``mode="nearest"``).

    Args:
        volume: (X, Y, Z) array (numpy or torch; torch is moved to the CPU).
        affine: 4x4 voxel-to-world matrix (RAS+, voxel centres), invertible.
        voxel_size: new voxel size in mm, one number or one per axis, > 0.
        order: spline order 0, 1 or 3.

    Returns:
        ``(resampled, new_affine)``: (X', Y', Z') numpy array (float32 for orders 1 and 3 of
        a non-float64 input; the input dtype for order 0) and its 4x4 float64 affine.

    Raises:
        ValueError: volume not 3-D, affine not 4x4 invertible, voxel_size <= 0, bad order.

    Example:
        >>> vol = np.zeros((10, 10, 10), np.float32); aff = np.diag([1.0, 1.0, 1.0, 1.0])
        >>> out, new_aff = resample(vol, aff, 2.0)
        >>> out.shape, float(new_aff[0, 0]), float(new_aff[0, 3])  # voxel 0 spans old voxels 0, 1
        ((5, 5, 5), 2.0, 0.5)
    """
    if order not in (0, 1, 3) or isinstance(order, bool):
        raise ValueError(f"order must be 0 (nearest), 1 (linear) or 3 (cubic B-spline), got {order!r}")
    data = as_volume("volume", volume, dtype=None)
    affine = as_affine("affine", affine)
    new_size = as_voxel_size("voxel_size", voxel_size)
    old_size = voxel_sizes(affine)
    shape = np.asarray(data.shape, dtype=np.float64)
    new_shape = np.maximum(1, np.round(shape * old_size / new_size)).astype(int)
    step = new_size / old_size  # old-index increment per new voxel
    # new voxel centre m sits at old index  start + m * step, the grid centred on the old FOV
    start = (shape - 1) / 2 - (new_shape - 1) / 2 * step
    new_affine = affine.copy()
    new_affine[:3, :3] = affine[:3, :3] * step[None, :]
    new_affine[:3, 3] = affine[:3, :3] @ start + affine[:3, 3]

    from scipy import ndimage

    if order == 0:
        # exact nearest neighbour by index rounding (no spline machinery, dtype kept)
        index = [np.clip(np.floor(start[a] + np.arange(new_shape[a]) * step[a] + 0.5), 0, data.shape[a] - 1)
                 .astype(np.intp) for a in range(3)]
        out = data[np.ix_(*index)]
        return np.ascontiguousarray(out), new_affine
    work = data if data.dtype in (np.float32, np.float64) else data.astype(np.float32)
    out = ndimage.affine_transform(work, step, offset=start, output_shape=tuple(new_shape), order=order,
                                   mode="nearest", prefilter=order > 1)
    return out, new_affine
