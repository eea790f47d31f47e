"""Undersampling masks for Cartesian k-space.

Two families live here:

* **fastMRI-exact 1-D (column) masks** — :class:`RandomMaskFunc`, :class:`EquiSpacedMaskFunc`,
  :class:`EquispacedMaskFractionFunc`, :class:`MagicMaskFunc`, :class:`MagicMaskFractionFunc`.
  For the same constructor arguments, ``shape``, ``offset`` and ``seed`` they return exactly the
  mask tensor and ``num_low_frequencies`` of ``fastmri.data.subsample`` (fastmri 0.3.0): same
  random draws in the same order, same rounding, same float32 dtype and shape
  ``(1, ..., 1, W, 1)``. This is what makes the fastMRI validation/test masks reproducible
  (fastMRI seeds a volume with ``tuple(map(ord, filename))``).
* **variable-density masks** that fastMRI lacks — :class:`GaussianMaskFunc1D` (columns),
  :class:`GaussianMaskFunc2D` and :class:`PoissonDiscMaskFunc2D` (points in the ``H x W`` plane).

Every mask function owns a private :class:`numpy.random.RandomState`; nothing here reads or
changes numpy's or torch's global random state. Calling with ``seed=None`` continues the object's
own stream; calling with a seed draws from a fresh stream seeded with it and then puts the object's
stream back where it was (fastMRI's ``temp_seed`` behaviour), so a seeded call is a pure function of
``(shape, offset, seed)``.

Example:
    >>> import torch
    >>> from recon.masks import create_mask_for_mask_type, apply_mask
    >>> mask_func = create_mask_for_mask_type("equispaced_fraction", [0.08], [4])
    >>> mask, num_low = mask_func((1, 640, 368, 2), seed=tuple(map(ord, "file1000001.h5")))
    >>> tuple(mask.shape), num_low
    ((1, 1, 368, 1), 29)
    >>> kspace = torch.randn(15, 640, 368, 2)
    >>> masked, mask, num_low = apply_mask(kspace, mask_func, seed=0)
"""

from __future__ import annotations

import numbers
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch

from recon.ops._checks import check_complex_view, describe

__all__ = [
    "MaskFunc",
    "RandomMaskFunc",
    "EquiSpacedMaskFunc",
    "EquispacedMaskFractionFunc",
    "MagicMaskFunc",
    "MagicMaskFractionFunc",
    "GaussianMaskFunc1D",
    "GaussianMaskFunc2D",
    "PoissonDiscMaskFunc2D",
    "MASK_TYPES",
    "create_mask_for_mask_type",
    "apply_mask",
    "volume_seed",
]

Seed = Union[int, Tuple[int, ...]]


def volume_seed(fname: str) -> tuple[int, ...]:
    """fastMRI's per-volume mask seed: the character codes of the file name, so that every
    slice of a volume gets the same mask (``recon reconstruct``, the transforms, simulation)."""
    return tuple(map(ord, fname))


# --------------------------------------------------------------------------------------------
# argument checks (private)
# --------------------------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_number_list(name: str, value: object) -> tuple:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) and not (
        isinstance(value, np.ndarray) and value.ndim == 1
    ):
        raise ValueError(f"{name} must be a non-empty sequence of numbers, got {describe(value)}")
    items = tuple(value)
    if len(items) == 0 or not all(_is_real(v) for v in items):
        raise ValueError(f"{name} must be a non-empty sequence of numbers, got {value!r}")
    return items


def _check_seed(name: str, seed: object, allow_none: bool = True) -> Optional[Seed]:
    """A seed is None, an int in [0, 2**32), or a non-empty sequence of such ints."""
    if seed is None and allow_none:
        return None
    if _is_int(seed):
        if not 0 <= int(seed) < 2**32:
            raise ValueError(f"{name} must be an integer in [0, 2**32), got {seed!r}")
        return seed
    if isinstance(seed, (tuple, list, np.ndarray)) and not isinstance(seed, (str, bytes)):
        items = tuple(seed)
        if items and all(_is_int(v) and 0 <= int(v) < 2**32 for v in items):
            return tuple(items)
    raise ValueError(
        f"{name} must be None, an integer in [0, 2**32) or a non-empty tuple of such integers "
        f"(e.g. tuple(map(ord, filename))), got {describe(seed)}"
    )


def _check_shape(shape: object) -> Tuple[int, ...]:
    if isinstance(shape, torch.Size):
        shape = tuple(shape)
    if (
        not isinstance(shape, (tuple, list))
        or len(shape) < 3
        or not all(_is_int(s) and s >= 1 for s in shape)
    ):
        raise ValueError(
            "shape must be a sequence of at least 3 positive ints (..., H, W, 2), "
            f"got {describe(shape)}"
        )
    return tuple(int(s) for s in shape)


def _check_offset(offset: object) -> Optional[int]:
    if offset is None:
        return None
    if not _is_int(offset) or offset < 0:
        raise ValueError(f"offset must be None or a non-negative int, got {describe(offset)}")
    return int(offset)


# --------------------------------------------------------------------------------------------
# base class
# --------------------------------------------------------------------------------------------


class MaskFunc:
    """Base class of the column (1-D) mask functions: fully sampled centre + outer lines.

    A call draws ``(center_fraction, acceleration)``, builds the centre mask of
    ``num_low_frequencies = round(W * center_fraction)`` adjacent columns starting at
    ``(W - num_low_frequencies + 1) // 2`` and the acceleration mask of the outer columns, and
    returns their union. Subclasses override :meth:`calculate_acceleration_mask` (or
    :meth:`sample_mask`), exactly like fastMRI's ``MaskFunc``.

    Args:
        center_fractions: fractions of low-frequency columns kept. One ``(center_fraction,
            acceleration)`` pair is drawn uniformly per call.
        accelerations: undersampling factors (``>= 1``), same length as ``center_fractions``
            unless ``allow_any_combination``.
        allow_any_combination: draw the centre fraction and the acceleration independently.
        seed: seed of the object's private random stream (int or tuple of ints); ``None`` seeds
            it from the operating system.

    Raises:
        ValueError: lengths differ (and not ``allow_any_combination``), a centre fraction
            outside [0, 1] (or NaN), an acceleration below 1, infinite or NaN, or an invalid
            seed.
    """

    #: Whether accelerations must be whole numbers (used as a slicing step).
    _integer_accelerations = False
    #: Whether the mask samples points of the ``H x W`` plane (else columns of ``W``).
    _two_d = False

    def __init__(
        self,
        center_fractions: Sequence[float],
        accelerations: Sequence[float],
        allow_any_combination: bool = False,
        seed: Optional[Seed] = None,
    ):
        center_fractions = _check_number_list("center_fractions", center_fractions)
        accelerations = _check_number_list("accelerations", accelerations)
        if len(center_fractions) != len(accelerations) and not allow_any_combination:
            raise ValueError(
                "center_fractions and accelerations must have the same length unless "
                f"allow_any_combination=True, got {len(center_fractions)} center_fractions "
                f"{list(center_fractions)} and {len(accelerations)} accelerations "
                f"{list(accelerations)}"
            )
        bad = [f for f in center_fractions if not 0 <= f <= 1]
        if bad:
            raise ValueError(f"center_fractions must lie in [0, 1], got {list(center_fractions)}")
        bad = [a for a in accelerations if not (np.isfinite(float(a)) and a >= 1)]
        if bad:
            raise ValueError(f"accelerations must be finite numbers >= 1, got {list(accelerations)}")
        if self._integer_accelerations and not all(float(a).is_integer() for a in accelerations):
            raise ValueError(
                f"accelerations of {type(self).__name__} must be whole numbers (a line spacing), "
                f"got {list(accelerations)}"
            )
        self.center_fractions = center_fractions
        self.accelerations = accelerations
        self.allow_any_combination = bool(allow_any_combination)
        self.rng = np.random.RandomState(_check_seed("seed", seed))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(center_fractions={list(self.center_fractions)}, "
            f"accelerations={list(self.accelerations)}, "
            f"allow_any_combination={self.allow_any_combination})"
        )

    def __call__(
        self,
        shape: Sequence[int],
        offset: Optional[int] = None,
        seed: Optional[Seed] = None,
    ) -> Tuple[torch.Tensor, int]:
        """Draw a mask for k-space of the given shape.

        Args:
            shape: k-space shape ``(..., H, W, 2)``, at least 3 dims; columns are ``shape[-2]``.
            offset: first outer line for equispaced/magic masks; ``None`` draws it. Ignored by
                random and variable-density masks.
            seed: int or tuple of ints. When given, the draw uses a stream seeded with it and
                the object's own stream is left untouched; ``None`` continues the own stream.

        Returns:
            ``(mask, num_low_frequencies)``: a float32 CPU tensor of 0/1 with ``len(shape)``
            dims, all of size 1 except ``W`` at dim -2 (and ``H`` at dim -3 for 2-D masks),
            and the number of fully sampled centre columns (an int).

        Raises:
            ValueError: ``shape`` with fewer than 3 dims, a negative ``offset`` or an invalid
                ``seed``; a ``shape`` too small for the largest acceleration (fewer than
                ``acceleration`` columns, or points for 2-D masks); a draw that samples
                nothing (possible with ``center_fractions`` of 0 on small shapes, or an
                ``offset`` beyond the last column) - never an all-zero mask.
        """
        shape = _check_shape(shape)
        offset = _check_offset(offset)
        seed = _check_seed("seed", seed)
        self._check_shape_fits(shape)
        if seed is None:
            center_mask, accel_mask, num_low = self.sample_mask(shape, offset)
        else:
            own_state = self.rng.get_state()
            self.rng.seed(seed)
            try:
                center_mask, accel_mask, num_low = self.sample_mask(shape, offset)
            finally:
                self.rng.set_state(own_state)
        mask = torch.maximum(center_mask, accel_mask)
        if not bool(mask.any()):
            raise ValueError(
                f"{type(self).__name__} sampled no k-space line for shape {tuple(shape)} "
                f"(offset={offset}, seed={seed}): the shape is too small for accelerations "
                f"{list(self.accelerations)} with center_fractions {list(self.center_fractions)}; "
                "use a centre fraction > 0, a smaller acceleration or a larger shape"
            )
        return mask, num_low

    def _check_shape_fits(self, shape: Tuple[int, ...]) -> None:
        """Refuse shapes with fewer lines (points) than the largest acceleration."""
        lines = shape[-3] * shape[-2] if self._two_d else shape[-2]
        largest = max(self.accelerations)
        if lines < largest:
            what = f"H x W = {shape[-3]} x {shape[-2]} points" if self._two_d else f"W = {shape[-2]} columns"
            raise ValueError(
                f"shape {tuple(shape)} is too small for acceleration {largest}: {what}, fewer than "
                f"the acceleration, so not one line could be sampled at that rate"
            )

    # -- pieces that subclasses combine ------------------------------------------------------

    def choose_acceleration(self) -> Tuple[float, float]:
        """Draw ``(center_fraction, acceleration)`` from the object's stream."""
        if self.allow_any_combination:
            center_fraction = self.rng.choice(self.center_fractions)
            acceleration = self.rng.choice(self.accelerations)
            return center_fraction, acceleration
        index = self.rng.randint(len(self.center_fractions))
        return self.center_fractions[index], self.accelerations[index]

    def sample_mask(
        self, shape: Sequence[int], offset: Optional[int]
    ) -> Tuple[torch.Tensor, torch.Tensor, int]:
        """Draw the centre mask, the acceleration mask and ``num_low_frequencies``."""
        num_cols = shape[-2]
        center_fraction, acceleration = self.choose_acceleration()
        num_low = round(num_cols * center_fraction)
        center = self.calculate_center_mask(shape, num_low)
        accel = self.calculate_acceleration_mask(num_cols, acceleration, offset, num_low)
        return self.reshape_mask(center, shape), self.reshape_mask(accel, shape), num_low

    def calculate_center_mask(self, shape: Sequence[int], num_low_freqs: int) -> np.ndarray:
        """1-D mask of ``num_low_freqs`` adjacent columns around the k-space centre."""
        num_cols = shape[-2]
        mask = np.zeros(num_cols, dtype=np.float32)
        start = (num_cols - num_low_freqs + 1) // 2
        mask[start : start + num_low_freqs] = 1
        return mask

    def calculate_acceleration_mask(
        self,
        num_cols: int,
        acceleration: float,
        offset: Optional[int],
        num_low_frequencies: int,
    ) -> np.ndarray:
        """1-D mask of the outer (high-frequency) columns; implemented by subclasses."""
        raise NotImplementedError

    def reshape_mask(self, mask: np.ndarray, shape: Sequence[int]) -> torch.Tensor:
        """Column mask ``(W,)`` -> float32 tensor with ``len(shape)`` dims, ``W`` at dim -2."""
        view = [1] * len(shape)
        view[-2] = shape[-2]
        return torch.from_numpy(np.asarray(mask).reshape(view).astype(np.float32))


# --------------------------------------------------------------------------------------------
# fastMRI's five column masks
# --------------------------------------------------------------------------------------------


class RandomMaskFunc(MaskFunc):
    """Fully sampled centre plus outer columns drawn independently at random (fastMRI).

    Each outer column is kept with probability
    ``p = (W / acceleration - num_low) / (W - num_low)``, so the expected number of sampled
    columns is ``W / acceleration``. One uniform number is drawn per column (centre included),
    after the draw of ``(center_fraction, acceleration)``.
    """

    def calculate_acceleration_mask(self, num_cols, acceleration, offset, num_low_frequencies):
        draws = self.rng.uniform(size=num_cols)
        if num_low_frequencies >= num_cols:  # centre covers everything (fastMRI divides by 0)
            return np.zeros(num_cols, dtype=np.float32)
        prob = (num_cols / acceleration - num_low_frequencies) / (num_cols - num_low_frequencies)
        return draws < prob


class EquiSpacedMaskFunc(MaskFunc):
    """Fully sampled centre plus every ``acceleration``-th column from ``offset`` (fastMRI).

    The outer lines are exactly equispaced (GRAPPA style), so together with the centre the
    true acceleration is below ``acceleration``. ``offset=None`` draws it in
    ``[0, acceleration)``. Accelerations must be whole numbers.
    """

    _integer_accelerations = True

    def calculate_acceleration_mask(self, num_cols, acceleration, offset, num_low_frequencies):
        if offset is None:
            offset = self.rng.randint(0, high=round(acceleration))
        mask = np.zeros(num_cols, dtype=np.float32)
        mask[offset :: int(acceleration)] = 1
        return mask


class EquispacedMaskFractionFunc(MaskFunc):
    """Centre plus near-equispaced columns that hit the target acceleration (fastMRI).

    The outer spacing is adjusted for the centre,
    ``s = acceleration * (num_low - W) / (num_low * acceleration - W)``, and the outer lines are
    ``round(offset + k * s)`` for ``offset + k * s < W - 1`` (numpy ``arange`` + ``around``), so
    they are only approximately equispaced — this reproduces the public fastMRI multi-coil
    masks. ``offset=None`` draws it in ``[0, round(s))``. Where the centre alone already
    reaches the target (``num_low * acceleration >= W``) fastMRI fails; here the outer mask is
    then empty and no offset is drawn.
    """

    def calculate_acceleration_mask(self, num_cols, acceleration, offset, num_low_frequencies):
        denominator = num_low_frequencies * acceleration - num_cols
        if denominator >= 0:
            return np.zeros(num_cols, dtype=np.float32)
        spacing = (acceleration * (num_low_frequencies - num_cols)) / denominator
        if offset is None:
            offset = self.rng.randint(0, high=round(spacing))
        lines = np.around(np.arange(offset, num_cols - 1, spacing)).astype(np.uint)
        mask = np.zeros(num_cols)
        mask[lines] = 1.0
        return mask


class MagicMaskFunc(MaskFunc):
    """Equispaced mask with conjugate-symmetry-aware offsets (Defazio 2019; fastMRI).

    The positive and negative halves of k-space get equispaced lines with offsets that differ
    by one, so the two halves sample complementary conjugate positions. ``offset=None`` draws
    it in ``[0, acceleration)``. Accelerations must be whole numbers.

    Reference: A. Defazio, "Offset Sampling Improves Deep Learning based Accelerated MRI
    Reconstructions by Exploiting Symmetry", arXiv:1912.01101, 2019.
    """

    _integer_accelerations = True

    def calculate_acceleration_mask(self, num_cols, acceleration, offset, num_low_frequencies):
        step = int(acceleration)
        if offset is None:
            offset = self.rng.randint(0, high=step)
        if offset % 2 == 0:
            start_pos, start_neg = offset + 1, offset + 2
        else:
            start_pos, start_neg = offset + 2, offset - 1
        len_pos = (num_cols + 1) // 2
        positive = np.zeros(len_pos, dtype=np.float32)
        negative = np.zeros(num_cols - len_pos, dtype=np.float32)
        positive[start_pos::step] = 1
        negative[start_neg::step] = 1
        return np.fft.fftshift(np.concatenate((positive, negative[::-1])))


class MagicMaskFractionFunc(MagicMaskFunc):
    """Magic (offset) mask whose outer spacing is adjusted to hit the target acceleration.

    ``num_low`` is clipped to ``[1, round(W / acceleration)]`` and the outer spacing is
    ``round(W / (round(W / acceleration) - num_low))`` (fastMRI). Where no outer lines are
    left to place fastMRI fails; here the outer mask is then empty and no offset is drawn.
    Accelerations may be fractional.
    """

    _integer_accelerations = False

    def sample_mask(self, shape, offset):
        num_cols = shape[-2]
        center_fraction, acceleration = self.choose_acceleration()
        target = round(num_cols / acceleration)
        num_low = max(min(round(num_cols * center_fraction), target), 1)
        outer = target - num_low
        center = self.calculate_center_mask(shape, num_low)
        if outer > 0:
            spacing = round(num_cols / outer)
            accel = self.calculate_acceleration_mask(num_cols, spacing, offset, num_low)
        else:
            accel = np.zeros(num_cols, dtype=np.float32)
        return self.reshape_mask(center, shape), self.reshape_mask(accel, shape), num_low


# --------------------------------------------------------------------------------------------
# variable-density masks (not in fastMRI)
# --------------------------------------------------------------------------------------------


def _weighted_sample_without_replacement(
    rng: np.random.RandomState, log_weights: np.ndarray, count: int
) -> np.ndarray:
    """Indices of ``count`` items drawn without replacement with probability ∝ weight.

    Gumbel-top-k: the ``count`` largest ``log w + Gumbel`` keys form a draw of successive
    weighted sampling without replacement; it works in log space, so no weight underflows.
    One uniform number is drawn per item.
    """
    uniform = rng.uniform(size=log_weights.shape[0])
    with np.errstate(divide="ignore"):
        keys = log_weights - np.log(-np.log(uniform))
    if count <= 0:
        return np.zeros(0, dtype=np.int64)
    if count >= keys.size:
        return np.arange(keys.size)
    return np.argpartition(-keys, count - 1)[:count]  # the set of the largest keys


def _center_slice(size: int, count: int) -> slice:
    start = (size - count + 1) // 2
    return slice(start, start + count)


class _VariableDensityMaskFunc(MaskFunc):
    """Shared constructor of the variable-density masks (``std``: Gaussian width)."""

    def __init__(
        self,
        center_fractions: Sequence[float],
        accelerations: Sequence[float],
        allow_any_combination: bool = False,
        seed: Optional[Seed] = None,
        std: float = 0.25,
    ):
        super().__init__(center_fractions, accelerations, allow_any_combination, seed)
        if not _is_real(std) or not std > 0 or not np.isfinite(std):
            raise ValueError(f"std must be a positive finite number, got {describe(std)}")
        self.std = float(std)

    def _draw_center_block(self, shape: Sequence[int]) -> Tuple[np.ndarray, int, int, float]:
        """Draw ``(center_fraction, acceleration)``; return the fully sampled centre block as an
        ``(H, W)`` 0/1 mask, its number of rows and columns, and the acceleration."""
        num_rows, num_cols = shape[-3], shape[-2]
        center_fraction, acceleration = self.choose_acceleration()
        low_rows, num_low = round(num_rows * center_fraction), round(num_cols * center_fraction)
        center = np.zeros((num_rows, num_cols), dtype=np.float32)
        center[_center_slice(num_rows, low_rows), _center_slice(num_cols, num_low)] = 1
        return center, low_rows, num_low, acceleration

    @staticmethod
    def _plane_masks(shape: Sequence[int], center: np.ndarray, accel: np.ndarray, num_low: int):
        """``(center, accel, num_low)`` with the ``(H, W)`` masks as tensors of ``len(shape)`` dims."""
        view = [1] * len(shape)
        view[-3], view[-2] = shape[-3], shape[-2]
        return torch.from_numpy(center.reshape(view)), torch.from_numpy(accel.reshape(view)), num_low


class GaussianMaskFunc1D(_VariableDensityMaskFunc):
    """Column mask: fully sampled centre plus outer columns drawn with Gaussian density.

    ``num_low = round(W * center_fraction)`` centre columns (placed as in fastMRI) plus exactly
    ``max(round(W / acceleration) - num_low, 0)`` outer columns drawn without replacement with
    probability ∝ ``exp(-(c - W // 2)**2 / (2 (std W)**2))`` (column ``W // 2`` is the k-space
    centre of :func:`recon.ops.fft2c`). The total number of sampled columns is therefore
    ``max(round(W / acceleration), num_low)``, deterministic. ``offset`` is ignored.

    Args:
        center_fractions, accelerations, allow_any_combination, seed: as :class:`MaskFunc`.
        std: standard deviation of the density as a fraction of ``W`` (default 0.25).
    """

    def calculate_acceleration_mask(self, num_cols, acceleration, offset, num_low_frequencies):
        columns = np.arange(num_cols)
        outer = np.ones(num_cols, dtype=bool)
        outer[_center_slice(num_cols, num_low_frequencies)] = False
        candidates = columns[outer]
        distance = (candidates - num_cols // 2) / (self.std * num_cols)
        count = min(max(round(num_cols / acceleration) - num_low_frequencies, 0), candidates.size)
        chosen = _weighted_sample_without_replacement(self.rng, -0.5 * distance**2, count)
        mask = np.zeros(num_cols, dtype=np.float32)
        mask[candidates[chosen]] = 1
        return mask


class GaussianMaskFunc2D(_VariableDensityMaskFunc):
    """Point mask in the ``H x W`` plane: fully sampled centre block plus Gaussian-density points.

    The centre block is ``round(H * cf) x round(W * cf)`` (each side placed as fastMRI places its
    centre columns); exactly ``max(round(H W / acceleration) - block, 0)`` further points are
    drawn without replacement with probability ∝ a separable Gaussian of standard deviation
    ``std * H`` and ``std * W`` around ``(H // 2, W // 2)``. ``offset`` is ignored.

    Returns from a call a mask with ``len(shape)`` dims, ``H`` at dim -3 and ``W`` at dim -2
    (``(1, H, W, 1)`` for a shape ``(C, H, W, 2)``), and ``num_low_frequencies = round(W * cf)``,
    the number of columns of the fully sampled block (what a VarNet sensitivity model uses).

    Args:
        center_fractions, accelerations, allow_any_combination, seed: as :class:`MaskFunc`.
        std: standard deviation of the density as a fraction of each side (default 0.25).
    """

    _two_d = True

    def sample_mask(self, shape, offset):
        center, low_rows, num_low, acceleration = self._draw_center_block(shape)
        num_rows, num_cols = center.shape
        rows, cols = np.meshgrid(np.arange(num_rows), np.arange(num_cols), indexing="ij")
        dy = (rows - num_rows // 2) / (self.std * num_rows)
        dx = (cols - num_cols // 2) / (self.std * num_cols)
        outer = center.ravel() == 0
        candidates = np.flatnonzero(outer)
        count = round(num_rows * num_cols / acceleration) - low_rows * num_low
        count = min(max(count, 0), candidates.size)
        log_weights = (-0.5 * (dy**2 + dx**2)).ravel()[candidates]
        chosen = _weighted_sample_without_replacement(self.rng, log_weights, count)
        accel = np.zeros(num_rows * num_cols, dtype=np.float32)
        accel[candidates[chosen]] = 1
        return self._plane_masks(shape, center, accel, num_low)


class PoissonDiscMaskFunc2D(_VariableDensityMaskFunc):
    """Variable-density Poisson-disc point mask in the ``H x W`` plane.

    Points are placed by Bridson's Poisson-disc algorithm (sigpy's numba kernel
    ``sigpy.mri.samp._poisson``) with an elliptical exclusion radius that grows linearly with the
    normalised k-space radius ``r`` outside the centre block, ``1 + s r`` (in units of the grid
    spacing, scaled by ``H / max(H, W)`` and ``W / max(H, W)``, at least 1), as in
    :func:`sigpy.mri.poisson`; the corners ``r >= 1`` are left empty and the fully sampled centre
    block ``round(H * cf) x round(W * cf)`` is placed as in :class:`GaussianMaskFunc2D`. The slope
    ``s`` is found by at most ``max_iterations`` bisection steps so that the acceleration of the
    final mask is within ``tol`` of the target; if that is not met, the closest mask found is
    returned when it is within 5% of the target. (``sigpy.mri.poisson`` itself can bisect forever
    on small grids, so it is not called.) The kernel's seed is drawn from this object's stream;
    the kernel draws from numba's own generator, never numpy's or torch's. An acceleration of 1
    gives an all-ones mask. ``offset`` is ignored and ``std`` is unused (uniform signature).
    Mask shape and ``num_low_frequencies`` as :class:`GaussianMaskFunc2D`.

    Raises:
        ValueError: from a call, when no mask within 5% of the requested acceleration is found
            (e.g. tiny grids with high acceleration).
    """

    _two_d = True

    tol = 0.1
    max_iterations = 40
    max_attempts = 30

    def sample_mask(self, shape, offset):
        center, low_rows, num_low, acceleration = self._draw_center_block(shape)
        kernel_seed = int(self.rng.randint(0, 2**31 - 1))
        if acceleration <= 1:
            accel = np.ones_like(center)
        else:
            accel = self._search(*center.shape, low_rows, num_low, center, acceleration, kernel_seed)
        return self._plane_masks(shape, center, accel, num_low)

    def _search(self, num_rows, num_cols, low_rows, num_low, center, acceleration, kernel_seed):
        try:  # sigpy's numba kernel; imported lazily (numba is a heavy import)
            from sigpy.mri.samp import _poisson
        except ImportError as err:
            raise ImportError(
                "PoissonDiscMaskFunc2D needs sigpy>=0.1.25 (sigpy.mri.samp._poisson)"
            ) from err

        def outside(size: int, low: int) -> np.ndarray:
            distance = np.maximum(np.abs(np.arange(size) - size // 2) - low / 2, 0.0)
            peak = distance.max()
            return distance / peak if peak > 0 else distance

        y = outside(num_rows, low_rows)[:, None]
        x = outside(num_cols, num_low)[None, :]
        radius = np.sqrt(x**2 + y**2)
        inside = radius < 1
        longest = max(num_rows, num_cols)
        slope_low, slope_high = 0.0, float(longest)
        best, best_error = None, np.inf
        for _ in range(self.max_iterations):
            slope = (slope_low + slope_high) / 2
            growth = 1 + radius * slope
            radius_x = np.clip(growth * num_cols / longest, 1, None)
            radius_y = np.clip(growth * num_rows / longest, 1, None)
            points = _poisson(
                num_cols, num_rows, self.max_attempts, radius_x, radius_y, (0, 0), kernel_seed
            )
            mask = np.maximum(points * inside, center).astype(np.float32)
            achieved = mask.size / mask.sum()
            error = abs(achieved - acceleration)
            if error < best_error:
                best, best_error = mask, error
            if error < self.tol:
                break
            if achieved < acceleration:
                slope_low = slope
            else:
                slope_high = slope
        if best_error >= max(self.tol, 0.05 * acceleration):
            raise ValueError(
                f"PoissonDiscMaskFunc2D cannot reach acceleration {acceleration} on a "
                f"{num_rows} x {num_cols} grid with a {low_rows} x {num_low} centre "
                f"(closest: {acceleration + best_error if best is not None else 'none'})"
            )
        return best


# --------------------------------------------------------------------------------------------
# factory and application
# --------------------------------------------------------------------------------------------

MASK_TYPES = {
    "random": RandomMaskFunc,
    "equispaced": EquiSpacedMaskFunc,
    "equispaced_fraction": EquispacedMaskFractionFunc,
    "magic": MagicMaskFunc,
    "magic_fraction": MagicMaskFractionFunc,
    "gaussian1d": GaussianMaskFunc1D,
    "gaussian2d": GaussianMaskFunc2D,
    "poisson2d": PoissonDiscMaskFunc2D,
}
"""Mask type names accepted by :func:`create_mask_for_mask_type` and their classes."""


def create_mask_for_mask_type(
    mask_type: str,
    center_fractions: Sequence[float],
    accelerations: Sequence[float],
    *,
    seed: Optional[Seed] = None,
) -> MaskFunc:
    """Build a mask function by name (fastMRI's ``create_mask_for_mask_type`` plus ours).

    Args:
        mask_type: one of ``random``, ``equispaced``, ``equispaced_fraction``, ``magic``,
            ``magic_fraction`` (fastMRI-exact) or ``gaussian1d``, ``gaussian2d``, ``poisson2d``.
        center_fractions: fractions of the k-space centre that are fully sampled.
        accelerations: undersampling factors, same length as ``center_fractions``.
        seed: seed of the mask function's own stream (fastMRI leaves it unseeded).

    Returns:
        A callable ``(shape, offset=None, seed=None) -> (mask, num_low_frequencies)``.

    Raises:
        ValueError: an unknown ``mask_type``; centre fractions outside [0, 1] or NaN;
            accelerations below 1, infinite or NaN; lengths that differ; an invalid seed.
            (The returned function raises ``ValueError`` for shapes too small for its
            accelerations instead of returning an all-zero mask.)

    Example:
        >>> mask_func = create_mask_for_mask_type("random", [0.08, 0.04], [4, 8])
        >>> mask, num_low = mask_func((1, 640, 368, 2), seed=tuple(map(ord, "file1000001.h5")))
        >>> num_low, int(mask.sum())
        (15, 48)
    """
    if not isinstance(mask_type, str) or mask_type not in MASK_TYPES:
        raise ValueError(
            f"mask_type must be one of {sorted(MASK_TYPES)}, got {describe(mask_type)}"
        )
    return MASK_TYPES[mask_type](center_fractions, accelerations, seed=seed)


def apply_mask(
    data: torch.Tensor,
    mask_func: MaskFunc,
    offset: Optional[int] = None,
    seed: Optional[Seed] = None,
    padding: Optional[Sequence[int]] = None,
) -> Tuple[torch.Tensor, torch.Tensor, int]:
    """Undersample k-space with a mask drawn for its shape (fastMRI's ``apply_mask``).

    The mask is drawn for the shape ``(1, ..., 1, H, W, 2)`` (every leading dim set to 1, so
    the mask does not depend on the number of coils or slices); columns outside
    ``[padding[0], padding[1])`` are zeroed in the mask; the result is ``data * mask + 0.0``
    (the ``+ 0.0`` turns ``-0.0`` into ``0.0``), with torch's type promotion.

    Args:
        data: k-space ``(..., H, W, 2)``, at least 3 dims.
        mask_func: any callable ``(shape, offset, seed) -> (mask, num_low_frequencies)``.
        offset: passed to ``mask_func``.
        seed: passed to ``mask_func`` (int or tuple of ints).
        padding: ``(left, right)`` column range that holds data; columns outside are unsampled.

    Returns:
        ``(masked_data, mask, num_low_frequencies)``; ``mask`` is on ``data``'s device.

    Raises:
        TypeError: ``data`` is not a real floating tensor.
        ValueError: ``data`` with fewer than 3 dims or a last dim not 2; ``mask_func`` not
            callable; ``padding`` not a pair of ints.

    Example:
        >>> kspace = torch.randn(15, 640, 368, 2)
        >>> mask_func = create_mask_for_mask_type("equispaced_fraction", [0.08], [4])
        >>> masked, mask, num_low = apply_mask(kspace, mask_func, seed=0, padding=(17, 351))
    """
    data = check_complex_view("data", data, min_ndim=3)
    if not callable(mask_func):
        raise ValueError(f"mask_func must be callable (shape, offset, seed), got {describe(mask_func)}")
    if padding is not None:
        if (
            not isinstance(padding, (tuple, list, torch.Tensor, np.ndarray))
            or len(padding) != 2
            or not all(_is_int(p) or (isinstance(p, torch.Tensor) and p.numel() == 1) for p in padding)
        ):
            raise ValueError(f"padding must be None or a pair of ints (left, right), got {describe(padding)}")
        padding = (int(padding[0]), int(padding[1]))
    shape = (1,) * (data.ndim - 3) + tuple(data.shape[-3:])
    mask, num_low_frequencies = mask_func(shape, offset, seed)
    if padding is not None:
        mask[..., : padding[0], :] = 0
        mask[..., padding[1] :, :] = 0
    mask = mask.to(data.device)
    masked_data = data * mask + 0.0
    return masked_data, mask, num_low_frequencies
