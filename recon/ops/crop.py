"""Centre crops and pads (fastMRI semantics: offset ``(N - n) // 2``)."""

from __future__ import annotations

from typing import Sequence, TypeVar

import numpy as np
import torch

from recon.ops._checks import check_complex_view, check_tensor

__all__ = ["center_crop", "complex_center_crop", "center_pad", "center_crop_or_pad"]

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def _check_shape(shape: Sequence[int]) -> tuple[int, int]:
    try:
        out = tuple(int(s) for s in shape)
    except TypeError as err:
        raise TypeError(f"shape must be a pair of ints (H, W), got {shape!r}") from err
    if len(out) != 2 or min(out) < 1:
        raise ValueError(f"shape must be a pair of positive ints (H, W), got {shape!r}")
    return out  # type: ignore[return-value]


def _crop(data: torch.Tensor, shape: tuple[int, int], hdim: int, name: str) -> torch.Tensor:
    h, w = data.shape[hdim], data.shape[hdim + 1]
    if not (0 < shape[0] <= h and 0 < shape[1] <= w):
        raise ValueError(
            f"crop shape {shape} must not exceed the spatial size ({h}, {w}) of {name} "
            f"of shape {tuple(data.shape)}"
        )
    top = (h - shape[0]) // 2
    left = (w - shape[1]) // 2
    data = data.narrow(hdim, top, shape[0])
    return data.narrow(hdim + 1, left, shape[1])


def center_crop(data: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Crop the last two dims of ``data`` ``(..., H, W)`` to ``shape`` around the centre.

    Raises:
        ValueError: if ``shape`` is larger than ``(H, W)``.
    """
    check_tensor("data", data)
    if data.ndim < 2:
        raise ValueError(f"data must have at least 2 dimensions (..., H, W), got shape {tuple(data.shape)}")
    return _crop(data, _check_shape(shape), data.ndim - 2, "data")


def complex_center_crop(data: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Crop dims ``(-3, -2)`` of complex ``data`` ``(..., H, W, 2)`` to ``shape`` around the centre."""
    check_complex_view("data", data, min_ndim=3)
    return _crop(data, _check_shape(shape), data.ndim - 3, "data")


def center_pad(data: torch.Tensor, shape: Sequence[int], complex_data: bool = False) -> torch.Tensor:
    """Zero-pad the spatial dims to ``shape``, the inverse of :func:`center_crop`.

    Args:
        data: ``(..., H, W)``, or ``(..., H, W, 2)`` with ``complex_data=True``.
        shape: target ``(H', W')`` with ``H' >= H`` and ``W' >= W``.
        complex_data: whether the last dim is the complex (real, imag) pair.

    Returns:
        Padded tensor; ``center_crop(center_pad(x, s), x.shape[-2:])`` returns ``x``.
    """
    check_tensor("data", data)
    if complex_data:
        check_complex_view("data", data, min_ndim=3)
    hdim = data.ndim - (3 if complex_data else 2)
    if hdim < 0:
        raise ValueError(f"data must have at least 2 spatial dimensions, got shape {tuple(data.shape)}")
    shape = _check_shape(shape)
    h, w = data.shape[hdim], data.shape[hdim + 1]
    if shape[0] < h or shape[1] < w:
        raise ValueError(f"pad shape {shape} must be at least the spatial size ({h}, {w}) of data")
    out_shape = list(data.shape)
    out_shape[hdim], out_shape[hdim + 1] = shape
    out = data.new_zeros(out_shape)
    top, left = (shape[0] - h) // 2, (shape[1] - w) // 2
    out.narrow(hdim, top, h).narrow(hdim + 1, left, w).copy_(data)
    return out


def center_crop_or_pad(data: Array, shape: Sequence[int]) -> Array:
    """Centre-crop or zero-pad the last two dims of ``data`` ``(..., H, W)`` to ``shape``.

    Each of the two dims is cropped (start ``(N - n) // 2``, as :func:`center_crop`) or
    zero-padded (offset ``(n - N) // 2``, as :func:`center_pad`) on its own; the one home of
    this rule for numpy arrays (simulation grids, the CLI's header crop) as well as tensors.

    Args:
        data: numpy array or tensor ``(..., H, W)``.
        shape: target ``(H', W')``, positive ints.

    Returns:
        A new array of the same kind ``(..., H', W')`` (numpy: native byte order).

    Raises:
        TypeError: if ``data`` is neither a numpy array nor a tensor, or ``shape`` is not a pair.
        ValueError: if ``data`` has fewer than 2 dims or ``shape`` is not positive.
    """
    if not isinstance(data, (np.ndarray, torch.Tensor)):
        raise TypeError(f"data must be a numpy array or a torch.Tensor, got {type(data).__name__}")
    if data.ndim < 2:
        raise ValueError(f"data must have at least 2 dimensions (..., H, W), got shape {tuple(data.shape)}")
    shape = _check_shape(shape)
    out_shape = (*data.shape[:-2], *shape)
    if isinstance(data, torch.Tensor):
        out = data.new_zeros(out_shape)
    else:
        out = np.zeros(out_shape, dtype=data.dtype.newbyteorder("="))
    src, dst = [], []
    for n, size in zip(data.shape[-2:], shape):
        start = abs(n - size) // 2
        src.append(slice(start, start + size) if n > size else slice(0, n))
        dst.append(slice(0, size) if n > size else slice(start, start + n))
    out[(..., *dst)] = data[(..., *src)]
    return out
