"""Orthonormal 2-D Daubechies wavelet transform in torch, periodic boundaries.

The transform acts on the last two dimensions of a real tensor ``(..., H, W)`` whose sizes are
multiples of ``2**levels``; coefficients are stored in the Mallat layout (same shape as the
input, the coarsest approximation in the top-left ``(H / 2**levels, W / 2**levels)`` corner).
With periodic extension the analysis matrix is orthogonal, so :func:`idwt2` is both the inverse
and the adjoint of :func:`dwt2`, and the proximal operator of ``lam * ||dwt2(x)||_1`` is a
soft-threshold of the coefficients (exactly, with no inner iterations).

One analysis step along a dimension of length ``N`` computes, for ``k = 0 .. N/2 - 1``,
``a[k] = sum_n lo[n] x[(2k + n) mod N]`` and ``d[k] = sum_n hi[n] x[(2k + n) mod N]``, with
``hi[n] = (-1)^n lo[L - 1 - n]``.  A level is applied as two products with the (cached)
orthogonal ``(n, n)`` analysis matrices, ``D_H X D_W^T``: dense, but for image sizes several
times faster on CPU and GPU than strided convolutions.
"""

from __future__ import annotations

import functools
import math

import torch

__all__ = ["WAVELETS", "dwt2", "idwt2", "max_level", "approximation_mask"]

# Orthonormal scaling (low-pass reconstruction) filters.  Published constants: Daubechies (1988),
# also tabulated by PyWavelets as ``Wavelet(name).rec_lo``.
WAVELETS: dict[str, tuple[float, ...]] = {
    "haar": (0.7071067811865476, 0.7071067811865476),
    "db2": tuple(
        v / (4 * math.sqrt(2)) for v in (1 + math.sqrt(3), 3 + math.sqrt(3), 3 - math.sqrt(3), 1 - math.sqrt(3))
    ),
    "db4": (
        0.2303778133088965, 0.7148465705529157, 0.6308807679298589, -0.027983769416859854,
        -0.18703481171909309, 0.030841381835560764, 0.0328830116668852, -0.010597401785069032,
    ),
}


def _check_wavelet(wavelet: str) -> None:
    if wavelet not in WAVELETS:
        raise ValueError(f"wavelet must be one of {sorted(WAVELETS)}, got {wavelet!r}")


@functools.lru_cache(maxsize=32)
def _analysis_matrix_cpu(n: int, wavelet: str) -> torch.Tensor:
    lo = WAVELETS[wavelet]
    length = len(lo)
    hi = [(-1.0) ** j * lo[length - 1 - j] for j in range(length)]
    matrix = torch.zeros(n, n, dtype=torch.float64)
    for k in range(n // 2):
        for j in range(length):
            matrix[k, (2 * k + j) % n] += lo[j]
            matrix[n // 2 + k, (2 * k + j) % n] += hi[j]
    return matrix


@functools.lru_cache(maxsize=64)
def _analysis_matrix_on(n: int, wavelet: str, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return _analysis_matrix_cpu(n, wavelet).to(dtype=dtype, device=device)


def _analysis_matrix(n: int, wavelet: str, like: torch.Tensor) -> torch.Tensor:
    """One periodic analysis level along a dim of length ``n``: the orthogonal ``(n, n)``
    matrix whose first ``n/2`` rows give ``a`` and last ``n/2`` rows give ``d`` (cached per
    size, dtype and device)."""
    return _analysis_matrix_on(n, wavelet, like.dtype, like.device)


def max_level(size: int, wavelet: str = "db4") -> int:
    """Deepest useful level for a dimension of ``size`` (PyWavelets' ``dwt_max_level`` rule)."""
    length = len(WAVELETS[wavelet]) if wavelet in WAVELETS else 2
    if size < length:
        return 0
    return int(math.floor(math.log2(size / (length - 1))))


def _check_input(x: torch.Tensor, levels: int) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim < 2:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"x must be a real floating-point tensor (..., H, W), got {shape}")
    if levels < 0:
        raise ValueError(f"levels must be >= 0, got {levels}")
    step = 2**levels
    if x.shape[-1] % step or x.shape[-2] % step:
        raise ValueError(
            f"the spatial size {tuple(x.shape[-2:])} must be a multiple of 2**levels = {step}"
        )


def dwt2(x: torch.Tensor, levels: int, wavelet: str = "db4") -> torch.Tensor:
    """Multi-level orthonormal 2-D wavelet transform of the last two dims (Mallat layout).

    Args:
        x: real tensor ``(..., H, W)`` with ``H`` and ``W`` multiples of ``2**levels``.
        levels: number of decomposition levels.
        wavelet: ``"haar"``, ``"db2"`` or ``"db4"``.

    Returns:
        Coefficients ``(..., H, W)``; ``||dwt2(x)|| = ||x||``.

    Example:
        >>> x = torch.randn(2, 64, 32, dtype=torch.float64)
        >>> torch.allclose(idwt2(dwt2(x, 3), 3), x)
        True
    """
    _check_input(x, levels)
    _check_wavelet(wavelet)
    h, w = x.shape[-2:]
    out = x.clone()
    for _ in range(levels):
        mat_h, mat_w = _analysis_matrix(h, wavelet, x), _analysis_matrix(w, wavelet, x)
        out[..., :h, :w] = mat_h @ out[..., :h, :w] @ mat_w.T
        h, w = h // 2, w // 2
    return out


def idwt2(coeffs: torch.Tensor, levels: int, wavelet: str = "db4") -> torch.Tensor:
    """Inverse (and adjoint) of :func:`dwt2`; same arguments and shapes."""
    _check_input(coeffs, levels)
    _check_wavelet(wavelet)
    full_h, full_w = coeffs.shape[-2:]
    out = coeffs.clone()
    for level in reversed(range(levels)):
        h, w = full_h >> level, full_w >> level
        mat_h, mat_w = _analysis_matrix(h, wavelet, coeffs), _analysis_matrix(w, wavelet, coeffs)
        out[..., :h, :w] = mat_h.T @ out[..., :h, :w] @ mat_w
    return out


def approximation_mask(
    shape: tuple[int, int], levels: int, device: torch.device | None = None
) -> torch.Tensor:
    """Boolean ``(H, W)`` mask of the coarsest approximation band in the Mallat layout."""
    mask = torch.zeros(shape, dtype=torch.bool, device=device)
    mask[: shape[0] >> levels, : shape[1] >> levels] = True
    return mask
