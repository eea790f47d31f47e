"""DICOM series in, NIfTI volume out (pydicom underneath, dicom2nifti-compatible).

A DICOM series is a set of 2-D images (one file per slice, or one enhanced multi-frame file)
sharing a ``SeriesInstanceUID``. :func:`read_dicom_series` groups the files of a folder by
series, orders the slices by their position along the slice normal (never by file name or
instance number), applies the modality rescale (``RescaleSlope``/``RescaleIntercept``:
Hounsfield units for CT), checks that the slices form one regular stack, and returns the
volume with its 4x4 affine in the NIfTI/RAS+ convention of nibabel.

By default the axes are ordered as ``dicom2nifti`` orders them (LAS: same array, same affine
as dicom2nifti); ``orientation="RAS"`` (or any axis codes) gives exactly that order and
``orientation=None`` the DICOM storage order (X along the rows, Y down the columns, Z along
the slice normal)::

    from recon.data import read_dicom_series, dicom_to_nifti
    volume, affine, info = read_dicom_series("dicom/series_dir")      # (X, Y, Z) float32
    dicom_to_nifti("dicom/series_dir", "t1.nii.gz")
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Sequence

import numpy as np

from recon.data.io import save_nifti

__all__ = ["DicomSeriesError", "DicomSeriesInfo", "read_dicom_series", "dicom_to_nifti", "list_dicom_series", "AIR_HU"]

logger = logging.getLogger(__name__)

#: Hounsfield value of air: CT padding voxels are set to this value.
AIR_HU = -1024.0

# A CT voxel below this (in HU) cannot be tissue or air; a constant value down there is padding.
_PADDING_BELOW_HU = -1500.0
# Tolerances of dicom2nifti: orientation cosines (absolute) and slice increments (5 % or 0.1 mm).
_ORIENTATION_ATOL = 1e-3
_MEDIA_DIRECTORY = "1.2.840.10008.1.3.10"  # SOP class of a DICOMDIR file
_INCREMENT_RTOL, _INCREMENT_ATOL = 0.05, 0.1


class DicomSeriesError(ValueError):
    """A folder or file that does not hold one regular DICOM series; the message says why."""


@dataclass(frozen=True)
class DicomSeriesInfo:
    """Key metadata of a series read by :func:`read_dicom_series`.

    Attributes:
        series_uid: ``SeriesInstanceUID``.
        series_description: ``SeriesDescription`` ("" when absent).
        modality: ``Modality`` (``"CT"``, ``"MR"``, ...).
        shape: shape of the returned volume ``(X, Y, Z)``.
        voxel_size: voxel size in mm along the returned axes (column norms of the affine).
        slice_spacing: distance in mm between consecutive slice positions.
        orientation: axis codes of the returned volume, e.g. ``"LAS"`` (from its affine).
        rescale_slope: ``RescaleSlope`` of the first slice (1.0 when absent).
        rescale_intercept: ``RescaleIntercept`` of the first slice (0.0 when absent).
        padding_voxels: number of CT padding voxels set to :data:`AIR_HU`.
        transfer_syntax: name of the transfer syntax of the first file.
        files: the files of the series, in slice order (one entry per frame for multi-frame files).
        extra: other useful header values when present (patient/study ids, TR, TE, ...).
    """

    series_uid: str
    series_description: str
    modality: str
    shape: tuple[int, int, int]
    voxel_size: tuple[float, float, float]
    slice_spacing: float
    orientation: str
    rescale_slope: float
    rescale_intercept: float
    padding_voxels: int
    transfer_syntax: str
    files: tuple[str, ...]
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """The fields as a plain dict (JSON-friendly apart from header value types)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __getitem__(self, key: str):
        """Mapping-style access, ``info["modality"]``, for code that expects a metadata dict."""
        if key in {f.name for f in fields(self)}:
            return getattr(self, key)
        raise KeyError(key)


@dataclass
class _Slice:
    """One 2-D image of a series: a single-frame file, or one frame of a multi-frame file."""

    path: Path
    frame: int | None
    position: np.ndarray  # ImagePositionPatient (LPS, mm)
    orientation: np.ndarray  # ImageOrientationPatient (6 cosines)
    spacing: tuple[float, float]  # PixelSpacing (row spacing, column spacing)
    rescale: tuple[float, float] | None  # per-frame (slope, intercept) of enhanced files
    thickness: float | None


_EXTRA_KEYS = (
    "PatientID", "StudyInstanceUID", "StudyDescription", "SeriesNumber", "Manufacturer",
    "RepetitionTime", "EchoTime", "InversionTime", "FlipAngle", "MagneticFieldStrength",
    "SliceThickness", "ProtocolName", "BodyPartExamined",
)


def _pydicom():
    try:
        import pydicom
    except ImportError as err:  # pragma: no cover - pydicom is in the preprocess extra
        raise ImportError("reading DICOM needs pydicom: pip install 'recon[preprocess]'") from err
    return pydicom


def _candidate_files(path: Path | Sequence) -> list[Path]:
    if isinstance(path, (list, tuple)):
        files = [Path(p) for p in path]
        missing = [str(p) for p in files if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"path lists files that do not exist: {missing[:5]}")
        return files
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"path must be a DICOM folder or file, got {str(path)!r} (does not exist)")
    return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))


def _read_headers(files: list[Path]):
    """Headers (no pixel data) of the DICOM image files; warn about everything skipped."""
    pydicom = _pydicom()
    from pydicom.errors import InvalidDicomError

    headers, not_dicom, no_pixels = [], [], []
    for file in files:
        try:
            ds = pydicom.dcmread(file, stop_before_pixels=True)
        except InvalidDicomError:
            ds = _read_without_preamble(pydicom, file)
            if ds is None:
                not_dicom.append(file)
                continue
        except Exception as err:  # a damaged header fails in many ways: the file is not usable DICOM
            logger.debug("not DICOM: %s (%s)", file, err)
            not_dicom.append(file)
            continue
        if "Rows" not in ds or "Columns" not in ds:  # DICOMDIR, reports, RT plans: no image
            sop_class = str(getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", ""))
            if sop_class == _MEDIA_DIRECTORY:  # the index of a DICOM export: expected, not worth a warning
                logger.debug("skipped DICOMDIR %s", file)
            else:
                no_pixels.append(file)
            continue
        headers.append((file, ds))
    if not_dicom:
        names = ", ".join(str(f) for f in not_dicom[:10]) + (" ..." if len(not_dicom) > 10 else "")
        warnings.warn(f"skipped {len(not_dicom)} file(s) that are not DICOM: {names}", stacklevel=3)
    if no_pixels:
        names = ", ".join(str(f) for f in no_pixels[:10]) + (" ..." if len(no_pixels) > 10 else "")
        warnings.warn(f"skipped {len(no_pixels)} DICOM file(s) without an image: {names}", stacklevel=3)
    return headers


def _read_without_preamble(pydicom, file: Path):
    """A DICOM image stored without preamble and file meta (old exports), or None.

    Read with ``force=True`` and kept only when it has what an image of a series must have
    (SOP class and series UIDs, image size, position, orientation), so that no random file
    passes for DICOM.
    """
    try:
        ds = pydicom.dcmread(file, stop_before_pixels=True, force=True)
        required = ("SOPClassUID", "SeriesInstanceUID", "Rows", "Columns", "ImagePositionPatient", "ImageOrientationPatient")
        if all(key in ds for key in required):
            _ensure_transfer_syntax(ds)
            return ds
    except Exception as err:  # force=True on arbitrary bytes can fail in many ways
        logger.debug("not DICOM: %s (%s)", file, err)
    return None


def _describe_series(groups: dict[str, list]) -> str:
    lines = []
    for uid, members in groups.items():
        ds = members[0][1]
        desc = str(ds.get("SeriesDescription", "") or "").strip()
        number = ds.get("SeriesNumber", "")
        lines.append(f"  {uid!r} (series {number}, {desc or 'no description'}, {len(members)} file(s))")
    return "\n".join(lines)


def _select_series(headers, series_uid: str | None, source: str):
    groups: dict[str, list] = {}
    for file, ds in headers:
        groups.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append((file, ds))
    if not groups:
        raise DicomSeriesError(f"no DICOM image files found in {source}")
    if series_uid is not None:
        if series_uid not in groups:
            raise DicomSeriesError(
                f"series_uid {series_uid!r} is not in {source}; the series there are:\n{_describe_series(groups)}"
            )
        return series_uid, groups[series_uid]
    if len(groups) > 1:
        raise DicomSeriesError(
            f"{source} holds {len(groups)} DICOM series; choose one with series_uid= "
            f"(command line: --series-uid; list them with list_dicom_series / --list):\n{_describe_series(groups)}"
        )
    uid = next(iter(groups))
    return uid, groups[uid]


def _floats(value, count: int, what: str, file: Path) -> np.ndarray:
    try:
        array = np.array([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise DicomSeriesError(f"{file}: {what} is not {count} numbers: {value!r}") from err
    if array.shape != (count,) or not np.all(np.isfinite(array)):
        raise DicomSeriesError(f"{file}: {what} must be {count} finite numbers, got {value!r}")
    return array


def _item(sequence_owner, sequence: str, key: str):
    seq = sequence_owner.get(sequence)
    if seq and key in seq[0]:
        return seq[0][key].value
    return None


def _slices_of(file: Path, ds) -> list[_Slice]:
    """The 2-D images of one file with their geometry (enhanced multi-frame files: one per frame)."""
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    shared = (ds.get("SharedFunctionalGroupsSequence") or [None])[0]
    if per_frame:
        if len(per_frame) != frames:
            raise DicomSeriesError(f"{file}: {len(per_frame)} per-frame groups for {frames} frames")
        slices = []
        for index, group in enumerate(per_frame):

            def lookup(sequence: str, key: str, group=group):
                value = _item(group, sequence, key)
                if value is None and shared is not None:
                    value = _item(shared, sequence, key)
                return value

            position = lookup("PlanePositionSequence", "ImagePositionPatient")
            orientation = lookup("PlaneOrientationSequence", "ImageOrientationPatient")
            spacing = lookup("PixelMeasuresSequence", "PixelSpacing")
            if position is None or orientation is None or spacing is None:
                raise DicomSeriesError(
                    f"{file}: frame {index + 1} lacks its position, orientation or pixel spacing "
                    "(PlanePositionSequence / PlaneOrientationSequence / PixelMeasuresSequence)"
                )
            slope = lookup("PixelValueTransformationSequence", "RescaleSlope")
            intercept = lookup("PixelValueTransformationSequence", "RescaleIntercept")
            thickness = lookup("PixelMeasuresSequence", "SliceThickness")
            slices.append(
                _Slice(
                    path=file,
                    frame=index,
                    position=_floats(position, 3, f"frame {index + 1} ImagePositionPatient", file),
                    orientation=_floats(orientation, 6, f"frame {index + 1} ImageOrientationPatient", file),
                    spacing=tuple(_floats(spacing, 2, "PixelSpacing", file)),  # type: ignore[arg-type]
                    rescale=None if slope is None else (float(slope), float(intercept or 0.0)),
                    thickness=None if thickness is None else float(thickness),
                )
            )
        return slices
    if frames > 1:
        raise DicomSeriesError(
            f"{file}: multi-frame file ({frames} frames) without per-frame positions "
            "(PerFrameFunctionalGroupsSequence); only enhanced multi-frame files are supported"
        )
    missing = [k for k in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing") if k not in ds]
    if missing:
        raise DicomSeriesError(f"{file}: no {' / '.join(missing)}; cannot place the image in space")
    thickness = ds.get("SliceThickness")
    return [
        _Slice(
            path=file,
            frame=None,
            position=_floats(ds.ImagePositionPatient, 3, "ImagePositionPatient", file),
            orientation=_floats(ds.ImageOrientationPatient, 6, "ImageOrientationPatient", file),
            spacing=tuple(_floats(ds.PixelSpacing, 2, "PixelSpacing", file)),  # type: ignore[arg-type]
            rescale=None,
            thickness=None if thickness in (None, "") else float(thickness),
        )
    ]


def _fmt(position: np.ndarray) -> str:
    return "(" + ", ".join(f"{v:.2f}" for v in position) + ")"


def _order_and_check(slices: list[_Slice], header_of: dict) -> tuple[list[_Slice], np.ndarray]:
    """Slices sorted along the normal; raise on mixed orientation, duplicates, gaps or tilt."""
    first = slices[0]
    for s in slices[1:]:
        if not np.allclose(s.orientation, first.orientation, rtol=0, atol=_ORIENTATION_ATOL):
            raise DicomSeriesError(
                f"mixed orientations: the slice at position {_fmt(s.position)} ({s.path.name}) has "
                f"ImageOrientationPatient {np.round(s.orientation, 4).tolist()}, the slice at "
                f"{_fmt(first.position)} ({first.path.name}) {np.round(first.orientation, 4).tolist()}; "
                "a localiser or several stacks share this series"
            )
        if not np.allclose(s.spacing, first.spacing, rtol=1e-4, atol=1e-6):
            raise DicomSeriesError(
                f"mixed pixel spacing: {s.spacing} at position {_fmt(s.position)} ({s.path.name}), "
                f"{first.spacing} at {_fmt(first.position)}"
            )
    row, col = first.orientation[:3], first.orientation[3:]
    normal = np.cross(row, col)
    norm = np.linalg.norm(normal)
    if not (0.99 < np.linalg.norm(row) < 1.01 and 0.99 < np.linalg.norm(col) < 1.01 and norm > 0.99):
        raise DicomSeriesError(
            f"{first.path}: ImageOrientationPatient {first.orientation.tolist()} is not two orthogonal unit vectors"
        )
    normal = normal / norm
    distance = np.array([float(s.position @ normal) for s in slices])
    order = np.argsort(distance, kind="stable")
    slices = [slices[i] for i in order]
    distance = distance[order]
    # Duplicate positions: drop exact copies (as dicom2nifti does), refuse different images.
    kept = [0]
    for i in range(1, len(slices)):
        if abs(distance[i] - distance[kept[-1]]) < 1e-4:
            a, b = slices[kept[-1]], slices[i]
            if _pixels(a, header_of).tobytes() == _pixels(b, header_of).tobytes():
                warnings.warn(f"dropped duplicate slice {b.path} (same position and pixels as {a.path})", stacklevel=4)
                continue
            raise DicomSeriesError(
                f"two different slices at position {_fmt(b.position)} ({a.path.name}, {b.path.name}): the "
                "series holds several volumes (echoes, time points or stacks); split it before converting"
            )
        kept.append(i)
    slices = [slices[i] for i in kept]
    if len(slices) > 1:
        increments = np.diff(np.stack([s.position for s in slices]), axis=0)
        reference = increments[np.argsort(np.linalg.norm(increments, axis=1))[len(increments) // 2]]
        step = float(np.linalg.norm(reference))
        for i, inc in enumerate(increments):
            if not np.allclose(inc, reference, rtol=_INCREMENT_RTOL, atol=_INCREMENT_ATOL):
                gap = float(np.linalg.norm(inc))
                if abs(abs(float(inc @ normal)) - gap) > 1e-3 * max(gap, 1.0) and gap > 0:
                    raise DicomSeriesError(
                        f"slices are not stacked along their normal (gantry tilt or sheared stack) between "
                        f"positions {_fmt(slices[i].position)} and {_fmt(slices[i + 1].position)}"
                    )
                what = "missing slice" if gap > step else "irregular slice spacing"
                raise DicomSeriesError(
                    f"{what}: {gap:.3f} mm between the slices at positions {_fmt(slices[i].position)} "
                    f"({slices[i].path.name}) and {_fmt(slices[i + 1].position)} ({slices[i + 1].path.name}), "
                    f"{step:.3f} mm elsewhere"
                )
        if np.linalg.norm(np.cross(reference / step, normal)) > 0.05:
            raise DicomSeriesError(
                f"slices are not stacked along their normal (gantry tilt or sheared stack): the step "
                f"{np.round(reference, 3).tolist()} mm is not parallel to the normal {np.round(normal, 4).tolist()}"
            )
    return slices, normal


def _transfer_syntax(ds) -> tuple[str, str]:
    uid = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if uid is None:
        return "unknown", "unknown"
    return str(uid), getattr(uid, "name", str(uid))




def _ensure_transfer_syntax(ds) -> None:
    """A file without file meta gets the transfer syntax it was read with (pydicom needs it to decode)."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return
    implicit, little = getattr(ds, "original_encoding", (True, True))
    if meta is None:
        ds.file_meta = meta = FileMetaDataset()
    meta.TransferSyntaxUID = (
        ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian if little else ExplicitVRBigEndian
    )


def _pixels(s: _Slice, header_of: dict) -> np.ndarray:
    """Stored pixel values of one slice (rows, columns); errors name the file and transfer syntax."""
    pydicom = _pydicom()
    ds = header_of.get(("full", s.path))
    if ds is None:
        ds = pydicom.dcmread(s.path, force=True)  # the header pass already accepted the file
        _ensure_transfer_syntax(ds)
        header_of[("full", s.path)] = ds
    try:
        if s.frame is None:
            array = ds.pixel_array
        else:
            array = ds.pixel_array[s.frame] if int(ds.get("NumberOfFrames", 1) or 1) > 1 else ds.pixel_array
    except Exception as err:  # pydicom raises NotImplementedError/RuntimeError/ValueError by plugin
        uid, name = _transfer_syntax(ds)
        reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        if getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None) is not None and not getattr(
            ds.file_meta.TransferSyntaxUID, "is_compressed", True
        ):  # uncompressed: nothing to decode, the file itself is damaged
            raise DicomSeriesError(
                f"{s.path}: cannot read its pixel data (transfer syntax {name}): truncated or corrupt file? ({reason})"
            ) from err
        raise DicomSeriesError(
            f"{s.path}: cannot decode pixel data in transfer syntax {name} ({uid}) with the installed "
            f"pydicom plugins; install a decoder (pylibjpeg, python-gdcm) or convert the file ({reason})"
        ) from err
    if array.ndim != 2:
        raise DicomSeriesError(
            f"{s.path}: expected a grey-level image (rows, columns), got pixel array of shape {array.shape} "
            f"(SamplesPerPixel {ds.get('SamplesPerPixel')})"
        )
    return array


def _rescaled(s: _Slice, header_of: dict) -> np.ndarray:
    from pydicom.pixels import apply_modality_lut

    stored = _pixels(s, header_of)
    if s.rescale is not None:
        slope, intercept = s.rescale
        return stored.astype(np.float64) * slope + intercept
    return np.asarray(apply_modality_lut(stored, header_of[("full", s.path)]), dtype=np.float64)


def _padding_mask(stored: np.ndarray, ds) -> np.ndarray:
    padding = ds.get("PixelPaddingValue")
    if padding is not None:
        limit = ds.get("PixelPaddingRangeLimit")
        low, high = sorted((int(padding), int(limit if limit is not None else padding)))
        return (stored >= low) & (stored <= high)
    return np.zeros(stored.shape, dtype=bool)


def _dicom2nifti_reverses(slices: list[_Slice]) -> bool:
    """Whether dicom2nifti stacks these slices (sorted along the normal) the other way round.

    dicom2nifti keeps the frame order of an enhanced multi-frame file, and sorts single-frame
    files by the patient coordinate that varies most (x before y before z on ties), ascending.
    """
    if len(slices) < 2:
        return False
    if slices[0].frame is not None and len({s.path for s in slices}) == 1:
        return slices[0].frame > slices[-1].frame
    positions = np.stack([s.position for s in slices])
    axis = int(np.argmax(positions.max(axis=0) - positions.min(axis=0)))
    return bool(positions[-1, axis] < positions[0, axis])


def _permute_flip(volume: np.ndarray, affine: np.ndarray, order: Sequence[int], flips: Sequence[bool]):
    """New axis ``n`` = old axis ``order[n]``, reversed where ``flips[n]``; origin = affine of the new first voxel."""
    new_volume = np.moveaxis(volume, list(order), [0, 1, 2])
    new_affine = np.eye(4)
    corner = np.array([0.0, 0.0, 0.0, 1.0])
    for new_axis, (old_axis, flip) in enumerate(zip(order, flips)):
        new_affine[:, new_axis] = -affine[:, old_axis] if flip else affine[:, old_axis]
        if flip:
            corner[old_axis] = volume.shape[old_axis] - 1
            new_volume = np.flip(new_volume, axis=new_axis)
    new_affine[:, 3] = affine @ corner
    return new_volume, new_affine


def _dicom2nifti_axes(affine: np.ndarray) -> tuple[list[int], list[bool]]:
    """The voxel axes dicom2nifti puts along x, y, z, and which it reverses (its ``reorient_image``).

    For each world axis the voxel axis with the largest component of ``inv(affine) @ e_world``
    (so voxel sizes weigh in), clashes resolved by keeping the stronger claim; an axis is
    reversed so that x runs to the patient's left and y, z to anterior and superior (LAS).
    """
    inverse = np.linalg.inv(affine)
    t = [inverse @ np.eye(4)[w] for w in range(3)]  # world x, y, z in voxel coordinates
    dots = [[abs(float(t[w][v])) for v in range(3)] for w in range(3)]
    comp = [int(np.argmax(d)) for d in dots]
    best = [max(d) for d in dots]
    for _ in range(10):  # dicom2nifti's clash resolution, in its order: (x, y), (x, z), (y, z)
        if len(set(comp)) == 3:
            break
        for a, b in ((0, 1), (0, 2), (1, 2)):
            if comp[a] == comp[b]:
                loser = b if best[a] >= best[b] else a
                dots[loser][comp[loser]] = 0.0
                comp[loser] = int(np.argmax(dots[loser]))
                best[loser] = max(dots[loser])
    if len(set(comp)) != 3:  # pragma: no cover - dicom2nifti gives up here too
        raise DicomSeriesError("cannot assign the voxel axes to x, y, z (degenerate orientation)")
    flips = [
        not np.sign(t[0][comp[0]]) < 0,  # x towards the left: reverse unless voxel axis already runs right -> left
        bool(np.sign(t[1][comp[1]]) < 0),
        bool(np.sign(t[2][comp[2]]) < 0),
    ]
    return comp, flips


def _reorient(volume: np.ndarray, affine: np.ndarray, codes: str | None) -> tuple[np.ndarray, np.ndarray, str]:
    """Reorder the axes: dicom2nifti's rule, exact axis codes (nibabel), or none."""
    import nibabel.orientations as nio

    if codes == "dicom2nifti":
        order, flips = _dicom2nifti_axes(affine)
        new_volume, new_affine = _permute_flip(volume, affine, order, flips)
    elif codes is None:
        new_volume, new_affine = volume, affine
    else:
        transform = nio.ornt_transform(nio.io_orientation(affine), nio.axcodes2ornt(tuple(codes)))
        order = [0, 0, 0]
        flips = [False, False, False]
        for old_axis, (new_axis, flip) in enumerate(transform):
            order[int(new_axis)] = old_axis
            flips[int(new_axis)] = flip < 0
        new_volume, new_affine = _permute_flip(volume, affine, order, flips)
    return new_volume, new_affine, "".join(nio.aff2axcodes(new_affine))


def _check_orientation(orientation: object) -> str | None:
    if orientation is None:
        return None
    if orientation == "dicom2nifti":
        return orientation
    if isinstance(orientation, str) and len(orientation) == 3:
        codes = orientation.upper()
        pairs = [{"L", "R"}, {"A", "P"}, {"S", "I"}]
        if all(sum(c in pair for c in codes) == 1 for pair in pairs):
            return codes
    raise ValueError(
        "orientation must be 'dicom2nifti', None or 3 axis codes, one of L/R, A/P, S/I each (e.g. 'LAS', 'RAS'), "
        f"got {orientation!r}"
    )


def list_dicom_series(path: str | os.PathLike | Sequence[str | os.PathLike]) -> list[dict]:
    """The image series in a folder (headers only), to choose the ``series_uid`` to read.

    Args:
        path: a folder (searched recursively), one file, or a list of files.

    Returns:
        One dict per series, ordered by series number: ``series_uid``, ``series_number``,
        ``description``, ``modality``, ``files`` (count), ``rows``, ``columns``.

    Raises:
        FileNotFoundError: ``path`` does not exist.

    Example:
        >>> for s in list_dicom_series("dicom/study/"):                  # doctest: +SKIP
        ...     print(s["series_uid"], s["description"], s["files"])
    """
    groups: dict[str, list] = {}
    for file, ds in _read_headers(_candidate_files(path)):  # type: ignore[arg-type]
        groups.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append(ds)
    entries = []
    for uid, members in groups.items():
        ds = members[0]
        number = ds.get("SeriesNumber")
        entries.append({
            "series_uid": uid,
            "series_number": None if number in (None, "") else int(number),
            "description": str(ds.get("SeriesDescription", "") or "").strip(),
            "modality": str(ds.get("Modality", "") or ""),
            "files": len(members),
            "rows": int(ds.Rows),
            "columns": int(ds.Columns),
        })
    return sorted(entries, key=lambda e: (e["series_number"] is None, e["series_number"] or 0, e["series_uid"]))


def read_dicom_series(
    path: str | os.PathLike | Sequence[str | os.PathLike],
    series_uid: str | None = None,
    *,
    orientation: str | None = "dicom2nifti",
    pad_to_air: bool = True,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray, DicomSeriesInfo]:
    """Read one DICOM series as a 3-D volume with its NIfTI (RAS+) affine.

    Files are grouped by ``SeriesInstanceUID``; the slices (single-frame files, or the frames of
    an enhanced multi-frame file) are ordered by their position along the slice normal
    ``n = row x column`` of ``ImageOrientationPatient`` - never by file name or instance number.
    Pixel values go through the modality LUT / rescale (``value = stored * RescaleSlope +
    RescaleIntercept``: Hounsfield units for CT). Files that are not DICOM are skipped with a
    warning naming them; localisers (``ImageType`` LOCALIZER) inside a series are dropped.

    CT padding: with ``pad_to_air`` the voxels outside the reconstructed field of view are set
    to :data:`AIR_HU` (-1024 HU): those whose stored value is ``PixelPaddingValue`` (up to
    ``PixelPaddingRangeLimit``), or, without that tag, those holding the series' minimum when
    it lies below -1500 HU (a constant no tissue or air reaches, e.g. -2000 or -3024).
    dicom2nifti does not do this; ``pad_to_air=False`` keeps the stored values.

    Geometry: voxel ``(i, j, k)`` of the DICOM storage order maps to LPS
    ``P0 + i * dc * row + j * dr * col + k * step`` with ``step = (P_last - P0) / (N - 1)``;
    the RAS+ affine is ``diag(-1, -1, 1, 1)`` times that. The axes are then permuted/flipped:
    by default exactly as ``dicom2nifti`` does (LAS: x to the patient's left, y anterior, z
    superior; dicom2nifti picks for each world axis the voxel axis with the largest component
    of ``inv(affine) @ e``, which for strongly oblique stacks can differ from nibabel's choice -
    the array and affine are still dicom2nifti's), or to exact axis codes (nibabel's
    ``io_orientation``), or not at all.

    Args:
        path: a folder (searched recursively), one file (e.g. an enhanced multi-frame file), or a
            list of files.
        series_uid: the ``SeriesInstanceUID`` to read when the folder holds several series.
        orientation: ``"dicom2nifti"`` (default: dicom2nifti's axis order, LAS), 3 axis codes
            (``"LAS"``, ``"RAS"``, ...: exactly those, nibabel's rule), or None for the DICOM
            storage order (X along rows, Y down columns, Z along the normal).
        pad_to_air: set CT padding voxels to -1024 HU (see above).
        progress: show a progress bar while reading pixel data.

    Returns:
        ``(volume, affine, info)``: ``volume`` float32 ``(X, Y, Z)``; ``affine`` float64 4x4
        voxel-to-world (mm, RAS+) as nibabel uses; ``info`` a :class:`DicomSeriesInfo`.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DicomSeriesError (a ValueError): no DICOM image, several series without ``series_uid``,
            mixed orientations, missing slice or irregular spacing, duplicate positions with
            different pixels, tilted stack, a transfer syntax the installed decoders cannot
            read, colour images. The message names the file or slice position.
        ValueError: ``orientation`` is not ``"dicom2nifti"``, None or valid axis codes.

    Example:
        >>> volume, affine, info = read_dicom_series("ct_head/")   # doctest: +SKIP
        >>> info.modality, volume.shape, info.voxel_size            # doctest: +SKIP
        ('CT', (512, 512, 120), (0.49, 0.49, 2.5))
    """
    codes = _check_orientation(orientation)
    if not isinstance(series_uid, (str, type(None))):
        raise TypeError(f"series_uid must be a string or None, got {type(series_uid).__name__}")
    source = repr(str(path)) if not isinstance(path, (list, tuple)) else f"the {len(path)} given files"
    files = _candidate_files(path)  # type: ignore[arg-type]
    headers = _read_headers(files)
    uid, members = _select_series(headers, series_uid, source)

    # Drop localisers like dicom2nifti (a scout inside an axial CT series).
    def is_localizer(ds) -> bool:
        image_type = [str(t).upper() for t in (ds.get("ImageType") or [])]
        return "LOCALIZER" in image_type or (
            str(ds.get("Modality", "")) == "CT" and "PROJECTION IMAGE" in image_type
        )

    localizers = [f for f, ds in members if is_localizer(ds)]
    if localizers and len(localizers) < len(members):
        warnings.warn(f"dropped {len(localizers)} localizer image(s): {', '.join(map(str, localizers))}", stacklevel=2)
        members = [(f, ds) for f, ds in members if not is_localizer(ds)]
    first_ds = members[0][1]
    if int(first_ds.get("SamplesPerPixel", 1) or 1) != 1:
        raise DicomSeriesError(
            f"{members[0][0]}: colour image (SamplesPerPixel {first_ds.SamplesPerPixel}); only grey-level series are supported"
        )
    header_of: dict = {f: ds for f, ds in members}
    slices = [s for f, ds in members for s in _slices_of(f, ds)]
    shapes = {(int(ds.Rows), int(ds.Columns)) for _, ds in members}
    if len(shapes) > 1:
        raise DicomSeriesError(f"the images of series {uid!r} have different sizes {sorted(shapes)}")
    slices, normal = _order_and_check(slices, header_of)
    if codes == "dicom2nifti" and _dicom2nifti_reverses(slices):
        slices = slices[::-1]  # stack as dicom2nifti does, so that even the last bit of the origin agrees

    from tqdm.auto import tqdm

    rows, cols = shapes.pop()
    stack = np.empty((len(slices), rows, cols), dtype=np.float32)  # rescaled in float64 slice by slice, stored float32
    pad = pad_to_air and str(first_ds.get("Modality", "")).upper() == "CT"
    padding = np.zeros(stack.shape, dtype=bool) if pad else None
    for k, s in enumerate(tqdm(slices, desc="DICOM", unit="slice", disable=not progress)):
        stack[k] = _rescaled(s, header_of)
        if padding is not None:
            padding[k] = _padding_mask(_pixels(s, header_of), header_of[("full", s.path)])
        if s.frame is None:  # keep at most one decoded single-frame file in memory
            header_of.pop(("full", s.path), None)
    padding_voxels = 0
    if padding is not None:
        if not padding.any() and "PixelPaddingValue" not in first_ds:
            low = stack.min()
            if low < _PADDING_BELOW_HU:
                padding = stack == low
        stack[padding] = AIR_HU
        padding_voxels = int(padding.sum())

    # Geometry in LPS, then RAS+ (nibabel's convention).
    first, last = slices[0], slices[-1]
    row, col = first.orientation[:3], first.orientation[3:]
    d_row, d_col = first.spacing  # PixelSpacing = (spacing between rows, between columns)
    if len(slices) > 1:
        step = (last.position - first.position) / (len(slices) - 1)
    else:
        thickness = first.thickness or float(first_ds.get("SpacingBetweenSlices", 0) or 0) or 1.0
        step = normal * thickness
    lps = np.eye(4)
    lps[:3, 0] = row * d_col
    lps[:3, 1] = col * d_row
    lps[:3, 2] = step
    lps[:3, 3] = first.position
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    volume = np.transpose(stack, (2, 1, 0))  # (slices, rows, cols) -> (X = cols, Y = rows, Z = slices)
    volume, affine, axcodes = _reorient(volume, affine, codes)
    volume = np.ascontiguousarray(volume, dtype=np.float32)

    slope = first.rescale[0] if first.rescale else float(first_ds.get("RescaleSlope", 1.0) or 1.0)
    intercept = first.rescale[1] if first.rescale else float(first_ds.get("RescaleIntercept", 0.0) or 0.0)
    extra = {}
    for key in _EXTRA_KEYS:
        value = first_ds.get(key)
        if value not in (None, ""):
            extra[key] = value if isinstance(value, (str, int, float)) else str(value)
    _, ts_name = _transfer_syntax(first_ds)
    info = DicomSeriesInfo(
        series_uid=uid,
        series_description=str(first_ds.get("SeriesDescription", "") or ""),
        modality=str(first_ds.get("Modality", "") or ""),
        shape=tuple(int(n) for n in volume.shape),  # type: ignore[arg-type]
        voxel_size=tuple(float(v) for v in np.linalg.norm(affine[:3, :3], axis=0)),  # type: ignore[arg-type]
        slice_spacing=float(np.linalg.norm(step)),
        orientation=axcodes,
        rescale_slope=slope,
        rescale_intercept=intercept,
        padding_voxels=padding_voxels,
        transfer_syntax=ts_name,
        files=tuple(str(s.path) if s.frame is None else f"{s.path}[{s.frame}]" for s in slices),
        extra=extra,
    )
    return volume, affine, info


def dicom_to_nifti(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    series_uid: str | None = None,
    *,
    orientation: str | None = "dicom2nifti",
    pad_to_air: bool = True,
    progress: bool = False,
) -> Path:
    """Convert one DICOM series to a NIfTI file (written atomically).

    Same reading rules as :func:`read_dicom_series`; the file holds the float32 volume with its
    affine as sform and qform (scanner coordinates, mm).

    Args:
        src: DICOM folder or file.
        dst: ``.nii`` or ``.nii.gz`` path; its folder must exist.
        series_uid: which series, when ``src`` holds several.
        orientation: ``"dicom2nifti"`` (default, LAS as dicom2nifti), axis codes, or None.
        pad_to_air: set CT padding voxels to -1024 HU.
        progress: show a progress bar.

    Returns:
        ``dst`` as a Path.

    Raises:
        ValueError: ``dst`` does not end in .nii/.nii.gz, or see :func:`read_dicom_series`.
        FileNotFoundError: ``src`` or the folder of ``dst`` does not exist.

    Example:
        >>> dicom_to_nifti("ct_head/", "ct_head.nii.gz")   # doctest: +SKIP
    """
    dst = Path(dst)
    if not (dst.name.endswith(".nii") or dst.name.endswith(".nii.gz")):
        raise ValueError(f"dst must end in .nii or .nii.gz, got {str(dst)!r}")
    if not dst.parent.is_dir():
        raise FileNotFoundError(f"dst folder {str(dst.parent)!r} does not exist")
    volume, affine, _ = read_dicom_series(
        src, series_uid, orientation=orientation, pad_to_air=pad_to_air, progress=progress
    )
    return save_nifti(dst, volume, affine=affine)
