"""Write small DICOM series with bare pydicom, from a volume whose geometry is known.

Independent of recon's reader on purpose: the files are built from a NIfTI-style (RAS+) affine
by the DICOM rules (LPS, ImagePositionPatient / ImageOrientationPatient / PixelSpacing), so a
test can compare what the reader returns with the affine the volume was written from (through
nibabel) and with dicom2nifti on the same files.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

COLIN = Path(__file__).resolve().parents[2] / "data" / "colin27_t1.nii.gz"

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4.1"


def rotation(axis: str, degrees: float) -> np.ndarray:
    """3x3 rotation about the world x, y or z axis."""
    a = np.deg2rad(degrees)
    c, s = np.cos(a), np.sin(a)
    i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def colin_block(shape=(40, 48, 24), start=(30, 40, 60), step=(3, 3, 3)) -> np.ndarray:
    """A small block of Colin27 (uint8 values as float64), subsampled so that it holds anatomy."""
    import nibabel as nib

    data = np.asarray(nib.load(str(COLIN)).dataobj, dtype=np.float64)
    sl = tuple(slice(b, b + n * s, s) for b, n, s in zip(start, shape, step))
    block = data[sl]
    assert block.shape == tuple(shape), block.shape
    return block


def geometry(spacing=(0.9, 1.1, 2.5), rot=np.eye(3), origin=(-20.0, -30.0, 10.0)) -> np.ndarray:
    """A RAS+ affine: voxel sizes ``spacing`` along the columns of ``rot``, first voxel at ``origin``."""
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag(spacing)
    affine[:3, 3] = origin
    return affine


def _ds_string(value: float) -> str:
    from pydicom.valuerep import format_number_as_ds

    return format_number_as_ds(float(value))


def _dataset(sop_class: str, *, uid_root: str, modality: str, rows: int, cols: int):
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = uid_root + ".1"
    ds.SeriesInstanceUID = uid_root + ".2"
    ds.FrameOfReferenceUID = uid_root + ".3"
    ds.PatientID = "phantom"
    ds.PatientName = "Colin^27"
    ds.Modality = modality
    ds.Manufacturer = "recon-tests"
    ds.SeriesDescription = f"synthetic {modality}"
    ds.SeriesNumber = 3
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    return ds


def stored_values(volume: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    """int16 stored values s with s * slope + intercept as close as possible to ``volume``."""
    return np.clip(np.round((volume - intercept) / slope), -32768, 32767).astype(np.int16)


def write_series(
    folder: Path,
    volume: np.ndarray,
    affine: np.ndarray,
    *,
    modality: str = "CT",
    slope: float = 1.0,
    intercept: float = -1024.0,
    uid_root: str = "1.2.826.0.1.3680043.10.1234.1",
    shuffle_seed: int | None = 0,
    reverse_instances: bool = False,
    padding_value: int | None = None,
    extra=None,
) -> list[Path]:
    """Write ``volume`` (X = columns, Y = rows, Z = slices) as one single-frame file per slice.

    ``affine`` (RAS+) gives the geometry; values are stored as int16 ``round((v - b) / m)``.
    File names are random (seeded) so that a directory listing has no relation to the slice
    order; instance numbers run with the slices, or against them with ``reverse_instances``.
    ``extra(ds, k)`` may edit each dataset before it is written.

    Returns:
        the written files, in slice order.
    """
    folder.mkdir(parents=True, exist_ok=True)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
    d_col = np.linalg.norm(lps[:3, 0])
    d_row = np.linalg.norm(lps[:3, 1])
    row, col = lps[:3, 0] / d_col, lps[:3, 1] / d_row
    stored = stored_values(volume, slope, intercept)
    cols, rows, n = volume.shape
    rng = random.Random(shuffle_seed)
    names = [f"IM{rng.getrandbits(40):010x}" for _ in range(n)] if shuffle_seed is not None else [f"{k:04d}.dcm" for k in range(n)]
    files = []
    for k in range(n):
        ds = _dataset(CT_IMAGE if modality == "CT" else MR_IMAGE, uid_root=uid_root, modality=modality, rows=rows, cols=cols)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.InstanceNumber = (n - k) if reverse_instances else (k + 1)
        position = lps[:3, 3] + k * lps[:3, 2]
        ds.ImagePositionPatient = [_ds_string(v) for v in position]
        ds.ImageOrientationPatient = [_ds_string(v) for v in (*row, *col)]
        ds.PixelSpacing = [_ds_string(d_row), _ds_string(d_col)]
        ds.SliceThickness = _ds_string(np.linalg.norm(lps[:3, 2]))
        ds.RescaleSlope = _ds_string(slope)
        ds.RescaleIntercept = _ds_string(intercept)
        if modality == "CT":
            ds.RescaleType = "HU"
        if padding_value is not None:
            ds.PixelPaddingValue = int(padding_value)
        ds.RepetitionTime = "500"
        ds.EchoTime = "10"
        if extra is not None:
            extra(ds, k)
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).tobytes()  # (rows, cols) row-major
        path = folder / names[k]
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return files


def write_enhanced(
    path: Path,
    volume: np.ndarray,
    affine: np.ndarray,
    *,
    slope: float = 2.0,
    intercept: float = -10.0,
    reverse_frames: bool = False,
    uid_root: str = "1.2.826.0.1.3680043.10.1234.2",
) -> Path:
    """Write ``volume`` as one Enhanced MR multi-frame file (per-frame positions and rescale)."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
    d_col = np.linalg.norm(lps[:3, 0])
    d_row = np.linalg.norm(lps[:3, 1])
    row, col = lps[:3, 0] / d_col, lps[:3, 1] / d_row
    stored = stored_values(volume, slope, intercept)
    cols, rows, n = volume.shape
    order = list(range(n))[::-1] if reverse_frames else list(range(n))
    ds = _dataset(ENHANCED_MR_IMAGE, uid_root=uid_root, modality="MR", rows=rows, cols=cols)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    ds.InstanceNumber = 1
    ds.NumberOfFrames = n
    shared = Dataset()
    orient = Dataset()
    orient.ImageOrientationPatient = [_ds_string(v) for v in (*row, *col)]
    shared.PlaneOrientationSequence = Sequence([orient])
    measures = Dataset()
    measures.PixelSpacing = [_ds_string(d_row), _ds_string(d_col)]
    measures.SliceThickness = _ds_string(np.linalg.norm(lps[:3, 2]))
    shared.PixelMeasuresSequence = Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames = []
    for index, k in enumerate(order):
        group = Dataset()
        pos = Dataset()
        pos.ImagePositionPatient = [_ds_string(v) for v in lps[:3, 3] + k * lps[:3, 2]]
        group.PlanePositionSequence = Sequence([pos])
        content = Dataset()
        content.InStackPositionNumber = index + 1
        content.StackID = "1"
        group.FrameContentSequence = Sequence([content])
        pixel = Dataset()
        pixel.RescaleSlope = _ds_string(slope)
        pixel.RescaleIntercept = _ds_string(intercept)
        pixel.RescaleType = "US"
        group.PixelValueTransformationSequence = Sequence([pixel])
        frames.append(group)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    ds.PixelData = np.ascontiguousarray(np.stack([stored[:, :, k].T for k in order])).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path
