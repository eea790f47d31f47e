"""Folder reconstruction / evaluation sharded across processes (torchrun, gloo on CPU).

The reference for the distributed outputs is an independent single-process run of the same
command (same thread count: torchrun gives each rank one thread), compared bit for bit.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from recon.data.header import make_ismrmrd_header
from recon.data.io import write_fastmri_file
from recon.train.distributed import DistributedContext, ItemFailure, map_sharded, shard_indices, shard_paths

ROOT = Path(__file__).resolve().parent.parent


def _volume(rng, slices, coils=4, height=32, width=24):
    y, x = np.meshgrid(np.linspace(-1, 1, height), np.linspace(-1, 1, width), indexing="ij")
    image = (x**2 + y**2 < 0.6) * (1 + 0.5 * x) * np.exp(1j * y)
    maps = np.stack([np.exp(-((x - np.cos(a)) ** 2 + (y - np.sin(a)) ** 2)) for a in np.arange(coils) * 2 * np.pi / coils])
    coil = maps / np.sqrt((maps**2).sum(0)) * image
    kspace = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(coil, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    kspace = np.stack([kspace * (s + 1) for s in range(slices)])
    kspace = kspace + 1e-3 * (rng.standard_normal(kspace.shape) + 1j * rng.standard_normal(kspace.shape))
    rss = np.sqrt((np.abs(np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(kspace, axes=(-2, -1)), norm="ortho"),
                                         axes=(-2, -1))) ** 2).sum(1))
    return kspace.astype(np.complex64), rss.astype(np.float32)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Five files of different sizes (1-3 slices), two acquisitions."""
    root = tmp_path_factory.mktemp("raw")
    rng = np.random.default_rng(0)
    for i, slices in enumerate((3, 1, 2, 1, 2)):
        kspace, rss = _volume(rng, slices)
        header = make_ismrmrd_header((32, 24), (32, 24), num_coils=4, num_slices=slices)
        write_fastmri_file(root / f"file_{i}.h5", kspace, header, reconstruction_rss=rss,
                           attrs={"acquisition": "AXT1" if i % 2 else "AXT2"})
    return root


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.pop("WORLD_SIZE", None)
    env.pop("RANK", None)
    return env


def _single(*args):
    return subprocess.run([sys.executable, "-m", "recon.cli", *args], capture_output=True, text=True,
                          env=_env(), cwd=ROOT, timeout=300)


def _torchrun(nproc, *args):
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
         "-m", "recon.cli", *args],
        capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=300,
    )


def _outputs(folder: Path) -> dict[str, np.ndarray]:
    out = {}
    for path in sorted(folder.glob("*.h5")):
        with h5py.File(path, "r") as hf:
            out[path.name] = hf["reconstruction"][()]
    return out


# ---------------------------------------------------------------------------- sharding (in process)


def test_shard_indices_balances_sizes_and_covers_everything():
    sizes = [5, 1, 1, 3, 2, 2, 4]
    shards = shard_indices(sizes, 3)
    assert sorted(i for s in shards for i in s) == list(range(len(sizes)))
    loads = [sum(sizes[i] for i in s) for s in shards]
    assert max(loads) - min(loads) <= max(sizes)  # LPT bound
    assert loads == [6, 6, 6]  # 5+1, 4+2, 3+2+1 - the optimum here
    assert shard_indices([1, 1, 1], 1) == [[0, 1, 2]]
    assert shard_indices([], 2) == [[], []]
    assert shard_indices([1], 3) == [[0], [], []]


@pytest.mark.parametrize("world_size", [0, -1, 1.5, True])
def test_shard_indices_rejects_bad_world_size(world_size):
    with pytest.raises(ValueError, match="world_size must be a positive integer"):
        shard_indices([1, 2], world_size)


def test_shard_indices_rejects_negative_sizes():
    with pytest.raises(ValueError, match="sizes must be non-negative"):
        shard_indices([1, -2], 2)


def test_single_process_map_sharded_records_failures_by_file(tmp_path):
    paths = [tmp_path / f"{name}.h5" for name in ("b", "a", "c")]

    def work(path):
        if path.stem == "c":
            raise ValueError("broken\nfile")
        return path.stem.upper()

    ctx = DistributedContext()
    assert shard_paths(ctx, paths) == paths
    results, failures = map_sharded(ctx, paths, work)
    assert results == [("a.h5", "A"), ("b.h5", "B")]
    assert failures == [ItemFailure(0, "c.h5", "broken file", "ValueError")]
    assert str(failures[0]) == "c.h5 (rank 0): broken file"


# ---------------------------------------------------------------------------- torchrun, 2 processes


def test_two_processes_match_one_bit_for_bit_and_rerun_skips(folder, tmp_path):
    single, multi = tmp_path / "single", tmp_path / "multi"
    args = ["--method", "cs", "--accelerations", "2", "--nifti"]
    done = _single("reconstruct", str(folder), "-o", str(single), *args)
    assert done.returncode == 0, done.stderr
    done = _torchrun(2, "reconstruct", str(folder), "-o", str(multi), *args)
    assert done.returncode == 0, done.stderr
    # both ranks worked, each file was written once
    assert "[rank 0]" in done.stdout and "[rank 1]" in done.stdout
    # (found anywhere in the output, not line by line: the two ranks share one pipe, and under load
    # a progress line of one can land inside a line of the other)
    assert sorted(re.findall(r"\] (file_\d+\.h5): cs -> ", done.stdout)) == [f"file_{i}.h5" for i in range(5)], done.stdout
    ref, got = _outputs(single), _outputs(multi)
    assert sorted(got) == [f"file_{i}.h5" for i in range(5)]
    for name in ref:
        assert np.array_equal(ref[name], got[name]), name
    assert sorted(p.name for p in multi.iterdir()) == sorted(p.name for p in single.iterdir())  # no temporaries left
    # rerun: nothing is redone
    mtimes = {p.name: p.stat().st_mtime_ns for p in multi.iterdir()}
    done = _torchrun(2, "reconstruct", str(folder), "-o", str(multi), *args)
    assert done.returncode == 0, done.stderr
    assert "skipping 5 file(s)" in done.stdout and "] file_" not in done.stdout
    assert {p.name: p.stat().st_mtime_ns for p in multi.iterdir()} == mtimes


@pytest.mark.slow
def test_failing_rank_names_the_file_and_others_finish(folder, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for path in folder.glob("*.h5"):
        (raw / path.name).write_bytes(path.read_bytes())
    (raw / "file_9_bad.h5").write_text("not hdf5")
    out = tmp_path / "out"
    done = _torchrun(2, "reconstruct", str(raw), "-o", str(out), "--method", "zero_filled", "-q")
    assert done.returncode != 0
    assert "1 of 6 files failed: file_9_bad.h5 (rank " in done.stderr and "cannot read as HDF5" in done.stderr
    assert sorted(p.name for p in out.iterdir()) == [f"file_{i}.h5" for i in range(5)]


@pytest.mark.slow
def test_distributed_evaluate_prints_what_one_process_prints(folder, tmp_path):
    preds = tmp_path / "preds"
    done = _single("reconstruct", str(folder), "-o", str(preds), "--method", "zero_filled", "--accelerations", "2", "-q")
    assert done.returncode == 0, done.stderr
    one = _single("evaluate", "--target-path", str(folder), "--predictions-path", str(preds))
    two = _torchrun(2, "evaluate", "--target-path", str(folder), "--predictions-path", str(preds))
    assert one.returncode == 0 and two.returncode == 0, two.stderr
    assert "ALL (5 volumes)" in one.stdout
    assert two.stdout == one.stdout  # rank 0 prints the gathered summary, rank 1 nothing
