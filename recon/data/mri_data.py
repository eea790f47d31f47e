"""fastMRI HDF5 files as a slice dataset, and a volume-aware sampler for distributed runs.

:class:`SliceDataset` returns the same samples, in the same order, with the same attrs as
``fastmri.data.SliceDataset``. What differs is what fastMRI gets wrong in practice:

* files are validated when the dataset is built, and a bad file raises
  :class:`DataFileError` naming the file and the problem;
* subsets are drawn from an explicit ``seed`` (``random.Random(seed)``), never the global RNG;
* the metadata cache lives only at a path the caller names, is keyed by file size and
  modification time (a changed file is re-read), and is written atomically;
* no h5py handle is ever stored on the dataset: each ``__getitem__`` opens and closes its
  file, so a dataset pickles cleanly into DataLoader workers and memory stays flat.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import random
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from recon.data.header import HeaderError, parse_ismrmrd_header
from recon.data.io import atomic_path, data_files
from recon.ops._checks import check_challenge

__all__ = ["DataFileError", "FastMRIRawDataSample", "SliceDataset", "VolumeSampler", "read_file_metadata"]

logger = logging.getLogger(__name__)

_H5_SUFFIXES = (".h5", ".hdf5", ".hdf")
_CACHE_VERSION = 1


class DataFileError(ValueError):
    """A data file is unreadable or does not follow the fastMRI schema.

    Attributes:
        fname: the offending file.
    """

    def __init__(self, fname: str | os.PathLike, problem: str) -> None:
        self.fname = Path(fname)
        super().__init__(f"{fname}: {problem}")


class FastMRIRawDataSample(NamedTuple):
    """One slice of one file: ``(fname, slice_ind, metadata)`` as in fastMRI."""

    fname: Path
    slice_ind: int
    metadata: dict[str, Any]


def _expected_kspace_ndim(challenge: str) -> int:
    return 4 if challenge == "multicoil" else 3


def read_file_metadata(fname: str | os.PathLike, challenge: str = "multicoil") -> tuple[dict[str, Any], int]:
    """Validate a fastMRI file and return ``(metadata, num_slices)``.

    ``metadata`` holds ``padding_left``, ``padding_right``, ``encoding_size`` and
    ``recon_size`` derived from the ISMRMRD header, then the file's own attributes, exactly
    as fastMRI's ``SliceDataset._retrieve_metadata`` builds it.

    Args:
        fname: the HDF5 file.
        challenge: ``"multicoil"`` (kspace ``(slices, coils, H, W)``) or ``"singlecoil"``
            (kspace ``(slices, H, W)``).

    Raises:
        DataFileError: the file is not readable HDF5 (truncated, corrupt), or ``kspace`` /
            ``ismrmrd_header`` is missing, has the wrong dtype or rank, the header lacks a
            field, or a target's shape does not match ``kspace``.
    """
    fname = Path(fname)
    try:
        hf = h5py.File(fname, "r")
    except FileNotFoundError as err:
        raise DataFileError(fname, "no such file") from err
    except OSError as err:
        raise DataFileError(fname, f"not a readable HDF5 file (truncated or corrupt?): {err}") from err
    with hf:
        if "kspace" not in hf:
            raise DataFileError(fname, f"missing dataset 'kspace' (found: {sorted(hf.keys())})")
        kspace = hf["kspace"]
        if not isinstance(kspace, h5py.Dataset):
            raise DataFileError(fname, "'kspace' must be a dataset, found a group")
        if kspace.dtype.kind != "c":
            raise DataFileError(fname, f"'kspace' must be complex (complex64), got dtype {kspace.dtype}")
        ndim = _expected_kspace_ndim(challenge)
        if kspace.ndim != ndim:
            layout = "(slices, coils, H, W)" if ndim == 4 else "(slices, H, W)"
            raise DataFileError(
                fname, f"'kspace' must be {layout} for challenge={challenge!r}, got shape {kspace.shape}"
            )
        num_slices = kspace.shape[0]
        if "ismrmrd_header" not in hf:
            raise DataFileError(fname, "missing dataset 'ismrmrd_header' (the ISMRMRD XML header)")
        try:
            info = parse_ismrmrd_header(hf["ismrmrd_header"][()])
        except HeaderError as err:
            raise DataFileError(fname, f"bad ismrmrd_header: {err}") from err
        for key in ("reconstruction_rss", "reconstruction_esc"):
            if key in hf:
                target = hf[key]
                if not isinstance(target, h5py.Dataset) or target.ndim != 3 or target.shape[0] != num_slices:
                    raise DataFileError(
                        fname,
                        f"'{key}' must be ({num_slices}, h, w) to match 'kspace' {kspace.shape}, "
                        f"got {getattr(target, 'shape', 'a group')}",
                    )
        if "mask" in hf and hf["mask"].shape != (kspace.shape[-1],):
            raise DataFileError(
                fname, f"'mask' must have shape ({kspace.shape[-1]},) like kspace's columns, got {hf['mask'].shape}"
            )
        metadata = {**info.as_metadata(), **hf.attrs}
    return metadata, num_slices


def _read_slice(dataset: h5py.Dataset, index: int) -> np.ndarray:
    """``dataset[index]`` read straight into an uninitialised array.

    h5py's ``__getitem__`` allocates its output with ``numpy.zeros``; for a k-space slice
    (tens of MB) zeroing or page-faulting fresh memory costs a noticeable share of the read,
    while ``np.empty`` reuses freed heap memory. Same values, same dtype.
    """
    out = np.empty(dataset.shape[1:], dtype=dataset.dtype)
    dataset.read_direct(out, np.s_[index])
    return out


def _as_text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, (bytes, np.bytes_)) else str(value)


def _list_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(f"root must be a folder of fastMRI .h5 files or one file, got {str(root)!r} (not found)")
    files = data_files(root, _H5_SUFFIXES)  # hidden names (temporaries of killed writers) skipped
    if not files:
        raise ValueError(f"root {str(root)!r} contains no HDF5 files (*.h5, *.hdf5)")
    return files


def _file_key(fname: Path) -> tuple[str, int, int]:
    stat = fname.stat()
    return (str(fname.resolve()), stat.st_size, stat.st_mtime_ns)


class SliceDataset(Dataset):
    """Slices of fastMRI HDF5 files, read lazily, one file opening per sample.

    With ``transform=None`` a sample is ``(kspace, mask, target, attrs, fname, slice_num)``:
    ``kspace`` complex64 ``(coils, H, W)`` (multicoil) or ``(H, W)`` (singlecoil); ``mask``
    the file's ``mask`` dataset or None; ``target`` the slice of ``reconstruction_rss``
    (multicoil) / ``reconstruction_esc`` (singlecoil) or None; ``attrs`` the file's
    attributes plus ``padding_left``, ``padding_right``, ``encoding_size``, ``recon_size``;
    ``fname`` the file's name (no folder). With a transform, the sample is
    ``transform(kspace, mask, target, attrs, fname, slice_num)`` - or
    ``transform.call_owned(...)`` when the transform has that method, telling it the arrays
    were freshly read and may be overwritten (recon's transforms then mask in place).

    Args:
        root: a folder of ``.h5`` files, or a single file. Hidden files (a leading ``.``, such
            as the temporaries a killed writer leaves) are not data and are skipped.
        challenge: ``"multicoil"`` or ``"singlecoil"``.
        transform: callable applied to each raw sample.
        sample_rate: fraction of slices to keep (drawn with ``seed``).
        volume_sample_rate: fraction of volumes to keep (drawn with ``seed``); not with
            ``sample_rate``.
        seed: seed of the subset draw. ``random.seed(s)`` followed by fastMRI's dataset gives
            the same subset as ``seed=s`` here.
        acquisitions: keep only files whose ``acquisition`` attribute is in this set (e.g.
            ``{"AXT2", "CORPD_FBK"}``).
        num_cols: keep only slices whose encoded width is in this set (fastMRI's option).
        raw_sample_filter: keep only raw samples for which this returns True.
        metadata_cache: a pickle file caching the per-file metadata, keyed by path, size and
            mtime. Nothing is cached when None. Never defaults to the working directory.

    Raises:
        ValueError: bad challenge or rates, an empty folder, or (as :class:`DataFileError`)
            a file that is not fastMRI-format.

    Example:
        >>> from recon.data import SliceDataset, sample_file
        >>> ds = SliceDataset(sample_file(), challenge="multicoil")
        >>> kspace, mask, target, attrs, fname, slice_num = ds[0]
    """

    def __init__(
        self,
        root: str | os.PathLike,
        challenge: str,
        transform: Callable | None = None,
        *,
        sample_rate: float | None = None,
        volume_sample_rate: float | None = None,
        seed: int = 0,
        acquisitions: Sequence[str] | None = None,
        num_cols: Sequence[int] | None = None,
        raw_sample_filter: Callable[[FastMRIRawDataSample], bool] | None = None,
        metadata_cache: str | os.PathLike | None = None,
    ) -> None:
        check_challenge(challenge)
        if sample_rate is not None and volume_sample_rate is not None:
            raise ValueError(
                "set sample_rate (by slice) or volume_sample_rate (by volume), not both; "
                f"got sample_rate={sample_rate}, volume_sample_rate={volume_sample_rate}"
            )
        for name, rate in (("sample_rate", sample_rate), ("volume_sample_rate", volume_sample_rate)):
            if rate is not None and not (isinstance(rate, (int, float)) and 0.0 < rate <= 1.0):
                raise ValueError(f"{name} must be a number in (0, 1], got {rate!r}")
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise TypeError(f"seed must be an int, got {type(seed).__name__} {seed!r}")
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable or None, got {type(transform).__name__}")
        if acquisitions is not None and isinstance(acquisitions, str):
            raise TypeError(f"acquisitions must be a collection of strings, got the string {acquisitions!r}")

        self.root = Path(root)
        self.challenge = challenge
        self.transform = transform
        self.recons_key = "reconstruction_esc" if challenge == "singlecoil" else "reconstruction_rss"
        self.metadata_cache = None if metadata_cache is None else Path(metadata_cache)
        self._present: dict[Path, tuple[bool, bool]] = {}  # (has mask, has target) per file

        files = _list_files(self.root)
        per_file = self._load_metadata(files)
        raw_samples: list[FastMRIRawDataSample] = []
        for fname, (metadata, num_slices) in zip(files, per_file):
            if acquisitions is not None and _as_text(metadata.get("acquisition")) not in set(acquisitions):
                continue
            for slice_ind in range(num_slices):
                raw_sample = FastMRIRawDataSample(fname, slice_ind, metadata)
                if raw_sample_filter is None or raw_sample_filter(raw_sample):
                    raw_samples.append(raw_sample)

        rng = random.Random(int(seed))
        if sample_rate is not None and sample_rate < 1.0:
            rng.shuffle(raw_samples)
            raw_samples = raw_samples[: round(len(raw_samples) * sample_rate)]
        elif volume_sample_rate is not None and volume_sample_rate < 1.0:
            vol_names = sorted({sample.fname.stem for sample in raw_samples})
            rng.shuffle(vol_names)
            keep = set(vol_names[: round(len(vol_names) * volume_sample_rate)])
            raw_samples = [sample for sample in raw_samples if sample.fname.stem in keep]
        if num_cols:
            raw_samples = [s for s in raw_samples if s.metadata["encoding_size"][1] in num_cols]
        self.raw_samples = raw_samples

    # -- metadata, with an optional cache at a caller-chosen path -------------------------
    def _load_metadata(self, files: list[Path]) -> list[tuple[dict[str, Any], int]]:
        cache: dict = {}
        if self.metadata_cache is not None and self.metadata_cache.is_file():
            try:
                with open(self.metadata_cache, "rb") as f:
                    loaded = pickle.load(f)
                if isinstance(loaded, dict) and loaded.get("version") == _CACHE_VERSION:
                    cache = loaded["entries"]
            except (OSError, pickle.UnpicklingError, EOFError, KeyError, AttributeError) as err:
                logger.warning("ignoring unreadable metadata cache %s (%s)", self.metadata_cache, err)
        results, changed = [], False
        for fname in files:
            key = (*_file_key(fname), self.challenge)
            if key in cache:
                results.append(cache[key])
                continue
            entry = read_file_metadata(fname, self.challenge)
            cache[key] = entry
            results.append(entry)
            changed = True
        if self.metadata_cache is not None and changed:
            self.metadata_cache.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(self.metadata_cache) as tmp:
                with open(tmp, "wb") as f:
                    pickle.dump({"version": _CACHE_VERSION, "entries": cache}, f)
            logger.info("saved dataset metadata cache to %s", self.metadata_cache)
        return results

    def __len__(self) -> int:
        return len(self.raw_samples)

    def __getitem__(self, i: int):
        fname, dataslice, metadata = self.raw_samples[i]
        try:
            with h5py.File(fname, "r") as hf:
                present = self._present.get(fname)
                if present is None:  # looked up once per file and process
                    present = self._present[fname] = ("mask" in hf, self.recons_key in hf)
                kspace = _read_slice(hf["kspace"], dataslice)
                mask = np.asarray(hf["mask"]) if present[0] else None
                target = _read_slice(hf[self.recons_key], dataslice) if present[1] else None
        except (OSError, KeyError) as err:
            raise DataFileError(fname, f"cannot read slice {dataslice} ({type(err).__name__}: {err})") from err
        # fastMRI re-reads the file attributes here and updates them with ``metadata``, which
        # already holds them (read when the dataset was indexed): a copy is the same dict.
        attrs = dict(metadata)
        if self.transform is None:
            return (kspace, mask, target, attrs, fname.name, dataslice)
        # the arrays were just read and belong to nobody else: a transform that can reuse
        # them (recon's, via ``call_owned``) may overwrite them instead of copying
        apply = getattr(self.transform, "call_owned", self.transform)
        return apply(kspace, mask, target, attrs, fname.name, dataslice)


class VolumeSampler(Sampler[int]):
    """Distributed sampler that keeps volumes whole and gives every rank as many samples.

    Volumes (files) are dealt to ranks so that the per-rank slice counts are as even as
    possible (largest volume first, to the least-loaded rank; ties by rank). Each rank then
    pads its index list by repeating its own samples up to the largest rank's count, so all
    ranks see the same number of samples - hence the same number of batches for any batch
    size - and none waits forever at the end of an epoch. Shuffling uses
    ``torch.Generator().manual_seed(seed + epoch)``, identical on every rank.

    Args:
        dataset: a dataset with ``raw_samples`` whose first field is the file name
            (:class:`SliceDataset`, fastMRI's datasets).
        num_replicas: world size; default ``torch.distributed.get_world_size()``.
        rank: this process's rank; default ``torch.distributed.get_rank()``.
        shuffle: shuffle this rank's indices each epoch.
        seed: shuffle seed, the same on every rank.

    Raises:
        ValueError: rank out of range, or fewer volumes than ranks.
    """

    def __init__(
        self,
        dataset: Any,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
    ) -> None:
        if num_replicas is None or rank is None:
            if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
                raise RuntimeError(
                    "num_replicas and rank are needed when torch.distributed is not initialised"
                )
            num_replicas = torch.distributed.get_world_size() if num_replicas is None else num_replicas
            rank = torch.distributed.get_rank() if rank is None else rank
        if not isinstance(num_replicas, int) or num_replicas < 1:
            raise ValueError(f"num_replicas must be a positive int, got {num_replicas!r}")
        if not isinstance(rank, int) or not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, {num_replicas}), got {rank!r}")
        raw_samples = getattr(dataset, "raw_samples", None)
        if raw_samples is None:
            raise TypeError(f"dataset must have raw_samples (e.g. SliceDataset), got {type(dataset).__name__}")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.shuffle = shuffle
        self.seed = int(seed)
        self.epoch = 0

        by_volume: dict[str, list[int]] = {}
        for i, raw_sample in enumerate(raw_samples):
            by_volume.setdefault(str(raw_sample[0]), []).append(i)
        if len(by_volume) < num_replicas:
            raise ValueError(
                f"need at least one volume per rank: {len(by_volume)} volumes for num_replicas={num_replicas}"
            )
        loads = [0] * num_replicas
        self.volumes_per_rank: list[list[str]] = [[] for _ in range(num_replicas)]
        for name in sorted(by_volume, key=lambda n: (-len(by_volume[n]), n)):
            target = min(range(num_replicas), key=lambda r: (loads[r], r))
            self.volumes_per_rank[target].append(name)
            loads[target] += len(by_volume[name])
        self.indices = sorted(i for name in self.volumes_per_rank[rank] for i in by_volume[name])
        self.num_samples = max(loads)
        self.total_size = self.num_samples * num_replicas

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            generator = torch.Generator()
            generator.manual_seed(self.seed + self.epoch)
            order = torch.randperm(len(self.indices), generator=generator).tolist()
            indices = [self.indices[i] for i in order]
        else:
            indices = list(self.indices)
        repeats = math.ceil(self.num_samples / len(indices))
        return iter((indices * repeats)[: self.num_samples])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch, which changes the shuffle (call it on every rank)."""
        self.epoch = int(epoch)
