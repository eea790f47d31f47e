"""Simulation: forward model against float64 numpy / sigpy, noise statistics, file round trip."""

from __future__ import annotations

import dataclasses

import h5py
import nibabel as nib
import numpy as np
import pytest

try:  # only the fastMRI parity tests need the fastmri package; the rest run without it
    import fastmri.data as fastmri_data
except ImportError:
    fastmri_data = None
needs_fastmri = pytest.mark.skipif(fastmri_data is None, reason="fastMRI parity test: needs the fastmri package")
from recon.masks import EquispacedMaskFractionFunc  # fastMRI-exact (tests/test_masks.py)
from recon.data import (
    SimulationConfig,
    SliceDataset,
    VarNetDataTransform,
    birdcage_maps,
    simulate_folder,
    simulate_multicoil,
    simulate_nifti,
    write_simulated,
)
from recon.data.simulate import nifti_slices, noise_covariance, smooth_phase
from tests.conftest import make_phantom


def _phantom(slices=2, h=40, w=36):
    """Magnitude images ``(slices, h, w)`` of the shared phantom, slice ``s`` scaled by ``1 + 0.5 s``."""
    image = np.abs(make_phantom(h, w, 1, noise=0.0).image)
    return np.stack([image * (1 + 0.5 * s) for s in range(slices)]).astype(np.float32)


def _ifft2c64(k):
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k.astype(np.complex128), axes=(-2, -1)), norm="ortho"), axes=(-2, -1))


def test_maps_are_sigpys_birdcage_with_unit_rss():
    sigpy_mri = pytest.importorskip("sigpy.mri")
    maps = birdcage_maps(6, (40, 36), coil_radius=1.8)
    ref = sigpy_mri.birdcage_maps((6, 40, 36), r=1.8, dtype=np.complex128)
    np.testing.assert_allclose(maps, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.sqrt((np.abs(ref) ** 2).sum(0)), 1.0, rtol=1e-12)


def test_noiseless_forward_model_against_float64_numpy():
    images = _phantom()
    config = SimulationConfig(num_coils=5, snr=None, matrix_size=(48, 40), intensity_scale=2.0)
    sim = simulate_multicoil(images, config, seed=3)
    assert sim.kspace.shape == (2, 5, 48, 40) and sim.kspace.dtype == np.complex64
    assert sim.recon_size == (48, 40) and sim.noise_std == 0.0
    # image = padded magnitude (scaled to max intensity_scale) x unit-modulus phase
    magnitude = np.zeros((2, 48, 40))
    magnitude[:, 4:44, 2:38] = images / images.max() * 2.0
    np.testing.assert_allclose(np.abs(sim.image), magnitude, rtol=1e-5, atol=1e-6)
    # k-space = F(S_c x), the inverse by float64 numpy recovers the coil images
    coil_images = _ifft2c64(sim.kspace)
    np.testing.assert_allclose(coil_images, sim.sens_maps[None] * sim.image[:, None], atol=1e-5 * 2.0)
    # RSS target of unit-RSS maps is the magnitude image itself
    np.testing.assert_allclose(sim.target, magnitude, atol=1e-5 * 2.0)


def test_readout_oversampling_and_recon_crop():
    config = SimulationConfig(num_coils=2, snr=None, readout_oversampling=2, matrix_size=(40, 36))
    sim = simulate_multicoil(_phantom(1), config, seed=0)
    assert sim.kspace.shape == (1, 2, 80, 36) and sim.target.shape == (1, 40, 36)
    rss = np.sqrt((np.abs(_ifft2c64(sim.kspace)) ** 2).sum(1))
    np.testing.assert_allclose(rss[:, 20:60], sim.target, atol=1e-7)
    assert np.abs(rss[:, :20]).max() < 1e-7  # the extended FOV is empty


def test_default_matrix_rounds_up_to_multiples_of_16():
    sim = simulate_multicoil(_phantom(1, 37, 50), SimulationConfig(num_coils=1, snr=None), seed=0)
    assert sim.recon_size == (48, 64)


def test_noise_level_and_inter_coil_correlation():
    images = np.ones((4, 64, 64), np.float32)
    base = dict(num_coils=4, matrix_size=(64, 64), intensity_scale=1.0, phase_amplitude=0.0)
    clean = simulate_multicoil(images, SimulationConfig(snr=None, **base), seed=5).kspace
    for rho in (0.0, 0.6):
        noisy = simulate_multicoil(images, SimulationConfig(snr=20.0, noise_correlation=rho, **base), seed=5)
        noise = (noisy.kspace - clean).transpose(1, 0, 2, 3).reshape(4, -1).astype(np.complex128)
        # sigma = mean object magnitude (1.0) / snr, E|n|^2 = sigma^2
        assert noisy.noise_std == pytest.approx(1.0 / 20.0)
        cov = noise @ noise.conj().T / noise.shape[1] / noisy.noise_std**2
        np.testing.assert_allclose(cov.real, noise_covariance(4, rho), atol=0.02)
        assert np.abs(cov.imag).max() < 0.02
        np.testing.assert_allclose(noise.real.var(1) / noisy.noise_std**2, 0.5, atol=0.02)


def test_smooth_phase_is_smooth_bounded_and_seeded():
    rng = np.random.default_rng(0)
    phase = smooth_phase((3, 64, 48), rng, amplitude=np.pi / 2, order=2)
    assert phase.shape == (3, 64, 48) and phase.dtype == np.float32
    assert np.abs(phase).max() == pytest.approx(np.pi / 2, rel=1e-6)
    # neighbouring pixels differ by at most (peak * 2 * pi * order / 2) / N per pixel
    assert np.abs(np.diff(phase, axis=-1)).max() < np.pi / 2 * np.pi * 2 / 48 * 2
    again = smooth_phase((3, 64, 48), np.random.default_rng(0), amplitude=np.pi / 2, order=2)
    np.testing.assert_array_equal(phase, again)
    assert np.all(smooth_phase((8, 8), rng, amplitude=1.0, order=0) == 0)


def test_deterministic_given_a_seed():
    config = SimulationConfig(num_coils=3, noise_correlation=0.3)
    a = simulate_multicoil(_phantom(), config, seed=11)
    b = simulate_multicoil(_phantom(), config, seed=11)
    c = simulate_multicoil(_phantom(), config, seed=12)
    np.testing.assert_array_equal(a.kspace, b.kspace)
    np.testing.assert_array_equal(a.target, b.target)
    assert not np.array_equal(a.kspace, c.kspace)
    d = simulate_multicoil(_phantom(), config, seed=np.random.default_rng(11))
    np.testing.assert_array_equal(a.kspace, d.kspace)


@needs_fastmri
def test_written_file_round_trips_through_both_readers(tmp_path):
    sim = simulate_multicoil(_phantom(3), SimulationConfig(num_coils=4, readout_oversampling=2), seed=0)
    folder = tmp_path / "d"
    folder.mkdir()
    write_simulated(folder / "sim.h5", sim, acquisition="AXT1", voxel_size=(0.5, 0.5, 3.0))
    ours, ref = SliceDataset(folder, "multicoil"), fastmri_data.SliceDataset(folder, "multicoil")
    assert len(ours) == len(ref) == 3
    for i, (a, b) in enumerate(zip(ours, ref)):
        np.testing.assert_array_equal(a[0], sim.kspace[i])
        np.testing.assert_array_equal(a[2], sim.target[i])
        np.testing.assert_array_equal(b[0], a[0])
        assert a[3] == b[3]
    attrs = ours[0][3]
    assert attrs["encoding_size"] == (96, 48, 1) and attrs["recon_size"] == (48, 48, 1)
    assert (attrs["padding_left"], attrs["padding_right"]) == (0, 48)
    assert attrs["acquisition"] == "AXT1" and attrs["patient_id"].startswith("sim-")
    assert attrs["max"] == pytest.approx(float(sim.target.max()))
    assert attrs["norm"] == pytest.approx(float(np.sqrt((sim.target.astype(np.float64) ** 2).sum())), rel=1e-6)


@needs_fastmri
def test_singlecoil_file_is_the_sensitivity_weighted_combination(tmp_path):
    sim = simulate_multicoil(_phantom(2), SimulationConfig(num_coils=4, snr=None), seed=0)
    folder = tmp_path / "d"
    folder.mkdir()
    write_simulated(folder / "sc.h5", sim, challenge="singlecoil")
    ds = SliceDataset(folder, "singlecoil")
    ref = fastmri_data.SliceDataset(folder, "singlecoil")
    kspace, _, esc, attrs, _, _ = ds[1]
    assert kspace.shape == (48, 48) and np.array_equal(kspace, ref[1][0])
    # noiseless, unit-RSS maps: sum_c conj(S_c) S_c x = x
    np.testing.assert_allclose(_ifft2c64(kspace), sim.image[1], atol=1e-5 * np.abs(sim.image).max())
    np.testing.assert_allclose(esc, np.abs(sim.image[1]), atol=1e-5 * np.abs(sim.image).max())
    with h5py.File(folder / "sc.h5") as hf:
        assert set(hf.keys()) == {"kspace", "ismrmrd_header", "reconstruction_esc", "reconstruction_rss"}


def test_test_style_file_with_mask(tmp_path):
    sim = simulate_multicoil(_phantom(2), SimulationConfig(num_coils=2), seed=0)
    folder = tmp_path / "d"
    folder.mkdir()
    write_simulated(folder / "t.h5", sim, mask_func=EquispacedMaskFractionFunc([0.16], [4]))
    with h5py.File(folder / "t.h5") as hf:
        assert "reconstruction_rss" not in hf and "max" not in hf.attrs
        mask = hf["mask"][()]
        assert hf.attrs["acceleration"] == 4 and hf.attrs["num_low_frequency"] == round(48 * 0.16)
        kspace = hf["kspace"][()]
    assert np.all(kspace[..., ~mask] == 0) and np.all(kspace[..., mask] != 0)
    sample = SliceDataset(folder, "multicoil", transform=VarNetDataTransform())[0]
    assert sample.mask.flatten().tolist() == mask.tolist()


def _write_nifti(path, volume, zooms=(1.0, 1.0, 2.0)):
    nib.save(nib.Nifti1Image(volume, np.diag([*zooms, 1.0])), str(path))
    return path


def test_simulate_nifti_and_folder(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    vol = np.zeros((36, 40, 5), np.float32)
    vol[8:30, 5:35, 1:4] = 1.0  # slices 0 and 4 are empty
    _write_nifti(src / "a.nii.gz", vol)
    _write_nifti(src / "b.nii", vol * 2)
    out = simulate_nifti(src / "a.nii.gz", tmp_path / "one", config=SimulationConfig(num_coils=2), seed=1)
    assert out.name == "a.h5"
    ds = SliceDataset(out, "multicoil")
    assert len(ds) == 3  # only the slices with signal
    assert ds[0][0].shape == (2, 48, 48)  # rot90 of (36, 40) -> (40, 36) -> padded to 48 x 48
    with h5py.File(out) as hf:
        hdr = hf["ismrmrd_header"][()].decode()
    assert "<z>2</z>" in hdr  # slice thickness from the NIfTI voxel size
    outs = simulate_folder(src, tmp_path / "many", config=SimulationConfig(num_coils=2), seed=1)
    assert [p.name for p in outs] == ["a.h5", "b.h5"]
    # a file's seed depends on its name and the base seed, not on the folder's other files
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "b.nii").write_bytes((src / "b.nii").read_bytes())
    again = simulate_folder(alone, tmp_path / "again", config=SimulationConfig(num_coils=2), seed=1)
    with h5py.File(outs[1]) as x, h5py.File(again[0]) as y:
        np.testing.assert_array_equal(x["kspace"][()], y["kspace"][()])


def test_nifti_slices_orientation():
    vol = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    s = nifti_slices(vol, axis=2, slices=[1])
    np.testing.assert_array_equal(s[0], np.rot90(vol[:, :, 1]))
    assert nifti_slices(vol, axis=0).shape == (2, 4, 3)


def test_simulation_errors(tmp_path):
    with pytest.raises(TypeError, match="images must be real magnitude images, got complex64"):
        simulate_multicoil(np.ones((2, 4, 4), np.complex64))
    with pytest.raises(ValueError, match=r"images must be \(slices, H, W\) or \(H, W\), got shape \(4,\)"):
        simulate_multicoil(np.ones(4))
    with pytest.raises(ValueError, match="finite and non-negative"):
        simulate_multicoil(-np.ones((4, 4)))
    with pytest.raises(ValueError, match="images are all zero"):
        simulate_multicoil(np.zeros((4, 4)))
    with pytest.raises(TypeError, match="seed must be an int, SeedSequence or numpy Generator, got str"):
        simulate_multicoil(np.ones((4, 4)), seed="0")
    with pytest.raises(ValueError, match="challenge must be 'singlecoil' or 'multicoil'"):
        write_simulated(tmp_path / "x.h5", simulate_multicoil(np.ones((4, 4))), challenge="both")
    with pytest.raises(ValueError, match="contains no NIfTI files"):
        simulate_folder(tmp_path, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="in_dir must be a folder"):
        simulate_folder(tmp_path / "missing", tmp_path / "out")
    _write_nifti(tmp_path / "zero.nii", np.zeros((4, 4, 2), np.float32))
    with pytest.raises(ValueError, match="zero.nii: the volume is all zero"):
        simulate_nifti(tmp_path / "zero.nii", tmp_path / "out")
    with pytest.raises(ValueError, match="axis must be 0, 1 or 2, got 3"):
        nifti_slices(np.zeros((2, 2, 2)), axis=3)
    with pytest.raises(ValueError, match=r"volume must be 3-D \(X, Y, Z\)"):
        nifti_slices(np.zeros((2, 2)))
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("num_coils", 0, "num_coils must be a positive int, got 0"),
        ("coil_radius", 0.5, "coil_radius must be > 1"),
        ("snr", -1.0, "snr must be positive or None"),
        ("noise_correlation", 1.0, r"noise_correlation must be in \(-1, 1\), got 1.0"),
        ("phase_amplitude", -1.0, "phase_amplitude must be >= 0"),
        ("phase_order", 1.5, "phase_order must be an int >= 0"),
        ("readout_oversampling", 0, "readout_oversampling must be an int >= 1"),
        ("matrix_size", (1, 8), r"matrix_size must be \(H, W\) with both >= 2"),
        ("intensity_scale", 0.0, "intensity_scale must be positive"),
    ],
)
def test_config_validation(field, value, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(SimulationConfig(), **{field: value})
