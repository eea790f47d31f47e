"""VarNet, VarNetBlock, SensitivityModel: fastMRI parity, checkpoints, gradients, errors."""

from __future__ import annotations

import pytest
import torch

from recon.models import SensitivityModel, VarNet, VarNetBlock, NormUnet

fm = pytest.importorskip("fastmri.models.varnet")

SMALL = dict(num_cascades=2, sens_chans=4, sens_pools=2, chans=4, pools=2)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def _perturbed(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return model


def _problem(b, c, h, w, seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    kspace = torch.randn(b, c, h, w, 2, generator=gen, dtype=dtype)
    mask = torch.zeros(b, 1, 1, w, 1, dtype=torch.bool)
    for i in range(b):  # a different mask per sample, centre block of 6 + 2 columns
        mask[i, ..., i % 3 :: 3, :] = True
        mask[i, ..., w // 2 - 3 - i : w // 2 + 3 + i, :] = True
    return kspace * mask, mask


def _pair(seed=1, **kwargs):
    args = {**SMALL, **kwargs}
    with torch.random.fork_rng():  # parameter init draws from the global RNG; keep it untouched
        torch.manual_seed(seed)
        ref = _perturbed(fm.VarNet(**args), seed)
    ours = VarNet(**args)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def test_state_dict_names_match_fastmri():
    ref = fm.VarNet()
    ours = VarNet()
    assert list(ours.state_dict()) == list(ref.state_dict())
    for (n1, t1), (n2, t2) in zip(ours.state_dict().items(), ref.state_dict().items()):
        assert t1.shape == t2.shape, n1


@pytest.mark.parametrize("shape", [(2, 3, 32, 24), (1, 2, 21, 27)])
@pytest.mark.parametrize("num_low", [None, 6])
def test_varnet_matches_fastmri(device, shape, num_low):
    ref, ours = _pair()
    ref, ours = ref.to(device).eval(), ours.to(device).eval()
    kspace, mask = _problem(*shape)
    kspace, mask = kspace.to(device), mask.to(device)
    with torch.no_grad():
        expected = ref(kspace, mask, num_low)
        got = ours(kspace, mask, num_low)
    assert got.shape == expected.shape == (shape[0], shape[2], shape[3])
    assert _rel(got, expected) < 1e-5
    with torch.inference_mode():
        assert _rel(ours(kspace, mask, num_low), expected) < 1e-5


def test_sensitivity_model_matches_fastmri():
    ref = _perturbed(fm.SensitivityModel(4, 2), 2).eval()
    ours = SensitivityModel(4, 2).eval()
    ours.load_state_dict(ref.state_dict())
    kspace, mask = _problem(3, 4, 24, 40, seed=3)
    with torch.no_grad():
        assert _rel(ours(kspace, mask), ref(kspace, mask)) < 1e-5
        assert _rel(ours(kspace, mask, 4), ref(kspace, mask, 4)) < 1e-5
    for got, expected in zip(ours.get_pad_and_num_low_freqs(mask), ref.get_pad_and_num_low_freqs(mask)):
        torch.testing.assert_close(got, expected)
    maps = ours(kspace, mask)
    torch.testing.assert_close(maps.square().sum(dim=(1, 4)), torch.ones(3, 24, 40))


def test_varnet_block_matches_fastmri():
    ref = _perturbed(fm.VarNetBlock(fm.NormUnet(4, 2)), 4).eval()
    ours = VarNetBlock(NormUnet(4, 2)).eval()
    with torch.no_grad():
        ref.dc_weight.fill_(0.7)
    ours.load_state_dict(ref.state_dict())
    current, mask = _problem(2, 3, 24, 20, seed=5)
    ref_k, _ = _problem(2, 3, 24, 20, seed=6)
    maps = torch.randn(2, 3, 24, 20, 2, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        assert _rel(ours(current, ref_k * mask, mask, maps), ref(current, ref_k * mask, mask, maps)) < 1e-5
    torch.testing.assert_close(ours.sens_reduce(current, maps).shape, torch.Size([2, 1, 24, 20, 2]))


def test_varnet_gradients_match_fastmri_float64():
    ref, ours = _pair(seed=8)
    ref, ours = ref.double(), ours.double()
    kspace, mask = _problem(2, 2, 24, 24, seed=9, dtype=torch.float64)
    ref(kspace, mask).sum().backward()
    ours(kspace, mask).sum().backward()
    for (name, p), q in zip(ref.named_parameters(), ours.parameters()):
        # cascade 0's dc_weight has a zero gradient (k = k0 there): compare absolutely too
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-9, atol=1e-12 * p.grad.abs().max().item() + 1e-300, msg=name)


def test_checkpointing_gives_same_output_and_gradients():
    # float64: the sensitivity normalisation amplifies float32 rounding in the gradients, and
    # checkpointing runs the sensitivity U-Net coil by coil (other kernels, other rounding).
    _, plain = _pair(seed=10)
    ckpt = VarNet(**SMALL, checkpoint_cascades=True)
    ckpt.load_state_dict(plain.state_dict())
    plain, ckpt = plain.double().train(), ckpt.double().train()
    kspace, mask = _problem(2, 2, 24, 24, seed=11, dtype=torch.float64)
    a = plain(kspace, mask)
    b = ckpt(kspace, mask)
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    a.square().mean().backward()
    b.square().mean().backward()
    for (name, p), q in zip(plain.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-8, atol=1e-10 * p.grad.abs().max().item(), msg=name)
        if name != "cascades.0.dc_weight":  # k = k0 in the first cascade: zero gradient
            assert p.grad.abs().sum() > 0, name


def test_bf16_autocast_close_to_float32():
    _, ours = _pair(seed=12)
    ours.eval()
    kspace, mask = _problem(1, 3, 32, 32, seed=13)
    with torch.no_grad():
        ref = ours(kspace, mask)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = ours(kspace, mask)
    assert low.dtype == torch.float32  # FFTs and k-space stay float32
    assert _rel(low, ref) < 5e-2


def test_varnet_argument_errors():
    with pytest.raises(ValueError, match="num_cascades must be a positive int"):
        VarNet(num_cascades=0)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        VarNetBlock("unet")
    net = VarNet(**SMALL)
    kspace, mask = _problem(1, 3, 16, 16)
    with pytest.raises(ValueError, match=r"masked_kspace must be \(B, C, H, W, 2\)"):
        net(kspace[None], mask)
    with pytest.raises(ValueError, match="last dimension of size 2"):
        net(torch.randn(1, 3, 16, 16, 3), mask)
    with pytest.raises(TypeError, match="mask must be a torch.Tensor"):
        net(kspace, None)
    with pytest.raises(ValueError, match=r"mask of shape .* does not broadcast against masked_kspace"):
        net(kspace, torch.ones(1, 1, 1, 15, 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask must be 5-D"):
        net(kspace, torch.ones(16, 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="num_low_frequencies must be None, a non-negative int"):
        net(kspace, mask, -3)


def test_float_mask_and_tensor_num_low_frequencies():
    ref, ours = _pair(seed=16)
    kspace, mask = _problem(2, 3, 32, 24, seed=17)
    low = torch.tensor([6, 6])
    with torch.no_grad():
        expected = ref.eval()(kspace, mask, 6)  # fastMRI takes no (B,) tensor for B > 1
        assert _rel(ours.eval()(kspace, mask.float(), low), expected) < 1e-5


def test_num_low_frequencies_zero_entries_fall_back_to_the_mask():
    ref = fm.SensitivityModel(4, 2)
    kspace, mask = _problem(2, 2, 16, 24, seed=18)
    model = SensitivityModel(4, 2)
    ref_pad, ref_low = ref.get_pad_and_num_low_freqs(mask, None)  # fastMRI: from the mask
    for given in (torch.tensor([4, 0]), 0, None):
        pad, low = model.get_pad_and_num_low_freqs(mask, given)
        if isinstance(given, torch.Tensor):
            assert low.tolist() == [4, ref_low[1].item()]
            assert pad.tolist() == [(24 - 4 + 1) // 2, ref_pad[1].item()]
        else:
            assert low.tolist() == ref_low.tolist() and pad.tolist() == ref_pad.tolist()
