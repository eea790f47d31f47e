"""Tikhonov-regularised CG-SENSE (Pruessmann et al. 1999, 2001).

Solves ``min_x 1/2 ||M F S x - y||^2 + lam/2 ||x||^2`` through the normal equations
``(A^H A + lam I) x = A^H y`` by conjugate gradients, batched over slices: the problem of
sigpy's ``SenseRecon(y, mps, lamda=lam, weights=mask)``.  The operator is applied in the
FFT-shifted domain on complex tensors (:mod:`recon.classical._operator`), two FFTs per
iteration.
"""

from __future__ import annotations

import torch

from recon.classical._checks import check_kspace, check_maps, check_mask, check_positive
from recon.classical._operator import ShiftedSense, batch_item, cpu_chunks
from recon.ops import conjugate_gradient

__all__ = ["cg_sense"]


def cg_sense(
    kspace: torch.Tensor,
    sens_maps: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    lam: float = 1e-3,
    max_iter: int = 30,
    tol: float = 1e-5,
    relative_lam: bool = True,
) -> torch.Tensor:
    """Complex SENSE image by conjugate gradients on the Tikhonov normal equations.

    Args:
        kspace: measured k-space ``(B, C, H, W, 2)``.
        sens_maps: coil maps ``(B, C, H, W, 2)`` (e.g. :func:`espirit_maps`).
        mask: sampling mask broadcastable to ``kspace``; ``None``: the non-zero points of
            ``kspace`` are taken as the samples.
        lam: Tikhonov weight.  With ``relative_lam`` (default) it is relative to the largest
            eigenvalue of ``A^H A`` bounded by ``max_r sum_c |S_c(r)|^2`` (1 for ESPIRiT maps),
            so the default needs no tuning for differently scaled maps; with
            ``relative_lam=False`` it is used as given (sigpy's ``lamda``).
        max_iter: number of CG iterations (at most).
        tol: stop a slice once its residual norm is below ``tol * ||A^H y||`` (0: run all
            ``max_iter`` iterations, as sigpy does).
        relative_lam: see ``lam``.

    Returns:
        Complex images ``(B, 1, H, W, 2)``.

    Example:
        >>> kspace = torch.randn(1, 4, 32, 32, 2)
        >>> maps = torch.randn(1, 4, 32, 32, 2)
        >>> cg_sense(kspace, maps).shape
        torch.Size([1, 1, 32, 32, 2])
    """
    kspace = check_kspace(kspace)
    sens_maps = check_maps(sens_maps, kspace)
    mask = check_mask(mask, kspace)
    check_positive("lam", lam, allow_zero=True)
    check_positive("max_iter", max_iter, allow_zero=True, integer=True)
    check_positive("tol", tol, allow_zero=True)
    if mask is None:
        mask = (kspace != 0).any(dim=-1, keepdim=True).any(dim=1, keepdim=True).to(kspace.dtype)
    out = []
    for rows in cpu_chunks(kspace):
        op = ShiftedSense(kspace[rows], sens_maps[rows], batch_item(mask, rows, kspace.shape[0]))
        damping = lam * op.lipschitz if relative_lam else lam
        x = conjugate_gradient(op.normal, op.rhs, max_iter=max_iter, tol=tol, damping=damping)
        out.append(op.unshift(x))
    return torch.cat(out)
