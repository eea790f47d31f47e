"""Super-resolution of MR images: low-resolution simulation, a multi-scale fusion CNN, a 3-D SRGAN.

Geometry (one convention everywhere): a low-resolution (LR) image of ``n`` voxels along an axis
enlarged ``s`` times has ``N = s n`` voxels over the same field of view; LR voxel ``j`` covers
high-resolution (HR) voxels ``s j .. s j + s - 1`` and sits at their centre, HR coordinate
``s j + (s - 1) / 2`` (NIfTI / ``scipy.ndimage.zoom(grid_mode=True)`` /
``torch.nn.functional.interpolate(align_corners=False)``). Scales are per axis, e.g. ``(2, 2)``
for a 2-D slice, ``(2, 2, 2)`` isotropic or ``(1, 1, 3)`` for 3 mm thick slices -> 1 mm.

Low resolution, two ways:

* :func:`kspace_truncate` - the MRI way: keep the central ``N / s`` k-space lines per axis (what
  a shorter acquisition measures; centred orthonormal FFTs of :mod:`recon.ops.fft`), with a
  sub-voxel phase ramp so LR voxel ``j`` samples the band-limited image at ``s j + (s - 1) / 2``;
  magnitude, intensities preserved. :func:`kspace_zero_pad` is its adjoint-like inverse, the
  zero-filled (sinc) interpolation.
* :func:`image_degrade` - the image way: optional Gaussian blur, block averaging over ``s``
  voxels per axis (the box profile of a thick slice), optional Rician noise.

Networks (tensors in, tensors out):

* :class:`MultiScaleFusionSR` - the multi-scale fusion CNN of Liu et al. 2018 (BioMed Eng
  OnLine 17:114): the LR image is interpolated to the HR grid (separable cubic convolution,
  :func:`cubic_upsample`, or zero-filled k-space, :func:`kspace_zero_pad`, as the bundled
  networks do), a 3x3 convolution lifts it to features, ``num_blocks`` fusion blocks
  run parallel convolution paths with different kernel sizes (3, 5, 7 by default), concatenate
  them and fuse with a 1x1 convolution (+ the block's input), and a last convolution adds a
  residual to the interpolated input (initialised at zero: an untrained network is its
  interpolation exactly). Fully convolutional; 2-D (``dims=2``) or 3-D
  (``dims=3``); one network serves several scales (the scale only enters the interpolation).
* :class:`SRGAN3d` - the 3-D SRGAN of Sanchez and Vilaplana 2018: :class:`SRGenerator3d`
  (residual blocks, learned upsampling by :func:`voxel_shuffle` sub-voxel convolution, plus the
  interpolated input - cubic, or zero-filled k-space; an untrained generator is its interpolation),
  :class:`SRDiscriminator3d` (strided 3-D convolutions) and the
  content (MSE) + adversarial (least squares) generator loss.

:func:`superres_volume` runs a network on a whole image by overlapping LR patches whose HR
outputs are blended linearly; :func:`high_frequency_energy` measures the spectral energy an LR
acquisition lacks (the SRGAN's target against an MSE network's over-smoothing).

Example:
    >>> import torch
    >>> hr = torch.rand(1, 1, 32, 32)
    >>> lr = kspace_truncate(hr, (2, 2))
    >>> lr.shape
    torch.Size([1, 1, 16, 16])
    >>> net = MultiScaleFusionSR(dims=2, chans=8, num_blocks=1)
    >>> net(lr, (2, 2)).shape
    torch.Size([1, 1, 32, 32])
"""

from __future__ import annotations

import itertools
import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recon.heads._checks import check_image_tensor
from recon.heads.synthesis import _taper, _tiles, lsgan_loss, sliding_window_3d
from recon.ops._checks import check_int, describe
from recon.ops.complex import complex_abs
from recon.ops.fft import fft2c, fft3c, ifft2c, ifft3c
from recon.preprocess.augment import rician_noise

#: interpolations of :class:`MultiScaleFusionSR`: separable cubic convolution, zero-filled k-space (sinc)
INTERPOLATIONS = ("cubic", "zero_fill")

__all__ = [
    "INTERPOLATIONS",
    "check_scale",
    "crop_to_multiple",
    "taper_borders",
    "kspace_truncate",
    "kspace_zero_pad",
    "image_degrade",
    "cubic_upsample",
    "interpolate",
    "voxel_shuffle",
    "MultiScaleFusionBlock",
    "MultiScaleFusionSR",
    "SRGenerator3d",
    "SRDiscriminator3d",
    "SRGAN3d",
    "superres_volume",
    "high_frequency_energy",
    "check_input_size",
    "symmetries",
    "upscale_image",
    "adapt_through_plane",
    "residual_weight",
    "blend_residual",
]


# ----------------------------------------------------------------------------- scale and geometry

def check_scale(scale: object, ndim: int, name: str = "scale") -> tuple[int, ...]:
    """A scale as a tuple of ``ndim`` positive ints (an int applies to every axis).

    Raises:
        TypeError: not an int or a tuple/list of ints.
        ValueError: a factor below 1, a tuple of the wrong length, or no factor above 1.
    """
    if isinstance(scale, (int, np.integer)) and not isinstance(scale, bool):
        factors: tuple = (int(scale),) * ndim
    elif isinstance(scale, (tuple, list)) and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in scale):
        factors = tuple(int(s) for s in scale)
        if len(factors) != ndim:
            raise ValueError(f"{name} must be a positive int or a tuple of {ndim} positive ints (one per axis), "
                             f"got {scale!r}")
    else:
        raise TypeError(f"{name} must be a positive int or a tuple of {ndim} positive ints, got {describe(scale)}")
    if min(factors) < 1:
        raise ValueError(f"{name} must be a positive int or a tuple of {ndim} positive ints, got {scale!r}")
    if max(factors) == 1:
        raise ValueError(f"{name} must enlarge at least one axis (a factor > 1), got {scale!r}")
    return factors


def _spatial(image: object, scale: object, spatial_dims: int | None, name: str = "image") -> tuple[torch.Tensor, tuple[int, ...]]:
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {describe(image)}")
    if image.is_complex() or not image.is_floating_point():
        raise TypeError(f"{name} must be a real floating-point tensor, got {describe(image)}")
    if spatial_dims is None:
        if isinstance(scale, (tuple, list)):
            spatial_dims = len(scale)
        elif image.ndim in (2, 3):
            spatial_dims = image.ndim
        else:
            raise ValueError(f"spatial_dims must be given (2 or 3) for a batched {name} of shape "
                             f"{tuple(image.shape)} and an int scale")
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
    if image.ndim < spatial_dims:
        raise ValueError(f"{name} must have at least {spatial_dims} dimensions, got shape {tuple(image.shape)}")
    return image, check_scale(scale, spatial_dims)


def crop_to_multiple(image: torch.Tensor, scale: object, spatial_dims: int | None = None) -> torch.Tensor:
    """Centre-crop the trailing spatial axes to multiples of ``scale`` (so ``N = s n`` exactly)."""
    image, s = _spatial(image, scale, spatial_dims)
    d = len(s)
    index = [slice(None)] * (image.ndim - d)
    for n, f in zip(image.shape[-d:], s):
        keep = n // f * f
        if keep == 0:
            raise ValueError(f"image is smaller than scale along an axis: shape {tuple(image.shape)}, scale {s}")
        start = (n - keep) // 2
        index.append(slice(start, start + keep))
    return image[tuple(index)]


def _check_multiple(sizes: tuple[int, ...], s: tuple[int, ...]) -> None:
    if any(n % f for n, f in zip(sizes, s)):
        raise ValueError(f"image size {sizes} must be a multiple of scale {s} along every axis "
                         "(crop first, e.g. crop_to_multiple)")


def taper_borders(image: torch.Tensor, width: int = 8, spatial_dims: int | None = None) -> torch.Tensor:
    """``image`` times a separable Tukey window: cosine ramps to 0 over ``width`` voxels at every
    border of the trailing spatial axes.

    A scanner's image is the DFT of measured k-space, hence consistent with the periodic
    boundary that :func:`kspace_truncate` assumes; a phantom or a crop cut by its field of view is
    not, and truncating it adds wrap-around Gibbs ringing no acquisition has. Tapering the
    high-resolution truth first removes that (the training data and the benchmark do it).
    """
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"image must be a torch.Tensor, got {describe(image)}")
    check_int("width", width, minimum=0)
    d = spatial_dims if spatial_dims is not None else min(image.ndim, 3)
    out = image
    for axis in range(image.ndim - d, image.ndim):
        n = image.shape[axis]
        k = min(width, n // 2)
        w = torch.ones(n, dtype=torch.float64)
        if k > 0:
            ramp = 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(k, dtype=torch.float64) + 0.5) / width)
            w[:k] = ramp
            w[n - k:] = torch.minimum(w[n - k:], ramp.flip(0))
        shape = [1] * image.ndim
        shape[axis] = n
        out = out * w.reshape(shape).to(image.dtype).to(image.device)
    return out


def _fft(data: torch.Tensor, d: int, inverse: bool) -> torch.Tensor:
    if d == 2:
        return ifft2c(data) if inverse else fft2c(data)
    return ifft3c(data) if inverse else fft3c(data)


def _ramp(n: int, full: int, delta: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``exp(2 pi i k delta / full)`` for the centred frequencies ``k = idx - n // 2`` (real view ``(n, 2)``)."""
    k = torch.arange(n, dtype=torch.float64, device=device) - n // 2
    phase = 2 * math.pi * k * delta / full
    return torch.stack([torch.cos(phase), torch.sin(phase)], -1).to(dtype)


def _cmul_axis(data: torch.Tensor, ramp: torch.Tensor, dim: int) -> torch.Tensor:
    """Multiply the real-view ``data`` by the complex ``ramp`` ``(n, 2)`` along spatial dim ``dim`` (negative)."""
    shape = [1] * data.ndim
    shape[dim] = ramp.shape[0]
    shape[-1] = 1
    re = ramp[:, 0].reshape(shape)
    im = ramp[:, 1].reshape(shape)
    a, b = data[..., :1], data[..., 1:]
    return torch.cat([a * re - b * im, a * im + b * re], -1)


def _delta(full: int, n: int, s: int) -> float:
    """Shift (HR voxels) that moves the centred-DFT sample grid onto the block centres."""
    return (s - 1) / 2 - (full // 2 - s * (n // 2))


def kspace_truncate(image: torch.Tensor, scale: object, *, spatial_dims: int | None = None,
                    magnitude: bool = True) -> torch.Tensor:
    """Low resolution the MRI way: keep the central ``N / s`` k-space lines of each axis.

    ``lr = |F_n^-1 (ramp . crop_n(F_N image))| sqrt(n / N)`` per scaled axis, with ``F`` the
    centred orthonormal FFT (:func:`recon.ops.fft2c` / :func:`recon.ops.fft3c`), ``crop_n`` the
    ``n = N / s`` lines around DC (``N // 2 - n // 2`` onwards) and ``ramp`` the linear phase that
    makes LR voxel ``j`` sample the band-limited image at HR coordinate ``s j + (s - 1) / 2`` (the
    centre of the HR voxels it covers). For an image whose spectrum lies inside the kept band this
    is exact: the LR voxels equal the image's band-limited interpolant at those points.

    Args:
        image: real ``(..., H, W)`` or ``(..., D, H, W)`` magnitude tensor; each scaled axis a
            multiple of its factor (see :func:`crop_to_multiple`).
        scale: int or per-axis tuple, e.g. ``(2, 2)``, ``(1, 1, 3)`` (through-plane only).
        spatial_dims: 2 or 3 trailing spatial axes (default: the tuple's length, or
            ``image.ndim`` for a 2-D/3-D image and an int scale).
        magnitude: return the magnitude (default); False returns the complex LR image as a real
            view ``(..., 2)``.

    Returns:
        ``(..., H / s_h, W / s_w)`` (or 3-D) tensor of ``image``'s dtype.

    Raises:
        TypeError / ValueError: a bad ``scale``, a non-real image, sizes not multiples of the scale.
    """
    image, s = _spatial(image, scale, spatial_dims)
    d = len(s)
    sizes = tuple(image.shape[-d:])
    _check_multiple(sizes, s)
    work = image.double() if image.dtype == torch.float64 else image.float()
    k = _fft(torch.stack([work, torch.zeros_like(work)], -1), d, inverse=False)
    norm = 1.0
    for axis, (full, f) in enumerate(zip(sizes, s)):
        if f == 1:
            continue
        n = full // f
        dim = -d - 1 + axis
        start = full // 2 - n // 2
        k = k.narrow(dim, start, n)
        k = _cmul_axis(k, _ramp(n, full, _delta(full, n, f), k.dtype, k.device), dim)
        norm *= math.sqrt(n / full)
    lr = _fft(k.contiguous(), d, inverse=True) * norm
    return (complex_abs(lr) if magnitude else lr).to(image.dtype)


def kspace_zero_pad(image: torch.Tensor, scale: object, *, spatial_dims: int | None = None) -> torch.Tensor:
    """Zero-filled (sinc) interpolation, the inverse of :func:`kspace_truncate`'s band limit.

    The LR spectrum (with the opposite phase ramp) is placed at the centre of an ``s n``-point
    k-space, zeros elsewhere; magnitude, intensities preserved. For a band-limited image
    ``kspace_zero_pad(kspace_truncate(x, s), s) == x``.

    Args:
        image: real ``(..., h, w)`` or ``(..., d, h, w)`` LR tensor.
        scale: int or per-axis tuple.
        spatial_dims: see :func:`kspace_truncate`.

    Returns:
        ``(..., s_h h, s_w w)`` (or 3-D) magnitude tensor of ``image``'s dtype.
    """
    image, s = _spatial(image, scale, spatial_dims)
    d = len(s)
    work = image.double() if image.dtype == torch.float64 else image.float()
    k = _fft(torch.stack([work, torch.zeros_like(work)], -1), d, inverse=False)
    norm = 1.0
    for axis, f in enumerate(s):
        if f == 1:
            continue
        dim = -d - 1 + axis
        n = k.shape[dim]
        full = n * f
        k = _cmul_axis(k, _ramp(n, full, -_delta(full, n, f), k.dtype, k.device), dim)
        shape = list(k.shape)
        shape[dim] = full
        padded = k.new_zeros(shape)
        padded.narrow(dim, full // 2 - n // 2, n).copy_(k)
        k = padded
        norm *= math.sqrt(full / n)
    return (complex_abs(_fft(k, d, inverse=True)) * norm).to(image.dtype)


def _gaussian_blur_axis(x: torch.Tensor, sigma: float, dim: int) -> torch.Tensor:
    radius = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(x.dtype).to(x.device)
    moved = x.movedim(dim, -1)
    shape = moved.shape
    flat = moved.reshape(-1, 1, shape[-1])
    mode = "reflect" if shape[-1] > radius else "replicate"
    out = F.conv1d(F.pad(flat, (radius, radius), mode=mode), kernel.view(1, 1, -1))
    return out.reshape(shape).movedim(-1, dim)


def image_degrade(image: torch.Tensor, scale: object, *, fwhm: float | Sequence[float] | None = None,
                  noise_sigma: float = 0.0, generator: torch.Generator | None = None,
                  spatial_dims: int | None = None) -> torch.Tensor:
    """Low resolution the image way: Gaussian blur, block averaging over ``s`` voxels, Rician noise.

    Block averaging is the box profile of a thick slice (``(1, 1, 3)``: each LR slice is the mean
    of 3 thin ones); ``fwhm`` adds a Gaussian point-spread function first (HR voxels; a number or
    one per axis, 0 for none); ``noise_sigma > 0`` adds Rician noise
    (:func:`recon.preprocess.augment.rician_noise`) of that standard deviation per component.

    Args:
        image: real ``(..., H, W)`` or ``(..., D, H, W)`` tensor, axes multiples of the scale.
        scale: int or per-axis tuple.
        fwhm: Gaussian full width at half maximum per axis, HR voxels (None: no Gaussian).
        noise_sigma: Rician noise sigma in the image's units (0: none).
        generator: ``torch.Generator`` for the noise (required when ``noise_sigma > 0``).
        spatial_dims: see :func:`kspace_truncate`.

    Returns:
        LR tensor ``(..., H / s_h, W / s_w)`` (or 3-D).
    """
    image, s = _spatial(image, scale, spatial_dims)
    d = len(s)
    sizes = tuple(image.shape[-d:])
    _check_multiple(sizes, s)
    widths = [0.0] * d if fwhm is None else ([float(fwhm)] * d if isinstance(fwhm, (int, float)) else [float(w) for w in fwhm])
    if len(widths) != d or any(not math.isfinite(w) or w < 0 for w in widths):
        raise ValueError(f"fwhm must be None, a number >= 0 or {d} numbers >= 0, got {fwhm!r}")
    if isinstance(noise_sigma, bool) or not isinstance(noise_sigma, (int, float)) or not 0 <= noise_sigma < math.inf:
        raise ValueError(f"noise_sigma must be a finite number >= 0, got {noise_sigma!r}")
    x = image
    for axis, w in enumerate(widths):
        if w > 0:
            x = _gaussian_blur_axis(x, w / (2 * math.sqrt(2 * math.log(2))), x.ndim - d + axis)
    lead = x.shape[:-d]
    flat = x.reshape(-1, 1, *sizes)
    pool = F.avg_pool2d if d == 2 else F.avg_pool3d
    lr = pool(flat, kernel_size=s, stride=s).reshape(*lead, *(n // f for n, f in zip(sizes, s)))
    if noise_sigma > 0:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator when noise_sigma > 0, got {describe(generator)}")
        lr = rician_noise(lr, float(noise_sigma), generator)
    return lr


# ----------------------------------------------------------------------------- interpolation, shuffle

def _keys(d: torch.Tensor, a: float = -0.5) -> torch.Tensor:
    """Keys' cubic convolution kernel at distances ``d`` (``a = -0.5``: third-order accurate)."""
    d = d.abs()
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return torch.where(d <= 1, near, torch.where(d < 2, far, torch.zeros_like(d)))


def _cubic_axis(x: torch.Tensor, s: int, dim: int) -> torch.Tensor:
    n = x.shape[dim]
    pos = (torch.arange(n * s, dtype=torch.float64, device=x.device) + 0.5) / s - 0.5
    base = torch.floor(pos)
    shape = [1] * x.ndim
    shape[dim] = n * s
    out = None
    for k in (-1, 0, 1, 2):
        idx = (base + k).clamp(0, n - 1).long()
        w = _keys(pos - (base + k)).to(x.dtype).reshape(shape)
        term = x.index_select(dim, idx) * w
        out = term if out is None else out + term
    return out


def cubic_upsample(image: torch.Tensor, scale: Sequence[int]) -> torch.Tensor:
    """Separable cubic-convolution interpolation (Keys 1981, ``a = -0.5``), 2-D or 3-D.

    ``(B, C, h, w)`` or ``(B, C, d, h, w)`` -> every spatial axis ``s`` times larger, HR voxel
    ``i`` at LR coordinate ``(i + 0.5) / s - 0.5`` (``align_corners=False`` geometry), borders
    replicated. Reproduces polynomials up to degree 2 away from the borders.
    """
    x = image
    for axis, f in enumerate(int(f) for f in scale):
        if f > 1:
            x = _cubic_axis(x, f, 2 + axis)
    return x


def interpolate(lr: torch.Tensor, scale: Sequence[int] | int, method: str = "cubic") -> torch.Tensor:
    """``(B, C, *n)`` -> ``(B, C, *(s n))`` by :func:`cubic_upsample` (``"cubic"``) or
    :func:`kspace_zero_pad` (``"zero_fill"``), 2-D or 3-D."""
    if method not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {list(INTERPOLATIONS)}, got {method!r}")
    d = lr.ndim - 2
    s = check_scale(tuple(scale) if isinstance(scale, (list, tuple)) else scale, d)
    if method == "cubic":
        return cubic_upsample(lr, s)
    return kspace_zero_pad(lr, s, spatial_dims=d)


def voxel_shuffle(x: torch.Tensor, scale: Sequence[int]) -> torch.Tensor:
    """Sub-voxel shuffle: ``(B, C prod(s), *n)`` -> ``(B, C, *(s n))``, 2-D or 3-D, per-axis factors.

    The channel ``c prod(s) + flat(t)`` of LR voxel ``j`` goes to HR voxel ``s j + t`` (``t`` the
    offset inside the block, row-major): ``torch.nn.functional.pixel_shuffle`` for 2-D and equal
    factors, generalised.
    """
    d = x.ndim - 2
    s = tuple(int(f) for f in scale)
    if len(s) != d:
        raise ValueError(f"scale must have {d} factors for a {d}-D input, got {scale!r}")
    B, Cs = x.shape[:2]
    r = math.prod(s)
    if Cs % r:
        raise ValueError(f"x must have a multiple of {r} channels, got {Cs}")
    n = x.shape[2:]
    y = x.reshape(B, Cs // r, *s, *n)
    order = [0, 1] + [p for a in range(d) for p in (2 + d + a, 2 + a)]
    return y.permute(order).reshape(B, Cs // r, *(f * m for f, m in zip(s, n)))


# ----------------------------------------------------------------------------- fusion network

def _conv(dims: int):
    return nn.Conv2d if dims == 2 else nn.Conv3d


class MultiScaleFusionBlock(nn.Module):
    """Parallel ``conv(k) -> ReLU`` paths for each ``k`` in ``kernel_sizes``, concatenated, fused by a
    1x1 convolution and added to the input (Liu et al. 2018's multi-scale fusion unit).

    Args:
        dims: 2 or 3.
        chans: channels in and out.
        branch_chans: channels of each path.
        kernel_sizes: odd kernel sizes of the paths.
        bias: convolutions with biases (False: the block is positively homogeneous, ``f(a x) = a f(x)``).
    """

    def __init__(self, dims: int, chans: int, branch_chans: int, kernel_sizes: Sequence[int], bias: bool = True) -> None:
        super().__init__()
        conv = _conv(dims)
        self.branches = nn.ModuleList(
            [nn.Sequential(conv(chans, branch_chans, k, padding=k // 2, bias=bias), nn.ReLU(inplace=True))
             for k in kernel_sizes])
        self.fuse = conv(branch_chans * len(kernel_sizes), chans, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, chans, *spatial)`` -> same shape."""
        return x + self.fuse(torch.cat([b(x) for b in self.branches], 1))


class MultiScaleFusionSR(nn.Module):
    """Multi-scale fusion super-resolution CNN (Liu et al. 2018), 2-D or 3-D.

    ``up = interpolate(lr, scale)`` (:func:`cubic_upsample`, or with ``interpolation="zero_fill"``
    :func:`kspace_zero_pad`, the least-squares linear estimate for k-space-truncated data);
    ``out = up + tail(blocks(ReLU(head(up))))`` with ``head``
    a 3x3(x3) convolution to ``chans`` features, ``num_blocks`` :class:`MultiScaleFusionBlock`
    s and ``tail`` a 3x3(x3) convolution to one channel, initialised to zero: an untrained network
    is its interpolation exactly, and training only adds a residual to it. Fully convolutional:
    any size, any scale (trained ones work best).

    ``bias=False`` (bundled: ``superres-2d-thick``) drops every convolution bias: the residual is
    then positively homogeneous, ``refine(a up) = a refine(up)`` for ``a > 0``, so the network
    does the same thing at any intensity scale. Beware: a bias-free ``ReLU(head(up))`` on a
    positive, mostly smooth image is active only where the filter's response is positive - the
    bias-free ``superres-3d-thick`` of 2026-12-07 ended with 99 % of its head units dead and lost to
    its sinc base; it was retrained with biases (session 4). :func:`upscale_image` normalises by the
    foreground mean, so the one call is intensity-equivariant either way. With ``scale_input`` the
    scale channels are ``log2(s) up`` (not constants) without biases.

    Args:
        dims: 2 (slices ``(B, 1, h, w)``) or 3 (volumes ``(B, 1, d, h, w)``).
        chans: feature channels.
        num_blocks: fusion blocks.
        kernel_sizes: odd kernel sizes of the parallel paths (3, 5, 7 in 2-D; 3, 5 in 3-D by default).
        branch_chans: channels per path (default ``chans // 2``).
        interpolation: ``"cubic"`` or ``"zero_fill"`` (sinc; interpolate whole images, not
            patches, to avoid wrap-around ringing: :func:`upscale_image` does).
        scale_input: condition on the scale (``log2(s)`` channels per axis: constants with
            biases, ``log2(s) up`` without): one network for several scales that knows which one
            it is doing.
        bias: convolution biases (True: the original networks; False: scale-equivariant residual).

    Example:
        >>> net = MultiScaleFusionSR(dims=3, chans=8, num_blocks=1)
        >>> net(torch.rand(1, 1, 8, 8, 4), (1, 1, 3)).shape
        torch.Size([1, 1, 8, 8, 12])
    """

    def __init__(self, dims: int = 2, chans: int = 32, num_blocks: int = 4, kernel_sizes: Sequence[int] | None = None,
                 branch_chans: int | None = None, interpolation: str = "cubic", scale_input: bool = False,
                 bias: bool = True) -> None:
        super().__init__()
        if dims not in (2, 3):
            raise ValueError(f"dims must be 2 or 3, got {dims!r}")
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {list(INTERPOLATIONS)}, got {interpolation!r}")
        self.interpolation = interpolation
        self.scale_input = bool(scale_input)
        self.bias = bool(bias)
        check_int("chans", chans)
        check_int("num_blocks", num_blocks, minimum=0)
        kernel_sizes = tuple(kernel_sizes) if kernel_sizes is not None else ((3, 5, 7) if dims == 2 else (3, 5))
        if not kernel_sizes or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 or k % 2 == 0 for k in kernel_sizes):
            raise ValueError(f"kernel_sizes must be odd positive ints, got {kernel_sizes!r}")
        branch_chans = check_int("branch_chans", branch_chans if branch_chans is not None else max(chans // 2, 1))
        self.dims, self.chans, self.num_blocks = dims, chans, num_blocks
        self.kernel_sizes, self.branch_chans = kernel_sizes, branch_chans
        conv = _conv(dims)
        self.head = conv(1 + (dims if self.scale_input else 0), chans, 3, padding=1, bias=self.bias)
        self.blocks = nn.Sequential(*[MultiScaleFusionBlock(dims, chans, branch_chans, kernel_sizes, self.bias)
                                      for _ in range(num_blocks)])
        self.tail = conv(chans, 1, 3, padding=1, bias=self.bias)
        nn.init.zeros_(self.tail.weight)
        if self.tail.bias is not None:
            nn.init.zeros_(self.tail.bias)

    @property
    def receptive_field(self) -> int:
        """Receptive field of the CNN on the HR grid (voxels per axis)."""
        return 1 + 2 + self.num_blocks * (max(self.kernel_sizes) - 1) + 2

    def _check(self, name: str, x: torch.Tensor) -> None:
        layout = "(B, 1, h, w)" if self.dims == 2 else "(B, 1, d, h, w)"
        hint = "" if self.dims == 2 else " (a 3-D network; use a 2-D one for slices)"
        check_image_tensor(name, x, self.dims + 2, layout, hint=hint)
        if x.shape[1] != 1:
            raise ValueError(f"{name} must have 1 channel, got shape {tuple(x.shape)}")

    def interpolate(self, lr: torch.Tensor, scale: Sequence[int] | int) -> torch.Tensor:
        """``(B, 1, *n)`` -> ``(B, 1, *(s n))`` by the network's interpolation (no learned part)."""
        self._check("lr", lr)
        return interpolate(lr, scale, self.interpolation)

    def refine(self, up: torch.Tensor, scale: Sequence[int] | int | None = None) -> torch.Tensor:
        """The learned residual on an interpolated ``(B, 1, *N)`` image: ``up + tail(blocks(ReLU(head(up))))``
        (fully convolutional on the HR grid: whole volumes can be refined by patches). With
        ``scale_input`` the head also sees one channel ``log2(s)`` per axis (``log2(s) up`` for a
        bias-free network; ``scale`` required)."""
        self._check("up", up)
        x = up
        if self.scale_input:
            if scale is None:
                raise ValueError("scale is required by a network with scale_input=True")
            s = check_scale(tuple(scale) if isinstance(scale, (list, tuple)) else scale, self.dims)
            maps = [torch.full_like(up, math.log2(f)) if self.bias else up * math.log2(f) for f in s]
            x = torch.cat([up, *maps], 1)
        return up + self.tail(self.blocks(F.relu(self.head(x))))

    def forward(self, lr: torch.Tensor, scale: Sequence[int] | int) -> torch.Tensor:
        """``(B, 1, *n)`` LR -> ``(B, 1, *(s n))`` HR (normalised intensities in, same units out)."""
        return self.refine(self.interpolate(lr, scale), scale)


# ----------------------------------------------------------------------------- SRGAN

class _ResBlock3d(nn.Module):
    """``x + conv(PReLU(conv(x)))`` (3x3x3; no batch norm, as EDSR - batch statistics of tiny
    CPU batches hurt SR)."""

    def __init__(self, chans: int, bias: bool = True) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(chans, chans, 3, padding=1, bias=bias)
        self.act = nn.PReLU(chans)
        self.conv2 = nn.Conv3d(chans, chans, 3, padding=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


class SRGenerator3d(nn.Module):
    """3-D SRGAN generator (Sanchez and Vilaplana 2018): residual blocks and learned upsampling.

    ``f = PReLU(conv5(lr))``; ``g = conv(blocks(f)) + f``; ``residual = conv(PReLU(voxel_shuffle(conv(g))))``
    (sub-voxel convolution to ``chans prod(scale)`` channels, then :func:`voxel_shuffle`); the
    output is ``residual + interpolate(lr)`` when ``interpolation_skip`` (the paper's generator
    learns the whole image) else ``residual``. The output layer starts at zero, so an untrained
    generator is its interpolation exactly and training only adds to it.

    ``interpolation="zero_fill"`` (the bundled generators since 2026-12-07): the base is the
    zero-filled k-space (sinc) interpolation, the least-squares linear estimate for
    k-space-truncated data; it is a whole-image operation (on a patch it would wrap around), so
    :func:`upscale_image` interpolates the whole image once and adds the residual computed by
    overlapping patches, and training passes the whole volume's interpolation cropped to the
    patch (``base``). ``bias=False`` drops the convolution biases (PReLU keeps the network
    positively homogeneous: the same output at any intensity scale).

    Args:
        scale: per-axis factors ``(s_d, s_h, s_w)`` (fixed: the shuffle learns them).
        chans: feature channels.
        num_blocks: residual blocks.
        interpolation_skip: add the interpolated input to the output.
        interpolation: ``"cubic"`` (:func:`cubic_upsample`; the original generators) or
            ``"zero_fill"`` (:func:`kspace_zero_pad`).
        bias: convolution biases.

    Example:
        >>> SRGenerator3d((2, 2, 2), chans=8, num_blocks=1)(torch.rand(1, 1, 6, 6, 6)).shape
        torch.Size([1, 1, 12, 12, 12])
    """

    def __init__(self, scale: Sequence[int] = (2, 2, 2), chans: int = 32, num_blocks: int = 4,
                 interpolation_skip: bool = True, interpolation: str = "cubic", bias: bool = True) -> None:
        super().__init__()
        self.scale = check_scale(tuple(scale) if isinstance(scale, (list, tuple)) else scale, 3)
        check_int("chans", chans)
        check_int("num_blocks", num_blocks, minimum=0)
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {list(INTERPOLATIONS)}, got {interpolation!r}")
        self.chans, self.num_blocks, self.interpolation_skip = chans, num_blocks, bool(interpolation_skip)
        self.interpolation, self.bias = interpolation, bool(bias)
        self.head = nn.Sequential(nn.Conv3d(1, chans, 5, padding=2, bias=self.bias), nn.PReLU(chans))
        self.blocks = nn.Sequential(*[_ResBlock3d(chans, self.bias) for _ in range(num_blocks)])
        self.mid = nn.Conv3d(chans, chans, 3, padding=1, bias=self.bias)
        self.expand = nn.Conv3d(chans, chans * math.prod(self.scale), 3, padding=1, bias=self.bias)
        self.up_act = nn.PReLU(chans)
        self.out = nn.Conv3d(chans, 1, 3, padding=1, bias=self.bias)
        if self.interpolation_skip:
            nn.init.zeros_(self.out.weight)
            if self.out.bias is not None:
                nn.init.zeros_(self.out.bias)

    @property
    def receptive_field(self) -> int:
        """Receptive field on the HR grid (voxels, largest scale factor)."""
        lr_rf = 5 + 4 * self.num_blocks + 2 + 2
        return lr_rf * max(self.scale) + 2

    def _check_scale(self, scale) -> None:
        if scale is not None and check_scale(scale, 3) != self.scale:
            raise ValueError(f"scale must be this generator's {self.scale}, got {scale!r}")

    def residual(self, lr: torch.Tensor, scale: Sequence[int] | int | None = None) -> torch.Tensor:
        """The learned part ``(B, 1, *n)`` -> ``(B, 1, *(s n))`` (fully convolutional on the LR grid:
        whole images can be done by overlapping patches)."""
        check_image_tensor("lr", lr, 5, "(B, 1, d, h, w)", hint=" (SRGenerator3d is a 3-D-only network)")
        self._check_scale(scale)
        f = self.head(lr)
        g = self.mid(self.blocks(f)) + f
        return self.out(self.up_act(voxel_shuffle(self.expand(g), self.scale)))

    def forward(self, lr: torch.Tensor, scale: Sequence[int] | int | None = None,
                base: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, 1, d, h, w)`` -> ``(B, 1, s_d d, s_h h, s_w w)``; ``scale`` must be the network's.

        ``base``: the interpolation to add, ``(B, 1, *(s n))`` (default: :func:`interpolate` of
        ``lr`` by the generator's method; pass the whole image's, cropped, for a patch of a
        ``zero_fill`` generator)."""
        up = self.residual(lr, scale)
        if not self.interpolation_skip:
            return up
        if base is None:
            base = interpolate(lr, self.scale, self.interpolation)
        elif tuple(base.shape) != tuple(up.shape):
            raise ValueError(f"base must have the output's shape {tuple(up.shape)}, got {tuple(base.shape)}")
        return up + base


class SRDiscriminator3d(nn.Module):
    """3-D discriminator: ``num_layers`` x (3x3x3 conv, LeakyReLU, 3x3x3 stride-2 conv, LeakyReLU),
    channels doubling, global average pooling and a linear score (least-squares GAN: 1 real, 0 fake).

    Example:
        >>> SRDiscriminator3d(chans=8)(torch.rand(2, 1, 16, 16, 16)).shape
        torch.Size([2, 1])
    """

    def __init__(self, chans: int = 16, num_layers: int = 3) -> None:
        super().__init__()
        check_int("chans", chans)
        check_int("num_layers", num_layers)
        layers: list[nn.Module] = []
        c_in, c = 1, chans
        for _ in range(num_layers):
            layers += [nn.Conv3d(c_in, c, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
                       nn.Conv3d(c, c, 3, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            c_in, c = c, c * 2
        self.features = nn.Sequential(*layers)
        self.score = nn.Linear(c_in, 1)

    def forward(self, volume: torch.Tensor) -> torch.Tensor:
        """``(B, 1, D, H, W)`` -> ``(B, 1)`` unbounded scores."""
        check_image_tensor("volume", volume, 5, "(B, 1, D, H, W)")
        return self.score(self.features(volume).mean(dim=(2, 3, 4)))


class SRGAN3d(nn.Module):
    """3-D SRGAN: generator ``g``, discriminator ``d`` and their losses.

    * generator: ``MSE(g(lr), hr) + adv_weight LS(d(g(lr)), real)`` (content + adversarial);
    * discriminator: ``(LS(d(hr), real) + LS(d(g(lr)), fake)) / 2`` (fakes detached).

    Args:
        scale: per-axis factors.
        chans, num_blocks: generator size.
        disc_chans, disc_layers: discriminator size.
        adv_weight: weight of the adversarial term (the paper's 1e-3 order).
        interpolation, bias: the generator's base interpolation and biases (:class:`SRGenerator3d`).

    Example:
        >>> m = SRGAN3d((2, 2, 2), chans=8, num_blocks=1, disc_chans=4, disc_layers=2)
        >>> lr, hr = torch.rand(2, 1, 6, 6, 6), torch.rand(2, 1, 12, 12, 12)
        >>> loss, parts, sr = m.generator_loss(lr, hr)
        >>> d_loss = m.discriminator_loss(hr, sr)
    """

    def __init__(self, scale: Sequence[int] = (2, 2, 2), chans: int = 32, num_blocks: int = 4, disc_chans: int = 16,
                 disc_layers: int = 3, adv_weight: float = 1e-3, interpolation: str = "cubic", bias: bool = True) -> None:
        super().__init__()
        if isinstance(adv_weight, bool) or not isinstance(adv_weight, (int, float)) or not 0 <= adv_weight < math.inf:
            raise ValueError(f"adv_weight must be a finite number >= 0, got {adv_weight!r}")
        self.g = SRGenerator3d(scale, chans, num_blocks, interpolation=interpolation, bias=bias)
        self.d = SRDiscriminator3d(disc_chans, disc_layers)
        self.adv_weight = float(adv_weight)

    def forward(self, lr: torch.Tensor, scale: Sequence[int] | int | None = None,
                base: torch.Tensor | None = None) -> torch.Tensor:
        """The generator."""
        return self.g(lr, scale, base)

    def generator_loss(self, lr: torch.Tensor, hr: torch.Tensor, base: torch.Tensor | None = None):
        """``(loss, {"content", "adv"}, sr)`` for a batch ``lr (B, 1, *n)``, ``hr (B, 1, *(s n))``
        (``base``: the interpolation to add, see :meth:`SRGenerator3d.forward`)."""
        sr = self.g(lr, base=base)
        content = F.mse_loss(sr, hr)
        adv = lsgan_loss(self.d(sr), True) if self.adv_weight > 0 else sr.new_zeros(())
        return content + self.adv_weight * adv, {"content": float(content.detach()), "adv": float(adv.detach())}, sr

    def discriminator_loss(self, hr: torch.Tensor, sr: torch.Tensor) -> torch.Tensor:
        """Least-squares discriminator loss on real ``hr`` and generated ``sr`` (detached)."""
        return 0.5 * (lsgan_loss(self.d(hr), True) + lsgan_loss(self.d(sr.detach()), False))


# ----------------------------------------------------------------------------- whole images, evaluation

def superres_volume(model: nn.Module, image: torch.Tensor, scale: Sequence[int], *, patch_size: int = 32,
                    overlap: int = 8, progress: bool = False) -> torch.Tensor:
    """Run an SR network on a whole ``(C, *n)`` LR image by overlapping LR patches, blended linearly.

    LR patches of ``patch_size`` voxels per axis (smaller axes whole) step by ``patch_size -
    overlap``; each HR prediction is weighted by a separable linear taper over ``overlap * s``
    HR voxels at its borders and the weighted sum divided by the summed weights (no seams;
    memory one patch's activations plus the HR output).

    Args:
        model: ``model(lr (1, C, *p), scale) -> (1, C', *(s p))`` (eval mode is the caller's).
        image: ``(C, h, w)`` or ``(C, d, h, w)`` LR tensor.
        scale: per-axis factors.
        patch_size: LR patch side, voxels.
        overlap: LR overlap between neighbouring patches, ``0 <= overlap < patch_size``.
        progress: tqdm bar over patches.

    Returns:
        ``(C', *(s n))`` tensor (``image``'s dtype and device).
    """
    if not isinstance(image, torch.Tensor) or image.ndim not in (3, 4):
        raise ValueError(f"image must be a (C, h, w) or (C, d, h, w) tensor, got {describe(image)}")
    s = check_scale(tuple(scale) if isinstance(scale, (list, tuple)) else scale, image.ndim - 1)
    dims = image.shape[1:]
    sizes, starts = _tiles(dims, patch_size, overlap)
    tapers = [_taper(p * f, overlap * f if len(st) > 1 else 0, image.dtype).to(image.device)
              for p, f, st in zip(sizes, s, starts)]
    w = tapers[0]
    for t in tapers[1:]:
        w = w[..., None] * t
    hr_dims = [n * f for n, f in zip(dims, s)]
    weight = torch.zeros(hr_dims, dtype=image.dtype, device=image.device)
    out = None
    corners = list(itertools.product(*starts))
    if progress:
        from tqdm.auto import tqdm

        corners = tqdm(corners, desc="patches")
    with torch.no_grad():
        for corner in corners:
            lr_region = tuple(slice(a, a + p) for a, p in zip(corner, sizes))
            hr_region = tuple(slice(a * f, (a + p) * f) for a, p, f in zip(corner, sizes, s))
            pred = model(image[(slice(None), *lr_region)][None], s)[0]
            if out is None:
                out = torch.zeros((pred.shape[0], *hr_dims), dtype=image.dtype, device=image.device)
            out[(slice(None), *hr_region)] += pred.to(image.dtype) * w
            weight[hr_region] += w
    return out / weight


def high_frequency_energy(image: torch.Tensor | np.ndarray, scale: object, *, spatial_dims: int | None = None) -> float:
    """Spectral energy outside the band an LR acquisition of ``scale`` keeps.

    ``sum |F x|^2`` over the k-space points outside the central ``N / s`` lines of any scaled axis
    (orthonormal centred FFT, so the total is the image's energy ``sum x^2``). An MSE-trained
    network under-fills this band (over-smoothing); ratios to the truth's value near 1 are better.

    Args:
        image: real ``(..., H, W)`` or ``(..., D, H, W)`` array or tensor (HR grid).
        scale: the LR scale the band refers to.
        spatial_dims: see :func:`kspace_truncate`.

    Returns:
        The energy, a Python float.
    """
    x = torch.as_tensor(np.asarray(image) if isinstance(image, np.ndarray) else image).double()
    x, s = _spatial(x, scale, spatial_dims)
    d = len(s)
    k = complex_abs(_fft(torch.stack([x, torch.zeros_like(x)], -1), d, inverse=False)) ** 2
    inside = torch.ones(k.shape[-d:], dtype=torch.bool)
    for axis, (full, f) in enumerate(zip(k.shape[-d:], s)):
        n = full // f
        line = torch.zeros(full, dtype=torch.bool)
        line[full // 2 - n // 2: full // 2 - n // 2 + n] = True
        shape = [1] * d
        shape[axis] = full
        inside = inside & line.view(shape)
    return float(k[..., ~inside].sum())


def check_input_size(image_shape: Sequence[int], scale: Sequence[int], receptive_field: int, name: str = "image") -> None:
    """Refuse an LR image smaller than the network's receptive field (``ceil(rf / s)`` LR voxels per axis)."""
    need = [max(2, math.ceil(receptive_field / f)) for f in scale]
    if any(n < m for n, m in zip(image_shape, need)):
        raise ValueError(f"{name} is smaller than the network's receptive field: needs at least {tuple(need)} "
                         f"voxels per axis at scale {tuple(scale)}, got shape {tuple(image_shape)}")



def _foreground_mean(x: torch.Tensor) -> float:
    """Mean of the voxels above the mean (the heads' intensity unit)."""
    mean = float(x.mean())
    fg = x[x > mean]
    return float(fg.mean()) if fg.numel() else mean


def symmetries(scale: Sequence[int]) -> list[tuple[tuple[int, ...], bool]]:
    """The flips (and transposes) a self-ensemble averages over, as ``(flipped axes, swap of axes 0 and 1)``.

    A 2-D ``scale``: the 8 symmetries of the square (4 flips x the swap) where its two factors agree,
    else the 4 flips; a 3-D one: the 8 flips of the three axes. Applied as flip, then swap; undone
    as swap, then flip (the LR voxel grid is symmetric under both: voxel ``j`` covers HR voxels
    ``s j .. s j + s - 1``).
    """
    d = len(scale)
    swaps = (False, True) if d == 2 and scale[0] == scale[1] else (False,)
    return [(tuple(a for a in range(d) if k >> a & 1), swap) for swap in swaps for k in range(2 ** d)]


def upscale_image(model: nn.Module, image: torch.Tensor, scale: Sequence[int], *, patch_size: int = 32,
                  overlap: int = 8, progress: bool = False, self_ensemble: bool = False) -> torch.Tensor:
    """Super-resolve one LR slice ``(h, w)`` or volume ``(d, h, w)`` of any intensity scale.

    The image is divided by its foreground mean (mean of the voxels above the mean), run through
    ``model`` - whole for a 2-D network on a slice, slice by slice (last axis) for a 2-D network
    on a volume with ``scale[-1] == 1``, on every X-Z and every Y-Z plane (averaged) for a 2-D
    network on a volume with ``scale == (1, 1, s)`` (thick slices), on the planes of all three
    orientations for a 2-D network on an isotropic ``(s, s, s)`` volume (below), by overlapping
    patches (:func:`superres_volume`) for a 3-D network - and multiplied back, so the output is in
    the input's units; clipped at 0 when the input has no negative values.

    Isotropic volume, 2-D network: the whole volume is interpolated by the network's own
    interpolation (zero-filled k-space for the bundled ones), the network refines every X-Y, X-Z
    and Y-Z plane of it as an ``(s, s)`` slice, and the three residuals are averaged: each plane
    family restores the frequencies high along its two in-plane axes.

    ``self_ensemble`` ("x8", Lim et al. 2017): every network call ``f`` becomes the mean over the
    :func:`symmetries` ``T`` of ``T^-1(f(T(input)))`` - for a 2-D network those of its plane
    scale (the 8 of the square, or 4 flips for a thick-slice plane), on each plane; for a 3-D
    network the 8 flips of the volume. The networks were trained with random flips (and
    transposes), so each transformed input is as valid and the errors partly average out; 8 (or
    4) times the work.

    Args:
        model: :class:`MultiScaleFusionSR` or :class:`SRGenerator3d` (eval mode is the caller's).
        image: float tensor ``(h, w)`` or ``(d, h, w)``, finite.
        scale: per-axis factors, one per axis of ``image``.
        patch_size, overlap: LR patch side and overlap of the 3-D path (voxels; a fusion network
            refines the interpolated volume by HR patches ``max(scale)`` times larger).
        progress: tqdm bar over 3-D patches.
        self_ensemble: average over the 8 flips/transposes.

    Returns:
        ``(s_h h, s_w w)`` / ``(s_d d, s_h h, s_w w)`` tensor, ``image``'s dtype and device.

    Raises:
        ValueError: a 2-D image for a 3-D network, a 2-D network on a volume with a scale other
            than ``(s, s, 1)``, ``(1, 1, s)`` or ``(s, s, s)``, an image smaller than the receptive
            field, no positive signal.
        TypeError: ``self_ensemble`` not a bool.
    """
    if not isinstance(image, torch.Tensor) or image.ndim not in (2, 3) or not image.is_floating_point():
        raise ValueError(f"image must be a floating-point (h, w) slice or (d, h, w) volume, got {describe(image)}")
    s = check_scale(tuple(scale) if isinstance(scale, (list, tuple)) else scale, image.ndim)
    dims = getattr(model, "dims", 3)
    if dims == 3 and image.ndim == 2:
        raise ValueError(f"image is a 2-D slice of shape {tuple(image.shape)} but the network is 3-D only; "
                         "pass a (d, h, w) volume or 2-D weights")
    if not isinstance(self_ensemble, bool):
        raise TypeError(f"self_ensemble must be a bool, got {describe(self_ensemble)}")
    iso = dims == 2 and image.ndim == 3 and len(set(s)) == 1
    through = dims == 2 and image.ndim == 3 and s[-1] != 1 and not iso
    if through and s[:2] != (1, 1):
        raise ValueError(f"scale {s} enlarges the last axis and another, which a 2-D network cannot; "
                         "use 3-D weights, scale (s, s, 1) (slice by slice), (1, 1, s) (thick slices) or "
                         "(s, s, s) (planes of all three orientations)")
    plane = ((1, s[2]) if through else s[:2]) if dims == 2 else s
    if through or iso:
        for axes in ((0, 2), (1, 2)) + (((0, 1),) if iso else ()):
            check_input_size(tuple(image.shape[a] for a in axes), plane, model.receptive_field)
    else:
        check_input_size(image.shape[:2] if dims == 2 else image.shape, plane, model.receptive_field)
    unit = _foreground_mean(image.double())
    if not unit > 0:
        raise ValueError("image has no positive signal to super-resolve")
    param = next(model.parameters())
    x0 = (image.double() / unit).to(param.dtype).to(param.device)

    def planes(stack: torch.Tensor, refine: bool = False) -> torch.Tensor:
        """A 2-D network on a ``(n, h, w)`` stack of planes (LR, or interpolated with ``refine``), 8 at a
        time; with ``self_ensemble`` averaged over the plane's :func:`symmetries`."""
        run = model.refine if refine else model
        ts = symmetries(plane) if self_ensemble else [((), False)]
        outs = []
        for i in range(0, stack.shape[0], 8):
            chunk, acc = stack[i:i + 8, None], None
            for flips, swap in ts:
                dims_ = [2 + a for a in flips]
                v = chunk.flip(dims_) if flips else chunk
                y = run(v.transpose(2, 3).contiguous() if swap else v, plane)
                y = y.transpose(2, 3) if swap else y
                y = y.flip(dims_) if flips else y
                acc = y if acc is None else acc + y
            outs.append(acc / len(ts))
        return torch.cat(outs)[:, 0]

    def once(x: torch.Tensor) -> torch.Tensor:
        if iso:
            # every plane of the interpolated volume, three orientations; the residuals averaged
            up = interpolate(x[None, None], s, model.interpolation)[0, 0]
            residual = torch.zeros_like(up)
            for axis in range(3):
                stack = up.movedim(axis, 0)
                residual += (planes(stack, refine=True) - stack).movedim(0, axis)
            return up + residual / 3
        if dims == 2 and image.ndim == 2:
            out = planes(x[None])[0]
        elif through:
            # thick slices: the network on every X-Z plane and every Y-Z plane, the two averaged
            out = 0.5 * (planes(x.permute(1, 0, 2)).permute(1, 0, 2) + planes(x))
        elif dims == 2:
            out = planes(x.permute(2, 0, 1)).permute(1, 2, 0)
        elif isinstance(model, MultiScaleFusionSR):
            # interpolate the whole volume, refine it on the HR grid by overlapping patches
            up = model.interpolate(x[None, None], s)[0]
            big = max(s)
            out = sliding_window_3d(lambda patch: model.refine(patch, s), up, patch_size=patch_size * big,
                                    overlap=overlap * big, progress=progress)[0]
        elif getattr(model, "interpolation", "cubic") == "zero_fill" and getattr(model, "interpolation_skip", False):
            # whole-image sinc interpolation (a patch's would wrap around) + the residual by patches
            base = interpolate(x[None, None], s, "zero_fill")[0, 0]
            out = base + superres_volume(model.residual, x[None], s, patch_size=patch_size, overlap=overlap,
                                         progress=progress)[0]
        else:
            out = superres_volume(model, x[None], s, patch_size=patch_size, overlap=overlap, progress=progress)[0]
        return out

    # a 2-D network's self-ensemble is done plane by plane (planes()); a 3-D one's on the volume
    transforms = symmetries(s) if self_ensemble and dims == 3 else [((), False)]
    out = None
    with torch.no_grad():
        for flips, swap in transforms:
            y = once(x0.flip(flips) if flips else x0)
            y = y.flip(flips) if flips else y
            out = y if out is None else out + y
    out = out.double().cpu() / len(transforms) * unit
    if float(image.min()) >= 0:
        out = out.clamp(min=0)
    return out.to(image.dtype).to(image.device)


def adapt_through_plane(model: nn.Module, image: torch.Tensor, scale: Sequence[int], *, steps: int = 800,
                        batch_size: int = 8, patch_size: int = 48, lr: float = 3e-4, seed: int = 0,
                        progress: bool = False) -> nn.Module:
    """Self-supervised test-time adaptation of a 2-D thick-slice network to one volume (SMORE).

    A thick-slice volume ``(X, Y, Z)`` with ``scale == (1, 1, s)`` is low resolution along Z only:
    its X-Y planes are high resolution. Truncating their k-space along one in-plane axis by the same
    factor (:func:`kspace_truncate`, scale ``(1, s)`` on the plane, both in-plane axes in turn) gives
    (degraded, original) pairs of this anatomy and contrast; a copy of ``model`` is fine-tuned on
    them for ``steps`` Adam steps (MSE on random aligned patches, random flips) and then, through
    :func:`upscale_image`, run on the X-Z and Y-Z planes it was trained for (Zhao et al., SMORE,
    IEEE TMI 2021; here from the bundled weights, a short budget instead of training from scratch).

    Args:
        model: a 2-D :class:`MultiScaleFusionSR` (not modified; the copy is returned).
        image: the LR volume ``(X, Y, Z)``, any intensity scale (normalised like
            :func:`upscale_image`: by its foreground mean).
        scale: ``(1, 1, s)``.
        steps: Adam steps (0 returns an unchanged copy).
        batch_size, patch_size: patches per step and their side on the HR grid (voxels; smaller
            planes are padded).
        lr: Adam learning rate.
        seed: seeds the patch draws (the result is deterministic on one thread).
        progress: tqdm bar over the steps.

    Returns:
        The adapted copy of ``model``, in eval mode, on ``model``'s device.

    Raises:
        ValueError: a non-2-D or non-fusion ``model``, a scale other than ``(1, 1, s)``, bad
            ``steps`` / ``batch_size`` / ``patch_size`` / ``lr``, an image without signal or with
            in-plane axes too small for the factor.
    """
    import copy

    if not isinstance(model, MultiScaleFusionSR) or model.dims != 2:
        raise ValueError(f"model must be a 2-D MultiScaleFusionSR (thick-slice planes), got {describe(model)}")
    if not isinstance(image, torch.Tensor) or image.ndim != 3 or not image.is_floating_point():
        raise ValueError(f"image must be a floating-point (X, Y, Z) volume, got {describe(image)}")
    s = check_scale(tuple(scale) if isinstance(scale, (list, tuple)) else scale, 3)
    if s[:2] != (1, 1):
        raise ValueError(f"scale must be (1, 1, s) (thick slices along the last axis), got {s}")
    check_int("steps", steps, minimum=0)
    check_int("batch_size", batch_size)
    check_int("patch_size", patch_size)
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < 1:
        raise ValueError(f"lr must be a number in (0, 1), got {lr!r}")
    f = s[2]
    if patch_size < 4 * f:
        raise ValueError(f"patch_size must be at least 4 x the factor ({4 * f}), got {patch_size}")
    for axis in (0, 1):  # the planes it will run on (before minutes of adapting)
        check_input_size((image.shape[axis], image.shape[2]), (1, f), model.receptive_field)
    adapted = copy.deepcopy(model)
    if steps == 0:
        return adapted.eval()
    unit = _foreground_mean(image.double())
    if not unit > 0:
        raise ValueError("image has no positive signal to adapt to")
    param = next(adapted.parameters())
    x = (image.detach().double().cpu() / unit).float()
    plane_scale = (1, f)
    # training planes: X-Y planes degraded along Y, and (transposed) along X
    hrs, ins = [], []
    for stack in (x.permute(2, 0, 1), x.permute(2, 1, 0)):
        keep = (stack > 0.1).float().mean(dim=(1, 2)) > 0.1
        stack = stack[keep]
        n = stack.shape[2] // f * f
        if stack.shape[0] == 0 or n < 2 * f:
            continue
        stack = stack[:, :, (stack.shape[2] - n) // 2:][:, :, :n].contiguous()
        with torch.no_grad():
            low = kspace_truncate(stack, plane_scale, spatial_dims=2)
            up = kspace_zero_pad(low, plane_scale, spatial_dims=2)
        hrs.append(stack)
        ins.append(up)
    if not hrs:
        raise ValueError(f"image {tuple(image.shape)} has no in-plane (X-Y) planes with signal to adapt to")
    g = torch.Generator().manual_seed(int(seed))

    def draw(high: int) -> int:
        return int(torch.randint(max(high, 1), (), generator=g))

    opt = torch.optim.Adam(adapted.parameters(), lr=float(lr))
    adapted.train()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc="adapting to the volume")
    for _ in range(steps):
        xs, ys = [], []
        for _b in range(batch_size):
            k = draw(len(hrs))
            hr_all, in_all = hrs[k], ins[k]
            for _attempt in range(8):
                z = draw(hr_all.shape[0])
                ph, pw = min(patch_size, hr_all.shape[1]), min(patch_size // f * f, hr_all.shape[2])
                a, b = draw(hr_all.shape[1] - ph + 1), draw((hr_all.shape[2] - pw) // f + 1) * f
                hr_p = hr_all[z, a:a + ph, b:b + pw]
                if float((hr_p > 0.1).float().mean()) > 0.25:
                    break
            in_p = in_all[z, a:a + ph, b:b + pw]
            pad = (0, patch_size - pw, 0, patch_size - ph)
            hr_p, in_p = F.pad(hr_p, pad), F.pad(in_p, pad)
            if draw(2):
                hr_p, in_p = hr_p.flip(0), in_p.flip(0)
            if draw(2):
                hr_p, in_p = hr_p.flip(1), in_p.flip(1)
            xs.append(in_p)
            ys.append(hr_p)
        up = torch.stack(xs)[:, None].to(param.device)
        target = torch.stack(ys)[:, None].to(param.device)
        loss = F.mse_loss(adapted.refine(up, plane_scale), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3g}")
    if bar is not None:
        bar.close()
    return adapted.eval()


def blend_residual(pred: torch.Tensor, base: torch.Tensor, target: torch.Tensor) -> float:
    """Least-squares weight ``w`` in [0, 1] of the residual ``pred - base`` towards ``target``.

    ``w = <pred - base, target - base> / ||pred - base||^2``, clipped to [0, 1], so that
    ``base + w (pred - base)`` is the blend of ``base`` (0) and ``pred`` (1) closest to ``target``
    in mean squared error; 1.0 when the residual is zero (every blend is the same), which includes
    a residual at float32 round-off (norm below 1e-5 of ``base``'s): a zero-residual network run
    in float32 against a float64 ``base`` differs from it by round-off only, and that noise
    says nothing about the network.
    """
    r = (pred - base).double().flatten()
    e = (target - base).double().flatten()
    rr = float(r @ r)
    b = base.double().flatten()
    if not rr > 1e-10 * float(b @ b):
        return 1.0
    return float(min(max(float(r @ e) / rr, 0.0), 1.0))


def residual_weight(model: nn.Module, image: torch.Tensor, scale: Sequence[int], *, patch_size: int = 32,
                    overlap: int = 8, self_ensemble: bool = False) -> float:
    """Self-calibrated weight of a network's learned residual for one LR image (0: sinc alone, 1: the network).

    Every bundled network is residual to the zero-filled (sinc) interpolation; on some anatomy its
    residual helps less than on the training data, or hurts. The LR image itself says how much:
    it is tapered (:func:`taper_borders`), its k-space truncated once more by the same ``scale``
    (:func:`kspace_truncate`), and both the network (:func:`upscale_image`, the same path and
    ``self_ensemble``) and :func:`kspace_zero_pad` bring that lower resolution back to the LR grid;
    the returned weight is the :func:`blend_residual` of the two towards the tapered LR image.
    ``recon.super_resolve`` then returns ``sinc + w (network - sinc)`` at full resolution (the
    calibration assumes the network's benefit at the LR scale predicts the one at full resolution;
    validation in ``recon.train.tasks_superres.CALIBRATE_BY_DEFAULT``). Cost: one network pass on
    an image ``prod(scale)`` times smaller than the output.

    Returns:
        The weight in [0, 1]; 1.0 (the network as it is) when the image, degraded once more, is
        too small for the network (:func:`check_input_size`).
    """
    if not isinstance(image, torch.Tensor) or not image.is_floating_point() or image.ndim not in (2, 3):
        raise ValueError(f"image must be a floating-point 2-D or 3-D tensor, got {describe(image)}")
    s = check_scale(tuple(scale) if isinstance(scale, (list, tuple)) else scale, image.ndim)
    x = crop_to_multiple(image.detach().double().cpu(), s, spatial_dims=image.ndim)
    try:  # the second degradation must still be large enough for the network
        check_input_size(tuple(n // f for n, f in zip(x.shape, s)), s, int(getattr(model, "receptive_field", 1)))
    except ValueError:
        return 1.0
    target = taper_borders(x, spatial_dims=image.ndim)
    low = kspace_truncate(target, s, spatial_dims=image.ndim)
    base = kspace_zero_pad(low, s, spatial_dims=image.ndim)
    pred = upscale_image(model, low.float(), s, patch_size=patch_size, overlap=overlap,
                         self_ensemble=self_ensemble).double()
    return blend_residual(pred, base, target)
