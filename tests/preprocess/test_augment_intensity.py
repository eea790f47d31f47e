"""Intensity augmentation: noise statistics (scipy.stats), bias field, gamma, normalisation (numpy)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recon.preprocess.augment import (
    BiasField,
    Gamma,
    GaussianNoise,
    MinMax,
    PercentileClip,
    RandomBiasField,
    RicianNoise,
    ZScore,
    foreground_mean,
    noise_sigma,
    rician_noise,
)

stats = pytest.importorskip("scipy.stats")


@pytest.mark.parametrize("amplitude", [0.5, 2.0, 6.0])
def test_rician_mean_and_variance_match_scipy_rice(amplitude):
    sigma = 1.3
    g = torch.Generator().manual_seed(0)
    out = rician_noise(torch.full((400_000,), amplitude * sigma, dtype=torch.float64), sigma, g).numpy()
    dist = stats.rice(amplitude, scale=sigma)
    se = dist.std() / np.sqrt(out.size)
    assert abs(out.mean() - dist.mean()) < 5 * se
    assert abs(out.var() - dist.var()) / dist.var() < 0.02
    assert stats.kstest(out[:20000], dist.cdf).pvalue > 1e-3


def test_rician_noise_only_is_rayleigh():
    sigma = 0.7
    out = rician_noise(torch.zeros(300_000, dtype=torch.float64), sigma, torch.Generator().manual_seed(1)).numpy()
    np.testing.assert_allclose(out.mean(), sigma * np.sqrt(np.pi / 2), rtol=5e-3)
    assert stats.kstest(out[:20000], stats.rayleigh(scale=sigma).cdf).pvalue > 1e-3


def test_snr_definition_and_gaussian_noise_level():
    image = torch.zeros(1, 1, 40, 40, 40)
    image[..., 10:30, 10:30, 10:30] = 100.0
    np.testing.assert_allclose(foreground_mean(image).item(), 100.0)
    np.testing.assert_allclose(noise_sigma(image, 20).item(), 5.0)
    out = GaussianNoise(snr=20)(image[0], generator=torch.Generator().manual_seed(0))
    background = out[0][:10].flatten().numpy()
    np.testing.assert_allclose(background.std(), 5.0, rtol=0.03)
    np.testing.assert_allclose(background.mean(), 0.0, atol=0.1)


def test_rician_transform_background_is_rayleigh_at_requested_snr():
    image = torch.zeros(1, 48, 48, 48)
    image[:, 12:36, 12:36, 12:36] = 50.0
    out, params = RicianNoise(snr=(10, 10))(image, generator=torch.Generator().manual_seed(2), return_params=True)
    assert params["snr"].item() == 10
    bg = out[0, :10].flatten().numpy()
    np.testing.assert_allclose(bg.mean(), 5.0 * np.sqrt(np.pi / 2), rtol=0.03)


def test_bias_field_closed_form():
    x = torch.ones(1, 5, 6, 7, dtype=torch.float64)
    n_terms = 4  # order 1 in 3-D: 1, z, y, x in itertools.product order (0,0,0),(0,0,1),(0,1,0),(1,0,0)
    coeffs = [0.2, 0.3, 0.0, -0.1]
    out = BiasField(coeffs, order=1)(x)[0].numpy()
    a0, a1, a2 = np.meshgrid(*[np.linspace(-1, 1, n) for n in (5, 6, 7)], indexing="ij")
    ref = np.exp(0.2 + 0.3 * a2 - 0.1 * a0)
    np.testing.assert_allclose(out, ref, rtol=1e-12)
    assert len(coeffs) == n_terms


def test_random_bias_field_is_smooth_and_positive():
    x = torch.ones(1, 20, 20, 20)
    out = RandomBiasField()(x, generator=torch.Generator().manual_seed(0))
    assert (out > 0).all() and out.std() > 0
    assert (out[0, 1:] / out[0, :-1]).sub(1).abs().max() < 0.3


def test_gamma_closed_form():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 8, 9))
    out = Gamma(np.log(2.0))(torch.from_numpy(x)).numpy()
    for c in range(2):
        lo, hi = x[c].min(), x[c].max()
        np.testing.assert_allclose(out[c], lo + (hi - lo) * ((x[c] - lo) / (hi - lo)) ** 2, rtol=1e-12)


def test_normalisations_per_channel_match_numpy():
    rng = np.random.default_rng(1)
    x = rng.gamma(2.0, size=(2, 7, 8, 9))
    t = torch.from_numpy(x)
    z = ZScore(masked=False)(t).numpy()
    m = MinMax((-1, 1))(t).numpy()
    p = PercentileClip(2, 98)(t).numpy()
    for c in range(2):
        np.testing.assert_allclose(z[c], (x[c] - x[c].mean()) / x[c].std(), rtol=1e-10)
        np.testing.assert_allclose(m[c], 2 * (x[c] - x[c].min()) / (x[c].max() - x[c].min()) - 1, rtol=1e-10, atol=1e-12)
        lo, hi = np.percentile(x[c], [2, 98])
        np.testing.assert_allclose(p[c], np.clip(x[c], lo, hi), rtol=1e-12)


def test_noise_replay_is_bit_for_bit():
    x = torch.rand(3, 1, 10, 10, 10)
    t = RicianNoise((5, 20))
    out, params = t(x, generator=torch.Generator().manual_seed(0), batched=True, return_params=True)
    assert torch.equal(t.replay(x, params, batched=True), out)
    assert params["snr"].shape == (3,)
