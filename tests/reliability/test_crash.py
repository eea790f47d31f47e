"""kill -9 of a real ``recon`` process at several points of each write path (class 6).

After every kill: nothing that was in the output folder before is lost (files the run replaces
are either the old or the complete new version), no partial file is visible (every visible file
reads completely; the leftovers are hidden temporaries that no scan picks up), and a rerun of the
same command succeeds, removes the leftovers and gives exactly the outputs of an uninterrupted run.
Training checkpoints have their own crash tests (``test_train.py``).
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest

from recon.cli import main
from recon.data import SliceDataset, write_fastmri_file
from recon.data.header import make_ismrmrd_header
from recon.data.io import data_files, is_temporary
from reliability_helpers import phantom_kspace

CHILD = Path(__file__).resolve().parent / "crash_child.py"
NAMES = ("vol_1.h5", "vol_2.h5", "vol_3.h5")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    raw, nii = root / "raw", root / "nii"
    raw.mkdir()
    nii.mkdir()
    header = make_ismrmrd_header((32, 24), (32, 24), num_coils=4, num_slices=2)
    for index, name in enumerate(NAMES):
        kspace = np.stack([phantom_kspace(seed=index), phantom_kspace(seed=index + 10)])
        write_fastmri_file(raw / name, kspace, header)
        volume = 0.5 + np.random.default_rng(index).random((16, 16, 3)).astype(np.float32)
        nib.save(nib.Nifti1Image(volume, np.eye(4)), str(nii / name.replace(".h5", ".nii.gz")))
    return root


def _reconstruct_args(root: Path, out: Path) -> list[str]:
    return ["reconstruct", str(root / "raw"), "-o", str(out), "--method", "zero_filled", "--nifti", "--overwrite", "-q"]


def _simulate_args(root: Path, out: Path) -> list[str]:
    return ["simulate", str(root / "nii"), "-o", str(out), "--coils", "2", "--snr", "0"]


COMMANDS = {"reconstruct": _reconstruct_args, "simulate": _simulate_args}


@pytest.fixture(scope="module")
def references(inputs, tmp_path_factory):
    """Outputs of uninterrupted runs: command -> {name: bytes of the main dataset(s)}."""
    refs = {}
    for command, args in COMMANDS.items():
        out = tmp_path_factory.mktemp(f"ref-{command}")
        assert main(args(inputs, out)) == 0
        refs[command] = _contents(out)
    return refs


def _contents(folder: Path) -> dict[str, bytes]:
    """Visible files -> their data (HDF5: every dataset's bytes; NIfTI: the voxel array's bytes)."""
    result = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.name.endswith(".h5"):
            with h5py.File(path, "r") as hf:  # raises on a partial file
                result[path.name] = b"".join(np.asarray(hf[key][()]).tobytes() for key in sorted(hf.keys()))
        elif path.name.endswith(".nii.gz"):
            result[path.name] = np.asarray(nib.load(str(path)).dataobj).tobytes()  # reads every voxel
        else:
            result[path.name] = path.read_bytes()
    return result


def _prepare_output(out: Path, command: str, references) -> dict[str, bytes]:
    """An output folder with what a user had there before: an unrelated file, an older output of
    another volume, and a stale version of one output this run replaces."""
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    if command == "reconstruct":
        with h5py.File(out / "old_volume.h5", "w") as hf:
            hf["reconstruction"] = np.full((2, 4, 4), 7.0, np.float32)
        with h5py.File(out / "vol_2.h5", "w") as hf:  # replaced by this run
            hf["reconstruction"] = np.zeros((1, 2, 2), np.float32)
    else:
        header = make_ismrmrd_header((32, 24), (32, 24), num_coils=4, num_slices=1)
        write_fastmri_file(out / "old_volume.h5", phantom_kspace()[None], header)
        write_fastmri_file(out / "vol_2.h5", phantom_kspace(seed=5)[None], header)  # replaced by this run
    return _contents(out)


def _check_after_kill(out: Path, before: dict[str, bytes], reference: dict[str, bytes], command: str) -> None:
    now = _contents(out)  # every visible file reads completely
    for name, data in before.items():
        assert name in now, f"{name} was lost"
        if name not in reference:  # not this run's: untouched
            assert now[name] == data, f"{name} changed"
    for name, data in now.items():
        if name in reference:
            assert data == reference[name] or data == before.get(name), f"{name} is neither old nor complete new"
        else:
            assert name in before, f"unexpected visible file {name}"
    hidden = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert all(is_temporary(name) for name in hidden), hidden
    assert [p.name for p in data_files(out, (".h5", ".nii.gz"))] == sorted(n for n in now if n.endswith((".h5", ".nii.gz")))
    if command == "simulate":
        SliceDataset(out, challenge="multicoil")  # the dataset scan skips the leftovers and reads every file


def _rerun_and_check(out: Path, args: list[str], before: dict[str, bytes], reference: dict[str, bytes]) -> None:
    assert main(args) == 0
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # leftovers removed
    now = _contents(out)
    assert {k: v for k, v in now.items() if k in reference} == reference
    assert {k: v for k, v in now.items() if k not in reference} == {k: v for k, v in before.items() if k not in reference}


def _crash(args: list[str], point: str, nth: int) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, str(CHILD), point, str(nth), *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, f"the child was not killed at {point} #{nth}: {done.returncode} {done.stderr}"
    return done


CRASHES = [
    # reconstruct writes vol.h5 then vol.nii.gz for each of 3 volumes (6 atomic writes)
    pytest.param("reconstruct", "temp-created", 1, id="reconstruct-temp-created-1"),
    pytest.param("reconstruct", "h5-mid-write", 2, id="reconstruct-h5-mid-write-2"),
    pytest.param("reconstruct", "gz-mid-write", 3, marks=pytest.mark.slow, id="reconstruct-gz-mid-write-3"),
    pytest.param("reconstruct", "before-rename", 3, marks=pytest.mark.slow, id="reconstruct-before-rename-3"),
    pytest.param("reconstruct", "after-rename", 3, marks=pytest.mark.slow, id="reconstruct-after-rename-3"),
    pytest.param("reconstruct", "after-rename", 6, marks=pytest.mark.slow, id="reconstruct-after-last-rename"),
    # simulate writes 3 fastMRI files of 3 datasets each
    pytest.param("simulate", "h5-mid-write", 5, id="simulate-h5-mid-write-5"),
    pytest.param("simulate", "temp-created", 2, marks=pytest.mark.slow, id="simulate-temp-created-2"),
    pytest.param("simulate", "before-rename", 1, marks=pytest.mark.slow, id="simulate-before-rename-1"),
    pytest.param("simulate", "after-rename", 2, marks=pytest.mark.slow, id="simulate-after-rename-2"),
]


@pytest.mark.parametrize("command, point, nth", CRASHES)
def test_kill_at_a_named_point(inputs, references, tmp_path, command, point, nth):
    out = tmp_path / "out"
    before = _prepare_output(out, command, references)
    args = COMMANDS[command](inputs, out)
    _crash(args, point, nth)
    if point != "after-rename":  # killed while a temporary existed: it is left behind, hidden
        assert any(is_temporary(p.name) for p in out.iterdir())
    _check_after_kill(out, before, references[command], command)
    _rerun_and_check(out, args, before, references[command])


@pytest.mark.slow
@pytest.mark.parametrize("command", list(COMMANDS))
def test_kill_after_random_delays(inputs, references, tmp_path, command):
    """SIGKILL from outside after random delays (seeded): the invariants hold at every kill."""
    out = tmp_path / "out"
    before = _prepare_output(out, command, references)
    args = COMMANDS[command](inputs, out)
    rng = random.Random(1234)
    start = time.monotonic()
    probe = subprocess.run([sys.executable, str(CHILD), "never", "0", *args], capture_output=True, text=True, timeout=300)
    assert probe.returncode == 0, probe.stderr
    duration = time.monotonic() - start
    _rerun_and_check(out, args, before, references[command])  # back to a clean, finished state
    for _ in range(6):
        child = subprocess.Popen([sys.executable, str(CHILD), "never", "0", *args],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 1.0) * duration)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        _check_after_kill(out, before, references[command], command)
    _rerun_and_check(out, args, before, references[command])
