"""SliceDataset and VolumeSampler: parity with fastMRI's dataset, validation, workers, memory."""

from __future__ import annotations

import os
import pickle
import random
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

try:  # only the fastMRI parity tests need the fastmri package; the rest run without it
    import fastmri.data as fastmri_data
    from fastmri.data.volume_sampler import VolumeSampler as FastMRIVolumeSampler
except ImportError:
    fastmri_data = FastMRIVolumeSampler = None
needs_fastmri = pytest.mark.skipif(fastmri_data is None, reason="fastMRI parity test: needs the fastmri package")
from fastmri_files import header, write_file, write_folder
from recon.data import DataFileError, SliceDataset, VolumeSampler, read_file_metadata


def _assert_same_raw(ours, theirs):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        kspace, mask, target, attrs, fname, slice_num = a
        assert np.array_equal(kspace, b[0]) and kspace.dtype == b[0].dtype
        if b[1] is None:
            assert mask is None
        else:
            assert np.array_equal(mask, b[1])
        if b[2] is None:
            assert target is None
        else:
            assert np.array_equal(target, b[2])
        assert attrs.keys() == b[3].keys()
        for key in attrs:
            assert np.all(np.asarray(attrs[key]) == np.asarray(b[3][key])), key
        assert (fname, slice_num) == (b[4], b[5])


@needs_fastmri
@pytest.mark.parametrize(
    "challenge, kwargs",
    [
        ("multicoil", dict(targets=("reconstruction_rss",))),
        ("multicoil", dict(targets=())),
        ("multicoil", dict(targets=(), test_mask=True)),
        ("singlecoil", dict(coils=None, targets=("reconstruction_esc", "reconstruction_rss"))),
        ("singlecoil", dict(coils=None, targets=(), test_mask=True)),
    ],
)
def test_parity_with_fastmri(tmp_path, challenge, kwargs):
    root = write_folder(tmp_path / "d", **kwargs)
    ours = SliceDataset(root, challenge)
    theirs = fastmri_data.SliceDataset(root, challenge)
    assert [(s.fname, s.slice_ind) for s in ours.raw_samples] == [(s.fname, s.slice_ind) for s in theirs.raw_samples]
    _assert_same_raw(list(ours), list(theirs))
    # derived metadata from the hand-written header: 24 // 2 - 11 = 1, 1 + 21 + 1 = 23
    attrs = ours[0][3]
    assert (attrs["padding_left"], attrs["padding_right"]) == (1, 23)
    assert attrs["encoding_size"] == (32, 24, 1) and attrs["recon_size"] == (16, 16, 1)


@needs_fastmri
@pytest.mark.parametrize("rates", [dict(sample_rate=0.5), dict(volume_sample_rate=0.5), dict(sample_rate=0.3)])
def test_seeded_subsets_match_fastmri_under_the_same_seed(tmp_path, rates):
    root = write_folder(tmp_path / "d", n_files=5)
    for seed in (0, 7):
        random.seed(seed)  # fastMRI draws from the global RNG (restored by tests/conftest.py)
        theirs = fastmri_data.SliceDataset(root, "multicoil", **rates)
        state = random.getstate()
        ours = SliceDataset(root, "multicoil", seed=seed, **rates)
        assert random.getstate() == state  # the global RNG is left alone
        assert [(s.fname, s.slice_ind) for s in ours.raw_samples] == [(s.fname, s.slice_ind) for s in theirs.raw_samples]
    a = SliceDataset(root, "multicoil", seed=1, **rates).raw_samples
    b = SliceDataset(root, "multicoil", seed=1, **rates).raw_samples
    assert [(s.fname, s.slice_ind) for s in a] == [(s.fname, s.slice_ind) for s in b]


@needs_fastmri
def test_filters(tmp_path):
    root = write_folder(tmp_path / "d", n_files=3)  # AXFLAIR (2 slices), AXT1 (3), AXT2 (4)
    ds = SliceDataset(root, "multicoil", acquisitions=["AXT1", "AXT2"])
    assert len(ds) == 7 and {s.fname.name for s in ds.raw_samples} == {"file_brain_001.h5", "file_brain_002.h5"}
    assert len(SliceDataset(root, "multicoil", num_cols=[24])) == 9
    assert len(SliceDataset(root, "multicoil", num_cols=[368])) == 0
    ds = SliceDataset(root, "multicoil", raw_sample_filter=lambda s: s.slice_ind == 0)
    theirs = fastmri_data.SliceDataset(root, "multicoil", raw_sample_filter=lambda s: s.slice_ind == 0)
    assert [(s.fname, s.slice_ind) for s in ds.raw_samples] == [(s.fname, s.slice_ind) for s in theirs.raw_samples]


def test_single_file_root_and_non_h5_files_ignored(tmp_path):
    root = write_folder(tmp_path / "d", n_files=2)
    (root / "README.txt").write_text("not data")
    assert len(SliceDataset(root, "multicoil")) == 5
    assert len(SliceDataset(root / "file_brain_001.h5", "multicoil")) == 3


def test_metadata_cache_at_the_callers_path_only(tmp_path, monkeypatch):
    root = write_folder(tmp_path / "d", n_files=2)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    SliceDataset(root, "multicoil")
    assert list(work.iterdir()) == []  # nothing written without a cache path
    cache = tmp_path / "caches" / "meta.pkl"
    first = SliceDataset(root, "multicoil", metadata_cache=cache)
    assert cache.is_file() and list(work.iterdir()) == []

    calls = []
    import recon.data.mri_data as mri_data

    real = mri_data.read_file_metadata
    monkeypatch.setattr(mri_data, "read_file_metadata", lambda f, c: calls.append(f) or real(f, c))
    second = SliceDataset(root, "multicoil", metadata_cache=cache)
    assert calls == []  # served from the cache
    assert [(s.fname, s.slice_ind, s.metadata["padding_left"]) for s in second.raw_samples] == [
        (s.fname, s.slice_ind, s.metadata["padding_left"]) for s in first.raw_samples
    ]
    # a rewritten file (new size / mtime) is read again, not served stale
    write_file(root / "file_brain_001.h5", slices=6, seed=9)
    os.utime(root / "file_brain_001.h5", ns=(1, 1))
    third = SliceDataset(root, "multicoil", metadata_cache=cache)
    assert [c.name for c in calls] == ["file_brain_001.h5"]
    assert len(third) == 2 + 6
    # an unreadable cache is ignored with a warning, then rewritten
    cache.write_bytes(b"garbage")
    assert len(SliceDataset(root, "multicoil", metadata_cache=cache)) == 8


# -- bad input --------------------------------------------------------------------------
def _h5(path: Path, **datasets) -> Path:
    with h5py.File(path, "w") as hf:
        for name, value in datasets.items():
            hf.create_dataset(name, data=value)
    return path


def _good_kspace(shape=(2, 4, 32, 24)):
    return np.zeros(shape, np.complex64)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: p.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 50), "not a readable HDF5 file"),
        (lambda p: p.write_text("hello"), "not a readable HDF5 file"),
        (lambda p: _h5(p, ismrmrd_header=np.bytes_(header())), "missing dataset 'kspace'"),
        (lambda p: _h5(p, kspace=np.zeros((2, 4, 32, 24), np.float32), ismrmrd_header=np.bytes_(header())),
         "'kspace' must be complex"),
        (lambda p: _h5(p, kspace=_good_kspace((2, 32, 24)), ismrmrd_header=np.bytes_(header())),
         r"must be \(slices, coils, H, W\) for challenge='multicoil'"),
        (lambda p: _h5(p, kspace=_good_kspace()), "missing dataset 'ismrmrd_header'"),
        (lambda p: _h5(p, kspace=_good_kspace(), ismrmrd_header=np.bytes_(b"<not xml")), "not valid XML"),
        (lambda p: _h5(p, kspace=_good_kspace(),
                       ismrmrd_header=np.bytes_(header().replace(b"<center>11</center>", b""))),
         "missing field encoding/encodingLimits/kspace_encoding_step_1/center"),
        (lambda p: _h5(p, kspace=_good_kspace(),
                       ismrmrd_header=np.bytes_(header().replace(b"<x>32</x>", b"<x>abc</x>"))),
         "must be an integer"),
        (lambda p: _h5(p, kspace=_good_kspace(), ismrmrd_header=np.bytes_(header()),
                       reconstruction_rss=np.zeros((3, 16, 16), np.float32)),
         r"'reconstruction_rss' must be \(2, h, w\)"),
        (lambda p: _h5(p, kspace=_good_kspace(), ismrmrd_header=np.bytes_(header()), mask=np.ones(5, bool)),
         r"'mask' must have shape \(24,\)"),
    ],
)
def test_bad_files_name_the_file_and_the_problem(tmp_path, make, match):
    root = tmp_path / "d"
    root.mkdir()
    bad = root / "bad_file.h5"
    make(bad)
    with pytest.raises(DataFileError, match=match) as info:
        SliceDataset(root, "multicoil")
    assert "bad_file.h5" in str(info.value) and info.value.fname == bad


def test_truncated_file_is_reported(tmp_path):
    good = write_file(tmp_path / "full.h5", slices=4)
    data = good.read_bytes()
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "cut.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFileError, match=r"cut\.h5: .*(not a readable HDF5|cannot read)"):
        ds = SliceDataset(tmp_path / "d", "multicoil")
        for sample in ds:
            pass


def test_file_damaged_after_indexing_raises_on_read(tmp_path):
    root = write_folder(tmp_path / "d", n_files=1)
    ds = SliceDataset(root, "multicoil")
    (root / "file_brain_000.h5").write_bytes(b"overwritten")
    with pytest.raises(DataFileError, match=r"file_brain_000\.h5: cannot read slice 0"):
        ds[0]


def test_argument_errors(tmp_path):
    root = write_folder(tmp_path / "d", n_files=1)
    with pytest.raises(ValueError, match="challenge must be 'singlecoil' or 'multicoil', got 'knee'"):
        SliceDataset(root, "knee")
    with pytest.raises(ValueError, match="not both"):
        SliceDataset(root, "multicoil", sample_rate=0.5, volume_sample_rate=0.5)
    with pytest.raises(ValueError, match=r"sample_rate must be a number in \(0, 1\], got 0"):
        SliceDataset(root, "multicoil", sample_rate=0)
    with pytest.raises(ValueError, match=r"volume_sample_rate must be a number in \(0, 1\], got 1.5"):
        SliceDataset(root, "multicoil", volume_sample_rate=1.5)
    with pytest.raises(TypeError, match="seed must be an int, got float"):
        SliceDataset(root, "multicoil", seed=1.5)
    with pytest.raises(TypeError, match="transform must be callable"):
        SliceDataset(root, "multicoil", transform="unet")
    with pytest.raises(TypeError, match="acquisitions must be a collection of strings"):
        SliceDataset(root, "multicoil", acquisitions="AXT1")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="contains no HDF5 files"):
        SliceDataset(empty, "multicoil")
    with pytest.raises(FileNotFoundError, match="not found"):
        SliceDataset(tmp_path / "nowhere", "multicoil")
    with pytest.raises(DataFileError, match="no such file"):
        read_file_metadata(tmp_path / "nowhere.h5")


# -- workers and memory -------------------------------------------------------------------
class _Probe:
    """Transform recording, inside the worker, its pid, RSS and open HDF5 objects."""

    def __call__(self, kspace, mask, target, attrs, fname, slice_num):
        with open("/proc/self/statm") as f:
            rss_pages = int(f.read().split()[1])
        open_h5 = len(h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE))
        open_fds = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                open_fds += os.readlink(f"/proc/self/fd/{fd}").endswith(".h5")
            except OSError:  # closed meanwhile
                pass
        return torch.tensor([os.getpid(), rss_pages * os.sysconf("SC_PAGE_SIZE"), open_h5 + open_fds, kspace.nbytes])


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc")
def test_dataloader_workers_hold_no_handles_and_memory_stays_flat(tmp_path):
    root = write_folder(tmp_path / "d", n_files=4, shape=(256, 128), coils=8)  # 2+3+4+5 = 14 slices
    ds = SliceDataset(root, "multicoil", transform=_Probe())
    blob = pickle.dumps(ds)  # what a spawn-started worker receives: no h5py object inside
    assert b"h5py" not in blob
    loader = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=2, shuffle=False)
    rows = []
    for _ in range(3):  # three epochs, ~40 samples of 2 MB k-space each
        rows += [batch[0] for batch in loader]
    table = torch.stack(rows)
    assert torch.all(table[:, 2] == 0), "an HDF5 file was left open in a worker"
    assert len(set(table[:, 0].tolist())) >= 2
    for pid in set(table[:, 0].tolist()):
        rss = table[table[:, 0] == pid, 1].double()
        growth = rss[len(rss) // 2 :].max() - rss[: max(2, len(rss) // 4)].max()
        assert growth < 16 * 2**20, f"worker {pid} grew by {growth / 2**20:.1f} MB over the epochs"


# -- VolumeSampler ----------------------------------------------------------------------
def _volume_dataset(tmp_path, slices):
    root = tmp_path / "vols"
    root.mkdir()
    for i, n in enumerate(slices):
        write_file(root / f"vol_{i:02d}.h5", slices=n, coils=2, shape=(8, 8), rec=(8, 8), seed=i)
    return SliceDataset(root, "multicoil")


@pytest.mark.parametrize("slices, world", [([3, 5, 2, 7, 4, 4, 1], 3), ([10, 1, 1, 1], 2), ([2, 2], 2), ([5], 1)])
def test_volume_sampler_whole_volumes_equal_lengths(tmp_path, slices, world):
    ds = _volume_dataset(tmp_path, slices)
    samplers = [VolumeSampler(ds, num_replicas=world, rank=r, seed=3) for r in range(world)]
    lengths = {len(list(s)) for s in samplers}
    assert lengths == {len(samplers[0])}
    assert len(samplers[0]) == max(sum(slices[int(v.stem[-2:])] for v in map(Path, s.volumes_per_rank[s.rank])) for s in samplers)
    for batch_size in (1, 2, 3):
        assert len({-(-len(s) // batch_size) for s in samplers}) == 1
    owner = {}
    for s in samplers:
        for i in s:
            fname = str(ds.raw_samples[i].fname)
            assert owner.setdefault(fname, s.rank) == s.rank, "a volume was split between ranks"
    assert set().union(*[set(iter(s)) for s in samplers]) == set(range(len(ds)))
    # the same order on every run; a new order each epoch
    again = VolumeSampler(ds, num_replicas=world, rank=0, seed=3)
    assert list(again) == list(samplers[0])
    if len(samplers[0].indices) > 2:
        orders = set()
        for epoch in range(4):
            again.set_epoch(epoch)
            orders.add(tuple(again))
        assert len(orders) > 1


@needs_fastmri
def test_volume_sampler_balances_no_worse_than_fastmri(tmp_path):
    ds = _volume_dataset(tmp_path, [9, 1, 1, 1, 8, 1])
    ours = len(VolumeSampler(ds, num_replicas=2, rank=0))
    theirs = len(FastMRIVolumeSampler(ds, num_replicas=2, rank=0))
    assert ours <= theirs
    assert ours == 11  # {9, 1, 1} vs {8, 1, 1}


def test_volume_sampler_errors(tmp_path):
    ds = _volume_dataset(tmp_path, [2, 2])
    with pytest.raises(ValueError, match=r"rank must be in \[0, 2\), got 2"):
        VolumeSampler(ds, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="num_replicas must be a positive int, got 0"):
        VolumeSampler(ds, num_replicas=0, rank=0)
    with pytest.raises(ValueError, match="need at least one volume per rank: 2 volumes for num_replicas=3"):
        VolumeSampler(ds, num_replicas=3, rank=0)
    with pytest.raises(TypeError, match="dataset must have raw_samples"):
        VolumeSampler([1, 2, 3], num_replicas=1, rank=0)
    with pytest.raises(RuntimeError, match="torch.distributed is not initialised"):
        VolumeSampler(ds)


@needs_fastmri
def test_files_from_other_writers_chunked_compressed_vlen_header(tmp_path):
    """Layouts other tools produce: chunked + gzip k-space, a variable-length str header,
    complex128 data, bytes attributes."""
    root = tmp_path / "d"
    root.mkdir()
    rng = np.random.default_rng(3)
    k = rng.standard_normal((3, 2, 32, 24)) + 1j * rng.standard_normal((3, 2, 32, 24))
    with h5py.File(root / "chunked.h5", "w") as hf:
        hf.create_dataset("kspace", data=k.astype(np.complex64), chunks=(1, 1, 32, 24), compression="gzip")
        hf.create_dataset("ismrmrd_header", data=header().decode())  # vlen str
        hf.create_dataset("reconstruction_rss", data=rng.random((3, 16, 16)), chunks=True, compression="lzf")
        hf.attrs["acquisition"] = np.bytes_(b"AXT2")
    with h5py.File(root / "double.h5", "w") as hf:
        hf.create_dataset("kspace", data=k)  # complex128
        hf.create_dataset("ismrmrd_header", data=np.bytes_(header()))
    ours = SliceDataset(root, "multicoil")
    theirs = fastmri_data.SliceDataset(root, "multicoil")
    _assert_same_raw(list(ours), list(theirs))
    assert ours[0][0].dtype == np.complex64 and ours[3][0].dtype == np.complex128
    assert len(SliceDataset(root, "multicoil", acquisitions=["AXT2"])) == 3
