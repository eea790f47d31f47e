"""recon.data I/O fed bad input, and the remains of killed writers (class 6): never picked up as data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from recon.data import SliceDataset, load_nifti, save_nifti, save_reconstructions, write_fastmri_file
from recon.data.header import HeaderError, make_ismrmrd_header
from recon.data.io import _host, atomic_path, data_files, is_temporary, remove_stale_temporaries
from recon.data.mri_data import DataFileError
from reliability_helpers import phantom_kspace, raises_naming

HEADER = make_ismrmrd_header((32, 24), (32, 24), num_coils=4, num_slices=2)
VOLUME = np.random.default_rng(0).random((4, 5, 6)).astype(np.float32)


def _raw_file(path: Path) -> Path:
    kspace = np.stack([phantom_kspace(), phantom_kspace(seed=1)])
    rss = np.ones((2, 32, 24), np.float32)
    return write_fastmri_file(path, kspace, HEADER, reconstruction_rss=rss, attrs={"acquisition": "AXT1"})


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# ------------------------------------------------------------------------------ writers: bad input

ERRORS = [
    ("save-recons-not-mapping", lambda p: save_reconstructions([VOLUME], p), TypeError, ["reconstructions"]),
    ("save-recons-key-folder", lambda p: save_reconstructions({"a/b.h5": VOLUME}, p), ValueError, ["a/b.h5"]),
    ("save-recons-key-int", lambda p: save_reconstructions({3: VOLUME}, p), TypeError, ["3"]),
    ("save-recons-2d", lambda p: save_reconstructions({"v.h5": VOLUME[0]}, p), ValueError, ["v.h5", "(slices, H, W)"]),
    ("save-recons-list-volume", lambda p: save_reconstructions({"v.h5": [1, 2]}, p), TypeError, ["v.h5"]),
    ("write-real-kspace", lambda p: write_fastmri_file(p / "f.h5", np.ones((2, 4, 32, 24)), HEADER), TypeError, ["kspace"]),
    ("write-2d-kspace", lambda p: write_fastmri_file(p / "f.h5", np.ones((32, 24), np.complex64), HEADER), ValueError, ["kspace"]),
    ("write-bad-header", lambda p: write_fastmri_file(p / "f.h5", np.ones((2, 4, 32, 24), np.complex64), b"<x/>"), HeaderError, []),
    ("write-target-mismatch", lambda p: write_fastmri_file(p / "f.h5", np.ones((2, 4, 32, 24), np.complex64), HEADER,
                                                           reconstruction_rss=np.ones((3, 8, 8))), ValueError, ["reconstruction_rss"]),
    ("write-mask-mismatch", lambda p: write_fastmri_file(p / "f.h5", np.ones((2, 4, 32, 24), np.complex64), HEADER,
                                                         mask=np.ones(5)), ValueError, ["mask"]),
    ("nifti-bad-suffix", lambda p: save_nifti(p / "v.img", VOLUME), ValueError, ["v.img"]),
    ("nifti-complex", lambda p: save_nifti(p / "v.nii", VOLUME + 1j), TypeError, ["volume"]),
    ("nifti-2d", lambda p: save_nifti(p / "v.nii", VOLUME[0]), ValueError, ["volume"]),
    ("nifti-voxel-negative", lambda p: save_nifti(p / "v.nii", VOLUME, voxel_size=(1, -1, 1)), ValueError, ["voxel_size"]),
    ("nifti-voxel-nan", lambda p: save_nifti(p / "v.nii", VOLUME, voxel_size=(1, np.nan, 1)), ValueError, ["voxel_size"]),
    ("nifti-affine-singular", lambda p: save_nifti(p / "v.nii", VOLUME, affine=np.zeros((4, 4))), ValueError, ["affine"]),
    ("nifti-affine-shape", lambda p: save_nifti(p / "v.nii", VOLUME, affine=np.eye(3)), ValueError, ["affine"]),
    ("load-missing", lambda p: load_nifti(p / "missing.nii.gz"), FileNotFoundError, ["missing.nii.gz"]),
    ("atomic-over-folder", lambda p: atomic_path(p).__enter__(), IsADirectoryError, [""]),
]


@pytest.mark.parametrize("call, exc, names", [pytest.param(c, e, n, id=i) for i, c, e, n in ERRORS])
def test_writers_refuse_and_leave_nothing(tmp_path, call, exc, names):
    with raises_naming(exc, *names):
        call(tmp_path)
    assert list(tmp_path.iterdir()) == []  # no partial file, no temporary


@pytest.mark.parametrize("content", [b"", b"not a nifti", b"\x1f\x8b\x08\x00garbage"], ids=["empty", "text", "bad-gzip"])
def test_load_nifti_garbage_names_the_file(tmp_path, content):
    path = tmp_path / "broken.nii.gz"
    path.write_bytes(content)
    with raises_naming(ValueError, str(path)):
        load_nifti(path)


def test_load_nifti_complex_refused_for_real_dtype_and_read_as_complex(tmp_path):
    import nibabel as nib

    data = (VOLUME + 1j * VOLUME[::-1]).astype(np.complex64)
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(tmp_path / "c.nii.gz"))
    with raises_naming(ValueError, str(tmp_path / "c.nii.gz"), "complex"):
        load_nifti(tmp_path / "c.nii.gz")
    volume, _, _ = load_nifti(tmp_path / "c.nii.gz", dtype=np.complex64)
    np.testing.assert_array_equal(volume, data)


@pytest.mark.parametrize("name", ["v.nii", "v.nii.gz"])
def test_save_nifti_round_trip_through_suffixless_temporary(tmp_path, name):
    import nibabel as nib

    save_nifti(tmp_path / name, VOLUME, voxel_size=(1.0, 2.0, 3.0))
    image = nib.load(str(tmp_path / name))  # nibabel itself reads it back
    np.testing.assert_array_equal(np.asarray(image.dataobj), VOLUME)
    assert image.header.get_zooms()[:3] == (1.0, 2.0, 3.0)
    assert [p.name for p in tmp_path.iterdir()] == [name]


# ------------------------------------------------------------------------------ temporaries


def test_temporary_name_matches_no_data_glob(tmp_path):
    for final in ("vol.h5", "brain.nii.gz", "brain.nii", "last.ckpt"):
        with atomic_path(tmp_path / final) as tmp:
            name = tmp.name
            assert name.startswith(".") and is_temporary(name)
            assert not name.endswith((".h5", ".nii", ".nii.gz", ".ckpt", ".hdf5"))
            assert tmp.exists() and tmp.parent == tmp_path
            tmp.write_bytes(b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["brain.nii", "brain.nii.gz", "last.ckpt", "vol.h5"]


def test_atomic_write_gets_the_umask_mode(tmp_path):
    old = os.umask(0o027)
    try:
        with atomic_path(tmp_path / "x.h5") as tmp:
            tmp.write_bytes(b"1")
    finally:
        os.umask(old)
    assert (tmp_path / "x.h5").stat().st_mode & 0o777 == 0o640


def test_import_does_not_touch_the_process():
    """Nothing at import time changes the process (issue 8): importing recon and every one of its
    modules (``__main__`` aside) neither calls ``os.umask`` nor changes the thread count or the
    torch / numpy / Python global RNG states."""
    code = (
        "import os, random, pkgutil, importlib\n"
        "calls = []\n"
        "real = os.umask\n"
        "os.umask = lambda m: calls.append(m) or real(m)\n"
        "import numpy as np, torch\n"
        "before = torch.get_num_threads(), np.random.get_state()[1].copy(), torch.get_rng_state(), random.getstate()\n"
        "import recon\n"
        "names = [m.name for m in pkgutil.walk_packages(recon.__path__, 'recon.') if not m.name.endswith('__main__')]\n"
        "for name in names: importlib.import_module(name)\n"
        "after = torch.get_num_threads(), np.random.get_state()[1], torch.get_rng_state(), random.getstate()\n"
        "same = before[0] == after[0] and (before[1] == after[1]).all() and torch.equal(before[2], after[2])\n"
        "print(len(names) > 30, len(calls), bool(same and before[3] == after[3]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True 0 True", out.stderr[-2000:]


def test_remove_stale_temporaries_only_removes_dead_writers_of_this_host(tmp_path):
    dead, live = _dead_pid(), os.getpid()
    stale = tmp_path / f".vol.h5.tmp-{_host()}-{dead}-0123abcd"
    running = tmp_path / f".vol.h5.tmp-{_host()}-{live}-89abcdef"
    other_host = tmp_path / f".vol.h5.tmp-otherhost-{dead}-00000000"
    unrelated = [tmp_path / ".vol.h5.tmp", tmp_path / ".hidden", tmp_path / "vol.h5", tmp_path / "notes.txt"]
    for path in [stale, running, other_host, *unrelated]:
        path.write_bytes(b"x")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert sorted(tmp_path.iterdir()) == sorted([running, other_host, *unrelated])
    assert remove_stale_temporaries(tmp_path / "missing") == []


def test_data_files_skip_hidden_and_temporaries(tmp_path):
    for name in ("b.h5", "a.H5", ".a.h5", f".c.h5.tmp-{_host()}-1-0123abcd", "d.txt", "._e.h5"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "dir.h5").mkdir()
    assert [p.name for p in data_files(tmp_path, (".h5",))] == ["a.H5", "b.h5"]


# ------------------------------------------------------------------------------ SliceDataset


def test_slice_dataset_ignores_temporaries_of_a_killed_run(tmp_path):
    _raw_file(tmp_path / "vol.h5")
    # what a kill -9 during a write leaves: a partial file under the temporary name
    (tmp_path / f".vol2.h5.tmp-{_host()}-{_dead_pid()}-0123abcd").write_bytes(b"\x89HDF\r\n partial")
    (tmp_path / ".hidden.h5").write_bytes(b"partial")
    dataset = SliceDataset(tmp_path, challenge="multicoil")
    assert len(dataset) == 2 and {s.fname.name for s in dataset.raw_samples} == {"vol.h5"}


DATASET_ERRORS = [
    ("truncated", lambda p: (p / "t.h5").write_bytes((_raw_file(p / "x.h5").read_bytes())[:500]) and (p / "x.h5").unlink(),
     "t.h5"),
    ("not-hdf5", lambda p: (p / "n.h5").write_text("hello"), "n.h5"),
    ("no-kspace", lambda p: h5py.File(p / "k.h5", "w").close(), "k.h5"),
]


@pytest.mark.parametrize("make, name", [pytest.param(m, n, id=i) for i, m, n in DATASET_ERRORS])
def test_slice_dataset_bad_file_names_the_file(tmp_path, make, name):
    make(tmp_path)
    with raises_naming(DataFileError, name):
        SliceDataset(tmp_path, challenge="multicoil")


@pytest.mark.parametrize(
    "kwargs, names",
    [
        (dict(challenge="multi"), ["challenge"]),
        (dict(challenge="multicoil", sample_rate=0), ["sample_rate"]),
        (dict(challenge="multicoil", volume_sample_rate=1.5), ["volume_sample_rate"]),
        (dict(challenge="multicoil", sample_rate=0.5, volume_sample_rate=0.5), ["sample_rate", "volume_sample_rate"]),
        (dict(challenge="multicoil", transform=3), ["transform"]),
        (dict(challenge="multicoil", acquisitions="AXT1"), ["acquisitions"]),
    ],
    ids=["challenge", "sample-rate-0", "volume-rate-1.5", "both-rates", "transform-int", "acquisitions-str"],
)
def test_slice_dataset_bad_arguments(tmp_path, kwargs, names):
    _raw_file(tmp_path / "vol.h5")
    with pytest.raises((ValueError, TypeError)) as info:
        SliceDataset(tmp_path, **kwargs)
    assert all(n in str(info.value) for n in names), str(info.value)


def test_slice_dataset_empty_or_missing_root(tmp_path):
    with raises_naming(ValueError, str(tmp_path)):
        SliceDataset(tmp_path, challenge="multicoil")
    with raises_naming(FileNotFoundError, "missing"):
        SliceDataset(tmp_path / "missing", challenge="multicoil")


# ------------------------------------------------------------------------------ sample transforms

def _transform_errors():
    from recon.data import UnetDataTransform, VarNetDataTransform, collate_samples, to_tensor
    from recon.masks import RandomMaskFunc

    kspace = phantom_kspace()
    attrs = {"padding_left": 0, "padding_right": 24, "recon_size": (32, 24), "max": 1.0}
    return [
        ("unet-challenge", lambda: UnetDataTransform("multi"), ValueError, ["which_challenge"]),
        ("unet-mask-func-str", lambda: UnetDataTransform("multicoil", "random"), TypeError, ["mask_func"]),
        ("varnet-mask-func-int", lambda: VarNetDataTransform(4), TypeError, ["mask_func"]),
        ("varnet-no-mask-anywhere", lambda: VarNetDataTransform()(kspace, None, None, attrs, "vol.h5", 0), ValueError,
         ["vol.h5", "mask"]),
        ("varnet-mask-too-small", lambda: VarNetDataTransform(RandomMaskFunc([0.0], [64]))(kspace, None, None, attrs, "v.h5", 0),
         ValueError, ["shape", "64"]),
        ("to-tensor-list", lambda: to_tensor([1, 2]), TypeError, ["data"]),
        ("collate-empty", lambda: collate_samples([]), ValueError, ["batch"]),
    ]


@pytest.mark.parametrize("index", range(7), ids=lambda i: _transform_errors()[i][0])
def test_transforms_refuse(index):
    _, call, exc, names = _transform_errors()[index]
    with raises_naming(exc, *names):
        call()


def test_atomic_folder_is_complete_or_absent(tmp_path):
    from recon.data.io import atomic_folder

    final = tmp_path / "deep" / "split"
    with atomic_folder(final) as tmp:
        assert tmp.parent == final.parent and tmp.name.startswith(".split.") and not final.exists()
        (tmp / "a.h5").write_text("a")
    assert sorted(p.name for p in final.parent.iterdir()) == ["split"] and (final / "a.h5").read_text() == "a"
    # a failing block leaves nothing, not even its temporary
    with pytest.raises(RuntimeError, match="half"):
        with atomic_folder(tmp_path / "other") as tmp:
            (tmp / "b.h5").write_text("b")
            raise RuntimeError("half written")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep"]
    # another process's folder, renamed into place first, is kept; this one is discarded
    with atomic_folder(final) as tmp:
        (tmp / "c.h5").write_text("c")
    assert sorted(p.name for p in final.iterdir()) == ["a.h5"] and sorted(p.name for p in final.parent.iterdir()) == ["split"]
