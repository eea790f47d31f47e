"""Intensity transforms: noise at a given SNR, bias field, gamma, clipping and normalisation.

They change images only (label keys are left alone) and keep the grid.

SNR
---
``SNR = mean foreground signal / sigma``, per sample and channel, the foreground being the voxels
above the image's mean (:func:`foreground_mean`): a definition that does not depend on how much
empty background surrounds the anatomy. ``sigma`` is the standard deviation of the Gaussian noise
added (for Rician noise, of each of the real and imaginary Gaussian components).

Rician noise is the magnitude of the signal plus complex Gaussian noise,
``|x + n_r + i n_i|`` with ``n_r, n_i ~ N(0, sigma^2)`` (:func:`rician_noise`): in the
background it is Rayleigh distributed, on a signal ``A`` Rice(``A / sigma``) - what a magnitude
MR image carries.

Normalisation (:class:`ZScore`, :class:`MinMax`, :class:`PercentileClip`) reuses
:mod:`recon.preprocess.normalize` per sample and channel.
"""

from __future__ import annotations

import itertools
from typing import Iterable, Sequence

import torch

from recon.preprocess import normalize
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
    seeded,
    uniform,
)

__all__ = [
    "gaussian_noise",
    "rician_noise",
    "foreground_mean",
    "noise_sigma",
    "GaussianNoise",
    "RicianNoise",
    "BiasField",
    "RandomBiasField",
    "Gamma",
    "RandomGamma",
    "PercentileClip",
    "ZScore",
    "MinMax",
]


def _check_image(name: str, image: object) -> torch.Tensor:
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {describe(image)}")
    if not image.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {describe(image)}")
    return image


def _sigma(sigma: float | torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    if isinstance(sigma, torch.Tensor):
        s = sigma.to(device=image.device, dtype=image.dtype)
        if (s < 0).any():
            raise ValueError("sigma must be non-negative")
        try:
            torch.broadcast_shapes(s.shape, image.shape)
        except RuntimeError as err:
            raise ValueError(f"sigma of shape {tuple(s.shape)} does not broadcast against image {tuple(image.shape)}") from err
        return s
    return torch.tensor(check_number("sigma", sigma, low=0.0), dtype=image.dtype, device=image.device)


def gaussian_noise(image: torch.Tensor, sigma: float | torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``image + N(0, sigma^2)`` noise (``sigma`` a number or a tensor broadcasting to the image)."""
    image = _check_image("image", image)
    s = _sigma(sigma, image)
    noise = torch.randn(image.shape, generator=generator, device=generator.device, dtype=image.dtype).to(image.device)
    return image + s * noise


def rician_noise(image: torch.Tensor, sigma: float | torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Magnitude of ``image`` plus complex Gaussian noise: ``sqrt((x + n_r)^2 + n_i^2)``.

    Args:
        image: real tensor of any shape (a magnitude image; the signal is taken as real).
        sigma: standard deviation of each Gaussian component (number >= 0, or a tensor that
            broadcasts against ``image``, e.g. ``(B, C, 1, 1, 1)``).
        generator: ``torch.Generator`` for the noise (its device type must match).

    Returns:
        Non-negative tensor of ``image``'s shape and dtype. Where ``image`` is 0 the values are
        Rayleigh(``sigma``); where it is ``A``, Rice(``A / sigma``, scale ``sigma``).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> noisy = rician_noise(torch.ones(1, 64, 64), 0.1, g)
    """
    image = _check_image("image", image)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {describe(generator)}")
    s = _sigma(sigma, image)
    n = torch.randn((2, *image.shape), generator=generator, device=generator.device, dtype=image.dtype).to(image.device)
    return torch.hypot(image + s * n[0], s * n[1])


def foreground_mean(image: torch.Tensor, dims: Sequence[int] | None = None) -> torch.Tensor:
    """Mean of the voxels above the mean, over ``dims`` (default all but the first two).

    Args:
        image: ``(B, C, *spatial)`` (or any tensor with ``dims`` given).

    Returns:
        Tensor with ``dims`` kept as size 1 (broadcasts against ``image``).
    """
    image = _check_image("image", image)
    if dims is None:
        dims = tuple(range(2, image.ndim))
    dims = tuple(dims)
    mean = image.mean(dim=dims, keepdim=True)
    fg = image > mean
    count = fg.sum(dim=dims, keepdim=True).clamp(min=1)
    out = torch.where(fg, image, torch.zeros((), dtype=image.dtype, device=image.device)).sum(dim=dims, keepdim=True) / count
    # a constant image has no voxel above its mean: its mean is its signal
    return torch.where(fg.any(dim=dims, keepdim=True) if len(dims) else fg, out, mean)


def noise_sigma(image: torch.Tensor, snr: float | torch.Tensor) -> torch.Tensor:
    """``sigma = foreground_mean(image) / snr`` per sample and channel of ``(B, C, *spatial)``."""
    if isinstance(snr, torch.Tensor):
        snr_t = snr.to(device=image.device, dtype=image.dtype)
        if (snr_t <= 0).any():
            raise ValueError("snr must be positive")
        snr_t = snr_t.reshape(-1, *[1] * (image.ndim - 1)) if snr_t.ndim == 1 else snr_t
    else:
        snr_t = torch.tensor(check_number("snr", snr, low=0.0, strict=True), dtype=image.dtype, device=image.device)
    return foreground_mean(image).abs() / snr_t


def _snr_range(value: object) -> tuple[float, float]:
    values = as_number_list("snr", value)
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or not 0 < values[0] <= values[1]:
        raise ValueError(f"snr must be a positive number or a range (low, high) with 0 < low <= high, got {value!r}")
    return values[0], values[1]


class _Noise(Transform):
    random = True
    _fn = staticmethod(gaussian_noise)

    def __init__(self, snr: float | Sequence[float] = (10.0, 30.0), *, labels: Iterable[str] = ()) -> None:
        super().__init__(labels=labels)
        self.snr = _snr_range(snr)

    def param_keys(self) -> tuple[str, ...]:
        return ("snr", "seed")

    def draw(self, batch: Batch, generator: torch.Generator) -> Params:
        lo = torch.tensor([self.snr[0]], dtype=torch.float64, device=generator.device)
        hi = torch.tensor([self.snr[1]], dtype=torch.float64, device=generator.device)
        snr = uniform(generator, lo, hi, batch.batch_size)[:, 0]
        return {"snr": snr.to(batch.device), "seed": draw_seeds(generator, batch.batch_size).cpu()}

    def apply(self, batch: Batch, params: Params) -> Batch:
        snr, seeds = params["snr"], params["seed"].cpu().tolist()
        gens = [seeded(s, batch.device) for s in seeds]

        def one(t: torch.Tensor, key: str) -> torch.Tensor:
            t = t if t.is_floating_point() else t.float()
            sigma = noise_sigma(t, snr.to(t.dtype))
            return torch.cat([type(self)._fn(t[i:i + 1], sigma[i:i + 1], gens[i]) for i in range(t.shape[0])], 0)

        return map_images(batch, one)


class GaussianNoise(_Noise):
    """Add Gaussian noise at an SNR drawn from ``snr`` (see the module for the SNR definition).

    Args:
        snr: a number or a range ``(low, high)`` drawn uniformly per sample.
        labels: label keys (left untouched).

    Parameters drawn: ``{"snr": (B,), "seed": (B,) int64}`` (the noise is drawn from a generator
    seeded with ``seed``, so a replay is bit for bit).
    """

    _fn = staticmethod(gaussian_noise)


class RicianNoise(_Noise):
    """Rician noise (:func:`rician_noise`) at an SNR drawn from ``snr``; parameters as :class:`GaussianNoise`."""

    _fn = staticmethod(rician_noise)


# ------------------------------------------------------------------------------ bias field
def _monomials(nd: int, order: int) -> list[tuple[int, ...]]:
    return [e for e in itertools.product(range(order + 1), repeat=nd) if sum(e) <= order]


def _bias_field(coeffs: torch.Tensor, shape: Sequence[int], order: int, dtype: torch.dtype) -> torch.Tensor:
    """``exp(sum_c c * x^i y^j z^k)`` on ``[-1, 1]`` per axis; coeffs ``(B, n_terms)`` -> ``(B, 1, *shape)``."""
    nd = len(shape)
    dev = coeffs.device
    axes = [torch.linspace(-1, 1, n, dtype=dtype, device=dev) if n > 1 else torch.zeros(1, dtype=dtype, device=dev)
            for n in shape]
    terms = _monomials(nd, order)
    logf = torch.zeros(coeffs.shape[0], *shape, dtype=dtype, device=dev)
    powers = [[a**p for p in range(order + 1)] for a in axes]
    for t, e in enumerate(terms):
        term = None
        for axis, p in enumerate(e):
            v = powers[axis][p].view(*[1] * axis, -1, *[1] * (nd - axis - 1))
            term = v if term is None else term * v
        logf += coeffs[:, t].to(dtype).view(-1, *[1] * nd) * term
    return torch.exp(logf).unsqueeze(1)


class BiasField(Transform):
    """Multiply images by a smooth field ``exp(polynomial)`` (torchio's bias-field model).

    Args:
        coefficients: one coefficient per monomial ``x^i y^j z^k`` with ``i + j + k <= order``
            (coordinates in [-1, 1] along each spatial axis, monomials in
            ``itertools.product`` order), for ``nd``-D data.
        order: polynomial order.
    """

    def __init__(self, coefficients: Sequence[float] | torch.Tensor, order: int = 3, *, labels: Iterable[str] = ()) -> None:
        super().__init__(labels=labels)
        self.order = check_positive_int("order", order, minimum=0)
        self.coefficients = as_number_list("coefficients", coefficients)

    def param_keys(self) -> tuple[str, ...]:
        return ("coefficients",)

    def draw(self, batch: Batch, generator) -> Params:
        n = len(_monomials(batch.nd, self.order))
        if len(self.coefficients) != n:
            raise ValueError(f"coefficients must have {n} values for order {self.order} in {batch.nd}-D, got {len(self.coefficients)}")
        c = torch.tensor(self.coefficients, dtype=torch.float64, device=batch.device)
        return {"coefficients": c.expand(batch.batch_size, n).clone()}

    def apply(self, batch: Batch, params: Params) -> Batch:
        order = self.order
        c = params["coefficients"]
        if c.shape[1] != len(_monomials(batch.nd, order)):
            raise ValueError(f"params['coefficients'] must be (B, {len(_monomials(batch.nd, order))}), got {describe(c)}")

        def one(t: torch.Tensor, key: str) -> torch.Tensor:
            t = t if t.is_floating_point() else t.float()
            return t * _bias_field(c, t.shape[2:], order, t.dtype)

        return map_images(batch, one)


class RandomBiasField(BiasField):
    """Bias field with coefficients ``U(-coefficients, coefficients)`` (torchio defaults 0.5, order 3)."""

    random = True

    def __init__(self, coefficients: float = 0.5, order: int = 3, *, labels: Iterable[str] = ()) -> None:
        Transform.__init__(self, labels=labels)
        self.order = check_positive_int("order", order, minimum=0)
        self.coefficients = [check_number("coefficients", coefficients, low=0.0)]

    def draw(self, batch: Batch, generator: torch.Generator) -> Params:
        n = len(_monomials(batch.nd, self.order))
        c = torch.full((n,), self.coefficients[0], dtype=torch.float64, device=generator.device)
        return {"coefficients": uniform(generator, -c, c, batch.batch_size).to(batch.device)}


# ------------------------------------------------------------------------------ gamma
def _gamma(t: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    dims = tuple(range(2, t.ndim))
    lo = t.amin(dim=dims, keepdim=True)
    hi = t.amax(dim=dims, keepdim=True)
    span = (hi - lo).clamp(min=torch.finfo(t.dtype).tiny)
    g = gamma.to(t.dtype).view(-1, *[1] * (t.ndim - 1))
    return ((t - lo) / span).clamp(0, 1).pow(g) * span + lo


class Gamma(Transform):
    """``x -> lo + (hi - lo) * ((x - lo) / (hi - lo)) ** exp(log_gamma)`` per sample and channel.

    The power acts on the image rescaled to [0, 1] by its own min and max (so negative
    intensities are fine), then the range is restored.

    Args:
        log_gamma: the log of the exponent (0 is the identity).
    """

    def __init__(self, log_gamma: float, *, labels: Iterable[str] = ()) -> None:
        super().__init__(labels=labels)
        self.log_gamma = check_number("log_gamma", log_gamma)

    def param_keys(self) -> tuple[str, ...]:
        return ("gamma",)

    def draw(self, batch: Batch, generator) -> Params:
        return {"gamma": torch.full((batch.batch_size,), float(torch.tensor(self.log_gamma).exp()), dtype=torch.float64,
                                    device=batch.device)}

    def apply(self, batch: Batch, params: Params) -> Batch:
        gamma = params["gamma"]
        return map_images(batch, lambda t, k: _gamma(t if t.is_floating_point() else t.float(), gamma))


class RandomGamma(Gamma):
    """Gamma with ``log_gamma ~ U(low, high)`` (torchio's default range ``(-0.3, 0.3)``).

    Args:
        log_gamma: a number ``x`` (range ``(-x, x)``) or a pair ``(low, high)``.
    """

    random = True

    def __init__(self, log_gamma: float | Sequence[float] = 0.3, *, labels: Iterable[str] = ()) -> None:
        Transform.__init__(self, labels=labels)
        values = as_number_list("log_gamma", log_gamma)
        if len(values) == 1:
            if values[0] < 0:
                raise ValueError(f"log_gamma as one number x means (-x, x) and must be >= 0, got {log_gamma!r}")
            values = [-values[0], values[0]]
        if len(values) != 2 or values[0] > values[1]:
            raise ValueError(f"log_gamma must be a number or a range (low, high) with low <= high, got {log_gamma!r}")
        self.log_gamma = tuple(values)

    def draw(self, batch: Batch, generator: torch.Generator) -> Params:
        lo = torch.tensor([self.log_gamma[0]], dtype=torch.float64, device=generator.device)
        hi = torch.tensor([self.log_gamma[1]], dtype=torch.float64, device=generator.device)
        return {"gamma": uniform(generator, lo, hi, batch.batch_size)[:, 0].exp().to(batch.device)}


# ------------------------------------------------------------------------------ normalisation
class _PerChannel(Transform):
    def param_keys(self) -> tuple[str, ...]:
        return ()

    def draw(self, batch: Batch, generator) -> Params:
        return {}

    def _fn(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def apply(self, batch: Batch, params: Params) -> Batch:
        def one(t: torch.Tensor, key: str) -> torch.Tensor:
            t = t if t.is_floating_point() else t.float()
            return torch.stack([torch.stack([self._fn(t[b, c]) for c in range(t.shape[1])]) for b in range(t.shape[0])])

        return map_images(batch, one)


class PercentileClip(_PerChannel):
    """Clip each image (per sample and channel) to its ``lower``/``upper`` percentiles.

    Wraps :func:`recon.preprocess.normalize.percentile_clip` (``rescale=True`` maps the clipped
    range onto [0, 1]).
    """

    def __init__(self, lower: float = 0.5, upper: float = 99.5, *, rescale: bool = False, labels: Iterable[str] = ()) -> None:
        super().__init__(labels=labels)
        lower, upper = check_number("lower", lower), check_number("upper", upper)
        if not 0.0 <= lower < upper <= 100.0:
            raise ValueError(f"lower and upper must satisfy 0 <= lower < upper <= 100, got lower={lower!r}, upper={upper!r}")
        self.lower, self.upper, self.rescale = lower, upper, bool(rescale)

    def _fn(self, x: torch.Tensor) -> torch.Tensor:
        return normalize.percentile_clip(x, self.lower, self.upper, rescale=self.rescale)


class ZScore(_PerChannel):
    """Z-score each image (per sample and channel) with :func:`recon.preprocess.normalize.zscore`.

    Args:
        masked: statistics over the non-zero voxels (the function's default) if True, else all.
        eps: added to the std.
    """

    def __init__(self, *, masked: bool = True, eps: float = 0.0, labels: Iterable[str] = ()) -> None:
        super().__init__(labels=labels)
        self.masked, self.eps = bool(masked), check_number("eps", eps, low=0.0)

    def _fn(self, x: torch.Tensor) -> torch.Tensor:
        mask = None if self.masked else torch.ones_like(x, dtype=torch.bool)
        return normalize.zscore(x, mask, eps=self.eps)


class MinMax(_PerChannel):
    """Rescale each image (per sample and channel) onto ``out_range`` with :func:`recon.preprocess.normalize.minmax`."""

    def __init__(self, out_range: tuple[float, float] = (0.0, 1.0), *, labels: Iterable[str] = ()) -> None:
        super().__init__(labels=labels)
        values = as_number_list("out_range", list(out_range) if isinstance(out_range, tuple) else out_range)
        if len(values) != 2 or not values[0] < values[1]:
            raise ValueError(f"out_range must be (low, high) with low < high, got {out_range!r}")
        self.out_range = (values[0], values[1])

    def _fn(self, x: torch.Tensor) -> torch.Tensor:
        return normalize.minmax(x, out_range=self.out_range)
