import numpy as np
import pytest
import torch

from recon.classical import cg_sense, cs_tv, cs_wavelet, zero_filled
from recon.metrics import nmse, ssim
from recon.ops import complex_abs, from_numpy


@pytest.fixture(scope="module")
def problem(phantom, column_mask):
    image, maps, kspace = phantom
    k = from_numpy(kspace * column_mask)[None]
    m = from_numpy(maps)[None]
    mask = torch.from_numpy(column_mask).float().view(1, 1, 1, -1, 1)
    target = np.abs(image)[None].astype(np.float32)
    return k, m, mask, target


def _scores(target, estimate):
    estimate = estimate.numpy()
    return nmse(target, estimate), ssim(target, estimate, maxval=target.max())


@pytest.mark.parametrize("solver", [cs_wavelet, cs_tv])
def test_compressed_sensing_beats_zero_filled_and_sense(problem, solver):
    k, m, mask, target = problem
    zf = _scores(target, zero_filled(k, mask))
    sense = _scores(target, complex_abs(cg_sense(k, m, mask))[:, 0])
    cs = _scores(target, complex_abs(solver(k, m, mask, max_iter=150))[:, 0])
    assert cs[0] < 0.5 * sense[0] and sense[0] < zf[0]
    assert cs[1] > sense[1] + 0.1 and cs[1] > zf[1] + 0.1


def _soft(z, t):
    mag = np.abs(z)
    return z * np.maximum(1 - t / np.maximum(mag, 1e-300), 0)


def test_wavelet_denoising_closed_form_against_pywavelets():
    """With A = I (one coil, unit map, full sampling) one FISTA step is the exact solution
    x = W^T soft(W y, lam): checked against PyWavelets' Haar transform (same alignment)."""
    import pywt

    rng = np.random.default_rng(3)
    noisy = rng.standard_normal((64, 48)) + 1j * rng.standard_normal((64, 48))
    lam = 0.7

    def transform(x):
        return pywt.wavedec2(x, "haar", mode="periodization", level=3)

    def inverse(bands):
        return pywt.waverec2(bands, "haar", mode="periodization")

    re, im = transform(noisy.real), transform(noisy.imag)
    approx = re[0] + 1j * im[0]  # the approximation band is not penalised
    details = [tuple(_soft(a + 1j * b, lam) for a, b in zip(br, bi)) for br, bi in zip(re[1:], im[1:])]
    expected = inverse([approx.real] + [tuple(d.real for d in band) for band in details]) + 1j * inverse(
        [approx.imag] + [tuple(d.imag for d in band) for band in details]
    )
    kspace = from_numpy(np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(noisy), norm="ortho")), torch.float64)
    maps = torch.zeros(1, 1, 64, 48, 2, dtype=torch.float64)
    maps[..., 0] = 1
    out = cs_wavelet(kspace[None, None], maps, lam=lam, max_iter=3, wavelet="haar", levels=3,
                     cycle_spin=False, relative_lam=False)
    np.testing.assert_allclose(torch.view_as_complex(out[0, 0]).numpy(), expected, atol=1e-10)


@pytest.mark.parametrize("solver", [cs_wavelet, cs_tv])
def test_without_regularisation_returns_the_data_when_fully_sampled(phantom, solver):
    image, maps, kspace = phantom
    k = from_numpy(kspace, torch.float64)[None]
    m = from_numpy(maps, torch.float64)[None]
    ls = cg_sense(k, m, lam=0, max_iter=100, tol=1e-12)
    out = solver(k, m, lam=0, max_iter=100)
    assert float((out - ls).norm() / ls.norm()) < 1e-3


def test_wavelet_threshold_shrinks_towards_zero(problem):
    k, m, mask, _ = problem
    weak = cs_wavelet(k, m, mask, lam=1e-4)
    strong = cs_wavelet(k, m, mask, lam=1.0)
    assert float(strong.norm()) < float(weak.norm())


def test_scale_equivariance(problem, device):
    k, m, mask, _ = problem
    k, m, mask = k.to(device), m.to(device), mask.to(device)
    for solver in (cs_wavelet, cs_tv):
        a = solver(k, m, mask, max_iter=10)
        b = solver(1e3 * k, m, mask, max_iter=10)
        torch.testing.assert_close(b, 1e3 * a, rtol=1e-3, atol=1e-3 * float(b.abs().max()))


def test_batches_are_independent(problem):
    k, m, mask, _ = problem
    both = cs_wavelet(torch.cat([k, k.flip(-2)]), torch.cat([m, m.flip(-2)]), mask.expand(2, -1, -1, -1, -1), max_iter=8)
    torch.testing.assert_close(both[:1], cs_wavelet(k, m, mask, max_iter=8), rtol=1e-4, atol=1e-6)


def test_zero_filled_matches_fastmri(problem):
    fastmri = pytest.importorskip("fastmri")

    k, _, mask, _ = problem
    ref = fastmri.rss(fastmri.complex_abs(fastmri.ifft2c(k * mask)), dim=1)
    torch.testing.assert_close(zero_filled(k, mask), ref, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(zero_filled(k * mask), ref, rtol=1e-5, atol=1e-7)


def test_errors(problem):
    k, m, mask, _ = problem
    with pytest.raises(ValueError, match="wavelet must be one of"):
        cs_wavelet(k, m, mask, wavelet="sym4")
    with pytest.raises(ValueError, match="lam must be >= 0"):
        cs_wavelet(k, m, mask, lam=-0.1)
    with pytest.raises(ValueError, match="lam must be >= 0"):
        cs_tv(k, m, mask, lam=-0.1)
    with pytest.raises(ValueError, match="levels must be > 0"):
        cs_wavelet(k, m, mask, levels=0)
    with pytest.raises(TypeError, match="max_iter must be an int"):
        cs_tv(k, m, mask, max_iter=None)
    with pytest.raises(ValueError, match="sens_maps are zero everywhere"):
        cs_tv(k, torch.zeros_like(m), mask)
    with pytest.raises(ValueError, match="kspace contains NaN"):
        zero_filled(k * float("nan"))
    with pytest.raises(ValueError, match="does not broadcast"):
        zero_filled(k, torch.ones(3))


def test_cpu_chunking_does_not_change_results(problem, monkeypatch):
    import recon.classical.solvers as operator

    k, m, mask, _ = problem
    batch = torch.cat([k, 0.5 * k.roll(5, dims=-3), 2 * k])
    maps = torch.cat([m, m, m])
    whole = {f.__name__: f(batch, maps, mask, max_iter=6) for f in (cs_wavelet, cs_tv, cg_sense)}
    monkeypatch.setattr(operator, "CPU_CHUNK_ELEMENTS", 1)  # one slice per chunk
    assert len(operator.cpu_chunks(batch)) == 3
    for f in (cs_wavelet, cs_tv, cg_sense):
        torch.testing.assert_close(f(batch, maps, mask, max_iter=6), whole[f.__name__], rtol=1e-4, atol=1e-6)
