"""N4 bias-field correction (Tustison et al., IEEE TMI 2010) on SimpleITK's implementation."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from recon.preprocess._checks import as_affine, as_mask, as_volume, from_sitk, sitk, to_sitk

__all__ = ["n4_bias_correction"]


def n4_bias_correction(volume: np.ndarray | torch.Tensor, mask: np.ndarray | torch.Tensor | None = None, *,
                       affine: np.ndarray | None = None, shrink_factor: int = 4,
                       n_iterations: Sequence[int] = (50, 50, 50, 50), convergence_threshold: float = 1e-3,
                       n_control_points: int = 4, spline_order: int = 3, bias_fwhm: float = 0.15,
                       num_threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Estimate and remove a smooth multiplicative bias field with N4.

    The model is ``volume = corrected * bias``. N4 (``sitk.N4BiasFieldCorrectionImageFilter``)
    runs on a copy shrunk by ``shrink_factor`` (so a 1 mm brain takes seconds); the B-spline
    log-bias it found is then evaluated on the full-resolution grid
    (``GetLogBiasFieldAsImage``) and divided out, so ``corrected * bias_field == volume``
    inside the mask.

    Args:
        volume: (X, Y, Z) intensities (numpy or torch), non-negative.
        mask: voxels used to fit the field, ``volume``'s shape; default: Otsu foreground
            (``sitk.OtsuThreshold``). Voxels outside are corrected by the same field.
        affine: 4x4 voxel-to-world matrix (sets the spacing the B-spline mesh uses);
            default 1 mm identity.
        shrink_factor: integer downsampling used for the fit, >= 1.
        n_iterations: iterations per fitting level (its length is the number of levels).
        convergence_threshold: N4 stopping threshold.
        n_control_points: B-spline control points per axis at the first level (>= spline_order + 1).
        spline_order: B-spline order of the field.
        bias_fwhm: Wiener-filter deconvolution width of the bias histogram.
        num_threads: SimpleITK threads for this filter (default: SimpleITK's global setting).

    Returns:
        ``(corrected, bias_field)``: float32 arrays of ``volume``'s shape; ``bias_field > 0``.

    Raises:
        ValueError: volume not 3-D, mask shape mismatch, empty mask, bad parameters.
        ImportError: SimpleITK missing (``pip install 'recon[preprocess]'``).

    Example:
        >>> corrected, bias = n4_bias_correction(t1, affine=t1_affine)  # doctest: +SKIP
    """
    data = as_volume("volume", volume, dtype=np.float32)
    m = as_mask("mask", mask, data.shape)
    affine = as_affine("affine", affine)
    if isinstance(shrink_factor, bool) or int(shrink_factor) != shrink_factor or shrink_factor < 1:
        raise ValueError(f"shrink_factor must be an integer >= 1, got {shrink_factor!r}")
    iters = [int(i) for i in n_iterations]
    if not iters or min(iters) < 1:
        raise ValueError(f"n_iterations must be a non-empty list of positive integers, got {n_iterations!r}")
    if int(n_control_points) < int(spline_order) + 1:
        raise ValueError(
            f"n_control_points must be >= spline_order + 1 = {int(spline_order) + 1}, got {n_control_points!r}"
        )
    if not np.all(np.isfinite(data)):
        raise ValueError("volume contains NaN or infinite values")
    s = sitk()
    image = to_sitk(data, affine)
    if m is None:
        mask_image = s.OtsuThreshold(image, 0, 1, 200)
    else:
        if not m.any():
            raise ValueError("mask selects no voxel")
        mask_image = to_sitk(m.astype(np.uint8), affine)
    mask_image = s.Cast(mask_image, s.sitkUInt8)
    # N4 works on log intensities: keep the fitted voxels strictly positive
    positive = data[data > 0]
    if positive.size == 0:
        raise ValueError("volume has no positive voxel; N4 needs positive intensities")
    floor = float(positive.min())
    fit_image = s.Maximum(image, floor) if float(data.min()) < floor else image

    factor = int(shrink_factor)
    small = s.Shrink(fit_image, [factor] * 3) if factor > 1 else fit_image
    small_mask = s.Shrink(mask_image, [factor] * 3) if factor > 1 else mask_image
    if s.GetArrayViewFromImage(small_mask).max() == 0:
        raise ValueError(f"mask is empty at shrink_factor {factor}: use a smaller shrink_factor or a larger mask")

    corrector = s.N4BiasFieldCorrectionImageFilter()
    corrector.SetMaximumNumberOfIterations(iters)
    corrector.SetConvergenceThreshold(float(convergence_threshold))
    corrector.SetNumberOfControlPoints([int(n_control_points)] * 3)
    corrector.SetSplineOrder(int(spline_order))
    corrector.SetBiasFieldFullWidthAtHalfMaximum(float(bias_fwhm))
    if num_threads is not None:
        corrector.SetNumberOfThreads(int(num_threads))
    corrector.Execute(small, small_mask)
    log_bias = corrector.GetLogBiasFieldAsImage(image)
    log_bias_array, _ = from_sitk(log_bias)
    bias = np.exp(log_bias_array.astype(np.float64)).astype(np.float32)
    corrected = (data / bias).astype(np.float32)
    return corrected, bias
