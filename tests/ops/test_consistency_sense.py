"""Data consistency (closed forms) and the conjugate-gradient solver (against numpy solve)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recon.ops import SenseOp, conjugate_gradient, hard_dc, soft_dc, varnet_soft_dc


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


K = _rand(2, 3, 4, 6, 2)
K0 = _rand(2, 3, 4, 6, 2, seed=1)
MASK = torch.tensor([1, 0, 0, 1, 1, 0], dtype=torch.bool).view(1, 1, 1, 6, 1)


def test_hard_dc_replaces_sampled_columns():
    out = hard_dc(K, K0, MASK)
    m = MASK.expand_as(K)
    assert torch.equal(out[m], K0[m]) and torch.equal(out[~m], K[~m])


@pytest.mark.parametrize("lam", [0.5, 3.0, torch.tensor(2.0)])
def test_soft_dc_closed_form(lam):
    out = soft_dc(K, K0, MASK, lam)
    m = MASK.double()
    expected = (1 - m) * K + m * (K + lam * K0) / (1 + lam)
    assert torch.allclose(out, expected, atol=1e-14)


@pytest.mark.parametrize("lam", [None, 0, 0.0])
def test_soft_dc_zero_or_none_is_hard(lam):
    assert torch.equal(soft_dc(K, K0, MASK, lam), hard_dc(K, K0, MASK))


def test_soft_dc_large_lambda_approaches_hard_and_is_differentiable():
    assert torch.allclose(soft_dc(K, K0, MASK, 1e9), hard_dc(K, K0, MASK), atol=1e-8)
    lam = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    soft_dc(K, K0, MASK, lam).sum().backward()
    # d/dlam (k + lam k0)/(1 + lam) = (k0 - k)/(1 + lam)^2 on sampled points
    expected = ((K0 - K) / 4 * MASK.double()).sum()
    assert torch.allclose(lam.grad, expected)


def test_varnet_soft_dc_term():
    w = torch.tensor(0.7, dtype=torch.float64)
    out = varnet_soft_dc(K, K0, MASK, w)
    assert torch.allclose(out, MASK.double() * (K - K0) * 0.7)


def test_dc_rejects_bad_inputs():
    with pytest.raises(ValueError, match=r"mask of shape \(1, 1, 1, 5, 1\) does not broadcast against kspace"):
        hard_dc(K, K0, torch.ones(1, 1, 1, 5, 1))
    with pytest.raises(ValueError, match=r"kspace0 must have the shape of kspace"):
        soft_dc(K, K0[:1], MASK, 1.0)
    with pytest.raises(ValueError, match="lam must be None or non-negative, got -1"):
        soft_dc(K, K0, MASK, -1)
    with pytest.raises(TypeError, match="mask must be a torch.Tensor"):
        hard_dc(K, K0, [1, 0])


def _dense_sense(maps: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """Explicit complex matrix of the SENSE forward for one batch element (numpy oracle)."""
    c, h, w = maps.shape[1:4]
    zm = maps[0, ..., 0].numpy() + 1j * maps[0, ..., 1].numpy()
    n = h * w
    cols = []
    for i in range(n):
        e = np.zeros(n, complex)
        e[i] = 1
        img = e.reshape(h, w)
        k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(zm * img, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
        cols.append((k * mask.numpy()[0, :, :, :, 0]).reshape(-1))
    return np.stack(cols, 1)


def test_cg_solves_tikhonov_sense_like_numpy():
    maps = _rand(2, 3, 5, 6, 2, seed=2)
    mask = torch.tensor([1, 1, 0, 1, 0, 1], dtype=torch.float64).view(1, 1, 1, 6, 1)
    op = SenseOp(maps, mask)
    y = op.forward(_rand(2, 1, 5, 6, 2, seed=3))
    lam = 0.05
    x = conjugate_gradient(op.normal, op.adjoint(y), max_iter=200, tol=1e-12, damping=lam)
    for b in range(2):
        a = _dense_sense(maps[b : b + 1], mask)
        yb = y[b, ..., 0].numpy() + 1j * y[b, ..., 1].numpy()
        ref = np.linalg.solve(a.conj().T @ a + lam * np.eye(a.shape[1]), a.conj().T @ yb.reshape(-1))
        got = x[b, 0, ..., 0].numpy() + 1j * x[b, 0, ..., 1].numpy()
        np.testing.assert_allclose(got.reshape(-1), ref, atol=1e-8)


def test_cg_batch_elements_are_independent_and_warm_start_works():
    maps = _rand(2, 2, 4, 4, 2, seed=4)
    op = SenseOp(maps)
    rhs = _rand(2, 1, 4, 4, 2, seed=5)
    full = conjugate_gradient(op.normal, rhs, max_iter=100, tol=1e-12, damping=0.1)
    single = conjugate_gradient(SenseOp(maps[1:]).normal, rhs[1:], max_iter=100, tol=1e-12, damping=0.1)
    assert torch.allclose(full[1:], single, atol=1e-10)
    warm = conjugate_gradient(op.normal, rhs, x0=full, max_iter=1, damping=0.1)
    assert torch.allclose(warm, full, atol=1e-9)
    assert torch.equal(conjugate_gradient(op.normal, rhs, max_iter=0), torch.zeros_like(rhs))


def test_cg_and_sense_reject_bad_arguments():
    with pytest.raises(ValueError, match="max_iter must be >= 0, got -1"):
        conjugate_gradient(lambda v: v, torch.zeros(1, 2), max_iter=-1)
    with pytest.raises(ValueError, match="damping must be >= 0, got -0.5"):
        conjugate_gradient(lambda v: v, torch.zeros(1, 2), damping=-0.5)
    with pytest.raises(ValueError, match=r"mask of shape \(1, 1, 1, 3, 1\) does not broadcast"):
        SenseOp(_rand(1, 2, 4, 4, 2), torch.ones(1, 1, 1, 3, 1))
    with pytest.raises(ValueError, match="sens_maps must have at least 4 dimensions"):
        SenseOp(_rand(4, 4, 2))


def test_cg_on_complex_dtype_with_per_batch_damping_matches_real_view():
    maps = _rand(2, 3, 5, 6, 2, seed=6)
    op = SenseOp(maps)
    rhs = _rand(2, 1, 5, 6, 2, seed=7)
    damping = torch.tensor([0.1, 0.5], dtype=torch.float64).view(2, 1, 1, 1, 1)
    real = conjugate_gradient(op.normal, rhs, max_iter=100, tol=1e-12, damping=damping)
    cmaps = torch.view_as_complex(maps)

    def normal_c(x):  # the same operator on complex tensors (B, 1, H, W)
        return torch.view_as_complex(op.normal(torch.view_as_real(x).contiguous()))

    got = conjugate_gradient(normal_c, torch.view_as_complex(rhs), max_iter=100, tol=1e-12, damping=damping[..., 0])
    assert got.is_complex() and cmaps.is_complex()
    assert torch.allclose(torch.view_as_real(got), real, atol=1e-10)
    single = conjugate_gradient(SenseOp(maps[:1]).normal, rhs[:1], max_iter=100, tol=1e-12, damping=0.1)
    assert torch.allclose(real[:1], single, atol=1e-10)
    with pytest.raises(ValueError, match="damping must be >= 0, got a tensor with minimum -5.0"):
        conjugate_gradient(op.normal, rhs, damping=-damping * 10)
