"""Orthonormal 2-D Daubechies wavelet transform in torch, periodic boundaries.

The transform acts on the last two dimensions of a real tensor ``(..., H, W)`` whose sizes are
multiples of ``2**levels``; coefficients are stored in the Mallat layout (same shape as the
input, the coarsest approximation in the top-left ``(H / 2**levels, W / 2**levels)`` corner).
With periodic extension the analysis matrix is orthogonal, so :func:`idwt2` is both the inverse
and the adjoint of :func:`dwt2`, and the proximal operator of ``lam * ||dwt2(x)||_1`` is a
soft-threshold of the coefficients (exactly, with no inner iterations).

One analysis step along a dimension of length ``N`` computes, for ``k = 0 .. N/2 - 1``,
``a[k] = sum_n lo[n] x[(2k + n) mod N]`` and ``d[k] = sum_n hi[n] x[(2k + n) mod N]``, with
``hi[n] = (-1)^n lo[L - 1 - n]``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["WAVELETS", "dwt2", "idwt2", "max_level", "approximation_mask"]

# Orthonormal scaling (low-pass reconstruction) filters.  Published constants: Daubechies (1988),
# also tabulated by PyWavelets as ``Wavelet(name).rec_lo``.
WAVELETS: dict[str, tuple[float, ...]] = {
    "haar": (0.7071067811865476, 0.7071067811865476),
    "db2": (
        0.48296291314469025, 0.836516303737469, 0.22414386804185735, -0.12940952255092145,
    ),
    "db4": (
        0.2303778133088965, 0.7148465705529157, 0.6308807679298589, -0.027983769416859854,
        -0.18703481171909309, 0.030841381835560764, 0.0328830116668852, -0.010597401785069032,
    ),
}


def _filters(wavelet: str, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    if wavelet not in WAVELETS:
        raise ValueError(f"wavelet must be one of {sorted(WAVELETS)}, got {wavelet!r}")
    lo = torch.tensor(WAVELETS[wavelet], dtype=torch.float64)
    length = lo.numel()
    signs = torch.tensor([(-1.0) ** n for n in range(length)], dtype=torch.float64)
    hi = signs * lo.flip(0)
    return torch.stack((lo, hi)).unsqueeze(1).to(dtype=dtype, device=device)  # (2, 1, L)


def max_level(size: int, wavelet: str = "db4") -> int:
    """Deepest useful level for a dimension of ``size`` (PyWavelets' ``dwt_max_level`` rule)."""
    length = len(WAVELETS[wavelet]) if wavelet in WAVELETS else 2
    if size < length:
        return 0
    return int(math.floor(math.log2(size / (length - 1))))


def _analysis_1d(x: torch.Tensor, filt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One periodic analysis step along the last dim of ``x`` ``(M, N)`` -> two ``(M, N/2)``."""
    n = x.shape[-1]
    length = filt.shape[-1]
    idx = torch.arange(n + length - 2, device=x.device) % n
    out = F.conv1d(x[:, idx].unsqueeze(1), filt, stride=2)  # (M, 2, N/2)
    return out[:, 0], out[:, 1]


def _synthesis_1d(a: torch.Tensor, d: torch.Tensor, filt: torch.Tensor) -> torch.Tensor:
    """Adjoint (= inverse) of :func:`_analysis_1d`: two ``(M, N/2)`` -> ``(M, N)``."""
    n = 2 * a.shape[-1]
    length = filt.shape[-1]
    full = F.conv_transpose1d(torch.stack((a, d), dim=1), filt, stride=2)[:, 0]  # (M, N + L - 2)
    idx = torch.arange(full.shape[-1], device=a.device) % n
    out = full.new_zeros(full.shape[0], n)
    return out.index_add_(1, idx, full)


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
    filt = _filters(wavelet, x.dtype, x.device)
    lead = x.shape[:-2]
    h, w = x.shape[-2:]
    out = x.reshape(-1, h, w).clone()
    for _ in range(levels):
        m = out.shape[0]
        block = out[:, :h, :w]
        lo, hi = _analysis_1d(block.reshape(m * h, w), filt)  # along W
        rows = torch.cat((lo, hi), dim=-1).reshape(m, h, w)
        cols = rows.transpose(1, 2).reshape(m * w, h)
        lo, hi = _analysis_1d(cols, filt)  # along H
        out[:, :h, :w] = torch.cat((lo, hi), dim=-1).reshape(m, w, h).transpose(1, 2)
        h, w = h // 2, w // 2
    return out.reshape(*lead, *x.shape[-2:])


def idwt2(coeffs: torch.Tensor, levels: int, wavelet: str = "db4") -> torch.Tensor:
    """Inverse (and adjoint) of :func:`dwt2`; same arguments and shapes."""
    _check_input(coeffs, levels)
    filt = _filters(wavelet, coeffs.dtype, coeffs.device)
    lead = coeffs.shape[:-2]
    full_h, full_w = coeffs.shape[-2:]
    out = coeffs.reshape(-1, full_h, full_w).clone()
    m = out.shape[0]
    for level in reversed(range(levels)):
        h, w = full_h >> level, full_w >> level
        block = out[:, :h, :w].transpose(1, 2).reshape(m * w, h)
        cols = _synthesis_1d(block[:, : h // 2], block[:, h // 2 :], filt)  # along H
        rows = cols.reshape(m, w, h).transpose(1, 2).reshape(m * h, w)
        out[:, :h, :w] = _synthesis_1d(rows[:, : w // 2], rows[:, w // 2 :], filt).reshape(m, h, w)
    return out.reshape(*lead, full_h, full_w)


def approximation_mask(
    shape: tuple[int, int], levels: int, device: torch.device | None = None
) -> torch.Tensor:
    """Boolean ``(H, W)`` mask of the coarsest approximation band in the Mallat layout."""
    mask = torch.zeros(shape, dtype=torch.bool, device=device)
    mask[: shape[0] >> levels, : shape[1] >> levels] = True
    return mask
