"""Complex helpers against numpy complex128."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recon.ops import (
    as_complex,
    as_real_view,
    complex_abs,
    complex_abs_sq,
    complex_conj,
    complex_mul,
    from_numpy,
    to_numpy,
)

RNG = np.random.default_rng(0)
A = RNG.standard_normal((3, 5, 7)) + 1j * RNG.standard_normal((3, 5, 7))
B = RNG.standard_normal((1, 5, 7)) + 1j * RNG.standard_normal((1, 5, 7))


def _t(z: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack((z.real, z.imag), -1))


def _np(x: torch.Tensor) -> np.ndarray:
    x = x.numpy()
    return x[..., 0] + 1j * x[..., 1]


def test_complex_mul_broadcasts_like_numpy():
    np.testing.assert_allclose(_np(complex_mul(_t(A), _t(B))), A * B, atol=1e-12)


def test_complex_conj_abs_abs_sq():
    np.testing.assert_allclose(_np(complex_conj(_t(A))), np.conj(A), atol=0)
    np.testing.assert_allclose(complex_abs(_t(A)).numpy(), np.abs(A), atol=1e-12)
    np.testing.assert_allclose(complex_abs_sq(_t(A)).numpy(), np.abs(A) ** 2, atol=1e-12)


def test_boundary_conversions_roundtrip():
    x = from_numpy(A, dtype=torch.float64)
    assert x.shape == (3, 5, 7, 2) and x.dtype == torch.float64
    np.testing.assert_array_equal(to_numpy(x), A)
    c = as_complex(x)
    assert c.dtype == torch.complex128 and torch.equal(as_real_view(c), x)
    assert torch.equal(as_real_view(x), x)  # real view passes through
    real = from_numpy(np.ones((2, 2)))
    assert torch.equal(real[..., 1], torch.zeros(2, 2))
    # non-contiguous real views are accepted
    assert torch.equal(as_complex(x.transpose(0, 1)), torch.view_as_complex(x.transpose(0, 1).contiguous()))


def test_complex_mul_gradient_matches_closed_form():
    x = _t(A).requires_grad_(True)
    y = _t(B)
    complex_mul(x, y)[..., 0].sum().backward()  # d Re(x y)/d(Re x, Im x) = (Re y, -Im y)
    expected = torch.stack((y[..., 0], -y[..., 1]), -1).expand_as(x)
    assert torch.allclose(x.grad, expected)


@pytest.mark.parametrize("fn", [complex_conj, complex_abs, complex_abs_sq, as_complex])
def test_helpers_reject_missing_complex_dim(fn):
    with pytest.raises(ValueError, match=r"data|x.*last dimension of size 2"):
        fn(torch.zeros(4, 3))


def test_complex_mul_rejects_bad_operands():
    with pytest.raises(ValueError, match=r"y must have .* last dimension of size 2 \(real, imag\), got torch.float32 tensor of shape \(4, 3\)"):
        complex_mul(torch.zeros(4, 2), torch.zeros(4, 3))
    with pytest.raises(TypeError, match="x must be a real tensor"):
        complex_mul(torch.zeros(4, dtype=torch.complex64), torch.zeros(4, 2))


def test_from_numpy_rejects_non_arrays():
    with pytest.raises(TypeError, match="array must be a numpy.ndarray, got list"):
        from_numpy([1, 2])
    with pytest.raises(TypeError, match="array must have a numeric dtype"):
        from_numpy(np.array(["a"]))


def test_complex_mul_on_strided_expanded_and_half_inputs():
    # The eager fast path goes through torch.complex; strided, expanded (stride 0) and
    # half-precision operands must give numpy's product too.
    x = _t(A).transpose(0, 1)  # (5, 3, 7, 2), non-contiguous
    y = _t(B[0]).unsqueeze(1).expand(5, 3, 7, 2)  # stride 0 along dim 1
    expected = np.transpose(A, (1, 0, 2)) * B[0][:, None, :]
    np.testing.assert_allclose(_np(complex_mul(x, y)), expected, atol=1e-12)
    half = complex_mul(_t(A).half(), _t(B).half())
    assert half.dtype == torch.float16
    np.testing.assert_allclose(_np(half.double()), A * B, atol=5e-2, rtol=5e-3)
