"""The embedded data: committed sample file, splits without shared anatomy, lazy cache."""

from __future__ import annotations

import dataclasses
import zlib

import h5py
import numpy as np
import pytest

try:  # only the fastMRI parity tests need the fastmri package; the rest run without it
    import fastmri.data as fastmri_data
except ImportError:
    fastmri_data = None
needs_fastmri = pytest.mark.skipif(fastmri_data is None, reason="fastMRI parity test: needs the fastmri package")
from recon.data import SliceDataset, sample_dir, sample_file, sample_files
from recon.data.sample import (
    SAMPLE_CONFIG,
    SAMPLE_SLICES,
    SPLITS,
    data_dir,
    load_embedded_volume,
)
from recon.data.simulate import nifti_slices, simulate_multicoil


def test_data_folder_is_small_and_documented():
    folder = data_dir()
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert total < 40 * 2**20, f"data/ holds (issue limit 40 MB) {total / 2**20:.1f} MB"
    readme = (folder / "README.md").read_text()
    for name in ("colin27_t1.nii.gz", "dipy_t1_coronal_slice.nii.gz", "dipy_b0_10slices.nii.gz",
                 "sample_val_multicoil.h5", "scripts/make_sample_data.py", "BSD-3-Clause"):
        assert name in readme


@needs_fastmri
def test_committed_sample_reads_in_both_readers():
    path = sample_file()
    assert path == data_dir() / "fastmri" / "sample_val_multicoil.h5"
    ours = SliceDataset(path.parent, "multicoil")
    ref = fastmri_data.SliceDataset(path.parent, "multicoil")
    assert len(ours) == len(ref) == 3
    for a, b in zip(ours, ref):
        assert a[0].shape == (8, 224, 192) and a[0].dtype == np.complex64
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[2], b[2])
        assert a[3] == b[3]
    assert ours[0][3]["acquisition"] == "AXT1" and ours[0][3]["recon_size"] == (224, 192, 1)


def test_committed_sample_is_reproducible_from_the_embedded_volume():
    volume, _ = load_embedded_volume("colin27_t1.nii.gz")
    images = nifti_slices(volume, axis=2, slices=range(*SAMPLE_SLICES))
    sim = simulate_multicoil(images, SAMPLE_CONFIG, seed=zlib.crc32(b"sample_val_multicoil"))
    with h5py.File(sample_file()) as hf:
        kspace = hf["kspace"][()]
        target = hf["reconstruction_rss"][()]
    scale = np.abs(kspace).max()
    np.testing.assert_allclose(sim.kspace, kspace, atol=1e-5 * scale, rtol=0)
    np.testing.assert_allclose(sim.target, target, atol=1e-5 * target.max(), rtol=0)


def test_embedded_volumes_are_real_images():
    colin, zooms = load_embedded_volume("colin27_t1.nii.gz")
    assert colin.shape == (181, 217, 181) and zooms == (1.0, 1.0, 1.0)
    assert len(np.unique(colin)) > 200  # a real T1 image, not a piecewise-constant phantom
    t1, _ = load_embedded_volume("dipy_t1_coronal_slice.nii.gz")
    b0, _ = load_embedded_volume("dipy_b0_10slices.nii.gz")
    assert t1.shape == (256, 256, 1) and b0.shape == (128, 128, 10)


def test_splits_share_no_slices_and_keep_5mm_gaps():
    ranges = {
        split: [(v.source, v.start, v.stop) for v in volumes] for split, volumes in SPLITS.items()
    }
    colin = [(split, a, b) for split, vols in ranges.items() for src, a, b in vols if src == "colin27_t1.nii.gz"]
    colin.sort(key=lambda t: t[1])
    for (s1, a1, b1), (s2, a2, b2) in zip(colin, colin[1:]):
        assert a2 - b1 >= 5, f"{s1} [{a1},{b1}) and {s2} [{a2},{b2}) are closer than 5 mm"
    assert {s for s, _, _ in colin} == {"train", "val", "test"}
    heldout = {src for _, src, _, _ in [(None, *v) for v in ranges["test_heldout"]]}
    assert "colin27_t1.nii.gz" not in heldout
    lo, hi = SAMPLE_SLICES
    assert any(a <= lo and hi <= b for _, a, b in ranges["val"])  # the sample file is validation data


def test_split_generation_is_lazy_atomic_and_deterministic(split_cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    files = sample_files("test_heldout", cache=split_cache)
    assert [f.name for f in files] == ["dipy_b0_axial.h5", "dipy_t1_coronal.h5"]
    assert list(tmp_path.iterdir()) == []  # nothing in the working directory
    ds = SliceDataset(files[0].parent, "multicoil")
    assert len(ds) == 11
    assert sorted(p.name for p in files[0].parent.parent.iterdir()) == ["test_heldout"]  # no temp folder left
    mtime = files[0].stat().st_mtime_ns
    assert sample_files("test_heldout", cache=split_cache) == files and files[0].stat().st_mtime_ns == mtime
    other = sample_files("test_heldout", cache=tmp_path / "c2")
    for a, b in zip(files, other):
        with h5py.File(a) as x, h5py.File(b) as y:
            np.testing.assert_array_equal(x["kspace"][()], y["kspace"][()])
    monkeypatch.setenv("RECON_CACHE", str(split_cache))
    assert sample_dir("test_heldout") == files[0].parent


def test_singlecoil_split(split_cache):
    files = sample_files("test_heldout", "singlecoil", cache=split_cache)
    ds = SliceDataset(files[0].parent, "singlecoil")
    kspace, _, target, attrs, _, _ = ds[0]
    assert kspace.ndim == 2 and target.shape == tuple(attrs["recon_size"][:2])


@pytest.mark.slow
@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_colin_splits(split_cache, split):
    files = sample_files(split, cache=split_cache)
    assert [f.stem for f in files] == sorted(v.name for v in SPLITS[split])
    ds = SliceDataset(files[0].parent, "multicoil")
    assert len(ds) == sum(v.stop - v.start for v in SPLITS[split])


def test_sample_errors(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match=r"split must be one of \['test', 'test_heldout', 'train', 'val'\], got 'dev'"):
        sample_files("dev", cache=tmp_path)
    with pytest.raises(ValueError, match="challenge must be 'singlecoil' or 'multicoil', got 'knee'"):
        sample_file("val", "knee")
    monkeypatch.setenv("RECON_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="embedded data folder not found"):
        sample_file()
    assert not list(tmp_path.glob("data-*"))


def test_cache_folder_changes_with_the_split_definition(monkeypatch):
    from recon.data import sample as sample_module

    before = sample_module._split_key("val", "multicoil")
    assert before == sample_module._split_key("val", "multicoil")
    assert before != sample_module._split_key("val", "singlecoil")
    changed = dataclasses.replace(sample_module.SAMPLE_CONFIG, snr=sample_module.SAMPLE_CONFIG.snr + 1)
    monkeypatch.setattr(sample_module, "SAMPLE_CONFIG", changed)
    assert sample_module._split_key("val", "multicoil") != before
