"""End-to-end variational network (Sriram et al., MICCAI 2020), fastMRI-compatible.

:class:`VarNet`, :class:`VarNetBlock` and :class:`SensitivityModel` have fastMRI's constructor
arguments, defaults, forward signatures and parameter names: an official fastMRI checkpoint
loads with ``load_state_dict`` (or :func:`recon.train.load_model`) and gives the same output.

The cascade is ``k <- k - m (k - k0) w - F S NormUnet(sum_c conj(S_c) F^-1 k_c)``; the model
returns ``rss(|F^-1 k|)`` over coils, ``(B, H, W)``.

Differences from fastMRI that do not change the numbers (float32 rounding only):

* the centred FFTs are :func:`recon.ops.fft2c` / :func:`recon.ops.ifft2c` (sign modulation
  instead of rolls);
* the coil combination and expansion are :func:`recon.ops.sens_reduce` /
  :func:`recon.ops.sens_expand` (one complex multiply eagerly, real arithmetic under
  ``torch.compile``), the soft data consistency :func:`recon.ops.varnet_soft_dc`;
* the centre of k-space for the sensitivity estimate is selected with one ``torch.where``
  over a column mask instead of a Python loop over the batch;
* optional gradient checkpointing (``checkpoint_cascades=True``) recomputes each cascade and
  the sensitivity U-Net (coil by coil) in the backward pass: the activation memory of a
  training step drops to that of one cascade;
* under autocast the U-Nets run in reduced precision while k-space, FFTs, sensitivity maps
  and normalisation statistics stay in float32.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint as _checkpoint

from recon.models._kspace import LowFrequencies, check_kspace_and_mask, low_frequency_columns
from recon.models.unet import NormUnet
from recon.ops import coils
from recon.ops._checks import check_int, describe
from recon.ops.consistency import varnet_soft_dc
from recon.ops.fft import ifft2c

__all__ = ["VarNet", "VarNetBlock", "SensitivityModel"]

#: without autograd, the sensitivity U-Net runs on groups of coil images of at most this many
#: real values (bounded activation memory on brain-size multi-coil slices)
SENS_CHUNK_ELEMENTS = 1 << 21


class SensitivityModel(nn.Module):
    """Coil sensitivity estimation from the centre of k-space (fastMRI's ``SensitivityModel``).

    The fully sampled centre of each coil's k-space is transformed to the image domain, each
    coil image goes through a :class:`NormUnet`, and the result is divided by its
    root-sum-of-squares over coils.

    Args:
        chans: channels of the first conv layer of the U-Net.
        num_pools: number of down- and up-sampling layers.
        in_chans: real input channels of the U-Net (2).
        out_chans: real output channels of the U-Net (2).
        drop_prob: dropout probability.
        mask_center: keep only the centre columns of k-space before the estimate.
    """

    def __init__(
        self,
        chans: int,
        num_pools: int,
        in_chans: int = 2,
        out_chans: int = 2,
        drop_prob: float = 0.0,
        mask_center: bool = True,
    ):
        super().__init__()
        self.mask_center = mask_center
        self.norm_unet = NormUnet(
            chans, num_pools, in_chans=in_chans, out_chans=out_chans, drop_prob=drop_prob
        )
        # Set by VarNet / CascadeNet: recompute the U-Net coil by coil in the backward pass.
        self.checkpoint_coils = False

    def get_pad_and_num_low_freqs(
        self, mask: torch.Tensor, num_low_frequencies: LowFrequencies = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """fastMRI's ``(pad, num_low_freqs)`` ``(B,)`` for ``mask`` ``(B, 1, 1, W, 1)``."""
        return low_frequency_columns(mask, num_low_frequencies, mask.shape[-2])

    def forward(
        self,
        masked_kspace: torch.Tensor,
        mask: torch.Tensor,
        num_low_frequencies: LowFrequencies = None,
    ) -> torch.Tensor:
        """Estimate normalised sensitivity maps.

        Args:
            masked_kspace: ``(B, C, H, W, 2)`` under-sampled k-space.
            mask: bool ``(B, 1, 1, W, 1)`` sampling mask.
            num_low_frequencies: number of fully sampled centre columns (int or ``(B,)``);
                ``None`` or 0 infers it from ``mask``.

        Returns:
            Sensitivity maps ``(B, C, H, W, 2)``, with ``sum_c |S_c|^2 = 1`` per pixel.

        Raises:
            TypeError, ValueError: for a malformed ``masked_kspace``, ``mask`` or
                ``num_low_frequencies``.
        """
        mask = check_kspace_and_mask(masked_kspace, mask)
        return self._forward(masked_kspace, mask, num_low_frequencies)

    def _forward(
        self, masked_kspace: torch.Tensor, mask: torch.Tensor, num_low_frequencies: LowFrequencies
    ) -> torch.Tensor:
        b, c, h, w, _ = masked_kspace.shape
        if self.mask_center:
            pad, low = low_frequency_columns(mask.expand(b, -1, -1, -1, -1), num_low_frequencies, w)
            cols = torch.arange(w, device=masked_kspace.device)
            keep = (cols >= pad[:, None]) & (cols < (pad + low)[:, None])
            zero = torch.zeros((), dtype=masked_kspace.dtype, device=masked_kspace.device)
            masked_kspace = torch.where(keep.view(b, 1, 1, w, 1), masked_kspace, zero)
        images = ifft2c(masked_kspace).view(b * c, 1, h, w, 2)
        if self.checkpoint_coils and torch.is_grad_enabled() and self.training:
            maps = torch.cat(
                [
                    _checkpoint(self.norm_unet._forward, images[i : i + 1], use_reentrant=False)
                    for i in range(b * c)
                ]
            )
        elif not torch.is_grad_enabled() and images.numel() > SENS_CHUNK_ELEMENTS:
            # inference: coil images in groups of about SENS_CHUNK_ELEMENTS values, so that the
            # U-Net's activations stay small on large multi-coil slices (each image is normalised
            # and processed on its own, so the result is the same)
            step = max(1, SENS_CHUNK_ELEMENTS // images[0].numel())
            maps = torch.cat([self.norm_unet._forward(images[i : i + step]) for i in range(0, b * c, step)])
        else:
            maps = self.norm_unet._forward(images)
        del images
        maps = maps.view(b, c, h, w, 2)
        norm = maps.square().sum(dim=(1, 4), keepdim=True).sqrt()
        if torch.is_grad_enabled():
            return maps / norm
        return maps.div_(norm)


class VarNetBlock(nn.Module):
    """One VarNet cascade: soft data consistency plus a learned image-domain regulariser.

    ``k_out = k - m (k - k0) w - F(S model(sum_c conj(S_c) F^-1 k_c))`` with a learnable
    scalar ``dc_weight`` ``w`` (initialised to 1).

    Args:
        model: image-domain network ``(B, 1, H, W, 2) -> (B, 1, H, W, 2)``, e.g. a
            :class:`~recon.models.NormUnet`.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {describe(model)}")
        self.model = model
        self.dc_weight = nn.Parameter(torch.ones(1))

    def sens_expand(self, x: torch.Tensor, sens_maps: torch.Tensor) -> torch.Tensor:
        """``(B, 1, H, W, 2)`` image -> ``(B, C, H, W, 2)`` coil k-space (:func:`recon.ops.sens_expand`)."""
        return coils.sens_expand(x, sens_maps)

    def sens_reduce(self, x: torch.Tensor, sens_maps: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W, 2)`` coil k-space -> ``(B, 1, H, W, 2)`` image (:func:`recon.ops.sens_reduce`)."""
        return coils.sens_reduce(x, sens_maps)

    def forward(
        self,
        current_kspace: torch.Tensor,
        ref_kspace: torch.Tensor,
        mask: torch.Tensor,
        sens_maps: torch.Tensor,
    ) -> torch.Tensor:
        """Apply the cascade.

        Args:
            current_kspace: ``(B, C, H, W, 2)`` current estimate ``k``.
            ref_kspace: ``(B, C, H, W, 2)`` measured k-space ``k0``.
            mask: bool sampling mask broadcastable to the k-space, e.g. ``(B, 1, 1, W, 1)``.
            sens_maps: ``(B, C, H, W, 2)`` sensitivity maps.

        Returns:
            Updated k-space ``(B, C, H, W, 2)``.
        """
        image = coils.sens_reduce(current_kspace, sens_maps)
        refined = self.model(image)
        if refined.dtype != current_kspace.dtype:
            refined = refined.to(current_kspace.dtype)
        model_term = coils.sens_expand(refined, sens_maps)
        del image, refined
        weight = self.dc_weight.to(current_kspace.dtype)
        consistent = current_kspace - varnet_soft_dc(current_kspace, ref_kspace, mask, weight)
        if torch.is_grad_enabled():
            return consistent - model_term
        return torch.sub(consistent, model_term, out=model_term)


class VarNet(nn.Module):
    """The end-to-end variational network of Sriram et al. 2020 (fastMRI's ``VarNet``).

    Args:
        num_cascades: number of :class:`VarNetBlock` cascades.
        sens_chans: channels of the sensitivity U-Net.
        sens_pools: pooling layers of the sensitivity U-Net.
        chans: channels of the cascade U-Nets.
        pools: pooling layers of the cascade U-Nets.
        mask_center: estimate sensitivities from the fully sampled centre only.
        checkpoint_cascades: in training (autograd on), recompute each cascade and the
            sensitivity U-Net in the backward pass instead of storing their activations
            (gradient checkpointing); the outputs and gradients are unchanged.
        level_chans: channels of each level of the cascade U-Nets, finest first (``pools``
            ints, see :class:`~recon.models.Unet`); default fastMRI's ``chans * 2**k``. Not a
            fastMRI option: such weights load with ``impl="recon"`` only.

    Example:
        >>> net = VarNet(num_cascades=2, sens_chans=4, sens_pools=2, chans=4, pools=2)
        >>> kspace = torch.randn(1, 4, 32, 32, 2)
        >>> mask = torch.zeros(1, 1, 1, 32, 1, dtype=torch.bool)
        >>> mask[..., ::2, :] = True
        >>> net(kspace * mask, mask).shape
        torch.Size([1, 32, 32])
    """

    def __init__(
        self,
        num_cascades: int = 12,
        sens_chans: int = 8,
        sens_pools: int = 4,
        chans: int = 18,
        pools: int = 4,
        mask_center: bool = True,
        checkpoint_cascades: bool = False,
        level_chans: Sequence[int] | None = None,
    ):
        super().__init__()
        check_int("num_cascades", num_cascades)
        self.sens_net = SensitivityModel(chans=sens_chans, num_pools=sens_pools, mask_center=mask_center)
        self.cascades = nn.ModuleList(
            [VarNetBlock(NormUnet(chans, pools, level_chans=level_chans)) for _ in range(num_cascades)]
        )
        self.checkpoint_cascades = bool(checkpoint_cascades)

    @property
    def checkpoint_cascades(self) -> bool:
        return self._checkpoint_cascades

    @checkpoint_cascades.setter
    def checkpoint_cascades(self, value: bool) -> None:
        self._checkpoint_cascades = bool(value)
        self.sens_net.checkpoint_coils = bool(value)

    def forward(
        self,
        masked_kspace: torch.Tensor,
        mask: torch.Tensor,
        num_low_frequencies: LowFrequencies = None,
    ) -> torch.Tensor:
        """Reconstruct.

        Args:
            masked_kspace: ``(B, C, H, W, 2)`` under-sampled multi-coil k-space.
            mask: bool ``(B, 1, 1, W, 1)`` sampling mask (a {0, 1} mask is accepted).
            num_low_frequencies: fully sampled centre columns (int or ``(B,)``); ``None``
                or 0 infers them from ``mask``.

        Returns:
            Root-sum-of-squares magnitude image ``(B, H, W)`` (float32).

        Raises:
            TypeError: if ``masked_kspace`` or ``mask`` is not a tensor of the right kind.
            ValueError: for wrong shapes or a bad ``num_low_frequencies``.
        """
        mask = check_kspace_and_mask(masked_kspace, mask)
        if masked_kspace.dtype != torch.float32 and masked_kspace.dtype != torch.float64:
            masked_kspace = masked_kspace.float()
        sens_maps = self.sens_net._forward(masked_kspace, mask, num_low_frequencies)
        use_checkpoint = self._checkpoint_cascades and torch.is_grad_enabled() and self.training
        kspace_pred = masked_kspace
        for cascade in self.cascades:
            if use_checkpoint:
                kspace_pred = _checkpoint(
                    cascade, kspace_pred, masked_kspace, mask, sens_maps, use_reentrant=False
                )
            else:
                kspace_pred = cascade(kspace_pred, masked_kspace, mask, sens_maps)
        image = ifft2c(kspace_pred)
        return image.square().sum(dim=(1, 4)).sqrt()
