"""A CycleGAN generator that cannot move or invent structure: a learned intensity map with local context.

:class:`TissueMapSynthesizer` (``CycleGAN(generator_arch="tissue")``,
``recon train --task cyclegan --arch tissue``) is built for unpaired translation between MR
contrasts of the same anatomy (T1w <-> T2w), where the mapping is, tissue by tissue, an intensity
transform that depends on little context: white matter bright -> dark, CSF dark -> bright, air
stays dark. A U-Net generator, with its large receptive field, fools the discriminator sooner with
invented anatomy (blotchy grey/white texture, half-inverted ventricles) than it learns that
transform; a plain stack of convolutions started near the copy of its input stays near it, because
every continuous path from an increasing to a decreasing intensity map crosses outputs that the
cycle loss punishes. This generator is

``out(x) = sum_k hat_k(x) v_k + context(x)``

* a **look-up table of the input intensity**: ``knots`` knot values ``v_k`` at the evenly
  spaced intensities ``t_k = k * max_intensity / (knots - 1)``; ``hat_k`` are the piecewise-linear
  hat functions on those knots (the input is clamped to ``[0, max_intensity]``), so the term is
  the linear interpolation of the table at every pixel. Each knot is one parameter: the
  adversarial gradient moves the output level of each intensity band (each tissue) on its own,
  and no band has to pass the others through a deep network's weights. The values are stored
  divided by ``gain`` (10), so that Adam's per-step change moves them ``gain`` times faster than
  the convolution weights (an equalised learning rate for these few parameters); ``init``
  ``"identity"`` (default) starts at ``v_k = t_k`` (the copy of the input), ``"constant"`` at
  ``v_k = 1`` (a flat grey output: with both generators flat the cycle gradient vanishes at the
  start). Each knot moves on its own, so the copy is no trap for this generator as it is for
  convolutional ones; from the flat start the discriminators sometimes win before the tables
  have any contrast for their gradient to act on (1 of 4 seeds of the bundled recipe on the
  validation subjects, against 0 of 4 from the copy: docs/heads.md);
* a **context correction**: 3x3 convolutions with the given ``dilations`` (LeakyReLU 0.2,
  replicate padding, ``chans`` channels; the input and its hat-basis encoding as channels) and a
  1x1 convolution initialised to zero (the generator starts as the pure table). Its receptive
  field is ``1 + 2 sum(dilations)`` pixels wide (default ``(1, 2, 4, 1)``: 17 x 17, about
  34 mm at the 2 mm of the bundled phantoms), enough to tell a dark CSF pixel inside the brain from
  air or bone and to follow partial volume at tissue borders, too small to draw anatomy. No
  down-sampling, so no checkerboard and no shift. ``dilations=()`` leaves the pure table (a
  pointwise map; receptive field 1).

Networks only: tensors in, tensors out; the caller normalises intensities (the training task and
:func:`recon.synthesize` divide each volume by its foreground mean, so tissue sits near 1).

Example:
    >>> import torch
    >>> net = TissueMapSynthesizer(chans=8)
    >>> net(torch.rand(2, 1, 30, 34)).shape
    torch.Size([2, 1, 30, 34])
    >>> net.receptive_field
    17
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from recon.heads._checks import check_image_tensor
from recon.ops._checks import check_int, check_number, describe

__all__ = ["TissueMapSynthesizer", "hat_basis"]


def hat_basis(image: torch.Tensor, knots: int, max_intensity: float) -> torch.Tensor:
    """Piecewise-linear (hat) encoding of intensities: ``(B, 1, H, W)`` -> ``(B, knots, H, W)``.

    Channel ``k`` is ``max(0, 1 - |x - t_k| / dt)`` with ``t_k = k dt``, ``dt = max_intensity /
    (knots - 1)``, after clamping ``x`` to ``[0, max_intensity]``: at every pixel at most two
    channels are non-zero and they sum to 1, so ``sum_k hat_k(x) v_k`` is the linear interpolation
    of the table ``v`` at ``x``.
    """
    dt = max_intensity / (knots - 1)
    t = torch.arange(knots, dtype=image.dtype, device=image.device).view(1, knots, 1, 1) * dt
    x = image.clamp(0.0, max_intensity)
    return (1.0 - (x - t).abs() / dt).clamp(min=0.0)


class TissueMapSynthesizer(nn.Module):
    """Learned intensity look-up table plus a small dilated-convolution context correction.

    See the module docstring for the design. ``(B, 1, H, W)`` -> ``(B, 1, H, W)``, any ``H, W``.

    Args:
        chans: channels of the context convolutions.
        knots: knots of the intensity table (``>= 2``).
        max_intensity: intensity of the last knot (inputs above it are clamped), in the
            caller's units (foreground-mean units in recon: 3 covers brain tissue, CSF and most
            of the scalp fat of the phantoms).
        dilations: dilation of each 3x3 context convolution (each ``>= 1``); ``()`` for no
            context (a pointwise map).
        init: ``"identity"`` (``v_k = t_k``) or ``"constant"`` (every knot 1).
        gain: the knot values are ``gain x`` the stored parameters.

    Raises:
        ValueError / TypeError: a bad argument (named), or (in :meth:`forward`) an input that
            is not a ``(B, 1, H, W)`` floating-point tensor.

    Example:
        >>> TissueMapSynthesizer(dilations=())(torch.zeros(1, 1, 8, 8)).shape
        torch.Size([1, 1, 8, 8])
    """

    in_chans = 1
    out_chans = 1

    def __init__(self, chans: int = 16, knots: int = 49, max_intensity: float = 3.0,
                 dilations: Sequence[int] = (1, 2, 4, 1), init: str = "identity", gain: float = 10.0) -> None:
        super().__init__()
        check_int("chans", chans)
        check_int("knots", knots, minimum=2)
        max_intensity = check_number("max_intensity", max_intensity, low=0.0, strict=True)
        gain = check_number("gain", gain, low=0.0, strict=True)
        if isinstance(dilations, (str, bytes)) or not isinstance(dilations, Sequence):
            raise TypeError(f"dilations must be a sequence of ints >= 1, got {describe(dilations)}")
        for d in dilations:
            check_int("dilations", d)
        if init not in ("constant", "identity"):
            raise ValueError(f"init must be 'constant' or 'identity', got {init!r}")
        self.chans, self.knots, self.max_intensity = chans, knots, float(max_intensity)
        self.dilations, self.init, self.gain = tuple(int(d) for d in dilations), init, float(gain)
        t = torch.linspace(0.0, self.max_intensity, knots)
        self.values = nn.Parameter((torch.ones(knots) if init == "constant" else t) / self.gain)
        layers: list[nn.Module] = []
        ch = 1 + knots
        for d in self.dilations:
            layers += [nn.Conv2d(ch, chans, 3, padding=d, dilation=d, padding_mode="replicate"), nn.LeakyReLU(0.2)]
            ch = chans
        self.context = nn.Sequential(*layers) if layers else None
        self.out = nn.Conv2d(chans, 1, 1) if layers else None
        if self.out is not None:  # start as the pure table
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    @property
    def receptive_field(self) -> int:
        """Width in pixels of the square of input pixels one output pixel depends on."""
        return 1 + 2 * sum(self.dilations)

    def table(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(t_k, v_k)``: the knot intensities and the learned output values (detached)."""
        t = torch.linspace(0.0, self.max_intensity, self.knots)
        return t, (self.values.detach() * self.gain).cpu()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, 1, H, W)`` -> ``(B, 1, H, W)``."""
        check_image_tensor("image", image, 4, "(B, 1, H, W)", hint=" (TissueMapSynthesizer works on 2-D slices)")
        if image.shape[1] != 1:
            raise ValueError(f"image must have 1 channel, got shape {tuple(image.shape)}")
        basis = hat_basis(image, self.knots, self.max_intensity)
        out = torch.einsum("bkhw,k->bhw", basis, self.values * self.gain)[:, None]
        if self.context is not None:
            out = out + self.out(self.context(torch.cat([image, basis], 1)))
        return out
