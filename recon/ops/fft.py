"""Centered, orthonormal FFTs on real tensors with a trailing complex dimension.

``fft2c(x) = fftshift(fft2(ifftshift(x)))`` over dims ``(-3, -2)`` with ``norm="ortho"``:
the convention of fastMRI, so k-space centre is at index ``N // 2``.

For even sizes the shifts cost no copies of their own.  ``fftshift`` of an FFT's output equals
modulating its input by the +-1 checkerboard ``s(n) = (-1)^(n_1 + n_2)``, so
``fft2c(x) = FFT(s * ifftshift(x))`` exactly.  Without autograd that is one pass, which writes
the shifted, modulated copy quadrant by quadrant into the buffer the FFT then transforms in
place: one buffer and one elementwise pass, against fastMRI's four ``roll`` copies plus the
FFT's own output.  With autograd (and under ``torch.compile``) the equivalent
``c * s(k) * FFT(s(n) * x)``, ``c = (-1)^((N_1 + N_2)/2)``, is used: two multiplications, the
second in place.  Odd sizes fall back to explicit shifts.  The same holds for the inverse and
in 3-D.  Half-precision input is computed in float32 and returned in float32 (FFTs are kept in
float32 under mixed precision).
"""

from __future__ import annotations

import itertools
from typing import Sequence

import torch

from recon.ops._checks import check_complex_view, is_compiling

__all__ = ["fft2c", "ifft2c", "fft3c", "ifft3c", "fftshift", "ifftshift"]

_SIGN_CACHE: dict[tuple, torch.Tensor] = {}


def _make_signs(sizes: tuple[int, ...], device: torch.device, dtype: torch.dtype, negate: bool) -> torch.Tensor:
    grids = torch.meshgrid(*[torch.arange(n, device=device) for n in sizes], indexing="ij")
    parity = sum(grids) % 2
    signs = 1 - 2 * parity
    if negate:
        signs = -signs
    return signs.to(dtype).unsqueeze(-1).expand(*sizes, 2).contiguous()


def _signs(
    sizes: tuple[int, ...], device: torch.device, dtype: torch.dtype, negate: bool = False
) -> torch.Tensor:
    """+-1 checkerboard ``(*sizes, 2)``, repeated over real/imag.

    Stored densely (not broadcast over the last dim): an elementwise multiply whose operands
    have the same inner layout vectorises, a broadcast over a dimension of size 2 does not.
    Eagerly the tensors are cached; under ``torch.compile`` they are built inline, where the
    compiler folds them into the surrounding elementwise kernels.
    """
    if is_compiling():
        return _make_signs(sizes, device, dtype, negate)
    # Tensors made under inference_mode cannot be saved for backward later: cache per mode.
    key = (sizes, device, dtype, negate, torch.is_inference_mode_enabled())
    signs = _SIGN_CACHE.get(key)
    if signs is None:
        signs = _make_signs(sizes, device, dtype, negate)
        if len(_SIGN_CACHE) > 64:
            _SIGN_CACHE.clear()
        _SIGN_CACHE[key] = signs
    return signs


def fftshift(x: torch.Tensor, dim: Sequence[int]) -> torch.Tensor:
    """``numpy.fft.fftshift`` over ``dim`` (any tensor)."""
    return torch.roll(x, shifts=[x.shape[d] // 2 for d in dim], dims=list(dim))


def ifftshift(x: torch.Tensor, dim: Sequence[int]) -> torch.Tensor:
    """``numpy.fft.ifftshift`` over ``dim`` (any tensor)."""
    return torch.roll(x, shifts=[(x.shape[d] + 1) // 2 for d in dim], dims=list(dim))


def _shift_modulate(data: torch.Tensor, sizes: tuple[int, ...]) -> torch.Tensor:
    """``s * ifftshift(data)`` over the spatial dims (even ``sizes``), in one pass.

    ``fftshift`` of an FFT's output equals modulating its input by ``s``, so
    ``FFT(s * ifftshift(x)) = fftshift(FFT(ifftshift(x)))`` exactly: each quadrant (octant in
    3-D) of ``data`` is multiplied by the signs of its destination and written there.
    """
    signs = _signs(sizes, data.device, data.dtype)
    out = torch.empty(data.shape, dtype=data.dtype, device=data.device)
    lead = (slice(None),) * (data.ndim - len(sizes) - 1)
    for upper in itertools.product((False, True), repeat=len(sizes)):
        src, dst = [], []
        for n, up in zip(sizes, upper):
            lo, hi = slice(0, n // 2), slice(n // 2, n)
            dst.append(hi if up else lo)
            src.append(lo if up else hi)
        torch.mul(data[lead + tuple(src)], signs[tuple(dst)], out=out[lead + tuple(dst)])
    return out


def _centered(data: torch.Tensor, ndim: int, inverse: bool, name: str) -> torch.Tensor:
    check_complex_view(name, data, min_ndim=ndim + 1)
    if data.dtype in (torch.float16, torch.bfloat16):
        data = data.float()
    sizes = tuple(data.shape[-ndim - 1 : -1])
    real_dims = tuple(range(-ndim - 1, -1))  # spatial dims of the real view
    cdims = tuple(range(-ndim, 0))  # spatial dims of the complex view
    if ndim == 2:
        transform = torch.fft.ifft2 if inverse else torch.fft.fft2
    else:
        transform = torch.fft.ifftn if inverse else torch.fft.fftn
    if all(n % 2 == 0 for n in sizes):
        if not ((torch.is_grad_enabled() and data.requires_grad) or is_compiling()):
            # No graph to keep: one pass writes s * ifftshift(x), the FFT runs in place on it.
            buffer = torch.view_as_complex(_shift_modulate(data, sizes))
            return torch.view_as_real(transform(buffer, dim=cdims, norm="ortho", out=buffer))
        modulated = torch.view_as_complex(data * _signs(sizes, data.device, data.dtype))  # contiguous copy
        out = transform(modulated, dim=cdims, norm="ortho")
        negate = (sum(sizes) // 2) % 2 == 1  # the constant c = (-1)^((N_1 + N_2) / 2)
        return torch.view_as_real(out).mul_(_signs(sizes, data.device, data.dtype, negate))
    shifted = ifftshift(data, real_dims).contiguous()
    out = transform(torch.view_as_complex(shifted), dim=cdims, norm="ortho")
    return fftshift(torch.view_as_real(out), real_dims)


def fft2c(data: torch.Tensor) -> torch.Tensor:
    """Centered orthonormal 2-D FFT over dims ``(-3, -2)``.

    Args:
        data: real tensor ``(..., H, W, 2)``; any number of leading batch dimensions.

    Returns:
        k-space of the same shape (float32 for half-precision input).

    Raises:
        TypeError: if ``data`` is not a real floating-point tensor.
        ValueError: if ``data`` has fewer than 3 dims or its last dim is not 2.

    Example:
        >>> image = torch.randn(2, 15, 64, 48, 2)
        >>> kspace = fft2c(image)
        >>> torch.allclose(ifft2c(kspace), image, atol=1e-5)
        True
    """
    return _centered(data, 2, inverse=False, name="data")


def ifft2c(data: torch.Tensor) -> torch.Tensor:
    """Centered orthonormal 2-D inverse FFT over dims ``(-3, -2)``; see :func:`fft2c`."""
    return _centered(data, 2, inverse=True, name="data")


def fft3c(data: torch.Tensor) -> torch.Tensor:
    """Centered orthonormal 3-D FFT over dims ``(-4, -3, -2)`` of ``(..., D, H, W, 2)``."""
    return _centered(data, 3, inverse=False, name="data")


def ifft3c(data: torch.Tensor) -> torch.Tensor:
    """Centered orthonormal 3-D inverse FFT over dims ``(-4, -3, -2)`` of ``(..., D, H, W, 2)``."""
    return _centered(data, 3, inverse=True, name="data")
