"""One property harness for every linear operator in recon.ops.

Each entry gives (forward, adjoint, input shape, output shape, extra normal operator or None,
unitary?).  Checked for every entry: linearity, adjointness <A x, y> = <x, A^H y> (complex inner
product, float64), normal = adjoint o forward, and for unitary operators ||A x|| = ||x|| and
A^H A = I.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pytest
import torch

from recon.ops import (
    SenseOp,
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


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _maps(b: int, c: int, h: int, w: int) -> torch.Tensor:
    return torch.randn(b, c, h, w, 2, generator=_gen(7), dtype=torch.float64)


MAPS = _maps(2, 4, 9, 8)
MASK = (torch.rand(1, 1, 1, 8, 1, generator=_gen(3)) > 0.5).double()
SENSE = SenseOp(MAPS, MASK)
FACTOR = torch.randn(2, 3, 5, 4, 2, generator=_gen(11), dtype=torch.float64)

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
]


def _inner(a: torch.Tensor, b: torch.Tensor, complex_data: bool) -> complex:
    if not complex_data:
        return complex((a * b).sum().item())
    ac, bc = torch.view_as_complex(a.contiguous()), torch.view_as_complex(b.contiguous())
    return complex((ac * bc.conj()).sum().item())


@pytest.fixture(params=OPERATORS, ids=lambda op: op.name)
def op(request) -> LinOp:
    return request.param


def test_linearity(op):
    x = torch.randn(op.in_shape, generator=_gen(1), dtype=torch.float64)
    z = torch.randn(op.in_shape, generator=_gen(2), dtype=torch.float64)
    a, b = 1.7, -0.3
    lhs = op.forward(a * x + b * z)
    rhs = a * op.forward(x) + b * op.forward(z)
    assert lhs.shape == op.out_shape
    assert torch.allclose(lhs, rhs, atol=1e-10)


def test_adjointness(op):
    x = torch.randn(op.in_shape, generator=_gen(4), dtype=torch.float64)
    y = torch.randn(op.out_shape, generator=_gen(5), dtype=torch.float64)
    lhs = _inner(op.forward(x), y, op.complex_data)
    rhs = _inner(x, op.adjoint(y), op.complex_data)
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs)), (lhs, rhs)


def test_normal_is_adjoint_of_forward(op):
    x = torch.randn(op.in_shape, generator=_gen(6), dtype=torch.float64)
    expected = op.adjoint(op.forward(x))
    normal = op.normal(x) if op.normal is not None else expected
    assert torch.allclose(normal, expected, atol=1e-10)
    # A^H A is Hermitian positive semi-definite: <x, A^H A x> real and >= 0.
    quad = _inner(x, normal, op.complex_data)
    assert abs(quad.imag) <= 1e-9 * abs(quad.real) + 1e-12 and quad.real >= -1e-10


@pytest.mark.parametrize("op", [o for o in OPERATORS if o.unitary], ids=lambda o: o.name)
def test_unitary_operators_preserve_norm(op):
    x = torch.randn(op.in_shape, generator=_gen(8), dtype=torch.float64)
    assert torch.allclose(op.forward(x).norm(), x.norm(), rtol=1e-12)
    assert torch.allclose(op.adjoint(op.forward(x)), x, atol=1e-12)


def test_sense_normal_is_identity_with_full_sampling_and_normalised_maps():
    maps = _maps(1, 3, 6, 6)
    maps = maps / torch.sqrt((maps**2).sum(dim=(1, 4), keepdim=True))  # sum_c |S_c|^2 = 1
    x = torch.randn(1, 1, 6, 6, 2, dtype=torch.float64, generator=_gen(9))
    assert torch.allclose(SenseOp(maps).normal(x), x, atol=1e-12)
