"""Deep cascade of CNNs (DC-CNN) of Schlemper et al., IEEE TMI 2017.

Each cascade is a residual CNN on the complex image (``num_convs`` 3x3 conv layers of
``num_filters`` channels with ReLU, the last one back to 2 channels, plus the input)
followed by data consistency in k-space with weight ``lambda`` on the measured data:
``k_dc = (1 - m) k + m (k + lambda k0) / (1 + lambda)``. The paper's ``lambda = q / sigma``
grows as the noise falls: large ``lambda`` approaches hard replacement, small ``lambda``
keeps the prediction. ``lambda = 0`` itself selects hard replacement (the noiseless case),
as in the reference code.  The paper's D5-C5 network with 64 filters is the default.

* Single-coil (``C == 1`` and no sensitivity maps): the CNN works on ``F^-1 k`` directly.
* Multi-coil: ``x = sum_c conj(S_c) F^-1 k_c`` -> CNN -> ``F(S_c x)`` -> data consistency on
  every coil; the maps are passed in or estimated by a :class:`SensitivityModel`.

As in the reference code each CNN sees its input scaled by the standard deviation of the
zero-filled image of its sample, which makes the network independent of the k-space scale.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint as _checkpoint

from recon.models._kspace import LowFrequencies, check_kspace_and_mask
from recon.models.unet import preferred_memory_format
from recon.models.varnet import SensitivityModel
from recon.ops._checks import check_complex_view, check_int, describe
from recon.ops.coils import sens_expand, sens_reduce
from recon.ops.consistency import soft_dc
from recon.ops.fft import fft2c, ifft2c

__all__ = ["CascadeNet", "CascadeBlock"]


class CascadeBlock(nn.Module):
    """One DC-CNN cascade: residual CNN in the image domain, then data consistency.

    Args:
        num_convs: conv layers in the CNN (at least 2).
        num_filters: channels of the hidden conv layers.
        dc_lambda: initial weight ``lambda >= 0`` of the measured data in the data consistency
            (0 = hard replacement; a small positive value is close to no data consistency).
        learn_lambda: make ``lambda`` a learnable parameter (kept non-negative with ``|.|``);
            needs ``dc_lambda > 0``, since hard replacement has no gradient with respect to
            ``lambda``.

    Raises:
        ValueError: a negative ``dc_lambda``, or ``learn_lambda`` with ``dc_lambda = 0``.
    """

    def __init__(
        self,
        num_convs: int = 5,
        num_filters: int = 64,
        dc_lambda: float = 0.0,
        learn_lambda: bool = False,
    ):
        super().__init__()
        check_int("num_convs", num_convs, 2)
        check_int("num_filters", num_filters)
        if not isinstance(dc_lambda, (int, float)) or isinstance(dc_lambda, bool) or not dc_lambda >= 0:
            raise ValueError(f"dc_lambda must be a non-negative number, got {dc_lambda!r}")
        if learn_lambda and dc_lambda == 0:
            raise ValueError(
                "learn_lambda=True needs dc_lambda > 0, got dc_lambda=0: lambda = 0 is hard replacement, "
                "whose gradient with respect to lambda is zero, so lambda would never change; pass a "
                "starting value (e.g. dc_lambda=1.0) or learn_lambda=False"
            )
        chans = [2] + [num_filters] * (num_convs - 1) + [2]
        self.convs = nn.ModuleList(
            [nn.Conv2d(cin, cout, kernel_size=3, padding=1) for cin, cout in zip(chans[:-1], chans[1:])]
        )
        lam = torch.tensor([float(dc_lambda)])
        if learn_lambda:
            self.dc_lambda = nn.Parameter(lam)
        else:
            self.register_buffer("dc_lambda", lam)
        self.learn_lambda = bool(learn_lambda)

    def cnn(self, image: torch.Tensor) -> torch.Tensor:
        """Residual CNN on ``(B, 1, H, W, 2)`` complex images (the output is float32 under autocast)."""
        b, _, h, w, _ = image.shape
        # (B, 1, H, W, 2) has the memory order of a channels_last (B, 2, H, W): a free view.
        x = image.squeeze(1).permute(0, 3, 1, 2)
        x = x.contiguous(memory_format=preferred_memory_format(x))
        last = len(self.convs) - 1
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if i < last:
                x = F.relu_(x)
        out = x.permute(0, 2, 3, 1).unsqueeze(1)
        if out.dtype != image.dtype:
            out = out.to(image.dtype)
        return image + out

    def forward(
        self,
        kspace: torch.Tensor,
        ref_kspace: torch.Tensor,
        mask: torch.Tensor,
        sens_maps: Optional[torch.Tensor],
        scale: torch.Tensor,
    ) -> torch.Tensor:
        """Apply the cascade.

        Args:
            kspace: current k-space ``(B, C, H, W, 2)``.
            ref_kspace: measured k-space ``(B, C, H, W, 2)``.
            mask: bool mask broadcastable to the k-space.
            sens_maps: ``(B, C, H, W, 2)`` maps, or ``None`` for single-coil data.
            scale: ``(B, 1, 1, 1, 1)`` image scale: the CNN sees ``image / scale``.

        Returns:
            Updated k-space ``(B, C, H, W, 2)``.
        """
        image = ifft2c(kspace) if sens_maps is None else sens_reduce(kspace, sens_maps)
        image = self.cnn(image / scale) * scale
        pred = fft2c(image) if sens_maps is None else sens_expand(image, sens_maps)
        lam = self.dc_lambda.abs() if self.learn_lambda else self.dc_lambda
        return soft_dc(pred, ref_kspace, mask, lam.to(pred.dtype))


class CascadeNet(nn.Module):
    """Deep cascade of CNNs for single- and multi-coil k-space (Schlemper et al. 2017).

    Args:
        num_cascades: number of CNN + data-consistency cascades (paper: 5).
        num_convs: conv layers per CNN (paper: 5).
        num_filters: hidden channels per conv layer (paper: 64).
        dc_lambda: initial weight of the measured data in the data consistency (0 = hard
            replacement; see :class:`CascadeBlock`).
        learn_lambda: learn ``lambda`` (one per cascade; needs ``dc_lambda > 0``).
        sens_chans: channels of the :class:`SensitivityModel` used to estimate coil maps for
            multi-coil input when none are passed; 0 disables it (then multi-coil input
            needs ``sens_maps``).
        sens_pools: pooling layers of that sensitivity U-Net.
        checkpoint_cascades: recompute each cascade in the backward pass (gradient
            checkpointing) when training.

    Example:
        >>> net = CascadeNet(num_cascades=2, num_convs=3, num_filters=8, sens_chans=0)
        >>> kspace = torch.randn(1, 1, 32, 32, 2)
        >>> mask = torch.zeros(1, 1, 1, 32, 1, dtype=torch.bool)
        >>> mask[..., ::2, :] = True
        >>> net(kspace * mask, mask).shape
        torch.Size([1, 32, 32])
    """

    def __init__(
        self,
        num_cascades: int = 5,
        num_convs: int = 5,
        num_filters: int = 64,
        dc_lambda: float = 0.0,
        learn_lambda: bool = False,
        sens_chans: int = 8,
        sens_pools: int = 4,
        checkpoint_cascades: bool = False,
    ):
        super().__init__()
        check_int("num_cascades", num_cascades)
        if not isinstance(sens_chans, int) or isinstance(sens_chans, bool) or sens_chans < 0:
            raise ValueError(f"sens_chans must be a non-negative int (0 = no sensitivity model), got {sens_chans!r}")
        self.cascades = nn.ModuleList(
            [CascadeBlock(num_convs, num_filters, dc_lambda, learn_lambda) for _ in range(num_cascades)]
        )
        self.sens_net = SensitivityModel(sens_chans, sens_pools) if sens_chans > 0 else None
        self.checkpoint_cascades = bool(checkpoint_cascades)

    def forward(
        self,
        masked_kspace: torch.Tensor,
        mask: torch.Tensor,
        num_low_frequencies: LowFrequencies = None,
        sens_maps: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Reconstruct.

        Args:
            masked_kspace: ``(B, C, H, W, 2)`` under-sampled k-space (``C = 1``: single-coil).
            mask: bool ``(B, 1, 1, W, 1)`` sampling mask.
            num_low_frequencies: centre columns for the sensitivity estimate (see
                :class:`~recon.models.VarNet`).
            sens_maps: optional ``(B, C, H, W, 2)`` coil sensitivities; without them,
                multi-coil input uses the sensitivity model.

        Returns:
            Magnitude image ``(B, H, W)``: ``|x|`` single-coil, the root-sum-of-squares of the
            coil images multi-coil.

        Raises:
            TypeError, ValueError: for malformed inputs, or multi-coil input with neither
                ``sens_maps`` nor a sensitivity model.
        """
        mask = check_kspace_and_mask(masked_kspace, mask)
        if masked_kspace.dtype not in (torch.float32, torch.float64):
            masked_kspace = masked_kspace.float()
        b, c = masked_kspace.shape[:2]
        if sens_maps is not None:
            check_complex_view("sens_maps", sens_maps, min_ndim=5)
            if sens_maps.shape != masked_kspace.shape:
                raise ValueError(
                    f"sens_maps must have the shape of masked_kspace {tuple(masked_kspace.shape)}, "
                    f"got {describe(sens_maps)}"
                )
            sens_maps = sens_maps.to(masked_kspace.dtype)
        elif c > 1:
            if self.sens_net is None:
                raise ValueError(
                    f"multi-coil masked_kspace ({c} coils) needs sens_maps when the model has "
                    "no sensitivity model (sens_chans=0)"
                )
            sens_maps = self.sens_net._forward(masked_kspace, mask, num_low_frequencies)
        zero_filled = ifft2c(masked_kspace) if sens_maps is None else sens_reduce(masked_kspace, sens_maps)
        scale = zero_filled.detach().reshape(b, -1).std(dim=1).clamp_min(1e-12).view(b, 1, 1, 1, 1)
        del zero_filled
        use_checkpoint = self.checkpoint_cascades and torch.is_grad_enabled() and self.training
        kspace = masked_kspace
        for cascade in self.cascades:
            if use_checkpoint:
                kspace = _checkpoint(
                    cascade, kspace, masked_kspace, mask, sens_maps, scale, use_reentrant=False
                )
            else:
                kspace = cascade(kspace, masked_kspace, mask, sens_maps, scale)
        image = ifft2c(kspace)
        return image.square().sum(dim=(1, 4)).sqrt()
