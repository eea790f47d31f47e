"""Centered FFTs against float64 numpy and against fastMRI."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recon.ops import fft2c, fft3c, ifft2c, ifft3c
from tests.conftest import TOL

SHAPES_2D = [(3, 8, 6), (2, 7, 6), (2, 6, 7), (1, 7, 5), (2, 3, 10, 12), (4, 1, 1)]


def _np_centered(x: np.ndarray, axes, inverse: bool) -> np.ndarray:
    f = np.fft.ifftn if inverse else np.fft.fftn
    return np.fft.fftshift(f(np.fft.ifftshift(x, axes=axes), axes=axes, norm="ortho"), axes=axes)


def _random(shape, dtype=torch.float64, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, 2, generator=g, dtype=dtype)


def _to_np(x: torch.Tensor) -> np.ndarray:
    x = x.detach().cpu().double().numpy()
    return x[..., 0] + 1j * x[..., 1]


@pytest.mark.parametrize("shape", SHAPES_2D)
@pytest.mark.parametrize("inverse", [False, True])
def test_fft2c_matches_numpy_float64(shape, inverse, device):
    x = _random(shape).to(device)
    out = (ifft2c if inverse else fft2c)(x)
    ref = _np_centered(_to_np(x), (-2, -1), inverse)
    assert out.shape == x.shape and out.dtype == torch.float64
    np.testing.assert_allclose(_to_np(out), ref, atol=TOL[torch.float64], rtol=0)


@pytest.mark.parametrize("shape", [(2, 4, 6, 8), (1, 5, 6, 7), (3, 3, 3)])
@pytest.mark.parametrize("inverse", [False, True])
def test_fft3c_matches_numpy_float64(shape, inverse, device):
    x = _random(shape).to(device)
    out = (ifft3c if inverse else fft3c)(x)
    ref = _np_centered(_to_np(x), (-3, -2, -1), inverse)
    np.testing.assert_allclose(_to_np(out), ref, atol=TOL[torch.float64], rtol=0)


@pytest.mark.parametrize("shape", [(2, 8, 6), (3, 9, 7), (1, 4, 6, 5)])
def test_fft3c_roundtrip_and_unitarity(shape, device):
    x = _random(shape).to(device)
    k = fft3c(x)
    assert torch.allclose(ifft3c(k), x, atol=1e-12)
    assert torch.allclose(k.square().sum(), x.square().sum(), rtol=1e-12)


@pytest.mark.parametrize("shape", [(1, 15, 64, 36), (2, 3, 33, 17), (1, 4, 20, 11)])
def test_fft2c_float32_parity_with_fastmri(shape, device):
    fastmri = pytest.importorskip("fastmri")
    x = _random(shape, torch.float32).to(device)
    for ours, theirs in ((fft2c, fastmri.fft2c), (ifft2c, fastmri.ifft2c)):
        a, b = ours(x), theirs(x)
        rel = (a - b).norm() / b.norm()
        assert rel <= 1e-5, rel


def test_fft2c_non_contiguous_input(device):
    fastmri = pytest.importorskip("fastmri")
    base = _random((2, 3, 12, 10), torch.float32).to(device)
    x = base.transpose(-3, -2)  # (2, 3, 10, 12, 2), not contiguous
    assert not x.is_contiguous()
    rel = (fft2c(x) - fastmri.fft2c(x.contiguous())).norm() / fft2c(x).norm()
    assert rel <= 1e-5
    sliced = base[:, ::2]  # strided batch
    assert torch.allclose(ifft2c(sliced), ifft2c(sliced.contiguous()))


def test_fft2c_does_not_modify_input():
    x = _random((2, 8, 8))
    before = x.clone()
    fft2c(x)
    ifft2c(x)
    assert torch.equal(x, before)


def test_fft2c_half_precision_computed_in_float32():
    x = _random((2, 8, 6), torch.float32)
    out = fft2c(x.to(torch.bfloat16))
    assert out.dtype == torch.float32
    assert torch.allclose(out, fft2c(x.to(torch.bfloat16).float()))


def test_fft2c_gradient_is_adjoint():
    # <F x, y> = <x, F^H y>, so d<Fx, y>/dx = F^H y (real inner product of real views).
    x = _random((2, 6, 5)).requires_grad_(True)
    y = _random((2, 6, 5), seed=1)
    (fft2c(x) * y).sum().backward()
    assert torch.allclose(x.grad, ifft2c(y), atol=1e-12)


@pytest.mark.parametrize("fn", [fft2c, ifft2c, fft3c, ifft3c])
def test_fft_rejects_bad_input(fn):
    with pytest.raises(ValueError, match=r"data must have at least .* last dimension of size 2"):
        fn(torch.zeros(4, 8, 8))
    with pytest.raises(TypeError, match="data must be a real tensor .* got a complex tensor"):
        fn(torch.zeros(4, 8, 8, dtype=torch.complex64))
    with pytest.raises(TypeError, match=r"data must be a torch.Tensor, got float64 ndarray of shape \(4, 8, 8, 2\)"):
        fn(np.zeros((4, 8, 8, 2)))
    with pytest.raises(TypeError, match="data must be a floating-point tensor"):
        fn(torch.zeros(4, 8, 8, 2, dtype=torch.int32))


@pytest.mark.parametrize("fn", [fft2c, ifft2c, fft3c, ifft3c])
@pytest.mark.parametrize("shape", [(2, 4, 8, 6), (1, 6, 10, 4), (2, 5, 8, 6)])
def test_autograd_path_equals_no_grad_path(fn, shape):
    # With and without autograd (the output sign is applied in place) the result is the same.
    x = _random(shape)
    ndim = 3 if fn in (fft3c, ifft3c) else 2
    axes = tuple(range(-ndim, 0))
    ref = _np_centered(_to_np(x), axes, fn in (ifft2c, ifft3c))
    with torch.no_grad():
        fast = fn(x)
    graph = fn(x.clone().requires_grad_(True))
    np.testing.assert_allclose(_to_np(fast), ref, atol=1e-12)
    np.testing.assert_allclose(_to_np(graph), ref, atol=1e-12)


def test_fft2c_after_inference_mode_still_differentiable():
    x = _random((1, 2, 6, 4))
    with torch.inference_mode():
        fft2c(x)  # caches sign tensors made in inference mode
    y = x.clone().requires_grad_(True)
    fft2c(y).square().sum().backward()  # must not reuse the inference-mode tensors
    assert torch.allclose(y.grad, 2 * y.detach(), atol=1e-12)  # unitary: d||Fx||^2/dx = 2x
