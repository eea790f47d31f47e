"""The SENSE model as a linear operator, with its fast FFT-shifted form, and batched CG.

``A x = M F (S x)``: an image ``x`` ``(B, 1, H, W, 2)`` is multiplied by the coil maps ``S``
``(B, C, H, W, 2)``, Fourier transformed (centered, orthonormal) and masked.  :class:`SenseOp`
is exactly the composition ``Sampling(M) @ FFT() @ CoilSensitivities(S)``.

The iterative solvers apply ``A^H A`` tens of times per slice, so :meth:`SenseOp.shifted`
gives the same operator arranged to cost two plain FFTs per application and nothing else
(:class:`ShiftedSense`).  With ``P = fftshift`` and ``Q = ifftshift`` the centered transform
is ``F_c = P F Q`` and ``F_c^H = P F^H Q``, hence ``Q(A^H A x) = Q(S)^H F^H Q(M) F Q(S) Q(x)``:
with the maps and the mask shifted once, the solvers iterate on ``Q(x)`` (``torch.complex``)
with unshifted FFTs; a column mask also commutes with the FFT along ``H``, so then only FFTs
along ``W`` are needed and the data live in hybrid ``(y, k_x)`` space.
"""

from __future__ import annotations

from typing import Callable, Union

import torch

from recon.ops._checks import check_complex_view, check_mask_broadcasts, check_tensor
from recon.ops.complex import as_complex, as_real_view
from recon.ops.fft import fftshift, ifftshift
from recon.ops.linop import FFT, CoilSensitivities, Compose, Identity, LinearOperator, Sampling, roll2d

__all__ = ["SenseOp", "ShiftedSense", "conjugate_gradient"]


class SenseOp(Compose):
    """Multi-coil SENSE operator ``A = M F S`` = ``Sampling(M) @ FFT() @ CoilSensitivities(S)``.

    Args:
        sens_maps: coil sensitivities ``(B, C, H, W, 2)``.
        mask: sampling mask broadcastable to ``(B, C, H, W, 2)`` (bool or {0, 1}), or ``None``
            for full sampling.

    Example:
        >>> maps = torch.randn(1, 4, 32, 32, 2)
        >>> op = SenseOp(maps, mask=torch.ones(1, 1, 1, 32, 1))
        >>> op.forward(torch.randn(1, 1, 32, 32, 2)).shape
        torch.Size([1, 4, 32, 32, 2])
    """

    def __init__(self, sens_maps: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        check_complex_view("sens_maps", sens_maps, min_ndim=4)
        if mask is not None:
            check_mask_broadcasts(mask, sens_maps.shape, "the coil k-space")
            mask = mask.to(dtype=sens_maps.dtype, device=sens_maps.device)
        self.sens_maps = sens_maps
        self.mask = mask
        sampling = Identity() if mask is None else Sampling(mask)
        super().__init__(Compose(sampling, FFT()), CoilSensitivities(sens_maps))

    def normal_bound(self) -> torch.Tensor:
        """Per-slice bound on ``||A^H A||``: ``max_r sum_c |S_c(r)|^2``, shape ``(B, 1, 1, 1)``."""
        return (as_complex(self.sens_maps).abs() ** 2).sum(dim=-3).flatten(1).amax(dim=1).view(-1, 1, 1, 1)

    def shifted(self) -> ShiftedSense:
        """This operator on FFT-shifted ``torch.complex`` images ``(B, 1, H, W)`` (the fast form)."""
        mask = self.mask if self.mask is not None else torch.ones((1,) * self.sens_maps.ndim, dtype=self.sens_maps.dtype)
        return ShiftedSense(self.sens_maps, mask)


class ShiftedSense(LinearOperator):
    """``A = M F_c S`` acting on FFT-shifted complex images ``(B, 1, H, W)``.

    Its data space is FFT-shifted k-space ``(B, C, H, W)`` (complex), or hybrid ``(y, k_x)``
    space for column masks (:attr:`columns`); :meth:`measured` maps measured k-space there.

    Args:
        sens_maps: ``(B, C, H, W, 2)``.
        mask: 0/1 tensor broadcastable to ``(B, C, H, W, 2)`` with a trailing dim of 1 or 2.
    """

    def __init__(self, sens_maps: torch.Tensor, mask: torch.Tensor) -> None:
        self.cdtype = torch.complex128 if sens_maps.dtype == torch.float64 else torch.complex64
        dims = (-2, -1)
        self.maps = ifftshift(as_complex(sens_maps).to(self.cdtype), dims)  # (B, C, H, W)
        batch, _, height, width, _ = sens_maps.shape
        mask2d = mask[..., 0].to(sens_maps.dtype)
        mask2d = mask2d.reshape((1,) * (4 - mask2d.ndim) + tuple(mask2d.shape))
        if mask2d.shape[1] > 1:
            mask2d = mask2d.amax(dim=1, keepdim=True)
        mask2d = torch.broadcast_to(mask2d, (batch, 1, height, width))
        mask2d = ifftshift(mask2d.contiguous(), dims)  # (B, 1, H, W) real
        self.columns = bool((mask2d == mask2d[:, :, :1]).all())
        self.mask = mask2d[:, :, :1].contiguous() if self.columns else mask2d  # (B, 1, 1, W) or (B, 1, H, W)
        self.maps_conj = self.maps.conj().resolve_conj()

    def measured(self, kspace: torch.Tensor) -> torch.Tensor:
        """Measured k-space ``(B, C, H, W, 2)`` (real view) -> masked data in this operator's
        output space (shifted; along ``H`` in image space for column masks)."""
        data = ifftshift(as_complex(kspace).to(self.cdtype), (-2, -1)) * self.mask
        return torch.fft.ifft(data, dim=-2, norm="ortho") if self.columns else data

    def _fft(self, x: torch.Tensor) -> torch.Tensor:
        if self.columns:
            return torch.fft.fft(x, dim=-1, norm="ortho")
        return torch.fft.fft2(x, norm="ortho")

    def _ifft(self, x: torch.Tensor) -> torch.Tensor:
        if self.columns:
            return torch.fft.ifft(x, dim=-1, norm="ortho")
        return torch.fft.ifft2(x, norm="ortho")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Shifted image ``(B, 1, H, W)`` -> masked coil data ``(B, C, H, W)``."""
        return self._fft(self.maps * x).mul_(self.mask)

    def adjoint(self, k: torch.Tensor) -> torch.Tensor:
        """Coil data ``(B, C, H, W)`` -> shifted image ``(B, 1, H, W)``."""
        return self._ifft(k * self.mask).mul_(self.maps_conj).sum(dim=1, keepdim=True)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """``Q(A^H A Q^-1 x)`` for a shifted image ``x`` ``(B, 1, H, W)`` (the mask applied once)."""
        k = self._fft(self.maps * x).mul_(self.mask)
        return self._ifft(k).mul_(self.maps_conj).sum(dim=1, keepdim=True)

    @staticmethod
    def unshift(x: torch.Tensor) -> torch.Tensor:
        """Shifted complex image ``(B, 1, H, W)`` -> real view ``(B, 1, H, W, 2)``."""
        return as_real_view(fftshift(x, (-2, -1))).contiguous()

    @staticmethod
    def to_image(x: torch.Tensor) -> torch.Tensor:
        """Shifted complex ``(B, 1, H, W)`` -> unshifted complex (``fftshift``)."""
        return roll2d(x, x.shape[-2] // 2, x.shape[-1] // 2)

    @staticmethod
    def to_shifted(x: torch.Tensor) -> torch.Tensor:
        """Unshifted complex ``(B, 1, H, W)`` -> shifted complex (``ifftshift``)."""
        return roll2d(x, (x.shape[-2] + 1) // 2, (x.shape[-1] + 1) // 2)


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Real part of <a, b> per batch element, shape ``(B, 1, ..., 1)``.

    For real views ``(..., 2)`` the sum of products is ``Re <a, b>``; complex dtypes are
    conjugated explicitly.
    """
    dims = tuple(range(1, a.ndim))
    if a.is_complex():
        return (a.conj() * b).real.sum(dim=dims, keepdim=True)
    return (a * b).sum(dim=dims, keepdim=True)


def conjugate_gradient(
    normal: Union[LinearOperator, Callable[[torch.Tensor], torch.Tensor]],
    rhs: torch.Tensor,
    x0: torch.Tensor | None = None,
    max_iter: int = 30,
    tol: float = 1e-6,
    damping: float | torch.Tensor = 0.0,
) -> torch.Tensor:
    """Solve ``(N + damping I) x = rhs`` for each batch element by conjugate gradients.

    ``N`` must be Hermitian positive semi-definite (e.g. :meth:`SenseOp.normal`); with
    ``damping > 0`` this is Tikhonov-regularised least squares.  Every batch element has its
    own step sizes and stops contributing once its residual norm falls below
    ``tol * ||rhs||``.  Works on real views ``(..., 2)`` and on ``torch.complex`` tensors.

    Args:
        normal: the operator ``N``: a function of a tensor shaped like ``rhs``, or a
            :class:`~recon.ops.linop.LinearOperator` ``A`` (then ``N = A^H A``).
        rhs: right-hand side ``(B, ...)``; dim 0 is the batch.
        x0: initial guess (zeros when ``None``).
        max_iter: maximum number of iterations.
        tol: relative residual tolerance.
        damping: Tikhonov weight ``lambda >= 0``: a number, or a tensor broadcastable to
            ``rhs`` (e.g. one weight per batch element, shape ``(B, 1, ..., 1)``).

    Returns:
        The solution, shaped like ``rhs``.
    """
    check_tensor("rhs", rhs)
    if isinstance(normal, LinearOperator):
        normal = normal.normal
    if max_iter < 0:
        raise ValueError(f"max_iter must be >= 0, got {max_iter}")
    if isinstance(damping, torch.Tensor):
        if bool((damping < 0).any()):
            raise ValueError(f"damping must be >= 0, got a tensor with minimum {damping.min().item()}")
        damped = True
    else:
        if damping < 0:
            raise ValueError(f"damping must be >= 0, got {damping}")
        damped = damping != 0

    def apply(v: torch.Tensor) -> torch.Tensor:
        out = normal(v)
        return out + damping * v if damped else out

    x = torch.zeros_like(rhs) if x0 is None else x0.clone()
    r = rhs - apply(x) if x0 is not None else rhs.clone()
    p = r.clone()
    rr = _dot(r, r)
    threshold = (tol**2) * _dot(rhs, rhs)
    tiny = torch.finfo(rr.dtype).tiny
    for _ in range(max_iter):
        active = rr > threshold
        if not bool(active.any()):
            break
        ap = apply(p)
        alpha = torch.where(active, rr / _dot(p, ap).clamp_min(tiny), torch.zeros_like(rr))
        x = x + alpha * p
        r = r - alpha * ap
        rr_new = _dot(r, r)
        beta = torch.where(active, rr_new / rr.clamp_min(tiny), torch.zeros_like(rr))
        p = r + beta * p
        rr = rr_new
    return x
