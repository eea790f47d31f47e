"""Image quality metrics: fastMRI ``evaluate.py`` semantics (numpy) and a torch SSIM loss.

:func:`mse`, :func:`nmse`, :func:`psnr` and :func:`ssim` take a ground-truth and a predicted
volume ``(slices, H, W)`` and return the same numbers as ``fastmri.evaluate`` (fastmri 0.3.0,
which calls scikit-image), computed with numpy/scipy only:

* ``mse = mean((gt - pred)**2)`` (numpy's mean in the inputs' precision, as fastMRI).
* ``nmse = ||gt - pred||_2**2 / ||gt||_2**2`` over the whole volume.
* ``psnr = 10 log10(maxval**2 / mean((gt - pred)**2))`` with ``maxval = gt.max()`` unless given
  (the squared error averaged in float64, as scikit-image).
* ``ssim``: mean over slices of scikit-image's ``structural_similarity(gt[i], pred[i],
  data_range=maxval)`` with ``maxval = gt.max()`` over the *volume* unless given; per slice a
  7x7 uniform window (``scipy.ndimage.uniform_filter``, reflect borders), ``K1 = 0.01``,
  ``K2 = 0.03``, sample covariances (factor ``49 / 48``), and the mean of the SSIM map taken
  after cropping a 3-pixel border.

All four return a numpy ``float64`` scalar. fastMRI returns the same values in assorted
containers (``ssim`` a shape ``(1,)`` array, ``nmse`` a 0-d array, ``mse`` the input dtype).

Degenerate targets have defined behaviour, never a silent ``-inf`` or ``NaN``: ``psnr`` and
``ssim`` need a positive peak, so without ``maxval`` a ``gt`` whose maximum is not positive
(all zero, or all negative) raises ``ValueError`` naming ``gt`` (fastMRI returns ``-inf`` /
``NaN`` there); with an explicit positive ``maxval`` both are finite (``ssim`` of two equal
constant images is 1). ``nmse`` of an all-zero ``gt`` raises ``ValueError``. ``psnr`` of
identical volumes is ``+inf`` (no error at all), as in scikit-image. float16/32 volumes whose
peak is above 1e12 or below 1e-10 (where their squares over/underflow), and SSIM with a
``maxval`` too small for float32 constants, are computed in float64 instead; everywhere else
the numbers are fastMRI's to the last bit.

:class:`SSIMLoss` is the differentiable torch counterpart used for training (``1 - SSIM`` with
the same window and constants, no border padding), numerically equal to
``fastmri.losses.SSIMLoss``; :func:`ssim_torch` is its functional form.

Example:
    >>> import numpy as np
    >>> from recon.metrics import nmse, psnr, ssim
    >>> rng = np.random.default_rng(0)
    >>> gt = rng.random((4, 64, 64))
    >>> pred = gt + 0.01 * rng.standard_normal(gt.shape)
    >>> round(float(psnr(gt, pred)), 1)
    40.0
"""

from __future__ import annotations

import math
import numbers
from typing import Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import uniform_filter
from torch import nn

from recon.ops._checks import describe

__all__ = ["mse", "nmse", "psnr", "ssim", "ssim_torch", "SSIMLoss"]

ArrayLike = Union[np.ndarray, torch.Tensor]

_WIN_SIZE = 7
_K1 = 0.01
_K2 = 0.03


# --------------------------------------------------------------------------------------------
# numpy metrics (fastMRI evaluate.py)
# --------------------------------------------------------------------------------------------


def _as_array(name: str, value: object) -> np.ndarray:
    """numpy view of a real array or tensor; rejects complex, non-numeric and non-finite data."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a numpy array or torch tensor, got {describe(value)}")
    if np.iscomplexobj(value):
        raise TypeError(
            f"{name} must be real (e.g. magnitude images), got {describe(value)}; "
            "take recon.ops.complex_abs or np.abs first"
        )
    if not (np.issubdtype(value.dtype, np.floating) or np.issubdtype(value.dtype, np.integer)):
        raise TypeError(f"{name} must be a real numeric array, got {describe(value)}")
    if value.size == 0:
        raise ValueError(f"{name} must not be empty, got {describe(value)}")
    if np.issubdtype(value.dtype, np.floating) and not np.all(np.isfinite(value)):
        raise ValueError(f"{name} must not contain NaN or inf, got {describe(value)} with non-finite values")
    return value


def _beyond_low_precision(value: np.ndarray) -> bool:
    """float16/32 data so large or small that squares and sums over/underflow in its precision."""
    if value.dtype.kind != "f" or value.dtype.itemsize >= 8:
        return False
    peak = float(np.abs(value).max())
    return peak > 1e12 or 0 < peak < 1e-10


def _pair(gt: object, pred: object) -> tuple[np.ndarray, np.ndarray]:
    gt = _as_array("gt", gt)
    pred = _as_array("pred", pred)
    if gt.shape != pred.shape:
        raise ValueError(
            f"gt and pred must have the same shape, got gt {gt.shape} and pred {pred.shape}"
        )
    if _beyond_low_precision(gt) or _beyond_low_precision(pred):  # fastMRI would give inf / 0 / NaN
        gt, pred = gt.astype(np.float64), pred.astype(np.float64)
    return gt, pred


def _data_range(metric: str, gt: np.ndarray, maxval: object):
    """``maxval`` (a positive finite number; a 1-element tensor or array is unwrapped to a numpy
    scalar of its precision) or the peak ``gt.max()``, which must be positive."""
    if maxval is not None:
        value = maxval
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.detach().cpu().numpy().reshape(())[()]
        elif isinstance(value, np.ndarray) and value.size == 1:
            value = value.reshape(())[()]
        if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)) or not (
            np.isfinite(value) and value > 0
        ):
            raise ValueError(f"maxval must be None or a positive finite number, got {describe(maxval)}")
        return value
    peak = gt.max()
    if not peak > 0:
        raise ValueError(
            f"{metric} needs a positive peak, but gt (the target) has maximum {float(peak)!r} "
            f"({'all zero' if not gt.any() else 'no positive value'}): pass maxval= explicitly"
        )
    return peak


def mse(gt: ArrayLike, pred: ArrayLike) -> np.float64:
    """Mean squared error ``mean((gt - pred)**2)`` (fastMRI ``evaluate.mse``).

    Args:
        gt: ground truth, any shape (a volume ``(slices, H, W)`` in fastMRI).
        pred: prediction, same shape.

    Returns:
        The MSE as a numpy float64 scalar.

    Raises:
        TypeError: complex or non-numeric input.
        ValueError: shapes differ, empty input, NaN or inf.
    """
    gt, pred = _pair(gt, pred)
    return np.float64(np.mean((gt - pred) ** 2))


def nmse(gt: ArrayLike, pred: ArrayLike) -> np.float64:
    """Normalised MSE ``||gt - pred||**2 / ||gt||**2`` over all voxels (fastMRI ``evaluate.nmse``).

    Args:
        gt: ground truth, any shape.
        pred: prediction, same shape.

    Returns:
        The NMSE as a numpy float64 scalar.

    Raises:
        TypeError: complex or non-numeric input.
        ValueError: shapes differ, empty input, NaN or inf, or ``gt`` all zero.
    """
    gt, pred = _pair(gt, pred)
    norm_gt = np.linalg.norm(gt)
    if norm_gt == 0:
        raise ValueError(f"nmse needs a non-zero gt, got an all-zero {describe(gt)}")
    return np.float64(np.linalg.norm(gt - pred) ** 2 / norm_gt**2)


def _float_type(*dtypes: np.dtype) -> np.dtype:
    """scikit-image's working precision: float16 -> float32, float32 and float64 kept, any
    other dtype -> float64, then the common type of the mapped dtypes."""
    mapped = [np.float32 if np.dtype(d).char in "ef" else np.float64 for d in dtypes]
    return np.result_type(*mapped)


def psnr(gt: ArrayLike, pred: ArrayLike, maxval: Optional[float] = None) -> np.float64:
    """Peak signal-to-noise ratio in dB (fastMRI ``evaluate.psnr``).

    ``10 log10(maxval**2 / mean((gt - pred)**2))``; the difference is taken in the common
    floating precision of the inputs and its square averaged in float64 (scikit-image).

    Args:
        gt: ground truth, any shape (a volume in fastMRI).
        pred: prediction, same shape.
        maxval: peak value; ``gt.max()`` of the whole array when ``None``.

    Returns:
        The PSNR as a numpy float64 scalar (``inf`` when ``pred == gt``).

    Raises:
        TypeError: complex or non-numeric input.
        ValueError: shapes differ, empty input, NaN or inf, ``maxval`` not positive, or no
            ``maxval`` and a ``gt`` without a positive value (all zero: the peak is undefined).
    """
    gt, pred = _pair(gt, pred)
    data_range = _data_range("psnr", gt, maxval)
    work = _float_type(gt.dtype, pred.dtype)
    diff = gt.astype(work, copy=False) - pred.astype(work, copy=False)
    err = np.mean(diff**2, dtype=np.float64)
    data_range = float(data_range)
    with np.errstate(divide="ignore"):
        return np.float64(10 * np.log10((data_range**2) / err))


def _ssim_work_type(gt: np.ndarray, data_range) -> np.dtype:
    """scikit-image's precision (from the first image only), or float64 where the constants of
    a tiny data range would underflow in float32."""
    work = _float_type(gt.dtype)
    if work == np.float32 and (_K1 * float(data_range)) ** 2 < float(np.finfo(np.float32).tiny) * 1e6:
        work = np.dtype(np.float64)
    return work


def _ssim_slice(x: np.ndarray, y: np.ndarray, data_range, work: np.dtype) -> np.float64:
    """Mean SSIM of two 2-D images (scikit-image semantics, uniform 7x7 window)."""
    x = x.astype(work, copy=False)
    y = y.astype(work, copy=False)
    cov_norm = _WIN_SIZE**2 / (_WIN_SIZE**2 - 1)
    mean_x = uniform_filter(x, size=_WIN_SIZE)
    mean_y = uniform_filter(y, size=_WIN_SIZE)
    mean_xx = uniform_filter(x * x, size=_WIN_SIZE)
    mean_yy = uniform_filter(y * y, size=_WIN_SIZE)
    mean_xy = uniform_filter(x * y, size=_WIN_SIZE)
    var_x = cov_norm * (mean_xx - mean_x * mean_x)
    var_y = cov_norm * (mean_yy - mean_y * mean_y)
    cov_xy = cov_norm * (mean_xy - mean_x * mean_y)
    c1 = (_K1 * data_range) ** 2
    c2 = (_K2 * data_range) ** 2
    numerator_1 = 2 * mean_x * mean_y + c1
    numerator_2 = 2 * cov_xy + c2
    denominator = (mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2)
    ssim_map = (numerator_1 * numerator_2) / denominator
    pad = (_WIN_SIZE - 1) // 2
    return ssim_map[pad:-pad, pad:-pad].mean(dtype=np.float64)


def ssim(gt: ArrayLike, pred: ArrayLike, maxval: Optional[float] = None) -> np.float64:
    """Structural similarity of two volumes, averaged over slices (fastMRI ``evaluate.ssim``).

    Per slice: scikit-image's ``structural_similarity`` with a 7x7 uniform window, ``K1 = 0.01``,
    ``K2 = 0.03``, sample covariances and ``data_range = maxval``; the SSIM map is averaged after
    dropping a 3-pixel border. ``maxval`` defaults to ``gt.max()`` over the whole volume (not
    per slice), as in fastMRI.

    Args:
        gt: ground truth ``(slices, H, W)`` with ``H, W >= 7``.
        pred: prediction, same shape.
        maxval: data range; ``gt.max()`` when ``None``.

    Returns:
        The mean SSIM as a numpy float64 scalar.

    Raises:
        TypeError: complex or non-numeric input.
        ValueError: not 3-D, shapes differ, slices smaller than 7x7, empty input, NaN or inf,
            ``maxval`` not positive, or no ``maxval`` and a ``gt`` without a positive value
            (all zero: the data range is undefined).

    Example:
        >>> import numpy as np
        >>> gt = np.random.default_rng(0).random((2, 32, 32))
        >>> float(ssim(gt, gt))
        1.0
    """
    gt, pred = _pair(gt, pred)
    if gt.ndim != 3:
        raise ValueError(f"gt and pred must be 3-D volumes (slices, H, W), got shape {gt.shape}")
    if min(gt.shape[1:]) < _WIN_SIZE:
        raise ValueError(
            f"gt and pred slices must be at least {_WIN_SIZE}x{_WIN_SIZE} for the SSIM window, "
            f"got shape {gt.shape}"
        )
    data_range = _data_range("ssim", gt, maxval)
    work = _ssim_work_type(gt, data_range)
    if work != _float_type(gt.dtype):  # promoted: the constants in float64 too
        data_range = float(data_range)
    total = np.float64(0.0)
    for index in range(gt.shape[0]):
        total = total + _ssim_slice(gt[index], pred[index], data_range, work)
    return np.float64(total / gt.shape[0])


# --------------------------------------------------------------------------------------------
# torch SSIM (training loss)
# --------------------------------------------------------------------------------------------


def _check_image_pair(X: object, Y: object) -> None:
    for name, value in (("X", X), ("Y", Y)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor (B, 1, H, W), got {describe(value)}")
        if not value.is_floating_point():
            raise TypeError(f"{name} must be a real floating tensor (B, 1, H, W), got {describe(value)}")
    if X.ndim != 4 or X.shape[1] != 1:
        raise ValueError(f"X must be (B, 1, H, W), got {describe(X)}")
    if X.shape != Y.shape:
        raise ValueError(f"X and Y must have the same shape, got X {tuple(X.shape)} and Y {tuple(Y.shape)}")


def _data_range_tensor(data_range: object, batch: int, like: torch.Tensor) -> torch.Tensor:
    if isinstance(data_range, numbers.Real) and not isinstance(data_range, bool):
        data_range = torch.full((batch,), float(data_range), dtype=like.dtype, device=like.device)
    if not isinstance(data_range, torch.Tensor):
        raise TypeError(f"data_range must be a tensor (B,) or a number, got {describe(data_range)}")
    if data_range.ndim == 0:
        data_range = data_range.expand(batch)
    if data_range.ndim != 1 or data_range.shape[0] != batch:
        raise ValueError(f"data_range must have shape ({batch},) for a batch of {batch}, got {describe(data_range)}")
    return data_range


def _window(win_size: int, like: torch.Tensor, buffer: Optional[torch.Tensor] = None) -> torch.Tensor:
    if buffer is not None and buffer.dtype == like.dtype and buffer.device == like.device:
        return buffer
    if buffer is not None and buffer.dtype == like.dtype:
        return buffer.to(like.device)
    return torch.full((1, 1, win_size, win_size), 1.0 / win_size**2, dtype=like.dtype, device=like.device)


def _range_floor(dtype: torch.dtype, k1: float, k2: float) -> float:
    """Smallest data range whose SSIM constants ``c1 * c2`` stay normal numbers in ``dtype``
    (times 10); float32's for half precision, which has no useful floor."""
    finfo = torch.finfo(torch.float64 if dtype == torch.float64 else torch.float32)
    return 10 * math.sqrt(math.sqrt(finfo.tiny) / (k1 * k2))


def _ssim_map(X, Y, data_range, win_size, k1, k2, weight):
    # an all-zero target (an empty slice) has data range 0 and two constant windows then give
    # 0 / 0: the floor keeps the constants positive (SSIM of equal constant images is 1)
    # without a device synchronisation; real data ranges are orders of magnitude above it
    data_range = data_range.clamp_min(_range_floor(X.dtype, k1, k2))[:, None, None, None]
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    count = win_size**2
    cov_norm = count / (count - 1)
    mean_x = F.conv2d(X, weight)
    mean_y = F.conv2d(Y, weight)
    mean_xx = F.conv2d(X * X, weight)
    mean_yy = F.conv2d(Y * Y, weight)
    mean_xy = F.conv2d(X * Y, weight)
    var_x = cov_norm * (mean_xx - mean_x * mean_x)
    var_y = cov_norm * (mean_yy - mean_y * mean_y)
    cov_xy = cov_norm * (mean_xy - mean_x * mean_y)
    numerator_1 = 2 * mean_x * mean_y + c1
    numerator_2 = 2 * cov_xy + c2
    denominator = (mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2)
    return (numerator_1 * numerator_2) / denominator


def _check_window_args(win_size: object, k1: object, k2: object) -> None:
    if isinstance(win_size, bool) or not isinstance(win_size, int) or win_size < 2:
        raise ValueError(f"win_size must be an int >= 2, got {describe(win_size)}")
    for name, value in (("k1", k1), ("k2", k2)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{name} must be a positive number, got {describe(value)}")


def ssim_torch(
    X: torch.Tensor,
    Y: torch.Tensor,
    data_range: Union[torch.Tensor, float],
    win_size: int = _WIN_SIZE,
    k1: float = _K1,
    k2: float = _K2,
    reduced: bool = True,
) -> torch.Tensor:
    """Differentiable SSIM with a uniform window over the valid region (no padding).

    Same window, constants and sample covariance as :func:`ssim`; the map covers the
    ``(H - win_size + 1) x (W - win_size + 1)`` positions where the window fits, which for
    ``win_size = 7`` are exactly the positions scikit-image averages after its border crop.

    Args:
        X: images ``(B, 1, H, W)``.
        Y: images, same shape.
        data_range: ``(B,)`` per-image data range (a number or 0-d tensor is broadcast);
            values below ~2e-7 in float32 (~1e-75 in float64), e.g. of an all-zero target,
            are raised to that floor, so the result is finite (1 for two equal constant
            images) where fastMRI's loss gives NaN.
        win_size: side of the square window.
        k1: constant ``C1 = (k1 * data_range)**2``.
        k2: constant ``C2 = (k2 * data_range)**2``.
        reduced: return the mean over everything; else the map ``(B, 1, H', W')``.

    Returns:
        Mean SSIM (0-d tensor) or the SSIM map.

    Raises:
        TypeError: non-tensor or non-floating input, bad ``data_range`` type.
        ValueError: shapes not ``(B, 1, H, W)`` or different, ``data_range`` not ``(B,)``,
            images smaller than the window, bad ``win_size``/``k1``/``k2``.
    """
    _check_window_args(win_size, k1, k2)
    _check_image_pair(X, Y)
    if min(X.shape[-2:]) < win_size:
        raise ValueError(f"X and Y must be at least {win_size}x{win_size}, got {describe(X)}")
    data_range = _data_range_tensor(data_range, X.shape[0], X)
    ssim_map = _ssim_map(X, Y, data_range, win_size, k1, k2, _window(win_size, X))
    return ssim_map.mean() if reduced else ssim_map


class SSIMLoss(nn.Module):
    """SSIM loss ``1 - SSIM`` for training (numerically equal to ``fastmri.losses.SSIMLoss``).

    Holds the window as the buffer ``w`` like fastMRI, so state dicts are interchangeable.

    Args:
        win_size: side of the square uniform window.
        k1: SSIM constant for the means.
        k2: SSIM constant for the (co)variances.

    Example:
        >>> loss_fn = SSIMLoss()
        >>> X, Y = torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32)
        >>> loss = loss_fn(X, Y, data_range=torch.ones(2))
    """

    def __init__(self, win_size: int = _WIN_SIZE, k1: float = _K1, k2: float = _K2):
        super().__init__()
        _check_window_args(win_size, k1, k2)
        self.win_size = win_size
        self.k1, self.k2 = k1, k2
        self.register_buffer("w", torch.ones(1, 1, win_size, win_size) / win_size**2)
        count = win_size**2
        self.cov_norm = count / (count - 1)

    def forward(
        self,
        X: torch.Tensor,
        Y: torch.Tensor,
        data_range: Union[torch.Tensor, float],
        reduced: bool = True,
    ) -> torch.Tensor:
        """Loss between images.

        Args:
            X: predictions ``(B, 1, H, W)``.
            Y: targets, same shape.
            data_range: ``(B,)`` per-image data range (e.g. the target volume's max).
            reduced: return ``1 - mean SSIM``; else ``1 - SSIM map`` ``(B, 1, H', W')``.

        Returns:
            The loss (0-d tensor) or the per-position loss map.

        Raises:
            TypeError, ValueError: as :func:`ssim_torch`.
        """
        _check_image_pair(X, Y)
        if min(X.shape[-2:]) < self.win_size:
            raise ValueError(f"X and Y must be at least {self.win_size}x{self.win_size}, got {describe(X)}")
        data_range = _data_range_tensor(data_range, X.shape[0], X)
        weight = _window(self.win_size, X, self.w)
        ssim_map = _ssim_map(X, Y, data_range, self.win_size, self.k1, self.k2, weight)
        return 1 - ssim_map.mean() if reduced else 1 - ssim_map
