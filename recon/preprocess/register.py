"""Image registration on SimpleITK's registration framework (``ImageRegistrationMethod``).

World coordinates follow the NIfTI/RAS+ convention of the affines (ITK works in LPS; the
conversion happens inside). A registration finds the transform ``T`` that maps a point of the
*fixed* image's world to the corresponding point of the *moving* image's world (ITK's
convention), so ``warped(x) = moving(T(x))`` on the fixed grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from recon.preprocess._checks import (
    _LPS,
    as_affine,
    as_mask,
    as_volume,
    from_sitk,
    sitk,
    to_sitk,
)

__all__ = ["register", "RegistrationResult"]

_TRANSFORMS = ("rigid", "affine", "bspline")
_METRICS = ("mutual_information", "mean_squares")
_ORDERS = {0: "sitkNearestNeighbor", 1: "sitkLinear", 3: "sitkBSpline"}


def _interpolator(order: int):
    if isinstance(order, bool) or order not in _ORDERS:
        raise ValueError(f"order must be 0 (nearest, labels), 1 (linear) or 3 (cubic B-spline), got {order!r}")
    return getattr(sitk(), _ORDERS[order])


def _matrix_ras(transform) -> np.ndarray | None:
    """The 4x4 RAS world-to-world matrix of a linear SimpleITK transform (None if not linear)."""
    s = sitk()
    try:
        t = s.AffineTransform(3)
        t.SetMatrix(transform.GetMatrix())
        t.SetTranslation(transform.GetTranslation())
        t.SetCenter(transform.GetCenter())
    except (AttributeError, RuntimeError, TypeError):
        return None
    a = np.asarray(t.GetMatrix(), dtype=np.float64).reshape(3, 3)
    c = np.asarray(t.GetCenter(), dtype=np.float64)
    tr = np.asarray(t.GetTranslation(), dtype=np.float64)
    lps = np.eye(4)
    lps[:3, :3] = a
    lps[:3, 3] = tr + c - a @ c
    return _LPS @ lps @ _LPS


@dataclass
class RegistrationResult:
    """What :func:`register` found.

    Attributes:
        warped: the moving image resampled onto the fixed grid (X, Y, Z) float32.
        transform: the SimpleITK transform (fixed world -> moving world, LPS, ITK convention).
        matrix: for rigid/affine, the same map as a 4x4 matrix in RAS world coordinates
            (``moving_point = matrix @ fixed_point``); ``None`` for bspline.
        fixed_affine: the fixed image's 4x4 affine (also the affine of ``warped``).
        fixed_shape: the fixed grid's shape.
        metric_value: final value of the similarity metric (lower is better in SimpleITK).
        stop_condition: the optimizer's stop message (last stage).
    """

    warped: np.ndarray
    transform: Any
    matrix: np.ndarray | None
    fixed_affine: np.ndarray
    fixed_shape: tuple[int, int, int]
    metric_value: float
    stop_condition: str = ""
    _moving_affine: np.ndarray = field(default_factory=lambda: np.eye(4), repr=False)
    _moving_shape: tuple[int, int, int] = (0, 0, 0)

    def apply(self, volume: np.ndarray | torch.Tensor, order: int = 3, *, affine: np.ndarray | None = None,
              default_value: float = 0.0) -> np.ndarray:
        """Warp another image (``order=3``/``1``) or label map (``order=0``) of the moving subject.

        Args:
            volume: (X, Y, Z) array in the moving image's space.
            order: 0 nearest neighbour (labels, masks: dtype kept), 1 linear, 3 cubic B-spline.
            affine: its 4x4 affine (default: the moving image's affine; the grid shape may
                differ from the moving image's if the affine says where it is).
            default_value: value outside the volume.

        Returns:
            The volume on the fixed grid, shape ``fixed_shape`` (affine ``fixed_affine``).
        """
        interp = _interpolator(order)
        data = as_volume("volume", volume, dtype=None)
        if affine is None:
            if data.shape != self._moving_shape:
                raise ValueError(
                    f"volume must have the moving image's shape {self._moving_shape} when affine is not given, "
                    f"got shape {data.shape}"
                )
            affine = self._moving_affine
        affine = as_affine("affine", affine)
        dtype = data.dtype
        if data.dtype == bool:
            data = data.astype(np.uint8)
        elif order != 0 and data.dtype not in (np.float32, np.float64):
            data = data.astype(np.float32)
        s = sitk()
        reference = to_sitk(np.zeros(self.fixed_shape, np.uint8),
                            self.fixed_affine)
        out = s.Resample(to_sitk(data, affine), reference, self.transform, interp, float(default_value))
        array, _ = from_sitk(out)
        if order == 0:
            return array.astype(dtype)
        return array.astype(np.float32) if dtype != np.float64 else array

    def transform_points(self, points: np.ndarray) -> np.ndarray:
        """Map (N, 3) RAS world points of the fixed image to the moving image's world."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        lps = pts * np.array([-1.0, -1.0, 1.0])
        out = np.array([self.transform.TransformPoint(tuple(p)) for p in lps])
        return out.reshape(-1, 3) * np.array([-1.0, -1.0, 1.0])


def register(fixed: np.ndarray | torch.Tensor, moving: np.ndarray | torch.Tensor, *,
             fixed_affine: np.ndarray | None = None, moving_affine: np.ndarray | None = None,
             transform: str = "rigid", metric: str = "mutual_information", seed: int = 0,
             fixed_mask: np.ndarray | torch.Tensor | None = None,
             moving_mask: np.ndarray | torch.Tensor | None = None,
             shrink_factors: Sequence[int] = (4, 2, 1), smoothing_sigmas: Sequence[float] = (2.0, 1.0, 0.0),
             sampling_percentage: float | None = None, max_samples: int = 50_000, n_iterations: int = 200,
             initialize: str = "geometry",
             bspline_mesh: int = 8, num_threads: int | None = None,
             histogram_bins: int = 50) -> RegistrationResult:
    """Register ``moving`` to ``fixed`` (rigid, affine or B-spline), multi-resolution.

    SimpleITK's ``ImageRegistrationMethod``: the transform is initialised by aligning the
    images' centres (``initialize="geometry"``) or centres of mass (``"moments"``), then
    optimised by regular-step gradient descent (physical-shift scales) over a pyramid of
    ``shrink_factors`` with Gaussian ``smoothing_sigmas`` (mm), on a random
    subset of the fixed voxels drawn with ``seed`` (deterministic): ``sampling_percentage`` of
    them, or by default about ``max_samples`` per pyramid level (so a level's cost does not grow
    with the image size; all voxels of small levels).
    ``metric="mutual_information"`` (Mattes, 50 bins) works across contrasts (T1 to T2);
    ``"mean_squares"`` needs the same contrast. ``"bspline"`` first runs the affine
    registration, then refines with a B-spline free-form deformation (``bspline_mesh``
    control-point cells per axis, L-BFGS-B).

    Args:
        fixed: (X, Y, Z) reference image.
        moving: (X, Y, Z) image to align to ``fixed``.
        fixed_affine: fixed image's 4x4 affine (default 1 mm identity).
        moving_affine: moving image's 4x4 affine (default 1 mm identity).
        transform: ``"rigid"``, ``"affine"`` or ``"bspline"``.
        metric: ``"mutual_information"`` or ``"mean_squares"``.
        seed: seed of the metric's random sampling; every seed, 0 included, is deterministic
            (SimpleITK's own seed 0 means "wall clock"; recon passes ``seed + 1``).
        fixed_mask: optional boolean mask of ``fixed``'s shape restricting the metric.
        moving_mask: optional boolean mask of ``moving``'s shape: only fixed points that map
            inside it count (e.g. a dilated brain mask when ``moving`` is a skull-stripped
            template and ``fixed`` a whole head).
        shrink_factors: integer shrink factor per pyramid level.
        smoothing_sigmas: Gaussian sigma (mm) per level (same length).
        sampling_percentage: fraction of voxels sampled by the metric at every level, in (0, 1];
            default ``None``: ``min(1, max_samples / voxels of the level)``.
        max_samples: target number of metric samples per level when ``sampling_percentage``
            is None.
        n_iterations: optimizer iterations per level.
        initialize: ``"geometry"`` or ``"moments"``.
        bspline_mesh: B-spline grid cells per axis (``transform="bspline"`` only).
        num_threads: SimpleITK threads for this call (SimpleITK's global default is set for the
            call and restored after; not thread-safe). ``num_threads=1`` makes the result
            bitwise reproducible; with several threads, sums are reduced in varying order and
            results for the same seed agree only to rounding, amplified by the optimizer
            (typically < 1e-3 mm).
        histogram_bins: Mattes mutual-information histogram bins.

    Returns:
        A :class:`RegistrationResult` with ``.warped``, ``.transform``, ``.matrix`` and
        ``.apply(volume, order)``.

    Raises:
        ValueError: arrays not 3-D, affines not 4x4 invertible, unknown transform/metric,
            mask shape mismatch, bad pyramid settings.
        ImportError: SimpleITK missing (``pip install 'recon[preprocess]'``).

    Example:
        >>> result = register(t1, t2, fixed_affine=a1, moving_affine=a2)  # doctest: +SKIP
        >>> t2_on_t1 = result.warped; labels_on_t1 = result.apply(t2_labels, order=0)  # doctest: +SKIP
    """
    if transform not in _TRANSFORMS:
        raise ValueError(f"transform must be one of {_TRANSFORMS}, got {transform!r}")
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {_METRICS}, got {metric!r}")
    if initialize not in ("geometry", "moments"):
        raise ValueError(f"initialize must be 'geometry' or 'moments', got {initialize!r}")
    fixed_data = as_volume("fixed", fixed, dtype=np.float32)
    moving_data = as_volume("moving", moving, dtype=np.float32)
    fixed_affine = as_affine("fixed_affine", fixed_affine)
    moving_affine = as_affine("moving_affine", moving_affine)
    mask = as_mask("fixed_mask", fixed_mask, fixed_data.shape)
    mmask = as_mask("moving_mask", moving_mask, moving_data.shape)
    shrink = [int(v) for v in shrink_factors]
    sigmas = [float(v) for v in smoothing_sigmas]
    if not shrink or min(shrink) < 1 or len(shrink) != len(sigmas) or min(sigmas) < 0:
        raise ValueError(
            "shrink_factors and smoothing_sigmas must be equal-length lists of integers >= 1 and sigmas >= 0, "
            f"got {list(shrink_factors)!r} and {list(smoothing_sigmas)!r}"
        )
    if sampling_percentage is None:
        if int(max_samples) < 100:
            raise ValueError(f"max_samples must be >= 100, got {max_samples!r}")
        voxels = [float(np.prod([max(1, n // f) for n in fixed_data.shape])) for f in shrink]
        sampling_percentage = [min(1.0, int(max_samples) / v) for v in voxels]
    elif not 0 < float(sampling_percentage) <= 1:
        raise ValueError(f"sampling_percentage must be in (0, 1], got {sampling_percentage!r}")
    else:
        sampling_percentage = [float(sampling_percentage)] * len(shrink)
    if int(n_iterations) < 1:
        raise ValueError(f"n_iterations must be >= 1, got {n_iterations!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**31 - 1:
        raise ValueError(f"seed must be an int in [0, 2**31 - 1), got {seed!r}")
    for name, data in (("fixed", fixed_data), ("moving", moving_data)):
        if not np.all(np.isfinite(data)):
            raise ValueError(f"{name} contains NaN or infinite values")
        if float(data.max()) == float(data.min()):
            raise ValueError(f"{name} is constant; there is nothing to register")

    s = sitk()
    if num_threads is None:
        return _register(s, fixed_data, moving_data, fixed_affine, moving_affine, mask, mmask, transform, metric,
                         seed, shrink, sigmas, sampling_percentage, n_iterations, initialize, bspline_mesh,
                         histogram_bins)
    # ITK's metrics and pyramid filters take the global thread count; set it for this call only
    previous = s.ProcessObject.GetGlobalDefaultNumberOfThreads()
    s.ProcessObject.SetGlobalDefaultNumberOfThreads(int(num_threads))
    try:
        return _register(s, fixed_data, moving_data, fixed_affine, moving_affine, mask, mmask, transform, metric,
                         seed, shrink, sigmas, sampling_percentage, n_iterations, initialize, bspline_mesh,
                         histogram_bins)
    finally:
        s.ProcessObject.SetGlobalDefaultNumberOfThreads(previous)


def _register(s, fixed_data, moving_data, fixed_affine, moving_affine, mask, mmask, transform, metric, seed,
              shrink, sigmas, sampling_percentage, n_iterations, initialize, bspline_mesh,
              histogram_bins) -> RegistrationResult:
    fixed_image = to_sitk(fixed_data, fixed_affine)
    moving_image = to_sitk(moving_data, moving_affine)
    mask_image = None if mask is None else to_sitk(mask.astype(np.uint8), fixed_affine)
    moving_mask_image = None if mmask is None else to_sitk(mmask.astype(np.uint8), moving_affine)

    def method(percentage: float):
        reg = s.ImageRegistrationMethod()
        if metric == "mutual_information":
            reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=int(histogram_bins))
        else:
            reg.SetMetricAsMeanSquares()
        reg.SetMetricSamplingStrategy(reg.RANDOM)
        # SimpleITK reads seed 0 as sitkWallClock (a different sample set every call): shift by one
        reg.SetMetricSamplingPercentagePerLevel([float(p) for p in percentage], int(seed) + 1)
        if mask_image is not None:
            reg.SetMetricFixedMask(mask_image)
        if moving_mask_image is not None:
            reg.SetMetricMovingMask(moving_mask_image)
        reg.SetInterpolator(s.sitkLinear)
        reg.SetShrinkFactorsPerLevel(shrink)
        reg.SetSmoothingSigmasPerLevel(sigmas)
        reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
        return reg

    linear = s.Euler3DTransform() if transform == "rigid" else s.AffineTransform(3)
    init_mode = (s.CenteredTransformInitializerFilter.GEOMETRY if initialize == "geometry"
                 else s.CenteredTransformInitializerFilter.MOMENTS)
    initial = s.CenteredTransformInitializer(fixed_image, moving_image, linear, init_mode)
    reg = method(sampling_percentage)
    reg.SetOptimizerAsRegularStepGradientDescent(learningRate=2.0, minStep=1e-4,
                                                 numberOfIterations=int(n_iterations),
                                                 relaxationFactor=0.5, gradientMagnitudeTolerance=1e-8)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetInitialTransform(initial, inPlace=False)
    try:
        found = reg.Execute(fixed_image, moving_image)
    except RuntimeError as err:
        raise ValueError(f"registration failed (do fixed and moving overlap in world space?): {err}") from err
    # the result is a CompositeTransform wrapping one linear transform: unwrap it
    if isinstance(found, s.CompositeTransform) and found.GetNumberOfTransforms() == 1:
        found = found.GetNthTransform(0)
    final = found
    for cls in (s.Euler3DTransform, s.AffineTransform):
        try:
            final = cls(found)
            break
        except (RuntimeError, TypeError):
            continue
    metric_value, stop = reg.GetMetricValue(), reg.GetOptimizerStopConditionDescription()
    matrix = _matrix_ras(final)

    if transform == "bspline":
        mesh = [int(bspline_mesh)] * 3
        bspline = s.BSplineTransformInitializer(fixed_image, mesh, 3)
        reg = method(sampling_percentage)
        reg.SetOptimizerAsLBFGSB(gradientConvergenceTolerance=1e-5, numberOfIterations=int(n_iterations),
                                 maximumNumberOfCorrections=5, maximumNumberOfFunctionEvaluations=1000,
                                 costFunctionConvergenceFactor=1e7)
        reg.SetMovingInitialTransform(final)
        reg.SetInitialTransform(bspline, inPlace=True)
        try:
            reg.Execute(fixed_image, moving_image)
        except RuntimeError as err:
            raise ValueError(f"B-spline registration failed: {err}") from err
        composite = s.CompositeTransform(3)
        composite.AddTransform(final)
        composite.AddTransform(bspline)
        final = composite
        metric_value, stop = reg.GetMetricValue(), reg.GetOptimizerStopConditionDescription()
        matrix = None

    warped_image = s.Resample(moving_image, fixed_image, final, s.sitkLinear, 0.0)
    warped, _ = from_sitk(warped_image)
    return RegistrationResult(
        warped=warped.astype(np.float32), transform=final, matrix=matrix, fixed_affine=fixed_affine,
        fixed_shape=tuple(int(v) for v in fixed_data.shape), metric_value=float(metric_value),
        stop_condition=str(stop), _moving_affine=moving_affine,
        _moving_shape=tuple(int(v) for v in moving_data.shape),
    )
