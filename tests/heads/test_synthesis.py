"""recon.heads.synthesis: shapes, gradients, closed forms, LSGAN values, image-pool semantics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from recon.heads.synthesis import (
    CycleGAN, ImagePool, PatchDiscriminator, ResidualBlock3d, ResNet3d, UnetSynthesizer, crop_axial, lsgan_loss,
    sliding_window_3d,
)


def test_resnet3d_shapes_and_gradients():
    net = ResNet3d(chans=4, num_blocks=2)
    x = torch.randn(2, 1, 7, 9, 10, requires_grad=True)
    y = net(x)
    assert y.shape == (2, 1, 7, 9, 10)
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_resnet3d_refuses_2d_input():
    with pytest.raises(ValueError, match="volume must be a 5-D.*3-D-only"):
        ResNet3d(chans=4, num_blocks=1)(torch.zeros(1, 1, 16, 16))


def test_residual_block_closed_form_with_zero_convs():
    # conv weights 0 -> relu(x + beta2) (eval-mode BN of a zero map is its shift)
    block = ResidualBlock3d(3).eval()
    torch.nn.init.zeros_(block.conv1.weight)
    torch.nn.init.zeros_(block.conv2.weight)
    with torch.no_grad():
        block.bn2.bias.copy_(torch.tensor([0.5, -1.0, 2.0]))
    x = torch.randn(1, 3, 4, 5, 6, dtype=torch.float64)
    block = block.double()
    expected = np.maximum(x.numpy() + np.array([0.5, -1.0, 2.0])[None, :, None, None, None], 0)
    np.testing.assert_allclose(block(x).detach().numpy(), expected, rtol=1e-10, atol=1e-12)


def test_resnet3d_tail_is_a_1x1x1_convolution():
    net = ResNet3d(in_chans=1, out_chans=2, chans=3, num_blocks=0).double().eval()
    x = torch.randn(1, 1, 5, 6, 7, dtype=torch.float64)
    feats = net.head(x).detach().numpy()
    w = net.tail.weight.detach().numpy()[:, :, 0, 0, 0]
    b = net.tail.bias.detach().numpy()
    expected = np.einsum("oc,bcdhw->bodhw", w, feats) + b[None, :, None, None, None]
    np.testing.assert_allclose(net(x).detach().numpy(), expected, rtol=1e-10)


@pytest.mark.parametrize("shape", [(30, 34), (17, 23), (64, 64)])
def test_unet_synthesizer_any_size(shape):
    net = UnetSynthesizer(chans=4, num_pool_layers=2)
    assert net(torch.randn(2, 1, *shape)).shape == (2, 1, *shape)


def test_unet_synthesizer_residual_is_identity_when_unet_outputs_zero():
    net = UnetSynthesizer(chans=4, num_pool_layers=2, residual=True)
    last = net.unet.up_conv[-1][-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    x = torch.randn(1, 1, 20, 24)
    torch.testing.assert_close(net(x), x)


def test_unet_synthesizer_refuses_volumes():
    with pytest.raises(ValueError, match="image must be a 4-D"):
        UnetSynthesizer(chans=4, num_pool_layers=1)(torch.zeros(1, 1, 8, 8, 8))


def test_patchgan_70x70_output_size():
    # pix2pix: a 256 x 256 image gives a 30 x 30 map of 70 x 70 patches
    d = PatchDiscriminator(chans=4, num_layers=3)
    assert d(torch.zeros(1, 1, 256, 256)).shape == (1, 1, 30, 30)  # 256 -> 128 -> 64 -> 32 -> 31 -> 30


def test_lsgan_loss_values():
    pred = torch.tensor([0.5, 2.0, -1.0], dtype=torch.float64)
    assert float(lsgan_loss(pred, True)) == pytest.approx((0.25 + 1.0 + 4.0) / 3, abs=1e-12)
    assert float(lsgan_loss(pred, False)) == pytest.approx((0.25 + 4.0 + 1.0) / 3, abs=1e-12)
    with pytest.raises(TypeError, match="target_is_real"):
        lsgan_loss(pred, 1)


def _tagged(values):
    return torch.tensor(values, dtype=torch.float32).reshape(-1, 1, 1, 1)


def test_image_pool_fills_then_swaps_half_of_the_time():
    pool = ImagePool(4, torch.Generator().manual_seed(0))
    out = pool.query(_tagged([1, 2, 3]))
    assert out.flatten().tolist() == [1, 2, 3] and len(pool) == 3
    out = pool.query(_tagged([4, 5]))  # 4 fills the pool, 5 may swap
    assert out.flatten()[0] == 4 and len(pool) == 4
    seen_new = seen_old = 0
    stored = set(float(x) for x in torch.cat(pool.images).flatten())
    for k in range(6, 406):
        before = set(float(x) for x in torch.cat(pool.images).flatten())
        got = float(pool.query(_tagged([k])).flatten()[0])
        after = set(float(x) for x in torch.cat(pool.images).flatten())
        if got == k:
            seen_new += 1
            assert after == before  # returned as is, pool unchanged
        else:
            seen_old += 1
            assert got in before and after == (before - {got}) | {float(k)}  # swapped
        assert len(pool) == 4
    assert 150 < seen_old < 250 and seen_new + seen_old == 400
    del stored


def test_image_pool_size_zero_and_determinism():
    x = torch.randn(3, 1, 4, 4)
    assert ImagePool(0).query(x) is x
    runs = []
    for _ in range(2):
        pool = ImagePool(2, torch.Generator().manual_seed(5))
        runs.append(torch.cat([pool.query(_tagged([k, k + 0.5])) for k in range(10)]))
    torch.testing.assert_close(runs[0], runs[1])


def test_cyclegan_losses_and_gradients():
    torch.manual_seed(0)
    model = CycleGAN(chans=4, num_pool_layers=2, disc_chans=4, lambda_identity=0.0, pool_size=0)
    a, b = torch.randn(2, 1, 32, 32), torch.randn(2, 1, 32, 32)
    loss, parts, fake_a, fake_b = model.generator_loss(a, b)
    assert set(parts) == {"adv_ab", "adv_ba", "cycle_a", "cycle_b"}
    with torch.no_grad():
        cycle_a = (model.g_ba(model.g_ab(a)) - a).abs().mean()
        adv = ((model.d_b(model.g_ab(a)) - 1) ** 2).mean()
    assert parts["cycle_a"] == pytest.approx(float(cycle_a), rel=1e-5)
    assert parts["adv_ab"] == pytest.approx(float(adv), rel=1e-5)
    assert loss.item() == pytest.approx(parts["adv_ab"] + parts["adv_ba"] + 10 * (parts["cycle_a"] + parts["cycle_b"]), rel=1e-5)
    loss.backward()
    assert all(p.grad is not None for p in model.generators())
    model.zero_grad(set_to_none=True)
    d_loss = model.discriminator_loss(a, b, fake_a, fake_b)
    d_loss.backward()
    assert all(p.grad is None for p in model.generators())  # fakes are detached
    assert all(p.grad is not None for p in model.discriminators())


def test_cyclegan_identity_term():
    model = CycleGAN(chans=4, num_pool_layers=2, disc_chans=4, lambda_identity=0.5)
    loss, parts, *_ = model.generator_loss(torch.randn(1, 1, 32, 32), torch.randn(1, 1, 32, 32))
    assert {"idt_a", "idt_b"} <= set(parts)
    expected = parts["adv_ab"] + parts["adv_ba"] + 10 * (parts["cycle_a"] + parts["cycle_b"]) + 5 * (parts["idt_a"] + parts["idt_b"])
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="direction"):
        model(torch.zeros(1, 1, 16, 16), direction="xy")
    with pytest.raises(ValueError, match="lambda_cycle"):
        CycleGAN(lambda_cycle=-1)


def test_crop_axial():
    v = torch.arange(100.0).reshape(1, 1, 100)
    c = crop_axial(v)
    assert c.shape == (1, 1, 60) and float(c[0, 0, 0]) == 20 and float(c[0, 0, -1]) == 79
    with pytest.raises(ValueError, match="fraction"):
        crop_axial(v, (0.8, 0.2))


@pytest.mark.parametrize("shape,patch,overlap", [((20, 23, 17), 8, 3), ((9, 10, 11), 16, 4), ((30, 12, 25), 10, 0)])
def test_sliding_window_exact_for_a_pointwise_model(shape, patch, overlap):
    conv = torch.nn.Conv3d(1, 2, 1).double()
    x = torch.randn(1, *shape, dtype=torch.float64)
    out = sliding_window_3d(conv, x, patch_size=patch, overlap=overlap)
    with torch.no_grad():
        expected = conv(x[None])[0]
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)


def test_sliding_window_checks():
    with pytest.raises(ValueError, match="overlap must be smaller"):
        sliding_window_3d(torch.nn.Identity(), torch.zeros(1, 8, 8, 8), patch_size=4, overlap=4)
    with pytest.raises(ValueError, match="volume must be a 4-D"):
        sliding_window_3d(torch.nn.Identity(), torch.zeros(8, 8))


def test_unet_synthesizer_pads_like_training():
    """An odd-sized slice gives the crop of the output on its zero-padded (multiple of 2^pools) copy,
    the layout the training loop uses."""
    torch.manual_seed(0)
    net = UnetSynthesizer(chans=4, num_pool_layers=3).eval()
    x = torch.rand(1, 1, 30, 37)
    padded = torch.nn.functional.pad(x, (0, 3, 0, 2))  # -> 32 x 40
    with torch.no_grad():
        torch.testing.assert_close(net(x), net.unet(padded)[..., :30, :37])


def test_local_synthesizer_receptive_field_and_checks():
    from recon.heads.synthesis import LocalSynthesizer

    net = LocalSynthesizer(chans=4, num_layers=2)
    x = torch.zeros(1, 1, 21, 21, requires_grad=True)
    net(x)[0, 0, 10, 10].backward()
    touched = (x.grad[0, 0] != 0).nonzero()
    # 2 layers of 3x3: each output pixel sees exactly the 5 x 5 neighbourhood
    assert touched[:, 0].min() >= 8 and touched[:, 0].max() <= 12 and touched[:, 1].min() >= 8 and touched[:, 1].max() <= 12
    with pytest.raises(ValueError, match="image must be a 4-D tensor"):
        net(torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match="generator_arch must be"):
        CycleGAN(chans=4, generator_arch="resnet")
    model = CycleGAN(chans=4, num_pool_layers=2, disc_chans=4, generator_arch="local")
    assert isinstance(model.g_ab, LocalSynthesizer)


def test_local_synthesizer_background_gate():
    from recon.heads.synthesis import LocalSynthesizer

    torch.manual_seed(0)
    gated = LocalSynthesizer(chans=4, num_layers=2, background=0.2)
    x = torch.rand(2, 1, 9, 11)
    expected = gated.net(x) * (1 / (1 + torch.exp(-(x - 0.2) / 0.05)))
    torch.testing.assert_close(gated(x), expected)
    with pytest.raises(ValueError, match="background must be a positive number"):
        LocalSynthesizer(background=-1.0)
