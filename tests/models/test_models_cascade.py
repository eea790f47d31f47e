"""CascadeNet (DC-CNN): data consistency against the closed form, shapes, gradients, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recon.models import CascadeNet
from recon.models.cascade import CascadeBlock
from recon.ops import soft_dc


def _problem(b, c, h, w, seed=0):
    gen = torch.Generator().manual_seed(seed)
    kspace = torch.randn(b, c, h, w, 2, generator=gen)
    mask = torch.zeros(b, 1, 1, w, 1, dtype=torch.bool)
    mask[..., ::3, :] = True
    mask[..., w // 2 - 2 : w // 2 + 2, :] = True
    return kspace * mask, mask


def _identity_cnn(block: CascadeBlock) -> CascadeBlock:
    with torch.no_grad():
        block.convs[-1].weight.zero_()
        block.convs[-1].bias.zero_()
    return block


@pytest.mark.parametrize("lam", [0.0, 0.5, 4.0])
def test_block_data_consistency_closed_form(lam):
    # With a zero last conv the residual CNN is the identity, so the cascade is pure DC:
    # k_out = k off the mask, (k + lam k0) / (1 + lam) on it (k0 itself when lam = 0).
    block = _identity_cnn(CascadeBlock(num_convs=3, num_filters=4, dc_lambda=lam))
    gen = torch.Generator().manual_seed(1)
    k = torch.randn(2, 1, 16, 12, 2, generator=gen, dtype=torch.float64)
    k0, mask = _problem(2, 1, 16, 12, seed=2)
    block = block.double()
    with torch.no_grad():
        out = block(k, k0.double(), mask, None, torch.ones(2, 1, 1, 1, 1, dtype=torch.float64)).numpy()
    kn, k0n, m = k.numpy(), k0.double().numpy(), mask.numpy()
    on_mask = k0n if lam == 0 else (kn + lam * k0n) / (1 + lam)
    np.testing.assert_allclose(out, np.where(m, on_mask, kn), rtol=1e-10, atol=1e-10)


def test_multicoil_block_with_unit_maps_equals_single_coil():
    block = CascadeBlock(num_convs=3, num_filters=4, dc_lambda=0.3).double()
    k, mask = _problem(1, 1, 16, 12, seed=3)
    k = k.double()
    scale = torch.full((1, 1, 1, 1, 1), 2.0, dtype=torch.float64)
    maps = torch.zeros(1, 1, 16, 12, 2, dtype=torch.float64)
    maps[..., 0] = 1.0
    torch.testing.assert_close(block(k, k, mask, maps, scale), block(k, k, mask, None, scale), rtol=1e-10, atol=1e-12)


def test_cascadenet_single_coil_hard_dc_keeps_measured_samples():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = CascadeNet(num_cascades=2, num_convs=3, num_filters=8, sens_chans=0).double()
    k, mask = _problem(2, 1, 24, 20, seed=4)
    k = k.double()
    captured = {}
    net.cascades[-1].register_forward_hook(lambda m, i, o: captured.setdefault("k", o))
    out = net(k, mask)
    assert out.shape == (2, 24, 20)
    kspace = captured["k"]
    torch.testing.assert_close(torch.where(mask, kspace, 0), k, rtol=1e-10, atol=1e-12)
    # the output is |F^-1 k|
    image = torch.view_as_complex(kspace.contiguous())
    expected = torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(image, dim=(-2, -1)), norm="ortho"), dim=(-2, -1)).abs()[:, 0]
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("given_maps", [True, False])
def test_cascadenet_multicoil_shapes_and_gradients(given_maps):
    with torch.random.fork_rng():
        torch.manual_seed(1)
        net = CascadeNet(num_cascades=2, num_convs=3, num_filters=6, learn_lambda=True, dc_lambda=0.5,
                         sens_chans=4, sens_pools=2)
    k, mask = _problem(2, 3, 16, 16, seed=5)
    maps = torch.randn(2, 3, 16, 16, 2, generator=torch.Generator().manual_seed(6)) if given_maps else None
    out = net(k, mask, sens_maps=maps)
    assert out.shape == (2, 16, 16)
    out.square().mean().backward()
    for name, p in net.named_parameters():
        if given_maps and name.startswith("sens_net"):
            assert p.grad is None, name
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_cascadenet_checkpointing_same_gradients():
    with torch.random.fork_rng():
        torch.manual_seed(2)
        plain = CascadeNet(num_cascades=2, num_convs=3, num_filters=6, sens_chans=4, sens_pools=2)
    ckpt = CascadeNet(num_cascades=2, num_convs=3, num_filters=6, sens_chans=4, sens_pools=2,
                      checkpoint_cascades=True)
    ckpt.load_state_dict(plain.state_dict())
    plain, ckpt = plain.double(), ckpt.double()  # float64: see the VarNet checkpoint test
    k, mask = _problem(1, 2, 16, 16, seed=7)
    k = k.double()
    a, b = plain(k, mask), ckpt(k, mask)
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    a.sum().backward()
    b.sum().backward()
    for p, q in zip(plain.parameters(), ckpt.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-8, atol=1e-10 * p.grad.abs().max().item())


def test_cascadenet_argument_errors():
    with pytest.raises(ValueError, match="num_cascades must be a positive int"):
        CascadeNet(num_cascades=0)
    with pytest.raises(ValueError, match="num_convs must be an int >= 2"):
        CascadeNet(num_convs=1)
    with pytest.raises(ValueError, match="num_filters must be a positive int"):
        CascadeNet(num_filters=0)
    with pytest.raises(ValueError, match="dc_lambda must be a non-negative number"):
        CascadeNet(dc_lambda=-1.0)
    with pytest.raises(ValueError, match="learn_lambda=True needs dc_lambda > 0, got dc_lambda=0"):
        CascadeNet(learn_lambda=True, dc_lambda=0.0)
    with pytest.raises(ValueError, match="sens_chans must be a non-negative int"):
        CascadeNet(sens_chans=-1)
    net = CascadeNet(num_cascades=1, num_convs=2, num_filters=4, sens_chans=0)
    k, mask = _problem(1, 3, 16, 16)
    with pytest.raises(ValueError, match="needs sens_maps when the model has no sensitivity model"):
        net(k, mask)
    with pytest.raises(ValueError, match="sens_maps must have the shape of masked_kspace"):
        net(k, mask, sens_maps=torch.randn(1, 2, 16, 16, 2))
    with pytest.raises(TypeError, match="sens_maps must be a torch.Tensor"):
        net(k, mask, sens_maps="maps")
    with pytest.raises(ValueError, match=r"mask of shape .* does not broadcast against masked_kspace"):
        net(k, torch.ones(1, 1, 1, 3, 1, dtype=torch.bool))


def test_learned_lambda_moves_from_a_positive_start_but_has_no_gradient_at_zero():
    """Why learn_lambda needs dc_lambda > 0: at lambda = 0 (hard replacement) the output does
    not depend on lambda; from a positive start the gradient is that of the closed form
    d/dl (k + l k0) / (1 + l) = (k0 - k) / (1 + l)**2 on the sampled points."""
    k, mask = _problem(1, 1, 12, 12, seed=3)
    k0 = k.clone()
    block = _identity_cnn(CascadeBlock(num_convs=2, num_filters=4, dc_lambda=0.5, learn_lambda=True)).double()
    pred = torch.randn(1, 1, 12, 12, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    lam = block.dc_lambda
    weight = torch.randn_like(pred)
    (soft_dc(pred, k0.double(), mask, lam.abs()) * weight).sum().backward()
    expected = ((k0.double() - pred) / (1 + 0.5) ** 2 * weight * mask).sum()
    torch.testing.assert_close(lam.grad, expected.reshape(1), rtol=1e-10, atol=1e-12)
    zero = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    (soft_dc(pred, k0.double(), mask, zero) * weight).sum().backward()
    assert float(zero.grad.abs().sum()) == 0.0
