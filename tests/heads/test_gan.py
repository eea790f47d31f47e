"""recon.heads.gan: DCGAN shapes/gradients, max NCC against numpy, distances against scipy/closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recon.heads.gan import (
    BinomialBlur, DCGANDiscriminator, DCGANGenerator, intensity_histogram_distance, max_ncc, radial_power_spectrum, spectrum_distance,
)


@pytest.mark.parametrize("upsample", ["transpose", "resize", "blur"])
@pytest.mark.parametrize("size", [16, 32, 64])
def test_dcgan_shapes_range_and_gradients(size, upsample):
    g = DCGANGenerator(latent_dim=8, chans=4, size=size, upsample=upsample)
    d = DCGANDiscriminator(chans=4, size=size)
    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(0))
    x = g(z)
    assert x.shape == (3, 1, size, size) and x.abs().max() <= 1
    logits = d(x)
    assert logits.shape == (3,)
    logits.sum().backward()
    assert all(p.grad is not None for p in g.parameters())


def test_dcgan_sample_is_seeded_and_restores_mode():
    g = DCGANGenerator(latent_dim=8, chans=4, size=16).train()
    a = g.sample(4, torch.Generator().manual_seed(3))
    b = g.sample(4, torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)
    assert g.training


def test_dcgan_checks():
    with pytest.raises(ValueError, match="size must be a power of two"):
        DCGANGenerator(size=48)
    with pytest.raises(ValueError, match="latent must be a"):
        DCGANGenerator(latent_dim=8, chans=4, size=16)(torch.zeros(2, 9))
    with pytest.raises(ValueError, match="image must be"):
        DCGANDiscriminator(chans=4, size=16)(torch.zeros(2, 1, 32, 32))
    with pytest.raises(ValueError, match="upsample must be 'transpose', 'resize' or 'blur', got 'nearest'"):
        DCGANGenerator(latent_dim=8, chans=4, size=16, upsample="nearest")
    with pytest.raises(ValueError, match="x must be"):
        BinomialBlur()(torch.zeros(8, 8))


def test_dcgan_resize_generator_has_no_transposed_conv_after_the_first_layer():
    g = DCGANGenerator(latent_dim=8, chans=4, size=32, upsample="resize")
    kinds = [type(m).__name__ for m in g.model]
    assert kinds.count("ConvTranspose2d") == 1 and kinds.count("Upsample") == 3  # 4 -> 8 -> 16 -> 32


def test_binomial_blur_frequency_response_closed_form():
    """[1, 2, 1] x [1, 2, 1] / 16: response cos^2(pi fy) cos^2(pi fx); constant kept, Nyquist zeroed."""
    blur = BinomialBlur()
    n = np.arange(32)
    const = torch.full((1, 2, 32, 32), 0.7, dtype=torch.float64)
    torch.testing.assert_close(blur(const), const, rtol=0, atol=1e-15)
    nyq = torch.from_numpy(np.add.outer((-1.0) ** n, (-1.0) ** n))[None, None]  # Nyquist along y and x
    assert float(blur(nyq).abs().max()) < 1e-15  # reflect padding: zero up to the borders
    for fy, fx in [(0.125, 0.0), (0.25, 0.0625), (3 / 32, 0.375)]:
        img = np.cos(2 * np.pi * fy * n)[:, None] * np.cos(2 * np.pi * fx * n)[None, :]
        out = blur(torch.from_numpy(img)[None, None])[0, 0].numpy()
        gain = np.cos(np.pi * fy) ** 2 * np.cos(np.pi * fx) ** 2
        np.testing.assert_allclose(out[1:-1, 1:-1], gain * img[1:-1, 1:-1], rtol=0, atol=1e-12)  # interior
    assert list(blur.state_dict()) == []  # fixed filter: nothing to train or save


def test_dcgan_blur_generator_loads_transpose_weights_and_blurs_each_upsampling():
    torch.manual_seed(0)
    t = DCGANGenerator(latent_dim=8, chans=4, size=32).eval()
    b = DCGANGenerator(latent_dim=8, chans=4, size=32, upsample="blur").eval()
    b.load_state_dict(t.state_dict())  # same parameters and keys
    z = torch.randn(2, 8, generator=torch.Generator().manual_seed(1))
    # the last up-sampling blurred before tanh: the outputs differ, the pre-tanh maps by exactly the blur
    with torch.no_grad():
        pre_t, pre_b = t.model[:-1](z[:, :, None, None]), b.model[:-1](z[:, :, None, None])
    assert not torch.allclose(pre_t, pre_b)
    spec_t = torch.fft.fft2(pre_t[:, 0]).abs()[:, 16, 16]  # the (Nyquist, Nyquist) coefficient
    spec_b = torch.fft.fft2(pre_b[:, 0]).abs()[:, 16, 16]
    assert bool((spec_t > 1e-3).all()) and bool((spec_b < 1e-3 * spec_t).all())  # removed (but at the borders)


def test_max_ncc_against_numpy():
    rng = np.random.default_rng(0)
    gen = rng.random((5, 12, 13))
    train = rng.random((17, 12, 13))
    train[7] = 3.0 * gen[2] + 1.0  # an affine copy: NCC exactly 1
    values, idx = max_ncc(torch.from_numpy(gen), torch.from_numpy(train), chunk=4)
    c = np.corrcoef(gen.reshape(5, -1), train.reshape(17, -1))[:5, 5:]
    np.testing.assert_allclose(values.numpy(), c.max(1), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(idx.numpy(), c.argmax(1))
    assert idx[2] == 7 and values[2] == pytest.approx(1.0, abs=1e-12)


def test_max_ncc_checks():
    with pytest.raises(ValueError, match="training must be"):
        max_ncc(torch.rand(2, 8, 8), torch.rand(3, 8, 9))
    with pytest.raises(ValueError, match="constant image"):
        max_ncc(torch.ones(1, 8, 8), torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="generated contains NaN"):
        max_ncc(torch.full((1, 8, 8), float("nan")), torch.rand(3, 8, 8))


def test_histogram_distance_equals_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, (4, 9, 9)), rng.normal(0.3, 1.5, (7, 5, 5))
    ours = intensity_histogram_distance(torch.from_numpy(a), torch.from_numpy(b))
    assert ours == pytest.approx(stats.wasserstein_distance(a.ravel(), b.ravel()), rel=1e-10)
    assert intensity_histogram_distance(torch.from_numpy(a), torch.from_numpy(a)) == 0


def test_radial_power_spectrum_of_a_cosine():
    n, k = 32, 5
    x = np.cos(2 * np.pi * k * np.arange(n) / n)[None, :].repeat(n, 0)[None]
    p = radial_power_spectrum(torch.from_numpy(x))
    assert p.shape == (16,)
    assert int(p.argmax()) == k
    # |FFT|^2 / n^2 is n^2 / 4 at (0, +-k), zero elsewhere; bin k averages the frequencies of radius ~k
    f = np.fft.fftfreq(n) * n
    count = int((np.rint(np.hypot(f[:, None], f[None, :])) == k).sum())
    assert float(p[k]) == pytest.approx(2 * (n * n / 4) / count, rel=1e-9)
    others = np.delete(p.numpy(), k)
    assert np.all(others < 1e-20)


def test_spectrum_distance_closed_form():
    x = torch.rand(4, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert spectrum_distance(x, x) == pytest.approx(0.0, abs=1e-12)
    assert spectrum_distance(2 * x, x) == pytest.approx(np.log10(4.0), rel=1e-6)
