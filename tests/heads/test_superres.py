"""Super-resolution (recon.heads.superres, recon.train.tasks_superres, recon.super_resolve) against
independent references: closed forms of band-limited signals, numpy FFTs in float64, scipy filters,
torch's pixel_shuffle, explicit loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import recon
from recon.heads.superres import (
    MultiScaleFusionSR, SRDiscriminator3d, SRGAN3d, SRGenerator3d, check_scale, crop_to_multiple, cubic_upsample,
    high_frequency_energy, image_degrade, kspace_truncate, kspace_zero_pad, superres_volume, symmetries,
    upscale_image, voxel_shuffle,
)
from recon.train.tasks_superres import (
    SuperresConfig, build_superres, load_superres, parse_scales, save_superres, select_superres, train_superres,
)

F64 = dict(rtol=0, atol=1e-10)


def _bandlimited(n: int, freqs=((3, 1.0, 0.0), (5, 0.5, 0.3))) -> callable:
    """f(u) = 2 + sum a cos(2 pi k (u - n//2) / n + phi): a positive signal with |k| < 6."""

    def f(u):
        u = np.asarray(u, dtype=np.float64)
        return 2 + sum(a * np.cos(2 * np.pi * k * (u - n // 2) / n + p) for k, a, p in freqs)

    return f


def _np_centred_fft(x: np.ndarray, axes) -> np.ndarray:
    return np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(x, axes=axes), axes=axes, norm="ortho"), axes=axes)


# ----------------------------------------------------------------------------- degradation: closed forms

@pytest.mark.parametrize("size,s", [(32, 2), (32, 4), (33, 3), (30, 3), (36, 4)])
def test_kspace_truncate_of_bandlimited_signal_samples_it_at_block_centres(size, s):
    n = size // s  # the LR band holds |k| < n / 2 (and -n / 2 for even n): use frequencies inside it
    f = _bandlimited(size, freqs=((1, 1.0, 0.0), ((n - 1) // 2, 0.5, 0.3)))
    g = _bandlimited(size, freqs=((2, 0.7, 0.1), ((n - 1) // 2 - 1, 0.3, -0.5)))
    m = np.arange(size)
    x = np.outer(f(m), g(m))
    lr = kspace_truncate(torch.from_numpy(x), (s, s)).numpy()
    centres = s * np.arange(size // s) + (s - 1) / 2
    expected = np.outer(f(centres), g(centres))
    np.testing.assert_allclose(lr, expected, **F64)


def test_kspace_truncate_through_plane_only_3d():
    f = _bandlimited(24, freqs=((1, 1.0, 0.0), (3, 0.5, 0.3)))  # inside the 8-line band along z
    m = np.arange(24)
    vol = f(m)[:, None, None] * f(m)[None, :, None] * f(m)[None, None, :] + np.zeros((24, 24, 24))
    x = vol[:20, :22, :]  # in-plane axes untouched, any size
    lr = kspace_truncate(torch.from_numpy(x), (1, 1, 3)).numpy()
    assert lr.shape == (20, 22, 8)
    centres = 3 * np.arange(8) + 1.0
    expected = f(m[:20])[:, None, None] * f(m[:22])[None, :, None] * f(centres)[None, None, :]
    # the x/y axes are no longer band-limited after the crop to 20/22, but they are not transformed-and-cropped
    np.testing.assert_allclose(lr, expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("shape,scale", [((32, 32), (2, 2)), ((24, 36), (4, 3)), ((12, 16, 18), (2, 2, 3))])
def test_zero_pad_inverts_truncation_of_bandlimited_signal(shape, scale):
    grids = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    x = 4 + sum(np.cos(2 * np.pi * 1 * (g - n // 2) / n + 0.2 * i) for i, (g, n) in enumerate(zip(grids, shape)))
    lr = kspace_truncate(torch.from_numpy(x), scale)
    np.testing.assert_allclose(kspace_zero_pad(lr, scale).numpy(), x, **F64)


def test_kspace_truncate_matches_numpy_and_keeps_band_energy():
    rng = np.random.default_rng(0)
    x = rng.random((3, 20, 24))  # a batch of 2-D images, not band-limited
    s = (2, 4)
    lr_c = kspace_truncate(torch.from_numpy(x), s, spatial_dims=2, magnitude=False).numpy()
    lr_c = lr_c[..., 0] + 1j * lr_c[..., 1]
    # numpy reference: centred ortho FFT, crop the band, phase ramp to the block centres, inverse
    X = _np_centred_fft(x, (-2, -1))
    n = (10, 6)
    band = X[:, 10 - 5:10 + 5, 12 - 3:12 + 3]
    k0 = np.arange(10) - 5
    k1 = np.arange(6) - 3
    d0 = 0.5 - (10 - 2 * 5)
    d1 = 1.5 - (12 - 4 * 3)
    ramp = np.exp(2j * np.pi * k0[:, None] * d0 / 20) * np.exp(2j * np.pi * k1[None, :] * d1 / 24)
    ref = np.fft.fftshift(np.fft.ifftn(np.fft.ifftshift(band * ramp, axes=(-2, -1)), axes=(-2, -1), norm="ortho"),
                          axes=(-2, -1)) * math.sqrt(math.prod(n) / (20 * 24))
    np.testing.assert_allclose(lr_c, ref, rtol=0, atol=1e-12)
    # Parseval: LR energy x (N / n) = the energy of the kept band
    np.testing.assert_allclose((np.abs(lr_c) ** 2).sum() * (20 * 24) / 60, (np.abs(band) ** 2).sum(), rtol=1e-12)
    mag = kspace_truncate(torch.from_numpy(x), s, spatial_dims=2).numpy()
    np.testing.assert_allclose(mag, np.abs(ref), rtol=0, atol=1e-12)


def test_high_frequency_energy_is_the_energy_outside_the_band():
    rng = np.random.default_rng(1)
    x = rng.random((16, 18))
    X = _np_centred_fft(x, (0, 1))
    inside = np.zeros_like(x, dtype=bool)
    inside[8 - 4:8 + 4, 9 - 3:9 + 3] = True
    expected = (np.abs(X[~inside]) ** 2).sum()
    assert high_frequency_energy(x, (2, 3)) == pytest.approx(expected, rel=1e-12)
    f = _bandlimited(32)
    assert high_frequency_energy(np.outer(f(np.arange(32)), f(np.arange(32))), 2) < 1e-20


def test_image_degrade_block_average_blur_and_noise():
    from scipy.ndimage import gaussian_filter1d

    rng = np.random.default_rng(2)
    x = rng.random((2, 12, 18, 21))
    lr = image_degrade(torch.from_numpy(x), (1, 2, 3), spatial_dims=3).numpy()
    np.testing.assert_allclose(lr, x.reshape(2, 12, 9, 2, 7, 3).mean(axis=(3, 5)), **F64)
    fwhm = 3.0
    sigma = fwhm / (2 * math.sqrt(2 * math.log(2)))
    radius = math.ceil(3 * sigma)
    blurred = gaussian_filter1d(x, sigma, axis=-1, mode="mirror", truncate=radius / sigma)
    lr = image_degrade(torch.from_numpy(x), (1, 1, 3), fwhm=(0, 0, fwhm), spatial_dims=3).numpy()
    np.testing.assert_allclose(lr, blurred.reshape(2, 12, 18, 7, 3).mean(-1), rtol=0, atol=1e-12)
    g = torch.Generator().manual_seed(0)
    noisy = image_degrade(torch.zeros(200, 200, dtype=torch.float64), 2, noise_sigma=0.5, generator=g)
    # Rayleigh background: mean sigma sqrt(pi / 2)
    assert float(noisy.mean()) == pytest.approx(0.5 * math.sqrt(math.pi / 2), rel=0.03)


def test_taper_borders_is_a_separable_cosine_window():
    from recon.heads.superres import taper_borders

    x = torch.ones(2, 20, 30, dtype=torch.float64)
    y = taper_borders(x, 4, spatial_dims=2)
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(4) + 0.5) / 4)
    w0 = np.ones(20)
    w0[:4], w0[-4:] = ramp, ramp[::-1]
    w1 = np.ones(30)
    w1[:4], w1[-4:] = ramp, ramp[::-1]
    np.testing.assert_allclose(y[1].numpy(), np.outer(w0, w1), **F64)


def test_crop_to_multiple_and_check_scale():
    x = torch.zeros(2, 13, 17)
    assert crop_to_multiple(x, (2, 4), spatial_dims=2).shape == (2, 12, 16)
    assert check_scale(3, 3) == (3, 3, 3)
    assert check_scale((1, 1, np.int64(3)), 3) == (1, 1, 3)
    assert parse_scales(["2"], 2) == [(2, 2)]
    assert parse_scales(["1,1,3", "1,1,4"], 3) == [(1, 1, 3), (1, 1, 4)]


# ----------------------------------------------------------------------------- interpolation and shuffle

def test_cubic_upsample_reproduces_quadratics():
    # Keys' cubic convolution (a = -0.5) reproduces polynomials up to degree 2 away from the border
    s = (2, 3, 2)
    d, h, w = 8, 9, 10
    g = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in (d, h, w)], indexing="ij")
    lr = 0.3 * g[0] - 0.2 * g[1] + 0.7 * g[2] ** 2 / 9 + 1.0
    up = cubic_upsample(torch.from_numpy(lr)[None, None], s)[0, 0].numpy()
    coords = np.meshgrid(*[(np.arange(n * f) + 0.5) / f - 0.5 for n, f in zip((d, h, w), s)], indexing="ij")
    ref = 0.3 * coords[0] - 0.2 * coords[1] + 0.7 * coords[2] ** 2 / 9 + 1.0
    inner = tuple(slice(2 * f, (n - 2) * f) for n, f in zip((d, h, w), s))
    np.testing.assert_allclose(up[inner], ref[inner], rtol=0, atol=1e-10)


def test_voxel_shuffle_against_pixel_shuffle_and_loops():
    x = torch.randn(2, 12, 5, 6)
    torch.testing.assert_close(voxel_shuffle(x, (2, 2)), F.pixel_shuffle(x, 2))
    y = np.random.default_rng(3).standard_normal((1, 2 * 2 * 1 * 3, 3, 4, 2))
    out = voxel_shuffle(torch.from_numpy(y), (2, 1, 3)).numpy()
    ref = np.zeros((1, 2, 6, 4, 6))
    for c in range(2):
        for a in range(2):
            for b in range(1):
                for e in range(3):
                    ch = c * 6 + a * 3 + b * 3 + e
                    ref[0, c, a::2, b::1, e::3] = y[0, ch]
    np.testing.assert_array_equal(out, ref)


# ----------------------------------------------------------------------------- networks

def test_fusion_network_starts_as_cubic_interpolation_and_has_its_receptive_field():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # seeded weights: a run of dead ReLUs at the field's edge cannot hide it
        net = MultiScaleFusionSR(dims=2, chans=4, num_blocks=2, kernel_sizes=(3, 5))
        lr = torch.rand(1, 1, 10, 12)
        torch.testing.assert_close(net(lr, 2), cubic_upsample(lr, (2, 2)))
        torch.nn.init.normal_(net.tail.weight)
    grad = torch.zeros(41, 41)
    for seed in range(4):  # union over inputs, so no position is missed by a ReLU that happens to be off
        up = torch.randn(1, 1, 41, 41, generator=torch.Generator().manual_seed(seed)).requires_grad_(True)
        out = net.tail(net.blocks(F.relu(net.head(up))))
        out[0, 0, 20, 20].backward()
        grad += up.grad[0, 0].abs()
    support = (grad > 0).nonzero()
    width = int(support[:, 0].max() - support[:, 0].min() + 1)
    assert width == net.receptive_field == 1 + 2 + 2 * 4 + 2


def test_fusion_network_zero_fill_base_is_sinc_interpolation():
    net = MultiScaleFusionSR(dims=3, chans=4, num_blocks=1, interpolation="zero_fill")
    lr = torch.rand(1, 1, 6, 8, 4, dtype=torch.float64)
    net = net.double()
    ref = kspace_zero_pad(lr[0, 0], (1, 2, 3))
    torch.testing.assert_close(net(lr, (1, 2, 3))[0, 0], ref)


def _np_sinc_interpolation(lr: np.ndarray, scale) -> np.ndarray:
    """Zero-filled k-space interpolation by direct trigonometric sums in float64 (no FFT): along each
    enlarged axis the LR samples' trigonometric interpolant with the frequencies a centred n-point
    DFT holds (k = -n//2 .. n - n//2 - 1), evaluated at LR coordinate (i - (s - 1) / 2) / s for HR
    voxel i (LR voxel j at the centre of HR voxels s j .. s j + s - 1); magnitude at the end."""
    out = lr.astype(np.complex128)
    for axis, s in enumerate(scale):
        if s == 1:
            continue
        n = out.shape[axis]
        t = (np.arange(n * s) - (s - 1) / 2) / s
        k = np.arange(-(n // 2), n - n // 2)
        j = np.arange(n)
        basis = np.exp(2j * np.pi * k[None, None, :] * (t[:, None, None] - j[None, :, None]) / n).sum(-1) / n
        out = np.moveaxis(np.tensordot(basis, np.moveaxis(out, axis, 0), axes=(1, 0)), 0, axis)
    return np.abs(out)


@pytest.mark.parametrize("shape,scale", [((10, 12), (2, 2)), ((9, 8), (4, 3)), ((8, 8, 5), (1, 1, 3)),
                                         ((10, 12, 10), (2, 2, 2))])
def test_untrained_networks_are_exactly_sinc_interpolation(shape, scale):
    """Zero-initialised output layers: an untrained zero-filling network (fusion 2-D/3-D, SRGAN
    generator, with and without biases) is the numpy zero-padding reference, whole images too."""
    rng = np.random.default_rng(3)
    lr = rng.random(shape) + 0.5
    ref = _np_sinc_interpolation(lr, scale)
    np.testing.assert_allclose(kspace_zero_pad(torch.from_numpy(lr), scale).numpy(), ref, rtol=0, atol=1e-12)
    x = torch.from_numpy(lr)[None, None]
    for bias in (True, False):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            nets = [MultiScaleFusionSR(dims=len(shape), chans=4, num_blocks=1, kernel_sizes=(3,),
                                       interpolation="zero_fill", scale_input=len(shape) == 3, bias=bias)]
            if len(shape) == 3:
                nets.append(SRGenerator3d(scale, chans=4, num_blocks=0, interpolation="zero_fill", bias=bias))
        for net in nets:
            net = net.double().eval()
            with torch.no_grad():
                np.testing.assert_allclose(net(x, scale)[0, 0].numpy(), ref, rtol=0, atol=1e-12)
            if isinstance(net, MultiScaleFusionSR) or scale == (2, 2, 2):  # inputs above the receptive field
                # the one call's path (whole-image interpolation, residual by overlapping patches), float32
                out = upscale_image(net.float(), torch.from_numpy(lr).float(), scale, patch_size=8, overlap=2)
                np.testing.assert_allclose(out.numpy(), ref, rtol=2e-6, atol=2e-6)


def test_2d_network_on_the_planes_through_thick_slices():
    """A 2-D network with a (1, 1, s) volume runs on every X-Z and Y-Z plane (averaged): untrained,
    it is sinc interpolation along z (numpy reference); a residual shows in both plane families."""
    rng = np.random.default_rng(4)
    vol = rng.random((9, 10, 6)) + 0.5
    net = MultiScaleFusionSR(dims=2, chans=4, num_blocks=1, kernel_sizes=(3,), interpolation="zero_fill",
                             scale_input=True, bias=False).eval()
    out = upscale_image(net, torch.from_numpy(vol).float(), (1, 1, 3))
    np.testing.assert_allclose(out.numpy(), _np_sinc_interpolation(vol, (1, 1, 3)), rtol=2e-6, atol=2e-6)
    torch.nn.init.constant_(net.tail.weight, 0.01)  # a residual: the mean of the two plane families
    x = torch.from_numpy(vol / vol[vol > vol.mean()].mean()).float()
    with torch.no_grad():
        xz = torch.stack([net(x[:, j][None, None], (1, 3))[0, 0] for j in range(10)], 1)
        yz = torch.stack([net(x[i][None, None], (1, 3))[0, 0] for i in range(9)], 0)
    unit = float(vol[vol > vol.mean()].mean())
    torch.testing.assert_close(upscale_image(net, torch.from_numpy(vol).float(), (1, 1, 3)),
                               (0.5 * (xz + yz) * unit).clamp(min=0), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="enlarges the last axis and another"):
        upscale_image(net, torch.from_numpy(vol).float(), (1, 2, 2))


def test_bias_free_networks_are_positively_homogeneous():
    """No biases: f(a x) = a f(x) for a > 0 with any weights (the same output at any intensity scale)."""
    x = torch.rand(1, 1, 6, 6, 5, dtype=torch.float64) + 0.2
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(2)
        fusion = MultiScaleFusionSR(dims=3, chans=4, num_blocks=1, interpolation="zero_fill", scale_input=True,
                                    bias=False).double()
        gen = SRGenerator3d((1, 1, 2), chans=4, num_blocks=1, interpolation="zero_fill", bias=False).double()
        biased = MultiScaleFusionSR(dims=3, chans=4, num_blocks=1, interpolation="zero_fill", bias=True).double()
        for net in (fusion, gen, biased):
            for p in net.parameters():
                torch.nn.init.normal_(p, std=0.3)
    assert all(m.bias is None for m in fusion.modules() if isinstance(m, torch.nn.Conv3d))
    with torch.no_grad():
        for net in (fusion, gen):
            torch.testing.assert_close(net(7.0 * x, (1, 1, 2)), 7.0 * net(x, (1, 1, 2)), rtol=1e-10, atol=1e-10)
        assert not torch.allclose(biased(7.0 * x, (1, 1, 2)), 7.0 * biased(x, (1, 1, 2)), rtol=1e-3)


def test_weight_files_from_before_the_bias_option_load_as_they_were_trained():
    """Files without the 'bias' option: biases on, and the SRGAN generator's base cubic whatever
    'interpolation' said (its network added cubic interpolation then)."""
    from recon.train.tasks_heads import HeadConfig, task_class

    old = {"dims": 3, "scales": ["2,2,2"], "interpolation": "zero_fill", "disc_chans": 4}
    sr = task_class("srgan")(HeadConfig(task="srgan", chans=4, depth=1, options=old)).sr_config()
    assert sr.bias is True and sr.interpolation == "cubic"
    g = build_superres(sr).g
    assert g.interpolation == "cubic" and g.head[0].bias is not None
    new = task_class("srgan")(HeadConfig(task="srgan", chans=4, depth=1, options={**old, "bias": False})).sr_config()
    assert new.bias is False and new.interpolation == "zero_fill"
    fusion = task_class("superres")(HeadConfig(task="superres", chans=4, depth=1,
                                               options={"dims": 2, "interpolation": "zero_fill"})).sr_config()
    assert fusion.bias is True and fusion.interpolation == "zero_fill"


def test_scale_conditioned_fusion_network_sees_log2_scale_channels():
    net = MultiScaleFusionSR(dims=3, chans=4, num_blocks=0, scale_input=True)
    assert net.head.in_channels == 4
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        torch.nn.init.normal_(net.tail.weight)
    up = torch.rand(1, 1, 6, 6, 6)
    a, b = net.refine(up, (1, 1, 2)), net.refine(up, (1, 1, 4))
    assert not torch.allclose(a, b)  # the scale changes the residual
    # the head's input: the image and constant log2(s) maps (1, 1, 2) -> 0, 0, 1
    seen = {}
    net.head.register_forward_hook(lambda m, inp, out: seen.setdefault("x", inp[0]))
    net.refine(up, (1, 1, 4))
    torch.testing.assert_close(seen["x"][0, 1:], torch.tensor([0.0, 0.0, 2.0]).view(3, 1, 1, 1).expand(3, 6, 6, 6))


def test_fusion_network_3d_and_srgan_shapes_and_losses():
    net = MultiScaleFusionSR(dims=3, chans=4, num_blocks=1)
    assert net(torch.rand(2, 1, 6, 7, 4), (1, 1, 3)).shape == (2, 1, 6, 7, 12)
    gan = SRGAN3d((2, 2, 2), chans=4, num_blocks=1, disc_chans=4, disc_layers=2, adv_weight=0.0)
    lr, hr = torch.rand(2, 1, 6, 6, 6), torch.rand(2, 1, 12, 12, 12)
    loss, parts, sr = gan.generator_loss(lr, hr)
    assert sr.shape == hr.shape
    assert float(loss.detach()) == pytest.approx(float(((sr.detach() - hr) ** 2).mean()), rel=1e-6)
    assert parts["adv"] == 0.0
    gan.adv_weight = 0.5
    loss, parts, sr = gan.generator_loss(lr, hr)
    d = gan.d(sr).detach().numpy()
    assert parts["adv"] == pytest.approx(float(((d - 1) ** 2).mean()), rel=1e-5)
    d_loss = gan.discriminator_loss(hr, sr)
    dr, df = gan.d(hr).detach().numpy(), gan.d(sr).detach().numpy()
    assert float(d_loss) == pytest.approx(0.5 * (((dr - 1) ** 2).mean() + (df ** 2).mean()), rel=1e-5)
    assert SRDiscriminator3d(chans=4, num_layers=2)(torch.rand(3, 1, 8, 8, 8)).shape == (3, 1)
    g = SRGenerator3d((1, 1, 3), chans=4, num_blocks=1)
    torch.testing.assert_close(g(lr), cubic_upsample(lr, (1, 1, 3)))  # zero-initialised output layer


def test_patches_blend_to_the_whole_image_result():
    def nearest(lr, scale):  # a local model: tiling must not change it
        out = lr
        for axis, f in enumerate(scale):
            out = out.repeat_interleave(f, dim=2 + axis)
        return out

    vol = torch.rand(1, 19, 23, 9, dtype=torch.float64)
    out = superres_volume(nearest, vol, (2, 1, 3), patch_size=8, overlap=3)
    ref = np.kron(vol[0].numpy(), np.ones((2, 1, 3)))
    np.testing.assert_allclose(out[0].numpy(), ref, **F64)


def test_upscale_image_is_intensity_equivariant_and_slices_a_volume_with_a_2d_network():
    net = MultiScaleFusionSR(dims=2, chans=4, num_blocks=1).eval()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        torch.nn.init.normal_(net.tail.weight, std=0.1)
    x = torch.rand(20, 24) + 0.1
    a = upscale_image(net, x, (2, 2))
    b = upscale_image(net, 37.0 * x, (2, 2))
    # float32 rounding of the normalisation is relative to the image's magnitude, not to each
    # voxel: near-zero outputs carry an error of order eps * max|a| (CI's CPU showed 3e-7 there)
    torch.testing.assert_close(b / 37.0, a, rtol=1e-5, atol=1e-5 * float(a.abs().max()))
    vol = torch.rand(20, 24, 3) + 0.1
    out = upscale_image(net, vol, (2, 2, 1))
    assert out.shape == (40, 48, 3)
    with pytest.raises(ValueError, match="scale"):
        upscale_image(net, vol, (2, 1, 2))



def _np_square_symmetries(a: np.ndarray) -> list[np.ndarray]:
    """The 8 symmetries of the square on the first two axes: numpy rotations of a and of its transpose."""
    t = np.swapaxes(a, 0, 1)
    return [np.rot90(a, k, axes=(0, 1)) for k in range(4)] + [np.rot90(t, k, axes=(0, 1)) for k in range(4)]


def _apply(x: np.ndarray, flips, swap: bool) -> np.ndarray:
    y = np.flip(x, flips) if flips else x
    return np.swapaxes(y, 0, 1) if swap else y


def test_symmetries_are_the_square_group_or_the_flips():
    a = np.arange(12.0).reshape(3, 4)
    got = {_apply(a, f, w).tobytes() for f, w in symmetries((2, 2))}
    assert len(symmetries((2, 2))) == 8 and got == {r.tobytes() for r in _np_square_symmetries(a)}
    assert sorted(f for f, w in symmetries((1, 3))) == [(), (0,), (0, 1), (1,)]  # unequal factors: no transpose
    v = np.arange(24.0).reshape(2, 3, 4)
    flips3 = [np.flip(v, ax) if ax else v for ax in ((), (0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2))]
    assert {_apply(v, f, w).tobytes() for f, w in symmetries((2, 2, 2))} == {r.tobytes() for r in flips3}


def _random_tail(net: torch.nn.Module, seed: int = 5) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for p in net.parameters():
            torch.nn.init.normal_(p, std=0.2)
    return net.eval()


def test_self_ensemble_is_the_mean_over_the_transformed_inputs():
    """2-D slice: the mean over the 8 numpy rotations/transposes R of R^-1(f(R x)) (f the plain call);
    a 3-D network: the mean over the 8 flips; an untrained zero-filling network stays exactly sinc
    interpolation (odd LR sizes: the zero-filled band is then symmetric). One negative voxel each:
    no clipping at 0, which the plain calls would do before averaging."""
    rng = np.random.default_rng(6)
    sl = (rng.random((15, 17)) + 0.3).astype(np.float32)
    sl[0, 0] = -0.1
    net = _random_tail(MultiScaleFusionSR(dims=2, chans=4, num_blocks=1, kernel_sizes=(3,), interpolation="zero_fill"))
    f = lambda x: upscale_image(net, torch.from_numpy(np.ascontiguousarray(x)), (2, 2)).numpy()  # noqa: E731
    outs = []
    for k in range(8):
        x = np.swapaxes(sl, 0, 1) if k >= 4 else sl
        y = np.rot90(f(np.rot90(x, k % 4)), -(k % 4))  # undo the rotation, then the transpose
        outs.append(np.swapaxes(y, 0, 1) if k >= 4 else y)
    ens = upscale_image(net, torch.from_numpy(sl), (2, 2), self_ensemble=True).numpy()
    np.testing.assert_allclose(ens, np.mean(outs, 0), rtol=1e-5, atol=1e-5)
    assert np.abs(ens - f(sl)).max() > 1e-3  # not the plain call
    vol = (rng.random((11, 13, 11)) + 0.3).astype(np.float32)
    vol[0, 0, 0] = -0.1
    gen = _random_tail(SRGenerator3d((2, 2, 2), chans=4, num_blocks=0, interpolation="zero_fill"))
    g = lambda x: upscale_image(gen, torch.from_numpy(np.ascontiguousarray(x)), (2, 2, 2)).numpy()  # noqa: E731
    flips = [(), (0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2)]
    ref = np.mean([np.flip(g(np.flip(vol, a)), a) if a else g(vol) for a in flips], 0)
    got = upscale_image(gen, torch.from_numpy(vol), (2, 2, 2), self_ensemble=True).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    untrained = MultiScaleFusionSR(dims=2, chans=4, num_blocks=1, interpolation="zero_fill").eval()
    for x, scale in ((sl, (2, 2)), (vol, (2, 2, 1)), (vol, (1, 1, 3)), (vol, (2, 2, 2))):
        out = upscale_image(untrained, torch.from_numpy(x), scale, self_ensemble=True).numpy()
        np.testing.assert_allclose(out, _np_sinc_interpolation(x.astype(np.float64), scale), rtol=2e-6, atol=2e-6)
    with pytest.raises(TypeError, match="self_ensemble"):
        upscale_image(net, torch.from_numpy(sl), (2, 2), self_ensemble="yes")


def test_2d_network_on_the_three_plane_families_of_an_isotropic_volume():
    """(s, s, s) with a 2-D network: sinc interpolation of the whole volume (numpy reference) plus the
    mean of the network's residuals on its Y-Z, X-Z and X-Y planes (each plane an (s, s) slice)."""
    rng = np.random.default_rng(7)
    vol = rng.random((9, 11, 7)) + 0.3
    net = _random_tail(MultiScaleFusionSR(dims=2, chans=4, num_blocks=1, kernel_sizes=(3,), interpolation="zero_fill"))
    unit = float(vol[vol > vol.mean()].mean())
    up = _np_sinc_interpolation(vol / unit, (2, 2, 2))
    residual = np.zeros_like(up)
    with torch.no_grad():
        for axis in range(3):
            for i in range(up.shape[axis]):
                plane = torch.from_numpy(np.take(up, i, axis=axis)).float()[None, None]
                r = (net.refine(plane, (2, 2)) - plane)[0, 0].double().numpy()
                index = [slice(None)] * 3
                index[axis] = i
                residual[tuple(index)] += r / 3
    out = upscale_image(net, torch.from_numpy(vol).float(), (2, 2, 2)).numpy()
    np.testing.assert_allclose(out, np.clip((up + residual) * unit, 0, None), rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- training and the one call

@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    """Tiny trained-for-a-few-steps weight files (2-D x2, 3-D thick, SRGAN x2) on random volumes."""
    folder = tmp_path_factory.mktemp("sr")
    rng = np.random.default_rng(0)
    vols = [rng.random((24, 26, 24)).astype(np.float32) + 0.5 for _ in range(2)]
    paths = {}
    for key, kw in {"2d": dict(dims=2, scales=[(2, 2)], patch_size=16),
                    "thick": dict(dims=3, scales=[(1, 1, 2), (1, 1, 3)], patch_size=12),
                    "srgan": dict(task="srgan", dims=3, scales=[(2, 2, 2)], patch_size=12, pretrain_steps=1)}.items():
        config = SuperresConfig(**kw, chans=4, num_blocks=1, disc_chans=4, steps=2, batch_size=2,
                                output_dir=str(folder / key), num_threads=1)
        paths[key] = train_superres(config, vols).weights
    return paths


def test_training_writes_loadable_weights_and_resumes(tiny_weights, tmp_path):
    model, config, card = load_superres(tiny_weights["2d"])
    assert isinstance(model, MultiScaleFusionSR) and config.scales == [(2, 2)] and card["steps"] == 2
    g, gconfig, _ = load_superres(tiny_weights["srgan"])
    assert isinstance(g, SRGenerator3d) and g.scale == (2, 2, 2)
    assert (tiny_weights["srgan"].parent / "srgan-3d-x2-mse.pt").is_file()
    # resume: 2 more steps from last.ckpt continue the count
    vols = [np.random.default_rng(1).random((24, 26, 24)).astype(np.float32) + 0.5]
    c = SuperresConfig(dims=2, scales=[(2, 2)], patch_size=16, chans=4, num_blocks=1, steps=2, batch_size=2,
                       output_dir=str(tmp_path))
    train_superres(c, vols)
    r = train_superres(SuperresConfig(**{**c.__dict__, "steps": 4}), vols)
    assert r.steps == 4 and len(r.history) >= 1


def test_super_resolve_shapes_units_and_thick_axis(tiny_weights):
    rng = np.random.default_rng(4)
    sl = rng.random((20, 22)).astype(np.float32) + 0.2
    out = recon.super_resolve(sl, 2, weights=str(tiny_weights["2d"]))
    assert isinstance(out, np.ndarray) and out.shape == (40, 44) and out.dtype == np.float32
    out10 = recon.super_resolve(10 * sl, 2, weights=str(tiny_weights["2d"]))
    np.testing.assert_allclose(out10, 10 * out, rtol=1e-4, atol=1e-4)
    vol = rng.random((16, 18, 8)).astype(np.float32) + 0.2
    thin = recon.super_resolve(torch.from_numpy(vol), (1, 1, 3), weights=str(tiny_weights["thick"]), patch_size=10,
                               overlap=3)
    assert isinstance(thin, torch.Tensor) and thin.shape == (16, 18, 24)
    # a thick axis other than the last is moved there and back
    other = recon.super_resolve(np.ascontiguousarray(vol.transpose(2, 0, 1)), (3, 1, 1),
                                weights=str(tiny_weights["thick"]), patch_size=10, overlap=3)
    np.testing.assert_allclose(other, thin.numpy().transpose(2, 0, 1), rtol=1e-5, atol=1e-5)
    iso = recon.super_resolve(np.concatenate([vol, vol], -1), 2, weights=str(tiny_weights["srgan"]))
    assert iso.shape == (32, 36, 32)
    # self-ensemble: on by default for a 2-D network on slices and in-plane volumes, off otherwise
    from recon.heads.superres import upscale_image
    from recon.train.tasks_superres import self_ensemble_default

    net, _, _ = load_superres(tiny_weights["2d"])
    for flag in (True, False):
        np.testing.assert_allclose(recon.super_resolve(sl, 2, weights=str(tiny_weights["2d"]), self_ensemble=flag),
                                   upscale_image(net, torch.from_numpy(sl), (2, 2), self_ensemble=flag).numpy(),
                                   rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out, upscale_image(net, torch.from_numpy(sl), (2, 2), self_ensemble=True).numpy(),
                               rtol=1e-6, atol=1e-6)
    assert [self_ensemble_default(n, s, d) for n, s, d in ((2, (2, 2), 2), (3, (4, 4, 1), 2), (3, (2, 2, 2), 2),
                                                             (3, (1, 1, 3), 2), (3, (2, 2, 2), 3))] == \
        [True, True, False, False, False]
    assert not self_ensemble_default(2, (2, 2), 2, "sinc")  # the sinc pseudo-network: nothing to average
    with pytest.raises(TypeError, match="self_ensemble"):
        recon.super_resolve(sl, 2, weights=str(tiny_weights["2d"]), self_ensemble="no")
    with pytest.warns(UserWarning, match="trained for scales"):
        recon.super_resolve(sl, 3, weights=str(tiny_weights["2d"]))


def test_default_networks_are_chosen_by_scale():
    from recon.train.tasks_superres import available_superres

    bundled = available_superres()
    needed = {"superres-2d-x2", "superres-2d-x4", "superres-3d-thick", "superres-2d-thick", "srgan-3d-x2-mse"}
    if not needed <= set(bundled):
        pytest.skip("bundled super-resolution weights not present")
    assert select_superres(2, (2, 2))[1].weight_name == "superres-2d-x2"
    assert select_superres(2, (4, 4))[1].weight_name == "superres-2d-x4"
    # 2x thick slices: no bundled network beat sinc on validation, so sinc alone (THICK_DEFAULT)
    _, config, axes = select_superres(3, (2, 1, 1))
    assert config.weight_name == "sinc" and axes == (1, 2, 0)
    with pytest.warns(UserWarning, match="trained for scales"):  # other factors: the 3-D network
        _, config, axes = select_superres(3, (1, 5, 1))
    assert config.weight_name == "superres-3d-thick" and axes == (0, 2, 1)
    _, config, axes = select_superres(3, (1, 4, 1))
    assert config.weight_name == "superres-2d-thick" and config.dims == 2 and axes == (0, 2, 1)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the 2-D x2 network on the planes of a (2, 2, 2) volume: its own scale
        _, config, axes = select_superres(3, (2, 2, 2))
    assert config.weight_name == "superres-2d-x2" and config.dims == 2 and axes is None
    assert select_superres(3, (2, 2, 1))[1].dims == 2


@pytest.mark.slow
def test_bundled_2d_network_beats_cubic_on_held_out_anatomy():
    from scipy.ndimage import zoom

    from recon.data.phantom import Subject
    from recon.metrics import psnr

    from recon.train.tasks_superres import available_superres

    if "superres-2d-x2" not in available_superres():
        pytest.skip("bundled super-resolution weights not present")
    subject = Subject(seed=321, voxel_size=1.0, z_range=(90, 91))  # never a training seed
    hr = subject.contrast("t2w").volume[:, :, 0]
    hr = hr[: hr.shape[0] // 4 * 4, : hr.shape[1] // 4 * 4].astype(np.float64)
    lr = kspace_truncate(torch.from_numpy(hr), (2, 2)).numpy()
    cubic = zoom(lr, 2, order=3, grid_mode=True, mode="reflect")
    net = recon.super_resolve(lr.astype(np.float32), 2)
    assert psnr(hr, net) > psnr(hr, cubic) + 1.0


def test_recon_train_task_superres_through_the_head_loop_and_recon_superres_command(tmp_path):
    from recon.cli import main as cli_main
    from recon.data.io import load_nifti, save_nifti
    from recon.train import main as train_main

    rng = np.random.default_rng(5)
    for name in ("a", "b"):
        (tmp_path / "data" / "t1w").mkdir(parents=True, exist_ok=True)
        save_nifti(tmp_path / "data" / "t1w" / f"{name}.nii.gz", rng.random((20, 24, 18)).astype(np.float32) + 0.5,
                   affine=np.eye(4))
    code = train_main(["--task", "superres", "--dims", "2", "--scales", "2", "--contrasts", "t1w", "--chans", "4",
                       "--depth", "1", "--steps", "2", "--batch-size", "2", "--patch-size", "16",
                       "--train-data", str(tmp_path / "data"), "--output-dir", str(tmp_path / "run"),
                       "--num-threads", "1"])
    assert code == 0
    weights = tmp_path / "run" / "superres-2d-x2.pt"
    model, config, _ = load_superres(weights)
    assert isinstance(model, MultiScaleFusionSR) and config.scales == [(2, 2)] and config.num_blocks == 1
    # the command: NIfTI in, NIfTI out, voxels halved in-plane over the same field of view
    affine = np.diag([2.0, 2.0, 3.0, 1.0])
    affine[:3, 3] = (10.0, -5.0, 7.0)
    save_nifti(tmp_path / "lr.nii.gz", rng.random((20, 22, 3)).astype(np.float32) + 0.5, affine=affine)
    assert cli_main(["superres", str(tmp_path / "lr.nii.gz"), "-o", str(tmp_path / "hr.nii.gz"), "--scale", "2,2,1",
                     "--weights", str(weights)]) == 0
    hr, hr_affine, zooms = load_nifti(tmp_path / "hr.nii.gz")
    assert hr.shape == (40, 44, 3)
    np.testing.assert_allclose(np.diag(hr_affine)[:3], [1.0, 1.0, 3.0])
    # HR voxel 0 is centred half an HR voxel inside the LR voxel 0's edge: x0 - 2/2 + 1/2
    np.testing.assert_allclose(hr_affine[:3, 3], [9.5, -5.5, 7.0])
    # --no-self-ensemble: the plain network (self_ensemble=False), the default self-ensembled
    lr_vol = load_nifti(tmp_path / "lr.nii.gz")[0]
    assert cli_main(["superres", str(tmp_path / "lr.nii.gz"), "-o", str(tmp_path / "plain.nii.gz"), "--scale", "2,2,1",
                     "--weights", str(weights), "--no-self-ensemble"]) == 0
    for out, flag in (("plain.nii.gz", False), ("hr.nii.gz", True)):
        np.testing.assert_allclose(load_nifti(tmp_path / out)[0],
                                   recon.super_resolve(lr_vol, (2, 2, 1), str(weights), self_ensemble=flag),
                                   rtol=1e-5, atol=1e-5)


def test_train_superres_runs_rebuild_the_bundled_architectures():
    """Every run of scripts/train_superres.py builds the network its bundled weight file holds
    (same parameter names and shapes, same base interpolation): the reproduce command in each card
    must give that network, and superres-2d-x4 starts from superres-2d-x2's weights."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "train_superres.py"
    spec = importlib.util.spec_from_file_location("train_superres_script", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, (fields, _) in module.RUNS.items():
        fields = {k: v for k, v in fields.items() if k != "init_from"}
        built = build_superres(SuperresConfig(**fields, train_data="phantom:0-1"))
        built = built.g if fields["task"] == "srgan" else built
        shipped, _, _ = load_superres(name)
        want = {k: tuple(v.shape) for k, v in shipped.state_dict().items()}
        got = {k: tuple(v.shape) for k, v in built.state_dict().items()}
        assert got == want, name
        assert built.interpolation == shipped.interpolation, name


def test_bundled_cards_reproduce_lines_match_their_networks():
    """Each bundled card's ``recon train`` line asks for biases (``--conv-bias``) exactly when its
    network has them (the flag's default is bias-free), and its scales are the network's."""
    import json
    from pathlib import Path

    from recon.train.tasks_superres import available_superres

    folder = Path(recon.__file__).resolve().parents[1] / "data" / "weights" / "heads"
    names = [n for n in available_superres() if (folder / f"{n}.json").is_file()]
    if not names:
        pytest.skip("bundled super-resolution weights not present")
    for name in names:
        card = json.loads((folder / f"{name}.json").read_text())
        line = card.get("recon_train_equivalent", "")
        assert line.startswith("recon train "), f"{name}: card has no recon_train_equivalent line"
        net, config, _ = load_superres(name)
        has_bias = any(m.bias is not None for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d)))
        assert ("--conv-bias" in line) == has_bias, name
        assert has_bias == config.bias, name
        words = line.split()
        start = words.index("--scales") + 1
        stop = next((i for i in range(start, len(words)) if words[i].startswith("--")), len(words))
        dims = int(words[words.index("--dims") + 1])
        scales = [tuple(int(v) for v in w.split(",")) for w in words[start:stop]]
        scales = [s * dims if len(s) == 1 else s for s in scales]  # "2" means 2 along every axis
        assert [tuple(s) for s in config.scales] == scales, name


def test_iso_planes_training_pairs_are_planes_of_the_3d_degraded_volume():
    """planes='iso': every third plane of each orientation of the tapered volume (truth) and of the
    numpy sinc interpolation of its 3-D k-space truncation (input); one equal-factor scale only."""
    from recon.heads.superres import taper_borders
    from recon.train.tasks_superres import _Pairs

    rng = np.random.default_rng(8)
    vol = (rng.random((13, 14, 10)) + 0.5).astype(np.float32)  # odd axis cropped to 12
    c = SuperresConfig(dims=2, scales=[(2, 2)], planes="iso", patch_size=8, chans=4, num_blocks=1, steps=1)
    pairs = _Pairs(c, [vol], torch.Generator().manual_seed(0))
    hr = taper_borders(torch.from_numpy(vol[:12]).double(), spatial_dims=3)
    up = _np_sinc_interpolation(kspace_truncate(hr, (2, 2, 2)).numpy(), (2, 2, 2))
    assert len(pairs.items) == 3
    for axis, item in enumerate(pairs.items):
        keep = (np.moveaxis(hr.numpy(), axis, 0)[::3] > 0.1).mean(axis=(1, 2)) > 0.1
        np.testing.assert_allclose(item["hr"].numpy(), np.moveaxis(hr.numpy(), axis, 0)[::3][keep], atol=1e-6)
        np.testing.assert_allclose(item["input"][(2, 2)].numpy(), np.moveaxis(up, axis, 0)[::3][keep], atol=1e-5)
    for bad in (dict(dims=3, scales=[(2, 2, 2)]), dict(scales=[(2, 2), (4, 4)]), dict(scales=[(1, 2)])):
        with pytest.raises(ValueError, match="planes='iso' needs dims=2"):
            SuperresConfig(**{"dims": 2, "patch_size": 16, **bad}, planes="iso")
    with pytest.raises(ValueError, match="planes='iso' takes no crop_taper"):
        SuperresConfig(dims=2, scales=[(2, 2)], planes="iso", crop_taper=0.5)


def test_sinc_pseudo_network_is_zero_filled_interpolation_at_any_scale():
    """``weights="sinc"`` (the thick-slice default where no network beat sinc on validation):
    the numpy trigonometric-sum reference, clipped at 0, for slices, thick slices on any axis and
    isotropic volumes; no 'trained for scales' warning."""
    import warnings

    rng = np.random.default_rng(6)
    vol = (rng.random((10, 12, 6)) + 0.5).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for image, scale in ((vol, (1, 1, 3)), (vol[:, :, 0], (2, 2)), (vol, (2, 2, 2)), (vol, (1, 1, 5))):
            ref = np.clip(_np_sinc_interpolation(image.astype(np.float64), scale), 0, None)
            out = recon.super_resolve(image, scale, weights="sinc")
            np.testing.assert_allclose(out, ref, rtol=0, atol=2e-5 * ref.max())
        moved = recon.super_resolve(np.ascontiguousarray(vol.transpose(2, 0, 1)), (2, 1, 1), weights="sinc")
    ref = np.clip(_np_sinc_interpolation(vol.transpose(2, 0, 1).astype(np.float64), (2, 1, 1)), 0, None)
    np.testing.assert_allclose(moved, ref, rtol=0, atol=2e-5 * ref.max())


def test_mni152_training_and_validation_parts_are_disjoint_rows_of_the_template():
    """scripts/train_superres.py: the real anatomy it trains on (MNI152 2009a from nilearn's wheel)
    and its validation part are rows of the same 1 mm template 12 apart, read at train time."""
    import importlib.util
    from pathlib import Path

    if importlib.util.find_spec("nilearn") is None:
        pytest.skip("nilearn not installed")
    script = Path(__file__).resolve().parents[2] / "scripts" / "train_superres.py"
    spec = importlib.util.spec_from_file_location("train_superres_script_mni", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    train, val = module.mni152_t1("train"), module.mni152_t1("validation")
    (a, b), (c, d) = module.MNI_ROWS["train"], module.MNI_ROWS["validation"]
    assert train.shape == (197, b - a, 189) and val.shape == (197, 233 - c, 189) and c - b >= 12
    import nibabel as nib

    whole = np.asarray(nib.load(Path(importlib.util.find_spec("nilearn").submodule_search_locations[0])
                                / "datasets" / "data" / module.MNI_FILE).dataobj, dtype=np.float32)
    np.testing.assert_array_equal(train, whole[:, a:b])
    np.testing.assert_array_equal(val, whole[:, c:])


# ----------------------------------------------------------------- self-calibrated residual weight


def test_blend_residual_is_the_clipped_least_squares_weight():
    """numpy float64 least squares of target - base on pred - base, clipped to [0, 1]."""
    from recon.heads.superres import blend_residual

    rng = np.random.default_rng(0)
    base, pred = rng.normal(size=(6, 7, 5)), rng.normal(size=(6, 7, 5))
    r = (pred - base).ravel()
    noise = rng.normal(size=r.size)
    noise -= r * (noise @ r) / (r @ r)  # orthogonal to the residual: leaves the weight alone
    for w in (0.3, -0.7, 1.8):
        target = base + w * (pred - base) + 0.5 * noise.reshape(base.shape)
        got = blend_residual(*(torch.from_numpy(a) for a in (pred, base, target)))
        assert got == pytest.approx(min(max(w, 0.0), 1.0), abs=1e-12)
    target = rng.normal(size=base.shape)
    e = (target - base).ravel()
    assert blend_residual(*(torch.from_numpy(a) for a in (pred, base, target))) == pytest.approx(
        float(np.clip(np.linalg.lstsq(r[:, None], e, rcond=None)[0][0], 0, 1)), abs=1e-12)
    same = torch.from_numpy(base)
    assert blend_residual(same, same, torch.from_numpy(target)) == 1.0  # no residual: every blend is the same
    # float32 round-off of a zero residual (a zero-tail network against a float64 base) is no residual either,
    # whatever its direction: the least-squares weight of such noise would be anything in [0, 1]
    rounded = same.float().double()
    assert float((rounded - same).abs().max()) > 0
    for t in (target, 2 * base - target):
        assert blend_residual(rounded, same, torch.from_numpy(t)) == 1.0
    # a residual of 1e-4 of the base is real and gets its least-squares weight
    small = same + 1e-4 * torch.from_numpy(pred - base)
    assert blend_residual(small, same, same + 0.5e-4 * torch.from_numpy(pred - base)) == pytest.approx(0.5, abs=1e-9)


def test_residual_weight_fits_the_image_degraded_once_more():
    """The weight is the least-squares blend of the network and sinc from the image truncated once more
    (its taper as the target); a zero residual gives 1; an image too small for the second degradation
    gives 1 (the network as it is)."""
    from recon.heads.superres import blend_residual, residual_weight, taper_borders

    vol = torch.from_numpy(np.random.default_rng(1).random((20, 22, 18)) + 0.5).float()
    net = _random_tail(MultiScaleFusionSR(dims=2, chans=4, num_blocks=1, kernel_sizes=(3,), interpolation="zero_fill"))
    target = taper_borders(vol.double(), spatial_dims=3)
    low = kspace_truncate(target, (2, 2, 2), spatial_dims=3)
    want = blend_residual(upscale_image(net, low.float(), (2, 2, 2)).double(),
                          torch.from_numpy(_np_sinc_interpolation(low.numpy(), (2, 2, 2))), target)
    assert 0 < want < 1
    assert residual_weight(net, vol, (2, 2, 2)) == pytest.approx(want, abs=1e-5)
    untrained = MultiScaleFusionSR(dims=2, chans=4, num_blocks=1, kernel_sizes=(3,), interpolation="zero_fill").eval()
    assert residual_weight(untrained, vol, (2, 2, 2)) == 1.0
    assert residual_weight(net, vol[:6, :6, :6], (2, 2, 2)) == 1.0
    with pytest.raises(ValueError, match="image"):
        residual_weight(net, vol.numpy(), (2, 2, 2))


def test_super_resolve_calibrate_blends_sinc_and_the_network(tmp_path):
    """calibrate: sinc + w (network - sinc) with w = residual_weight; default on for the isotropic
    (2, 2, 2) default only; False the network alone; a non-bool is a TypeError naming it."""
    from recon.heads.superres import residual_weight
    from recon.train.tasks_superres import calibrate_default, load_superres

    rng = np.random.default_rng(2)
    vol = (np.abs(rng.normal(size=(32, 32, 32))) + 0.2).astype(np.float32)
    plain = recon.super_resolve(vol, 2, calibrate=False)
    model = load_superres("superres-2d-x2")[0]
    w = residual_weight(model, torch.from_numpy(vol), (2, 2, 2))
    sinc = _np_sinc_interpolation(vol.astype(np.float64), (2, 2, 2))
    want = np.clip(sinc + w * (plain - sinc), 0, None)
    np.testing.assert_allclose(recon.super_resolve(vol, 2), want, rtol=1e-4, atol=1e-4 * float(vol.max()))
    assert calibrate_default(3, (2, 2, 2), None) and not calibrate_default(3, (2, 2, 2), "srgan-3d-x2-mse")
    assert not calibrate_default(2, (2, 2), None) and not calibrate_default(3, (1, 1, 2), None)
    with pytest.raises(TypeError, match="calibrate"):
        recon.super_resolve(vol, 2, calibrate="yes")
    # recon superres --no-calibrate: the network alone; by default calibrated
    from recon.cli import main as cli_main
    from recon.data import load_nifti, save_nifti

    save_nifti(tmp_path / "lr.nii.gz", vol)
    for flags, want_vol in (([], want), (["--no-calibrate"], plain)):
        assert cli_main(["superres", str(tmp_path / "lr.nii.gz"), "-o", str(tmp_path / "hr.nii.gz"), "--scale", "2",
                         *flags]) == 0
        np.testing.assert_allclose(load_nifti(tmp_path / "hr.nii.gz")[0], want_vol, rtol=1e-4, atol=1e-4 * float(vol.max()))
