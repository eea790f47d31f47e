import numpy as np
import pytest
import pywt
import torch

from recon.ops.wavelet import WAVELETS, approximation_mask, dwt2, idwt2, max_level


@pytest.mark.parametrize("wavelet", sorted(WAVELETS))
def test_orthonormal_and_inverse(wavelet, device):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 64, 32, generator=gen, dtype=torch.float64).to(device)
    coeffs = dwt2(x, 3, wavelet)
    torch.testing.assert_close(coeffs.norm(), x.norm(), rtol=1e-12, atol=0)
    torch.testing.assert_close(idwt2(coeffs, 3, wavelet), x, rtol=0, atol=1e-12)
    # the adjoint: <W x, c> = <x, W^T c>
    c = torch.randn(3, 64, 32, generator=gen, dtype=torch.float64).to(device)
    torch.testing.assert_close((coeffs * c).sum(), (x * idwt2(c, 3, wavelet)).sum(), rtol=1e-12, atol=0)


@pytest.mark.parametrize("wavelet", sorted(WAVELETS))
def test_one_level_matches_pywavelets_periodization(wavelet):
    # PyWavelets' periodization aligns the filter (L/2 - 1) samples later than ours.
    x = np.random.default_rng(1).standard_normal((32, 48))
    shift = len(WAVELETS[wavelet]) // 2 - 1
    ca, (ch, cv, cd) = pywt.dwt2(x, wavelet, mode="periodization")
    ours = dwt2(torch.roll(torch.from_numpy(x), (shift, shift), (0, 1)), 1, wavelet).numpy()
    np.testing.assert_allclose(ours[:16, :24], ca, atol=1e-12)
    np.testing.assert_allclose(ours[16:, :24], ch, atol=1e-12)
    np.testing.assert_allclose(ours[:16, 24:], cv, atol=1e-12)
    np.testing.assert_allclose(ours[16:, 24:], cd, atol=1e-12)


def test_multilevel_matches_pywavelets_approximation():
    x = np.random.default_rng(2).standard_normal((64, 64))
    ca = pywt.wavedec2(x, "haar", mode="periodization", level=3)[0]
    np.testing.assert_allclose(dwt2(torch.from_numpy(x), 3, "haar").numpy()[:8, :8], ca, atol=1e-12)


def test_helpers():
    assert max_level(320, "db4") == pywt.dwt_max_level(320, 8)
    assert max_level(4, "db4") == 0
    mask = approximation_mask((32, 16), 2)
    assert mask.sum() == 8 * 4 and bool(mask[:8, :4].all())


def test_errors():
    with pytest.raises(ValueError, match="multiple of 2\\*\\*levels"):
        dwt2(torch.zeros(30, 32), 2)
    with pytest.raises(ValueError, match="wavelet must be one of"):
        dwt2(torch.zeros(32, 32), 1, "sym8")
    with pytest.raises(ValueError, match="levels must be >= 0"):
        idwt2(torch.zeros(32, 32), -1)
    with pytest.raises(TypeError, match="real floating-point"):
        dwt2(torch.zeros(32, 32, dtype=torch.complex64), 1)
