"""One property harness for every linear operator in recon.ops.

Each entry gives (forward, adjoint, input shape, output shape, extra normal operator or None,
unitary?); a tuple of output shapes is a vertical stack.  Checked for every entry: linearity,
adjointness <A x, y> = <x, A^H y> (complex inner product, float64), normal = adjoint o forward,
and for unitary operators ||A x|| = ||x|| and A^H A = I.  Every ``LinearOperator`` of
``recon.ops`` (the concrete ones, SENSE in both forms, and the algebra) is in the list; the
concrete ones are also checked against float64 numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pytest
import torch

import numpy as np

from recon.ops import (
    FFT,
    CoilSensitivities,
    FiniteDifference,
    Identity,
    LinearOperator,
    Sampling,
    SenseOp,
    Wavelet,
    vstack,
    center_crop,
    center_pad,
    complex_center_crop,
    complex_conj,
    complex_mul,
    fft2c,
    fft3c,
    ifft2c,
    ifft3c,
    sens_expand,
    sens_reduce,
)


@dataclass
class LinOp:
    name: str
    forward: Callable
    adjoint: Callable
    in_shape: tuple
    out_shape: tuple
    normal: Callable | None = None
    unitary: bool = False
    complex_data: bool = True
    dtype: torch.dtype = torch.float64


def _linop(name: str, op: LinearOperator, in_shape: tuple, out_shape: tuple, **kwargs) -> LinOp:
    return LinOp(name, op.forward, op.adjoint, in_shape, out_shape, normal=op.normal, **kwargs)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _maps(b: int, c: int, h: int, w: int) -> torch.Tensor:
    return torch.randn(b, c, h, w, 2, generator=_gen(7), dtype=torch.float64)


MAPS = _maps(2, 4, 9, 8)
MASK = (torch.rand(1, 1, 1, 8, 1, generator=_gen(3)) > 0.5).double()
SENSE = SenseOp(MAPS, MASK)
MASK_2D = (torch.rand(2, 1, 9, 8, 1, generator=_gen(12)) > 0.5).double()
FACTOR = torch.randn(2, 3, 5, 4, 2, generator=_gen(11), dtype=torch.float64)
FD = FiniteDifference()

OPERATORS = [
    LinOp("fft2c", fft2c, ifft2c, (2, 3, 8, 6, 2), (2, 3, 8, 6, 2), unitary=True),
    LinOp("fft2c-odd", fft2c, ifft2c, (2, 7, 5, 2), (2, 7, 5, 2), unitary=True),
    LinOp("ifft2c", ifft2c, fft2c, (3, 6, 9, 2), (3, 6, 9, 2), unitary=True),
    LinOp("fft3c", fft3c, ifft3c, (2, 4, 6, 8, 2), (2, 4, 6, 8, 2), unitary=True),
    LinOp("fft3c-odd", fft3c, ifft3c, (3, 5, 7, 2), (3, 5, 7, 2), unitary=True),
    LinOp("sens_expand", lambda x: sens_expand(x, MAPS), lambda y: sens_reduce(y, MAPS),
          (2, 1, 9, 8, 2), (2, 4, 9, 8, 2)),
    LinOp("SenseOp", SENSE.forward, SENSE.adjoint, (2, 1, 9, 8, 2), (2, 4, 9, 8, 2), normal=SENSE.normal),
    LinOp("complex_mul", lambda x: complex_mul(x, FACTOR), lambda y: complex_mul(y, complex_conj(FACTOR)),
          (2, 3, 5, 4, 2), (2, 3, 5, 4, 2)),
    LinOp("center_crop", lambda x: center_crop(x, (5, 4)), lambda y: center_pad(y, (9, 7)),
          (2, 9, 7), (2, 5, 4), complex_data=False),
    LinOp("complex_center_pad", lambda x: center_pad(x, (8, 9), complex_data=True),
          lambda y: complex_center_crop(y, (5, 4)), (2, 5, 4, 2), (2, 8, 9, 2)),
    # the LinearOperator classes
    _linop("FFT", FFT(), (2, 3, 7, 6, 2), (2, 3, 7, 6, 2), unitary=True),
    _linop("FFT-3d", FFT(3), (2, 3, 5, 6, 2), (2, 3, 5, 6, 2), unitary=True),
    _linop("CoilSensitivities", CoilSensitivities(MAPS), (2, 1, 9, 8, 2), (2, 4, 9, 8, 2)),
    _linop("Sampling", Sampling(MASK), (2, 4, 9, 8, 2), (2, 4, 9, 8, 2)),
    _linop("FiniteDifference", FD, (2, 1, 9, 8, 2), (2, 2, 9, 8, 2)),
    _linop("FiniteDifference-complex", FiniteDifference(complex_view=False), (2, 1, 9, 8), (2, 2, 9, 8),
           dtype=torch.complex128),
    _linop("Wavelet-db4", Wavelet(2, "db4"), (2, 2, 16, 12), (2, 2, 16, 12), unitary=True, complex_data=False),
    _linop("Wavelet-haar", Wavelet(3, "haar"), (3, 8, 16), (3, 8, 16), unitary=True, complex_data=False),
    _linop("SenseOp-2d-mask", SenseOp(MAPS, MASK_2D), (2, 1, 9, 8, 2), (2, 4, 9, 8, 2)),
    _linop("ShiftedSense-columns", SENSE.shifted(), (2, 1, 9, 8), (2, 4, 9, 8), dtype=torch.complex128),
    _linop("ShiftedSense-2d", SenseOp(MAPS, MASK_2D).shifted(), (2, 1, 9, 8), (2, 4, 9, 8),
           dtype=torch.complex128),
    _linop("compose", Sampling(MASK) @ FFT() @ CoilSensitivities(MAPS), (2, 1, 9, 8, 2), (2, 4, 9, 8, 2)),
    _linop("sum-scale", FFT() + 2.5 * Identity() - FFT().H, (2, 3, 5, 4, 2), (2, 3, 5, 4, 2)),
    _linop("adjoint", SENSE.H, (2, 4, 9, 8, 2), (2, 1, 9, 8, 2)),
    _linop("scale-tensor", torch.tensor([0.5, -2.0], dtype=torch.float64).view(2, 1, 1, 1, 1) * FD,
           (2, 1, 9, 8, 2), (2, 2, 9, 8, 2)),
    _linop("vstack", vstack([SENSE, 0.3 * FD]), (2, 1, 9, 8, 2), ((2, 4, 9, 8, 2), (2, 2, 9, 8, 2))),
]


def _rand(shape, seed: int, dtype: torch.dtype):
    if isinstance(shape[0], tuple):  # a stack: one tensor per block
        return tuple(_rand(s, seed + 100 * i, dtype) for i, s in enumerate(shape))
    return torch.randn(shape, generator=_gen(seed), dtype=dtype)


def _close(a, b, **kwargs) -> bool:
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_close(x, y, **kwargs) for x, y in zip(a, b))
    return torch.allclose(a, b, **kwargs)


def _shape(a):
    return tuple(_shape(x) for x in a) if isinstance(a, tuple) else tuple(a.shape)


def _inner(a: torch.Tensor, b: torch.Tensor, complex_data: bool) -> complex:
    if isinstance(a, tuple):
        return sum((_inner(x, y, complex_data) for x, y in zip(a, b)), 0j)
    if a.is_complex():
        return complex((a * b.conj()).sum().item())
    if not complex_data:
        return complex((a * b).sum().item())
    ac, bc = torch.view_as_complex(a.contiguous()), torch.view_as_complex(b.contiguous())
    return complex((ac * bc.conj()).sum().item())


@pytest.fixture(params=OPERATORS, ids=lambda op: op.name)
def op(request) -> LinOp:
    return request.param


def test_linearity(op):
    x = _rand(op.in_shape, 1, op.dtype)
    z = _rand(op.in_shape, 2, op.dtype)
    a, b = 1.7, -0.3
    lhs = op.forward(a * x + b * z)
    fx, fz = op.forward(x), op.forward(z)
    rhs = tuple(a * u + b * v for u, v in zip(fx, fz)) if isinstance(fx, tuple) else a * fx + b * fz
    assert _shape(lhs) == op.out_shape
    assert _close(lhs, rhs, atol=1e-10)


def test_adjointness(op):
    x = _rand(op.in_shape, 4, op.dtype)
    y = _rand(op.out_shape, 5, op.dtype)
    lhs = _inner(op.forward(x), y, op.complex_data)
    rhs = _inner(x, op.adjoint(y), op.complex_data)
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs)), (lhs, rhs)


def test_normal_is_adjoint_of_forward(op):
    x = _rand(op.in_shape, 6, op.dtype)
    expected = op.adjoint(op.forward(x))
    normal = op.normal(x) if op.normal is not None else expected
    assert torch.allclose(normal, expected, atol=1e-10)
    # A^H A is Hermitian positive semi-definite: <x, A^H A x> real and >= 0.
    quad = _inner(x, normal, op.complex_data)
    assert abs(quad.imag) <= 1e-9 * abs(quad.real) + 1e-12 and quad.real >= -1e-10


@pytest.mark.parametrize("op", [o for o in OPERATORS if o.unitary], ids=lambda o: o.name)
def test_unitary_operators_preserve_norm(op):
    x = _rand(op.in_shape, 8, op.dtype)
    assert torch.allclose(op.forward(x).norm(), x.norm(), rtol=1e-12)
    assert torch.allclose(op.adjoint(op.forward(x)), x, atol=1e-12)


def _np(x: torch.Tensor) -> np.ndarray:
    return torch.view_as_complex(x.contiguous()).numpy()


def test_concrete_operators_against_numpy():
    x = _rand((2, 1, 9, 8, 2), 20, torch.float64)
    xc = _np(x)
    maps, mask = _np(MAPS), MASK[..., 0].numpy()
    coil = maps * xc
    np.testing.assert_allclose(_np(CoilSensitivities(MAPS)(x)), coil, rtol=1e-12, atol=1e-12)
    kspace = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(coil, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    np.testing.assert_allclose(_np(FFT()(CoilSensitivities(MAPS)(x))), kspace, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_np(SENSE(x)), kspace * mask, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_np(Sampling(MASK)(x)), xc * mask, rtol=0, atol=0)
    grad = np.concatenate([np.roll(xc, -1, axis=-2) - xc, np.roll(xc, -1, axis=-1) - xc], axis=1)
    np.testing.assert_allclose(_np(FD(x)), grad, rtol=1e-12, atol=1e-12)
    # the shifted form is the same operator: Q(x) in, data in shifted (hybrid) space out
    shifted = SENSE.shifted()
    xs = shifted.to_shifted(torch.view_as_complex(x.contiguous()))
    np.testing.assert_allclose(shifted.unshift(shifted.normal(xs)).numpy(), SENSE.normal(x).numpy(), atol=1e-12)


def test_algebra_errors_and_identities():
    with pytest.raises(TypeError, match="scaled by a real number"):
        1j * FFT()
    with pytest.raises(TypeError, match="non-empty sequence of LinearOperators"):
        vstack([])
    with pytest.raises(ValueError, match="needs 2 inputs"):
        vstack([FFT(), FFT()]).adjoint([torch.zeros(1, 2, 2, 2)])
    with pytest.raises(ValueError, match="ndim must be 2 or 3"):
        FFT(4)
    with pytest.raises(ValueError, match="wavelet must be one of"):
        Wavelet(2, "sym4")
    op = FFT()
    assert op.H.H is op
    x = _rand((1, 2, 6, 5, 2), 30, torch.float64)
    assert torch.allclose((op.H @ op)(x), x, atol=1e-12)



def test_sense_normal_is_identity_with_full_sampling_and_normalised_maps():
    maps = _maps(1, 3, 6, 6)
    maps = maps / torch.sqrt((maps**2).sum(dim=(1, 4), keepdim=True))  # sum_c |S_c|^2 = 1
    x = torch.randn(1, 1, 6, 6, 2, dtype=torch.float64, generator=_gen(9))
    assert torch.allclose(SenseOp(maps).normal(x), x, atol=1e-12)
