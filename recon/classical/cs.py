"""Compressed sensing: L1-wavelet (FISTA) and total variation (primal-dual) SENSE reconstructions.

Both solve ``min_x 1/2 ||M F S x - y||^2 + lam R(x)`` for a complex image ``x``, batched over
slices:

* :func:`cs_wavelet`: ``R(x) = ||Psi x||_1`` with an orthonormal periodic Daubechies wavelet
  ``Psi`` (:mod:`recon.ops.wavelet`), the coarsest approximation band left unpenalised;
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

from recon.classical._checks import check_positive
from recon.classical.solvers import SenseProblem, fista, primal_dual, solve_sense
from recon.ops import FiniteDifference, LinearOperator, ShiftedSense, Wavelet, vstack
from recon.ops.linop import roll2d
from recon.ops.wavelet import WAVELETS, approximation_mask, max_level

__all__ = ["cs_wavelet", "cs_tv"]

# Offsets of the wavelet grid for cycle spinning: a fixed, well-spread sequence.
_SPIN = ((0, 0), (3, 5), (6, 2), (1, 7), (4, 4), (7, 1), (2, 6), (5, 3))


def _scale(image: torch.Tensor) -> torch.Tensor:
    """Per-slice 99th percentile of ``|image|`` (complex ``(B, ...)``) -> ``(B, 1, ..., 1)``."""
    mag = image.abs().flatten(1)
    q = torch.quantile(mag.float(), 0.99, dim=1).to(mag.dtype)
    q = torch.where(q > 0, q, mag.amax(dim=1).clamp_min(torch.finfo(mag.dtype).tiny))
    return q.view(-1, *([1] * (image.ndim - 1)))


class _WaveletDomain(LinearOperator):
    """The unknown of the L1-wavelet problem -> the shifted complex image of the SENSE operator.

    The unknown is a real ``(B, 2, Hp, Wp)`` image (real, imaginary planes) zero-padded to a
    multiple of ``2**levels``; its forward crops and FFT-shifts, its adjoint un-shifts and pads
    (a unitary embedding).  Without padding the unknown is the FFT-shifted image itself (the
    wavelet grid is then offset by ``(H // 2, W // 2)``, one more fixed shift), saving two
    shifts and copies per step.
    """

    def __init__(self, size: tuple[int, int], padded: tuple[int, int]) -> None:
        (self.height, self.width), (self.pad_h, self.pad_w) = size, padded
        self.top, self.left = (self.pad_h - self.height) // 2, (self.pad_w - self.width) // 2
        self.padded = padded != size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.padded:
            return torch.complex(x[:, 0], x[:, 1]).unsqueeze(1)
        x = x[:, :, self.top : self.top + self.height, self.left : self.left + self.width]
        return ShiftedSense.to_shifted(torch.complex(x[:, :1], x[:, 1:]))

    def adjoint(self, image: torch.Tensor) -> torch.Tensor:
        if not self.padded:
            return torch.view_as_real(image[:, 0]).permute(0, 3, 1, 2)  # (B, 2, H, W) view
        image = ShiftedSense.to_image(image)
        out = image.real.new_zeros(image.shape[0], 2, self.pad_h, self.pad_w)
        out[:, :1, self.top : self.top + self.height, self.left : self.left + self.width] = image.real
        out[:, 1:, self.top : self.top + self.height, self.left : self.left + self.width] = image.imag
        return out


class _WaveletShrinkage:
    """Prox of ``threshold * ||Psi R_s x||_1`` (coarsest band unpenalised): complex soft-threshold
    of the wavelet coefficients, the grid rolled by the cycle-spinning offset ``s`` of the iteration."""

    def __init__(self, wavelet: Wavelet, threshold: torch.Tensor, keep: torch.Tensor, cycle_spin: bool) -> None:
        self.wavelet, self.threshold, self.keep, self.cycle_spin = wavelet, threshold, keep, cycle_spin
        self.step = 2**wavelet.levels

    def __call__(self, v: torch.Tensor, iteration: int) -> torch.Tensor:
        shift = _SPIN[iteration % len(_SPIN)] if self.cycle_spin else (0, 0)
        shift = (shift[0] % self.step, shift[1] % self.step)
        if shift != (0, 0):
            v = roll2d(v, *shift)
        coeffs = self.wavelet.forward(v)  # (B, 2, H, W): real, imag in dim 1
        mag = coeffs.pow(2).sum(dim=1, keepdim=True).sqrt()
        factor = (1 - self.threshold / mag.clamp_min(torch.finfo(coeffs.dtype).tiny)).clamp_min(0)
        x = self.wavelet.adjoint(coeffs * torch.where(self.keep, torch.ones_like(factor), factor))
        return roll2d(x, -shift[0], -shift[1]) if shift != (0, 0) else x


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
    size = tuple(kspace.shape[-3:-1]) if isinstance(kspace, torch.Tensor) else (0, 0)
    if levels is None:
        levels = max(1, min(5, max_level(min(size), wavelet)))
    step = 2**levels
    padded = (math.ceil(size[0] / step) * step, math.ceil(size[1] / step) * step)
    domain = _WaveletDomain(size, padded)

    def solve(problem: SenseProblem) -> torch.Tensor:
        threshold = lam / problem.lipschitz * (_scale(problem.rhs).view(-1, 1, 1, 1) if relative_lam else 1.0)
        keep = approximation_mask(padded, levels, device=problem.rhs.device)
        shrink = _WaveletShrinkage(Wavelet(levels, wavelet), threshold, keep, cycle_spin)
        x = fista(problem.op @ domain, domain.adjoint(problem.rhs), problem.lipschitz, shrink, max_iter)
        return domain.forward(x)

    return solve_sense(solve, kspace, sens_maps, mask)


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
    ``lam``-ball of each pixel's gradient.  Periodic TV is invariant under the FFT shift, so
    the whole iteration runs shifted.  The differences are scaled by ``1 / sqrt(8)`` and the
    weight by ``sqrt(8)``, so that both blocks of ``K`` have norms near 1.

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
    scale = 1.0 / math.sqrt(8.0)

    def solve(problem: SenseProblem) -> torch.Tensor:
        rhs = problem.rhs
        weight = lam / scale * (_scale(rhs) if relative_lam else torch.ones(()))
        weight = torch.as_tensor(weight, device=rhs.device).clamp_min(torch.finfo(rhs.real.dtype).tiny)
        sigma = tau = 1.0 / (problem.lipschitz + 1.0).sqrt()  # per slice, (B, 1, 1, 1)
        sigma_data = sigma * problem.data

        def data_prox(v: torch.Tensor) -> torch.Tensor:  # prox of sigma f*, f = 1/2 ||. - y||^2
            return (v - sigma_data) / (1 + sigma)

        def tv_prox(p: torch.Tensor) -> torch.Tensor:  # projection onto the weight-ball per pixel
            return p / torch.clamp_min(p.abs().pow(2).sum(dim=1, keepdim=True).sqrt() / weight, 1.0)

        op = vstack([problem.op, scale * FiniteDifference(complex_view=False)])
        duals = (torch.zeros_like(problem.data), rhs.new_zeros(rhs.shape[0], 2, *rhs.shape[2:]))
        return primal_dual(op, (data_prox, tv_prox), torch.zeros_like(rhs), duals, tau, sigma, max_iter)

    return solve_sense(solve, kspace, sens_maps, mask)
