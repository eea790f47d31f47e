"""MR artefacts simulated where they arise: in k-space (recon.ops FFTs, fastMRI layout).

Functions act on k-space in recon's real-view layout ``(..., H, W, 2)`` - single- or multi-coil,
any leading dimensions, e.g. ``(B, coils, H, W, 2)`` - with the centred orthonormal
:func:`recon.ops.fft2c`. Columns (``W``, the mask axis of fastMRI) are the phase-encode
direction; ``H`` is the readout.

* :func:`rigid_motion` - the object moves during the acquisition: the phase-encode lines are
  acquired in order (linear ordering), split at ``times`` into segments, and each segment's lines
  come from the object at another in-plane pose (rotation about the image centre by resampling
  the coil images, translation as an exact linear phase). On multi-coil k-space the coil
  sensitivities move with the object (an approximation: in reality the coils stay put).
* :func:`ghosting` - every ``num_ghosts``-th phase-encode line scaled by ``1 - intensity``
  (the centre line kept): ghosts at multiples of ``FOV / num_ghosts``.
* :func:`spikes` - bright k-space points (herringbone): ``intensity`` times the largest k-space
  magnitude added at the given positions.
* :func:`gibbs_truncate` - keep the central ``fraction`` of k-space along the given axes
  (Gibbs ringing at edges).
* :func:`undersample` - multiply by a sampling mask (any broadcastable mask, e.g. from a
  ``recon.masks`` mask function).

The transforms (:class:`Motion`, :class:`Ghosting`, :class:`Spike`, :class:`Gibbs`,
:class:`Undersample` and the random versions) apply these to magnitude images of a sample:
each slice ``(H, W)`` (of a ``(C, H, W)`` slice or a ``(C, D, H, W)`` volume, as a multi-slice
2-D acquisition) is taken as a real signal, transformed to k-space, corrupted, transformed back;
the output is the magnitude. Labels are left alone.

A mask function is any callable ``mask_func(shape, offset=None, seed=None) -> (mask,
num_low_frequencies)`` with fastMRI's ``MaskFunc`` semantics (``recon.masks`` provides them:
``recon.masks.create_mask_for_mask_type``); it is called with the shape ``(1, H, W, 2)`` and a
seed drawn from the transform's generator.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Sequence

import torch

from recon.ops import complex_abs, fft2c, ifft2c
from recon.ops._checks import check_complex_view, check_mask_broadcasts
from recon.preprocess.augment._base import (
    Batch,
    Params,
    Transform,
    as_number_list,
    check_number,
    check_positive_int,
    describe,
    draw_seeds,
    map_images,
)

__all__ = [
    "rigid_motion",
    "ghosting",
    "spikes",
    "gibbs_truncate",
    "undersample",
    "Motion",
    "RandomMotion",
    "Ghosting",
    "RandomGhosting",
    "Spike",
    "RandomSpike",
    "Gibbs",
    "RandomGibbs",
    "Undersample",
]


def _plane_axis(axis: int) -> int:
    if axis not in (-1, -2):
        raise ValueError(f"axis must be -1 (columns W, phase encode) or -2 (rows H), got {axis!r}")
    return axis - 1  # dim in the real view (..., H, W, 2)


# ------------------------------------------------------------------------------ functions
def ghosting(kspace: torch.Tensor, num_ghosts: int, intensity: float, axis: int = -1) -> torch.Tensor:
    """Scale every ``num_ghosts``-th line along ``axis`` by ``1 - intensity`` (centre line kept).

    Args:
        kspace: ``(..., H, W, 2)``.
        num_ghosts: spacing of the modulated lines (>= 2): ghosts repeat every ``FOV / num_ghosts``.
        intensity: in [0, 1]; 0 is the identity.
        axis: -1 (columns, W) or -2 (rows, H).
    """
    check_complex_view("kspace", kspace)
    num_ghosts = check_positive_int("num_ghosts", num_ghosts, minimum=2)
    intensity = check_number("intensity", intensity, low=0.0)
    if intensity > 1:
        raise ValueError(f"intensity must be in [0, 1], got {intensity!r}")
    dim = _plane_axis(axis)
    n = kspace.shape[dim]
    factor = torch.ones(n, dtype=kspace.dtype, device=kspace.device)
    factor[::num_ghosts] = 1 - intensity
    factor[n // 2] = 1.0
    return kspace * factor.view(-1, *[1] * (-dim - 1))


def spikes(kspace: torch.Tensor, positions: torch.Tensor | Sequence[Sequence[float]], intensity: float) -> torch.Tensor:
    """Add spikes of ``intensity * max|k|`` (max per image plane) at ``positions``.

    Args:
        kspace: ``(..., H, W, 2)``.
        positions: ``(S, 2)`` positions relative to the k-space centre as fractions of
            ``(H, W)`` in [-0.5, 0.5): index ``n // 2 + floor(p * n)``.
        intensity: spike amplitude relative to the largest k-space magnitude (any real number).
    """
    check_complex_view("kspace", kspace)
    pos = torch.as_tensor(positions, dtype=torch.float64).reshape(-1, 2) if not isinstance(positions, torch.Tensor) \
        else positions.detach().to(torch.float64).cpu().reshape(-1, 2)
    if ((pos < -0.5) | (pos >= 0.5)).any():
        raise ValueError(f"positions must be fractions in [-0.5, 0.5), got {pos.tolist()}")
    intensity = check_number("intensity", intensity)
    H, W = kspace.shape[-3], kspace.shape[-2]
    peak = complex_abs(kspace).amax(dim=(-2, -1))  # (...)
    out = kspace.clone()
    for py, px in pos.tolist():
        i = H // 2 + math.floor(py * H)
        j = W // 2 + math.floor(px * W)
        out[..., i, j, 0] += intensity * peak
    return out


def gibbs_truncate(kspace: torch.Tensor, fraction: float, axes: Sequence[int] = (-2, -1)) -> torch.Tensor:
    """Zero all but the central ``round(fraction * n)`` lines along each of ``axes`` (-2: H, -1: W).

    The kept band is ``[n // 2 - keep // 2, n // 2 - keep // 2 + keep)`` (centred on the DC line).
    """
    check_complex_view("kspace", kspace)
    fraction = check_number("fraction", fraction, low=0.0, strict=True)
    if fraction > 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    out = kspace
    for axis in (axes if isinstance(axes, (list, tuple)) else (axes,)):
        dim = _plane_axis(axis)
        n = kspace.shape[dim]
        keep = max(1, int(round(fraction * n)))
        lo = n // 2 - keep // 2
        m = torch.zeros(n, dtype=kspace.dtype, device=kspace.device)
        m[lo:lo + keep] = 1
        out = out * m.view(-1, *[1] * (-dim - 1))
    return out


def undersample(kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``kspace * mask`` (mask broadcastable, e.g. ``(1, 1, W, 1)`` from a fastMRI mask function)."""
    check_complex_view("kspace", kspace)
    mask = check_mask_broadcasts(mask, kspace.shape, "kspace")
    return kspace * mask.to(device=kspace.device, dtype=kspace.dtype)


def _rotate_images(images: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate complex images ``(..., H, W, 2)`` in-plane about the centre (square pixels; linear)."""
    from recon.preprocess.augment.spatial import Affine

    lead = images.shape[:-3]
    H, W = images.shape[-3:-1]
    x = images.reshape(1, -1, H, W, 2).movedim(-1, 2).reshape(1, -1, H, W)  # channels: (n, re/im)
    batch = Batch(tensors={"image": x}, labels=frozenset(), affine=None, nd=2)
    t = Affine(rotation=[float(degrees)])
    out = t.apply(batch, t.draw(batch, None)).tensors["image"]
    return out.reshape(1, -1, 2, H, W).movedim(2, -1).reshape(*lead, H, W, 2)


def _phase_ramp(H: int, W: int, shift: Sequence[float], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``(H, W, 2)`` exp(-2 pi i (ky dy / H + kx dx / W)) with centred k indices: a shift by (dy, dx) pixels."""
    ky = torch.arange(H, dtype=torch.float64, device=device) - H // 2
    kx = torch.arange(W, dtype=torch.float64, device=device) - W // 2
    phase = -2 * math.pi * (ky[:, None] * shift[0] / H + kx[None, :] * shift[1] / W)
    return torch.stack([torch.cos(phase), torch.sin(phase)], -1).to(dtype)


def _cmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.stack([a[..., 0] * b[..., 0] - a[..., 1] * b[..., 1], a[..., 0] * b[..., 1] + a[..., 1] * b[..., 0]], -1)


def rigid_motion(kspace: torch.Tensor, rotations: Sequence[float], translations: Sequence[Sequence[float]],
                 times: Sequence[float]) -> torch.Tensor:
    """In-plane rigid motion during a Cartesian acquisition.

    Phase-encode lines (columns ``W``) are acquired in order ``0 .. W-1``. ``times`` (sorted,
    in (0, 1)) split them into ``len(times) + 1`` segments: the first at the original pose,
    segment ``s >= 1`` with the object rotated by ``rotations[s-1]`` degrees (about the image
    centre, counter-clockwise from the H axis towards W) and shifted by ``translations[s-1]``
    = ``(dH, dW)`` pixels. With zero motion the k-space is returned unchanged.

    Args:
        kspace: ``(..., H, W, 2)`` (single- or multi-coil).
        rotations: ``S`` angles in degrees.
        translations: ``S`` pairs ``(dH, dW)`` in pixels.
        times: ``S`` fractions of the acquisition at which the pose changes.

    Returns:
        Corrupted k-space of the same shape.
    """
    check_complex_view("kspace", kspace)
    rot = as_number_list("rotations", list(rotations)) if len(rotations) else []
    tr = [as_number_list("translations", list(t)) for t in translations]
    tm = as_number_list("times", list(times)) if len(times) else []
    if not (len(rot) == len(tr) == len(tm)):
        raise ValueError(f"rotations, translations and times must have one entry per segment change, got "
                         f"{len(rot)}, {len(tr)} and {len(tm)}")
    if any(len(t) != 2 for t in tr):
        raise ValueError(f"translations must be (dH, dW) pairs, got {translations!r}")
    if any(not 0 < t < 1 for t in tm) or tm != sorted(tm):
        raise ValueError(f"times must be sorted fractions in (0, 1), got {times!r}")
    H, W = kspace.shape[-3], kspace.shape[-2]
    bounds = [0] + [int(round(t * W)) for t in tm] + [W]
    out = kspace.clone()
    image = None
    for s in range(1, len(bounds) - 1):
        lo, hi = bounds[s], bounds[s + 1]
        if hi <= lo:
            continue
        if rot[s - 1] == 0 and tr[s - 1] == [0.0, 0.0]:
            continue
        if rot[s - 1] != 0:
            if image is None:
                image = ifft2c(kspace)
            k_s = fft2c(_rotate_images(image, rot[s - 1]))[..., lo:hi, :]
        else:
            k_s = kspace[..., lo:hi, :]
        if tr[s - 1] != [0.0, 0.0]:
            k_s = _cmul(k_s, _phase_ramp(H, W, tr[s - 1], kspace.dtype, kspace.device)[:, lo:hi])
        out[..., lo:hi, :] = k_s
    return out


# ------------------------------------------------------------------------------ image <-> k-space
def _to_kspace(t: torch.Tensor) -> torch.Tensor:
    t = t if t.dtype in (torch.float32, torch.float64) else t.float()
    return fft2c(torch.stack([t, torch.zeros_like(t)], -1))


def _to_image(k: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    out = complex_abs(ifft2c(k))
    return out if not dtype.is_floating_point else out.to(dtype)


class _KSpaceTransform(Transform):
    """Image -> k-space -> ``self._corrupt(k, params, i)`` per sample -> magnitude image."""

    def _corrupt(self, kspace: torch.Tensor, params: Params, i: int, batch: Batch) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def apply(self, batch: Batch, params: Params) -> Batch:
        def one(t: torch.Tensor, key: str) -> torch.Tensor:
            k = _to_kspace(t)
            k = torch.cat([self._corrupt(k[i:i + 1], params, i, batch) for i in range(k.shape[0])], 0)
            return _to_image(k, t.dtype)

        return map_images(batch, one)


def _range(name: str, value: object, *, low: float | None = None, high: float | None = None) -> tuple[float, float]:
    values = as_number_list(name, value)
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or values[0] > values[1]:
        raise ValueError(f"{name} must be a number or a range (low, high) with low <= high, got {value!r}")
    if (low is not None and values[0] < low) or (high is not None and values[1] > high):
        raise ValueError(f"{name} must lie in [{low}, {high}], got {value!r}")
    return values[0], values[1]


def _draw(generator: torch.Generator, rng: tuple[float, float], shape: tuple[int, ...]) -> torch.Tensor:
    u = torch.rand(shape, generator=generator, device=generator.device, dtype=torch.float64)
    return rng[0] + (rng[1] - rng[0]) * u


# ------------------------------------------------------------------------------ transforms
def _pixel_size(batch: Batch, i: int) -> tuple[float, float]:
    if batch.affine is None:
        return 1.0, 1.0
    a = batch.affine[i, : batch.nd, : batch.nd]
    norms = torch.linalg.norm(a, dim=0).tolist()
    return norms[-2], norms[-1]


class Motion(_KSpaceTransform):
    """Rigid in-plane motion during the acquisition (:func:`rigid_motion`) of each slice.

    Args:
        rotations: degrees per pose change.
        translations: ``(dH, dW)`` per pose change, mm with an affine (in-plane voxel size
            from it), else pixels.
        times: sorted fractions of the acquisition in (0, 1) at which the pose changes.
    """

    def __init__(self, rotations: Sequence[float], translations: Sequence[Sequence[float]], times: Sequence[float], *,
                 labels: Iterable[str] = ()) -> None:
        super().__init__(labels=labels)
        self.rotations = [float(r) for r in rotations]
        self.translations = [[float(v) for v in t] for t in translations]
        self.times = [float(t) for t in times]
        if not len(self.rotations) == len(self.translations) == len(self.times):
            raise ValueError("rotations, translations and times must have the same length")
        if any(len(t) != 2 for t in self.translations):
            raise ValueError(f"translations must be (dH, dW) pairs, got {translations!r}")
        if any(not 0 < t < 1 for t in self.times) or self.times != sorted(self.times):
            raise ValueError(f"times must be sorted fractions in (0, 1), got {times!r}")

    def param_keys(self) -> tuple[str, ...]:
        return ("rotation", "translation", "times")

    def draw(self, batch: Batch, generator) -> Params:
        B, S = batch.batch_size, len(self.times)
        return {"rotation": torch.tensor(self.rotations, dtype=torch.float64).reshape(1, S).repeat(B, 1),
                "translation": torch.tensor(self.translations, dtype=torch.float64).reshape(1, S, 2).repeat(B, 1, 1),
                "times": torch.tensor(self.times, dtype=torch.float64).reshape(1, S).repeat(B, 1)}

    def _corrupt(self, kspace: torch.Tensor, params: Params, i: int, batch: Batch) -> torch.Tensor:
        dy, dx = _pixel_size(batch, i)
        tr = params["translation"][i].cpu() / torch.tensor([dy, dx], dtype=torch.float64)
        return rigid_motion(kspace, params["rotation"][i].tolist(), tr.tolist(), params["times"][i].tolist())


class RandomMotion(Motion):
    """Random motion (torchio's defaults): ``num_transforms`` pose changes at sorted uniform times.

    Args:
        degrees: rotation range (number ``x`` -> ``U(-x, x)``, or ``(low, high)``).
        translation: translation range per in-plane axis (mm with an affine, else pixels).
        num_transforms: number of pose changes (>= 1).
    """

    random = True

    def __init__(self, degrees: float | Sequence[float] = 10.0, translation: float | Sequence[float] = 10.0,
                 num_transforms: int = 2, *, labels: Iterable[str] = ()) -> None:
        Transform.__init__(self, labels=labels)
        self.degrees = _symmetric("degrees", degrees)
        self.translation = _symmetric("translation", translation)
        self.num_transforms = check_positive_int("num_transforms", num_transforms)

    def draw(self, batch: Batch, generator: torch.Generator) -> Params:
        B, S = batch.batch_size, self.num_transforms
        times = torch.sort(_draw(generator, (0.02, 0.98), (B, S)), dim=1).values
        return {"rotation": _draw(generator, self.degrees, (B, S)).cpu(),
                "translation": _draw(generator, self.translation, (B, S, 2)).cpu(),
                "times": times.cpu()}


def _symmetric(name: str, value: object) -> tuple[float, float]:
    values = as_number_list(name, value)
    if len(values) == 1:
        if values[0] < 0:
            raise ValueError(f"{name} as one number x means (-x, x) and must be >= 0, got {value!r}")
        return -values[0], values[0]
    return _range(name, values)


class Ghosting(_KSpaceTransform):
    """Ghosting (:func:`ghosting`) with fixed ``num_ghosts`` and ``intensity`` along ``axis``."""

    def __init__(self, num_ghosts: int, intensity: float, axis: int = -1, *, labels: Iterable[str] = ()) -> None:
        super().__init__(labels=labels)
        self.num_ghosts = check_positive_int("num_ghosts", num_ghosts, minimum=2)
        self.intensity = check_number("intensity", intensity, low=0.0)
        if self.intensity > 1:
            raise ValueError(f"intensity must be in [0, 1], got {intensity!r}")
        _plane_axis(axis)
        self.axis = axis

    def param_keys(self) -> tuple[str, ...]:
        return ("num_ghosts", "intensity")

    def draw(self, batch: Batch, generator) -> Params:
        B = batch.batch_size
        return {"num_ghosts": torch.full((B,), self.num_ghosts, dtype=torch.int64),
                "intensity": torch.full((B,), self.intensity, dtype=torch.float64)}

    def _corrupt(self, kspace, params, i, batch):
        return ghosting(kspace, int(params["num_ghosts"][i]), float(params["intensity"][i]), self.axis)


class RandomGhosting(Ghosting):
    """Ghosting with ``num_ghosts ~ U{low..high}`` and ``intensity ~ U(low, high)`` (torchio's defaults)."""

    random = True

    def __init__(self, num_ghosts: Sequence[int] | int = (4, 10), intensity: float | Sequence[float] = (0.5, 1.0),
                 axis: int = -1, *, labels: Iterable[str] = ()) -> None:
        Transform.__init__(self, labels=labels)
        lo, hi = _range("num_ghosts", num_ghosts, low=2)
        self.num_ghosts = (int(lo), int(hi))
        self.intensity = _range("intensity", intensity, low=0.0, high=1.0)
        _plane_axis(axis)
        self.axis = axis

    def draw(self, batch: Batch, generator: torch.Generator) -> Params:
        B = batch.batch_size
        lo, hi = self.num_ghosts
        n = torch.randint(lo, hi + 1, (B,), generator=generator, device=generator.device).cpu()
        return {"num_ghosts": n, "intensity": _draw(generator, self.intensity, (B,)).cpu()}


class Spike(_KSpaceTransform):
    """Spikes (:func:`spikes`) at fixed ``positions`` (``(S, 2)`` fractions) with ``intensity``."""

    def __init__(self, positions: Sequence[Sequence[float]], intensity: float, *, labels: Iterable[str] = ()) -> None:
        super().__init__(labels=labels)
        pos = torch.as_tensor(positions, dtype=torch.float64)
        if pos.ndim != 2 or pos.shape[1] != 2:
            raise ValueError(f"positions must be (S, 2) fractions of (H, W), got {describe(positions)}")
        if ((pos < -0.5) | (pos >= 0.5)).any():
            raise ValueError(f"positions must be in [-0.5, 0.5), got {positions!r}")
        self.positions = pos
        self.intensity = check_number("intensity", intensity)

    def param_keys(self) -> tuple[str, ...]:
        return ("positions", "intensity")

    def draw(self, batch: Batch, generator) -> Params:
        B = batch.batch_size
        return {"positions": self.positions.expand(B, -1, -1).clone(), "intensity": torch.full((B,), self.intensity, dtype=torch.float64)}

    def _corrupt(self, kspace, params, i, batch):
        return spikes(kspace, params["positions"][i], float(params["intensity"][i]))


class RandomSpike(Spike):
    """``num_spikes`` spikes at uniform positions, ``intensity ~ U(low, high)`` (torchio's defaults 1, (1, 3))."""

    random = True

    def __init__(self, num_spikes: int = 1, intensity: float | Sequence[float] = (1.0, 3.0), *,
                 labels: Iterable[str] = ()) -> None:
        Transform.__init__(self, labels=labels)
        self.num_spikes = check_positive_int("num_spikes", num_spikes)
        self.intensity = _range("intensity", intensity)

    def draw(self, batch: Batch, generator: torch.Generator) -> Params:
        B = batch.batch_size
        return {"positions": _draw(generator, (-0.5, 0.5), (B, self.num_spikes, 2)).clamp(max=0.4999).cpu(),
                "intensity": _draw(generator, self.intensity, (B,)).cpu()}


class Gibbs(_KSpaceTransform):
    """Gibbs ringing: keep the central ``fraction`` of k-space along ``axes`` (:func:`gibbs_truncate`)."""

    def __init__(self, fraction: float, axes: Sequence[int] = (-2, -1), *, labels: Iterable[str] = ()) -> None:
        super().__init__(labels=labels)
        self.fraction = check_number("fraction", fraction, low=0.0, strict=True)
        if self.fraction > 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
        self.axes = tuple(axes) if isinstance(axes, (list, tuple)) else (axes,)
        for a in self.axes:
            _plane_axis(a)

    def param_keys(self) -> tuple[str, ...]:
        return ("fraction",)

    def draw(self, batch: Batch, generator) -> Params:
        return {"fraction": torch.full((batch.batch_size,), self.fraction, dtype=torch.float64)}

    def _corrupt(self, kspace, params, i, batch):
        return gibbs_truncate(kspace, float(params["fraction"][i]), self.axes)


class RandomGibbs(Gibbs):
    """Gibbs ringing with ``fraction ~ U(low, high)`` in (0, 1]."""

    random = True

    def __init__(self, fraction: float | Sequence[float] = (0.4, 0.8), axes: Sequence[int] = (-2, -1), *,
                 labels: Iterable[str] = ()) -> None:
        Transform.__init__(self, labels=labels)
        self.fraction = _range("fraction", fraction, low=0.0, high=1.0)
        if self.fraction[0] <= 0:
            raise ValueError(f"fraction must be > 0, got {fraction!r}")
        self.axes = tuple(axes) if isinstance(axes, (list, tuple)) else (axes,)
        for a in self.axes:
            _plane_axis(a)

    def draw(self, batch: Batch, generator: torch.Generator) -> Params:
        return {"fraction": _draw(generator, self.fraction, (batch.batch_size,)).cpu()}


class Undersample(_KSpaceTransform):
    """Zero-filled undersampling: magnitude of ``ifft2c(mask * fft2c(image))`` per slice.

    Give either a fixed ``mask`` (tensor broadcastable against ``(..., H, W, 2)``, e.g.
    ``(1, 1, W, 1)``) or a ``mask_func`` ``(shape, offset, seed) -> (mask, num_low_frequencies)``
    (fastMRI ``MaskFunc`` semantics, e.g. ``recon.masks.create_mask_for_mask_type(...)``), called
    with ``shape = (1, H, W, 2)`` and a per-sample seed drawn from the generator (random transform).
    """

    def __init__(self, mask: torch.Tensor | None = None, mask_func: Callable | None = None, *, labels: Iterable[str] = ()) -> None:
        super().__init__(labels=labels)
        if (mask is None) == (mask_func is None):
            raise ValueError("give exactly one of mask and mask_func")
        if mask is not None and not isinstance(mask, torch.Tensor):
            raise TypeError(f"mask must be a torch.Tensor, got {describe(mask)}")
        if mask_func is not None and not callable(mask_func):
            raise TypeError(f"mask_func must be callable (shape, offset, seed) -> (mask, num_low_frequencies), got {describe(mask_func)}")
        self.mask, self.mask_func = mask, mask_func
        self.random = mask_func is not None

    def param_keys(self) -> tuple[str, ...]:
        return ("seed",) if self.mask_func is not None else ()

    def draw(self, batch: Batch, generator) -> Params:
        if self.mask_func is None:
            return {}
        return {"seed": draw_seeds(generator, batch.batch_size).cpu() % (2**31)}

    def _corrupt(self, kspace, params, i, batch):
        if self.mask_func is None:
            return undersample(kspace, self.mask)
        H, W = kspace.shape[-3], kspace.shape[-2]
        result = self.mask_func((1, H, W, 2), None, int(params["seed"][i]))
        mask = result[0] if isinstance(result, tuple) else result
        if not isinstance(mask, torch.Tensor):
            raise TypeError(f"mask_func must return (mask tensor, num_low_frequencies), got {describe(result)}")
        return undersample(kspace, mask)
