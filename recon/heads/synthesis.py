"""MR-to-MR contrast synthesis networks: a 3-D residual network, a 2-D U-Net and CycleGAN.

* :class:`ResNet3d` - the small 3-D residual network of the MR-to-MR synthesis recipe
  (T1-weighted -> FLAIR): a 3x3x3 convolution, residual blocks of (3-D convolution, batch
  norm, ReLU, convolution, batch norm) + identity, and a final 1x1x1 convolution; trained with
  MSE on z-scored whole volumes or 3-D patches. :func:`crop_axial` keeps the central
  20-80 % of the axial axis (the recipe's neck removal).
* :class:`UnetSynthesizer` - a 2-D U-Net (:class:`recon.models.Unet`, Ronneberger et al.
  2015) from slices of one contrast to slices of another.
* :class:`CycleGAN` - unpaired translation between two contrasts (Zhu et al. 2017; for
  T1 <-> T2 MR, Welander et al. 2018): two generators ``A -> B`` and ``B -> A``, two
  :class:`PatchDiscriminator` s (70x70 PatchGAN), least-squares adversarial loss
  (:func:`lsgan_loss`), cycle-consistency and optional identity L1 losses, and an
  :class:`ImagePool` of past generated images for the discriminator updates.
* Whole volumes: :func:`unet_volume` (a slice network on every axial slice),
  :func:`resnet3d_volume` (a 3-D network by overlapping patches) and :func:`ensemble_volume`
  (their weighted mean, :data:`ENSEMBLE_UNET_WEIGHT` chosen on validation subjects; the default
  of :func:`recon.synthesize` for volumes).

All networks take and return tensors only: ``(B, C, H, W)`` slices or ``(B, C, D, H, W)``
volumes, intensities normalised by the caller (see :func:`recon.synthesize` for the one call
that normalises, tiles and blends).

Example:
    >>> import torch
    >>> from recon.heads.synthesis import ResNet3d, UnetSynthesizer
    >>> ResNet3d(chans=8, num_blocks=2)(torch.randn(1, 1, 16, 16, 16)).shape
    torch.Size([1, 1, 16, 16, 16])
    >>> UnetSynthesizer(chans=8, num_pool_layers=2)(torch.randn(2, 1, 30, 34)).shape
    torch.Size([2, 1, 30, 34])
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from recon.heads._checks import check_image_tensor
from recon.heads.cyclegan import TissueMapSynthesizer
from recon.models import Unet
from recon.ops._checks import check_int, check_number, describe

__all__ = [
    "ResidualBlock3d",
    "ResNet3d",
    "UnetSynthesizer",
    "ResizeConvUnet",
    "LocalSynthesizer",
    "PatchDiscriminator",
    "ImagePool",
    "CycleGAN",
    "lsgan_loss",
    "local_ncc_squared",
    "crop_axial",
    "sliding_window_3d",
    "translate_slices",
    "ENSEMBLE_UNET_WEIGHT",
    "unet_volume",
    "resnet3d_volume",
    "ensemble_volume",
    "SLICE_ENSEMBLE_WEIGHTS",
    "SliceEnsemble",
]


class ResidualBlock3d(nn.Module):
    """``x + BN(conv(ReLU(BN(conv(x)))))`` followed by ReLU, 3x3x3 convolutions.

    Args:
        chans: channels in and out.
    """

    def __init__(self, chans: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(chans, chans, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm3d(chans)
        self.conv2 = nn.Conv3d(chans, chans, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(chans)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, chans, D, H, W)`` -> same shape."""
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(x + self.bn2(self.conv2(y)))


class ResNet3d(nn.Module):
    """Small 3-D residual network for volume-to-volume contrast synthesis.

    ``conv3x3x3 -> BN -> ReLU -> num_blocks x ResidualBlock3d -> conv1x1x1``. No pooling: the
    output has the input's grid, any size (the receptive field is ``2 * (2 num_blocks + 1) + 1``
    voxels wide).

    Args:
        in_chans: input contrasts (channels).
        out_chans: output contrasts.
        chans: feature channels.
        num_blocks: residual blocks.

    Raises:
        ValueError: (in :meth:`forward``) the input is not 5-D - this is a 3-D-only model.

    Example:
        >>> net = ResNet3d(chans=8, num_blocks=2)
        >>> net(torch.zeros(1, 1, 8, 9, 10)).shape
        torch.Size([1, 1, 8, 9, 10])
    """

    def __init__(self, in_chans: int = 1, out_chans: int = 1, chans: int = 16, num_blocks: int = 4) -> None:
        super().__init__()
        for name, value in (("in_chans", in_chans), ("out_chans", out_chans), ("chans", chans)):
            check_int(name, value)
        check_int("num_blocks", num_blocks, minimum=0)
        self.in_chans, self.out_chans, self.chans, self.num_blocks = in_chans, out_chans, chans, num_blocks
        self.head = nn.Sequential(nn.Conv3d(in_chans, chans, 3, padding=1, bias=False), nn.BatchNorm3d(chans), nn.ReLU())
        self.blocks = nn.Sequential(*[ResidualBlock3d(chans) for _ in range(num_blocks)])
        self.tail = nn.Conv3d(chans, out_chans, 1)

    def forward(self, volume: torch.Tensor) -> torch.Tensor:
        """``(B, in_chans, D, H, W)`` -> ``(B, out_chans, D, H, W)``."""
        check_image_tensor("volume", volume, 5, "(B, C, D, H, W)", hint=" (ResNet3d is a 3-D-only model; "
                           "use UnetSynthesizer for 2-D slices)")
        if volume.shape[1] != self.in_chans:
            raise ValueError(f"volume must have {self.in_chans} channel(s), got shape {tuple(volume.shape)}")
        return self.tail(self.blocks(self.head(volume)))


class UnetSynthesizer(nn.Module):
    """2-D U-Net from slices of one contrast to slices of another.

    A thin wrapper of :class:`recon.models.Unet` (its conv blocks, instance norm and
    LeakyReLU) that checks the input, zero-pads it at the bottom and right to a multiple of
    ``2 ** num_pool_layers`` (any height and width; the output is cropped back) and, with
    ``residual=True``, adds the input to the output (useful when source and target look alike).

    Args:
        in_chans: input channels.
        out_chans: output channels.
        chans: channels of the first conv layer.
        num_pool_layers: down-/up-sampling steps.
        residual: add the (first ``out_chans`` channels of the) input to the output.

    Example:
        >>> UnetSynthesizer(chans=8, num_pool_layers=2)(torch.zeros(1, 1, 20, 24)).shape
        torch.Size([1, 1, 20, 24])
    """

    def __init__(self, in_chans: int = 1, out_chans: int = 1, chans: int = 16, num_pool_layers: int = 3,
                 residual: bool = False) -> None:
        super().__init__()
        self.unet = Unet(in_chans=in_chans, out_chans=out_chans, chans=chans, num_pool_layers=num_pool_layers)
        self.in_chans, self.out_chans, self.chans, self.num_pool_layers = in_chans, out_chans, chans, num_pool_layers
        self.residual = bool(residual)
        if self.residual and in_chans < out_chans:
            raise ValueError(f"residual=True needs in_chans >= out_chans, got {in_chans} < {out_chans}")

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, in_chans, H, W)`` -> ``(B, out_chans, H, W)``."""
        # zero-pad bottom/right to a multiple of 2^pools (as in training) and crop back: the
        # U-Net's own odd-size handling (reflect-padding of up-sampled maps) gives different,
        # worse outputs at sizes the network was not trained on
        padded, (H, W) = _padded_slices(image, self.in_chans, self.num_pool_layers, "UnetSynthesizer")
        out = self.unet(padded)[..., :H, :W]
        return out + image[:, : self.out_chans] if self.residual else out


def _padded_slices(image: torch.Tensor, in_chans: int, num_pool_layers: int, network: str
                   ) -> tuple[torch.Tensor, tuple[int, int]]:
    """Check a ``(B, in_chans, H, W)`` input of a 2-D U-Net and zero-pad it at the bottom/right
    to a multiple of ``2 ** num_pool_layers``; returns the padded tensor and the original ``(H, W)``."""
    check_image_tensor("image", image, 4, "(B, C, H, W)", hint=f" ({network} works on 2-D slices)")
    if image.shape[1] != in_chans:
        raise ValueError(f"image must have {in_chans} channel(s), got shape {tuple(image.shape)}")
    H, W = image.shape[-2:]
    m = 2**num_pool_layers
    padded = F.pad(image, (0, (-W) % m, 0, (-H) % m)) if (H % m or W % m) else image
    return padded, (H, W)


class ResizeConvUnet(nn.Module):
    """2-D U-Net whose up-sampling is bilinear resizing followed by a 3x3 convolution.

    Transposed convolutions with stride 2 overlap their kernels unevenly and, early in training
    (and in a GAN, whose discriminator rewards any texture it cannot tell apart), print a
    checkerboard on the output (Odena et al. 2016, "Deconvolution and checkerboard artifacts");
    resize-convolution cannot. Used as the CycleGAN generator (``generator_arch="resize"``).
    Each level: ``(conv3x3, InstanceNorm, LeakyReLU 0.2) x 2``, 2x2 average pooling down;
    up: bilinear x2, conv3x3, concatenation with the skip, the same double conv; a final 1x1
    convolution. Any ``H, W`` (zero-padded at the bottom/right to a multiple of
    ``2 ** num_pool_layers``, cropped back).

    Args:
        in_chans: input channels.
        out_chans: output channels.
        chans: channels of the first level (doubled per level).
        num_pool_layers: down-/up-sampling steps.

    Example:
        >>> ResizeConvUnet(chans=4, num_pool_layers=2)(torch.zeros(1, 1, 20, 24)).shape
        torch.Size([1, 1, 20, 24])
    """

    def __init__(self, in_chans: int = 1, out_chans: int = 1, chans: int = 16, num_pool_layers: int = 3) -> None:
        super().__init__()
        for name, value in (("in_chans", in_chans), ("out_chans", out_chans), ("chans", chans),
                            ("num_pool_layers", num_pool_layers)):
            check_int(name, value)
        self.in_chans, self.out_chans, self.chans, self.num_pool_layers = in_chans, out_chans, chans, num_pool_layers

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.InstanceNorm2d(cout), nn.LeakyReLU(0.2),
                                 nn.Conv2d(cout, cout, 3, padding=1), nn.InstanceNorm2d(cout), nn.LeakyReLU(0.2))

        self.down = nn.ModuleList()
        ch, cin = chans, in_chans
        for _ in range(num_pool_layers):
            self.down.append(block(cin, ch))
            cin, ch = ch, ch * 2
        self.bottom = block(cin, ch)
        self.up_conv = nn.ModuleList()
        self.up_block = nn.ModuleList()
        for _ in range(num_pool_layers):
            self.up_conv.append(nn.Conv2d(ch, ch // 2, 3, padding=1))
            self.up_block.append(block(ch, ch // 2))
            ch //= 2
        self.out = nn.Conv2d(ch, out_chans, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, in_chans, H, W)`` -> ``(B, out_chans, H, W)``."""
        h, (H, W) = _padded_slices(image, self.in_chans, self.num_pool_layers, "ResizeConvUnet")
        skips = []
        for block in self.down:
            h = block(h)
            skips.append(h)
            h = F.avg_pool2d(h, 2)
        h = self.bottom(h)
        for conv, block in zip(self.up_conv, self.up_block):
            h = conv(F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False))
            h = block(torch.cat([h, skips.pop()], 1))
        return self.out(h)[..., :H, :W]


class LocalSynthesizer(nn.Module):
    """A small-receptive-field translator: each output pixel sees a ``(2 k + 1)^2`` neighbourhood.

    ``num_layers`` 3x3 convolutions (``k = num_layers``) with LeakyReLU, then two 1x1
    convolutions: no down-sampling, so it cannot move or invent structure - it maps each pixel's
    local intensity pattern (tissue and partial volume) to the other contrast. Used as the
    CycleGAN generator for unpaired contrast translation, where a U-Net with its large receptive
    field can fool the discriminator with invented anatomy long before it learns the contrast
    mapping (on a CPU budget of a few thousand steps it does).

    Args:
        in_chans: input channels.
        out_chans: output channels.
        chans: feature channels.
        num_layers: 3x3 convolution layers (receptive field ``2 num_layers + 1`` pixels).
        background: None, or an input level (in the input's units, e.g. 0.1 of the foreground
            mean) below which the output is gated to 0 by ``sigmoid((x - b) / (b / 4))``: air is
            dark in every MR contrast, so a translator between inverse contrasts (T1 <-> T2)
            need not learn to keep it dark while it inverts the tissues.

    Example:
        >>> LocalSynthesizer(chans=8)(torch.zeros(1, 1, 20, 24)).shape
        torch.Size([1, 1, 20, 24])
    """

    def __init__(self, in_chans: int = 1, out_chans: int = 1, chans: int = 32, num_layers: int = 2,
                 background: float | None = None) -> None:
        super().__init__()
        for name, value in (("in_chans", in_chans), ("out_chans", out_chans), ("chans", chans), ("num_layers", num_layers)):
            check_int(name, value)
        if background is not None and not (isinstance(background, (int, float)) and background > 0):
            raise ValueError(f"background must be a positive number or None, got {background!r}")
        self.in_chans, self.out_chans, self.chans, self.num_layers = in_chans, out_chans, chans, num_layers
        self.background = background
        layers: list[nn.Module] = []
        ch = in_chans
        for _ in range(num_layers):
            layers += [nn.Conv2d(ch, chans, 3, padding=1, padding_mode="replicate"), nn.LeakyReLU(0.2)]
            ch = chans
        layers += [nn.Conv2d(chans, chans, 1), nn.LeakyReLU(0.2), nn.Conv2d(chans, out_chans, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, in_chans, H, W)`` -> ``(B, out_chans, H, W)``."""
        check_image_tensor("image", image, 4, "(B, C, H, W)", hint=" (LocalSynthesizer works on 2-D slices)")
        if image.shape[1] != self.in_chans:
            raise ValueError(f"image must have {self.in_chans} channel(s), got shape {tuple(image.shape)}")
        out = self.net(image)
        if self.background is not None:  # air stays air: a smooth gate on the input's first channel
            out = out * torch.sigmoid((image[:, :1] - self.background) / (0.25 * self.background))
        return out


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator (Isola et al. 2017): a map of real/fake scores, one per patch.

    ``conv4x4 s2 -> LReLU``, then ``num_layers - 1`` x ``(conv4x4 s2, InstanceNorm, LReLU)``
    doubling the channels (at most 8x), one ``conv4x4 s1, IN, LReLU`` and a final 1-channel
    ``conv4x4 s1``. With ``num_layers=3`` each score sees a 70x70 patch.

    Args:
        in_chans: image channels.
        chans: channels of the first layer.
        num_layers: stride-2 layers.

    Example:
        >>> PatchDiscriminator(chans=8)(torch.zeros(2, 1, 64, 64)).shape
        torch.Size([2, 1, 6, 6])
    """

    def __init__(self, in_chans: int = 1, chans: int = 32, num_layers: int = 3) -> None:
        super().__init__()
        check_int("in_chans", in_chans)
        check_int("chans", chans)
        check_int("num_layers", num_layers)
        layers: list[nn.Module] = [nn.Conv2d(in_chans, chans, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        ch = chans
        for n in range(1, num_layers):
            nxt = chans * min(2 ** n, 8)
            layers += [nn.Conv2d(ch, nxt, 4, 2, 1), nn.InstanceNorm2d(nxt), nn.LeakyReLU(0.2, inplace=True)]
            ch = nxt
        nxt = chans * min(2 ** num_layers, 8)
        layers += [nn.Conv2d(ch, nxt, 4, 1, 1), nn.InstanceNorm2d(nxt), nn.LeakyReLU(0.2, inplace=True),
                   nn.Conv2d(nxt, 1, 4, 1, 1)]
        self.model = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, in_chans, H, W)`` -> ``(B, 1, h, w)`` unbounded scores (LSGAN: 1 real, 0 fake)."""
        check_image_tensor("image", image, 4, "(B, C, H, W)")
        return self.model(image)


def lsgan_loss(prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
    """Least-squares GAN loss (Mao et al. 2017): ``mean((D - 1)^2)`` for real, ``mean(D^2)`` for fake.

    Args:
        prediction: discriminator scores, any shape.
        target_is_real: the label the scores are pushed towards.

    Returns:
        Scalar tensor.
    """
    if not isinstance(target_is_real, bool):
        raise TypeError(f"target_is_real must be a bool, got {describe(target_is_real)}")
    target = 1.0 if target_is_real else 0.0
    return (prediction - target).square().mean()


def local_ncc_squared(a: torch.Tensor, b: torch.Tensor, window: int = 7, eps: float = 1e-3) -> torch.Tensor:
    """Mean squared local normalised cross-correlation of two ``(B, 1, H, W)`` images.

    For every ``window x window`` neighbourhood (box filter, valid positions):
    ``ncc = cov(a, b) / sqrt((var(a) + eps) (var(b) + eps))``; returns the mean of ``ncc^2``
    in ``[0, 1]``. Squared, it is blind to the sign of the local intensity relation, so an
    image and its contrast-inverted version (T1w and T2w: tissue edges flip polarity, fat edges
    do not) score as alike as two copies, while structure present in one image and not in the
    other (invented edges, blotches) lowers it: the structure term of the CycleGAN
    (``lambda_structure``; in the spirit of the structure-constrained CycleGAN of Yang et al.
    2018, which used MIND descriptors). ``eps`` damps flat windows (in the images' units).

    Example:
        >>> x = torch.rand(1, 1, 16, 16)
        >>> float(local_ncc_squared(x, 1 - x)) > 0.95  # inverted: as alike as a copy (eps aside)
        True
    """
    check_image_tensor("a", a, 4, "(B, 1, H, W)")
    check_image_tensor("b", b, 4, "(B, 1, H, W)")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    check_int("window", window)
    if window > min(a.shape[-2:]):
        raise ValueError(f"window must be at most the images' smaller side {min(a.shape[-2:])}, "
                         f"got {window} for images of shape {tuple(a.shape)}")
    mu_a, mu_b = F.avg_pool2d(a, window, 1), F.avg_pool2d(b, window, 1)
    var_a = (F.avg_pool2d(a * a, window, 1) - mu_a ** 2).clamp(min=0)
    var_b = (F.avg_pool2d(b * b, window, 1) - mu_b ** 2).clamp(min=0)
    cov = F.avg_pool2d(a * b, window, 1) - mu_a * mu_b
    return (cov ** 2 / ((var_a + eps) * (var_b + eps))).mean()


class ImagePool:
    """Buffer of previously generated images (Shrivastava et al. 2017; CycleGAN's ``ImagePool``).

    :meth:`query` takes a batch of generated images and returns a batch of the same size.
    While the pool holds fewer than ``size`` images each image is stored and returned as is;
    once full, each image is, with probability 1/2, swapped with a uniformly drawn stored image
    (the stored one is returned and the new one takes its place), else returned as is.
    ``size=0`` disables the pool. Images are stored detached.

    Args:
        size: capacity (images).
        generator: ``torch.Generator`` for the draws (CPU); default a generator seeded with 0.

    Example:
        >>> pool = ImagePool(2, torch.Generator().manual_seed(0))
        >>> pool.query(torch.zeros(1, 1, 4, 4)).shape
        torch.Size([1, 1, 4, 4])
    """

    def __init__(self, size: int = 50, generator: torch.Generator | None = None) -> None:
        check_int("size", size, minimum=0)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {describe(generator)}")
        self.size = size
        self.images: list[torch.Tensor] = []
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)

    def __len__(self) -> int:
        return len(self.images)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, ...)`` generated images -> ``(B, ...)`` images for the discriminator."""
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
                continue
            if float(torch.rand((), generator=self.generator)) < 0.5:
                j = int(torch.randint(len(self.images), (), generator=self.generator))
                out.append(self.images[j].clone())
                self.images[j] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)


class CycleGAN(nn.Module):
    """CycleGAN for unpaired translation between contrasts ``A`` and ``B`` (2-D slices).

    Generators ``g_ab: A -> B`` and ``g_ba: B -> A`` (:class:`UnetSynthesizer`, or
    :class:`LocalSynthesizer` with ``generator_arch="local"``, ...), discriminators
    ``d_a``, ``d_b`` (:class:`PatchDiscriminator`). Losses (Zhu et al. 2017, least-squares GAN):

    * generators: ``LS(d_b(g_ab(a)), real) + LS(d_a(g_ba(b)), real)
      + lambda_cycle (|g_ba(g_ab(a)) - a|_1 + |g_ab(g_ba(b)) - b|_1)
      + lambda_identity lambda_cycle (|g_ab(b) - b|_1 + |g_ba(a) - a|_1)``
      ``+ lambda_structure (2 - lncc2(a, g_ab(a)) - lncc2(b, g_ba(b)))`` (optional structure
      term, :func:`local_ncc_squared`);
    * each discriminator: ``(LS(d(real), real) + LS(d(pool(fake)), fake)) / 2``.

    Args:
        chans: generator U-Net channels.
        num_pool_layers: generator U-Net depth.
        disc_chans: discriminator channels.
        disc_layers: discriminator stride-2 layers.
        lambda_cycle: cycle-consistency weight (10 in the paper).
        lambda_identity: identity weight relative to ``lambda_cycle`` (0.5 in the paper; 0 off).
        pool_size: :class:`ImagePool` size (50 in the paper).
        generator: ``torch.Generator`` for the pools.
        generator_arch: ``"unet"`` (:class:`UnetSynthesizer` with ``chans`` and
            ``num_pool_layers``), ``"resize"`` (:class:`ResizeConvUnet`, the same with
            resize-convolution up-sampling: no checkerboard) or ``"local"``
            (:class:`LocalSynthesizer` with ``chans`` and ``num_pool_layers`` 3x3 layers) or
            ``"tissue"`` (:class:`recon.heads.cyclegan.TissueMapSynthesizer`: a learned intensity
            look-up table plus a dilated-convolution context correction, receptive field
            ``1 + 2 sum(dilations)``; ``num_pool_layers`` unused).
        background: the local generators' background gate (:class:`LocalSynthesizer`).
        generator_options: extra keyword arguments of the ``"tissue"`` generators (``knots``,
            ``max_intensity``, ``dilations``, ``init``, ``gain``).
        lambda_structure: weight of the structure term ``(1 - local_ncc_squared(a, g_ab(a)))
            + (1 - local_ncc_squared(b, g_ba(b)))`` (:func:`local_ncc_squared`; 0 off).
        source_negatives: each discriminator also learns the other domain's real images as
            fakes (:meth:`discriminator_loss`), so that a copy of the input - an attractor of
            the game early in training, when the discriminators do not know the contrasts yet -
            is rejected from the start. Uses no pairs.

    Example:
        >>> model = CycleGAN(chans=8, num_pool_layers=2, disc_chans=8)
        >>> a, b = torch.randn(2, 1, 32, 32), torch.randn(2, 1, 32, 32)
        >>> g_loss, parts, fake_a, fake_b = model.generator_loss(a, b)
        >>> d_loss = model.discriminator_loss(a, b, fake_a, fake_b)
    """

    def __init__(self, chans: int = 16, num_pool_layers: int = 3, disc_chans: int = 32, disc_layers: int = 3,
                 lambda_cycle: float = 10.0, lambda_identity: float = 0.5, pool_size: int = 50,
                 generator: torch.Generator | None = None, generator_arch: str = "unet",
                 background: float | None = None, lambda_structure: float = 0.0,
                 source_negatives: bool = False, generator_options: dict | None = None) -> None:
        super().__init__()
        for name, value in (("lambda_cycle", lambda_cycle), ("lambda_identity", lambda_identity),
                            ("lambda_structure", lambda_structure)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        if generator_arch == "unet":
            self.g_ab = UnetSynthesizer(chans=chans, num_pool_layers=num_pool_layers)
            self.g_ba = UnetSynthesizer(chans=chans, num_pool_layers=num_pool_layers)
        elif generator_arch == "local":
            self.g_ab = LocalSynthesizer(chans=chans, num_layers=num_pool_layers, background=background)
            self.g_ba = LocalSynthesizer(chans=chans, num_layers=num_pool_layers, background=background)
        elif generator_arch == "resize":
            self.g_ab = ResizeConvUnet(chans=chans, num_pool_layers=num_pool_layers)
            self.g_ba = ResizeConvUnet(chans=chans, num_pool_layers=num_pool_layers)
        elif generator_arch == "tissue":
            if generator_options is not None and not isinstance(generator_options, dict):
                raise TypeError(f"generator_options must be a dict or None, got {describe(generator_options)}")
            self.g_ab = TissueMapSynthesizer(chans=chans, **(generator_options or {}))
            self.g_ba = TissueMapSynthesizer(chans=chans, **(generator_options or {}))
        else:
            raise ValueError(f"generator_arch must be 'unet', 'resize', 'local' or 'tissue', got {generator_arch!r}")
        self.d_a = PatchDiscriminator(chans=disc_chans, num_layers=disc_layers)
        self.d_b = PatchDiscriminator(chans=disc_chans, num_layers=disc_layers)
        self.lambda_cycle = float(lambda_cycle)
        self.lambda_identity = float(lambda_identity)
        self.lambda_structure = float(lambda_structure)
        if not isinstance(source_negatives, bool):
            raise TypeError(f"source_negatives must be a bool, got {describe(source_negatives)}")
        self.source_negatives = source_negatives
        self.pool_a = ImagePool(pool_size, generator)
        self.pool_b = ImagePool(pool_size, generator)

    def generators(self) -> list[nn.Parameter]:
        """Parameters of both generators (for the generator optimiser)."""
        return [*self.g_ab.parameters(), *self.g_ba.parameters()]

    def discriminators(self) -> list[nn.Parameter]:
        """Parameters of both discriminators."""
        return [*self.d_a.parameters(), *self.d_b.parameters()]

    def forward(self, image: torch.Tensor, direction: str = "ab") -> torch.Tensor:
        """Translate ``(B, 1, H, W)`` slices: ``direction`` ``"ab"`` (A -> B) or ``"ba"``."""
        if direction not in ("ab", "ba"):
            raise ValueError(f"direction must be 'ab' or 'ba', got {direction!r}")
        return self.g_ab(image) if direction == "ab" else self.g_ba(image)

    def generator_loss(self, real_a: torch.Tensor, real_b: torch.Tensor):
        """Generator objective on a batch of unpaired ``real_a``, ``real_b`` ``(B, 1, H, W)``.

        Returns:
            ``(loss, parts, fake_a, fake_b)``: the scalar loss, a dict of its detached terms
            (``adv_ab``, ``adv_ba``, ``cycle_a``, ``cycle_b``, ``idt_a``, ``idt_b``), and the
            generated images (for :meth:`discriminator_loss`).
        """
        fake_b = self.g_ab(real_a)
        fake_a = self.g_ba(real_b)
        rec_a = self.g_ba(fake_b)
        rec_b = self.g_ab(fake_a)
        parts = {
            "adv_ab": lsgan_loss(self.d_b(fake_b), True),
            "adv_ba": lsgan_loss(self.d_a(fake_a), True),
            "cycle_a": F.l1_loss(rec_a, real_a),
            "cycle_b": F.l1_loss(rec_b, real_b),
        }
        loss = parts["adv_ab"] + parts["adv_ba"] + self.lambda_cycle * (parts["cycle_a"] + parts["cycle_b"])
        if self.lambda_identity > 0:
            parts["idt_b"] = F.l1_loss(self.g_ab(real_b), real_b)
            parts["idt_a"] = F.l1_loss(self.g_ba(real_a), real_a)
            loss = loss + self.lambda_identity * self.lambda_cycle * (parts["idt_a"] + parts["idt_b"])
        if self.lambda_structure > 0:  # each translation keeps its input's local structure (any polarity)
            parts["struct_ab"] = 1 - local_ncc_squared(real_a, fake_b)
            parts["struct_ba"] = 1 - local_ncc_squared(real_b, fake_a)
            loss = loss + self.lambda_structure * (parts["struct_ab"] + parts["struct_ba"])
        return loss, {k: float(v.detach()) for k, v in parts.items()}, fake_a, fake_b

    def discriminator_loss(self, real_a: torch.Tensor, real_b: torch.Tensor, fake_a: torch.Tensor,
                           fake_b: torch.Tensor) -> torch.Tensor:
        """``0.5 (LS(d_a(a), 1) + LS(d_a(pool_a(fake_a)), 0)) + 0.5 (same for B)`` (fakes detached).

        With ``source_negatives`` (constructor) each discriminator also learns the *other*
        domain's real images as fakes: ``+ 0.5 LS(d_a(b), 0)`` and ``+ 0.5 LS(d_b(a), 0)``.
        """
        fa = self.pool_a.query(fake_a.detach())
        fb = self.pool_b.query(fake_b.detach())
        loss_a = 0.5 * (lsgan_loss(self.d_a(real_a), True) + lsgan_loss(self.d_a(fa), False))
        loss_b = 0.5 * (lsgan_loss(self.d_b(real_b), True) + lsgan_loss(self.d_b(fb), False))
        if self.source_negatives:  # a copy of the input is not a translation (unpaired: no pair is used)
            loss_a = loss_a + 0.5 * lsgan_loss(self.d_a(real_b), False)
            loss_b = loss_b + 0.5 * lsgan_loss(self.d_b(real_a), False)
        return loss_a + loss_b


def crop_axial(volume: torch.Tensor, fraction: Sequence[float] = (0.2, 0.8), axis: int = -1) -> torch.Tensor:
    """Keep the central part of the axial axis (the recipe drops the neck: 20-80 %).

    Args:
        volume: tensor whose ``axis`` is the axial (inferior -> superior) axis, e.g.
            ``(X, Y, Z)`` or ``(B, C, X, Y, Z)`` in RAS order.
        fraction: ``(start, stop)`` fractions of the axis, ``0 <= start < stop <= 1``.
        axis: the axial axis.

    Returns:
        A view ``volume[..., round(start n):round(stop n)]`` along ``axis``.
    """
    if not isinstance(volume, torch.Tensor):
        raise TypeError(f"volume must be a torch.Tensor, got {describe(volume)}")
    if len(fraction) != 2 or not 0.0 <= float(fraction[0]) < float(fraction[1]) <= 1.0:
        raise ValueError(f"fraction must be (start, stop) with 0 <= start < stop <= 1, got {fraction!r}")
    n = volume.shape[axis]
    start, stop = int(round(fraction[0] * n)), max(int(round(fraction[1] * n)), int(round(fraction[0] * n)) + 1)
    return volume.narrow(axis, start, min(stop, n) - start)


def _taper(n: int, overlap: int, dtype: torch.dtype) -> torch.Tensor:
    """1-D blending weights: linear ramps of ``overlap`` samples at both ends, 1 inside."""
    w = torch.ones(n, dtype=dtype)
    if overlap > 0:
        ramp = (torch.arange(1, overlap + 1, dtype=dtype) / (overlap + 1))
        k = min(overlap, n // 2)
        w[:k] = ramp[:k]
        w[n - k:] = torch.minimum(w[n - k:], ramp[:k].flip(0))
    return w


def _starts(n: int, patch: int, step: int) -> list[int]:
    if n <= patch:
        return [0]
    starts = list(range(0, n - patch, step)) + [n - patch]
    return sorted(set(starts))


def _tiles(dims: Sequence[int], patch_size: int, overlap: int) -> tuple[list[int], list[list[int]]]:
    """Validated tiling of a grid ``dims``: per axis the patch size and the patch start indices."""
    check_int("patch_size", patch_size)
    check_int("overlap", overlap, minimum=0)
    if overlap >= patch_size:
        raise ValueError(f"overlap must be smaller than patch_size ({patch_size}), got {overlap}")
    sizes = [min(patch_size, n) for n in dims]
    return sizes, [_starts(n, p, patch_size - overlap) for n, p in zip(dims, sizes)]


def sliding_window_3d(model: nn.Module, volume: torch.Tensor, patch_size: int = 64, overlap: int = 16,
                      progress: bool = False) -> torch.Tensor:
    """Run a 3-D network on a volume of any size by overlapping patches, blended linearly.

    Patches of ``patch_size`` voxels per axis (smaller axes whole) step by
    ``patch_size - overlap``; each prediction is weighted by a separable linear taper over
    ``overlap`` voxels at its borders, and the weighted sum is divided by the summed weights, so
    seams vanish and memory is one patch's activations plus three volumes.

    Args:
        model: maps ``(1, C, d, h, w)`` to ``(1, C', d, h, w)`` (eval mode is the caller's).
        volume: ``(C, D, H, W)`` float tensor.
        patch_size: patch side, voxels.
        overlap: overlap between neighbouring patches, ``0 <= overlap < patch_size``.
        progress: show a tqdm bar over patches.

    Returns:
        ``(C', D, H, W)`` tensor (``volume``'s dtype and device).
    """
    check_image_tensor("volume", volume, 4, "(C, D, H, W)", hint=" (a 3-D volume; this is a 3-D-only path)")
    dims = volume.shape[1:]
    sizes, starts = _tiles(dims, patch_size, overlap)
    out = None
    weight = torch.zeros(dims, dtype=volume.dtype, device=volume.device)
    tapers = [_taper(p, overlap if len(s) > 1 else 0, volume.dtype).to(volume.device) for p, s in zip(sizes, starts)]
    w = tapers[0][:, None, None] * tapers[1][None, :, None] * tapers[2][None, None, :]
    corners = [(a, b, c) for a in starts[0] for b in starts[1] for c in starts[2]]
    if progress:
        from tqdm.auto import tqdm

        corners = tqdm(corners, desc="patches")
    with torch.no_grad():
        for a, b, c in corners:
            region = (slice(a, a + sizes[0]), slice(b, b + sizes[1]), slice(c, c + sizes[2]))
            pred = model(volume[(slice(None), *region)][None])[0]
            if out is None:
                out = torch.zeros((pred.shape[0], *dims), dtype=volume.dtype, device=volume.device)
            out[(slice(None), *region)] += pred.to(volume.dtype) * w
            weight[region] += w
    return out / weight


def translate_slices(model: nn.Module, slices: torch.Tensor, *, flip_average: bool = True,
                     batch_size: int = 16) -> torch.Tensor:
    """Run a 2-D translation network on a stack of slices, optionally averaged with its mirror image.

    With ``flip_average`` the output is ``(f(x) + flip(f(flip(x)))) / 2`` with ``flip`` reversing
    the first spatial axis (``H``: left-right for slices of RAS-ordered axial or coronal
    volumes): the brain is nearly mirror-symmetric, so a mirrored slice looks like the training
    slices (the bundled networks were trained without flips), the two predictions err
    differently and their mean is closer to the truth (+0.75 dB PSNR for T1w -> FLAIR on the
    validation phantoms 100-105: 23.80 vs 23.05 dB). Other symmetries make slices unlike the
    training ones and were worse on the same subjects: adding the anterior-posterior mirror
    (4 flips) 23.60 dB, all 8 flips/rotations 23.29 dB.

    Args:
        model: maps ``(B, C, H, W)`` to ``(B, C', H, W)`` (eval mode is the caller's).
        slices: ``(N, C, H, W)`` float tensor.
        flip_average: average with the mirrored prediction.
        batch_size: slices per forward pass.

    Returns:
        ``(N, C', H, W)`` tensor.
    """
    check_image_tensor("slices", slices, 4, "(N, C, H, W)")
    check_int("batch_size", batch_size)
    outs = []
    with torch.no_grad():
        for start in range(0, slices.shape[0], batch_size):
            chunk = slices[start:start + batch_size]
            out = model(chunk)
            if flip_average:
                out = 0.5 * (out + model(chunk.flip(-2)).flip(-2))
            outs.append(out)
    return torch.cat(outs)


# ----------------------------------------------------------------------------- whole volumes

#: Weight of the 2-D U-Net in :func:`ensemble_volume` (the 3-D ResNet gets ``1 - weight``),
#: chosen on the validation phantom subjects 100-105 (flip-averaged predictions, PSNR over the
#: brain mask after z-scoring) from 0, 0.1, ..., 1: T1w -> FLAIR 24.04 dB at 0.7 vs 23.80 for the
#: U-Net alone (1.0), 21.72 for the ResNet alone (0.0) and 23.83 for 0.5; T1w -> T2w 21.99 dB at
#: 0.7 vs 21.66 / 19.44 / 21.78 (``python scripts/train_heads.py ensemble-weight`` repeats the sweep).
#: Held-out figures: docs/heads.md.
ENSEMBLE_UNET_WEIGHT = 0.7


def _check_volume(volume: object) -> torch.Tensor:
    return check_image_tensor("volume", volume, 3, "(X, Y, Z)", hint=" (a 3-D volume, axial = last axis)")


def resnet3d_volume(model: nn.Module, volume: torch.Tensor, *, flip_average: bool = True, patch_size: int = 64,
                    overlap: int = 16, progress: bool = False) -> torch.Tensor:
    """A 3-D network on a whole ``(X, Y, Z)`` volume by overlapping patches (:func:`sliding_window_3d`).

    With ``flip_average`` the output is averaged with the prediction of the volume mirrored along
    its first axis (left-right in RAS order), mirrored back - as :func:`translate_slices` does for
    slices.

    Args:
        model: maps ``(1, 1, d, h, w)`` to ``(1, 1, d, h, w)`` (eval mode is the caller's).
        volume: ``(X, Y, Z)`` float tensor, normalised as in training.
        flip_average: average with the mirrored prediction.
        patch_size: patch side, voxels.
        overlap: overlap between neighbouring patches.
        progress: tqdm bar over patches.

    Returns:
        ``(X, Y, Z)`` tensor.
    """
    v = _check_volume(volume)[None]
    out = sliding_window_3d(model, v, patch_size=patch_size, overlap=overlap, progress=progress)[0]
    if flip_average:
        mirrored = sliding_window_3d(model, v.flip(1), patch_size=patch_size, overlap=overlap, progress=progress)[0]
        out = 0.5 * (out + mirrored.flip(0))
    return out


def unet_volume(model: nn.Module, volume: torch.Tensor, *, flip_average: bool = True,
                batch_size: int = 16) -> torch.Tensor:
    """A 2-D slice network on every axial slice of an ``(X, Y, Z)`` volume (the last axis, the
    axis the bundled U-Nets were trained on; :func:`translate_slices`, mirrored along ``X`` with
    ``flip_average``).

    Returns:
        ``(X, Y, Z)`` tensor.
    """
    v = _check_volume(volume)
    slices = v.permute(2, 0, 1)[:, None]
    return translate_slices(model, slices, flip_average=flip_average, batch_size=batch_size)[:, 0].permute(1, 2, 0)


def ensemble_volume(unet: nn.Module, resnet: nn.Module, volume: torch.Tensor, *,
                    unet_weight: float = ENSEMBLE_UNET_WEIGHT, flip_average: bool = True, patch_size: int = 64,
                    overlap: int = 16, batch_size: int = 16, progress: bool = False) -> torch.Tensor:
    """Weighted mean of a 2-D U-Net applied slice by slice and a 3-D ResNet applied by patches.

    ``unet_weight * unet_volume(unet, volume) + (1 - unet_weight) * resnet3d_volume(resnet, volume)``:
    both networks predict the target contrast in the same normalised units (trained on the same
    foreground-mean scaled volumes), and their errors differ (the U-Net sees a whole slice but no
    neighbouring slices, the ResNet a 3-D neighbourhood of 11 voxels), so the mean is closer to the
    truth than either (:data:`ENSEMBLE_UNET_WEIGHT`: validation figures). Z-scoring each prediction
    over the foreground first gave the same validation scores (24.01 vs 24.04 dB FLAIR, 22.00 vs
    21.99 T2w), so the outputs are averaged as they are and keep their units.

    Args:
        unet: 2-D network ``(B, 1, H, W) -> (B, 1, H, W)`` (eval mode is the caller's).
        resnet: 3-D network ``(1, 1, d, h, w) -> (1, 1, d, h, w)``.
        volume: ``(X, Y, Z)`` float tensor (axial = last axis), normalised as in training.
        unet_weight: the U-Net's weight, in ``[0, 1]``.
        flip_average: each network's prediction averaged with its left-right mirrored one.
        patch_size: the ResNet's patch side, voxels.
        overlap: the ResNet's patch overlap, voxels.
        batch_size: U-Net slices per forward pass.
        progress: tqdm bar over the ResNet's patches.

    Returns:
        ``(X, Y, Z)`` tensor; memory: three volumes plus one patch's and one slice batch's activations.

    Raises:
        ValueError: ``volume`` not 3-D (a 2-D slice has no 3-D network), ``unet_weight`` outside ``[0, 1]``.
        TypeError: ``volume`` not a floating-point tensor, ``unet_weight`` not a real number.
    """
    _check_volume(volume)
    w = check_number("unet_weight", unet_weight, low=0.0)  # any real number type (numpy too), not a bool
    if w > 1.0:
        raise ValueError(f"unet_weight must be a number in [0, 1], got {w!r}")
    out = unet_volume(unet, volume, flip_average=flip_average, batch_size=batch_size).mul_(w)
    return out.add_(resnet3d_volume(resnet, volume, flip_average=flip_average, patch_size=patch_size, overlap=overlap,
                                    progress=progress), alpha=1.0 - w)


# ----------------------------------------------------------------------------- slice ensembles

#: Weights of the U-Nets of the bundled T1w -> FLAIR slice ensemble (:class:`SliceEnsemble`, in
#: this order: ``synthesis-unet-t1w-flair``, 8 channels, seed 0; ``synthesis-unet-t1w-flair-c12``,
#: 12 channels, seed 1; ``synthesis-unet-t1w-flair-c12s2``, 12 channels, seed 2), chosen on the
#: validation phantom subjects 100-105 (flip-averaged, PSNR over the brain mask after z-scoring)
#: over a 0.1 grid of the simplex: 24.27 dB vs 23.80 / 23.82 / 23.92 for each alone and 24.10 for
#: the first two at 0.5 / 0.5; the top weightings are all near equal weights (within 0.02 dB).
#: ``python scripts/train_heads.py slice-weight`` repeats the sweep. Inside the volume ensemble
#: with the 3-D ResNet it raised validation from 24.04 to 24.33 dB at :data:`ENSEMBLE_UNET_WEIGHT`
#: 0.7 (24.38 at 0.8; 0.7 kept, the weight shared with T1w -> T2w, which has one U-Net).
#: Held-out figures: docs/heads.md.
SLICE_ENSEMBLE_WEIGHTS = (0.3, 0.3, 0.4)


class SliceEnsemble(nn.Module):
    """Weighted mean of 2-D slice networks that predict the same contrast in the same units.

    ``forward(x) = sum_k weights[k] * models[k](x)``: independently trained networks err
    differently, so their mean is closer to the truth than either. The result is linear in the
    members' outputs, so :func:`translate_slices` with ``flip_average`` on an ensemble equals the
    weighted mean of each member's own flip-averaged prediction, and an ensemble can stand wherever
    one slice network does (:func:`unet_volume`, :func:`ensemble_volume`).

    Args:
        models: a list of the member networks, each ``(B, C, H, W) -> (B, C', H, W)``.
        weights: a list, one per member, each >= 0, summing to 1 (default: equal weights).

    Raises:
        ValueError: no members, a weight count different from the member count, a negative or
            NaN weight, weights not summing to 1, members returning different shapes.
        TypeError: a member that is not an ``nn.Module``, a weight that is not a real number.

    Example:
        >>> a, b = UnetSynthesizer(chans=4, num_pool_layers=2), UnetSynthesizer(chans=6, num_pool_layers=2)
        >>> SliceEnsemble([a, b], [0.6, 0.4])(torch.zeros(1, 1, 20, 24)).shape
        torch.Size([1, 1, 20, 24])
    """

    def __init__(self, models: Sequence[nn.Module], weights: Sequence[float] | None = None) -> None:
        super().__init__()
        if not isinstance(models, (list, tuple, nn.ModuleList)) or len(models) == 0:
            raise ValueError(f"models must be a non-empty list of networks, got {describe(models)}")
        for k, m in enumerate(models):
            if not isinstance(m, nn.Module):
                raise TypeError(f"models[{k}] must be a torch.nn.Module, got {describe(m)}")
        if weights is None:
            weights = [1.0 / len(models)] * len(models)
        if not isinstance(weights, (list, tuple)) or len(weights) != len(models):
            raise ValueError(f"weights must be a sequence of {len(models)} numbers (one per model), got {describe(weights)}")
        w = [check_number(f"weights[{k}]", v, low=0.0) for k, v in enumerate(weights)]
        if abs(sum(w) - 1.0) > 1e-6:
            raise ValueError(f"weights must sum to 1, got {w} (sum {sum(w)!r})")
        self.models = nn.ModuleList(models)
        self.weights = tuple(float(v) for v in w)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> the weighted mean of the members' outputs."""
        out = None
        for k, (model, w) in enumerate(zip(self.models, self.weights)):
            pred = model(image)
            if out is None:
                out = pred * w
            elif pred.shape != out.shape:
                raise ValueError(f"models[{k}] returned shape {tuple(pred.shape)}, models[0] {tuple(out.shape)}")
            else:
                out = out + pred * w
        return out
