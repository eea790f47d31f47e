"""``recon.data.simulate`` refuses what it cannot simulate, naming the file (and slice) (class 8)."""

from __future__ import annotations

from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest

from recon.data import SliceDataset
from recon.data.simulate import SimulationConfig, simulate_folder, simulate_multicoil, simulate_nifti
from reliability_helpers import raises_naming

CONFIG = SimulationConfig(num_coils=2, snr=None)
GOOD = 0.5 + np.random.default_rng(0).random((16, 16, 4)).astype(np.float32)


def _nifti(path: Path, data: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))
    return path


def _with(index, value, base=GOOD):
    out = base.copy()
    out[index] = value
    return out


BAD_VOLUMES = [
    ("complex", (GOOD + 1j * GOOD).astype(np.complex64), ["complex"]),
    ("one-nan-voxel", _with((3, 3, 2), np.nan), ["slice 2", "NaN"]),
    ("one-inf-voxel", _with((1, 2, 0), np.inf), ["slice 0"]),
    ("all-negative", -GOOD, ["negative"]),
    ("some-negative", _with((5, 5, 3), -1.0), ["negative", "slice 3"]),
    ("all-zero", np.zeros_like(GOOD), ["all zero"]),
    ("5-d", GOOD[..., None, None].repeat(2, 3).repeat(2, 4), ["3-D"]),
]


@pytest.mark.parametrize("data, names", [pytest.param(d, n, id=i) for i, d, n in BAD_VOLUMES])
def test_bad_volume_refused_naming_the_file(tmp_path, data, names):
    path = _nifti(tmp_path / "vol.nii.gz", data)
    with raises_naming(ValueError, str(path), *names) as info:
        simulate_nifti(path, tmp_path / "out", config=CONFIG)
    if "negative" in names and data.max() <= 0:
        assert "all zero" not in str(info.value)  # an all-negative volume is called negative
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize(
    "kwargs, names",
    [(dict(axis=3), ["axis"]), (dict(axis=True), ["axis"]), (dict(slices=[9]), ["slices"]), (dict(slices=[]), ["slices"])],
    ids=["axis-3", "axis-bool", "slice-out-of-range", "no-slices"],
)
def test_bad_arguments(tmp_path, kwargs, names):
    path = _nifti(tmp_path / "vol.nii.gz", GOOD)
    with raises_naming(ValueError, *names):
        simulate_nifti(path, tmp_path / "out", config=CONFIG, **kwargs)


def test_garbage_and_missing_files(tmp_path):
    (tmp_path / "bad.nii.gz").write_bytes(b"nope")
    with raises_naming(ValueError, str(tmp_path / "bad.nii.gz")):
        simulate_nifti(tmp_path / "bad.nii.gz", tmp_path / "out", config=CONFIG)
    with raises_naming(FileNotFoundError, "missing.nii"):
        simulate_nifti(tmp_path / "missing.nii", tmp_path / "out", config=CONFIG)


def test_folder_names_the_failing_file_and_keeps_the_earlier_ones(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    _nifti(src / "a.nii.gz", GOOD)
    _nifti(src / "b.nii.gz", _with((1, 1, 1), np.nan))
    _nifti(src / "c.nii.gz", GOOD)
    (src / ".hidden.nii.gz").write_bytes(b"partial")  # hidden: skipped
    with raises_naming(ValueError, "b.nii.gz", "slice 1"):
        simulate_folder(src, tmp_path / "out", config=CONFIG)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.h5"]


def test_folder_without_nifti(tmp_path):
    (tmp_path / "x.txt").write_text("")
    with raises_naming(ValueError, "in_dir", str(tmp_path)):
        simulate_folder(tmp_path, tmp_path / "out", config=CONFIG)
    with raises_naming(FileNotFoundError, "in_dir"):
        simulate_folder(tmp_path / "nope", tmp_path / "out", config=CONFIG)


def test_two_d_nifti_is_one_slice_and_readable(tmp_path):
    path = _nifti(tmp_path / "slice.nii", GOOD[..., 0])
    written = simulate_nifti(path, tmp_path / "out", config=CONFIG)
    with h5py.File(written) as hf:
        assert hf["kspace"].shape[:2] == (1, 2) and np.isfinite(hf["kspace"][()]).all()
    assert len(SliceDataset(tmp_path / "out", challenge="multicoil")) == 1


def test_nan_slice_is_not_silently_dropped(tmp_path):
    """Before: a NaN voxel made slice 2's max NaN, the slice was skipped, exit 0."""
    path = _nifti(tmp_path / "vol.nii.gz", _with((0, 0, 2), np.nan))
    with pytest.raises(ValueError):
        simulate_nifti(path, tmp_path / "out", config=CONFIG)


CONFIG_ERRORS = [
    ("num_coils", dict(num_coils=0)),
    ("coil_radius", dict(coil_radius=0.5)),
    ("snr", dict(snr=-1.0)),
    ("noise_correlation", dict(noise_correlation=1.0)),
    ("phase_amplitude", dict(phase_amplitude=-1.0)),
    ("phase_order", dict(phase_order=-1)),
    ("readout_oversampling", dict(readout_oversampling=0)),
    ("matrix_size", dict(matrix_size=(1, 16))),
    ("intensity_scale", dict(intensity_scale=0.0)),
]


@pytest.mark.parametrize("name, kwargs", CONFIG_ERRORS, ids=[c[0] for c in CONFIG_ERRORS])
def test_simulation_config_refuses(name, kwargs):
    with raises_naming(ValueError, name):
        SimulationConfig(**kwargs)


@pytest.mark.parametrize(
    "images, exc, names",
    [
        (GOOD[..., 0] + 1j, TypeError, ["images"]),
        (np.array(["a"]), TypeError, ["images"]),
        (_with((0, 0, 0), np.nan)[..., 0], ValueError, ["images", "finite"]),
        (-GOOD[..., 0], ValueError, ["images"]),
        (np.zeros((2, 8, 8)), ValueError, ["images", "zero"]),
        (np.ones(8), ValueError, ["images"]),
    ],
    ids=["complex", "strings", "nan", "negative", "zero", "1-d"],
)
def test_simulate_multicoil_refuses(images, exc, names):
    with raises_naming(exc, *names):
        simulate_multicoil(images, CONFIG)
