"""Files in and out: fastMRI submission files, fastMRI-schema raw files, NIfTI volumes.

Every writer is atomic: it writes a temporary file next to the destination and renames it
into place (``os.replace``), so a crash or an exception never leaves a half-written file
under the final name. The temporary is named ``.<name>.tmp-<host>-<pid>-<random>``: hidden,
and never ending in ``.h5`` / ``.nii`` / ``.nii.gz``, so no dataset glob or folder scan
(:func:`data_files`, :class:`recon.data.SliceDataset`, ``recon reconstruct DIR``) ever picks
up the remains of a killed run; :func:`remove_stale_temporaries` deletes such remains (only
names of this pattern, only those of processes of this host that are gone).
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import logging
import os
import re
import secrets
import socket
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import h5py
import numpy as np
import torch

from recon.data.header import parse_ismrmrd_header

__all__ = [
    "atomic_path",
    "atomic_folder",
    "is_temporary",
    "remove_stale_temporaries",
    "data_files",
    "save_npz",
    "save_reconstructions",
    "write_fastmri_file",
    "save_nifti",
    "load_nifti",
]

logger = logging.getLogger(__name__)

#: ``.<name>.tmp-<host>-<pid>-<hex>``: the names :func:`atomic_path` gives its temporaries
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<host>[A-Za-z0-9_]{1,32})-(?P<pid>\d+)-[0-9a-f]{8}$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:32] or "host"


def is_temporary(name: str | os.PathLike) -> bool:
    """Whether ``name`` (a file name or path) is a temporary of :func:`atomic_path`."""
    return _TEMPORARY.match(Path(name).name) is not None


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    except OSError:
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporaries that killed writers left in ``folder`` (not in sub-folders).

    Only names of :func:`atomic_path`'s pattern are considered, and of those only the ones
    written on this host by a process that no longer runs: a concurrent writer's temporary
    (another process, or another host on a shared file system) is left alone.

    Args:
        folder: an output folder; a missing folder is not an error.

    Returns:
        The removed paths.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    host, removed = _host(), []
    for entry in os.scandir(folder):
        match = _TEMPORARY.match(entry.name)
        if match is None or match["host"] != host or _process_alive(int(match["pid"])):
            continue
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            os.unlink(entry.path)
            removed.append(Path(entry.path))
            logger.info("removed %s, left by a killed run", entry.path)
    return removed


def data_files(folder: str | os.PathLike, suffixes: Sequence[str]) -> list[Path]:
    """The visible regular files in ``folder`` whose names end in one of ``suffixes``, sorted.

    Hidden names (a leading ``.``: editors' swap files, macOS ``._*`` files, the temporaries
    of :func:`atomic_path`) are skipped, and suffixes compare case-insensitively. Every folder
    scan of recon (datasets, the command line) goes through here.

    Args:
        folder: the folder to list (not recursive).
        suffixes: e.g. ``(".h5",)`` or ``(".nii", ".nii.gz")``.

    Returns:
        The matching paths, sorted by name.
    """
    lowered = tuple(s.lower() for s in suffixes)
    return sorted(
        Path(entry.path)
        for entry in os.scandir(folder)
        if not entry.name.startswith(".") and entry.name.lower().endswith(lowered) and entry.is_file()
    )


def _temporary_name(path: Path) -> Path:
    stem = path.name[:150]  # keeps the whole name under common 255-byte limits
    return path.with_name(f".{stem}.tmp-{_host()}-{os.getpid()}-{secrets.token_hex(4)}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` when the block succeeds.

    The temporary (``.<name>.tmp-<host>-<pid>-<random>``, created empty with the process's
    usual file mode) deliberately has no data suffix, so nothing that scans the folder takes
    it for a data file: writers that choose a format by extension must be told the format
    (``savefig(format=...)``; :func:`save_nifti` serialises itself). On an exception the
    temporary is removed and the destination is untouched; after a kill -9 it is left
    behind, hidden, until :func:`remove_stale_temporaries` runs.

    Args:
        path: the final file name. Its folder must exist.

    Raises:
        FileNotFoundError: the folder does not exist.
        IsADirectoryError: ``path`` is an existing folder.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "cannot write a file over a folder", str(path))
    for _ in range(100):
        tmp = _temporary_name(path)
        try:  # created like any new file (mode 0o666 & ~umask), exclusively, never via a link
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        break
    else:  # pragma: no cover - 100 collisions of 32 random bits
        raise FileExistsError(errno.EEXIST, "no free temporary name", str(path))
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a new empty temporary folder next to ``path``; rename it to ``path`` when the block
    succeeds.

    The temporary (``.<name>.<random>``, hidden) is removed whatever happens in the block, so a
    folder at ``path`` is either complete or absent. If another process renamed its own folder
    into place first, that one is kept and this one discarded; a rename that fails for another
    reason raises. ``path``'s parent folders are created.

    Args:
        path: the final folder name.
    """
    import shutil
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        try:
            os.rename(tmp, path)
        except OSError:
            if not path.is_dir():  # otherwise a concurrent process won the race
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def save_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` to the ``.npz`` file ``path`` atomically (:func:`atomic_path`), creating its
    folder; a cache file is either complete or absent. Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    return path


def _as_numpy(name: str, value: object) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value
    raise TypeError(f"{name} must be a numpy array or torch.Tensor, got {type(value).__name__}")


def save_reconstructions(
    reconstructions: Mapping[str, np.ndarray | torch.Tensor], out_dir: str | os.PathLike
) -> list[Path]:
    """Save reconstructed volumes in fastMRI's leaderboard submission format.

    One HDF5 file per volume, named by its key, holding a single dataset ``reconstruction``
    of shape ``(slices, H, W)`` (float32 for real input). Same signature as fastMRI's
    ``fastmri.save_reconstructions``; each file is written atomically.

    Args:
        reconstructions: file name (e.g. ``"file_brain_AXT2_200_2000019.h5"``) -> volume
            ``(slices, H, W)``, numpy or torch.
        out_dir: output folder, created if needed.

    Returns:
        The written paths, in the order of ``reconstructions``.

    Raises:
        TypeError: a key is not a string or a volume is not an array.
        ValueError: a key is not a plain file name or a volume is not 3-D.

    Example:
        >>> import numpy as np, tempfile
        >>> paths = save_reconstructions({"vol.h5": np.zeros((2, 4, 4))}, tempfile.mkdtemp())
        >>> paths[0].name
        'vol.h5'
    """
    if not isinstance(reconstructions, Mapping):
        raise TypeError(
            f"reconstructions must be a dict of file name -> volume, got {type(reconstructions).__name__}"
        )
    checked = []
    for fname, volume in reconstructions.items():
        if not isinstance(fname, str):
            raise TypeError(f"reconstructions keys must be file names (str), got {fname!r}")
        if not fname or Path(fname).name != fname or fname in (".", ".."):
            raise ValueError(f"reconstructions keys must be plain file names without folders, got {fname!r}")
        array = _as_numpy(f"reconstructions[{fname!r}]", volume)
        if array.ndim != 3:
            raise ValueError(
                f"reconstructions[{fname!r}] must be a (slices, H, W) volume, got shape {array.shape}"
            )
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        checked.append((fname, array))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for fname, array in checked:
        with atomic_path(out_dir / fname) as tmp:
            with h5py.File(tmp, "w") as hf:
                hf.create_dataset("reconstruction", data=array)
        written.append(out_dir / fname)
    return written


def write_fastmri_file(
    path: str | os.PathLike,
    kspace: np.ndarray,
    header: bytes | str,
    *,
    reconstruction_rss: np.ndarray | None = None,
    reconstruction_esc: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    attrs: Mapping[str, object] | None = None,
) -> Path:
    """Write a raw-data file in fastMRI's schema, atomically.

    Layout (as in the published fastMRI files): dataset ``kspace`` complex64
    ``(slices, coils, H, W)`` (multi-coil) or ``(slices, H, W)`` (single-coil); dataset
    ``ismrmrd_header`` (a bytes scalar); optional float32 targets ``reconstruction_rss`` /
    ``reconstruction_esc`` ``(slices, h, w)``; optional ``mask`` ``(W,)`` (test files);
    file attributes from ``attrs`` (``acquisition``, ``max``, ``norm``, ``patient_id``,
    and on test files ``acceleration``, ``num_low_frequency``).

    Args:
        path: destination file; its folder must exist.
        kspace: complex k-space, 3-D or 4-D.
        header: ISMRMRD XML (see :func:`recon.data.header.make_ismrmrd_header`).
        reconstruction_rss: RSS target volume.
        reconstruction_esc: emulated-single-coil target volume.
        mask: 1-D sampling mask over the ``W`` columns.
        attrs: HDF5 file attributes.

    Returns:
        ``path``.

    Raises:
        TypeError: kspace is not complex.
        ValueError: shapes disagree or the header lacks a field fastMRI reads.
    """
    path = Path(path)
    kspace = np.asarray(kspace)
    if not np.iscomplexobj(kspace):
        raise TypeError(f"kspace must be a complex array, got {kspace.dtype} array of shape {kspace.shape}")
    if kspace.ndim not in (3, 4):
        raise ValueError(
            f"kspace must be (slices, coils, H, W) or (slices, H, W), got shape {kspace.shape}"
        )
    parse_ismrmrd_header(header)  # refuse to write a file our reader would refuse
    targets = {"reconstruction_rss": reconstruction_rss, "reconstruction_esc": reconstruction_esc}
    for name, target in targets.items():
        if target is not None and (np.ndim(target) != 3 or np.shape(target)[0] != kspace.shape[0]):
            raise ValueError(
                f"{name} must be ({kspace.shape[0]}, h, w) to match kspace, got shape {np.shape(target)}"
            )
    if mask is not None and np.shape(mask) != (kspace.shape[-1],):
        raise ValueError(f"mask must have shape ({kspace.shape[-1]},), got {np.shape(mask)}")
    header_bytes = header.encode("utf-8") if isinstance(header, str) else bytes(header)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as hf:
            hf.create_dataset("ismrmrd_header", data=np.bytes_(header_bytes))
            hf.create_dataset("kspace", data=kspace.astype(np.complex64, copy=False))
            for name, target in targets.items():
                if target is not None:
                    hf.create_dataset(name, data=np.asarray(target, dtype=np.float32))
            if mask is not None:
                hf.create_dataset("mask", data=np.asarray(mask))
            for key, value in (attrs or {}).items():
                hf.attrs[key] = value
    return path


def _check_voxel_size(voxel_size: object) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in voxel_size)  # type: ignore[union-attr]
    except TypeError as err:
        raise TypeError(f"voxel_size must be 3 positive numbers (mm), got {voxel_size!r}") from err
    if len(values) != 3 or min(values) <= 0 or not all(np.isfinite(values)):
        raise ValueError(f"voxel_size must be 3 positive numbers (mm), got {voxel_size!r}")
    return values  # type: ignore[return-value]


def save_nifti(
    path: str | os.PathLike,
    volume: np.ndarray | torch.Tensor,
    *,
    voxel_size: tuple[float, float, float] = (1.0, 1.0, 1.0),
    affine: np.ndarray | None = None,
) -> Path:
    """Write a 3-D (or 4-D) volume as NIfTI-1 with a consistent affine and voxel size.

    Without ``affine``, the affine is diagonal with ``voxel_size`` and the volume centred on
    the origin (RAS+). With ``affine``, the voxel size stored in the header is taken from
    the affine's column norms, so the two can never disagree.

    Args:
        path: ``.nii`` or ``.nii.gz`` file; its folder must exist.
        volume: ``(X, Y, Z)`` or ``(X, Y, Z, T)``, real (magnitude) data.
        voxel_size: ``(dx, dy, dz)`` in mm, used when ``affine`` is None.
        affine: 4x4 voxel-to-world (mm) matrix.

    Returns:
        ``path``.

    Raises:
        TypeError: volume is complex or not an array.
        ValueError: wrong dimensionality, suffix, voxel size or affine.
    """
    path = Path(path)
    if not (path.name.endswith(".nii") or path.name.endswith(".nii.gz")):
        raise ValueError(f"path must end in .nii or .nii.gz, got {str(path)!r}")
    array = _as_numpy("volume", volume)
    if np.iscomplexobj(array):
        raise TypeError(f"volume must be real (save the magnitude), got {array.dtype} array")
    if array.ndim not in (3, 4):
        raise ValueError(f"volume must be (X, Y, Z) or (X, Y, Z, T), got shape {array.shape}")
    if affine is None:
        zooms = _check_voxel_size(voxel_size)
        affine = np.diag([*zooms, 1.0])
        affine[:3, 3] = -0.5 * (np.asarray(array.shape[:3]) - 1) * np.asarray(zooms)
    else:
        affine = np.asarray(affine, dtype=np.float64)
        if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
            raise ValueError(f"affine must be a finite 4x4 matrix, got shape {affine.shape}")
        if abs(np.linalg.det(affine[:3, :3])) < 1e-12:
            raise ValueError("affine must be invertible (its 3x3 part has zero determinant)")
    import nibabel as nib

    image = nib.Nifti1Image(np.ascontiguousarray(array), affine)
    image.header.set_xyzt_units("mm", "sec")
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    with atomic_path(path) as tmp:  # the temporary has no suffix: serialise explicitly
        with open(tmp, "wb") as raw:
            if path.name.endswith(".gz"):
                with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as stream:
                    image.to_stream(stream)
            else:
                image.to_stream(raw)
    return path


def load_nifti(path: str | os.PathLike, dtype: np.dtype | type = np.float32) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """Read a NIfTI volume with its affine and voxel size.

    Args:
        path: ``.nii`` / ``.nii.gz`` file.
        dtype: dtype of the returned data (scaling slope/intercept applied). A complex file
            is read only with a complex ``dtype``: it is never silently cast to real.

    Returns:
        ``(volume, affine (4, 4), voxel_size)``, voxel size in mm for the spatial axes.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file cannot be read as NIfTI, or it holds complex values and ``dtype``
            is real (the message names the file).
    """
    import nibabel as nib

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no NIfTI file at {str(path)!r}")
    want_complex = np.issubdtype(np.dtype(dtype), np.complexfloating)
    try:
        image = nib.load(str(path))
        stored = np.dtype(image.get_data_dtype())
    except Exception as err:  # nibabel raises several types for bad files
        raise ValueError(f"{path}: cannot read as NIfTI ({type(err).__name__}: {err})") from err
    if stored.kind == "c" and not want_complex:
        raise ValueError(
            f"{path}: the volume is complex-valued ({stored}) and is not read as real data: "
            "save its magnitude (e.g. np.abs) first, or read it with a complex dtype"
        )
    try:
        if want_complex:
            volume = np.asarray(image.dataobj, dtype=dtype)
        else:
            volume = np.asarray(image.get_fdata(dtype=np.float64), dtype=dtype)
    except Exception as err:  # truncated data, bad scaling, ...
        raise ValueError(f"{path}: cannot read as NIfTI ({type(err).__name__}: {err})") from err
    zooms = tuple(float(z) for z in image.header.get_zooms()[:3])
    return volume, np.asarray(image.affine), zooms
