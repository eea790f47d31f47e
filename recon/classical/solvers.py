"""Iterative solvers on any :class:`~recon.ops.LinearOperator`, batched over dim 0, and the
SENSE problem every classical reconstruction solves.

* :func:`~recon.ops.conjugate_gradient` (from :mod:`recon.ops`): ``(A^H A + lam I) x = b``;
* :func:`fista`: ``min_x 1/2 ||A x - y||^2 + g(x)`` given ``A^H y`` and the prox of ``g``;
* :func:`primal_dual`: Chambolle-Pock for ``min_x sum_i f_i(K_i x)`` with ``K = [K_1; ...]``
  a :func:`~recon.ops.vstack`, given the proximal maps of the conjugates ``f_i^*``.

:func:`solve_sense` validates the inputs once, infers the mask from the non-zero k-space
when none is given, builds a :class:`SenseProblem` (the fast FFT-shifted form of
:class:`~recon.ops.SenseOp`, the data, ``A^H y`` and the bound on ``||A^H A||``) per
cache-sized group of slices, and hands it to a solver.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from recon.classical._checks import check_kspace, check_maps, check_mask
from recon.ops import LinearOperator, SenseOp, ShiftedSense, VStack, conjugate_gradient
from recon.ops._checks import sampled_points

__all__ = ["conjugate_gradient", "fista", "primal_dual", "SenseProblem", "solve_sense", "cpu_chunks"]

Prox = Callable[[torch.Tensor], torch.Tensor]


def fista(
    op: LinearOperator,
    rhs: torch.Tensor,
    lipschitz: float | torch.Tensor,
    prox: Callable[[torch.Tensor, int], torch.Tensor],
    max_iter: int,
) -> torch.Tensor:
    """FISTA (Beck & Teboulle 2009) from zero for ``min_x 1/2 ||A x - y||^2 + g(x)``.

    Args:
        op: ``A``; only ``op.normal`` is used.
        rhs: ``A^H y`` ``(B, ...)``.
        lipschitz: a bound on ``||A^H A||`` (a number or per batch element, broadcastable).
        prox: ``prox(v, iteration)``: the proximal map of ``g / lipschitz`` at ``v``.
        max_iter: iterations.

    Returns:
        ``x`` shaped like ``rhs``.
    """
    x = torch.zeros(rhs.shape, dtype=rhs.dtype, device=rhs.device)
    z, t = x, 1.0
    for it in range(max_iter):
        v = z - (op.normal(z) - rhs) / lipschitz
        x_new = prox(v, it)
        t_new = (1 + math.sqrt(1 + 4 * t * t)) / 2
        z = x_new + ((t - 1) / t_new) * (x_new - x)
        x, t = x_new, t_new
    return x


def primal_dual(
    op: VStack,
    dual_proxes: Sequence[Prox],
    x0: torch.Tensor,
    duals: Sequence[torch.Tensor],
    tau: float | torch.Tensor,
    sigma: float | torch.Tensor,
    max_iter: int,
) -> torch.Tensor:
    """Chambolle & Pock's primal-dual algorithm for ``min_x sum_i f_i(K_i x)``.

    ``y_i <- prox_{sigma f_i^*}(y_i + sigma K_i x_bar)``, ``x' = x - tau K^H y``,
    ``x_bar = 2 x' - x``; converges for ``sigma tau ||K||^2 < 1``.

    Args:
        op: ``K = [K_1; ...; K_n]``.
        dual_proxes: ``prox_{sigma f_i^*}`` for each block.
        x0: initial primal point.
        duals: initial dual points (shaped like ``K_i x``).
        tau: primal step; sigma: dual step (numbers or per batch element).
        max_iter: iterations.
    """
    x = x_bar = x0
    duals = list(duals)
    for _ in range(max_iter):
        duals = [prox(y + sigma * k) for prox, y, k in zip(dual_proxes, duals, op.forward(x_bar))]
        x_new = x - tau * op.adjoint(duals)
        x_bar = 2 * x_new - x
        x = x_new
    return x


# ------------------------------------------------------------------------------ the SENSE problem

#: on the CPU, slices are solved in groups whose coil data stay near this many complex values
#: (4 MB in complex64): the iterations are memory-bound and a group that stays in cache is
#: 1.5x faster than the whole batch at once (benchmarks/classical.py)
CPU_CHUNK_ELEMENTS = 1 << 19


def cpu_chunks(kspace: torch.Tensor) -> list[slice]:
    """Slices of the batch dim of ``kspace`` ``(B, C, H, W, 2)`` to solve together."""
    batch = kspace.shape[0]
    if kspace.device.type != "cpu":
        return [slice(0, batch)]
    step = max(1, CPU_CHUNK_ELEMENTS // max(1, kspace[0].numel() // 2))
    return [slice(i, min(batch, i + step)) for i in range(0, batch, step)]


@dataclass
class SenseProblem:
    """``min_x 1/2 ||A x - y||^2 + ...`` for a group of slices, in the FFT-shifted domain.

    Attributes:
        op: ``A`` (:class:`~recon.ops.ShiftedSense`) on shifted complex images ``(B, 1, H, W)``.
        data: ``y`` in the operator's output space.
        rhs: ``A^H y``.
        lipschitz: per-slice bound on ``||A^H A||``, ``(B, 1, 1, 1)``.
    """

    op: ShiftedSense
    data: torch.Tensor
    rhs: torch.Tensor
    lipschitz: torch.Tensor


def solve_sense(
    solve: Callable[[SenseProblem], torch.Tensor],
    kspace: torch.Tensor,
    sens_maps: torch.Tensor,
    mask: torch.Tensor | None,
) -> torch.Tensor:
    """Validate, set up the SENSE problem per group of slices and solve it.

    Args:
        solve: ``SenseProblem -> shifted complex image (B, 1, H, W)``.
        kspace: measured k-space ``(B, C, H, W, 2)``.
        sens_maps: coil maps ``(B, C, H, W, 2)``.
        mask: mask broadcastable to ``kspace``; ``None``: the non-zero points of ``kspace``.

    Returns:
        Complex images ``(B, 1, H, W, 2)``.

    Raises:
        ValueError: bad shapes, NaN/Inf, or maps that are zero everywhere in a slice.
    """
    kspace = check_kspace(kspace)
    sens_maps = check_maps(sens_maps, kspace)
    mask = check_mask(mask, kspace)
    if mask is None:
        mask = sampled_points(kspace).unsqueeze(-1).to(kspace.dtype)
    batch = kspace.shape[0]
    out = []
    for rows in cpu_chunks(kspace):
        part = mask if mask.ndim < 5 or mask.shape[0] != batch or batch == 1 else mask[rows]
        sense = SenseOp(sens_maps[rows], part)
        lipschitz = sense.normal_bound()
        if not bool((lipschitz > 0).all()):
            raise ValueError("sens_maps are zero everywhere (in at least one slice)")
        op = sense.shifted()
        data = op.measured(kspace[rows])
        out.append(op.unshift(solve(SenseProblem(op, data, op.adjoint(data), lipschitz))))
    return torch.cat(out)
