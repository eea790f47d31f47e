"""Unconditional synthesis of 2-D T1-weighted axial slices (Bermudez et al. 2018) and its checks.

* :class:`DCGANGenerator` / :class:`DCGANDiscriminator` - DCGAN (Radford et al. 2016):
  strided transposed convolutions with batch norm and ReLU from a latent vector to a
  ``size x size`` slice in ``[-1, 1]`` (tanh); strided convolutions with LeakyReLU(0.2) back
  to one real/fake logit.
* :func:`max_ncc` - the memorisation check of Bermudez et al.: for every generated slice, the
  highest normalised cross-correlation with any training slice (1 = a copy).
* :func:`intensity_histogram_distance` and :func:`radial_power_spectrum` /
  :func:`spectrum_distance` - how close generated slices are to real ones in their grey-level
  distribution and in their spatial frequency content.

Example:
    >>> import torch
    >>> g = DCGANGenerator(latent_dim=16, chans=8, size=32)
    >>> z = torch.randn(4, 16, generator=torch.Generator().manual_seed(0))
    >>> g(z).shape
    torch.Size([4, 1, 32, 32])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from recon.heads._checks import check_finite, check_image_tensor
from recon.ops._checks import check_int, describe

__all__ = [
    "BinomialBlur",
    "BlurredConvTranspose2d",
    "DCGANGenerator",
    "DCGANDiscriminator",
    "max_ncc",
    "intensity_histogram_distance",
    "radial_power_spectrum",
    "spectrum_distance",
]


def _check_size(size: int) -> int:
    check_int("size", size, minimum=8)
    if size & (size - 1):
        raise ValueError(f"size must be a power of two >= 8, got {size}")
    return size


#: the generator's up-sampling choices
UPSAMPLE_MODES = ("transpose", "resize", "blur")


class BinomialBlur(nn.Module):
    """Fixed ``[1, 2, 1] x [1, 2, 1] / 16`` blur of every channel (reflect padding; no parameters).

    Frequency response ``cos^2(pi f_y) cos^2(pi f_x)`` (``f`` in cycles per pixel): 1 at zero
    frequency (a constant image stays constant), 0 at the Nyquist frequency. The anti-aliasing
    filter after a transposed convolution in StyleGAN's up-sampling (Karras et al. 2019, 2020).
    """

    def __init__(self) -> None:
        super().__init__()
        k = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("kernel", (k[:, None] * k[None, :] / 16.0)[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> ``(B, C, H, W)``, ``H, W >= 2``."""
        check_image_tensor("x", x, 4, "(B, C, H, W)")
        c = x.shape[1]
        w = self.kernel.to(dtype=x.dtype).expand(c, 1, 3, 3)
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), w, groups=c)


class BlurredConvTranspose2d(nn.ConvTranspose2d):
    """A transposed convolution followed by :class:`BinomialBlur` (the same parameters and
    state-dict keys as ``nn.ConvTranspose2d``: a plain transposed convolution's weights load)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.blur = BinomialBlur()

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        return self.blur(super().forward(x, output_size))


class DCGANGenerator(nn.Module):
    """DCGAN generator: latent ``(B, latent_dim)`` -> slice ``(B, 1, size, size)`` in ``[-1, 1]``.

    ``ConvT4x4(latent -> c 2^(k-1)) -> 4x4``, then ``k - 1`` x ``(ConvT4x4 s2, BN, ReLU)``
    halving the channels, and ``ConvT4x4 s2 -> tanh`` to ``size`` (``size = 4 * 2^k``). With
    ``upsample="resize"`` every stride-2 transposed convolution is replaced by bilinear x2
    up-sampling and a 3x3 convolution (resize-convolution, Odena et al. 2016): no
    checkerboard, whose excess power near the Nyquist frequency makes the transposed-conv
    generator's radial spectrum depart from real slices. ``upsample="blur"`` keeps the
    transposed convolutions (same parameters: ``"transpose"`` weights load) and follows each
    stride-2 one with the fixed :class:`BinomialBlur` (anti-aliased up-sampling, as StyleGAN).

    Args:
        latent_dim: latent vector length.
        chans: channels of the last hidden layer.
        size: output side, a power of two >= 8.
        upsample: ``"transpose"`` (DCGAN), ``"resize"`` or ``"blur"``.
    """

    def __init__(self, latent_dim: int = 64, chans: int = 32, size: int = 64, upsample: str = "transpose") -> None:
        super().__init__()
        check_int("latent_dim", latent_dim)
        check_int("chans", chans)
        if upsample not in UPSAMPLE_MODES:
            raise ValueError(f"upsample must be 'transpose', 'resize' or 'blur', got {upsample!r}")
        self.latent_dim, self.chans, self.size, self.upsample = latent_dim, chans, _check_size(size), upsample
        steps = int(math.log2(size)) - 2  # 4 -> size in `steps` doublings
        ch = chans * 2 ** (steps - 1)

        def up(cin: int, cout: int) -> list[nn.Module]:
            if upsample == "transpose":
                return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False)]
            if upsample == "blur":
                return [BlurredConvTranspose2d(cin, cout, 4, 2, 1, bias=False)]
            return [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                    nn.Conv2d(cin, cout, 3, 1, 1, bias=False)]

        layers: list[nn.Module] = [nn.ConvTranspose2d(latent_dim, ch, 4, 1, 0, bias=False), nn.BatchNorm2d(ch), nn.ReLU(True)]
        for _ in range(steps - 1):
            layers += [*up(ch, ch // 2), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [*up(ch, 1), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, (nn.ConvTranspose2d, nn.Conv2d)):
                nn.init.normal_(m.weight, 0.0, 0.02)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """``(B, latent_dim)`` -> ``(B, 1, size, size)``."""
        if not isinstance(latent, torch.Tensor) or latent.ndim != 2 or latent.shape[1] != self.latent_dim:
            raise ValueError(f"latent must be a (B, {self.latent_dim}) tensor, got {describe(latent)}")
        return self.model(latent[:, :, None, None])

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` slices from standard normal latents drawn with ``generator`` (eval mode, no grad)."""
        check_int("n", n)
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {describe(generator)}")
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator, device=generator.device).to(device)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                return self(z)
        finally:
            self.train(was_training)


class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator: ``(B, 1, size, size)`` -> ``(B,)`` logits (real > 0).

    ``Conv4x4 s2, LReLU(0.2)``, then ``(Conv4x4 s2, BN, LReLU)`` doubling the channels down to
    4x4, and a final ``Conv4x4`` to one logit.

    Args:
        chans: channels of the first layer.
        size: input side, a power of two >= 8.
        batch_norm: batch norm in the hidden layers (DCGAN); False removes it (real and fake
            batches then cannot be told apart by their batch statistics; more stable on small,
            mostly-background data such as brain slices).
    """

    def __init__(self, chans: int = 32, size: int = 64, batch_norm: bool = True) -> None:
        super().__init__()
        check_int("chans", chans)
        self.chans, self.size, self.batch_norm = chans, _check_size(size), bool(batch_norm)
        steps = int(math.log2(size)) - 2
        layers: list[nn.Module] = [nn.Conv2d(1, chans, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        ch = chans
        for _ in range(steps - 1):
            norm = [nn.BatchNorm2d(ch * 2)] if self.batch_norm else []
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=not self.batch_norm), *norm, nn.LeakyReLU(0.2, True)]
            ch *= 2
        layers += [nn.Conv2d(ch, 1, 4, 1, 0, bias=False)]
        self.model = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, 1, size, size)`` -> ``(B,)``."""
        check_image_tensor("image", image, 4, "(B, 1, size, size)")
        if tuple(image.shape[1:]) != (1, self.size, self.size):
            raise ValueError(f"image must be (B, 1, {self.size}, {self.size}), got shape {tuple(image.shape)}")
        return self.model(image).flatten()


def _flat_normalised(images: torch.Tensor, name: str) -> torch.Tensor:
    check_image_tensor(name, images, 3, "(N, H, W)")
    check_finite(name, images)
    x = images.reshape(images.shape[0], -1).double()
    x = x - x.mean(1, keepdim=True)
    norm = x.norm(dim=1, keepdim=True)
    if bool((norm == 0).any()):
        raise ValueError(f"{name} contains a constant image (normalised cross-correlation undefined)")
    return x / norm


def max_ncc(generated: torch.Tensor, training: torch.Tensor, chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """Highest normalised cross-correlation of each generated slice with the training slices.

    ``NCC(x, y) = sum((x - mean x)(y - mean y)) / (||x - mean x|| ||y - mean y||)`` over all
    pixels (zero lag; the Pearson correlation of the two images), computed in float64 as a
    matrix product of normalised images, ``chunk`` training slices at a time.

    Args:
        generated: ``(N, H, W)`` generated slices.
        training: ``(M, H, W)`` training slices (same ``H, W``).
        chunk: training slices per matrix product (memory).

    Returns:
        ``(values, indices)``: ``(N,)`` float64 maximum NCC and ``(N,)`` int64 index of the
        training slice that reaches it. A slice with NCC above 0.95 is a near copy.

    Raises:
        ValueError: shapes differ, NaN/Inf, a constant image.

    Example:
        >>> t = torch.rand(10, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> values, idx = max_ncc(t[:2], t)
        >>> idx.tolist()
        [0, 1]
    """
    g = _flat_normalised(generated, "generated")
    if not isinstance(training, torch.Tensor) or training.ndim != 3 or tuple(training.shape[1:]) != tuple(generated.shape[1:]):
        raise ValueError(f"training must be (M, {generated.shape[1]}, {generated.shape[2]}) like generated, got {describe(training)}")
    check_int("chunk", chunk)
    best = torch.full((g.shape[0],), -math.inf, dtype=torch.float64)
    index = torch.zeros(g.shape[0], dtype=torch.int64)
    for start in range(0, training.shape[0], chunk):
        t = _flat_normalised(training[start:start + chunk], "training")
        values, idx = (g @ t.T.to(g.device)).max(dim=1)
        better = values.cpu() > best
        best = torch.where(better, values.cpu(), best)
        index = torch.where(better, idx.cpu() + start, index)
    return best, index


def intensity_histogram_distance(generated: torch.Tensor, real: torch.Tensor) -> float:
    """1-Wasserstein (earth mover's) distance between the pixel intensity distributions.

    Both sets are pooled over all their pixels; the distance is in intensity units (compare
    images on one scale, e.g. ``[-1, 1]``). Equals ``scipy.stats.wasserstein_distance``.

    Args:
        generated: tensor of any shape.
        real: tensor of any shape.
    """
    for name, value in (("generated", generated), ("real", real)):
        if not isinstance(value, torch.Tensor) or value.numel() == 0:
            raise ValueError(f"{name} must be a non-empty tensor, got {describe(value)}")
        check_finite(name, value)
    u = torch.sort(generated.detach().flatten().double().cpu()).values
    v = torch.sort(real.detach().flatten().double().cpu()).values
    # W1 = integral |F_u - F_v| over the merged support
    allv = torch.sort(torch.cat([u, v])).values
    deltas = allv[1:] - allv[:-1]
    cdf_u = torch.searchsorted(u, allv[:-1], right=True).double() / u.numel()
    cdf_v = torch.searchsorted(v, allv[:-1], right=True).double() / v.numel()
    return float((deltas * (cdf_u - cdf_v).abs()).sum())


def radial_power_spectrum(images: torch.Tensor, bins: int | None = None) -> torch.Tensor:
    """Mean radially averaged power spectrum of ``(N, H, W)`` slices.

    ``P(k) = mean over images and over frequencies with round(|f|) = k of |FFT2(x - mean x)|^2 / (H W)``,
    ``|f|`` in cycles per image of the smaller side (``k = 0 .. bins - 1``, ``bins`` default
    ``min(H, W) // 2``).

    Returns:
        ``(bins,)`` float64 tensor.
    """
    check_image_tensor("images", images, 3, "(N, H, W)")
    check_finite("images", images)
    N, H, W = images.shape
    bins = min(H, W) // 2 if bins is None else check_int("bins", bins)
    x = images.detach().double().cpu()
    x = x - x.mean(dim=(1, 2), keepdim=True)
    power = (torch.fft.fft2(x).abs() ** 2).mean(0) / (H * W)
    fy = torch.fft.fftfreq(H, dtype=torch.float64)[:, None] * min(H, W)
    fx = torch.fft.fftfreq(W, dtype=torch.float64)[None, :] * min(H, W)
    radius = torch.sqrt(fy ** 2 + fx ** 2).round().long().flatten()
    keep = radius < bins
    sums = torch.zeros(bins, dtype=torch.float64).index_add_(0, radius[keep], power.flatten()[keep])
    counts = torch.zeros(bins, dtype=torch.float64).index_add_(0, radius[keep], torch.ones(int(keep.sum()), dtype=torch.float64))
    return sums / counts.clamp(min=1)


def spectrum_distance(generated: torch.Tensor, real: torch.Tensor) -> float:
    """Root mean square difference of the log10 radial power spectra (decades; 0 = identical).

    Excludes the zero-frequency bin (the mean is removed). ``0.1`` means the spectra differ by
    about 26 % per frequency on average.
    """
    p = radial_power_spectrum(generated)[1:]
    q = radial_power_spectrum(real)[1:]
    if p.shape != q.shape:
        raise ValueError(f"generated and real must have the same slice size, got {tuple(generated.shape)} and {tuple(real.shape)}")
    eps = 1e-12 * float(q.max())
    return float(torch.sqrt(((torch.log10(p + eps) - torch.log10(q + eps)) ** 2).mean()))
