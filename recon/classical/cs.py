"""Compressed sensing: L1-wavelet (FISTA) and total variation (primal-dual) SENSE reconstructions.

Both solve ``min_x 1/2 ||M F S x - y||^2 + lam R(x)`` for a complex image ``x``, batched over
slices:

* :func:`cs_wavelet`: ``R(x) = ||Psi x||_1`` with an orthonormal periodic Daubechies wavelet
  ``Psi`` (:mod:`recon.classical.wavelet`), the coarsest approximation band left unpenalised;
  FISTA (Beck & Teboulle 2009) with the exact proximal step (a complex soft-threshold of the
  coefficients).  The image is zero-padded to a multiple of ``2**levels`` and the padded image is
  the unknown, so the proximal step stays exact for any size.  With ``cycle_spin`` the wavelet
  grid is shifted by a fixed sequence of offsets from one iteration to the next, which removes
  the blocky artefacts of a decimated transform (Figueiredo & Nowak 2003; no randomness).
* :func:`cs_tv`: ``R(x) = sum_r sqrt(|D_h x(r)|^2 + |D_w x(r)|^2)`` (isotropic TV, periodic
  forward differences); Chambolle & Pock's primal-dual algorithm on ``K = [A; D / sqrt(8)]``,
  which needs no inner solves.

On the CPU, large batches are solved in cache-sized groups of slices (same results).

``lam`` is relative by default: it is multiplied by the 99th percentile of ``|A^H y|`` of each
slice, so the same value works for data of any scale.
"""

from __future__ import annotations

import math

import torch

from recon.classical._checks import check_kspace, check_maps, check_mask, check_positive
from recon.classical.wavelet import WAVELETS, approximation_mask, dwt2, idwt2, max_level
from recon.classical._operator import ShiftedSense, batch_item, cpu_chunks, roll2d

__all__ = ["cs_wavelet", "cs_tv"]

# Offsets of the wavelet grid for cycle spinning: a fixed, well-spread sequence.
_SPIN = ((0, 0), (3, 5), (6, 2), (1, 7), (4, 4), (7, 1), (2, 6), (5, 3))


def _setup(kspace, sens_maps, mask) -> ShiftedSense:
    kspace = check_kspace(kspace)
    sens_maps = check_maps(sens_maps, kspace)
    mask = check_mask(mask, kspace)
    if mask is None:
        mask = (kspace != 0).any(dim=-1, keepdim=True).any(dim=1, keepdim=True).to(kspace.dtype)
    op = ShiftedSense(kspace, sens_maps, mask)
    if not bool((op.lipschitz > 0).all()):
        raise ValueError("sens_maps are zero everywhere (in at least one slice)")
    return op


def _scale(image: torch.Tensor) -> torch.Tensor:
    """Per-slice 99th percentile of ``|image|`` (complex ``(B, ...)``) -> ``(B, 1, ..., 1)``."""
    mag = image.abs().flatten(1)
    q = torch.quantile(mag.float(), 0.99, dim=1).to(mag.dtype)
    q = torch.where(q > 0, q, mag.amax(dim=1).clamp_min(torch.finfo(mag.dtype).tiny))
    return q.view(-1, *([1] * (image.ndim - 1)))


def _soft_threshold(coeffs: torch.Tensor, threshold: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Complex soft-threshold of ``(B, 2, H, W)`` coefficients (real, imag in dim 1)."""
    mag = coeffs.pow(2).sum(dim=1, keepdim=True).sqrt()
    factor = (1 - threshold / mag.clamp_min(torch.finfo(coeffs.dtype).tiny)).clamp_min(0)
    return coeffs * torch.where(keep, torch.ones_like(factor), factor)


def cs_wavelet(
    kspace: torch.Tensor,
    sens_maps: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    lam: float = 0.002,
    max_iter: int = 40,
    wavelet: str = "db4",
    levels: int | None = None,
    cycle_spin: bool = True,
    relative_lam: bool = True,
) -> torch.Tensor:
    """L1-wavelet compressed-sensing SENSE reconstruction by FISTA.

    Args:
        kspace: measured k-space ``(B, C, H, W, 2)``.
        sens_maps: coil maps ``(B, C, H, W, 2)``; ones of shape ``(B, 1, H, W, 2)`` with
            ``[..., 1] = 0`` for single-coil data.
        mask: sampling mask broadcastable to ``kspace`` (``None``: non-zero points).
        lam: regularisation weight, relative to the 99th percentile of ``|A^H y|`` when
            ``relative_lam`` (the default), else absolute (sigpy's ``lamda``).
        max_iter: FISTA iterations.
        wavelet: ``"db4"`` (default), ``"db2"`` or ``"haar"``.
        levels: decomposition levels (``None``: PyWavelets' maximum level, at most 5).
        cycle_spin: shift the wavelet grid between iterations (translation invariance).
        relative_lam: see ``lam``.

    Returns:
        Complex images ``(B, 1, H, W, 2)``.

    Example:
        >>> kspace = torch.randn(1, 4, 32, 32, 2)
        >>> maps = torch.randn(1, 4, 32, 32, 2)
        >>> cs_wavelet(kspace, maps, max_iter=5).shape
        torch.Size([1, 1, 32, 32, 2])
    """
    check_positive("lam", lam, allow_zero=True)
    check_positive("max_iter", max_iter, allow_zero=True, integer=True)
    if wavelet not in WAVELETS:
        raise ValueError(f"wavelet must be one of {sorted(WAVELETS)}, got {wavelet!r}")
    if levels is not None:
        check_positive("levels", levels, integer=True)
    kspace = check_kspace(kspace)
    sens_maps = check_maps(sens_maps, kspace)
    mask = check_mask(mask, kspace)
    chunks = cpu_chunks(kspace)
    if len(chunks) > 1:
        return torch.cat([
            cs_wavelet(kspace[rows], sens_maps[rows], batch_item(mask, rows, kspace.shape[0]), lam=lam,
                       max_iter=max_iter, wavelet=wavelet, levels=levels, cycle_spin=cycle_spin,
                       relative_lam=relative_lam)
            for rows in chunks
        ])
    op = _setup(kspace, sens_maps, mask)
    height, width = kspace.shape[-3:-1]
    if levels is None:
        levels = max(1, min(5, max_level(min(height, width), wavelet)))
    check_positive("levels", levels, integer=True)
    step = 2**levels
    pad_h, pad_w = math.ceil(height / step) * step, math.ceil(width / step) * step
    top, left = (pad_h - height) // 2, (pad_w - width) // 2
    lipschitz = op.lipschitz

    def crop(x: torch.Tensor) -> torch.Tensor:  # padded real (B, 2, Hp, Wp) -> shifted complex (B, 1, H, W)
        x = x[:, :, top : top + height, left : left + width]
        return op.to_shifted(torch.complex(x[:, :1], x[:, 1:]))

    def pad(image: torch.Tensor) -> torch.Tensor:  # shifted complex (B, 1, H, W) -> padded real
        image = op.to_image(image)
        out = image.real.new_zeros(image.shape[0], 2, pad_h, pad_w)
        out[:, :1, top : top + height, left : left + width] = image.real
        out[:, 1:, top : top + height, left : left + width] = image.imag
        return out

    threshold = lam / lipschitz * (_scale(op.rhs).view(-1, 1, 1, 1) if relative_lam else 1.0)  # (B, 1, 1, 1)
    keep = approximation_mask((pad_h, pad_w), levels, device=kspace.device)
    if pad_h == height and pad_w == width:
        # No padding: iterate on the FFT-shifted image itself (the wavelet grid is then offset
        # by (H // 2, W // 2), one more fixed shift), saving two shifts and copies per step.
        def to_domain(image: torch.Tensor) -> torch.Tensor:
            return torch.view_as_real(image[:, 0]).permute(0, 3, 1, 2)  # (B, 2, H, W) view

        def from_domain(x: torch.Tensor) -> torch.Tensor:
            return torch.complex(x[:, 0], x[:, 1]).unsqueeze(1)

        def finish(x: torch.Tensor) -> torch.Tensor:
            return op.unshift(from_domain(x))
    else:
        to_domain, from_domain = pad, crop

        def finish(x: torch.Tensor) -> torch.Tensor:
            return op.unshift(crop(x))

    rhs_d = to_domain(op.rhs)
    x = torch.zeros(rhs_d.shape, dtype=rhs_d.dtype, device=rhs_d.device)
    z = x
    t = 1.0
    for it in range(max_iter):
        grad = to_domain(op.normal(from_domain(z))) - rhs_d
        v = z - grad / lipschitz
        shift = _SPIN[it % len(_SPIN)] if cycle_spin else (0, 0)
        shift = (shift[0] % step, shift[1] % step)
        if shift != (0, 0):
            v = roll2d(v, *shift)
        coeffs = dwt2(v, levels, wavelet)
        x_new = idwt2(_soft_threshold(coeffs, threshold, keep), levels, wavelet)
        if shift != (0, 0):
            x_new = roll2d(x_new, -shift[0], -shift[1])
        t_new = (1 + math.sqrt(1 + 4 * t * t)) / 2
        z = x_new + ((t - 1) / t_new) * (x_new - x)
        x, t = x_new, t_new
    return finish(x)


def _grad(x: torch.Tensor) -> torch.Tensor:
    """Periodic forward differences of complex ``(B, 1, H, W)`` -> ``(B, 2, H, W)``."""
    return torch.cat((roll2d(x, -1, 0) - x, roll2d(x, 0, -1) - x), dim=1)


def _grad_adjoint(p: torch.Tensor) -> torch.Tensor:
    """Adjoint of :func:`_grad` (minus the divergence): ``(B, 2, H, W)`` -> ``(B, 1, H, W)``."""
    ph, pw = p[:, :1], p[:, 1:]
    return (roll2d(ph, 1, 0) - ph) + (roll2d(pw, 0, 1) - pw)


def cs_tv(
    kspace: torch.Tensor,
    sens_maps: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    lam: float = 0.003,
    max_iter: int = 100,
    relative_lam: bool = True,
) -> torch.Tensor:
    """Total-variation SENSE reconstruction by the Chambolle-Pock primal-dual algorithm.

    ``K = [A; D / sqrt(8)]`` with ``||K||^2 <= L + 1`` (``L`` the bound on ``||A^H A||``),
    steps ``sigma = tau = 1 / ||K||``; the dual of the data term has the closed-form prox
    ``(u - sigma y) / (1 + sigma)`` and the dual of the TV term is a projection onto the
    ``lam``-ball of each pixel's gradient.

    Args:
        kspace: measured k-space ``(B, C, H, W, 2)``.
        sens_maps: coil maps ``(B, C, H, W, 2)``.
        mask: sampling mask broadcastable to ``kspace`` (``None``: non-zero points).
        lam: TV weight, relative to the 99th percentile of ``|A^H y|`` when ``relative_lam``.
        max_iter: primal-dual iterations.
        relative_lam: see ``lam``.

    Returns:
        Complex images ``(B, 1, H, W, 2)``.
    """
    check_positive("lam", lam, allow_zero=True)
    check_positive("max_iter", max_iter, allow_zero=True, integer=True)
    kspace = check_kspace(kspace)
    sens_maps = check_maps(sens_maps, kspace)
    mask = check_mask(mask, kspace)
    chunks = cpu_chunks(kspace)
    if len(chunks) > 1:
        return torch.cat([
            cs_tv(kspace[rows], sens_maps[rows], batch_item(mask, rows, kspace.shape[0]), lam=lam,
                  max_iter=max_iter, relative_lam=relative_lam)
            for rows in chunks
        ])
    op = _setup(kspace, sens_maps, mask)
    # Periodic TV is invariant under the FFT shift, so the whole iteration runs shifted.  The
    # differences are scaled by 1 / sqrt(8) (||D|| <= sqrt(8)) and the weight by sqrt(8), so
    # that both blocks of K have norms near 1 and the steps are as long as possible.
    scale = 1.0 / math.sqrt(8.0)
    weight = lam / scale * (_scale(op.rhs) if relative_lam else torch.ones(()))
    tiny = torch.finfo(op.rhs.real.dtype).tiny
    weight = torch.as_tensor(weight, device=op.rhs.device).clamp_min(tiny)
    sigma = tau = 1.0 / (op.lipschitz + 1.0).sqrt()  # per slice, (B, 1, 1, 1)
    x = torch.zeros_like(op.rhs)
    x_bar = x
    u = torch.zeros_like(op.data)  # dual of the data term
    p = torch.zeros(x.shape[0], 2, *x.shape[2:], dtype=x.dtype, device=x.device)
    for _ in range(max_iter):
        u = (u + sigma * (op.forward(x_bar) - op.data)) / (1 + sigma)
        p = p + (sigma * scale) * _grad(x_bar)
        p = p / torch.clamp_min(p.abs().pow(2).sum(dim=1, keepdim=True).sqrt() / weight, 1.0)
        x_new = x - tau * (op.adjoint(u) + scale * _grad_adjoint(p))
        x_bar = 2 * x_new - x
        x = x_new
    return op.unshift(x)
