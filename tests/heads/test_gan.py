"""recon.heads.gan: DCGAN shapes/gradients, max NCC against numpy, distances against scipy/closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recon.heads.gan import (
    DCGANDiscriminator, DCGANGenerator, intensity_histogram_distance, max_ncc, radial_power_spectrum, spectrum_distance,
)


@pytest.mark.parametrize("upsample", ["transpose", "resize"])
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
    with pytest.raises(ValueError, match="upsample must be 'transpose' or 'resize'"):
        DCGANGenerator(latent_dim=8, chans=4, size=16, upsample="nearest")


def test_dcgan_resize_generator_has_no_transposed_conv_after_the_first_layer():
    g = DCGANGenerator(latent_dim=8, chans=4, size=32, upsample="resize")
    kinds = [type(m).__name__ for m in g.model]
    assert kinds.count("ConvTranspose2d") == 1 and kinds.count("Upsample") == 3  # 4 -> 8 -> 16 -> 32


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
