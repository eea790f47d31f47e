"""The SENSE operator in the FFT-shifted domain, on ``torch.complex`` tensors (private).

The iterative solvers apply ``A^H A`` tens of times per slice, so the operator is arranged to
cost two plain FFTs per application and nothing else.  With ``P = fftshift`` and
``Q = ifftshift`` the centered transform is ``F_c = P F Q`` and ``F_c^H = P F^H Q``, hence

    ``A^H A x = S^H P F^H Q(M) F Q(S) Q(x)``, i.e. ``Q(A^H A x) = Q(S)^H F^H Q(M) F Q(S) Q(x)``:

storing the maps and the mask shifted once, the solvers iterate on ``Q(x)`` with unshifted
FFTs.  This is :class:`recon.ops.SenseOp` (which the tests compare it with), only faster;
the public functions take and return real views as everywhere else in recon.
"""

from __future__ import annotations

import torch

from recon.ops.complex import as_complex, as_real_view
from recon.ops.fft import fftshift, ifftshift

__all__ = ["ShiftedSense", "cpu_chunks", "roll2d"]


def roll2d(x: torch.Tensor, shift_h: int, shift_w: int) -> torch.Tensor:
    """``torch.roll(x, (shift_h, shift_w), dims=(-2, -1))`` as four block copies (2-3x faster
    than ``torch.roll`` on the CPU, which the solvers call several times per iteration)."""
    height, width = x.shape[-2:]
    sh, sw = shift_h % height, shift_w % width
    if sh == 0 and sw == 0:
        return x.clone()
    out = torch.empty_like(x)
    out[..., sh:, sw:] = x[..., : height - sh, : width - sw]
    out[..., :sh, sw:] = x[..., height - sh :, : width - sw]
    out[..., sh:, :sw] = x[..., : height - sh, width - sw :]
    out[..., :sh, :sw] = x[..., height - sh :, width - sw :]
    return out

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


def batch_item(mask: torch.Tensor | None, rows: slice, batch: int) -> torch.Tensor | None:
    """The rows of a mask broadcastable to ``(B, C, H, W, 2)`` that belong to batch rows ``rows``."""
    if mask is None or mask.ndim < 5 or mask.shape[0] != batch or batch == 1:
        return mask
    return mask[rows]


class ShiftedSense:
    """``A = M F_c S`` acting on FFT-shifted complex images.

    Args:
        kspace: measured k-space ``(B, C, H, W, 2)`` (real view).
        sens_maps: ``(B, C, H, W, 2)``.
        mask: 0/1 tensor broadcastable to ``(B, C, H, W, 2)`` with a trailing dim of 1 or 2.
    """

    def __init__(self, kspace: torch.Tensor, sens_maps: torch.Tensor, mask: torch.Tensor) -> None:
        cdtype = torch.complex128 if kspace.dtype == torch.float64 else torch.complex64
        dims = (-2, -1)
        self.maps = ifftshift(as_complex(sens_maps).to(cdtype), dims)  # (B, C, H, W)
        batch, _, height, width, _ = kspace.shape
        mask2d = mask[..., 0].to(kspace.dtype)
        mask2d = mask2d.reshape((1,) * (4 - mask2d.ndim) + tuple(mask2d.shape))
        if mask2d.shape[1] > 1:
            mask2d = mask2d.amax(dim=1, keepdim=True)
        mask2d = torch.broadcast_to(mask2d, (batch, 1, height, width))
        mask2d = ifftshift(mask2d.contiguous(), dims)  # (B, 1, H, W) real
        data = ifftshift(as_complex(kspace).to(cdtype), dims) * mask2d
        # A column mask (constant along H) commutes with the FFT along H, which is unitary, so
        # ``||M F S x - y|| = ||M F_W S x - F_H^H y||``: the operator needs FFTs along W only
        # and the data are kept in hybrid (y, k_x) space.
        self.columns = bool((mask2d == mask2d[:, :, :1]).all())
        if self.columns:
            self.mask = mask2d[:, :, :1].contiguous()  # (B, 1, 1, W)
            data = torch.fft.ifft(data, dim=-2, norm="ortho")
        else:
            self.mask = mask2d
        self.maps_conj = self.maps.conj().resolve_conj()
        self.data = data
        self.rhs = self.adjoint(data)
        # per-slice bound on ||A^H A||: max_r sum_c |S_c(r)|^2, shape (B, 1, 1, 1)
        self.lipschitz = (self.maps.abs() ** 2).sum(dim=1).flatten(1).amax(dim=1).view(-1, 1, 1, 1)

    def _fft(self, x: torch.Tensor) -> torch.Tensor:
        if self.columns:
            return torch.fft.fft(x, dim=-1, norm="ortho")
        return torch.fft.fft2(x, norm="ortho")

    def _ifft(self, x: torch.Tensor) -> torch.Tensor:
        if self.columns:
            return torch.fft.ifft(x, dim=-1, norm="ortho")
        return torch.fft.ifft2(x, norm="ortho")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Shifted image ``(B, 1, H, W)`` -> masked coil data ``(B, C, H, W)`` (k-space, or
        hybrid ``(y, k_x)`` space for column masks: the space of :attr:`data`)."""
        return self._fft(self.maps * x).mul_(self.mask)

    def adjoint(self, k: torch.Tensor) -> torch.Tensor:
        """Coil data in the space of :attr:`data` -> shifted image ``(B, 1, H, W)``."""
        return self._ifft(k * self.mask).mul_(self.maps_conj).sum(dim=1, keepdim=True)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """``Q(A^H A Q^-1 x)`` for a shifted image ``x`` ``(B, 1, H, W)`` complex."""
        k = self._fft(self.maps * x).mul_(self.mask)
        return self._ifft(k).mul_(self.maps_conj).sum(dim=1, keepdim=True)

    @staticmethod
    def unshift(x: torch.Tensor) -> torch.Tensor:
        """Shifted complex image ``(B, 1, H, W)`` -> real view ``(B, 1, H, W, 2)`` in place."""
        return as_real_view(fftshift(x, (-2, -1))).contiguous()

    @staticmethod
    def to_image(x: torch.Tensor) -> torch.Tensor:
        """Shifted complex ``(B, 1, H, W)`` -> unshifted complex (``fftshift``)."""
        return roll2d(x, x.shape[-2] // 2, x.shape[-1] // 2)

    @staticmethod
    def to_shifted(x: torch.Tensor) -> torch.Tensor:
        """Unshifted complex ``(B, 1, H, W)`` -> shifted complex (``ifftshift``)."""
        return roll2d(x, (x.shape[-2] + 1) // 2, (x.shape[-1] + 1) // 2)
