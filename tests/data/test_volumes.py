"""NiftiSliceDataset, PairedVolumeDataset, volume_to_slices: contents against numpy on the arrays
the files were written from, geometry against nibabel's apply_affine, DataLoader workers."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

nib = pytest.importorskip("nibabel")
from nibabel.affines import apply_affine  # noqa: E402

from recon.data import NiftiSliceDataset, PairedVolumeDataset, volume_to_slices  # noqa: E402

COLIN = Path(__file__).resolve().parents[2] / "data" / "colin27_t1.nii.gz"


@pytest.fixture(scope="module")
def colin() -> tuple[np.ndarray, np.ndarray]:
    """Colin27 at 4 mm (46 x 55 x 46), canonical RAS, float32, with its affine."""
    image = nib.load(str(COLIN))
    data = np.asarray(image.dataobj, dtype=np.float32)[::4, ::4, ::4]
    affine = image.affine @ np.diag([4.0, 4.0, 4.0, 1.0])
    return np.ascontiguousarray(data), affine


def write(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


def las_copy(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same image stored LAS (x flipped): what a DICOM converter writes."""
    flip = np.diag([-1.0, 1.0, 1.0, 1.0])
    flip[0, 3] = data.shape[0] - 1
    return np.ascontiguousarray(data[::-1]), affine @ flip


def expected_slices(volume: np.ndarray, axis: int, low: float, high: float, threshold: float, min_fg: float) -> list[int]:
    """The documented rule, spelled out in float64 numpy."""
    v = volume.astype(np.float64)
    n = v.shape[axis]
    level = v.min() + threshold * (v.max() - v.min())
    out = []
    for i in range(n):
        if not low <= (i + 0.5) / n <= high:
            continue
        s = np.take(v, i, axis=axis)
        fraction = (s > level).mean()
        if (fraction >= min_fg) if min_fg > 0 else (fraction > 0):  # min_fg = 0: one bright voxel
            out.append(i)
    return out


# --- NiftiSliceDataset -------------------------------------------------------------------------


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_slice_dataset_contents_and_rule(tmp_path, colin, axis):
    data, affine = colin
    data = data.copy()
    data[:, :, 30:33] = 0  # an empty slab inside the window
    write(tmp_path / "a.nii.gz", *las_copy(data, affine))  # stored LAS, read canonical
    write(tmp_path / "b.nii", data * 2, affine)
    ds = NiftiSliceDataset(tmp_path, axis=axis)
    want = {"a": expected_slices(data, axis, 0.2, 0.8, 0.05, 0.01), "b": expected_slices(data * 2, axis, 0.2, 0.8, 0.05, 0.01)}
    assert len(ds) == len(want["a"]) + len(want["b"])
    if axis == 2:
        assert not set(want["a"]) & {30, 31, 32}
    seen = {"a": [], "b": []}
    for i in range(len(ds)):
        item = ds[i]
        seen[item["subject"]].append(item["slice"])
        scale = 2.0 if item["subject"] == "b" else 1.0
        assert item["image"].dtype == torch.float32 and item["image"].shape[0] == 1
        np.testing.assert_array_equal(item["image"][0].numpy(), np.take(data, item["slice"], axis=axis) * scale)
        # voxel (i, j) of the slice file sits where voxel (..., k, ...) of the volume does
        ij = np.array([[0, 0, 0], [3, 5, 0], [7, 2, 0]])
        vox = np.insert(ij[:, :2], axis, item["slice"], axis=1)
        np.testing.assert_allclose(apply_affine(item["affine"].numpy(), ij), apply_affine(affine, vox), atol=1e-6)
    assert seen == want


def test_plane_names_and_ranges(tmp_path, colin):
    data, affine = colin
    write(tmp_path / "a.nii.gz", data, affine)
    axial = NiftiSliceDataset(tmp_path, axis="axial", slice_range=(0.0, 1.0), min_foreground=0.0, threshold=0.0)
    assert len(axial) == len(expected_slices(data, 2, 0.0, 1.0, 0.0, 0.0))
    assert NiftiSliceDataset(tmp_path, axis="sagittal").axis == 0
    assert len(NiftiSliceDataset(tmp_path, axis=-1, slice_range=(0.5, 0.51))) == 1  # thin window: middle slice


def test_nan_voxels_count_as_dark(tmp_path, colin):
    data, affine = colin
    with_nan = data.copy()
    with_nan[with_nan == 0] = np.nan  # a masked map: background NaN
    write(tmp_path / "a.nii.gz", with_nan, affine)
    ds = NiftiSliceDataset(tmp_path)
    assert [ds[i]["slice"] for i in range(len(ds))] == expected_slices(data, 2, 0.2, 0.8, 0.05, 0.01)


def test_constant_volume_has_no_slices(tmp_path):
    write(tmp_path / "zero.nii.gz", np.zeros((8, 8, 8), np.float32), np.eye(4))
    assert len(NiftiSliceDataset(tmp_path)) == 0


def test_slice_dataset_transform_and_pickling(tmp_path, colin):
    data, affine = colin
    write(tmp_path / "a.nii.gz", data, affine)
    ds = NiftiSliceDataset(tmp_path, transform=lambda s: {**s, "image": s["image"] * 0 + 1})
    assert torch.all(ds[0]["image"] == 1)
    plain = NiftiSliceDataset(tmp_path)
    plain[3]
    assert len(pickle.dumps(plain)) < 20_000  # the cached volume is not pickled


def test_slice_dataset_with_workers(tmp_path, colin):
    data, affine = colin
    write(tmp_path / "a.nii.gz", data, affine)
    write(tmp_path / "b.nii.gz", data[::-1].copy(), affine)
    ds = NiftiSliceDataset(tmp_path)
    direct = torch.stack([ds[i]["image"] for i in range(len(ds))])
    loaded = torch.cat([b["image"] for b in DataLoader(ds, batch_size=7, num_workers=2)])
    torch.testing.assert_close(loaded, direct, rtol=0, atol=0)


# --- PairedVolumeDataset -----------------------------------------------------------------------


@pytest.fixture()
def pairs(tmp_path, colin):
    data, affine = colin
    for s, shift in (("sub-01", 0), ("sub-02", 3)):
        t1 = np.roll(data, shift, axis=0)
        flair = np.where(t1 > 0, 300.0 - t1, 0.0).astype(np.float32)  # a contrast derived voxel by voxel
        write(tmp_path / "t1" / f"{s}.nii.gz", *las_copy(t1, affine))
        write(tmp_path / "flair" / f"{s}.nii", flair, affine)
        write(tmp_path / "label" / f"{s}.nii.gz", (t1 > 100).astype(np.uint8), affine)
    return tmp_path


def test_paired_whole_volumes(pairs, colin):
    data, affine = colin
    ds = PairedVolumeDataset(pairs / "t1", pairs / "flair", label_dir=pairs / "label", seed=0)
    assert len(ds) == 2 and ds.subjects == ["sub-01", "sub-02"]
    item = ds[1]
    t1 = np.roll(data, 3, axis=0)
    assert item["source"].shape == (1, *data.shape) and item["source"].dtype == torch.float32
    np.testing.assert_array_equal(item["source"][0].numpy(), t1)
    np.testing.assert_array_equal(item["target"][0].numpy(), np.where(t1 > 0, 300.0 - t1, 0.0))
    assert item["label"].dtype == torch.int64
    np.testing.assert_array_equal(item["label"][0].numpy(), t1 > 100)
    np.testing.assert_allclose(item["affine"].numpy(), affine)
    assert item["subject"] == "sub-02"


def test_paired_patches_same_place_and_reproducible(pairs, colin):
    data, affine = colin
    ds = PairedVolumeDataset(pairs / "t1", pairs / "flair", patch_size=(16, 20, 12), seed=5)
    a, b = ds[0], ds[0]
    torch.testing.assert_close(a["source"], b["source"], rtol=0, atol=0)
    corner = np.array(a["location"])
    window = tuple(slice(c, c + p) for c, p in zip(corner, (16, 20, 12)))
    np.testing.assert_array_equal(a["source"][0].numpy(), data[window])
    np.testing.assert_array_equal(a["target"][0].numpy(), np.where(data > 0, 300.0 - data, 0.0)[window])
    np.testing.assert_allclose(apply_affine(a["affine"].numpy(), [0, 0, 0]), apply_affine(affine, corner), atol=1e-9)
    locations = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        locations.add(ds[0]["location"])
    assert len(locations) > 1
    other = PairedVolumeDataset(pairs / "t1", pairs / "flair", patch_size=(16, 20, 12), seed=6)
    ds.set_epoch(0)
    assert [other[i]["location"] for i in range(2)] != [ds[i]["location"] for i in range(2)]
    assert tuple(PairedVolumeDataset(pairs / "t1", pairs / "flair", patch_size=(16, 20, 12), seed=5)[0]["location"]) == tuple(corner)


def test_paired_generator_seed(pairs):
    a = PairedVolumeDataset(pairs / "t1", pairs / "flair", patch_size=8, generator=torch.Generator().manual_seed(1))
    b = PairedVolumeDataset(pairs / "t1", pairs / "flair", patch_size=8, generator=torch.Generator().manual_seed(1))
    assert a.seed == b.seed and a[1]["location"] == b[1]["location"]


def test_paired_workers_give_the_same_patches(pairs):
    ds = PairedVolumeDataset(pairs / "t1", pairs / "flair", patch_size=12, seed=3)
    serial = [ds[i]["location"] for i in range(len(ds))]
    batches = list(DataLoader(ds, batch_size=1, num_workers=2))
    assert len(batches) == len(serial)
    assert [tuple(int(c[0]) for c in b["location"]) for b in batches] == serial  # default_collate: one tensor per coordinate
    assert batches[0]["source"].shape == (1, 1, 12, 12, 12)


def test_paired_transform_gets_the_item_generator(pairs):
    calls = []

    def transform(sample, generator=None):
        calls.append(generator.initial_seed())
        return sample

    ds = PairedVolumeDataset(pairs / "t1", pairs / "flair", seed=0, transform=transform)
    ds[0]
    ds[0]
    assert calls[0] == calls[1] == ds.generator_for(0).initial_seed()


def test_paired_with_augment_compose(pairs):
    augment = pytest.importorskip("recon.preprocess.augment")
    compose = augment.Compose([augment.RandomFlip(axes=0)], labels=("label",))
    ds = PairedVolumeDataset(pairs / "t1", pairs / "flair", label_dir=pairs / "label", patch_size=16, seed=0, transform=compose)
    item = ds[0]
    assert item["source"].shape == item["target"].shape == item["label"].shape == (1, 16, 16, 16)
    # the flip (if drawn) moved source and target together: the voxel-wise contrast relation holds
    src, tgt = item["source"][0].numpy(), item["target"][0].numpy()
    np.testing.assert_allclose(tgt, np.where(src > 0, 300.0 - src, 0.0), atol=1e-4)


def test_paired_key_function(tmp_path, colin):
    data, affine = colin
    write(tmp_path / "a" / "sub-01_T1w.nii.gz", data, affine)
    write(tmp_path / "b" / "sub-01_FLAIR.nii.gz", data, affine)
    ds = PairedVolumeDataset(tmp_path / "a", tmp_path / "b", key=lambda n: n.split("_")[0], seed=0)
    assert ds.subjects == ["sub-01"]


# --- volume_to_slices --------------------------------------------------------------------------


@pytest.mark.parametrize("axis", [0, 2])
def test_volume_to_slices_nifti(tmp_path, colin, axis):
    data, affine = colin
    src = write(tmp_path / "in" / "colin.nii.gz", *las_copy(data, affine))
    paths = volume_to_slices(src, tmp_path / "out", axis=axis)
    want = expected_slices(data, axis, 0.0, 1.0, 0.05, 0.01)
    assert [p.name for p in paths] == [f"colin_{k:04d}.nii.gz" for k in want]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths)
    for k, p in zip(want[::5], paths[::5]):
        image = nib.load(str(p))
        assert image.shape == tuple(np.delete(data.shape, axis)) + (1,)
        np.testing.assert_array_equal(np.asarray(image.dataobj)[:, :, 0], np.take(data, k, axis=axis))
        vox = np.insert(np.array([[0, 0], [4, 9]]), axis, k, axis=1)
        np.testing.assert_allclose(apply_affine(image.affine, [[0, 0, 0], [4, 9, 0]]), apply_affine(affine, vox), atol=1e-4)
    back = NiftiSliceDataset(tmp_path / "out", axis=2, slice_range=(0.0, 1.0), min_foreground=0.0, threshold=0.0, canonical=False)
    assert len(back) == len(paths)
    np.testing.assert_array_equal(back[1]["image"][0].numpy(), np.take(data, want[1], axis=axis))


def test_volume_to_slices_npy_from_array(tmp_path):
    volume = torch.zeros(6, 7, 5)
    volume[:, :, 1:4] = torch.arange(6 * 7 * 3, dtype=torch.float32).reshape(6, 7, 3) + 1
    paths = volume_to_slices(volume, tmp_path / "npy", axis=2, file_format="npy", prefix="vol")
    assert [p.name for p in paths] == ["vol_0001.npy", "vol_0002.npy", "vol_0003.npy"]
    np.testing.assert_array_equal(np.load(paths[1]), volume[:, :, 2].numpy())
    assert len(volume_to_slices(volume, tmp_path / "all", skip_empty=False, file_format="nii")) == 5


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"axis": 3}, ValueError, r"axis must be 0, 1, 2 .* got 3"),
        ({"axis": "oblique"}, ValueError, r"axis must be .* got 'oblique'"),
        ({"slice_range": (0.8, 0.2)}, ValueError, r"slice_range must satisfy 0 <= low < high <= 1, got \(0\.8, 0\.2\)"),
        ({"slice_range": 0.5}, TypeError, r"slice_range must be two fractions"),
        ({"threshold": 2.0}, ValueError, r"threshold must be in \[0, 1\], got 2\.0"),
        ({"min_foreground": "x"}, TypeError, r"min_foreground must be a number"),
        ({"transform": 3}, TypeError, r"transform must be callable or None, got int"),
    ],
)
def test_slice_dataset_bad_arguments(tmp_path, colin, kwargs, error, match):
    write(tmp_path / "a.nii.gz", *colin)
    with pytest.raises(error, match=match):
        NiftiSliceDataset(tmp_path, **kwargs)


def test_slice_dataset_bad_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"folder must be a folder of NIfTI files, got .*missing"):
        NiftiSliceDataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match=r"folder .*empty' holds no \.nii / \.nii\.gz file"):
        NiftiSliceDataset(tmp_path / "empty")
    write(tmp_path / "four" / "fmri.nii.gz", np.zeros((4, 4, 4, 3), np.float32), np.eye(4))
    with pytest.raises(ValueError, match=r"fmri\.nii\.gz: expected a 3-D volume, got shape \(4, 4, 4, 3\)"):
        NiftiSliceDataset(tmp_path / "four")


def test_paired_unmatched_names_are_listed(tmp_path, colin):
    write(tmp_path / "a" / "sub-01.nii.gz", *colin)
    write(tmp_path / "a" / "sub-02.nii.gz", *colin)
    write(tmp_path / "b" / "sub-01.nii.gz", *colin)
    write(tmp_path / "b" / "sub-03.nii", *colin)
    with pytest.raises(ValueError, match=r"only in source_dir: \['sub-02\.nii\.gz'\], only in target_dir: \['sub-03\.nii'\]"):
        PairedVolumeDataset(tmp_path / "a", tmp_path / "b")


def test_paired_grid_mismatch(tmp_path, colin):
    data, affine = colin
    write(tmp_path / "a" / "s.nii.gz", data, affine)
    write(tmp_path / "b" / "s.nii.gz", data[:-1], affine)
    write(tmp_path / "c" / "s.nii.gz", data, affine @ np.diag([2.0, 1, 1, 1]))
    with pytest.raises(ValueError, match=r"subject 's': target \(45, 55, 46\) and source \(46, 55, 46\) differ in shape"):
        PairedVolumeDataset(tmp_path / "a", tmp_path / "b", seed=0)[0]
    with pytest.raises(ValueError, match=r"subject 's': target and source have the same shape but different affines"):
        PairedVolumeDataset(tmp_path / "a", tmp_path / "c", seed=0)[0]
    with pytest.raises(ValueError, match=r"patch_size \(64, 64, 64\) is larger than the volume"):
        PairedVolumeDataset(tmp_path / "a", tmp_path / "a", patch_size=64, seed=0)[0]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"patch_size": 0}, ValueError, r"patch_size must be positive, got 0"),
        ({"patch_size": (8, 8)}, TypeError, r"patch_size must be None, an int or 3 ints, got \(8, 8\)"),
        ({"patch_size": 2.5}, TypeError, r"patch_size must be None, an int or 3 ints, got 2\.5"),
        ({"seed": 1.5}, TypeError, r"seed must be an int or None, got float"),
        ({"generator": 3}, TypeError, r"generator must be a torch\.Generator or None, got int"),
        ({"seed": 1, "generator": torch.Generator()}, ValueError, r"pass seed or generator, not both"),
        ({"key": "x"}, TypeError, r"key must be callable or None, got str"),
    ],
)
def test_paired_bad_arguments(pairs, kwargs, error, match):
    with pytest.raises(error, match=match):
        PairedVolumeDataset(pairs / "t1", pairs / "flair", **kwargs)


def test_paired_set_epoch_and_index(pairs):
    ds = PairedVolumeDataset(pairs / "t1", pairs / "flair", seed=0)
    with pytest.raises(ValueError, match=r"epoch must be a non-negative int, got -1"):
        ds.set_epoch(-1)
    with pytest.raises(IndexError, match=r"index 2 out of range for 2 subjects"):
        ds[2]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"file_format": "png"}, ValueError, r"file_format must be 'nii\.gz', 'nii' or 'npy', got 'png'"),
        ({"prefix": "../x"}, ValueError, r"prefix must be a non-empty file name part"),
        ({"affine": np.zeros((4, 4))}, ValueError, r"affine must be an invertible finite 4x4 matrix"),
        ({"axis": 5}, ValueError, r"axis must be 0, 1, 2"),
    ],
)
def test_volume_to_slices_bad_arguments(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        volume_to_slices(np.ones((4, 4, 4)), tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_volume_to_slices_bad_volumes(tmp_path):
    with pytest.raises(ValueError, match=r"volume must be a real \(X, Y, Z\) array, got float64 array of shape \(4, 4\)"):
        volume_to_slices(np.ones((4, 4)), tmp_path / "out")
    with pytest.raises(TypeError, match=r"volume must be an array, tensor or NIfTI path, got list"):
        volume_to_slices([1, 2], tmp_path / "out")
    with pytest.raises(FileNotFoundError, match=r"volume .*nope\.nii\.gz' does not exist"):
        volume_to_slices(tmp_path / "nope.nii.gz", tmp_path / "out")


@pytest.mark.parametrize("codes", ["PSL", "LIA", "RAS"])
@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_paired_patches_of_any_storage_order(tmp_path, colin, codes, suffix):
    """Patches are cut from the canonical (RAS) grid whatever the stored axis order; compare with nibabel."""
    data, affine = colin
    canonical = nib.Nifti1Image(data, affine)
    ornt = nib.orientations.ornt_transform(nib.orientations.io_orientation(affine), nib.orientations.axcodes2ornt(tuple(codes)))
    stored = canonical.as_reoriented(ornt)
    for folder in ("a", "b"):
        write(tmp_path / folder / f"s{suffix}", np.asarray(stored.dataobj), stored.affine)
    ds = PairedVolumeDataset(tmp_path / "a", tmp_path / "b", patch_size=(9, 13, 7), seed=11)
    for epoch in range(3):
        ds.set_epoch(epoch)
        item = ds[0]
        corner = item["location"]
        window = tuple(slice(c, c + p) for c, p in zip(corner, (9, 13, 7)))
        reference = nib.as_closest_canonical(nib.load(str(tmp_path / "a" / f"s{suffix}")))
        np.testing.assert_array_equal(item["source"][0].numpy(), np.asarray(reference.dataobj)[window])
        np.testing.assert_allclose(apply_affine(item["affine"].numpy(), [0, 0, 0]), apply_affine(reference.affine, corner), atol=1e-5)


def test_slice_dataset_random_access_equals_sequential(tmp_path, colin):
    data, affine = colin
    write(tmp_path / "a.nii.gz", *las_copy(data, affine))
    write(tmp_path / "b.nii", data[:, ::-1].copy(), affine)
    ds = NiftiSliceDataset(tmp_path, axis=1)
    sequential = [ds[i]["image"] for i in range(len(ds))]
    order = np.random.default_rng(0).permutation(len(ds))
    fresh = NiftiSliceDataset(tmp_path, axis=1)
    for i in order:  # random access: lone slices read through the array proxy
        torch.testing.assert_close(fresh[int(i)]["image"], sequential[int(i)], rtol=0, atol=0)
