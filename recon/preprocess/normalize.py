"""Intensity normalisation of MR images.

Simple rescalings that work on any shape and on both numpy arrays and torch tensors (the
result has the input's type, device and floating dtype; integer inputs become float32):

* :func:`zscore` - ``(x - mean) / std`` with the statistics taken over a mask (default the
  non-zero foreground), applied to the whole array;
* :func:`minmax` - linear map of ``[min, max]`` (over a mask) onto ``out_range``;
* :func:`percentile_clip` - clip to the ``lower``/``upper`` percentiles (over a mask),
  optionally rescaling the clipped range onto ``[0, 1]``.

Brain-MRI standardisations (numpy in, numpy out; torch tensors are converted and returned as
tensors): :func:`fcm_normalize` (fuzzy c-means white-matter mean), :class:`NyulNormalizer`
(Nyul & Udupa piecewise-linear histogram standardisation) and :func:`whitestripe`
(Shinohara et al. 2014).

Standard deviations are population ones (``ddof=0``), as in ``intensity-normalization``;
torchio's ``ZNormalization`` uses ``ddof=1`` (the two differ by ``sqrt(n/(n-1))``).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Sequence, TypeVar, Union

import numpy as np
import torch

from recon.preprocess._checks import describe as _describe

__all__ = [
    "zscore",
    "minmax",
    "percentile_clip",
    "fcm",
    "fcm_normalize",
    "NyulNormalizer",
    "whitestripe",
]

Array = TypeVar("Array", np.ndarray, torch.Tensor)
ArrayLike = Union[np.ndarray, torch.Tensor]


# --------------------------------------------------------------------------------------- helpers
def _check_array(name: str, value: object) -> None:
    if not isinstance(value, (np.ndarray, torch.Tensor)):
        raise TypeError(f"{name} must be a numpy array or a torch tensor, got {_describe(value)}")
    size = value.numel() if isinstance(value, torch.Tensor) else value.size
    if value.ndim == 0 or size == 0:
        raise ValueError(f"{name} must be a non-empty array, got {_describe(value)}")
    complex_ = value.is_complex() if isinstance(value, torch.Tensor) else np.iscomplexobj(value)
    if complex_:
        raise TypeError(f"{name} must be real-valued (take the magnitude first), got {_describe(value)}")


def _as_float(volume: Array) -> Array:
    """Floating copy-free view when possible: float stays, integers/bools become float32."""
    if isinstance(volume, torch.Tensor):
        return volume if volume.is_floating_point() else volume.to(torch.float32)
    return volume if np.issubdtype(volume.dtype, np.floating) else volume.astype(np.float32)


def _mask_for(volume: Array, mask: ArrayLike | None) -> Array:
    """Boolean mask of the same type/device as ``volume``; default: non-zero voxels."""
    if mask is None:
        return volume != 0
    if not isinstance(mask, (np.ndarray, torch.Tensor)):
        raise TypeError(f"mask must be a numpy array or a torch tensor, got {_describe(mask)}")
    if tuple(mask.shape) != tuple(volume.shape):
        raise ValueError(
            f"mask must have the volume's shape {tuple(volume.shape)}, got shape {tuple(mask.shape)}"
        )
    if isinstance(volume, torch.Tensor):
        mask = torch.as_tensor(mask, device=volume.device)
        return mask if mask.dtype == torch.bool else mask != 0
    mask = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    return mask if mask.dtype == bool else mask != 0


def _masked_values(volume: Array, mask: Array, what: str) -> Array:
    values = volume[mask]
    if (values.numel() if isinstance(values, torch.Tensor) else values.size) == 0:
        raise ValueError(f"mask selects no voxel of volume; cannot compute the {what} (is the volume all zero?)")
    return values


def _quantiles(values: Array, q: Sequence[float]) -> list[float]:
    """Quantiles (numpy's default 'linear' rule) of a 1-D array, q in [0, 1]."""
    if isinstance(values, torch.Tensor):
        values = values.detach().reshape(-1)
        n = values.numel()
        out = []
        for qi in q:
            pos = qi * (n - 1)
            lo = int(np.floor(pos))
            hi = min(lo + 1, n - 1)
            # kthvalue is 1-based; avoids sorting the whole array and torch.quantile's size limit
            vlo = values.kthvalue(lo + 1).values.double()
            vhi = values.kthvalue(hi + 1).values.double() if hi != lo else vlo
            out.append(float(vlo + (pos - lo) * (vhi - vlo)))
        return out
    return [float(v) for v in np.quantile(values, list(q))]


def _mean_std(values: Array) -> tuple[float, float]:
    if isinstance(values, torch.Tensor):
        values = values.detach()  # statistics are constants of the normalisation (no gradient through them)
        v = values.double() if values.dtype != torch.float64 else values
        std, mean = torch.std_mean(v, correction=0)
        return float(mean), float(std)
    return float(values.mean(dtype=np.float64)), float(values.std(dtype=np.float64))


def _affine_map(volume: Array, scale: float, offset: float) -> Array:
    """``volume * scale + offset`` in the volume's floating dtype (one output allocation)."""
    volume = _as_float(volume)
    if isinstance(volume, torch.Tensor):
        return torch.addcmul(torch.full((), offset, dtype=volume.dtype, device=volume.device), volume,
                             torch.full((), scale, dtype=volume.dtype, device=volume.device))
    dtype = volume.dtype.type
    out = np.multiply(volume, dtype(scale))
    out += dtype(offset)
    return out


def _numpy_fast_path(volume: object) -> bool:
    """A CPU tensor without autograd: computed through numpy views (same values, ~5x faster)."""
    return (isinstance(volume, torch.Tensor) and volume.device.type == "cpu" and not volume.requires_grad
            and volume.dtype in (torch.float32, torch.float64))


def _cpu_numpy_mask(mask: object) -> object:
    if isinstance(mask, torch.Tensor):
        return mask.detach().cpu().numpy()
    return mask


def _to_numpy(volume: ArrayLike) -> np.ndarray:
    if isinstance(volume, torch.Tensor):
        return volume.detach().cpu().numpy()
    return np.asarray(volume)


def _like(result: np.ndarray, template: ArrayLike) -> ArrayLike:
    if isinstance(template, torch.Tensor):
        return torch.from_numpy(np.ascontiguousarray(result)).to(template.device)
    return result


# ------------------------------------------------------------------------------- simple rescaling
def zscore(volume: Array, mask: ArrayLike | None = None, *, eps: float = 0.0) -> Array:
    """Z-score normalisation with statistics over a mask.

    ``out = (volume - mean) / std``, mean and (population, ddof=0) std taken over ``mask``,
    applied to every voxel (the background of a masked image becomes ``-mean/std``).

    Args:
        volume: array of any shape, numpy or torch (any device).
        mask: boolean (or 0/1) array of ``volume``'s shape; default ``volume != 0``.
        eps: added to the std (0 by default: a constant region raises instead).

    Returns:
        Same type/shape/device as ``volume``; floating dtype kept, integers become float32.

    Raises:
        TypeError: volume or mask is not an array, or is complex.
        ValueError: mask shape differs from volume's, the mask is empty, or std is zero.

    Example:
        >>> import numpy as np
        >>> x = np.array([0.0, 1.0, 2.0, 3.0])
        >>> zscore(x).round(4).tolist()  # foreground 1, 2, 3: mean 2, std 0.8165
        [-2.4495, -1.2247, 0.0, 1.2247]
    """
    _check_array("volume", volume)
    if _numpy_fast_path(volume):  # CPU tensors: numpy is faster here; zero-copy both ways
        return torch.from_numpy(zscore(volume.numpy(), _cpu_numpy_mask(mask), eps=eps))
    volume = _as_float(volume)
    m = _mask_for(volume, mask)
    mean, std = _mean_std(_masked_values(volume, m, "mean and std"))
    std = std + eps
    if std <= 0 or not np.isfinite(std):
        raise ValueError(f"volume is constant over the mask (std {std}); cannot z-score it (pass eps > 0)")
    return _affine_map(volume, 1.0 / std, -mean / std)


def minmax(volume: Array, mask: ArrayLike | None = None, *,
           out_range: tuple[float, float] = (0.0, 1.0)) -> Array:
    """Linear rescaling of ``[min, max]`` (over ``mask``; default all voxels) onto ``out_range``.

    Args:
        volume: array of any shape, numpy or torch.
        mask: optional boolean array of ``volume``'s shape selecting the voxels that define
            min and max (voxels outside may map outside ``out_range``).
        out_range: ``(low, high)`` target values, ``low < high``.

    Returns:
        Same type/shape/device as ``volume`` (floating).

    Raises:
        ValueError: bad ``out_range``, mask shape mismatch, empty mask or constant volume.
    """
    _check_array("volume", volume)
    try:
        low, high = (float(v) for v in out_range)
    except (TypeError, ValueError) as err:
        raise ValueError(f"out_range must be two numbers (low, high), got {out_range!r}") from err
    if not low < high:
        raise ValueError(f"out_range must satisfy low < high, got {out_range!r}")
    volume = _as_float(volume)
    if mask is None:
        values = volume
    else:
        values = _masked_values(volume, _mask_for(volume, mask), "min and max")
    if isinstance(values, torch.Tensor):
        values = values.detach()
    vmin, vmax = float(values.min()), float(values.max())
    if not vmax > vmin:
        raise ValueError(f"volume is constant over the mask (min = max = {vmin}); cannot rescale it")
    scale = (high - low) / (vmax - vmin)
    return _affine_map(volume, scale, low - vmin * scale)


def percentile_clip(volume: Array, lower: float = 0.5, upper: float = 99.5,
                    mask: ArrayLike | None = None, *, rescale: bool = False) -> Array:
    """Clip intensities to the ``lower``/``upper`` percentiles, optionally rescale to [0, 1].

    Percentiles use numpy's default (linear interpolation) rule, over ``mask`` (default all
    voxels).

    Args:
        volume: array of any shape, numpy or torch.
        lower: lower percentile in [0, 100).
        upper: upper percentile in (lower, 100].
        mask: optional boolean array of ``volume``'s shape selecting the voxels whose
            percentiles are used.
        rescale: map the clipped range ``[p_lower, p_upper]`` linearly onto ``[0, 1]``.

    Returns:
        Same type/shape/device as ``volume`` (floating).

    Raises:
        ValueError: percentiles out of order or outside [0, 100]; mask problems.
    """
    _check_array("volume", volume)
    if not (0.0 <= float(lower) < float(upper) <= 100.0):
        raise ValueError(
            f"lower and upper must satisfy 0 <= lower < upper <= 100, got lower={lower!r}, upper={upper!r}"
        )
    volume = _as_float(volume)
    values = volume if mask is None else _masked_values(volume, _mask_for(volume, mask), "percentiles")
    if isinstance(values, torch.Tensor):
        values = values.reshape(-1)
    else:
        values = values.ravel()
    lo, hi = _quantiles(values, (float(lower) / 100.0, float(upper) / 100.0))
    if isinstance(volume, torch.Tensor):
        out = volume.clamp(lo, hi)
    else:
        out = np.clip(volume, volume.dtype.type(lo), volume.dtype.type(hi))
    if rescale:
        if not hi > lo:
            raise ValueError(f"the {lower}th and {upper}th percentiles are equal ({lo}); cannot rescale")
        scale = 1.0 / (hi - lo)
        out = _affine_map(out, scale, -lo * scale)
    return out


# ------------------------------------------------------------------------------ fuzzy c-means
def fcm(values: np.ndarray, n_clusters: int = 3, *, fuzziness: float = 2.0, max_iter: int = 100,
        tol: float = 1e-4, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fuzzy c-means clustering of scalar values (Bezdek 1981).

    Alternates ``u_ik = 1 / sum_j (d_ik / d_jk)^(2/(m-1))`` and
    ``c_k = sum_i w_i u_ik^m x_i / sum_i w_i u_ik^m`` from centres at evenly spaced
    quantiles (deterministic), until the centres move less than ``tol * (max - min)``.

    Args:
        values: 1-D array of N values.
        n_clusters: number of clusters c >= 1.
        fuzziness: exponent m > 1.
        max_iter: iteration limit.
        tol: relative tolerance on the centre change.
        weights: optional non-negative weights (N,), e.g. histogram counts.

    Returns:
        ``(centers, memberships)``: centres sorted ascending, shape (c,), and memberships
        (c, N) in [0, 1] summing to 1 over the clusters.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("values must be non-empty")
    if int(n_clusters) != n_clusters or n_clusters < 1:
        raise ValueError(f"n_clusters must be a positive integer, got {n_clusters!r}")
    if not fuzziness > 1:
        raise ValueError(f"fuzziness must be > 1, got {fuzziness!r}")
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if w.shape != x.shape or np.any(w < 0):
        raise ValueError("weights must be non-negative with the shape of values")
    n_clusters = int(n_clusters)
    span = float(x.max() - x.min()) or 1.0
    centers = np.quantile(x, (np.arange(n_clusters) + 0.5) / n_clusters)
    expo = 2.0 / (fuzziness - 1.0)
    for _ in range(max_iter):
        d = np.abs(x[None, :] - centers[:, None]) + 1e-12 * span  # (c, N)
        inv = d ** (-expo)
        u = inv / inv.sum(axis=0, keepdims=True)
        um = u ** fuzziness * w
        new = (um @ x) / np.maximum(um.sum(axis=1), 1e-300)
        moved = float(np.max(np.abs(new - centers)))
        centers = new
        if moved < tol * span:
            break
    d = np.abs(x[None, :] - centers[:, None]) + 1e-12 * span
    inv = d ** (-expo)
    u = inv / inv.sum(axis=0, keepdims=True)
    order = np.argsort(centers)
    return centers[order], u[order]


_TISSUES = {"csf": 0, "gm": 1, "wm": 2}


def fcm_normalize(volume: ArrayLike, mask: ArrayLike | None = None, *, tissue_mask: ArrayLike | None = None,
                  tissue: str = "wm", norm_value: float = 1.0, fuzziness: float = 2.0,
                  max_iter: int = 100) -> tuple[ArrayLike, ArrayLike]:
    """Fuzzy c-means white-matter (or other tissue) mean normalisation.

    Three-class FCM (CSF < GM < WM for a T1-weighted image) over the foreground finds the
    tissue's membership map ``u``; the volume is divided by the membership-weighted tissue mean
    ``sum(u x) / sum(u)`` and multiplied by ``norm_value``. For another contrast of the same
    (co-registered) subject, pass the returned membership as ``tissue_mask``: no clustering is
    done then, its weighted mean is used directly (the usual recipe: cluster the T1, normalise
    T2/FLAIR with the T1's WM mask).

    Args:
        volume: array of any shape (usually a 3-D brain volume), numpy or torch.
        mask: brain/foreground mask of ``volume``'s shape (default ``volume > 0``).
        tissue_mask: membership (0..1 or boolean) of the reference tissue, ``volume``'s shape;
            skips the clustering.
        tissue: ``"wm"`` (brightest of 3 classes), ``"gm"`` or ``"csf"`` (darkest), the order
            for a T1-weighted image.
        norm_value: value the tissue mean is mapped to.
        fuzziness: FCM exponent m.
        max_iter: FCM iteration limit.

    Returns:
        ``(normalized, tissue_membership)``, both of ``volume``'s type and shape; the
        membership is zero outside the mask.

    Raises:
        ValueError: unknown tissue, shape mismatch, empty mask, zero tissue mean.

    Example:
        >>> t1_norm, wm = fcm_normalize(t1)                 # doctest: +SKIP
        >>> t2_norm, _ = fcm_normalize(t2, tissue_mask=wm)  # doctest: +SKIP
    """
    _check_array("volume", volume)
    if tissue not in _TISSUES:
        raise ValueError(f"tissue must be one of {sorted(_TISSUES)}, got {tissue!r}")
    data = _to_numpy(volume).astype(np.float64, copy=False)
    if tissue_mask is None:
        if mask is None:
            m = data > 0
        else:
            m = _mask_for(data, mask)
        values = _masked_values(data, m, "tissue classes")
        # cluster the distinct values with their counts (exact; much faster for integer images)
        uniq, counts = np.unique(values, return_counts=True)
        if uniq.size < 3:
            raise ValueError(f"volume has only {uniq.size} distinct foreground values; cannot find 3 tissue classes")
        _, u = fcm(uniq, 3, fuzziness=fuzziness, max_iter=max_iter, weights=counts)
        membership = np.zeros(data.shape, dtype=np.float32)
        idx = np.searchsorted(uniq, values)
        membership[m] = u[_TISSUES[tissue]][idx]
    else:
        if not isinstance(tissue_mask, (np.ndarray, torch.Tensor)):
            raise TypeError(f"tissue_mask must be an array, got {_describe(tissue_mask)}")
        if tuple(tissue_mask.shape) != data.shape:
            raise ValueError(f"tissue_mask must have the volume's shape {data.shape}, got shape {tuple(tissue_mask.shape)}")
        membership = _to_numpy(tissue_mask).astype(np.float32)
    total = float(membership.sum(dtype=np.float64))
    if total <= 0:
        raise ValueError("tissue_mask is empty (all zero); cannot compute the tissue mean")
    tissue_mean = float(np.sum(data * membership, dtype=np.float64)) / total
    if tissue_mean == 0:
        raise ValueError("the tissue mean is zero; cannot normalise by it")
    out = _affine_map(_as_float(_to_numpy(volume)), norm_value / tissue_mean, 0.0)
    return _like(out, volume), _like(membership, volume)


# --------------------------------------------------------------------------------------- Nyul
def _atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (hidden temporary file in the same folder, then rename)."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    # O_EXCL on a fresh random name; mode 0o666 filtered by the process umask (no umask change)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


class NyulNormalizer:
    """Nyul & Udupa (1999/2000) piecewise-linear histogram standardisation.

    ``fit`` learns a standard scale: for each training volume the landmarks (percentiles
    ``min_percentile``, ``10, 20, ..., 90``, ``max_percentile`` of the foreground) are mapped
    linearly so that the min/max percentiles land on ``output_range``, and averaged.
    ``transform`` maps a volume's own landmarks onto the standard scale piecewise linearly
    (linear extrapolation beyond the end landmarks), as ``intensity-normalization`` does.

    Args:
        output_range: ``(s1, s2)`` of the standard scale.
        min_percentile: lower end landmark percentile.
        max_percentile: upper end landmark percentile.
        percentiles: inner landmark percentiles (strictly increasing, inside the ends).

    Example:
        >>> nyul = NyulNormalizer().fit([t1_a, t1_b, t1_c])   # doctest: +SKIP
        >>> nyul.save("nyul_t1.json"); out = NyulNormalizer.load("nyul_t1.json").transform(t1_d)  # doctest: +SKIP
    """

    def __init__(self, output_range: tuple[float, float] = (1.0, 100.0), min_percentile: float = 1.0,
                 max_percentile: float = 99.0, percentiles: Sequence[float] = tuple(range(10, 100, 10))) -> None:
        lo, hi = (float(v) for v in output_range)
        if not lo < hi:
            raise ValueError(f"output_range must satisfy low < high, got {output_range!r}")
        marks = np.concatenate([[min_percentile], np.asarray(percentiles, dtype=np.float64), [max_percentile]])
        if np.any(np.diff(marks) <= 0) or marks[0] < 0 or marks[-1] > 100:
            raise ValueError(
                "percentiles must increase strictly from min_percentile to max_percentile within [0, 100], "
                f"got {marks.tolist()}"
            )
        self.output_range = (lo, hi)
        self.landmark_percentiles = marks
        self.standard_scale: np.ndarray | None = None

    def _landmarks(self, volume: ArrayLike, mask: ArrayLike | None, name: str) -> np.ndarray:
        _check_array(name, volume)
        data = _to_numpy(volume)
        m = data > 0 if mask is None else _mask_for(data, mask)
        values = _masked_values(data, m, "landmarks")
        return np.percentile(values.astype(np.float64, copy=False), self.landmark_percentiles)

    def fit(self, volumes: Sequence[ArrayLike], masks: Sequence[ArrayLike | None] | None = None) -> "NyulNormalizer":
        """Learn the standard scale from ``volumes`` (optional per-volume foreground ``masks``)."""
        volumes = list(volumes)
        if not volumes:
            raise ValueError("volumes must contain at least one volume, got an empty sequence")
        if masks is not None and len(masks) != len(volumes):
            raise ValueError(f"masks must have one entry per volume ({len(volumes)}), got {len(masks)}")
        s1, s2 = self.output_range
        total = np.zeros(len(self.landmark_percentiles))
        for i, vol in enumerate(volumes):
            marks = self._landmarks(vol, None if masks is None else masks[i], f"volumes[{i}]")
            if marks[-1] <= marks[0]:
                raise ValueError(f"volumes[{i}] has equal min and max landmarks ({marks[0]}); cannot standardise")
            total += s1 + (marks - marks[0]) * (s2 - s1) / (marks[-1] - marks[0])
        self.standard_scale = total / len(volumes)
        return self

    def transform(self, volume: Array, mask: ArrayLike | None = None) -> Array:
        """Map ``volume`` onto the standard scale (same type/shape; floating)."""
        if self.standard_scale is None:
            raise RuntimeError("NyulNormalizer is not fitted: call fit(volumes) or load(path) first")
        marks = self._landmarks(volume, mask, "volume")
        if np.any(np.diff(marks) <= 0):
            # ties (e.g. many equal values): keep the map monotone by nudging equal landmarks apart
            marks = marks + np.arange(len(marks)) * 1e-9 * max(1.0, abs(marks[-1]))
        data = _to_numpy(volume)
        x = data.astype(np.float64, copy=False)
        out = np.interp(x, marks, self.standard_scale)
        lo_slope = (self.standard_scale[1] - self.standard_scale[0]) / (marks[1] - marks[0])
        hi_slope = (self.standard_scale[-1] - self.standard_scale[-2]) / (marks[-1] - marks[-2])
        below, above = x < marks[0], x > marks[-1]
        out[below] = self.standard_scale[0] + (x[below] - marks[0]) * lo_slope
        out[above] = self.standard_scale[-1] + (x[above] - marks[-1]) * hi_slope
        dtype = data.dtype if np.issubdtype(data.dtype, np.floating) else np.float32
        return _like(out.astype(dtype), volume)

    def state_dict(self) -> dict:
        """The fitted landmarks as a JSON-able dict."""
        if self.standard_scale is None:
            raise RuntimeError("NyulNormalizer is not fitted: nothing to save")
        return {
            "format": "recon.NyulNormalizer/1",
            "output_range": list(self.output_range),
            "landmark_percentiles": self.landmark_percentiles.tolist(),
            "standard_scale": self.standard_scale.tolist(),
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write the landmarks to ``path`` as JSON, atomically (temporary name, then rename)."""
        _atomic_write_text(Path(path), json.dumps(self.state_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "NyulNormalizer":
        """Read landmarks written by :meth:`save`."""
        try:
            state = json.loads(Path(path).read_text())
            marks = np.asarray(state["landmark_percentiles"], dtype=np.float64)
            scale = np.asarray(state["standard_scale"], dtype=np.float64)
            out_range = tuple(state["output_range"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f"path {str(path)!r} is not a NyulNormalizer landmark file: {err}") from err
        if marks.shape != scale.shape or marks.ndim != 1 or len(marks) < 2:
            raise ValueError(f"path {str(path)!r}: landmark_percentiles and standard_scale must be equal-length lists")
        obj = cls(output_range=out_range, min_percentile=marks[0], max_percentile=marks[-1],
                  percentiles=marks[1:-1])
        obj.standard_scale = scale
        return obj


# -------------------------------------------------------------------------------- WhiteStripe
def _kde_modes(values: np.ndarray, grid_size: int = 80, max_bins: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian KDE of ``values`` (Scott's bandwidth, as ``scipy.stats.gaussian_kde``) on an even grid.

    Evaluated from the distinct values with their counts (exact for integer images), or from a
    ``max_bins`` histogram when there are more distinct values (error below half a bin, far
    below the bandwidth): O(grid x bins) instead of O(grid x N).
    """
    values = values.astype(np.float64, copy=False)
    n = values.size
    bandwidth = float(values.std(ddof=1)) * n ** (-1.0 / 5.0) if n > 1 else 1.0
    bandwidth = bandwidth or 1.0
    centers, counts = np.unique(values, return_counts=True)
    if centers.size > max_bins:
        counts, edges = np.histogram(values, bins=max_bins)
        centers = 0.5 * (edges[:-1] + edges[1:])
    grid = np.linspace(values.min(), values.max(), grid_size)
    z = (grid[:, None] - centers[None, :]) / bandwidth
    pdf = (np.exp(-0.5 * z * z) @ counts) / (n * bandwidth * np.sqrt(2.0 * np.pi))
    return grid, pdf


def whitestripe(volume: Array, mask: ArrayLike | None = None, *, contrast: str = "t1", width: float = 0.05,
                return_mask: bool = False) -> Array | tuple[Array, Array]:
    """WhiteStripe normalisation (Shinohara et al., NeuroImage Clin. 2014).

    The normal-appearing white-matter mode ``mu`` is found on a Gaussian-KDE histogram of the
    foreground: the last (highest-intensity) local maximum below the 96th percentile for T1,
    the largest peak for T2/FLAIR, the first below the 99th percentile for PD. The "white
    stripe" is the voxels whose intensity quantile is within ``+-width`` of ``mu``'s quantile;
    the volume is z-scored with the stripe's mean and standard deviation.

    Args:
        volume: array of any shape, numpy or torch.
        mask: brain mask of ``volume``'s shape (default ``volume > 0``). A brain mask
            (skull-stripped input) is strongly recommended: WhiteStripe assumes brain tissue.
        contrast: ``"t1"``, ``"t2"``, ``"flair"`` or ``"pd"``.
        width: quantile half-width of the stripe, in (0, 0.5).
        return_mask: also return the white-stripe mask.

    Returns:
        The normalised volume (type and shape of ``volume``), and the boolean stripe mask if
        ``return_mask``.

    Example:
        >>> t1_ws, stripe = whitestripe(t1, brain, return_mask=True)   # doctest: +SKIP
        >>> flair_ws = whitestripe(flair, brain, contrast="flair")        # doctest: +SKIP
    """
    _check_array("volume", volume)
    if contrast not in ("t1", "t2", "flair", "pd"):
        raise ValueError(f"contrast must be one of 't1', 't2', 'flair', 'pd', got {contrast!r}")
    if not 0 < float(width) < 0.5:
        raise ValueError(f"width must be in (0, 0.5), got {width!r}")
    data = _to_numpy(volume)
    m = data > 0 if mask is None else _mask_for(data, mask)
    values = _masked_values(data, m, "white stripe").astype(np.float64)
    tail = {"t1": 96.0, "pd": 99.0}.get(contrast)
    if tail is None:
        grid, pdf = _kde_modes(values)
        mode = float(grid[np.argmax(pdf)])
    else:
        kept = values[values <= np.percentile(values, tail)]
        grid, pdf = _kde_modes(kept)
        peaks = np.flatnonzero((pdf[1:-1] > pdf[:-2]) & (pdf[1:-1] > pdf[2:])) + 1
        if peaks.size == 0:
            mode = float(grid[np.argmax(pdf)])
        else:
            mode = float(grid[peaks[-1] if contrast == "t1" else peaks[0]])
    q = float(np.mean(values < mode))
    lo_q, hi_q = max(q - width, 0.0), min(q + width, 1.0)
    ws_lo, ws_hi = np.quantile(values, (lo_q, hi_q))
    stripe = m & (data > ws_lo) & (data < ws_hi)
    stripe_values = data[stripe].astype(np.float64)
    if stripe_values.size < 2 or stripe_values.std() == 0:
        raise ValueError("the white stripe is empty or constant; is the volume a brain image (and mask a brain mask)?")
    mean, std = float(stripe_values.mean()), float(stripe_values.std())
    out = _affine_map(_as_float(data), 1.0 / std, -mean / std)
    out = _like(out, volume)
    if return_mask:
        return out, _like(stripe, volume)
    return out
