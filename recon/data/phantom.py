"""Tissue-based MR phantoms: tissue maps -> T1, T2, T2*, PD -> images by the signal equations.

The engine has three stages, each a pure function of its inputs and a seed:

1. **Anatomy.** Tissue probability maps of a head (``gm``, ``wm``, ``csf``, ``fat``,
   ``soft_tissue``, ``bone``; background is one minus their sum) ship in ``data/tissue/``
   (see ``data/README.md``): the MNI ICBM152 2009a average brain (grey/white matter maps
   from nilearn's wheel) and the Colin27 subject segmented by fuzzy c-means, both with
   Colin27's scalp, fat and skull. A :class:`Subject` draws a *new anatomy* from one of them
   by a random affine (rotation, anisotropic scaling, translation, left-right flip) and a
   smooth random (elastic) displacement field, fused into one sampling grid and applied to
   the probability maps with trilinear interpolation (so partial volumes stay partial
   volumes, and labels - the most probable tissue - move with the images).
2. **Tissue parameters.** Literature relaxation times and proton densities at 1.5 T and
   3 T (:data:`LITERATURE`), varied per subject (log-normal, a few per cent) and per voxel
   by a spatially correlated multiplicative texture within each tissue, so that images
   are not template-smooth.
3. **Contrast.** Every voxel's signal is the probability-weighted sum of its tissues'
   signals (partial-volume mixing of magnetisation, not of parameters), each given by the
   textbook signal equations:

   * spin echo (``t1w``, ``t2w``, ``pd``): ``S = PD (1 - exp(-TR/T1)) exp(-TE/T2)``;
   * inversion recovery (``ir``, ``flair``), magnitude:
     ``S = PD |1 - 2 exp(-TI/T1) + exp(-TR/T1)| exp(-TE/T2)``;
   * spoiled gradient echo (``gre``, FLASH):
     ``S = PD sin(a) (1 - E1) / (1 - cos(a) E1) exp(-TE/T2*)``, ``E1 = exp(-TR/T1)``.

Literature values (ms; PD relative to CSF), rounded, representative of adult brain:

* grey / white matter T1 and T2 at 1.5 T and 3 T: Stanisz et al., "T1, T2 relaxation and
  magnetization transfer in tissue at 3T", Magn. Reson. Med. 54:507-512 (2005); 3 T T1
  also close to Wansapura et al., "NMR relaxation times in the human brain at 3.0 tesla",
  J. Magn. Reson. Imaging 9:531-538 (1999) (GM 1331, WM 832 ms). White-matter T1 at
  1.5 T is taken as 780 ms, between Stanisz's 884 ms and the lower values of
  inversion-recovery studies (about 650 ms, Wright et al., MAGMA 21:121-130, 2008): with
  884 ms a TR 500 / TE 15 spin echo would show no grey-white contrast, which clinical
  1.5 T T1-weighted images do show;
* CSF, fat, muscle and ranges across studies: Bojorquez et al., "What are normal
  relaxation times of tissues at 3 T?", Magn. Reson. Imaging 35:69-80 (2017); fat and
  muscle: Gold et al., "Musculoskeletal MRI at 3.0 T: relaxation times and image
  contrast", AJR 183:343-351 (2004);
* T2*: Peters et al., "T2* measurements in human brain at 1.5, 3 and 7 T", Magn. Reson.
  Imaging 25:748-753 (2007); proton densities: Whittall et al., Magn. Reson. Med.
  37:34-43 (1997) (WM ~0.70, GM ~0.82 of water).
* Bone (cortical skull) is given a small PD and very short T2/T2* so that it is dark in
  every contrast, as it is in conventional MRI.

Example:
    >>> from recon.data.phantom import Subject
    >>> subject = Subject(seed=3, z_range=(60, 62))
    >>> t1w = subject.contrast("t1w", field_strength=3.0)
    >>> t1w.volume.shape == t1w.labels.shape
    True
    >>> flair = subject.contrast("flair", te=100.0)   # same anatomy, another contrast
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Mapping, NamedTuple, Sequence

import numpy as np
from scipy import ndimage

__all__ = [
    "TISSUES",
    "ANATOMIES",
    "SEQUENCES",
    "FIELD_STRENGTHS",
    "LITERATURE",
    "TissueParameters",
    "TissueMaps",
    "PhantomImage",
    "Subject",
    "load_tissue_maps",
    "tissue_parameters",
    "spin_echo",
    "inversion_recovery",
    "gradient_echo",
    "sequence_defaults",
]

#: tissue classes of the maps, in storage order (label ``k + 1``; 0 is background)
TISSUES: tuple[str, ...] = ("gm", "wm", "csf", "fat", "soft_tissue", "bone")

#: the shipped anatomies: file stem in ``data/tissue/`` -> description
ANATOMIES: dict[str, str] = {
    "mni152": "MNI ICBM152 2009a nonlinear symmetric average brain (nilearn) with Colin27's head",
    "colin27": "Colin27 (one subject, 27 averaged T1 scans), fuzzy c-means segmentation",
}

#: field strengths (tesla) with literature tissue parameters
FIELD_STRENGTHS: tuple[float, ...] = (1.5, 3.0)


@dataclass(frozen=True)
class TissueParameters:
    """Relaxation times (ms) and proton density (relative to CSF) of one tissue."""

    t1: float
    t2: float
    t2star: float
    pd: float


def _p(t1: float, t2: float, t2star: float, pd: float) -> TissueParameters:
    return TissueParameters(t1, t2, t2star, pd)


#: literature values per field strength and tissue (see the module docstring for sources)
LITERATURE: dict[float, dict[str, TissueParameters]] = {
    1.5: {
        "gm": _p(1124.0, 95.0, 84.0, 0.82),
        "wm": _p(780.0, 72.0, 66.0, 0.70),
        "csf": _p(4000.0, 2000.0, 500.0, 1.00),
        "fat": _p(343.0, 58.0, 40.0, 0.90),
        "soft_tissue": _p(1008.0, 44.0, 35.0, 0.75),
        "bone": _p(250.0, 5.0, 1.5, 0.10),
    },
    3.0: {
        "gm": _p(1820.0, 99.0, 66.0, 0.82),
        "wm": _p(1084.0, 69.0, 53.0, 0.70),
        "csf": _p(4300.0, 1800.0, 400.0, 1.00),
        "fat": _p(382.0, 68.0, 35.0, 0.90),
        "soft_tissue": _p(1412.0, 50.0, 30.0, 0.75),
        "bone": _p(300.0, 4.0, 1.0, 0.10),
    },
}

# sequence name -> (family, default parameters in ms / degrees)
_SEQUENCES: dict[str, tuple[str, dict[str, float]]] = {
    "t1w": ("se", {"tr": 500.0, "te": 15.0}),
    "t2w": ("se", {"tr": 4000.0, "te": 100.0}),
    "pd": ("se", {"tr": 4000.0, "te": 15.0}),
    "flair": ("ir", {"tr": 9000.0, "ti": 2500.0, "te": 120.0}),
    "ir": ("ir", {"tr": 2000.0, "ti": 1000.0, "te": 10.0}),
    "gre": ("gre", {"tr": 250.0, "te": 5.0, "flip_angle": 70.0}),
}

#: the sequences :meth:`Subject.contrast` knows, each with its default parameters
SEQUENCES: tuple[str, ...] = tuple(_SEQUENCES)


def sequence_defaults(sequence: str) -> dict[str, float]:
    """Default parameters of a sequence (ms, flip angle in degrees).

    Raises:
        ValueError: unknown ``sequence`` (the message lists the valid ones).
    """
    if sequence not in _SEQUENCES:
        raise ValueError(f"sequence must be one of {list(SEQUENCES)}, got {sequence!r}")
    return dict(_SEQUENCES[sequence][1])


# -- signal equations ---------------------------------------------------------------------
def spin_echo(pd, t1, t2, tr: float, te: float) -> np.ndarray:
    """Spin-echo signal ``PD (1 - exp(-TR/T1)) exp(-TE/T2)`` (TE << TR; times in ms)."""
    pd, t1, t2 = (np.asarray(v) for v in (pd, t1, t2))
    return pd * (1.0 - np.exp(-tr / t1)) * np.exp(-te / t2)


def inversion_recovery(pd, t1, t2, tr: float, ti: float, te: float) -> np.ndarray:
    """Magnitude inversion recovery ``PD |1 - 2 exp(-TI/T1) + exp(-TR/T1)| exp(-TE/T2)``."""
    pd, t1, t2 = (np.asarray(v) for v in (pd, t1, t2))
    return pd * np.abs(1.0 - 2.0 * np.exp(-ti / t1) + np.exp(-tr / t1)) * np.exp(-te / t2)


def gradient_echo(pd, t1, t2star, tr: float, te: float, flip_angle: float) -> np.ndarray:
    """Spoiled gradient echo (FLASH) ``PD sin a (1 - E1) / (1 - cos a E1) exp(-TE/T2*)``,
    ``E1 = exp(-TR/T1)``, flip angle ``a`` in degrees."""
    pd, t1, t2star = (np.asarray(v) for v in (pd, t1, t2star))
    alpha = math.radians(flip_angle)
    e1 = np.exp(-tr / t1)
    return pd * math.sin(alpha) * (1.0 - e1) / (1.0 - math.cos(alpha) * e1) * np.exp(-te / t2star)


def _check_tissue(tissue: str) -> None:
    if tissue not in TISSUES:
        raise ValueError(f"tissue must be one of {list(TISSUES)}, got {tissue!r}")


def _check_field(field_strength: float) -> float:
    try:
        value = float(field_strength)
    except (TypeError, ValueError):
        value = float("nan")
    if value not in FIELD_STRENGTHS:
        raise ValueError(f"field_strength must be one of {list(FIELD_STRENGTHS)} (tesla), got {field_strength!r}")
    return value


def tissue_parameters(tissue: str, field_strength: float = 3.0) -> TissueParameters:
    """Literature parameters of one tissue (:data:`LITERATURE`).

    Raises:
        ValueError: unknown ``tissue`` or ``field_strength``.
    """
    _check_tissue(tissue)
    return LITERATURE[_check_field(field_strength)][tissue]


def _signal(family: str, params: Mapping[str, float], pd, t1, t2, t2star) -> np.ndarray:
    if family == "se":
        return spin_echo(pd, t1, t2, params["tr"], params["te"])
    if family == "ir":
        return inversion_recovery(pd, t1, t2, params["tr"], params["ti"], params["te"])
    return gradient_echo(pd, t1, t2star, params["tr"], params["te"], params["flip_angle"])


def _sequence_params(sequence: str, overrides: Mapping[str, float]) -> tuple[str, dict[str, float]]:
    params = sequence_defaults(sequence)
    family = _SEQUENCES[sequence][0]
    unknown = sorted(set(overrides) - set(params))
    if unknown:
        raise ValueError(f"unknown parameters {unknown} for sequence {sequence!r}; valid: {sorted(params)}")
    for name, value in overrides.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or not math.isfinite(float(value)) or float(value) <= 0:
            raise ValueError(f"{name} must be a positive number (ms, or degrees for flip_angle), got {value!r}")
        params[name] = float(value)
    if family == "ir" and params["ti"] >= params["tr"]:
        raise ValueError(f"ti must be shorter than tr, got ti={params['ti']} and tr={params['tr']}")
    if family == "gre" and not params["flip_angle"] <= 180:
        raise ValueError(f"flip_angle must be in (0, 180] degrees, got {params['flip_angle']}")
    if params["te"] >= params["tr"]:
        raise ValueError(f"te must be shorter than tr, got te={params['te']} and tr={params['tr']}")
    return family, params


# -- tissue maps ----------------------------------------------------------------------------
class TissueMaps(NamedTuple):
    """Tissue probability maps on a grid.

    Attributes:
        probabilities: float32 ``(len(TISSUES), X, Y, Z)`` in [0, 1], sum <= 1 per voxel.
        affine: ``(4, 4)`` voxel -> RAS mm.
        tissues: the tissue names, :data:`TISSUES`.
    """

    probabilities: np.ndarray
    affine: np.ndarray
    tissues: tuple[str, ...]


@functools.lru_cache(maxsize=2)
def _load_maps(anatomy: str) -> TissueMaps:
    from recon.data.io import load_nifti
    from recon.data.sample import data_dir

    path = data_dir() / "tissue" / f"{anatomy}_tissue.nii.gz"
    if not path.is_file():
        raise FileNotFoundError(f"tissue maps for {anatomy!r} not found at {str(path)!r} (see data/README.md)")
    data, affine, _ = load_nifti(path, dtype=np.float32)
    if data.ndim != 4 or data.shape[-1] != len(TISSUES):
        raise ValueError(f"{path}: expected (X, Y, Z, {len(TISSUES)}) tissue maps, got shape {data.shape}")
    probs = np.ascontiguousarray(np.moveaxis(data, -1, 0)) / np.float32(255.0)
    probs.setflags(write=False)
    return TissueMaps(probs, np.asarray(affine, dtype=np.float64), TISSUES)


def load_tissue_maps(anatomy: str = "mni152") -> TissueMaps:
    """The shipped tissue maps of one anatomy (read-only arrays, cached).

    Args:
        anatomy: one of :data:`ANATOMIES`.

    Raises:
        ValueError: unknown ``anatomy``.
    """
    if anatomy not in ANATOMIES:
        raise ValueError(f"anatomy must be one of {list(ANATOMIES)}, got {anatomy!r}")
    return _load_maps(anatomy)


@functools.lru_cache(maxsize=4)
def _head_center(anatomy: str) -> np.ndarray:
    """World coordinates (mm) of the centroid of the head (voxels more than half tissue)."""
    maps = load_tissue_maps(anatomy)
    occupied = np.argwhere(maps.probabilities.sum(0) > 0.5)
    return maps.affine[:3, :3] @ occupied.mean(0) + maps.affine[:3, 3]


class PhantomImage(NamedTuple):
    """One contrast of a :class:`Subject`.

    Attributes:
        volume: float32 ``(X, Y, Z)`` magnitude image (arbitrary units, PD of CSF = 1).
        affine: ``(4, 4)`` voxel -> RAS mm.
        labels: uint8 ``(X, Y, Z)``: 0 background, ``k + 1`` for ``TISSUES[k]`` (most probable).
        tissues: :data:`TISSUES`.
        sequence: the sequence name.
        parameters: the sequence parameters used (ms, degrees) and ``field_strength`` (T).
    """

    volume: np.ndarray
    affine: np.ndarray
    labels: np.ndarray
    tissues: tuple[str, ...]
    sequence: str
    parameters: dict[str, float]


def _check_range(name: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not low <= float(value) <= high:
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}")
    return float(value)


def _rotation(angles: np.ndarray) -> np.ndarray:
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


class Subject:
    """A random virtual subject: a new anatomy and its own tissue parameters.

    The anatomy is one of the shipped tissue maps, deformed (unless ``deform=False``) by a
    random affine - rotations up to ``max_rotation`` degrees about each axis, scaling in
    ``[1 - max_scaling, 1 + max_scaling]`` per axis, translations up to ``max_translation``
    mm, a left-right flip with probability 1/2 - composed with a smooth displacement field
    (Gaussian displacements of standard deviation ``elastic_std`` mm on a control grid of
    ``elastic_spacing`` mm, cubic B-spline interpolated), and resampled to an axis-aligned
    grid of ``voxel_size`` mm. Everything is drawn from ``seed``: the same seed gives the
    same subject, in any contrast.

    Args:
        seed: int seed (or numpy ``SeedSequence``).
        anatomy: one of :data:`ANATOMIES`, or None to draw one.
        deform: apply the random affine and elastic deformation.
        voxel_size: output voxel size, mm: one number (isotropic) or ``(x, y, z)`` (e.g. thin
            in-plane pixels and 5 mm between axial slices).
        z_range: ``(start, stop)`` slice indices along the output grid's z (axial) axis to
            compute (default all): a slab costs a fraction of a whole head.
        variation: relative standard deviation of the per-subject tissue parameters.
        texture: relative amplitude (standard deviation) of the within-tissue texture.
        texture_scale: correlation length of the texture, mm.
        max_rotation, max_scaling, max_translation, elastic_std, elastic_spacing: deformation
            ranges (degrees, fraction, mm, mm, mm).

    Raises:
        ValueError: an unknown anatomy or an argument out of range (the message names it).

    Example:
        >>> subject = Subject(seed=0, anatomy="colin27", z_range=(70, 72))
        >>> image = subject.contrast("t2w", field_strength=1.5)
        >>> image.volume.dtype
        dtype('float32')
    """

    def __init__(
        self,
        seed: int | np.random.SeedSequence = 0,
        *,
        anatomy: str | None = None,
        deform: bool = True,
        voxel_size: float | Sequence[float] = 1.0,
        z_range: Sequence[int] | None = None,
        variation: float = 0.06,
        texture: float = 0.04,
        texture_scale: float = 1.5,
        max_rotation: float = 10.0,
        max_scaling: float = 0.1,
        max_translation: float = 5.0,
        elastic_std: float = 2.5,
        elastic_spacing: float = 30.0,
    ) -> None:
        if isinstance(seed, np.random.SeedSequence):
            self._seq = seed
        elif isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0:
            self._seq = np.random.SeedSequence(int(seed))
        else:
            raise ValueError(f"seed must be a non-negative int or a numpy SeedSequence, got {seed!r}")
        self.seed = seed
        # children derived without spawn() (which mutates the parent): a SeedSequence passed
        # twice gives the same subject twice
        anatomy_seq, deform_seq, param_seq, texture_seq = (
            np.random.SeedSequence(self._seq.entropy, spawn_key=(*self._seq.spawn_key, i)) for i in range(4)
        )
        if anatomy is None:
            names = sorted(ANATOMIES)
            anatomy = names[int(np.random.default_rng(anatomy_seq).integers(len(names)))]
        if anatomy not in ANATOMIES:
            raise ValueError(f"anatomy must be one of {list(ANATOMIES)} or None, got {anatomy!r}")
        if not isinstance(deform, bool):
            raise ValueError(f"deform must be True or False, got {deform!r}")
        self.anatomy = anatomy
        sizes = (voxel_size,) * 3 if isinstance(voxel_size, (int, float, np.integer, np.floating)) else voxel_size
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__") or len(sizes) != 3:
            raise ValueError(f"voxel_size must be a number or (x, y, z) in mm, got {voxel_size!r}")
        #: output voxel size ``(x, y, z)`` mm
        self.voxel_size = tuple(_check_range("voxel_size", v, 0.25, 10.0) for v in sizes)
        self.variation = _check_range("variation", variation, 0.0, 0.5)
        self.texture = _check_range("texture", texture, 0.0, 0.5)
        self.texture_scale = _check_range("texture_scale", texture_scale, 0.0, 20.0)
        self._ranges = dict(
            max_rotation=_check_range("max_rotation", max_rotation, 0.0, 180.0),
            max_scaling=_check_range("max_scaling", max_scaling, 0.0, 0.5),
            max_translation=_check_range("max_translation", max_translation, 0.0, 100.0),
            elastic_std=_check_range("elastic_std", elastic_std, 0.0, 20.0),
            elastic_spacing=_check_range("elastic_spacing", elastic_spacing, 5.0, 200.0),
        )
        self._param_seq, self._texture_seq = param_seq, texture_seq

        maps = load_tissue_maps(anatomy)
        src_shape = np.array(maps.probabilities.shape[1:])
        src_zooms = np.sqrt((maps.affine[:3, :3] ** 2).sum(0))
        extent = src_shape * src_zooms
        vox = np.asarray(self.voxel_size)
        full_shape = tuple(int(np.ceil(e / v)) for e, v in zip(extent, vox))
        if z_range is None:
            z0, z1 = 0, full_shape[2]
        else:
            if len(z_range) != 2 or not all(isinstance(v, (int, np.integer)) for v in z_range) \
                    or not 0 <= z_range[0] < z_range[1] <= full_shape[2]:
                raise ValueError(
                    f"z_range must be (start, stop) with 0 <= start < stop <= {full_shape[2]}, got {z_range!r}"
                )
            z0, z1 = int(z_range[0]), int(z_range[1])
        #: shape of the whole output grid (before ``z_range``)
        self.grid_shape = full_shape
        out_affine = np.diag([*vox, 1.0])
        out_affine[:3, 3] = maps.affine[:3, 3] + maps.affine[:3, :3] @ (0.5 * (vox / src_zooms - 1.0))
        out_affine[:3, 3] += out_affine[:3, :3] @ np.array([0.0, 0.0, z0])
        self.affine = out_affine
        shape = (full_shape[0], full_shape[1], z1 - z0)
        self.shape = shape

        # output voxel -> world mm
        idx = np.indices(shape, dtype=np.float32).reshape(3, -1)
        world = out_affine[:3, :3] @ idx + out_affine[:3, 3:4]
        if deform:
            world = self._deform(world, maps, np.random.default_rng(deform_seq))
        src = np.linalg.solve(maps.affine, np.vstack([world, np.ones((1, world.shape[1]))]))[:3]
        probs = np.stack([
            ndimage.map_coordinates(maps.probabilities[k], src, order=1, mode="constant", cval=0.0).reshape(shape)
            for k in range(len(TISSUES))
        ]).astype(np.float32)
        np.clip(probs, 0.0, 1.0, out=probs)
        total = probs.sum(0)
        over = total > 1.0
        if over.any():
            probs[:, over] /= total[over]
        #: float32 ``(len(TISSUES), X, Y, Z)`` tissue probabilities of this subject
        self.probabilities = probs
        background = np.clip(1.0 - probs.sum(0), 0.0, 1.0)
        #: uint8 ``(X, Y, Z)`` most probable class: 0 background, ``k + 1`` for ``TISSUES[k]``
        self.labels = np.concatenate([background[None], probs]).argmax(0).astype(np.uint8)

    def _deform(self, world: np.ndarray, maps: TissueMaps, rng: np.random.Generator) -> np.ndarray:
        """Map output points (3, N) mm to source points: inverse affine + elastic field."""
        r = self._ranges
        center = _head_center(self.anatomy)
        angles = np.radians(rng.uniform(-r["max_rotation"], r["max_rotation"], 3))
        scales = rng.uniform(1.0 - r["max_scaling"], 1.0 + r["max_scaling"], 3)
        flip = rng.random() < 0.5
        shift = rng.uniform(-r["max_translation"], r["max_translation"], 3)
        forward = _rotation(angles) @ np.diag(scales * np.array([-1.0 if flip else 1.0, 1.0, 1.0]))
        inverse = np.linalg.inv(forward)
        src = inverse @ (world - center[:, None] - shift[:, None]) + center[:, None]
        if r["elastic_std"] > 0:
            lo = maps.affine[:3, 3]
            extent = np.array(maps.probabilities.shape[1:]) * np.sqrt((maps.affine[:3, :3] ** 2).sum(0))
            nodes = np.maximum(np.ceil(extent / r["elastic_spacing"]).astype(int) + 1, 4)
            coarse = rng.normal(0.0, r["elastic_std"], (3, *nodes))
            # grid coordinates of the (inverse-affine) points in the control grid
            pos = (src - lo[:, None]) / extent[:, None] * (nodes[:, None] - 1)
            for d in range(3):
                src[d] += ndimage.map_coordinates(coarse[d], pos, order=3, mode="nearest")
        return src

    def parameters(self, field_strength: float = 3.0) -> dict[str, TissueParameters]:
        """This subject's tissue parameters: the literature values times log-normal factors
        (relative standard deviation ``variation``; the same factors at both field strengths).

        Raises:
            ValueError: unknown ``field_strength``.
        """
        base = LITERATURE[_check_field(field_strength)]
        rng = np.random.default_rng(self._param_seq)
        factors = np.exp(rng.normal(0.0, self.variation, (len(TISSUES), 4)))
        out = {}
        for k, name in enumerate(TISSUES):
            p = base[name]
            f = factors[k]
            out[name] = TissueParameters(p.t1 * f[0], p.t2 * f[1], p.t2star * f[2], min(1.0, p.pd * f[3]))
        return out

    def tissue_map(self, tissue: str) -> np.ndarray:
        """Probability map ``(X, Y, Z)`` of one tissue.

        Raises:
            ValueError: unknown ``tissue`` (the message lists the valid ones).
        """
        _check_tissue(tissue)
        return self.probabilities[TISSUES.index(tissue)]

    def _texture_fields(self, k: int) -> np.ndarray:
        """``(2, X, Y, Z)`` correlated noise of tissue ``k``, unit std: PD and relaxation
        (one tissue at a time, each from its own seed, to keep memory at two volumes)."""
        seq = np.random.SeedSequence(self._texture_seq.entropy, spawn_key=(*self._texture_seq.spawn_key, k))
        fields = np.random.default_rng(seq).standard_normal((2, *self.shape), dtype=np.float32)
        sigma = tuple(self.texture_scale / v for v in self.voxel_size)
        if self.texture_scale > 0:
            for j in range(2):
                ndimage.gaussian_filter(fields[j], sigma, output=fields[j], mode="wrap")
                fields[j] /= max(float(fields[j].std()), 1e-12)
        return fields

    def contrast(self, sequence: str, field_strength: float = 3.0, **sequence_params: float) -> PhantomImage:
        """The subject imaged with one sequence.

        Args:
            sequence: one of :data:`SEQUENCES` (``"t1w"``, ``"t2w"``, ``"pd"``, ``"flair"``,
                ``"ir"``, ``"gre"``).
            field_strength: 1.5 or 3.0 tesla.
            **sequence_params: overrides of the defaults (:func:`sequence_defaults`): ``tr``,
                ``te``, and ``ti`` (IR, FLAIR) or ``flip_angle`` (GRE); ms and degrees.

        Returns:
            :class:`PhantomImage` (volume float32 ``(X, Y, Z)``, affine, labels).

        Raises:
            ValueError: unknown sequence, parameter or field strength, or a parameter out of
                range (non-positive, TE >= TR, TI >= TR, flip angle > 180).
        """
        family, params = _sequence_params(sequence, sequence_params)
        params_by_tissue = self.parameters(field_strength)
        volume = np.zeros(self.shape, dtype=np.float32)
        for k, name in enumerate(TISSUES):
            p = params_by_tissue[name]
            prob = self.probabilities[k]
            if not prob.any():
                continue
            if self.texture == 0:
                signal = _signal(family, params, p.pd, p.t1, p.t2, p.t2star)
            else:
                fields = self._texture_fields(k)
                pd_f = np.exp(self.texture * fields[0])
                rel_f = np.exp(self.texture * fields[1])
                signal = _signal(family, params, np.minimum(p.pd * pd_f, 1.0), p.t1 * rel_f, p.t2 * rel_f,
                                 p.t2star * rel_f)
            volume += (prob * signal).astype(np.float32)
        return PhantomImage(
            volume=volume,
            affine=self.affine.copy(),
            labels=self.labels,
            tissues=TISSUES,
            sequence=sequence,
            parameters={**params, "field_strength": _check_field(field_strength)},
        )

    def __repr__(self) -> str:
        return f"Subject(seed={self.seed!r}, anatomy={self.anatomy!r}, shape={self.shape}, voxel_size={self.voxel_size})"
