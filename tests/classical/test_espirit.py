import numpy as np
import pytest
import sigpy.mri as mr
import torch

from recon.classical import calibration_shape, espirit_maps, sampling_pattern
from recon.ops import from_numpy, to_numpy


def _projection(ours, ref):
    """|<ours(r), ref(r)>| per pixel where both maps are non-zero (1 = equal up to phase)."""
    both = (np.abs(ours).sum(0) > 0) & (np.abs(ref).sum(0) > 0)
    return np.abs((np.conj(ours) * ref).sum(0))[both], both


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_sigpy_espiritcalib_up_to_phase(phantom, dtype):
    _, _, kspace = phantom
    ref, ref_eig = mr.app.EspiritCalib(
        kspace, calib_width=24, max_iter=300, show_pbar=False, output_eigenvalue=True
    ).run()
    ref_eig = np.asarray(ref_eig).reshape(kspace.shape[-2:])
    maps, eig = espirit_maps(
        from_numpy(kspace, dtype)[None], calib_width=24, max_iter=0, return_eigenvalues=True
    )
    ours = to_numpy(maps[0])
    # same support (eigenvalue > 0.95) away from the threshold
    clear = np.abs(ref_eig - 0.95) > 1e-3
    assert np.array_equal((np.abs(ours).sum(0) > 0)[clear], (np.abs(ref).sum(0) > 0)[clear])
    proj, both = _projection(ours, ref)
    assert both.mean() > 0.3
    # equal up to phase wherever the eigenvalue gap lets sigpy's power method converge
    assert (proj > 0.999).mean() > 0.99
    np.testing.assert_allclose(eig[0].numpy()[both], ref_eig[both], rtol=1e-3)
    # unit norm over coils where the maps are non-zero
    np.testing.assert_allclose(np.sqrt((np.abs(ours) ** 2).sum(0))[both], 1.0, rtol=1e-5)
    # phase reference: coil 0 real and non-negative, as sigpy
    assert np.abs(ours[0].imag).max() < 1e-5 and ours[0].real.min() >= 0


def test_power_iterations_agree_with_eigh(phantom):
    _, _, kspace = phantom
    k = from_numpy(kspace)[None]
    exact = to_numpy(espirit_maps(k, max_iter=0)[0])
    power = to_numpy(espirit_maps(k)[0])
    proj, _ = _projection(power, exact)
    # pixels with nearly degenerate leading eigenvalues converge slowly (sigpy's too)
    assert np.quantile(proj, 0.05) > 0.9999 and np.quantile(proj, 0.01) > 0.99


def test_batch_of_slices_equals_slice_by_slice(phantom, device):
    _, _, kspace = phantom
    k = from_numpy(kspace)[None].to(device)
    batch = torch.cat([k, 2 * k.roll(3, dims=-3)])
    together = espirit_maps(batch, calib_width=20)
    torch.testing.assert_close(together[:1], espirit_maps(batch[:1], calib_width=20), atol=1e-4, rtol=0)
    torch.testing.assert_close(together[1:], espirit_maps(batch[1:], calib_width=20), atol=1e-4, rtol=0)


def test_calibration_region_from_the_mask(phantom, column_mask):
    _, _, kspace = phantom
    k = from_numpy(kspace * column_mask)[None]
    pattern = sampling_pattern(k)
    assert pattern.shape == (1, 80, 63)
    h, w = calibration_shape(pattern)
    assert h == 80 and w >= 16
    assert bool(pattern[0][:, 31 - w // 2 : 31 - w // 2 + w].all())
    # a mask argument gives the same pattern as the zeros of the masked k-space
    mask = torch.from_numpy(column_mask).float().view(1, 1, 1, -1, 1)
    assert torch.equal(sampling_pattern(from_numpy(kspace)[None], mask), pattern)
    # the automatic region is capped at max_calib_width, and gives maps close to sigpy's on full data
    maps = to_numpy(espirit_maps(k, mask)[0])
    ref = mr.app.EspiritCalib(kspace, calib_width=16, max_iter=100, show_pbar=False).run()
    proj, both = _projection(maps, ref)
    assert both.mean() > 0.3 and np.quantile(proj, 0.05) > 0.99


def test_calibration_shape_cases():
    pattern = torch.zeros(32, 40, dtype=torch.bool)
    assert calibration_shape(pattern) == (0, 0)
    pattern[10:22, 14:27] = True  # rows 10..21 around centre 16, cols 14..26 around 20
    h, w = calibration_shape(pattern)
    top, left = 16 - h // 2, 20 - w // 2
    assert bool(pattern[top : top + h, left : left + w].all())
    assert (h, w) == (12, 13)
    # 2-D pattern whose centre row/column runs are long but whose corners are missing
    cross = torch.zeros(32, 32, dtype=torch.bool)
    cross[16, :] = True
    cross[:, 16] = True
    cross[12:20, 12:20] = True
    h, w = calibration_shape(cross)
    assert bool(cross[16 - h // 2 : 16 - h // 2 + h, 16 - w // 2 : 16 - w // 2 + w].all()) and h * w >= 64


def test_errors(phantom, column_mask):
    _, _, kspace = phantom
    k = from_numpy(kspace)[None]
    narrow = column_mask.copy()
    narrow[:] = False
    narrow[30:34] = True
    with pytest.raises(ValueError, match="calibration region of at least 6 fully sampled"):
        espirit_maps(k * torch.from_numpy(narrow).float().view(1, 1, 1, -1, 1))
    with pytest.raises(ValueError, match="calibration region"):
        espirit_maps(k, calib_width=100)
    with pytest.raises(ValueError, match="threshold must be in"):
        espirit_maps(k, threshold=1.5)
    with pytest.raises(ValueError, match="kernel_width must be > 0"):
        espirit_maps(k, kernel_width=0)
    with pytest.raises(TypeError, match="calib_width must be an int or a pair"):
        espirit_maps(k, calib_width=2.5)
    with pytest.raises(ValueError, match="calib_width must be an int or a pair"):
        espirit_maps(k, calib_width=(8, 8, 8))
    with pytest.raises(ValueError, match="max_iter must be >= 0"):
        espirit_maps(k, max_iter=-1)
    with pytest.raises(ValueError, match="max_calib_width must be > 0"):
        espirit_maps(k, max_calib_width=0)
    with pytest.raises(ValueError, match="crop must be >= 0"):
        espirit_maps(k, crop=-0.5)
    with pytest.raises(ValueError, match="at least 5 dimensions"):
        espirit_maps(k[0])
    with pytest.raises(ValueError, match="NaN or Inf"):
        espirit_maps(k * float("nan"))
    with pytest.raises(ValueError, match="does not broadcast"):
        espirit_maps(k, torch.ones(5))
