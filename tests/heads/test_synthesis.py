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


@pytest.mark.parametrize("shape", [(20, 24), (33, 17)])
def test_resize_conv_unet_any_size_and_no_checkerboard(shape):
    from recon.heads.synthesis import ResizeConvUnet

    torch.manual_seed(0)
    net = ResizeConvUnet(chans=4, num_pool_layers=2)
    x = torch.rand(2, 1, *shape, requires_grad=True)
    y = net(x)
    assert y.shape == x.shape
    y.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    # bilinear up-sampling then a 3x3 conv: a constant deepest feature map gives a constant
    # up-sampled map (transposed convs with stride 2 give a 2-periodic checkerboard instead)
    h = torch.ones(1, 16, 4, 4)
    up = net.up_conv[0](F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False))
    inner = up[..., 1:-1, 1:-1]
    torch.testing.assert_close(inner, inner[..., :1, :1].expand_as(inner))
    with pytest.raises(ValueError, match="image must be a 4-D tensor"):
        net(torch.zeros(1, 8, 8))
    model = CycleGAN(chans=4, num_pool_layers=2, disc_chans=4, generator_arch="resize")
    assert isinstance(model.g_ab, ResizeConvUnet) and isinstance(model.g_ba, ResizeConvUnet)


def test_cycle_warmup_ramps_the_cycle_weight(tmp_path):
    from recon.train.tasks_heads import HeadConfig, StepRunner, build_head, task_class

    config = HeadConfig(task="cyclegan", source="t1w", target="t2w", chans=4, depth=2, batch_size=1, patch_size=32,
                        output_dir=str(tmp_path), options={"cycle_warmup": 2, "lambda_cycle": 8.0, "lambda_structure": 2.0,
                                                               "disc_layers": 2})
    task = task_class("cyclegan")(config)
    rng = np.random.default_rng(0)
    mask = np.zeros((32, 32, 2), bool)
    mask[6:26, 6:26] = True
    task.prepare([{"t1w": rng.random((32, 32, 2)).astype(np.float32) * mask + 0.01,
                   "t2w": rng.random((32, 32, 2)).astype(np.float32) * mask + 0.01, "mask": mask}] * 2)
    model = build_head(config)
    run = StepRunner(task.optimisers(model), torch.Generator().manual_seed(0))
    seen = []
    for _ in range(3):
        task.step(model, run)
        seen.append((model.lambda_cycle, model.lambda_structure))
    # lambda x min(1, generator updates so far / warmup), cycle and structure alike
    assert seen == [pytest.approx((0.0, 0.0)), pytest.approx((4.0, 1.0)), pytest.approx((8.0, 2.0))]
    with pytest.raises(ValueError, match="cycle_warmup must be an int >= 0"):
        HeadConfig(task="cyclegan", source="t1w", target="t2w", options={"cycle_warmup": -1})


def test_local_ncc_squared_against_numpy_windows():
    from recon.heads.synthesis import local_ncc_squared

    rng = np.random.default_rng(5)
    a = rng.random((1, 1, 9, 10))
    b = -2 * a + rng.normal(0, 0.3, a.shape)  # inverted and noisy
    w, eps = 3, 1e-3
    vals = []
    for i in range(9 - w + 1):  # float64 reference: every valid window, population moments
        for j in range(10 - w + 1):
            x, y = a[0, 0, i:i + w, j:j + w].ravel(), b[0, 0, i:i + w, j:j + w].ravel()
            cov = np.mean(x * y) - x.mean() * y.mean()
            vals.append(cov ** 2 / ((x.var() + eps) * (y.var() + eps)))
    got = local_ncc_squared(torch.from_numpy(a), torch.from_numpy(b), window=w, eps=eps)
    assert float(got) == pytest.approx(np.mean(vals), rel=1e-9)
    # polarity-blind: an inverted copy scores like a copy
    assert float(local_ncc_squared(torch.from_numpy(a), torch.from_numpy(1 - a), w, 0.0)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same shape"):
        local_ncc_squared(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 9))
    # a window larger than the image has no valid position: a clear error, not torch's pooling one
    with pytest.raises(ValueError, match="window"):
        local_ncc_squared(torch.zeros(1, 1, 5, 9), torch.zeros(1, 1, 5, 9), window=7)
    assert float(local_ncc_squared(torch.from_numpy(a), torch.from_numpy(a), window=9, eps=0.0)) == pytest.approx(1.0)


def test_cyclegan_structure_term():
    torch.manual_seed(0)
    model = CycleGAN(chans=4, num_pool_layers=2, disc_chans=4, lambda_identity=0.0, lambda_structure=3.0)
    a, b = torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32)
    loss, parts, fake_a, fake_b = model.generator_loss(a, b)
    from recon.heads.synthesis import local_ncc_squared

    assert parts["struct_ab"] == pytest.approx(1 - float(local_ncc_squared(a, fake_b)), rel=1e-5)
    expected = (parts["adv_ab"] + parts["adv_ba"] + 10 * (parts["cycle_a"] + parts["cycle_b"])
                + 3 * (parts["struct_ab"] + parts["struct_ba"]))
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="lambda_structure must be a number >= 0"):
        CycleGAN(chans=4, lambda_structure=-1.0)


def test_cyclegan_skull_strip_option(tmp_path):
    from recon.train.tasks_heads import HeadConfig, normalise_volume, task_class

    rng = np.random.default_rng(1)
    mask = np.zeros((32, 32, 3), bool)
    mask[6:26, 8:24] = True
    items = [{"t1w": rng.random((32, 32, 3)).astype(np.float32) + 0.5,
              "t2w": rng.random((32, 32, 3)).astype(np.float32) + 0.5, "mask": mask} for _ in range(2)]
    config = HeadConfig(task="cyclegan", source="t1w", target="t2w", chans=4, depth=2, output_dir=str(tmp_path),
                        options={"skull_strip": True})
    task = task_class("cyclegan")(config)
    task.prepare(items)
    # slices of (volume x mask) / its own foreground mean: zero outside the brain
    expected = np.moveaxis(normalise_volume(items[0]["t1w"] * mask)[0], -1, 0)
    np.testing.assert_allclose(task.a[:, 0].numpy(), expected, rtol=1e-6)
    assert float(task.b[:, 0][:, ~mask[..., 0]].abs().max()) == 0.0


def test_cyclegan_source_negatives_term():
    torch.manual_seed(0)
    kw = dict(chans=4, num_pool_layers=2, disc_chans=4, pool_size=0)
    plain, neg = CycleGAN(**kw), CycleGAN(**kw, source_negatives=True)
    neg.load_state_dict(plain.state_dict())
    a, b, fa, fb = (torch.rand(1, 1, 32, 32) for _ in range(4))
    expected = plain.discriminator_loss(a, b, fa, fb) + 0.5 * (lsgan_loss(plain.d_a(b), False)
                                                               + lsgan_loss(plain.d_b(a), False))
    torch.testing.assert_close(neg.discriminator_loss(a, b, fa, fb), expected)
    with pytest.raises(TypeError, match="source_negatives must be a bool"):
        CycleGAN(chans=4, source_negatives=1)
