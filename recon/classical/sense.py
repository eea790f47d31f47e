"""Tikhonov-regularised CG-SENSE (Pruessmann et al. 1999, 2001).

Solves ``min_x 1/2 ||M F S x - y||^2 + lam/2 ||x||^2`` through the normal equations
``(A^H A + lam I) x = A^H y`` by conjugate gradients, batched over slices: the problem of
sigpy's ``SenseRecon(y, mps, lamda=lam, weights=mask)``.  The operator is the fast
FFT-shifted form of :class:`recon.ops.SenseOp`, two FFTs per iteration.
"""

from __future__ import annotations

import torch

from recon.classical._checks import check_positive
from recon.classical.solvers import SenseProblem, conjugate_gradient, solve_sense

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

    Raises:
        ValueError: bad shapes or values, or maps that are zero everywhere in a slice.

    Example:
        >>> kspace = torch.randn(1, 4, 32, 32, 2)
        >>> maps = torch.randn(1, 4, 32, 32, 2)
        >>> cg_sense(kspace, maps).shape
        torch.Size([1, 1, 32, 32, 2])
    """
    check_positive("lam", lam, allow_zero=True)
    check_positive("max_iter", max_iter, allow_zero=True, integer=True)
    check_positive("tol", tol, allow_zero=True)

    def solve(problem: SenseProblem) -> torch.Tensor:
        damping = lam * problem.lipschitz if relative_lam else lam
        return conjugate_gradient(problem.op, problem.rhs, max_iter=max_iter, tol=tol, damping=damping)

    return solve_sense(solve, kspace, sens_maps, mask)
