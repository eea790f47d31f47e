"""Unet / NormUnet: fastMRI parity (same state dict, same output), shapes, gradients, errors."""

from __future__ import annotations

import copy

import pytest
import torch

from recon.models import NormUnet, Unet

fm_unet = pytest.importorskip("fastmri.models.unet")
fm_varnet = pytest.importorskip("fastmri.models.varnet")


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def _perturbed(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return model


@pytest.mark.parametrize("shape", [(2, 3, 32, 48), (1, 3, 37, 29)])
def test_unet_matches_fastmri(device, shape):
    with torch.random.fork_rng(devices=[]):  # parameter init draws from the global RNG; keep it untouched
        torch.manual_seed(0)
        ref = _perturbed(fm_unet.Unet(3, 2, chans=6, num_pool_layers=3), 1).to(device).eval()
    ours = Unet(3, 2, chans=6, num_pool_layers=3).to(device).eval()
    assert list(ours.state_dict()) == list(ref.state_dict())
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(shape, generator=torch.Generator().manual_seed(2)).to(device)
    with torch.no_grad():
        expected = ref(x)
        got = ours(x)
    assert got.shape == expected.shape
    assert _rel(got, expected) < 1e-5
    with torch.inference_mode():
        assert _rel(ours(x), expected) < 1e-5


def test_unet_gradients_match_fastmri_float64():
    ref = _perturbed(fm_unet.Unet(2, 2, chans=4, num_pool_layers=2), 3).double()
    ours = Unet(2, 2, chans=4, num_pool_layers=2).double()
    ours.load_state_dict(ref.state_dict())
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(2, 2, 24, 20, generator=gen, dtype=torch.float64)
    weight = torch.randn(2, 2, 24, 20, generator=gen, dtype=torch.float64)
    (ref(x) * weight).sum().backward()
    (ours(x) * weight).sum().backward()
    for (name, p), q in zip(ref.named_parameters(), ours.parameters()):
        assert q.grad is not None and _rel(q.grad, p.grad) < 1e-10, name


@pytest.mark.parametrize("shape", [(2, 1, 40, 36, 2), (1, 1, 37, 50, 2)])
def test_norm_unet_matches_fastmri(device, shape):
    ref = _perturbed(fm_varnet.NormUnet(6, 2), 5).to(device).eval()
    ours = NormUnet(6, 2).to(device).eval()
    ours.load_state_dict(ref.state_dict())
    x = (3.0 * torch.randn(shape, generator=torch.Generator().manual_seed(6)) + 1.0).to(device)
    with torch.no_grad():
        expected = ref(x)
        got = ours(x)
    assert got.shape == shape and got.is_contiguous()
    assert _rel(got, expected) < 1e-5


def test_norm_unet_gradients_float64():
    ref = _perturbed(fm_varnet.NormUnet(4, 2), 7).double()
    ours = NormUnet(4, 2).double()
    ours.load_state_dict(ref.state_dict())
    x1 = torch.randn(2, 1, 20, 28, 2, dtype=torch.float64, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_()
    ref(x1).square().sum().backward()
    ours(x2).square().sum().backward()
    assert _rel(x2.grad, x1.grad) < 1e-10
    for p, q in zip(ref.parameters(), ours.parameters()):
        assert _rel(q.grad, p.grad) < 1e-10


def test_norm_unet_multi_channel_shapes():
    net = NormUnet(4, 2, in_chans=4, out_chans=6)
    out = net(torch.randn(2, 2, 16, 16, 2))
    assert out.shape == (2, 3, 16, 16, 2)


def test_unet_every_parameter_gets_gradient():
    net = Unet(1, 1, chans=4, num_pool_layers=3, drop_prob=0.1).train()
    net(torch.randn(2, 1, 32, 24)).square().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_unet_dropout_is_seeded_by_torch_generator_state():
    net = Unet(1, 1, chans=4, num_pool_layers=2, drop_prob=0.5).train()
    x = torch.randn(1, 1, 16, 16)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        a = net(x)
        torch.manual_seed(0)
        b = net(x)
    torch.testing.assert_close(a, b)


def test_unet_bf16_autocast_close_to_float32():
    net = _perturbed(Unet(2, 2, chans=8, num_pool_layers=2), 8).eval()
    x = torch.randn(1, 2, 32, 32)
    with torch.no_grad():
        ref = net(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = net(x)
    assert low.dtype == torch.bfloat16
    assert _rel(low, ref) < 5e-2


def test_unet_argument_errors():
    with pytest.raises(ValueError, match="in_chans must be a positive int"):
        Unet(0, 1)
    with pytest.raises(ValueError, match="chans must be a positive int"):
        Unet(1, 1, chans=-2)
    with pytest.raises(ValueError, match="num_pool_layers must be a positive int"):
        Unet(1, 1, num_pool_layers=0)
    with pytest.raises(ValueError, match=r"drop_prob must be in \[0, 1\)"):
        Unet(1, 1, drop_prob=1.5)
    net = Unet(2, 1, chans=4, num_pool_layers=1)
    with pytest.raises(ValueError, match=r"image must be \(N, 2, H, W\)"):
        net(torch.randn(1, 3, 8, 8))
    with pytest.raises(TypeError, match="image must be a torch.Tensor"):
        net([[1.0]])
    with pytest.raises(TypeError, match="floating-point"):
        net(torch.ones(1, 2, 8, 8, dtype=torch.int64))
    with pytest.raises(ValueError, match="in_chans must be a positive even int"):
        NormUnet(4, 2, in_chans=3)
    norm_net = NormUnet(4, 1)
    with pytest.raises(ValueError, match=r"x must be \(B, 1, H, W, 2\)"):
        norm_net(torch.randn(1, 2, 8, 8, 2))
    with pytest.raises(ValueError, match="last dimension of size 2"):
        norm_net(torch.randn(1, 1, 8, 8, 3))
