"""k-space artefacts against closed forms and float64 numpy FFTs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recon.preprocess.augment import (
    Gibbs,
    Ghosting,
    Motion,
    RandomGibbs,
    RandomMotion,
    RandomSpike,
    Spike,
    Undersample,
    ghosting,
    gibbs_truncate,
    rigid_motion,
    spikes,
    undersample,
)


def _fft2c(x):
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))


def _ifft2c(k):
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))


def _real_view(z):
    return torch.from_numpy(np.stack([z.real, z.imag], -1))


def _complex(t):
    a = t.numpy()
    return a[..., 0] + 1j * a[..., 1]


def test_gibbs_truncation_closed_form():
    # a constant plus a cosine above the cut-off: truncation leaves exactly the constant
    H, W = 32, 40
    n = np.arange(W)
    image = np.tile(3.0 + 2.0 * np.cos(2 * np.pi * 15 * n / W), (1, H, 1))
    out = Gibbs(fraction=0.5, axes=(-1,))(torch.from_numpy(image)).numpy()
    np.testing.assert_allclose(out, 3.0, atol=1e-12)
    # ... and below the cut-off it is kept exactly
    low = np.tile(3.0 + 2.0 * np.cos(2 * np.pi * 5 * n / W), (1, H, 1))
    np.testing.assert_allclose(Gibbs(0.5, axes=(-1,))(torch.from_numpy(low)).numpy(), low, atol=1e-12)


def test_gibbs_truncate_matches_numpy_and_rings_at_an_edge():
    rng = np.random.default_rng(0)
    k = rng.normal(size=(2, 3, 16, 20)) + 1j * rng.normal(size=(2, 3, 16, 20))
    out = _complex(gibbs_truncate(_real_view(k), 0.5))
    ref = k.copy()
    keep_h, keep_w = 8, 10
    mask = np.zeros((16, 20))
    mask[8 - 4:8 - 4 + keep_h, 10 - 5:10 - 5 + keep_w] = 1
    np.testing.assert_allclose(out, ref * mask, atol=1e-12)
    step = np.zeros((1, 8, 64))
    step[..., 16:48] = 1.0
    rung = Gibbs(0.25, axes=(-1,))(torch.from_numpy(step)).numpy()
    assert rung.max() > 1.05  # overshoot at the edges (Gibbs ~9%)


def test_spike_energy_at_the_right_k_location():
    rng = np.random.default_rng(1)
    k = rng.normal(size=(2, 4, 24, 30, 2))
    kt = torch.from_numpy(k)
    out = spikes(kt, [(0.25, -0.1)], intensity=2.0)
    diff = (out - kt).numpy()
    i, j = 12 + int(np.floor(0.25 * 24)), 15 + int(np.floor(-0.1 * 30))
    peak = np.sqrt((k**2).sum(-1)).max(axis=(-2, -1))
    np.testing.assert_allclose(diff[..., i, j, 0], 2.0 * peak, rtol=1e-12)
    diff[..., i, j, 0] = 0
    assert np.abs(diff).max() == 0


def test_spike_transform_matches_numpy():
    x = np.random.default_rng(2).random((1, 16, 18))
    out = Spike([(0.2, 0.3)], 0.5)(torch.from_numpy(x)).numpy()
    k = _fft2c(x)
    k[..., 8 + 3, 9 + 5] += 0.5 * np.abs(k).max()
    np.testing.assert_allclose(out, np.abs(_ifft2c(k)), atol=1e-12)


def test_motion_with_zero_motion_is_identity():
    k = torch.randn(2, 3, 16, 20, 2, dtype=torch.float64)
    assert torch.equal(rigid_motion(k, [0.0, 0.0], [[0, 0], [0, 0]], [0.3, 0.6]), k)
    x = torch.rand(1, 6, 16, 20, dtype=torch.float64)
    torch.testing.assert_close(Motion([0.0], [[0.0, 0.0]], [0.5])(x), x, atol=1e-12, rtol=0)


def test_motion_translation_segments_match_numpy_rolls():
    rng = np.random.default_rng(3)
    img = rng.normal(size=(2, 16, 20)) + 1j * rng.normal(size=(2, 16, 20))
    k = _fft2c(img)
    out = _complex(rigid_motion(_real_view(k), [0.0, 0.0], [[2, -3], [-1, 4]], [0.25, 0.6]))
    ref = k.copy()
    ref[..., 5:12] = _fft2c(np.roll(img, (2, -3), axis=(-2, -1)))[..., 5:12]
    ref[..., 12:] = _fft2c(np.roll(img, (-1, 4), axis=(-2, -1)))[..., 12:]
    np.testing.assert_allclose(out, ref, atol=1e-12)


def test_motion_rotation_by_90_degrees_matches_rot90():
    rng = np.random.default_rng(4)
    img = rng.normal(size=(1, 17, 17)) + 1j * rng.normal(size=(1, 17, 17))
    k = _fft2c(img)
    out = _complex(rigid_motion(_real_view(k), [90.0], [[0, 0]], [0.5]))
    rotated = np.rot90(img, k=-1, axes=(-2, -1))  # +90 deg from H towards W
    alt = np.rot90(img, k=1, axes=(-2, -1))
    ref = k.copy()
    ref[..., 8:] = _fft2c(rotated)[..., 8:]
    ref2 = k.copy()
    ref2[..., 8:] = _fft2c(alt)[..., 8:]
    err = min(np.abs(out - ref).max(), np.abs(out - ref2).max())
    assert err < 1e-9


def test_random_motion_corrupts_and_replays():
    x = torch.rand(2, 1, 24, 24)
    t = RandomMotion(degrees=5, translation=3, num_transforms=2)
    out, p = t(x, generator=torch.Generator().manual_seed(0), batched=True, return_params=True)
    assert out.shape == x.shape and not torch.allclose(out, x, atol=1e-3)
    assert torch.equal(t.replay(x, p, batched=True), out)
    assert (p["times"][:, 1] >= p["times"][:, 0]).all()


def test_ghosting_closed_form():
    k = torch.randn(1, 2, 12, 16, 2, dtype=torch.float64)
    out = ghosting(k, 4, 0.75)
    factor = np.ones(16)
    factor[::4] = 0.25
    factor[8] = 1.0
    np.testing.assert_allclose(out.numpy(), k.numpy() * factor[:, None], rtol=1e-15)
    img = torch.zeros(1, 32, 32, dtype=torch.float64)
    img[:, 12:19, 12:19] = 1  # width 7: no spectral zero on the modulated lines
    ghosted = Ghosting(4, 0.9)(img)
    assert ghosted[0, 12:19, :10].mean() > 0.02  # ghosts along W (phase encode)
    assert ghosted[0, :10, :].abs().max() < 1e-12  # none along H


def test_undersample_with_mask_and_mask_function_matches_numpy():
    from recon.masks import create_mask_for_mask_type

    x = np.random.default_rng(5).random((2, 3, 16, 24))
    mask_func = create_mask_for_mask_type("equispaced_fraction", [0.25], [2])
    t = Undersample(mask_func=mask_func)
    out, params = t(torch.from_numpy(x), generator=torch.Generator().manual_seed(0), batched=True, return_params=True)
    for b in range(2):
        mask, _ = mask_func((1, 16, 24, 2), None, int(params["seed"][b]))
        m = mask.numpy()[..., 0]
        np.testing.assert_allclose(out[b].numpy(), np.abs(_ifft2c(_fft2c(x[b]) * m)), atol=1e-12)
    fixed = torch.zeros(1, 1, 24, 1)
    fixed[..., ::2, :] = 1
    k = torch.randn(2, 4, 16, 24, 2)
    assert torch.equal(undersample(k, fixed), k * fixed)
    y = Undersample(mask=fixed)(torch.from_numpy(x[0]))
    np.testing.assert_allclose(y.numpy(), np.abs(_ifft2c(_fft2c(x[0]) * fixed.numpy()[..., 0])), atol=1e-12)


def test_artefacts_on_volumes_are_per_slice_and_random_spike_gibbs_replay():
    x = torch.rand(1, 4, 16, 16, dtype=torch.float64)
    out = Gibbs(0.5)(x)
    for d in range(4):
        np.testing.assert_allclose(out[0, d].numpy(), Gibbs(0.5)(x[:, d]).numpy()[0], atol=1e-12)
    for t in (RandomSpike(), RandomGibbs()):
        y, p = t(x, generator=torch.Generator().manual_seed(1), return_params=True)
        assert torch.equal(t.replay(x, p), y)


@pytest.mark.parametrize("shape", [(2, 8, 16, 12, 2), (16, 12, 2)])
def test_kspace_functions_accept_multicoil_layout(shape):
    k = torch.randn(*shape)
    for out in (ghosting(k, 3, 0.5), spikes(k, [(0.1, 0.1)], 1.0), gibbs_truncate(k, 0.7),
                rigid_motion(k, [3.0], [[1.0, 0.5]], [0.5])):
        assert out.shape == k.shape
