"""rss, sensitivity expand/reduce and crops against numpy and fastMRI."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recon.ops import (
    center_crop,
    center_pad,
    complex_center_crop,
    rss,
    rss_complex,
    sens_expand,
    sens_reduce,
)


def _rand(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_rss_matches_numpy(dim):
    x = _rand(4, 5, 6)
    np.testing.assert_allclose(rss(x, dim).numpy(), np.sqrt((x.numpy() ** 2).sum(dim)), rtol=1e-12)


def test_rss_complex_matches_numpy():
    x = _rand(4, 5, 6, 2)
    z = x[..., 0].numpy() + 1j * x[..., 1].numpy()
    np.testing.assert_allclose(rss_complex(x, dim=1).numpy(), np.sqrt((np.abs(z) ** 2).sum(1)), rtol=1e-12)


def test_rss_parity_with_fastmri():
    fastmri = pytest.importorskip("fastmri")
    x = _rand(15, 33, 17, 2, dtype=torch.float32)
    assert torch.allclose(rss_complex(x), fastmri.rss_complex(x), rtol=1e-6)
    assert torch.allclose(rss(x[..., 0], 0), fastmri.rss(x[..., 0], 0), rtol=1e-6)


def test_sens_expand_reduce_match_numpy():
    image, maps = _rand(2, 1, 6, 7, 2), _rand(2, 3, 6, 7, 2, seed=1)
    zi = image[..., 0].numpy() + 1j * image[..., 1].numpy()
    zm = maps[..., 0].numpy() + 1j * maps[..., 1].numpy()
    ax = (-2, -1)
    ref_k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(zi * zm, axes=ax), norm="ortho"), axes=ax)
    k = sens_expand(image, maps)
    np.testing.assert_allclose(k[..., 0].numpy() + 1j * k[..., 1].numpy(), ref_k, atol=1e-12)
    ref_img = (np.conj(zm) * np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(ref_k, axes=ax), norm="ortho"), axes=ax)).sum(1, keepdims=True)
    r = sens_reduce(k, maps)
    assert r.shape == (2, 1, 6, 7, 2)
    np.testing.assert_allclose(r[..., 0].numpy() + 1j * r[..., 1].numpy(), ref_img, atol=1e-12)


def test_sens_rejects_mismatched_maps():
    with pytest.raises(ValueError, match=r"sens_maps must have the spatial size of image \(6, 7\)"):
        sens_expand(_rand(1, 1, 6, 7, 2), _rand(1, 3, 6, 8, 2))
    with pytest.raises(ValueError, match="kspace must have at least 4 dimensions"):
        sens_reduce(_rand(6, 7, 2), _rand(1, 3, 6, 7, 2))


@pytest.mark.parametrize("shape,crop", [((3, 10, 9), (4, 5)), ((2, 7, 8), (7, 1)), ((11, 11), (6, 6))])
def test_center_crop_parity_with_fastmri(shape, crop):
    T = pytest.importorskip("fastmri.data.transforms")
    x = _rand(*shape)
    assert torch.equal(center_crop(x, crop), T.center_crop(x, crop))
    xc = _rand(*shape, 2)
    assert torch.equal(complex_center_crop(xc, crop), T.complex_center_crop(xc, crop))


def test_center_pad_inverts_crop():
    x = _rand(2, 5, 4)
    padded = center_pad(x, (9, 8))
    assert padded.shape == (2, 9, 8)
    assert torch.equal(center_crop(padded, (5, 4)), x)
    assert padded.abs().sum() == x.abs().sum()


def test_crop_errors_name_argument_and_value():
    with pytest.raises(ValueError, match=r"crop shape \(12, 4\) must not exceed the spatial size \(10, 9\)"):
        center_crop(_rand(3, 10, 9), (12, 4))
    with pytest.raises(ValueError, match=r"shape must be a pair of positive ints \(H, W\), got \(4,\)"):
        center_crop(_rand(3, 10, 9), (4,))
    with pytest.raises(TypeError, match="shape must be a pair of ints"):
        center_crop(_rand(3, 10, 9), 4)
    with pytest.raises(ValueError, match=r"pad shape \(3, 9\) must be at least the spatial size \(5, 4\)"):
        center_pad(_rand(5, 4), (3, 9))
    with pytest.raises(ValueError, match="data must have at least 3 dimensions"):
        complex_center_crop(_rand(5, 2), (1, 1))


def test_sens_expand_gradient_is_sens_reduce():
    # d<sens_expand(x), y>/dx = sens_reduce(y): autograd through the eager complex path.
    maps = _rand(2, 3, 6, 8, 2, seed=3)
    x = _rand(2, 1, 6, 8, 2, seed=4).requires_grad_(True)
    y = _rand(2, 3, 6, 8, 2, seed=5)
    (sens_expand(x, maps) * y).sum().backward()
    assert torch.allclose(x.grad, sens_reduce(y, maps), atol=1e-12)
