"""The ``recon`` command line's promise (class 7, and 8 through ``recon simulate``): every failure is
one line on stderr naming the option or the file, exit status 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest

from recon.cli import main
from recon.data import write_fastmri_file
from recon.data.header import make_ismrmrd_header
from reliability_helpers import TRACEBACK, phantom_kspace


def run(argv, capsys):
    """``main(argv)`` -> (status, stdout, stderr); argparse's SystemExit counted as a status."""
    try:
        status = main([str(a) for a in argv])
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status, err, *names):
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2, (status, err)
    assert len(lines) == 1, err
    assert lines[0].startswith("recon") and ": error: " in lines[0], err
    assert not TRACEBACK.search(err), err
    missing = [n for n in names if str(n) not in lines[0]]
    assert not missing, f"{lines[0]!r} does not name {missing}"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    raw = root / "raw"
    raw.mkdir()
    kspace = np.stack([phantom_kspace(), phantom_kspace(seed=1)])
    header = make_ismrmrd_header((32, 24), (32, 24), num_coils=4, num_slices=2)
    rss = np.sqrt((np.abs(np.fft.ifft2(kspace)) ** 2).sum(1)).astype(np.float32)
    write_fastmri_file(raw / "good.h5", kspace, header, reconstruction_rss=rss, attrs={"acquisition": "AXT1"})
    bad = root / "bad"
    bad.mkdir()
    (bad / "good.h5").write_bytes((raw / "good.h5").read_bytes())
    (bad / "truncated.h5").write_bytes((raw / "good.h5").read_bytes()[:2000])
    nokspace = root / "nokspace.h5"
    with h5py.File(nokspace, "w") as hf:
        hf["x"] = np.zeros(3)
    kgroup = root / "kgroup.h5"
    with h5py.File(kgroup, "w") as hf:
        hf.create_group("kspace")
    realk = root / "realk.h5"
    with h5py.File(realk, "w") as hf:
        hf["kspace"] = np.ones((2, 4, 32, 24), np.float32)
    tiny = root / "tiny.h5"
    write_fastmri_file(tiny, kspace[:, :, :, :1], make_ismrmrd_header((32, 1), (32, 1), num_coils=4, num_slices=2))
    empty = root / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no data")
    a_file = root / "a_file"
    a_file.write_text("I am a file")
    # evaluation folders
    preds = root / "preds"
    preds.mkdir()
    with h5py.File(preds / "good.h5", "w") as hf:
        hf["reconstruction"] = rss * 0.9
    preds_both = root / "preds_both"  # predictions for bad/'s two targets
    preds_both.mkdir()
    for name in ("good.h5", "truncated.h5"):
        (preds_both / name).write_bytes((preds / "good.h5").read_bytes())
    corrupt_preds = root / "corrupt_preds"
    corrupt_preds.mkdir()
    (corrupt_preds / "good.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    wrong_preds = root / "wrong_preds"
    wrong_preds.mkdir()
    with h5py.File(wrong_preds / "good.h5", "w") as hf:
        hf["reconstruction"] = rss[:, :10]
    nokey_preds = root / "nokey_preds"
    nokey_preds.mkdir()
    with h5py.File(nokey_preds / "good.h5", "w") as hf:
        hf["other"] = rss
    zero_targets = root / "zero_targets"
    zero_targets.mkdir()
    write_fastmri_file(zero_targets / "good.h5", kspace, header, reconstruction_rss=np.zeros_like(rss))
    # NIfTI inputs
    nii = root / "nii"
    nii.mkdir()
    good = 0.5 + np.random.default_rng(0).random((16, 16, 3)).astype(np.float32)
    nib.save(nib.Nifti1Image(good, np.eye(4)), str(nii / "good.nii.gz"))
    nib.save(nib.Nifti1Image((good + 1j).astype(np.complex64), np.eye(4)), str(nii / "complex.nii.gz"))
    nanvol = good.copy()
    nanvol[2, 2, 1] = np.nan
    nib.save(nib.Nifti1Image(nanvol, np.eye(4)), str(nii / "nan.nii.gz"))
    nib.save(nib.Nifti1Image(-good, np.eye(4)), str(nii / "negative.nii.gz"))
    folder = root / "niifolder"
    folder.mkdir()
    nib.save(nib.Nifti1Image(good, np.eye(4)), str(folder / "a.nii.gz"))
    nib.save(nib.Nifti1Image(-good, np.eye(4)), str(folder / "b.nii.gz"))
    return root


REC = ["reconstruct"]
ZF = ["--method", "zero_filled", "-q"]

# (id, argv built from the files root r and a fresh output folder o, names the line must contain)
CASES = [
    # reconstruct: options
    ("acc-zero", lambda r, o: [*REC, r / "raw", "-o", o, "--accelerations", "0", *ZF], ["--accelerations", "0"]),
    ("acc-negative", lambda r, o: [*REC, r / "raw", "-o", o, "--accelerations", "-2", *ZF], ["--accelerations", "-2"]),
    ("acc-inf", lambda r, o: [*REC, r / "raw", "-o", o, "--accelerations", "inf", *ZF], ["--accelerations", "inf"]),
    ("acc-nan", lambda r, o: [*REC, r / "raw", "-o", o, "--accelerations", "nan", *ZF], ["--accelerations", "nan"]),
    ("acc-text", lambda r, o: [*REC, r / "raw", "-o", o, "--accelerations", "four", *ZF], ["--accelerations", "four"]),
    ("acc-empty", lambda r, o: [*REC, r / "raw", "-o", o, *ZF, "--accelerations"], ["--accelerations"]),
    ("acc-below-1", lambda r, o: [*REC, r / "raw", "-o", o, "--accelerations", "0.5", *ZF], ["--accelerations"]),
    ("fraction-above-1", lambda r, o: [*REC, r / "raw", "-o", o, "--accelerations", "4", "--center-fractions", "2", *ZF],
     ["--center-fractions"]),
    ("fraction-negative", lambda r, o: [*REC, r / "raw", "-o", o, "--accelerations", "4", "--center-fractions=-0.1", *ZF],
     ["--center-fractions"]),
    ("fraction-without-acc", lambda r, o: [*REC, r / "raw", "-o", o, "--center-fractions", "0.1", *ZF], ["--center-fractions"]),
    ("lengths-differ", lambda r, o: [*REC, r / "raw", "-o", o, "--accelerations", "4,8", "--center-fractions", "0.08", *ZF],
     ["--center-fractions", "--accelerations"]),
    ("mask-type-unknown", lambda r, o: [*REC, r / "raw", "-o", o, "--accelerations", "4", "--mask-type", "radial", *ZF],
     ["--mask-type", "radial"]),
    ("equispaced-fractional", lambda r, o: [*REC, r / "raw", "-o", o, "--accelerations", "2.5", "--mask-type", "equispaced", *ZF],
     ["--accelerations", "whole"]),
    ("acc-too-high-for-file", lambda r, o: [*REC, r / "raw", "-o", o, "--accelerations", "64", *ZF], ["good.h5", "64"]),
    ("method-unknown", lambda r, o: [*REC, r / "raw", "-o", o, "--method", "magic"], ["--method", "magic"]),
    ("batch-size-zero", lambda r, o: [*REC, r / "raw", "-o", o, "--batch-size", "0", *ZF], ["--batch-size"]),
    ("weights-missing", lambda r, o: [*REC, r / "raw", "-o", o, "--method", "varnet", "--weights", r / "nope.pt", "-q"], ["nope.pt"]),
    ("device-unknown", lambda r, o: [*REC, r / "raw", "-o", o, "--device", "tpu", *ZF], ["device", "tpu"]),
    ("unknown-option", lambda r, o: [*REC, r / "raw", "-o", o, "--fast"], ["--fast"]),
    ("missing-output", lambda r, o: [*REC, r / "raw"], ["-o/--output"]),
    # reconstruct: files
    ("input-missing", lambda r, o: [*REC, r / "missing", "-o", o, *ZF], ["missing"]),
    ("input-folder-empty", lambda r, o: [*REC, r / "empty", "-o", o, *ZF], ["empty", ".h5"]),
    ("input-truncated-in-folder", lambda r, o: [*REC, r / "bad", "-o", o, *ZF], ["truncated.h5", "HDF5"]),
    ("input-no-kspace", lambda r, o: [*REC, r / "nokspace.h5", "-o", o, *ZF], ["nokspace.h5", "kspace"]),
    ("input-kspace-is-a-group", lambda r, o: [*REC, r / "kgroup.h5", "-o", o, *ZF], ["kgroup.h5", "kspace"]),
    ("input-real-kspace", lambda r, o: [*REC, r / "realk.h5", "-o", o, *ZF], ["realk.h5", "complex"]),
    ("unet-on-one-column", lambda r, o: [*REC, r / "tiny.h5", "-o", o, "--method", "unet", "-q"], ["tiny.h5", "kspace", "unet"]),
    ("output-is-a-file", lambda r, o: [*REC, r / "raw", "-o", r / "a_file", *ZF], ["-o", "must be a folder"]),
    ("output-is-the-input-folder", lambda r, o: [*REC, r / "raw", "-o", r / "raw", *ZF], ["-o", "good.h5"]),
    # evaluate
    ("eval-target-missing", lambda r, o: ["evaluate", "--target-path", r / "none", "--predictions-path", r / "preds"], ["--target-path"]),
    ("eval-preds-missing", lambda r, o: ["evaluate", "--target-path", r / "raw", "--predictions-path", r / "none"], ["--predictions-path"]),
    ("eval-no-targets", lambda r, o: ["evaluate", "--target-path", r / "empty", "--predictions-path", r / "preds"], ["--target-path"]),
    ("eval-no-prediction", lambda r, o: ["evaluate", "--target-path", r / "raw", "--predictions-path", r / "empty"], ["good.h5"]),
    ("eval-corrupt-prediction", lambda r, o: ["evaluate", "--target-path", r / "raw", "--predictions-path", r / "corrupt_preds"],
     ["corrupt_preds/good.h5", "HDF5"]),
    ("eval-corrupt-target", lambda r, o: ["evaluate", "--target-path", r / "bad", "--predictions-path", r / "preds_both"],
     ["truncated.h5", "HDF5"]),
    ("eval-shape-mismatch", lambda r, o: ["evaluate", "--target-path", r / "raw", "--predictions-path", r / "wrong_preds"],
     ["good.h5", "shape"]),
    ("eval-no-reconstruction", lambda r, o: ["evaluate", "--target-path", r / "raw", "--predictions-path", r / "nokey_preds"],
     ["good.h5", "reconstruction"]),
    ("eval-all-zero-target", lambda r, o: ["evaluate", "--target-path", r / "zero_targets", "--predictions-path", r / "preds"],
     ["good.h5", "gt"]),
    ("eval-acceleration-text", lambda r, o: ["evaluate", "--target-path", r / "raw", "--predictions-path", r / "preds",
                                             "--acceleration", "x"], ["--acceleration"]),
    # simulate
    ("sim-complex", lambda r, o: ["simulate", r / "nii" / "complex.nii.gz", "-o", o], ["complex.nii.gz", "complex"]),
    ("sim-nan", lambda r, o: ["simulate", r / "nii" / "nan.nii.gz", "-o", o], ["nan.nii.gz", "slice 1"]),
    ("sim-negative", lambda r, o: ["simulate", r / "nii" / "negative.nii.gz", "-o", o], ["negative.nii.gz", "negative"]),
    ("sim-folder-failing-file", lambda r, o: ["simulate", r / "niifolder", "-o", o], ["b.nii.gz"]),
    ("sim-missing", lambda r, o: ["simulate", r / "nii" / "none.nii", "-o", o], ["none.nii"]),
    ("sim-output-file", lambda r, o: ["simulate", r / "nii" / "good.nii.gz", "-o", r / "a_file"], ["-o", "must be a folder"]),
    ("sim-coils-zero", lambda r, o: ["simulate", r / "nii" / "good.nii.gz", "-o", o, "--coils", "0"], ["--coils"]),
    ("sim-snr-nan", lambda r, o: ["simulate", r / "nii" / "good.nii.gz", "-o", o, "--snr", "nan"], ["--snr"]),
    ("sim-axis-3", lambda r, o: ["simulate", r / "nii" / "good.nii.gz", "-o", o, "--axis", "3"], ["--axis"]),
    ("sim-seed-negative", lambda r, o: ["simulate", r / "nii" / "good.nii.gz", "-o", o, "--seed", "-1"], ["--seed"]),
    ("sim-oversampling-zero", lambda r, o: ["simulate", r / "nii" / "good.nii.gz", "-o", o, "--readout-oversampling", "0"],
     ["--readout-oversampling"]),
    # top level
    ("unknown-command", lambda r, o: ["reconstrukt"], ["reconstrukt"]),
    ("no-command", lambda r, o: [], ["COMMAND", "reconstruct"]),
    ("train-bad-acceleration", lambda r, o: ["train", "--accelerations", "0"], ["--accelerations"]),
    ("train-bad-mask-type", lambda r, o: ["train", "--mask-type", "radial"], ["--mask-type"]),
]


@pytest.mark.parametrize("make", [pytest.param(m, id=i) for i, m, _ in CASES])
def test_one_line_promise(files, tmp_path, capsys, make, request):
    names = dict((i, n) for i, _, n in CASES)[request.node.callspec.id]
    status, _, err = run(make(files, tmp_path / "out"), capsys)
    assert_one_line_error(status, err, *names)


def test_folder_failure_keeps_the_good_outputs(files, tmp_path, capsys):
    status, _, err = run([*REC, files / "bad", "-o", tmp_path, *ZF], capsys)
    assert_one_line_error(status, err, "truncated.h5", "1 of 2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.h5"]


@pytest.mark.parametrize("syntax", [["4", "8"], ["4,8"], ["4, 8"], ["4,", "8"]], ids=["spaces", "comma", "comma-space", "mixed"])
def test_one_list_syntax_for_accelerations(files, tmp_path, capsys, syntax):
    status, _, err = run([*REC, files / "raw", "-o", tmp_path, "--accelerations", *syntax,
                          "--center-fractions", "0.25,0.125", *ZF], capsys)
    assert status == 0, err
    with h5py.File(tmp_path / "good.h5") as hf:
        assert np.isfinite(hf["reconstruction"][()]).all()


def test_hidden_and_temporary_inputs_are_skipped(files, tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    (src / "good.h5").write_bytes((files / "raw" / "good.h5").read_bytes())
    (src / ".good2.h5.tmp-host-1-0123abcd").write_bytes(b"partial")
    (src / ".swap.h5").write_bytes(b"partial")
    status, _, err = run([*REC, src, "-o", tmp_path / "out", *ZF], capsys)
    assert status == 0, err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["good.h5"]


def test_warnings_are_one_line(files, tmp_path, capsys):
    """cs on k-space without a calibration region warns: one line, prefixed, no source line."""
    status, _, err = run([*REC, files / "raw", "-o", tmp_path, "--accelerations", "4", "--center-fractions", "0",
                          "--method", "sense", "-q"], capsys)
    assert status == 0, err
    assert err.strip() and all(line.startswith("recon reconstruct: warning: ") for line in err.splitlines())


@pytest.mark.parametrize(
    "argv, names",
    [
        (["reconstruct", "{root}/raw", "-o", "{out}", "--accelerations", "0", "--method", "zero_filled"], ["--accelerations"]),
        (["evaluate", "--target-path", "{root}/bad", "--predictions-path", "{root}/preds_both"], ["truncated.h5", "HDF5"]),
        (["simulate", "{root}/nii/nan.nii.gz", "-o", "{out}"], ["nan.nii.gz", "slice 1"]),
    ],
    ids=["reconstruct", "evaluate", "simulate"],
)
def test_console_script_prints_no_traceback(files, tmp_path, argv, names):
    """The real process: stderr is exactly one line, exit status 2."""
    args = [a.format(root=files, out=tmp_path / "out") for a in argv]
    done = subprocess.run([sys.executable, "-m", "recon.cli", *args], capture_output=True, text=True, timeout=120)
    assert_one_line_error(done.returncode, done.stderr, *names)
