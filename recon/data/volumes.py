"""NIfTI volumes as PyTorch datasets: 2-D slices, paired 3-D volumes or patches, slice folders.

* :class:`NiftiSliceDataset` - the 2-D slices of a folder of volumes along one axis, the
  empty ones skipped, as ``(1, H, W)`` float32 tensors.
* :class:`PairedVolumeDataset` - source/target volumes of the same subject (e.g. a T1 and a
  FLAIR folder) matched by file name, whole or as random 3-D patches at the same place in both,
  as ``(1, X, Y, Z)`` tensors - the sample dict that :mod:`recon.preprocess.augment` transforms.
* :func:`volume_to_slices` - write a folder of 2-D NIfTI (or ``.npy``) slices.

Both datasets read lazily (nothing but file names and a slice index is held between items, so
``DataLoader`` workers pickle them cheaply and open no file in the parent) and orient every
volume to the closest RAS+ (nibabel's canonical) order first by default, so ``axis=2`` is axial,
1 coronal and 0 sagittal whatever the storage order of each file.

Example:
    >>> from torch.utils.data import DataLoader
    >>> from recon.data import NiftiSliceDataset, PairedVolumeDataset
    >>> slices = NiftiSliceDataset("t1/", axis="axial")                          # doctest: +SKIP
    >>> pairs = PairedVolumeDataset("t1/", "flair/", patch_size=64, seed=0)       # doctest: +SKIP
    >>> batch = next(iter(DataLoader(pairs, batch_size=2, num_workers=2)))        # doctest: +SKIP
    >>> batch["source"].shape                                                     # doctest: +SKIP
    torch.Size([2, 1, 64, 64, 64])
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from recon.data.io import atomic_path, data_files, save_nifti

__all__ = ["NiftiSliceDataset", "PairedVolumeDataset", "volume_to_slices", "NIFTI_SUFFIXES"]

NIFTI_SUFFIXES = (".nii", ".nii.gz")
_PLANES = {"sagittal": 0, "coronal": 1, "axial": 2}


def _subject(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _nifti_files(folder: str | os.PathLike, name: str) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{name} must be a folder of NIfTI files, got {str(folder)!r} (not a folder)")
    files = data_files(folder, NIFTI_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"{name} {str(folder)!r} holds no .nii / .nii.gz file")
    return files


def _load(path: Path, canonical: bool, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """A whole 3-D volume and its affine (closest RAS+ orientation if ``canonical``)."""
    view = _View(path, canonical)
    return view.read(np.zeros(3, dtype=np.int64), view.shape, dtype=dtype), view.affine


def _check_axis(axis: object) -> int:
    if isinstance(axis, str) and axis.lower() in _PLANES:
        return _PLANES[axis.lower()]
    if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool) and -3 <= int(axis) <= 2:
        return int(axis) % 3
    raise ValueError(f"axis must be 0, 1, 2 (or -3..-1) or one of {sorted(_PLANES)}, got {axis!r}")


def _check_fraction_range(slice_range: object) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in slice_range)  # type: ignore[union-attr]
    except (TypeError, ValueError) as err:
        raise TypeError(f"slice_range must be two fractions (low, high), got {slice_range!r}") from err
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"slice_range must satisfy 0 <= low < high <= 1, got {slice_range!r}")
    return low, high


def _check_fraction(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number in [0, 1], got {type(value).__name__} {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return float(value)


def slice_window(n: int, slice_range: tuple[float, float]) -> range:
    """Indices ``i`` of ``n`` slices whose centre ``(i + 0.5) / n`` lies in ``[low, high]``."""
    low, high = slice_range
    centres = (np.arange(n) + 0.5) / n
    kept = np.flatnonzero((centres >= low) & (centres <= high))
    if kept.size == 0:  # a narrow window on a thin volume: the slice nearest its middle
        kept = np.array([min(n - 1, int((low + high) / 2 * n))])
    return range(int(kept[0]), int(kept[-1]) + 1)


def foreground_slices(
    volume: np.ndarray, axis: int, indices: Sequence[int], threshold: float, min_foreground: float
) -> list[int]:
    """The non-empty slices among ``indices``.

    A slice is kept when at least ``min_foreground`` (a fraction) of its voxels are brighter
    than ``min + threshold * (max - min)`` of the whole volume; with ``min_foreground=0`` a
    slice needs one such voxel. A constant volume has no non-empty slice; NaN voxels count as
    dark.
    """
    finite = np.isfinite(volume)
    if not finite.any():
        return []
    low, high = float(volume[finite].min()), float(volume[finite].max())
    if not high > low:
        return []
    level = low + threshold * (high - low)
    bright = np.moveaxis(volume, axis, 0)[list(indices)] > level
    fraction = bright.reshape(len(indices), -1).mean(axis=1)
    keep = fraction >= min_foreground if min_foreground > 0 else fraction > 0
    return [int(i) for i, k in zip(indices, keep) if k]


def _slice_affine(affine: np.ndarray, axis: int, index: int) -> np.ndarray:
    """Affine of slice ``index`` along ``axis`` stored as an (H, W, 1) volume (in-plane axes kept in order)."""
    others = [a for a in range(3) if a != axis]
    out = np.eye(4)
    out[:3, 0] = affine[:3, others[0]]
    out[:3, 1] = affine[:3, others[1]]
    out[:3, 2] = affine[:3, axis]
    out[:3, 3] = affine[:3, 3] + index * affine[:3, axis]
    return out


class NiftiSliceDataset(Dataset):
    """The non-empty 2-D slices of a folder of NIfTI volumes, along one axis.

    Which slices: of the ``n`` slices along ``axis``, those whose centre ``(i + 0.5) / n`` lies
    within ``slice_range`` (fractions; the default (0.2, 0.8) drops the outer 20 % on each side,
    where a brain volume is mostly neck and skull top), and of those the non-empty ones: at
    least ``min_foreground`` of the voxels brighter than ``threshold`` of the volume's intensity
    range above its minimum (see :func:`foreground_slices`). The index is built once, reading
    each volume; items are then read lazily: a lone slice from its file (random access), or, when
    consecutive items come from one file, that whole volume once (kept per process).

    Each item is a dict::

        {"image": (1, H, W) float32 tensor, "path": str, "subject": str, "slice": int,
         "axis": int, "affine": (4, 4) float64 tensor of the slice (as an (H, W, 1) volume)}

    passed through ``transform(sample) -> sample`` when given.

    Args:
        folder: folder of ``.nii`` / ``.nii.gz`` volumes (not recursive; hidden files ignored).
        axis: voxel axis to slice along (0, 1, 2) or ``"sagittal"`` / ``"coronal"`` / ``"axial"``
            (0 / 1 / 2 of the canonical orientation).
        slice_range: ``(low, high)`` fractions of the slices to consider, ``0 <= low < high <= 1``.
        threshold: brightness level, as a fraction of the volume's range, above which a voxel is
            foreground.
        min_foreground: fraction of foreground voxels a slice needs (0: any one voxel).
        canonical: reorient each volume to the closest RAS+ order first (nibabel).
        transform: optional callable on the sample dict.
        progress: progress bar while indexing.

    Raises:
        FileNotFoundError: ``folder`` is missing or holds no NIfTI file.
        ValueError / TypeError: invalid argument (named in the message), or a file that is not
            a 3-D NIfTI volume.

    Example:
        >>> ds = NiftiSliceDataset("t1/", axis="axial", slice_range=(0.2, 0.8))   # doctest: +SKIP
        >>> ds[0]["image"].shape                                                  # doctest: +SKIP
        torch.Size([1, 181, 217])
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        axis: int | str = 2,
        slice_range: tuple[float, float] = (0.2, 0.8),
        *,
        threshold: float = 0.05,
        min_foreground: float = 0.01,
        canonical: bool = True,
        transform: Callable[[dict], dict] | None = None,
        progress: bool = False,
    ) -> None:
        self.axis = _check_axis(axis)
        self.slice_range = _check_fraction_range(slice_range)
        self.threshold = _check_fraction("threshold", threshold)
        self.min_foreground = _check_fraction("min_foreground", min_foreground)
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable or None, got {type(transform).__name__}")
        self.transform = transform
        self.canonical = bool(canonical)
        self.files = _nifti_files(folder, "folder")
        from tqdm.auto import tqdm

        self.index: list[tuple[int, int]] = []
        self.skipped: dict[str, int] = {}
        for f, path in enumerate(tqdm(self.files, desc="indexing slices", disable=not progress)):
            volume, _ = _load(path, self.canonical)
            window = slice_window(volume.shape[self.axis], self.slice_range)
            kept = foreground_slices(volume, self.axis, window, self.threshold, self.min_foreground)
            self.skipped[path.name] = len(window) - len(kept)
            self.index.extend((f, k) for k in kept)
        self._cache: tuple[int, np.ndarray, np.ndarray] | None = None
        self._last: int | None = None

    def __len__(self) -> int:
        return len(self.index)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_cache"] = state["_last"] = None  # workers get file names only
        return state

    def _slice(self, f: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Slice ``k`` of file ``f`` and the file's (canonical) affine.

        Random access reads just that slice (nibabel's array proxy); from the second consecutive
        item of one file on (sequential access) the whole volume is read once and kept.
        """
        if self._cache is not None and self._cache[0] == f:
            volume, affine = self._cache[1], self._cache[2]
            return np.take(volume, k, axis=self.axis), affine
        if self._last == f:
            volume, affine = _load(self.files[f], self.canonical)
            self._cache = (f, volume, affine)
            return np.take(volume, k, axis=self.axis), affine
        self._last = f
        view = _View(self.files[f], self.canonical)
        corner = np.zeros(3, dtype=np.int64)
        corner[self.axis] = k
        size = list(view.shape)
        size[self.axis] = 1
        return np.take(view.read(corner, size), 0, axis=self.axis), view.affine

    def __getitem__(self, i: int) -> dict:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} slices")
        f, k = self.index[i]
        image, affine = self._slice(f, k)
        image = np.ascontiguousarray(image, dtype=np.float32)
        sample = {
            "image": torch.from_numpy(image).unsqueeze(0),
            "path": str(self.files[f]),
            "subject": _subject(self.files[f]),
            "slice": k,
            "axis": self.axis,
            "affine": torch.from_numpy(_slice_affine(affine, self.axis, k)),
        }
        return self.transform(sample) if self.transform is not None else sample


def _check_patch_size(patch_size: object) -> tuple[int, int, int] | None:
    if patch_size is None:
        return None
    values = (patch_size,) * 3 if isinstance(patch_size, (int, np.integer)) else patch_size
    try:
        values = tuple(values)  # type: ignore[arg-type]
    except TypeError as err:
        raise TypeError(f"patch_size must be None, an int or 3 ints, got {patch_size!r}") from err
    if len(values) != 3 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        raise TypeError(f"patch_size must be None, an int or 3 ints, got {patch_size!r}")
    if min(values) < 1:
        raise ValueError(f"patch_size must be positive, got {patch_size!r}")
    return tuple(int(v) for v in values)  # type: ignore[return-value]


def _match(sources: list[Path], others: list[Path], key: Callable[[str], str], names: tuple[str, str]) -> dict:
    def keyed(files: list[Path], name: str) -> dict[str, Path]:
        out: dict[str, Path] = {}
        for p in files:
            k = key(_subject(p))
            if k in out:
                raise ValueError(f"{name}: {out[k].name} and {p.name} both map to subject {k!r}")
            out[k] = p
        return out

    a, b = keyed(sources, names[0]), keyed(others, names[1])
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    if only_a or only_b:
        raise ValueError(
            f"{names[0]} and {names[1]} must hold the same subjects (matched by file name without .nii/.nii.gz); "
            f"only in {names[0]}: {[a[k].name for k in only_a]}, only in {names[1]}: {[b[k].name for k in only_b]}"
        )
    return {k: (a[k], b[k]) for k in sorted(a)}


class PairedVolumeDataset(Dataset):
    """Source/target volumes of the same subjects, whole or as random 3-D patches at one place.

    Files are matched by name: ``t1/sub-01.nii.gz`` pairs with ``flair/sub-01.nii.gz`` (``key``
    maps a file name without its suffix to a subject id when the names differ, e.g.
    ``lambda n: n.split("_")[0]`` for ``sub-01_T1w`` / ``sub-01_FLAIR``). Paired volumes must
    share their grid (same shape and affine: register and resample first).

    Each item is a dict::

        {"source": (1, X, Y, Z) float32, "target": (1, X, Y, Z) float32,
         ["label": (1, X, Y, Z) int64,]  "affine": (4, 4) float64 tensor of the (patch) grid,
         "subject": str, "location": (i, j, k) ints (patch corner, voxels)}

    (only the images are tensors, so a :class:`~recon.preprocess.augment.Compose` transforms
    exactly those, and the affine in step).

    With ``patch_size`` the corner is drawn uniformly among the positions where the patch fits,
    from a generator seeded by ``(seed, epoch, index)``: the same item of the same epoch gets the
    same patch in any worker; call :meth:`set_epoch` for new patches each epoch. ``transform``
    (e.g. a :class:`recon.preprocess.augment.Compose` with ``labels=("label",)``) is called on
    the sample dict, with ``generator=`` that same generator when it accepts one.

    Args:
        source_dir: folder of source volumes (e.g. T1).
        target_dir: folder of target volumes (e.g. FLAIR).
        patch_size: None for whole volumes, an int (cube) or 3 ints (voxels).
        label_dir: optional folder of label maps, matched the same way.
        seed: base seed of the patch draws; None draws one from the OS (see ``self.seed``).
        generator: alternatively, a ``torch.Generator`` from which the base seed is drawn.
        key: subject id of a file name (without .nii/.nii.gz); default the name itself.
        canonical: reorient each volume to the closest RAS+ order first.
        transform: optional callable on the sample dict.

    Raises:
        FileNotFoundError: a folder is missing or holds no NIfTI file.
        ValueError: unmatched subjects (listed), or, when an item is read, volumes of different
            grids or smaller than the patch.
        TypeError: an argument of the wrong type.

    Example:
        >>> pairs = PairedVolumeDataset("t1/", "flair/", patch_size=64, seed=0)   # doctest: +SKIP
        >>> item = pairs[0]; item["source"].shape, item["target"].shape          # doctest: +SKIP
        (torch.Size([1, 64, 64, 64]), torch.Size([1, 64, 64, 64]))
    """

    def __init__(
        self,
        source_dir: str | os.PathLike,
        target_dir: str | os.PathLike,
        patch_size: int | Sequence[int] | None = None,
        *,
        label_dir: str | os.PathLike | None = None,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        key: Callable[[str], str] | None = None,
        canonical: bool = True,
        transform: Callable[..., dict] | None = None,
    ) -> None:
        self.patch_size = _check_patch_size(patch_size)
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable or None, got {type(transform).__name__}")
        if key is not None and not callable(key):
            raise TypeError(f"key must be callable or None, got {type(key).__name__}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"seed must be an int or None, got {type(seed).__name__} {seed!r}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        if seed is not None and generator is not None:
            raise ValueError("pass seed or generator, not both")
        if generator is not None:
            seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        elif seed is None:
            seed = int(np.random.SeedSequence().entropy % 2**62)
        self.seed = int(seed)
        self.epoch = 0
        self.canonical = bool(canonical)
        self.transform = transform
        self._transform_takes_generator = transform is not None and _accepts_generator(transform)
        key = key or (lambda name: name)
        pairs = _match(_nifti_files(source_dir, "source_dir"), _nifti_files(target_dir, "target_dir"), key, ("source_dir", "target_dir"))
        labels = None
        if label_dir is not None:
            labels = _match([p for p, _ in pairs.values()], _nifti_files(label_dir, "label_dir"), key, ("source_dir", "label_dir"))
        self.subjects = list(pairs)
        self.files = [
            (pairs[s][0], pairs[s][1], None if labels is None else labels[s][1]) for s in self.subjects
        ]

    def __len__(self) -> int:
        return len(self.files)

    def set_epoch(self, epoch: int) -> None:
        """Draw new patch locations (and transform parameters) for this epoch."""
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative int, got {epoch!r}")
        self.epoch = int(epoch)

    def generator_for(self, index: int) -> torch.Generator:
        """The generator of item ``index`` in the current epoch (seeded by seed, epoch, index)."""
        words = np.random.SeedSequence([self.seed, self.epoch, int(index)]).generate_state(2, dtype=np.uint32)
        return torch.Generator().manual_seed(int(words[0]) << 32 | int(words[1]))

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} subjects")
        index = index % len(self)
        subject = self.subjects[index]
        names = ("source", "target", "label")
        views = {n: _View(p, self.canonical) for n, p in zip(names, self.files[index]) if p is not None}
        source = views["source"]
        for name, view in views.items():  # headers only: nothing is read for a mismatched pair
            if view.shape != source.shape:
                raise ValueError(
                    f"subject {subject!r}: {name} {view.shape} and source {source.shape} differ in shape; "
                    "resample both to one grid first"
                )
            if not np.allclose(view.affine, source.affine, atol=1e-3):
                raise ValueError(
                    f"subject {subject!r}: {name} and source have the same shape but different affines "
                    "(not on one grid); register/resample first"
                )
        generator = self.generator_for(index)
        corner = np.zeros(3, dtype=np.int64)
        size = source.shape
        if self.patch_size is not None:
            if any(p > n for p, n in zip(self.patch_size, source.shape)):
                raise ValueError(f"subject {subject!r}: patch_size {self.patch_size} is larger than the volume {source.shape}")
            corner = np.array(
                [int(torch.randint(0, n - p + 1, (1,), generator=generator)) for n, p in zip(source.shape, self.patch_size)],
                dtype=np.int64,
            )
            size = self.patch_size
        sample: dict = {}
        for name, view in views.items():
            array = view.read(corner, size, dtype=None if name == "label" else np.float32)
            if name == "label":
                if not np.issubdtype(array.dtype, np.integer):
                    rounded = np.rint(array)
                    if not np.array_equal(rounded, array):
                        raise ValueError(f"{view.path}: a label map must hold integers, got non-integer values")
                    array = rounded
                array = array.astype(np.int64)
            sample[name] = torch.from_numpy(np.ascontiguousarray(array)).unsqueeze(0)
        patch_affine = source.affine.copy()
        patch_affine[:3, 3] = source.affine[:3, :3] @ corner + source.affine[:3, 3]
        sample.update(affine=torch.from_numpy(patch_affine), subject=subject, location=tuple(int(c) for c in corner))
        if self.transform is not None:
            sample = self.transform(sample, generator=generator) if self._transform_takes_generator else self.transform(sample)
        return sample


class _View:
    """A NIfTI volume seen in (optionally canonical) orientation; reads only the window asked for.

    The header gives shape and affine; :meth:`read` maps a window of the canonical grid back to
    the stored grid and slices nibabel's array proxy there (an uncompressed ``.nii`` is then
    read only where needed), then reorients the piece.
    """

    def __init__(self, path: Path, canonical: bool) -> None:
        import nibabel as nib
        import nibabel.orientations as nio

        self.path = path
        try:
            self.image = nib.load(str(path))
        except Exception as err:  # nibabel raises several types for bad files
            raise ValueError(f"{path}: cannot read as NIfTI ({type(err).__name__}: {err})") from err
        stored = tuple(int(n) for n in self.image.shape)
        if len(stored) == 4 and stored[3] == 1:
            stored = stored[:3]
        if len(stored) != 3:
            raise ValueError(f"{path}: expected a 3-D volume, got shape {tuple(self.image.shape)}")
        self.stored_shape = stored
        affine = np.asarray(self.image.affine, dtype=np.float64)
        self.ornt = nio.io_orientation(affine) if canonical else np.array([[0, 1], [1, 1], [2, 1]], dtype=float)
        self.affine = affine @ nio.inv_ornt_aff(self.ornt, stored)
        shape = [0, 0, 0]
        for axis, (new_axis, _) in enumerate(self.ornt):
            shape[int(new_axis)] = stored[axis]
        self.shape = tuple(shape)

    def read(self, corner: np.ndarray, size: Sequence[int], dtype=np.float32) -> np.ndarray:
        import nibabel.orientations as nio

        window = [slice(0, 0)] * 3
        for axis, (new_axis, flip) in enumerate(self.ornt):
            n, c, p = self.stored_shape[axis], int(corner[int(new_axis)]), int(size[int(new_axis)])
            window[axis] = slice(n - c - p, n - c) if flip < 0 else slice(c, c + p)
        index = tuple(window) + ((0,) if len(self.image.shape) == 4 else ())
        try:
            piece = np.asarray(self.image.dataobj[index])
        except Exception as err:
            raise ValueError(f"{self.path}: cannot read as NIfTI ({type(err).__name__}: {err})") from err
        piece = nio.apply_orientation(piece, self.ornt)
        return piece if dtype is None else piece.astype(dtype, copy=False)


def _accepts_generator(fn: Callable) -> bool:
    try:
        return "generator" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def volume_to_slices(
    volume: np.ndarray | torch.Tensor | str | os.PathLike,
    out_dir: str | os.PathLike,
    axis: int | str = 2,
    *,
    affine: np.ndarray | None = None,
    slice_range: tuple[float, float] = (0.0, 1.0),
    skip_empty: bool = True,
    threshold: float = 0.05,
    min_foreground: float = 0.01,
    file_format: str = "nii.gz",
    prefix: str | None = None,
    canonical: bool = True,
) -> list[Path]:
    """Write the slices of a volume along ``axis`` as a folder of 2-D files.

    Each slice is written atomically as ``<prefix>_<index:04d>.nii.gz`` (an ``(H, W, 1)``
    NIfTI whose affine places it in the world: the volume's affine moved to the slice), or
    ``.nii`` or ``.npy`` (the ``(H, W)`` float32 array only). Which slices: as in
    :class:`NiftiSliceDataset` (``slice_range``, and with ``skip_empty`` the non-empty ones).
    Read back with ``NiftiSliceDataset(out_dir, axis=2, slice_range=(0, 1), canonical=False)``
    (NIfTI; ``canonical=False`` keeps the stored (H, W, 1) order of each slice file).

    Args:
        volume: ``(X, Y, Z)`` array/tensor, or a NIfTI path (then its affine is used).
        out_dir: output folder (created if missing; nothing else is written).
        axis: 0, 1, 2 or ``"sagittal"`` / ``"coronal"`` / ``"axial"`` (of a canonical NIfTI).
        affine: 4x4 voxel-to-world affine of an array volume (default: 1 mm identity).
        slice_range: fractions of the slices to write, as in :class:`NiftiSliceDataset`.
        skip_empty: leave out empty slices (rule of :func:`foreground_slices`).
        threshold: foreground level as a fraction of the intensity range.
        min_foreground: fraction of foreground voxels a kept slice needs.
        file_format: ``"nii.gz"``, ``"nii"`` or ``"npy"``.
        prefix: file name prefix (default: the NIfTI's name, or ``"slice"``).
        canonical: reorient a NIfTI path's volume to the closest RAS+ order first.

    Returns:
        The written paths, in slice order.

    Raises:
        ValueError / TypeError: invalid argument (named), volume not 3-D, affine not 4x4.
        FileNotFoundError: a volume path that does not exist.

    Example:
        >>> volume_to_slices("colin27_t1.nii.gz", "slices/", axis="axial")   # doctest: +SKIP
    """
    axis_index = _check_axis(axis)
    window_range = _check_fraction_range(slice_range)
    threshold = _check_fraction("threshold", threshold)
    min_foreground = _check_fraction("min_foreground", min_foreground)
    if file_format not in ("nii.gz", "nii", "npy"):
        raise ValueError(f"file_format must be 'nii.gz', 'nii' or 'npy', got {file_format!r}")
    if isinstance(volume, (str, os.PathLike)):
        path = Path(volume)
        if not path.is_file():
            raise FileNotFoundError(f"volume {str(path)!r} does not exist")
        array, affine = _load(path, canonical)
        prefix = prefix if prefix is not None else _subject(path)
    else:
        if isinstance(volume, torch.Tensor):
            volume = volume.detach().cpu().numpy()
        if not isinstance(volume, np.ndarray):
            raise TypeError(f"volume must be an array, tensor or NIfTI path, got {type(volume).__name__}")
        if volume.ndim != 3 or np.iscomplexobj(volume):
            raise ValueError(f"volume must be a real (X, Y, Z) array, got {volume.dtype} array of shape {volume.shape}")
        array = volume.astype(np.float32, copy=False)
        affine = np.eye(4) if affine is None else np.asarray(affine, dtype=np.float64)
        if affine.shape != (4, 4) or not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
            raise ValueError(f"affine must be an invertible finite 4x4 matrix, got shape {affine.shape}")
        prefix = prefix if prefix is not None else "slice"
    if not isinstance(prefix, str) or not prefix or "/" in prefix or prefix.startswith("."):
        raise ValueError(f"prefix must be a non-empty file name part (no '/', no leading '.'), got {prefix!r}")
    indices = list(slice_window(array.shape[axis_index], window_range))
    if skip_empty:
        indices = foreground_slices(array, axis_index, indices, threshold, min_foreground)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for k in indices:
        image = np.ascontiguousarray(np.take(array, k, axis=axis_index), dtype=np.float32)
        target = out / f"{prefix}_{k:04d}.{file_format}"
        if file_format == "npy":
            with atomic_path(target) as tmp, open(tmp, "wb") as f:
                np.save(f, image)
        else:
            save_nifti(target, image[:, :, None], affine=_slice_affine(affine, axis_index, k))
        written.append(target)
    return written
