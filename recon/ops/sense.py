"""The SENSE model as a linear operator and a batched conjugate-gradient solver.

``A x = M F (S x)``: an image ``x`` ``(B, 1, H, W, 2)`` is multiplied by the coil maps ``S``
``(B, C, H, W, 2)``, Fourier transformed (centered, orthonormal) and masked.  The adjoint is
``A^H y = sum_c conj(S_c) F^-1 (M y_c)`` and the normal operator ``A^H A``.
"""

from __future__ import annotations

from typing import Callable

import torch

from recon.ops._checks import check_complex_view, check_mask_broadcasts, check_tensor
from recon.ops.coils import sens_expand, sens_reduce

__all__ = ["SenseOp", "conjugate_gradient"]


class SenseOp:
    """Multi-coil SENSE operator ``A = M F S``.

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

    @property
    def image_shape(self) -> tuple[int, ...]:
        return (*self.sens_maps.shape[:-4], 1, *self.sens_maps.shape[-3:])

    @property
    def kspace_shape(self) -> tuple[int, ...]:
        return tuple(self.sens_maps.shape)

    def _masked(self, kspace: torch.Tensor) -> torch.Tensor:
        return kspace if self.mask is None else kspace * self.mask

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, 1, H, W, 2)`` image -> masked coil k-space ``(B, C, H, W, 2)``."""
        return self._masked(sens_expand(image, self.sens_maps))

    def adjoint(self, kspace: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W, 2)`` coil k-space -> combined image ``(B, 1, H, W, 2)``."""
        return sens_reduce(self._masked(kspace), self.sens_maps)

    def normal(self, image: torch.Tensor) -> torch.Tensor:
        """``A^H A x`` (the mask is idempotent, so it is applied once)."""
        return sens_reduce(self._masked(sens_expand(image, self.sens_maps)), self.sens_maps)

    __call__ = forward


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
    normal: Callable[[torch.Tensor], torch.Tensor],
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
        normal: the operator ``N``, a function of a tensor shaped like ``rhs``.
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
