"""A training corpus in fastMRI format: phantom subjects x contrasts x scanners, real images,
and a held-out test split of sources never used for training.

:func:`build_corpus` writes three splits of multi-coil fastMRI HDF5 files (``train``,
``val``, ``test_heldout``) with a manifest ``corpus.json`` (every file's source, contrast,
field strength, simulation parameters and seed):

==============  ======================================================================
split           volumes
==============  ======================================================================
train           ``num_train_subjects`` phantom subjects (:mod:`recon.data.phantom`: new
                anatomies from the MNI152 and Colin27 tissue maps), each imaged with one
                of ``contrasts`` at 1.5 or 3 T, sliced in ``orientations`` (default axial
                only; subject ``i`` gets ``orientations[i % len]``); plus the Colin27
                training slabs of :data:`recon.data.sample.SPLITS` (real T1 images, axial)
val             ``num_val_subjects`` other phantom subjects (other seeds, the same
                orientation cycle), plus the Colin27 validation slabs
test_heldout    sources never used for training: the dipy T1 (coronal, another subject)
                and b0 (T2-weighted EPI, another subject) images, and phantom subjects in a
                contrast never trained on (``heldout_contrasts``, default inversion
                recovery) cut coronally and sagittally (new orientations when training is
                axial only, the default ``orientations``)
==============  ======================================================================

What is truly held out, honestly: the dipy images are other people and the b0 another
contrast; the held-out phantom volumes are new deformations of the same two template
anatomies, so they test contrast and orientation (orientation only while ``orientations`` is
axial only), not anatomy. No other body parts ship
in any package we can reach, so none are in the corpus.

Every training and validation volume gets its own scanner (:func:`random_simulation_config`):
4-32 coils on a rotated, shifted ring of random radius, smooth and B0-like phase, SNR,
correlated noise, readout oversampling 1x or 2x (as fastMRI's raw data, cropped for the
target), either phase-encoding direction, and a matrix of ``matrix_sizes``. The held-out
split uses one fixed 8-coil scanner (``heldout_simulation``), like the embedded
``test_heldout`` split, so scores compare with the published table.

Generation is deterministic (each volume's seed derives from ``config.seed``, the split
and its index), cached under a key that hashes the whole :class:`CorpusConfig` (like
:func:`recon.data.sample_dir`), and atomic: each split is written to a temporary folder
and renamed into place.

Example:
    >>> from recon.data.corpus import CorpusConfig, build_corpus
    >>> config = CorpusConfig.toy()                   # a few small volumes, seconds
    >>> folders = build_corpus(config, "/tmp/corpus")  # doctest: +SKIP
    >>> folders["train"]                                # doctest: +SKIP
    PosixPath('/tmp/corpus/corpus-.../train')
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import h5py
import numpy as np

from recon.data.io import atomic_folder, atomic_path, load_nifti
from recon.data.phantom import FIELD_STRENGTHS, SEQUENCES, Subject, sequence_defaults
from recon.data.sample import SPLITS, SplitVolume, cache_dir, data_dir
from recon.data.simulate import SimulationConfig, nifti_slices, simulate_multicoil, write_simulated

__all__ = [
    "CORPUS_VERSION",
    "CORPUS_SPLITS",
    "CorpusConfig",
    "random_simulation_config",
    "build_corpus",
    "corpus_dir",
    "check_training_folder",
]

logger = logging.getLogger(__name__)

#: bump when the generation changes, so that stale caches are not reused
CORPUS_VERSION = "c2"

#: the splits :func:`build_corpus` writes
CORPUS_SPLITS = ("train", "val", "test_heldout")

_SPLIT_IDS = {"train": 1, "val": 2, "test_heldout": 3}


@dataclass(frozen=True)
class CorpusConfig:
    """What the corpus holds.

    Attributes:
        num_train_subjects: phantom volumes in ``train`` (one subject each).
        num_val_subjects: phantom volumes in ``val``.
        num_heldout_subjects: phantom volumes in ``test_heldout``.
        slices_per_volume: slices per phantom volume (``slice_spacing`` mm apart).
        slice_spacing: mm between phantom slices.
        contrasts: training / validation contrasts (:data:`recon.data.phantom.SEQUENCES`).
        heldout_contrasts: contrasts only in ``test_heldout`` (must not meet ``contrasts``).
        field_strengths: drawn per volume.
        sequence_jitter: relative jitter of TR, TE, TI and flip angle around the defaults.
        matrix_sizes: reconSpace ``(H, W)`` choices; the FOV is drawn from ``fov_mm``.
        fov_mm: ``(low, high)`` field of view in mm.
        coil_counts: coil numbers drawn from.
        snr_range: ``(low, high)`` SNR, drawn log-uniformly.
        readout_oversampling: choices (2 = fastMRI's raw data).
        include_real: add the Colin27 train / val slabs (real T1 images) with random scanners.
        real_slice_step: keep every this many slices of the Colin27 slabs.
        heldout_simulation: the fixed scanner of ``test_heldout``.
        seed: the corpus seed.
        orientations: slice orientations of the ``train`` / ``val`` phantom volumes, cycled
            over the subjects (``"axial"``, ``"coronal"``, ``"sagittal"``; default axial only).
            Axial slabs start at a random height; coronal and sagittal ones at a random
            position in the middle half of the head (``test_heldout`` keeps its central
            coronal / sagittal slabs whatever this is). Left out of :meth:`key` while it is
            the default, so corpora built before the field existed keep their folders.
    """

    num_train_subjects: int = 48
    num_val_subjects: int = 6
    num_heldout_subjects: int = 6
    slices_per_volume: int = 8
    slice_spacing: float = 5.0
    contrasts: tuple[str, ...] = ("t1w", "t2w", "pd", "flair", "gre")
    heldout_contrasts: tuple[str, ...] = ("ir",)
    field_strengths: tuple[float, ...] = (1.5, 3.0)
    sequence_jitter: float = 0.1
    matrix_sizes: tuple[tuple[int, int], ...] = ((192, 192), (224, 224), (256, 256), (256, 224), (224, 256))
    fov_mm: tuple[float, float] = (210.0, 250.0)
    coil_counts: tuple[int, ...] = (4, 6, 8, 12, 16, 20, 24, 32)
    snr_range: tuple[float, float] = (15.0, 60.0)
    readout_oversampling: tuple[int, ...] = (1, 2)
    include_real: bool = True
    real_slice_step: int = 2
    heldout_simulation: SimulationConfig = field(
        default_factory=lambda: SimulationConfig(num_coils=8, snr=40.0, coil_radius=1.5, acquisition="HELDOUT")
    )
    seed: int = 0
    orientations: tuple[str, ...] = field(default=("axial",), repr=False)

    def __post_init__(self) -> None:
        def positive_int(name: str, minimum: int = 1) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
                raise ValueError(f"CorpusConfig.{name} must be an int >= {minimum}, got {value!r}")

        for name in ("slices_per_volume", "real_slice_step"):
            positive_int(name, 1)
        for name in ("num_train_subjects", "num_val_subjects", "num_heldout_subjects"):
            positive_int(name, 0)
        for name in ("contrasts", "heldout_contrasts"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(c in SEQUENCES for c in value):
                raise ValueError(f"CorpusConfig.{name} must be a tuple of {list(SEQUENCES)}, got {value!r}")
        if not self.contrasts:
            raise ValueError("CorpusConfig.contrasts must not be empty")
        if set(self.contrasts) & set(self.heldout_contrasts):
            raise ValueError(
                "CorpusConfig.heldout_contrasts must not appear in contrasts (they would not be held out), "
                f"got {sorted(set(self.contrasts) & set(self.heldout_contrasts))} in both"
            )
        if not self.field_strengths or not all(f in FIELD_STRENGTHS for f in self.field_strengths):
            raise ValueError(f"CorpusConfig.field_strengths must be a non-empty tuple of {list(FIELD_STRENGTHS)}, got {self.field_strengths!r}")
        if not 0 <= self.sequence_jitter < 0.5:
            raise ValueError(f"CorpusConfig.sequence_jitter must be in [0, 0.5), got {self.sequence_jitter!r}")
        if not self.matrix_sizes or not all(len(m) == 2 and min(m) >= 16 for m in self.matrix_sizes):
            raise ValueError(f"CorpusConfig.matrix_sizes must be (H, W) pairs >= 16, got {self.matrix_sizes!r}")
        if not 50.0 <= self.fov_mm[0] <= self.fov_mm[1]:
            raise ValueError(f"CorpusConfig.fov_mm must be (low, high) with 50 <= low <= high, got {self.fov_mm!r}")
        if not self.coil_counts or not all(isinstance(c, int) and c >= 1 for c in self.coil_counts):
            raise ValueError(f"CorpusConfig.coil_counts must be positive ints, got {self.coil_counts!r}")
        if not 0 < self.snr_range[0] <= self.snr_range[1]:
            raise ValueError(f"CorpusConfig.snr_range must be (low, high) with 0 < low <= high, got {self.snr_range!r}")
        if not self.readout_oversampling or not all(isinstance(r, int) and r >= 1 for r in self.readout_oversampling):
            raise ValueError(f"CorpusConfig.readout_oversampling must be ints >= 1, got {self.readout_oversampling!r}")
        if not self.slice_spacing > 0:
            raise ValueError(f"CorpusConfig.slice_spacing must be positive (mm), got {self.slice_spacing!r}")
        value = self.orientations
        if (isinstance(value, str) or not isinstance(value, (tuple, list)) or not value
                or not all(isinstance(o, str) and o in _AXIS for o in value) or len(set(value)) != len(value)):
            raise ValueError(
                f"CorpusConfig.orientations must be a non-empty tuple of distinct {list(_AXIS)}, got {value!r}"
            )
        object.__setattr__(self, "orientations", tuple(value))

    @classmethod
    def toy(cls, **changes: Any) -> "CorpusConfig":
        """A small corpus for tests and CPU smoke runs (seconds to build)."""
        base = dict(
            num_train_subjects=4, num_val_subjects=1, num_heldout_subjects=1, slices_per_volume=2,
            matrix_sizes=((64, 64), (64, 48)), fov_mm=(220.0, 240.0), coil_counts=(4, 6),
            include_real=False,
        )
        base.update(changes)
        return cls(**base)

    def key(self) -> str:
        """Short hash of everything the corpus depends on (the cache folder's name).

        ``orientations`` enters only when it is not the default (axial only), so the key of
        every config that existed before the field is unchanged.
        """
        text = repr((CORPUS_VERSION, self))  # the dataclass repr leaves orientations out
        if self.orientations != ("axial",):
            text += repr(("orientations", self.orientations))
        return f"{zlib.crc32(text.encode()):08x}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible description."""
        out = dataclasses.asdict(self)
        out["heldout_simulation"] = dataclasses.asdict(self.heldout_simulation)
        return out


def random_simulation_config(
    rng: np.random.Generator,
    *,
    coil_counts: Sequence[int] = (4, 6, 8, 12, 16, 20, 24, 32),
    snr_range: tuple[float, float] = (15.0, 60.0),
    readout_oversampling: Sequence[int] = (1, 2),
    matrix_size: tuple[int, int] | None = None,
    acquisition: str = "SIM",
) -> SimulationConfig:
    """A random scanner: coils, ring geometry, phase, noise, oversampling, phase encoding.

    Draws: the coil count from ``coil_counts``; ring radius U(1.25, 2.0) of the half FOV,
    rotation U(0, 2 pi), centre offset U(-0.15, 0.15) per axis; smooth phase of order 1-3 and
    peak U(0, pi); with probability 1/2 a B0-like phase of peak U(0.5, 3) rad; SNR
    log-uniform in ``snr_range``; neighbouring-coil noise correlation U(0, 0.4); readout
    oversampling from ``readout_oversampling``; phase encoding along either image axis.

    Args:
        rng: numpy Generator.
        coil_counts, snr_range, readout_oversampling: ranges (see above).
        matrix_size: reconSpace ``(H, W)`` or None.
        acquisition: the files' ``acquisition`` attribute.

    Returns:
        A :class:`recon.data.SimulationConfig`.
    """
    return SimulationConfig(
        num_coils=int(rng.choice(np.asarray(coil_counts))),
        coil_radius=float(rng.uniform(1.25, 2.0)),
        coil_rotation=float(rng.uniform(0.0, 2 * np.pi)),
        coil_offset=(float(rng.uniform(-0.15, 0.15)), float(rng.uniform(-0.15, 0.15))),
        snr=float(np.exp(rng.uniform(np.log(snr_range[0]), np.log(snr_range[1])))),
        noise_correlation=float(rng.uniform(0.0, 0.4)),
        phase_amplitude=float(rng.uniform(0.0, np.pi)),
        phase_order=int(rng.integers(1, 4)),
        b0_amplitude=float(rng.uniform(0.5, 3.0)) if rng.random() < 0.5 else 0.0,
        readout_oversampling=int(rng.choice(np.asarray(readout_oversampling))),
        phase_encoding=str(rng.choice(["width", "height"])),
        matrix_size=None if matrix_size is None else (int(matrix_size[0]), int(matrix_size[1])),
        acquisition=acquisition,
    )


@dataclass(frozen=True)
class _Job:
    split: str
    index: int
    kind: str  # "phantom" or "real"
    contrast: str = ""
    orientation: str = "axial"
    real: SplitVolume | None = None


def _jobs(config: CorpusConfig, split: str) -> list[_Job]:
    jobs: list[_Job] = []
    orient = config.orientations
    if split == "train":
        jobs += [_Job(split, i, "phantom", orientation=orient[i % len(orient)]) for i in range(config.num_train_subjects)]
        if config.include_real:
            jobs += [_Job(split, len(jobs) + i, "real", real=v) for i, v in enumerate(SPLITS["train"])]
    elif split == "val":
        jobs += [_Job(split, i, "phantom", orientation=orient[i % len(orient)]) for i in range(config.num_val_subjects)]
        if config.include_real:
            jobs += [_Job(split, len(jobs) + i, "real", real=v) for i, v in enumerate(SPLITS["val"])]
    else:
        jobs += [_Job(split, i, "real", real=v) for i, v in enumerate(SPLITS["test_heldout"])]
        if config.heldout_contrasts:
            start = len(jobs)
            jobs += [
                _Job(split, start + i, "phantom", contrast=config.heldout_contrasts[i % len(config.heldout_contrasts)],
                     orientation=("coronal", "sagittal")[i % 2])
                for i in range(config.num_heldout_subjects)
            ]
    return jobs


def _sequence(config: CorpusConfig, contrast: str, rng: np.random.Generator) -> dict[str, float]:
    params = sequence_defaults(contrast)
    jitter = config.sequence_jitter
    out = {k: float(v * rng.uniform(1 - jitter, 1 + jitter)) for k, v in params.items()}
    if "flip_angle" in out:
        out["flip_angle"] = min(out["flip_angle"], 180.0)
    if "ti" in out and contrast == "flair":
        out["ti"] = params["ti"] * float(rng.uniform(0.97, 1.03))  # keep CSF near its null
    for key in ("te", "ti"):
        if key in out and out[key] >= out["tr"]:
            out[key] = 0.5 * out["tr"]
    return out


_AXIS = {"axial": 2, "coronal": 1, "sagittal": 0}


def _phantom_volume(config: CorpusConfig, job: _Job, rng: np.random.Generator, seq: np.random.SeedSequence):
    heldout = job.split == "test_heldout"
    contrast = job.contrast or str(rng.choice(list(config.contrasts)))
    field_strength = float(rng.choice(np.asarray(config.field_strengths)))
    params = _sequence(config, contrast, rng)
    matrix = tuple(int(v) for v in config.matrix_sizes[int(rng.integers(len(config.matrix_sizes)))])
    fov = float(rng.uniform(*config.fov_mm))
    pixel = fov / max(matrix)
    axis = _AXIS[job.orientation]
    voxel = [pixel, pixel, pixel]
    voxel[axis] = config.slice_spacing
    # slab position: uniform over the upper 3/4 of the head along the slicing axis
    probe = Subject(seq, voxel_size=tuple(voxel), z_range=(0, 1)) if axis == 2 else None
    z_range = None
    if axis == 2:
        nz = probe.grid_shape[2]
        lo = int(0.3 * nz)
        hi = max(lo + 1, int(0.92 * nz) - config.slices_per_volume)
        start = int(rng.integers(lo, hi))
        z_range = (start, min(nz, start + config.slices_per_volume))
    subject = Subject(seq, voxel_size=tuple(voxel), z_range=z_range)
    image = subject.contrast(contrast, field_strength=field_strength, **params)
    volume = image.volume
    if axis != 2:
        n = volume.shape[axis]
        half = config.slices_per_volume // 2
        if heldout:
            start = n // 2 - half  # the central slab (the held-out split as it has always been)
        else:  # train / val: a random slab in the middle half of the head
            lo = max(0, int(0.25 * n))
            start = int(rng.integers(lo, max(lo + 1, int(0.75 * n) - config.slices_per_volume + 1)))
        idx = range(max(0, start), min(n, start + config.slices_per_volume))
        slices = nifti_slices(volume, axis=axis, slices=idx)
    else:
        slices = nifti_slices(volume, axis=2)
    orient = {"axial": "AX", "coronal": "COR", "sagittal": "SAG"}[job.orientation]
    acquisition = f"{orient}{contrast.upper()}"
    if heldout:
        sim_config = dataclasses.replace(config.heldout_simulation, matrix_size=matrix, acquisition=acquisition)
    else:
        sim_config = random_simulation_config(
            rng, coil_counts=config.coil_counts, snr_range=config.snr_range,
            readout_oversampling=config.readout_oversampling, matrix_size=matrix, acquisition=acquisition,
        )
    info = {
        "source": f"phantom:{subject.anatomy}",
        "contrast": contrast, "field_strength": field_strength, "sequence": params,
        "orientation": job.orientation, "fov_mm": fov, "deformed": True,
    }
    voxel_size = (pixel, pixel, config.slice_spacing)
    return slices, sim_config, voxel_size, acquisition, info


def _real_volume(config: CorpusConfig, job: _Job, rng: np.random.Generator):
    vol = job.real
    assert vol is not None
    data, _, zooms = load_nifti(data_dir() / vol.source)
    step = config.real_slice_step if job.split != "test_heldout" else 1
    slices = nifti_slices(data, axis=vol.axis, slices=range(vol.start, vol.stop, step))
    in_plane = [z for d, z in enumerate(zooms) if d != vol.axis]
    if job.split == "test_heldout":
        sim_config = dataclasses.replace(config.heldout_simulation, acquisition=vol.acquisition)
    else:
        sim_config = random_simulation_config(
            rng, coil_counts=config.coil_counts, snr_range=config.snr_range,
            readout_oversampling=config.readout_oversampling, acquisition=vol.acquisition,
        )
    info = {"source": f"real:{vol.source}", "slices": [vol.start, vol.stop, step], "contrast": vol.acquisition}
    return slices, sim_config, (in_plane[1], in_plane[0], zooms[vol.axis]), vol.acquisition, info


def _build_one(config: CorpusConfig, job: _Job, folder: Path) -> dict[str, Any]:
    seq = np.random.SeedSequence([config.seed, _SPLIT_IDS[job.split], job.index])
    subject_seq, draw_seq, sim_seq = seq.spawn(3)
    rng = np.random.default_rng(draw_seq)
    if job.kind == "phantom":
        slices, sim_config, voxel, acquisition, info = _phantom_volume(config, job, rng, subject_seq)
        name = f"{job.split}_{job.index:04d}_{info['source'].split(':')[1]}_{acquisition.lower()}"
    else:
        slices, sim_config, voxel, acquisition, info = _real_volume(config, job, rng)
        name = f"{job.split}_{job.index:04d}_{job.real.name}"
    sim = simulate_multicoil(slices, sim_config, seed=np.random.default_rng(sim_seq))
    path = write_simulated(
        folder / f"{name}.h5", sim, challenge="multicoil", acquisition=acquisition,
        patient_id=name, voxel_size=voxel,
    )
    sim_info = dataclasses.asdict(sim_config)
    return {"file": path.name, "volume_seed": [config.seed, _SPLIT_IDS[job.split], job.index], **info, "simulation": sim_info, "num_slices": int(sim.kspace.shape[0]),
            "kspace_shape": list(sim.kspace.shape[1:])}


def corpus_dir(config: CorpusConfig, root: str | os.PathLike | None = None) -> Path:
    """The folder a corpus is (or will be) built in: ``<root>/corpus-<version>-<config key>``
    (``root`` defaults to :func:`recon.data.cache_dir`)."""
    base = Path(root) if root is not None else cache_dir()
    return base / f"corpus-{CORPUS_VERSION}-{config.key()}"


def build_corpus(
    config: CorpusConfig = CorpusConfig(),
    root: str | os.PathLike | None = None,
    *,
    splits: Sequence[str] = CORPUS_SPLITS,
    progress: bool | None = None,
    num_workers: int = 0,
) -> dict[str, Path]:
    """Build (or reuse) the corpus splits; return ``{split: folder}``.

    A split whose folder exists is reused (its name hashes the config). Otherwise its files
    are written into a temporary folder next to it and renamed into place, with the
    split's manifest ``<split>.json`` (one record per file) written atomically beside it.

    Args:
        config: what to build.
        root: parent folder (default :func:`recon.data.cache_dir`).
        splits: which of :data:`CORPUS_SPLITS`.
        progress: tqdm bar over volumes (None: when stderr is a terminal).
        num_workers: worker processes (0: in this process).

    Returns:
        ``{split: folder of .h5 files}``, ready for :class:`recon.data.SliceDataset` or
        ``recon train --train-data``.

    Raises:
        ValueError: an unknown split, or ``num_workers`` < 0.
    """
    import sys

    from tqdm import tqdm

    if not isinstance(config, CorpusConfig):
        raise TypeError(f"config must be a CorpusConfig, got {type(config).__name__}")
    unknown = [s for s in splits if s not in CORPUS_SPLITS]
    if isinstance(splits, str) or unknown:
        raise ValueError(f"splits must be a sequence of {list(CORPUS_SPLITS)}, got {splits!r}")
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers must be an int >= 0, got {num_workers!r}")
    show = sys.stderr.isatty() if progress is None else bool(progress)
    top = corpus_dir(config, root)
    top.mkdir(parents=True, exist_ok=True)
    config_file = top / "corpus_config.json"
    if not config_file.exists():
        with atomic_path(config_file) as tmp:
            tmp.write_text(json.dumps(config.to_dict(), indent=2, sort_keys=True, default=str) + "\n")
    out: dict[str, Path] = {}
    for split in splits:
        final = top / split
        out[split] = final
        if final.is_dir():
            continue
        jobs = _jobs(config, split)
        with atomic_folder(final) as tmp:
            bar = tqdm(total=len(jobs), desc=f"corpus {split}", disable=not show)
            records = []
            if num_workers > 0 and len(jobs) > 1:
                from concurrent.futures import ProcessPoolExecutor

                with ProcessPoolExecutor(max_workers=num_workers) as pool:
                    for record in pool.map(_build_one, [config] * len(jobs), jobs, [tmp] * len(jobs)):
                        records.append(record)
                        bar.update(1)
            else:
                for job in jobs:
                    records.append(_build_one(config, job, tmp))
                    bar.update(1)
            bar.close()
            with atomic_path(top / f"{split}.json") as manifest:
                manifest.write_text(json.dumps(records, indent=1, sort_keys=True, default=str) + "\n")
        logger.info("corpus %s: %d volumes in %s", split, len(jobs), final)
    return out


def check_training_folder(
    root: str | os.PathLike, challenge: str = "multicoil", *, require_targets: bool = True,
    name: str = "training data folder",
) -> list[Path]:
    """Check that a folder holds usable fastMRI training files of one challenge.

    Args:
        root: folder of ``.h5`` files (or one file).
        challenge: the challenge the run expects.
        require_targets: files must carry a ``reconstruction_rss``/``_esc`` target
            (supervised training); self-supervised training (SSDU) needs only k-space.
        name: how the messages call the folder (e.g. the argument, ``"train_data"``).

    Returns:
        The usable files (sorted).

    Raises:
        FileNotFoundError: ``root`` does not exist.
        ValueError: no ``.h5`` files; no usable file (each file's problem is listed); files
            of both challenges (some are named); files of the other challenge only.
    """
    if challenge not in ("multicoil", "singlecoil"):
        raise ValueError(f"challenge must be 'multicoil' or 'singlecoil', got {challenge!r}")
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{name} not found: {str(root)!r}")
    files = [root] if root.is_file() else sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in (".h5", ".hdf5"))
    if not files:
        raise ValueError(f"{name} {str(root)!r} contains no HDF5 files (*.h5)")
    target_key = "reconstruction_rss" if challenge == "multicoil" else "reconstruction_esc"
    kinds: dict[str, list[str]] = {"multicoil": [], "singlecoil": []}
    problems: list[str] = []
    usable: list[Path] = []
    for path in files:
        try:
            with h5py.File(path, "r") as hf:
                if "kspace" not in hf:
                    problems.append(f"{path.name}: no 'kspace' dataset")
                    continue
                ndim = hf["kspace"].ndim
                kind = {4: "multicoil", 3: "singlecoil"}.get(ndim)
                if kind is None:
                    problems.append(f"{path.name}: 'kspace' of rank {ndim} is neither multicoil (4) nor singlecoil (3)")
                    continue
                kinds[kind].append(path.name)
                if kind != challenge:
                    continue
                if require_targets and target_key not in hf:
                    problems.append(f"{path.name}: no '{target_key}' target (a test-style file?)")
                    continue
                usable.append(path)
        except OSError as err:
            problems.append(f"{path.name}: not a readable HDF5 file ({err})")
    if kinds["multicoil"] and kinds["singlecoil"]:
        raise ValueError(
            f"{name} {str(root)!r} mixes challenges: multicoil files "
            f"{kinds['multicoil'][:3]} and singlecoil files {kinds['singlecoil'][:3]}; "
            "keep one challenge per folder"
        )
    if not usable:
        other = "singlecoil" if challenge == "multicoil" else "multicoil"
        if kinds[other]:
            problems.append(f"all {len(kinds[other])} readable files are {other}, the run expects challenge={challenge!r}")
        raise ValueError(
            f"{name} {str(root)!r} has no usable {challenge} files: " + "; ".join(problems[:5])
        )
    return usable
