"""U-Net (Ronneberger et al. 2015) and the normalised complex U-Net of the E2E VarNet.

The modules have fastMRI's constructor arguments and parameter names
(``down_sample_layers.0.layers.0.weight``, ...), so a fastMRI state dict loads unchanged
and gives the same output.  The forward pass is re-written for speed and memory:

* activations of images of 128 x 128 pixels or more are kept in ``channels_last`` memory
  format.  On the CPU oneDNN runs the convolutions with few channels (2, 8, 18) several
  times faster in that layout than in NCHW, where the channels are padded to blocks of 8 or
  16 (small images stay NCHW, see :data:`CHANNELS_LAST_MIN_PIXELS`);
* instance normalisation on ``channels_last`` maps is computed in two passes (mean, then
  variance of the centred values) in float32, exact to float32 rounding (the fused
  group-norm kernel for ``channels_last`` computes ``E[x^2] - E[x]^2`` and loses about 5
  digits when the mean is large); NCHW maps use the fused group-norm kernel with one group
  per channel, twice as fast as ``instance_norm``.  U-Nets whose channel counts are
  multiples of 16 keep NCHW input NCHW;
* without autograd (``torch.no_grad`` / ``torch.inference_mode``) the normalisation and the
  activation run in place, so a block keeps one feature map alive instead of three;
* the complex <-> channel conversion of :class:`NormUnet` for a single complex channel is a
  free view: the ``(B, 1, H, W, 2)`` memory order *is* the ``channels_last`` order of
  ``(B, 2, H, W)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from recon.ops._checks import check_complex_view, check_int, check_tensor, describe

__all__ = ["Unet", "NormUnet", "ConvBlock", "TransposeConvBlock"]

_NEGATIVE_SLOPE = 0.2
_EPS = 1e-5  # nn.InstanceNorm2d's default
# Images with at least this many pixels run in channels_last.  Smaller ones stay NCHW:
# PyTorch's CPU convolution falls back to its slow im2col kernel for small single-image
# inputs, and that kernel is much slower on channels_last tensors.
CHANNELS_LAST_MIN_PIXELS = 128 * 128


def preferred_memory_format(image: torch.Tensor, chans: int | None = None) -> torch.memory_format:
    """``channels_last`` for images of at least :data:`CHANNELS_LAST_MIN_PIXELS` pixels.

    With ``chans`` (the first conv's output channels) a multiple of 16, an NCHW image stays
    NCHW: oneDNN's blocked NCHW layout then wastes nothing, and the fused NCHW normalisation
    is faster. An image that arrives in ``channels_last`` only (the free complex view of
    :class:`NormUnet`) stays there: converting it and the output back costs more than the
    layout gains (the bundled VarNet, widths 16 / 32: 11 % less time per call, one thread).
    """
    arrives_channels_last = image.is_contiguous(memory_format=torch.channels_last) and not image.is_contiguous()
    if chans is not None and chans % 16 == 0 and not arrives_channels_last:
        return torch.contiguous_format
    if image.shape[-1] * image.shape[-2] >= CHANNELS_LAST_MIN_PIXELS:
        return torch.channels_last
    return torch.contiguous_format


def instance_norm_lrelu(x: torch.Tensor) -> torch.Tensor:
    """Instance normalisation (no affine, eps 1e-5) followed by LeakyReLU(0.2).

    NCHW-contiguous input goes through the fused group-norm kernel with one group per channel
    (the same maths as ``instance_norm``, about twice as fast on the CPU).  Other layouts
    (``channels_last``) use two passes, mean and then the variance of the centred values,
    because the fused channels-last kernel computes ``E[x^2] - E[x]^2``.  Statistics are in
    float32 under autocast; the result has the dtype of ``x``.  Works in place on a temporary
    when autograd is off.

    Args:
        x: ``(N, C, H, W)`` feature map (any memory format).

    Returns:
        ``leaky_relu((x - mean) / sqrt(var + eps))`` with per-(n, c) mean and biased variance.
    """
    low_precision = x.dtype in (torch.float16, torch.bfloat16)
    if x.is_contiguous():
        out = F.group_norm(x.float() if low_precision else x, x.shape[1], eps=_EPS)
    else:
        stats_dtype = torch.float32 if low_precision else x.dtype
        mean = x.mean(dim=(2, 3), keepdim=True, dtype=stats_dtype)
        centred = x - mean
        var = centred.square().mean(dim=(2, 3), keepdim=True)
        rstd = torch.rsqrt(var + _EPS)
        out = centred * rstd if torch.is_grad_enabled() else centred.mul_(rstd)
    if out.dtype != x.dtype:
        out = out.to(x.dtype)
    return F.leaky_relu_(out, _NEGATIVE_SLOPE)


def _dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    if p > 0.0 and training:
        return F.dropout2d(x, p, training=True)
    return x


class ConvBlock(nn.Module):
    """Two (3x3 conv, instance norm, LeakyReLU(0.2), Dropout2d) layers (fastMRI's ``ConvBlock``).

    Args:
        in_chans: input channels.
        out_chans: output channels.
        drop_prob: dropout probability.
    """

    def __init__(self, in_chans: int, out_chans: int, drop_prob: float):
        super().__init__()
        self.in_chans = in_chans
        self.out_chans = out_chans
        self.drop_prob = drop_prob
        # Kept as fastMRI's Sequential so that parameter names match (layers.0 / layers.4).
        self.layers = nn.Sequential(
            nn.Conv2d(in_chans, out_chans, kernel_size=3, padding=1, bias=False),
            nn.InstanceNorm2d(out_chans),
            nn.LeakyReLU(negative_slope=_NEGATIVE_SLOPE, inplace=True),
            nn.Dropout2d(drop_prob),
            nn.Conv2d(out_chans, out_chans, kernel_size=3, padding=1, bias=False),
            nn.InstanceNorm2d(out_chans),
            nn.LeakyReLU(negative_slope=_NEGATIVE_SLOPE, inplace=True),
            nn.Dropout2d(drop_prob),
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(N, in_chans, H, W)`` -> ``(N, out_chans, H, W)``."""
        x = F.conv2d(image, self.layers[0].weight, padding=1)
        x = _dropout(instance_norm_lrelu(x), self.drop_prob, self.training)
        x = F.conv2d(x, self.layers[4].weight, padding=1)
        return _dropout(instance_norm_lrelu(x), self.drop_prob, self.training)


class TransposeConvBlock(nn.Module):
    """2x2 stride-2 transposed conv, instance norm, LeakyReLU(0.2) (fastMRI's ``TransposeConvBlock``).

    Args:
        in_chans: input channels.
        out_chans: output channels.
    """

    def __init__(self, in_chans: int, out_chans: int):
        super().__init__()
        self.in_chans = in_chans
        self.out_chans = out_chans
        self.layers = nn.Sequential(
            nn.ConvTranspose2d(in_chans, out_chans, kernel_size=2, stride=2, bias=False),
            nn.InstanceNorm2d(out_chans),
            nn.LeakyReLU(negative_slope=_NEGATIVE_SLOPE, inplace=True),
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(N, in_chans, H, W)`` -> ``(N, out_chans, 2H, 2W)``."""
        return instance_norm_lrelu(F.conv_transpose2d(image, self.layers[0].weight, stride=2))


class Unet(nn.Module):
    """U-Net with instance norm and LeakyReLU, fastMRI's architecture and parameter names.

    ``num_pool_layers`` average-pool down-samplings with :class:`ConvBlock` s whose channels
    double (``chans, 2 chans, ...``), a bottleneck block, then transposed-conv up-samplings
    with skip connections and a final 1x1 conv.  Odd sizes are handled like fastMRI (the
    up-sampled map is reflect-padded by one pixel on the right / bottom).

    Args:
        in_chans: input channels.
        out_chans: output channels.
        chans: channels of the first conv layer.
        num_pool_layers: number of down- and up-sampling layers.
        drop_prob: dropout probability.
        level_chans: channels of each resolution level, finest first (``num_pool_layers``
            positive ints; the bottleneck has twice the last). Default ``None``: fastMRI's
            doubling, ``chans * 2**k``. Given, it overrides ``chans`` (which becomes
            ``level_chans[0]``); e.g. ``[16, 16, 32, 64]`` widens the full-resolution levels
            of a ``chans=8`` U-Net without touching its coarse ones. Not a fastMRI option.

    Example:
        >>> net = Unet(in_chans=1, out_chans=1, chans=8, num_pool_layers=2)
        >>> net(torch.randn(2, 1, 32, 30)).shape
        torch.Size([2, 1, 32, 30])
        >>> Unet(in_chans=2, out_chans=2, num_pool_layers=2, level_chans=[16, 16]).level_chans
        (16, 16)
    """

    def __init__(
        self,
        in_chans: int,
        out_chans: int,
        chans: int = 32,
        num_pool_layers: int = 4,
        drop_prob: float = 0.0,
        level_chans: Sequence[int] | None = None,
    ):
        super().__init__()
        for name, value in (("in_chans", in_chans), ("out_chans", out_chans), ("chans", chans),
                            ("num_pool_layers", num_pool_layers)):
            check_int(name, value)
        if not 0.0 <= float(drop_prob) < 1.0:
            raise ValueError(f"drop_prob must be in [0, 1), got {drop_prob!r}")
        widths = _level_chans(chans, num_pool_layers, level_chans)
        self.in_chans = in_chans
        self.out_chans = out_chans
        self.chans = widths[0]
        self.level_chans = widths
        self.num_pool_layers = num_pool_layers
        self.drop_prob = drop_prob

        self.down_sample_layers = nn.ModuleList([ConvBlock(in_chans, widths[0], drop_prob)])
        for k in range(1, num_pool_layers):
            self.down_sample_layers.append(ConvBlock(widths[k - 1], widths[k], drop_prob))
        below = 2 * widths[-1]  # the bottleneck's channels
        self.conv = ConvBlock(widths[-1], below, drop_prob)

        self.up_conv = nn.ModuleList()
        self.up_transpose_conv = nn.ModuleList()
        for k in reversed(range(num_pool_layers)):
            ch = widths[k]
            self.up_transpose_conv.append(TransposeConvBlock(below, ch))
            if k:
                self.up_conv.append(ConvBlock(ch * 2, ch, drop_prob))
            else:
                self.up_conv.append(
                    nn.Sequential(
                        ConvBlock(ch * 2, ch, drop_prob),
                        nn.Conv2d(ch, out_chans, kernel_size=1, stride=1),
                    )
                )
            below = ch

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Apply the U-Net.

        Args:
            image: ``(N, in_chans, H, W)``, any memory format.

        Returns:
            ``(N, out_chans, H, W)``, in ``channels_last`` memory format for large images.

        Raises:
            TypeError: if ``image`` is not a floating-point tensor.
            ValueError: if ``image`` is not 4-D with ``in_chans`` channels.
        """
        check_tensor("image", image)
        if image.ndim != 4 or image.shape[1] != self.in_chans:
            raise ValueError(
                f"image must be (N, {self.in_chans}, H, W), got {describe(image)}"
            )
        if not image.is_floating_point():
            raise TypeError(f"image must be a floating-point tensor, got {describe(image)}")
        return self._forward(image)

    def _forward(self, image: torch.Tensor) -> torch.Tensor:
        output = image.contiguous(memory_format=preferred_memory_format(image, self.chans))
        stack = []
        for layer in self.down_sample_layers:
            output = layer(output)
            stack.append(output)
            output = F.avg_pool2d(output, kernel_size=2, stride=2, padding=0)

        output = self.conv(output)

        last = len(self.up_conv) - 1
        for i, (transpose_conv, conv) in enumerate(zip(self.up_transpose_conv, self.up_conv)):
            skip = stack.pop()
            output = transpose_conv(output)
            # Reflect-pad right / bottom by one when the skip connection is odd-sized.
            pad_w = 1 if output.shape[-1] != skip.shape[-1] else 0
            pad_h = 1 if output.shape[-2] != skip.shape[-2] else 0
            if pad_w or pad_h:
                output = F.pad(output, [0, pad_w, 0, pad_h], mode="reflect")
            output = torch.cat([output, skip], dim=1)
            del skip
            if i == last:
                output = conv[0](output)
                output = F.conv2d(output, conv[1].weight, conv[1].bias)
            else:
                output = conv(output)
        return output


def _level_chans(chans: int, num_pool_layers: int, level_chans: Sequence[int] | None) -> tuple[int, ...]:
    """The channels of each level of a :class:`Unet`: ``level_chans`` checked, or ``chans * 2**k``."""
    if level_chans is None:
        return tuple(chans * 2**k for k in range(num_pool_layers))
    if isinstance(level_chans, (str, bytes)) or not isinstance(level_chans, Sequence):
        raise TypeError(f"level_chans must be a sequence of ints or None, got {describe(level_chans)}")
    if len(level_chans) != num_pool_layers or not all(
        isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in level_chans
    ):
        raise ValueError(
            f"level_chans must be {num_pool_layers} positive ints (one per level, num_pool_layers="
            f"{num_pool_layers}), got {list(level_chans)!r}"
        )
    return tuple(int(c) for c in level_chans)


def _pad_sizes(size: int) -> tuple[int, int, int]:
    """Zero-padding ``(before, after, padded)`` of a size to the next multiple of 16."""
    padded = ((size - 1) | 15) + 1
    return math.floor((padded - size) / 2), math.ceil((padded - size) / 2), padded


def _expand_groups(stat: torch.Tensor, c: int) -> torch.Tensor:
    """Per-group ``(B, 2, 1, 1)`` statistic -> per-channel ``(B, 2c, 1, 1)``."""
    return stat if c == 1 else stat.repeat_interleave(c, dim=1)


class NormUnet(nn.Module):
    """U-Net on complex images with per-sample normalisation (fastMRI's ``NormUnet``).

    The ``C`` complex channels become ``2C`` real channels (all real parts, then all
    imaginary parts); each of the two groups is normalised by its mean and (unbiased)
    standard deviation, zero-padded to a multiple of 16, passed through the :class:`Unet`,
    cropped, and un-normalised.

    Args:
        chans: channels of the first conv layer of the U-Net.
        num_pools: number of down- and up-sampling layers.
        in_chans: real input channels (``2 x`` complex channels).
        out_chans: real output channels.
        drop_prob: dropout probability.
        level_chans: channels of each level of the U-Net (see :class:`Unet`); default the
            doubling ``chans * 2**k``.

    Example:
        >>> net = NormUnet(chans=8, num_pools=2)
        >>> net(torch.randn(2, 1, 40, 36, 2)).shape
        torch.Size([2, 1, 40, 36, 2])
    """

    def __init__(
        self,
        chans: int,
        num_pools: int,
        in_chans: int = 2,
        out_chans: int = 2,
        drop_prob: float = 0.0,
        level_chans: Sequence[int] | None = None,
    ):
        super().__init__()
        for name, value in (("in_chans", in_chans), ("out_chans", out_chans)):
            if not isinstance(value, int) or value < 2 or value % 2:
                raise ValueError(f"{name} must be a positive even int (2 x complex channels), got {value!r}")
        self.unet = Unet(
            in_chans=in_chans,
            out_chans=out_chans,
            chans=chans,
            num_pool_layers=num_pools,
            drop_prob=drop_prob,
            level_chans=level_chans,
        )

    @staticmethod
    def complex_to_chan_dim(x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W, 2)`` -> ``(B, 2C, H, W)``: real parts of all channels, then imaginary parts.

        For ``C == 1`` this is a view in ``channels_last`` memory format (no copy).
        """
        b, c, h, w, _ = x.shape
        if c == 1:
            return x.squeeze(1).permute(0, 3, 1, 2)
        return x.permute(0, 4, 1, 2, 3).reshape(b, 2 * c, h, w)

    @staticmethod
    def chan_complex_to_last_dim(x: torch.Tensor) -> torch.Tensor:
        """``(B, 2C, H, W)`` -> ``(B, C, H, W, 2)`` (the inverse of :meth:`complex_to_chan_dim`)."""
        b, c2, h, w = x.shape
        c = c2 // 2
        return x.reshape(b, 2, c, h, w).permute(0, 2, 3, 4, 1).contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the normalised U-Net.

        Args:
            x: complex images ``(B, in_chans / 2, H, W, 2)``.

        Returns:
            ``(B, out_chans / 2, H, W, 2)`` (float32 under autocast).

        Raises:
            TypeError: if ``x`` is not a real floating-point tensor.
            ValueError: if ``x`` is not ``(B, in_chans / 2, H, W, 2)``.
        """
        check_complex_view("x", x, min_ndim=5)
        if x.ndim != 5 or 2 * x.shape[1] != self.unet.in_chans:
            raise ValueError(
                f"x must be (B, {self.unet.in_chans // 2}, H, W, 2), got {describe(x)}"
            )
        return self._forward(x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w, _ = x.shape
        chan = self.complex_to_chan_dim(x)
        # Group statistics over (complex channels, H, W) for the real and the imaginary group.
        grouped = x.permute(0, 4, 1, 2, 3).reshape(b, 2, c * h * w)
        std, mean = torch.std_mean(grouped, dim=2)
        std = std.view(b, 2, 1, 1)
        mean = mean.view(b, 2, 1, 1)
        normed = (chan - _expand_groups(mean, c)) / _expand_groups(std, c)

        h_before, h_after, h_mult = _pad_sizes(h)
        w_before, w_after, w_mult = _pad_sizes(w)
        padded = h_mult != h or w_mult != w
        if padded:
            normed = F.pad(normed, [w_before, w_after, h_before, h_after])

        out = self.unet._forward(normed)
        del normed

        if padded:
            out = out[..., h_before : h_mult - h_after, w_before : w_mult - w_after]
        if out.dtype != x.dtype:
            out = out.to(x.dtype)
        c_out = out.shape[1] // 2
        out = torch.addcmul(_expand_groups(mean, c_out), out, _expand_groups(std, c_out))  # x std + mean
        if out.shape[1] == 2:
            # channels_last (B, 2, H, W) is the memory order of (B, 1, H, W, 2).
            return out.permute(0, 2, 3, 1).unsqueeze(1).contiguous()
        return self.chan_complex_to_last_dim(out)
