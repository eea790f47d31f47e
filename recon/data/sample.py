"""The embedded sample data (real MR images in ``data/``) and its fastMRI-format splits.

What ships in ``data/`` (see ``data/README.md`` for sources and licences):

* ``colin27_t1.nii.gz``: the MNI Colin27 T1 volume (one subject, 1 mm isotropic);
* ``dipy_t1_coronal_slice.nii.gz`` and ``dipy_b0_10slices.nii.gz``: a T1 slice and ten
  b=0 diffusion slices of other subjects (from dipy), for held-out tests;
* ``fastmri/sample_val_multicoil.h5``: three simulated 8-coil slices of the validation slab
  in fastMRI format, for demos and quick checks.

Splits are axial slabs of Colin27 separated by 5 mm gaps, so no anatomy is shared:

==============  ==========================================  ========================
split           source (z index = mm from the bottom slice)  volumes x slices
==============  ==========================================  ========================
train           Colin27 z 8-27, 48-67, 88-107, 128-147       4 x 20
val             Colin27 z 33-42, 113-122                     2 x 10
test            Colin27 z 73-82, 153-162                     2 x 10
test_heldout    dipy T1 coronal slice; dipy b0 (10 slices)   2 (other subjects)
==============  ==========================================  ========================

The fastMRI-format files of a split are simulated (:mod:`recon.data.simulate`) on first
use into a cache folder - ``$RECON_CACHE`` or ``~/.cache/recon``, never the working
directory - deterministically (fixed seeds), and reused afterwards.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recon.data.io import atomic_folder, data_files, load_nifti
from recon.data.simulate import SimulationConfig, name_seed, nifti_slices, simulate_multicoil, write_simulated
from recon.ops._checks import check_challenge
from recon.preprocess.skullstrip import data_dir  # the one home of the rule (preprocess may not import data)

__all__ = [
    "SPLITS",
    "SAMPLE_CONFIG",
    "data_dir",
    "cache_dir",
    "load_embedded_volume",
    "sample_file",
    "sample_files",
    "sample_dir",
    "split_volumes",
]

#: bump when the simulation of the splits changes, so stale caches are not reused
DATA_VERSION = "v1"

#: simulation parameters of every generated split file (and of the committed sample)
SAMPLE_CONFIG = SimulationConfig(num_coils=8, snr=40.0, coil_radius=1.5, acquisition="AXT1")


@dataclass(frozen=True)
class SplitVolume:
    """One volume of a split: ``slices`` of ``source`` cut along ``axis``.

    Attributes:
        name: output file stem.
        source: file name in ``data/``.
        axis: slicing axis of the NIfTI volume.
        start: first slice index (inclusive).
        stop: last slice index (exclusive).
        acquisition: ``acquisition`` attribute of the file.
    """

    name: str
    source: str
    axis: int
    start: int
    stop: int
    acquisition: str = "AXT1"


def _colin(start: int, stop: int) -> SplitVolume:
    return SplitVolume(f"colin27_t1_z{start:03d}-{stop - 1:03d}", "colin27_t1.nii.gz", 2, start, stop)


SPLITS: dict[str, tuple[SplitVolume, ...]] = {
    "train": tuple(_colin(a, a + 20) for a in (8, 48, 88, 128)),
    "val": (_colin(33, 43), _colin(113, 123)),
    "test": (_colin(73, 83), _colin(153, 163)),
    "test_heldout": (
        SplitVolume("dipy_t1_coronal", "dipy_t1_coronal_slice.nii.gz", 2, 0, 1, "CORT1"),
        SplitVolume("dipy_b0_axial", "dipy_b0_10slices.nii.gz", 2, 0, 10, "AXB0"),
    ),
}

#: the committed sample file: three slices from the middle of the second validation slab
SAMPLE_FILE = Path("fastmri") / "sample_val_multicoil.h5"
SAMPLE_SLICES = (117, 120)


def cache_dir() -> Path:
    """Where generated files go: ``$RECON_CACHE`` or ``~/.cache/recon`` (never the cwd)."""
    env = os.environ.get("RECON_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "recon"


def load_embedded_volume(source: str) -> tuple[np.ndarray, tuple[float, ...]]:
    """Load an embedded NIfTI volume from ``data/``: ``(volume float32, voxel size mm)``."""
    volume, _, zooms = load_nifti(data_dir() / source)
    return volume, zooms


def _check_split(split: str, challenge: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    check_challenge(challenge)


def split_volumes(split: str) -> tuple[SplitVolume, ...]:
    """The volumes that make up ``split`` (see :data:`SPLITS`)."""
    _check_split(split, "multicoil")
    return SPLITS[split]


def simulate_split_volume(volume: SplitVolume, path: Path, challenge: str = "multicoil") -> Path:
    """Simulate one split volume into ``path`` with :data:`SAMPLE_CONFIG` and a fixed seed."""
    data, zooms = load_embedded_volume(volume.source)
    images = nifti_slices(data, axis=volume.axis, slices=range(volume.start, volume.stop))
    sim = simulate_multicoil(images, SAMPLE_CONFIG, seed=name_seed(volume.name))
    in_plane = [z for d, z in enumerate(zooms) if d != volume.axis]
    return write_simulated(
        path,
        sim,
        challenge=challenge,
        acquisition=volume.acquisition,
        patient_id=volume.source.split(".")[0],
        voxel_size=(in_plane[1], in_plane[0], zooms[volume.axis]),
    )


def _split_key(split: str, challenge: str) -> str:
    """Short hash of everything a split's files depend on, so a changed definition or
    simulation never silently reuses files generated by an older one."""
    text = repr((DATA_VERSION, SPLITS[split], SAMPLE_CONFIG, challenge))
    return f"{zlib.crc32(text.encode()):08x}"


def sample_dir(split: str = "val", challenge: str = "multicoil", cache: str | os.PathLike | None = None) -> Path:
    """The folder of a split's fastMRI-format files, generated on first use.

    Generation writes into a temporary folder next to the destination and renames it
    into place, so concurrent first uses and interruptions never leave a partial split.

    Args:
        split: ``"train"``, ``"val"``, ``"test"`` or ``"test_heldout"``.
        challenge: ``"multicoil"`` or ``"singlecoil"``.
        cache: cache root (default :func:`cache_dir`).

    Returns:
        A folder to give :class:`recon.data.SliceDataset`.
    """
    _check_split(split, challenge)
    root = Path(cache) if cache is not None else cache_dir()
    final = root / f"data-{DATA_VERSION}-{_split_key(split, challenge)}" / challenge / split
    if final.is_dir():
        return final
    with atomic_folder(final) as tmp:
        for volume in SPLITS[split]:
            simulate_split_volume(volume, tmp / f"{volume.name}.h5", challenge)
    return final


def sample_files(split: str = "val", challenge: str = "multicoil", cache: str | os.PathLike | None = None) -> list[Path]:
    """The fastMRI-format files of a split (sorted), generated on first use.

    Example:
        >>> from recon.data import SliceDataset, sample_files
        >>> files = sample_files("val")
        >>> dataset = SliceDataset(files[0].parent, challenge="multicoil")
    """
    folder = sample_dir(split, challenge, cache)
    return data_files(folder, (".h5",))


def sample_file(split: str = "val", challenge: str = "multicoil") -> Path:
    """One fastMRI-format sample file.

    For ``split="val", challenge="multicoil"`` this is the committed file
    ``data/fastmri/sample_val_multicoil.h5`` (3 slices, 8 coils, 224 x 192; nothing is
    generated); otherwise the first file of :func:`sample_files`.
    """
    _check_split(split, challenge)
    if split == "val" and challenge == "multicoil":
        path = data_dir() / SAMPLE_FILE
        if not path.is_file():
            raise FileNotFoundError(f"the committed sample file is missing: {path}")
        return path
    return sample_files(split, challenge)[0]
