"""``level_chans``: U-Nets (and VarNets) whose levels do not follow fastMRI's channel doubling."""

from __future__ import annotations

import pytest
import torch

from recon.models import NormUnet, Unet, VarNet
from recon.train.checkpoint import infer_model_kwargs


def _closed_form_params(in_chans: int, out_chans: int, widths: list[int]) -> int:
    """Parameters of a fastMRI-style U-Net with these level widths (3x3 convs without bias,
    2x2 transposed convs without bias, affine-free instance norms, a 1x1 output conv with bias)."""
    n = 9 * (in_chans * widths[0] + widths[0] ** 2)
    for a, b in zip(widths, widths[1:]):
        n += 9 * (a * b + b * b)
    below = 2 * widths[-1]
    n += 9 * (widths[-1] * below + below * below)
    for w in reversed(widths):
        n += 4 * below * w + 9 * (2 * w * w + w * w)
        below = w
    return n + widths[0] * out_chans + out_chans


def test_default_widths_are_the_fastmri_doubling():
    net = Unet(3, 2, chans=6, num_pool_layers=3)
    assert net.level_chans == (6, 12, 24) and net.chans == 6
    explicit = Unet(3, 2, chans=6, num_pool_layers=3, level_chans=[6, 12, 24])
    assert [(k, v.shape) for k, v in explicit.state_dict().items()] == [(k, v.shape) for k, v in net.state_dict().items()]
    explicit.load_state_dict(net.state_dict())
    x = torch.randn(2, 3, 20, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(explicit(x), net(x))


@pytest.mark.parametrize("widths", [[6, 12, 24], [16, 16, 32], [24, 16, 32], [4]])
def test_parameter_count_matches_the_closed_form(widths):
    net = Unet(3, 2, chans=1, num_pool_layers=len(widths), level_chans=widths)
    assert net.chans == widths[0]
    assert sum(p.numel() for p in net.parameters()) == _closed_form_params(3, 2, widths)
    assert net(torch.randn(1, 3, 19, 33)).shape == (1, 2, 19, 33)  # odd sizes as fastMRI


def test_wider_levels_with_silent_new_channels_compute_the_narrow_unet():
    """Zero-padding a trained U-Net's weights into a wider one (new channels with zero outgoing
    weights) leaves its output unchanged: the widths only add capacity."""
    gen = torch.Generator().manual_seed(1)
    narrow = Unet(2, 2, chans=4, num_pool_layers=2).eval()  # widths 4, 8; bottleneck 16
    wide = Unet(2, 2, num_pool_layers=2, level_chans=[8, 8]).eval()  # bottleneck 16
    old, new = narrow.state_dict(), wide.state_dict()
    for key, value in old.items():
        target = new[key]
        if value.shape == target.shape:
            target.copy_(value)
            continue
        # concatenated inputs (up-sampled, then skip) place the skip at the new width
        target.zero_()
        if key.startswith("up_transpose_conv"):  # (in, out, 2, 2)
            target[: value.shape[0], : value.shape[1]] = value
        elif key.startswith("up_conv") and key.endswith("layers.0.weight"):
            w_old, w_new = value.shape[0], target.shape[0]
            target[:w_old, :w_old] = value[:, :w_old]
            target[:w_old, w_new : w_new + w_old] = value[:, w_old:]
            target[w_old:, :] = 0.01 * torch.randn(target[w_old:].shape, generator=gen)  # new units: any inputs
        else:
            target[: value.shape[0], : value.shape[1]] = value
            target[value.shape[0]:, :] = 0.01 * torch.randn(target[value.shape[0]:].shape, generator=gen)
    wide.load_state_dict(new)
    x = torch.randn(2, 2, 24, 20, generator=gen)
    with torch.no_grad():
        torch.testing.assert_close(wide(x), narrow(x), rtol=1e-5, atol=1e-6)


def test_level_chans_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"level_chans must be 3 positive ints .*got \[8, 16\]"):
        Unet(1, 1, num_pool_layers=3, level_chans=[8, 16])
    with pytest.raises(ValueError, match="level_chans must be 2 positive ints"):
        Unet(1, 1, num_pool_layers=2, level_chans=[8, 0])
    with pytest.raises(ValueError, match="level_chans must be 2 positive ints"):
        Unet(1, 1, num_pool_layers=2, level_chans=[8, 16.0])
    with pytest.raises(TypeError, match="level_chans must be a sequence of ints or None"):
        Unet(1, 1, num_pool_layers=1, level_chans=8)
    with pytest.raises(ValueError, match="level_chans must be 2 positive ints"):
        NormUnet(4, 2, level_chans=[4])
    with pytest.raises(ValueError, match="level_chans must be 2 positive ints"):
        VarNet(num_cascades=1, chans=4, pools=2, sens_chans=2, sens_pools=1, level_chans=[4, 8, 16])


def test_checkpoint_sizes_read_back_the_level_widths():
    kwargs = {"num_cascades": 2, "chans": 4, "pools": 3, "sens_chans": 2, "sens_pools": 1}
    plain = VarNet(**kwargs)
    assert infer_model_kwargs("varnet", plain.state_dict()) == kwargs  # fastMRI's doubling: no level_chans
    wide = VarNet(**dict(kwargs, level_chans=[8, 16, 16]))
    assert infer_model_kwargs("varnet", wide.state_dict()) == dict(kwargs, chans=8, level_chans=[8, 16, 16])
    rebuilt = VarNet(**infer_model_kwargs("varnet", wide.state_dict()))
    rebuilt.load_state_dict(wide.state_dict())
    unet = Unet(1, 1, num_pool_layers=2, level_chans=[12, 12])
    assert infer_model_kwargs("unet", unet.state_dict())["level_chans"] == [12, 12]
