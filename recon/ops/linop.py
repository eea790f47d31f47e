"""Linear operators and their algebra (sigpy's idea, batched torch, fastMRI's real-view layout).

A :class:`LinearOperator` knows its ``forward`` ``A x``, its ``adjoint`` ``A^H y`` and its
``normal`` ``A^H A x``; ``A.H`` is the adjoint operator, ``A @ B`` the composition, ``A + B``
the sum, ``c * A`` a real scalar multiple and :func:`vstack` ``[A; B]`` the vertical stack (its
output is a tuple).  Operators hold only their constant factors (maps, masks), never problem
state; the solvers in :mod:`recon.classical` take any of them.

Concrete operators (real views ``(..., 2)`` unless said otherwise):

* :class:`FFT`: centered orthonormal 2-D / 3-D Fourier transform (unitary);
* :class:`CoilSensitivities`: image ``(B, 1, H, W, 2)`` -> coil images ``S_c x`` ``(B, C, H, W, 2)``;
* :class:`Sampling`: multiplication by a 0/1 mask (self-adjoint, idempotent);
* :class:`FiniteDifference`: periodic forward differences along two dims, stacked in dim 1
  (the TV gradient), on real views or ``torch.complex`` tensors;
* :class:`Wavelet`: orthonormal periodic Daubechies transform of the last two dims of real
  tensors (unitary; :mod:`recon.ops.wavelet`).

Example:
    >>> maps = torch.randn(1, 4, 32, 32, 2)
    >>> mask = torch.ones(1, 1, 1, 32, 1)
    >>> sense = Sampling(mask) @ FFT() @ CoilSensitivities(maps)
    >>> sense(torch.randn(1, 1, 32, 32, 2)).shape
    torch.Size([1, 4, 32, 32, 2])
"""

from __future__ import annotations

import numbers
from typing import Sequence

import torch

from recon.ops._checks import check_complex_view, check_tensor, describe
from recon.ops.complex import multiply
from recon.ops.fft import fft2c, fft3c, ifft2c, ifft3c
from recon.ops.wavelet import WAVELETS, dwt2, idwt2

__all__ = [
    "LinearOperator", "Identity", "Adjoint", "Compose", "Sum", "Scale", "VStack", "vstack",
    "FFT", "CoilSensitivities", "Sampling", "FiniteDifference", "Wavelet", "roll2d",
]


class LinearOperator:
    """Base class: subclasses define :meth:`forward` and :meth:`adjoint` (and may override
    :meth:`normal` with a cheaper ``A^H A``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """``A^H A x``."""
        return self.adjoint(self.forward(x))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)

    @property
    def H(self) -> LinearOperator:  # noqa: N802 - the mathematical name
        """The adjoint operator ``A^H``."""
        return Adjoint(self)

    def __matmul__(self, other: LinearOperator) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return Compose(self, other)

    def __add__(self, other: LinearOperator) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return Sum(self, other)

    def __mul__(self, scalar: float | torch.Tensor) -> LinearOperator:
        return Scale(self, scalar)

    __rmul__ = __mul__

    def __neg__(self) -> LinearOperator:
        return Scale(self, -1.0)

    def __sub__(self, other: LinearOperator) -> LinearOperator:
        return self + (-other)


class Identity(LinearOperator):
    """``I x = x``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    adjoint = normal = forward


class Adjoint(LinearOperator):
    """``A^H`` of an operator ``A`` (``A.H``)."""

    def __init__(self, op: LinearOperator) -> None:
        self.op = op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op.adjoint(x)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.op.forward(y)

    @property
    def H(self) -> LinearOperator:  # noqa: N802
        return self.op


class Compose(LinearOperator):
    """``A @ B``: ``x -> A(B(x))``; the normal operator is ``B^H (A^H A) B``."""

    def __init__(self, outer: LinearOperator, inner: LinearOperator) -> None:
        self.outer, self.inner = outer, inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outer.forward(self.inner.forward(x))

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.inner.adjoint(self.outer.adjoint(y))

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner.adjoint(self.outer.normal(self.inner.forward(x)))


class Sum(LinearOperator):
    """``A + B`` (same input and output spaces)."""

    def __init__(self, first: LinearOperator, second: LinearOperator) -> None:
        self.first, self.second = first, second

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.first.forward(x) + self.second.forward(x)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.first.adjoint(y) + self.second.adjoint(y)


class Scale(LinearOperator):
    """``c A`` for a real scalar ``c`` (a number, or a real tensor broadcastable to the
    output, e.g. one factor per batch element)."""

    def __init__(self, op: LinearOperator, scalar: float | torch.Tensor) -> None:
        real_tensor = isinstance(scalar, torch.Tensor) and not scalar.is_complex()
        if not (real_tensor or (isinstance(scalar, numbers.Real) and not isinstance(scalar, bool))):
            raise TypeError(f"an operator can be scaled by a real number or real tensor, got {describe(scalar)}")
        self.op, self.scalar = op, scalar

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scalar * self.op.forward(x)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.scalar * self.op.adjoint(y)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        return (self.scalar * self.scalar) * self.op.normal(x)


class VStack(LinearOperator):
    """``[A_1; ...; A_n]``: ``x -> (A_1 x, ..., A_n x)``; the adjoint sums ``A_i^H y_i``."""

    def __init__(self, ops: Sequence[LinearOperator]) -> None:
        if not ops or not all(isinstance(op, LinearOperator) for op in ops):
            raise TypeError(f"vstack needs a non-empty sequence of LinearOperators, got {ops!r}")
        self.ops = tuple(ops)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:  # type: ignore[override]
        return tuple(op.forward(x) for op in self.ops)

    def adjoint(self, ys: Sequence[torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        if len(ys) != len(self.ops):
            raise ValueError(f"the adjoint of a stack of {len(self.ops)} operators needs {len(self.ops)} inputs, got {len(ys)}")
        out = self.ops[0].adjoint(ys[0])
        for op, y in zip(self.ops[1:], ys[1:]):
            out = out + op.adjoint(y)
        return out

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        out = self.ops[0].normal(x)
        for op in self.ops[1:]:
            out = out + op.normal(x)
        return out


def vstack(ops: Sequence[LinearOperator]) -> VStack:
    """The vertical stack ``[A_1; ...; A_n]`` of operators with one input space."""
    return VStack(ops)


# ------------------------------------------------------------------------------ concrete operators


class FFT(LinearOperator):
    """Centered orthonormal FFT of real views: 2-D over ``(H, W)`` or 3-D over ``(D, H, W)``
    (:func:`recon.ops.fft2c` / :func:`recon.ops.fft3c`); unitary."""

    def __init__(self, ndim: int = 2) -> None:
        if ndim not in (2, 3):
            raise ValueError(f"ndim must be 2 or 3, got {ndim!r}")
        self.ndim = ndim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fft2c(x) if self.ndim == 2 else fft3c(x)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return ifft2c(y) if self.ndim == 2 else ifft3c(y)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        return x


class CoilSensitivities(LinearOperator):
    """``x -> (S_c x)_c``: image ``(B, 1, H, W, 2)`` -> coil images ``(B, C, H, W, 2)``;
    the adjoint is ``sum_c conj(S_c) y_c`` (the coil dimension is dim ``-4``)."""

    def __init__(self, sens_maps: torch.Tensor) -> None:
        self.sens_maps = check_complex_view("sens_maps", sens_maps, min_ndim=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return multiply(x, self.sens_maps, conj_y=False)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return multiply(y, self.sens_maps, conj_y=True).sum(dim=-4, keepdim=True)


class Sampling(LinearOperator):
    """Multiplication by a 0/1 mask broadcastable to the data, e.g. ``(B, 1, 1, W, 1)``:
    self-adjoint and idempotent (``M^H M = M``)."""

    def __init__(self, mask: torch.Tensor) -> None:
        self.mask = check_tensor("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask

    adjoint = normal = forward


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


class FiniteDifference(LinearOperator):
    """Periodic forward differences along two spatial dims, stacked in dim 1 (the TV gradient).

    ``D x = [x(r + e_h) - x(r); x(r + e_w) - x(r)]``: ``(B, 1, ...)`` -> ``(B, 2, ...)``;
    ``||D|| <= sqrt(8)``.

    Args:
        complex_view: the input is a real view ``(B, 1, H, W, 2)`` (differences over dims
            ``(-3, -2)``); ``False``: a real or ``torch.complex`` tensor ``(B, 1, H, W)``.
    """

    def __init__(self, complex_view: bool = True) -> None:
        self.complex_view = bool(complex_view)

    def _roll(self, x: torch.Tensor, shift_h: int, shift_w: int) -> torch.Tensor:
        if self.complex_view:
            return torch.roll(x, (shift_h, shift_w), dims=(-3, -2))
        return roll2d(x, shift_h, shift_w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self._roll(x, -1, 0) - x, self._roll(x, 0, -1) - x), dim=1)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        yh, yw = y[:, :1], y[:, 1:]
        return (self._roll(yh, 1, 0) - yh) + (self._roll(yw, 0, 1) - yw)


class Wavelet(LinearOperator):
    """Orthonormal periodic 2-D Daubechies transform of the last two dims of a real tensor
    whose sizes are multiples of ``2**levels`` (Mallat layout; unitary, adjoint = inverse)."""

    def __init__(self, levels: int, wavelet: str = "db4") -> None:
        if wavelet not in WAVELETS:
            raise ValueError(f"wavelet must be one of {sorted(WAVELETS)}, got {wavelet!r}")
        self.levels, self.wavelet = levels, wavelet

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dwt2(x, self.levels, self.wavelet)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return idwt2(y, self.levels, self.wavelet)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        return x
