"""Reliability catalogue for DICOM reading, NIfTI datasets, slice folders and the mid-plane figure.

Each case builds one bad input in ``tmp_path`` and asserts the exception type and that the
message names the argument, the file or the slice position; ``recon convert`` must answer with
one line on stderr, the same exit status as the other commands, and write nothing.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
nib = pytest.importorskip("nibabel")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))

from dicom_files import colin_block, geometry, write_series  # noqa: E402
from reliability_helpers import TRACEBACK, one_line, raises_naming  # noqa: E402

from recon.data import NiftiSliceDataset, PairedVolumeDataset, dicom_to_nifti, read_dicom_series, volume_to_slices  # noqa: E402
from recon.data.dicom import DicomSeriesError  # noqa: E402
from recon.viz import show_mid_slices  # noqa: E402

PYDICOM = Path(os.path.dirname(pydicom.data.__file__)) / "test_files"
BLOCK = colin_block(shape=(12, 14, 6))


def series(tmp_path: Path, **kwargs) -> list[Path]:
    return write_series(tmp_path / "dcm", BLOCK, geometry(), **kwargs)


def several_series(tmp_path):
    write_series(tmp_path / "dcm" / "a", BLOCK, geometry(), uid_root="1.2.3.7")
    write_series(tmp_path / "dcm" / "b", BLOCK, geometry(), uid_root="1.2.3.8")
    return tmp_path / "dcm"


def mixed_orientation(tmp_path):
    files = series(tmp_path)
    ds = pydicom.dcmread(files[3])
    ds.ImageOrientationPatient = ["0", "1", "0", "0", "0", "-1"]
    ds.save_as(files[3])
    return tmp_path / "dcm"


def missing_slice(tmp_path):
    files = series(tmp_path)
    files[2].unlink()
    return tmp_path / "dcm"


def undecodable(tmp_path):
    ds = pydicom.dcmread(PYDICOM / "JPGExtended.dcm")
    ds.ImagePositionPatient, ds.ImageOrientationPatient, ds.PixelSpacing = ["0"] * 3, ["1", "0", "0", "0", "1", "0"], ["1", "1"]
    (tmp_path / "dcm").mkdir()
    ds.save_as(tmp_path / "dcm" / "jpeg12.dcm")
    return tmp_path / "dcm"


def no_geometry(tmp_path):
    files = series(tmp_path)
    ds = pydicom.dcmread(files[0])
    del ds.ImagePositionPatient
    ds.save_as(files[0])
    return tmp_path / "dcm"


def only_text(tmp_path):
    (tmp_path / "dcm").mkdir()
    (tmp_path / "dcm" / "a.txt").write_text("hello")
    return tmp_path / "dcm"


DICOM_CASES = [
    pytest.param(several_series, {}, DicomSeriesError, ["2 DICOM series", "series_uid", "1.2.3.7.2", "1.2.3.8.2"], id="several-series"),
    pytest.param(several_series, {"series_uid": "9.9"}, DicomSeriesError, ["series_uid '9.9'", "1.2.3.7.2"], id="unknown-series-uid"),
    pytest.param(mixed_orientation, {}, DicomSeriesError, ["mixed orientations", "position (", "ImageOrientationPatient"], id="mixed-orientation"),
    pytest.param(missing_slice, {}, DicomSeriesError, ["missing slice", "positions (", "5.000 mm"], id="missing-slice"),
    pytest.param(undecodable, {}, DicomSeriesError, ["jpeg12.dcm", "transfer syntax", "JPEG Extended"], id="undecodable-transfer-syntax"),
    pytest.param(no_geometry, {}, DicomSeriesError, ["ImagePositionPatient", "cannot place"], id="no-position"),
    pytest.param(only_text, {}, DicomSeriesError, ["no DICOM image files"], id="no-dicom-at-all"),
    pytest.param(lambda p: p / "nowhere", {}, FileNotFoundError, ["path", "nowhere"], id="missing-folder"),
    pytest.param(lambda p: series(p) and p / "dcm", {"orientation": "ABC"}, ValueError, ["orientation", "'ABC'"], id="bad-orientation"),
    pytest.param(lambda p: series(p) and p / "dcm", {"series_uid": 7}, TypeError, ["series_uid", "int"], id="series-uid-type"),
]


@pytest.mark.parametrize(("build", "kwargs", "error", "names"), DICOM_CASES)
def test_read_dicom_series_refuses(tmp_path, build, kwargs, error, names):
    source = build(tmp_path)
    with pytest.warns(UserWarning, match="not DICOM") if build is only_text else contextlib.nullcontext():
        with raises_naming(error, *names):
            read_dicom_series(source, **kwargs)


def test_non_dicom_file_is_skipped_and_named(tmp_path):
    series(tmp_path)
    (tmp_path / "dcm" / "scan_notes.pdf").write_bytes(b"%PDF-1.4 not dicom")
    with pytest.warns(UserWarning, match=r"not DICOM: .*scan_notes\.pdf"):
        volume, _, _ = read_dicom_series(tmp_path / "dcm", orientation=None)
    assert volume.shape == BLOCK.shape and np.isfinite(volume).all()


@pytest.mark.parametrize(
    ("dst", "error", "names"),
    [
        ("out.png", ValueError, ["dst", "out.png"]),
        ("missing/out.nii.gz", FileNotFoundError, ["dst folder", "missing"]),
    ],
)
def test_dicom_to_nifti_refuses_and_writes_nothing(tmp_path, dst, error, names):
    series(tmp_path)
    with raises_naming(error, *names):
        dicom_to_nifti(tmp_path / "dcm", tmp_path / dst)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dcm"]


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["several"], ["DICOM series", "--series-uid"]),
        (["missing"], ["missing slice", "positions"]),
        (["mixed"], ["mixed orientations"]),
        (["text"], ["no DICOM image files"]),
    ],
)
def test_cli_convert_one_line(tmp_path, capsys, args, names):
    from recon.cli import main

    source = {"several": several_series, "missing": missing_slice, "mixed": mixed_orientation, "text": only_text}[args[0]](tmp_path)
    out = tmp_path / "out"
    status = main(["convert", str(source), "-o", str(out / "x.nii.gz"), "--png", str(out / "x.png")])
    err = capsys.readouterr().err
    reference = main(["reconstruct", str(tmp_path / "nothing.h5"), "-o", str(tmp_path / "r")])
    capsys.readouterr()
    assert status == reference != 0
    error_lines = [line for line in err.splitlines() if "error:" in line]
    assert one_line("\n".join(error_lines)) and not TRACEBACK.search(err)
    assert all(n in error_lines[0] for n in names), error_lines
    assert not out.exists()


# --- datasets and slice folders ---------------------------------------------------------------


def nifti(path: Path, data: np.ndarray, affine=np.eye(4)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data.astype(np.float32), affine), str(path))
    return path


def corrupt(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"junk, not gzip")
    return path


DATASET_CASES = [
    pytest.param(lambda p: NiftiSliceDataset(p / "none"), FileNotFoundError, ["folder", "none"], id="slices-missing-folder"),
    pytest.param(lambda p: NiftiSliceDataset(nifti(p / "v" / "a.nii.gz", BLOCK).parent, axis=4), ValueError, ["axis", "4"], id="slices-axis"),
    pytest.param(lambda p: NiftiSliceDataset(nifti(p / "v" / "a.nii.gz", BLOCK).parent, slice_range=(1, 0)), ValueError, ["slice_range"], id="slices-range"),
    pytest.param(lambda p: NiftiSliceDataset(nifti(p / "v" / "a.nii.gz", np.zeros((3, 3))).parent), ValueError, ["a.nii.gz", "3-D"], id="slices-2d-file"),
    pytest.param(lambda p: NiftiSliceDataset(corrupt(p / "v" / "b.nii.gz").parent), ValueError, ["b.nii.gz", "NIfTI"], id="slices-corrupt-file"),
    pytest.param(lambda p: PairedVolumeDataset(nifti(p / "a" / "s1.nii.gz", BLOCK).parent, nifti(p / "b" / "s2.nii.gz", BLOCK).parent), ValueError, ["only in source_dir", "s1.nii.gz", "s2.nii.gz"], id="pairs-unmatched"),
    pytest.param(lambda p: PairedVolumeDataset(nifti(p / "a" / "s.nii.gz", BLOCK).parent, nifti(p / "b" / "s.nii.gz", BLOCK[:-1]).parent, seed=0)[0], ValueError, ["subject 's'", "shape"], id="pairs-shape"),
    pytest.param(lambda p: PairedVolumeDataset(nifti(p / "a" / "s.nii.gz", BLOCK).parent, p / "a", patch_size=-3), ValueError, ["patch_size", "-3"], id="pairs-patch-size"),
    pytest.param(lambda p: PairedVolumeDataset(nifti(p / "a" / "s.nii.gz", BLOCK).parent, p / "a", patch_size=99, seed=0)[0], ValueError, ["patch_size", "larger than the volume"], id="pairs-patch-too-big"),
    pytest.param(lambda p: volume_to_slices(np.ones((3, 3, 3, 3)), p / "o"), ValueError, ["volume", "(3, 3, 3, 3)"], id="slices-out-4d"),
    pytest.param(lambda p: volume_to_slices(np.ones((3, 3, 3)), p / "o", affine=np.eye(3)), ValueError, ["affine", "4x4"], id="slices-out-affine"),
    pytest.param(lambda p: volume_to_slices(np.ones((3, 3, 3)), p / "o", file_format="tif"), ValueError, ["file_format", "'tif'"], id="slices-out-format"),
    pytest.param(lambda p: show_mid_slices(np.ones((3, 3))), ValueError, ["volume", "(3, 3)"], id="viz-2d"),
    pytest.param(lambda p: show_mid_slices(np.ones((3, 3, 3)), np.zeros((4, 4))), ValueError, ["affine", "invertible"], id="viz-singular-affine"),
    pytest.param(lambda p: show_mid_slices(np.ones((3, 3, 3)), path=p / "x.svg"), ValueError, ["path", "x.svg"], id="viz-not-png"),
]


@pytest.mark.parametrize(("call", "error", "names"), DATASET_CASES)
def test_datasets_and_figures_refuse(tmp_path, call, error, names):
    with raises_naming(error, *names):
        call(tmp_path)
    assert not (tmp_path / "o").exists()
