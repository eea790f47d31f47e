"""Intensity normalisation of MR images.

Simple rescalings that work on any shape and on both numpy arrays and torch tensors (the
result has the input's type, device and floating dtype; integer inputs become float32):

* :func:`zscore` - ``(x - mean) / std`` with the statistics taken over a mask (default the
  non-zero foreground), applied to the whole array;
* :func:`minmax` - linear map of ``[min, max]`` (over a mask) onto ``out_range``;
* :func:`percentile_clip` - clip to the ``lower``/``upper`` percentiles (over a mask),
  optionally rescaling the clipped range onto ``[0, 1]``.

Brain-MRI standardisations (numpy in, numpy out; torch tensors are converted and returned as
tensors): :func:`fcm_normalize` (fuzzy c-means white-matter mean), :class:`NyulNormalizer`
(Nyul & Udupa piecewise-linear histogram standardisation) and :func:`whitestripe`
(Shinohara et al. 2014).

Standard deviations are population ones (``ddof=0``), as in ``intensity-normalization``;
torchio's ``ZNormalization`` uses ``ddof=1`` (the two differ by ``sqrt(n/(n-1))``).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, TypeVar, Union

import numpy as np
import torch

__all__ = [
    "zscore",
    "minmax",
    "percentile_clip",
]

Array = TypeVar("Array", np.ndarray, torch.Tensor)
ArrayLike = Union[np.ndarray, torch.Tensor]


# --------------------------------------------------------------------------------------- helpers
def _describe(value: object) -> str:
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        return f"{dtype} {type(value).__name__} of shape {tuple(shape)}"
    return f"{type(value).__name__} {value!r}"[:200]


def _check_array(name: str, value: object) -> None:
    if not isinstance(value, (np.ndarray, torch.Tensor)):
        raise TypeError(f"{name} must be a numpy array or a torch tensor, got {_describe(value)}")
    size = value.numel() if isinstance(value, torch.Tensor) else value.size
    if value.ndim == 0 or size == 0:
        raise ValueError(f"{name} must be a non-empty array, got {_describe(value)}")
    complex_ = value.is_complex() if isinstance(value, torch.Tensor) else np.iscomplexobj(value)
    if complex_:
        raise TypeError(f"{name} must be real-valued (take the magnitude first), got {_describe(value)}")


def _as_float(volume: Array) -> Array:
    """Floating copy-free view when possible: float stays, integers/bools become float32."""
    if isinstance(volume, torch.Tensor):
        return volume if volume.is_floating_point() else volume.to(torch.float32)
    return volume if np.issubdtype(volume.dtype, np.floating) else volume.astype(np.float32)


def _mask_for(volume: Array, mask: ArrayLike | None) -> Array:
    """Boolean mask of the same type/device as ``volume``; default: non-zero voxels."""
    if mask is None:
        return volume != 0
    if not isinstance(mask, (np.ndarray, torch.Tensor)):
        raise TypeError(f"mask must be a numpy array or a torch tensor, got {_describe(mask)}")
    if tuple(mask.shape) != tuple(volume.shape):
        raise ValueError(
            f"mask must have the volume's shape {tuple(volume.shape)}, got shape {tuple(mask.shape)}"
        )
    if isinstance(volume, torch.Tensor):
        mask = torch.as_tensor(mask, device=volume.device)
        return mask if mask.dtype == torch.bool else mask != 0
    mask = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    return mask if mask.dtype == bool else mask != 0


def _masked_values(volume: Array, mask: Array, what: str) -> Array:
    values = volume[mask]
    if (values.numel() if isinstance(values, torch.Tensor) else values.size) == 0:
        raise ValueError(f"mask selects no voxel of volume; cannot compute the {what} (is the volume all zero?)")
    return values


def _quantiles(values: Array, q: Sequence[float]) -> list[float]:
    """Quantiles (numpy's default 'linear' rule) of a 1-D array, q in [0, 1]."""
    if isinstance(values, torch.Tensor):
        values = values.reshape(-1)
        n = values.numel()
        out = []
        for qi in q:
            pos = qi * (n - 1)
            lo = int(np.floor(pos))
            hi = min(lo + 1, n - 1)
            # kthvalue is 1-based; avoids sorting the whole array and torch.quantile's size limit
            vlo = values.kthvalue(lo + 1).values.double()
            vhi = values.kthvalue(hi + 1).values.double() if hi != lo else vlo
            out.append(float(vlo + (pos - lo) * (vhi - vlo)))
        return out
    return [float(v) for v in np.quantile(values, list(q))]


def _mean_std(values: Array) -> tuple[float, float]:
    if isinstance(values, torch.Tensor):
        v = values.double() if values.dtype != torch.float64 else values
        std, mean = torch.std_mean(v, correction=0)
        return float(mean), float(std)
    return float(values.mean(dtype=np.float64)), float(values.std(dtype=np.float64))


def _affine_map(volume: Array, scale: float, offset: float) -> Array:
    """``volume * scale + offset`` in the volume's floating dtype (one output allocation)."""
    volume = _as_float(volume)
    if isinstance(volume, torch.Tensor):
        return torch.addcmul(torch.full((), offset, dtype=volume.dtype, device=volume.device), volume,
                             torch.full((), scale, dtype=volume.dtype, device=volume.device))
    dtype = volume.dtype.type
    out = np.multiply(volume, dtype(scale))
    out += dtype(offset)
    return out


def _to_numpy(volume: ArrayLike) -> np.ndarray:
    if isinstance(volume, torch.Tensor):
        return volume.detach().cpu().numpy()
    return np.asarray(volume)


def _like(result: np.ndarray, template: ArrayLike) -> ArrayLike:
    if isinstance(template, torch.Tensor):
        return torch.from_numpy(np.ascontiguousarray(result)).to(template.device)
    return result


# ------------------------------------------------------------------------------- simple rescaling
def zscore(volume: Array, mask: ArrayLike | None = None, *, eps: float = 0.0) -> Array:
    """Z-score normalisation with statistics over a mask.

    ``out = (volume - mean) / std``, mean and (population, ddof=0) std taken over ``mask``,
    applied to every voxel (the background of a masked image becomes ``-mean/std``).

    Args:
        volume: array of any shape, numpy or torch (any device).
        mask: boolean (or 0/1) array of ``volume``'s shape; default ``volume != 0``.
        eps: added to the std (0 by default: a constant region raises instead).

    Returns:
        Same type/shape/device as ``volume``; floating dtype kept, integers become float32.

    Raises:
        TypeError: volume or mask is not an array, or is complex.
        ValueError: mask shape differs from volume's, the mask is empty, or std is zero.

    Example:
        >>> import numpy as np
        >>> x = np.array([0.0, 1.0, 2.0, 3.0])
        >>> zscore(x).round(4).tolist()  # foreground 1, 2, 3: mean 2, std 0.8165
        [-2.4495, -1.2247, 0.0, 1.2247]
    """
    _check_array("volume", volume)
    volume = _as_float(volume)
    m = _mask_for(volume, mask)
    mean, std = _mean_std(_masked_values(volume, m, "mean and std"))
    std = std + eps
    if std <= 0 or not np.isfinite(std):
        raise ValueError(f"volume is constant over the mask (std {std}); cannot z-score it (pass eps > 0)")
    return _affine_map(volume, 1.0 / std, -mean / std)


def minmax(volume: Array, mask: ArrayLike | None = None, *,
           out_range: tuple[float, float] = (0.0, 1.0)) -> Array:
    """Linear rescaling of ``[min, max]`` (over ``mask``; default all voxels) onto ``out_range``.

    Args:
        volume: array of any shape, numpy or torch.
        mask: optional boolean array of ``volume``'s shape selecting the voxels that define
            min and max (voxels outside may map outside ``out_range``).
        out_range: ``(low, high)`` target values, ``low < high``.

    Returns:
        Same type/shape/device as ``volume`` (floating).

    Raises:
        ValueError: bad ``out_range``, mask shape mismatch, empty mask or constant volume.
    """
    _check_array("volume", volume)
    try:
        low, high = (float(v) for v in out_range)
    except (TypeError, ValueError) as err:
        raise ValueError(f"out_range must be two numbers (low, high), got {out_range!r}") from err
    if not low < high:
        raise ValueError(f"out_range must satisfy low < high, got {out_range!r}")
    volume = _as_float(volume)
    if mask is None:
        values = volume
    else:
        values = _masked_values(volume, _mask_for(volume, mask), "min and max")
    vmin, vmax = float(values.min()), float(values.max())
    if not vmax > vmin:
        raise ValueError(f"volume is constant over the mask (min = max = {vmin}); cannot rescale it")
    scale = (high - low) / (vmax - vmin)
    return _affine_map(volume, scale, low - vmin * scale)


def percentile_clip(volume: Array, lower: float = 0.5, upper: float = 99.5,
                    mask: ArrayLike | None = None, *, rescale: bool = False) -> Array:
    """Clip intensities to the ``lower``/``upper`` percentiles, optionally rescale to [0, 1].

    Percentiles use numpy's default (linear interpolation) rule, over ``mask`` (default all
    voxels).

    Args:
        volume: array of any shape, numpy or torch.
        lower: lower percentile in [0, 100).
        upper: upper percentile in (lower, 100].
        mask: optional boolean array of ``volume``'s shape selecting the voxels whose
            percentiles are used.
        rescale: map the clipped range ``[p_lower, p_upper]`` linearly onto ``[0, 1]``.

    Returns:
        Same type/shape/device as ``volume`` (floating).

    Raises:
        ValueError: percentiles out of order or outside [0, 100]; mask problems.
    """
    _check_array("volume", volume)
    if not (0.0 <= float(lower) < float(upper) <= 100.0):
        raise ValueError(
            f"lower and upper must satisfy 0 <= lower < upper <= 100, got lower={lower!r}, upper={upper!r}"
        )
    volume = _as_float(volume)
    values = volume if mask is None else _masked_values(volume, _mask_for(volume, mask), "percentiles")
    if isinstance(values, torch.Tensor):
        values = values.reshape(-1)
    else:
        values = values.ravel()
    lo, hi = _quantiles(values, (float(lower) / 100.0, float(upper) / 100.0))
    if isinstance(volume, torch.Tensor):
        out = volume.clamp(lo, hi)
    else:
        out = np.clip(volume, volume.dtype.type(lo), volume.dtype.type(hi))
    if rescale:
        if not hi > lo:
            raise ValueError(f"the {lower}th and {upper}th percentiles are equal ({lo}); cannot rescale")
        scale = 1.0 / (hi - lo)
        out = _affine_map(out, scale, -lo * scale)
    return out
