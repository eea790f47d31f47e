"""Argument checks and small helpers shared by the preprocessing functions (private)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from recon.ops._checks import describe  # noqa: F401 - the one home of the rule, used across preprocess

SITK_HINT = "install the optional extra: pip install 'recon[preprocess]'"


def as_volume(name: str, value: object, *, dtype: Any = np.float32) -> np.ndarray:
    """A 3-D real numpy array (torch tensors are moved to the CPU); ``dtype=None`` keeps it."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a 3-D numpy array or torch tensor, got {describe(value)}")
    if value.ndim != 3:
        raise ValueError(f"{name} must be a 3-D volume (X, Y, Z), got {value.ndim}-D array of shape {value.shape}")
    if np.iscomplexobj(value):
        raise TypeError(f"{name} must be real-valued (take the magnitude first), got {describe(value)}")
    if min(value.shape) < 1:
        raise ValueError(f"{name} must be non-empty, got shape {value.shape}")
    if dtype is not None:
        value = value.astype(dtype, copy=False)
    return value


def as_affine(name: str, value: object | None) -> np.ndarray:
    """A float64 4x4 invertible affine (``None`` -> identity: 1 mm voxels at the origin)."""
    if value is None:
        return np.eye(4)
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        affine = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a 4x4 matrix, got {describe(value)}") from err
    if affine.shape != (4, 4):
        raise ValueError(f"{name} must be a 4x4 matrix, got shape {affine.shape}")
    if not np.all(np.isfinite(affine)):
        raise ValueError(f"{name} must be finite, got {affine.tolist()}")
    if not np.allclose(affine[3], [0, 0, 0, 1]):
        raise ValueError(f"{name} last row must be [0, 0, 0, 1], got {affine[3].tolist()}")
    det = np.linalg.det(affine[:3, :3])
    scale = np.prod(np.linalg.norm(affine[:3, :3], axis=0))
    if not abs(det) > 1e-8 * max(scale, 1e-300):
        raise ValueError(f"{name} is not invertible (determinant {det:.3g} of its 3x3 part)")
    return affine


def as_mask(name: str, value: object | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """A boolean numpy mask of ``shape`` (or None)."""
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a numpy array or torch tensor, got {describe(value)}")
    if value.shape != tuple(shape):
        raise ValueError(f"{name} must have the volume's shape {tuple(shape)}, got shape {value.shape}")
    return value if value.dtype == bool else value != 0


def as_voxel_size(name: str, value: object) -> np.ndarray:
    """Three positive finite voxel sizes in mm (a scalar is used for every axis)."""
    try:
        size = np.broadcast_to(np.asarray(value, dtype=np.float64), (3,)).copy()
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a positive number or three positive numbers (mm), got {value!r}") from err
    if not np.all(np.isfinite(size)) or np.any(size <= 0):
        raise ValueError(f"{name} must be > 0 (mm), got {value!r}")
    return size


def sitk():
    """SimpleITK, imported lazily with a clear message naming the extra."""
    try:
        import SimpleITK
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(f"this function needs SimpleITK; {SITK_HINT}") from err
    return SimpleITK


# LPS (ITK) <-> RAS (NIfTI) flip of the first two world axes
_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def to_sitk(volume: np.ndarray, affine: np.ndarray):
    """A SimpleITK image of a numpy (X, Y, Z) volume with a RAS+ voxel-to-world affine.

    numpy index (i, j, k) is ITK index (i, j, k) (so the array is transposed to ITK's z, y, x
    memory order); direction, spacing and origin come from the affine converted to LPS
    (spacing = column norms; a sheared affine gives a non-orthogonal direction matrix, which
    ITK accepts and :func:`from_sitk` returns unchanged).
    """
    s = sitk()
    lps = _LPS @ affine
    m = lps[:3, :3]
    spacing = np.linalg.norm(m, axis=0)
    direction = m / spacing
    image = s.GetImageFromArray(np.ascontiguousarray(volume.transpose(2, 1, 0)))
    image.SetSpacing([float(v) for v in spacing])
    image.SetOrigin([float(v) for v in lps[:3, 3]])
    image.SetDirection([float(v) for v in direction.ravel()])
    return image


def from_sitk(image) -> tuple[np.ndarray, np.ndarray]:
    """The (X, Y, Z) numpy array and RAS+ affine of a SimpleITK image."""
    s = sitk()
    array = s.GetArrayFromImage(image).transpose(2, 1, 0)
    return np.ascontiguousarray(array), sitk_affine(image)


def sitk_affine(image) -> np.ndarray:
    """The RAS+ voxel-to-world 4x4 affine of a SimpleITK image."""
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    spacing = np.asarray(image.GetSpacing(), dtype=np.float64)
    lps = np.eye(4)
    lps[:3, :3] = direction * spacing
    lps[:3, 3] = image.GetOrigin()
    return _LPS @ lps
