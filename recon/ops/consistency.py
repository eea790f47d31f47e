"""Data consistency in k-space.

* hard: sampled points are replaced by the measured k-space, ``k_dc = (1 - m) k + m k0``;
* soft (Schlemper et al. 2017, noise level ``lam``):
  ``k_dc = (1 - m) k + m (k + lam k0) / (1 + lam)``; ``lam`` of ``None`` or ``0`` means hard,
  following the reference DC-CNN code; large ``lam`` approaches hard replacement;
* the VarNet soft-DC term (Sriram et al. 2020): ``m (k - k0) w``, subtracted by the cascade.

``mask`` is boolean or {0, 1} and broadcasts against the k-space, e.g. ``(B, 1, 1, W, 1)``.
"""

from __future__ import annotations

import torch

from recon.ops._checks import check_complex_view, check_mask_broadcasts

__all__ = ["hard_dc", "soft_dc", "data_consistency", "varnet_soft_dc"]


def _check(kspace: torch.Tensor, kspace0: torch.Tensor, mask: torch.Tensor) -> None:
    check_complex_view("kspace", kspace)
    check_complex_view("kspace0", kspace0)
    if kspace.shape != kspace0.shape:
        raise ValueError(
            f"kspace0 must have the shape of kspace {tuple(kspace.shape)}, got {tuple(kspace0.shape)}"
        )
    check_mask_broadcasts(mask, kspace.shape, "kspace")


def hard_dc(kspace: torch.Tensor, kspace0: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Replace the sampled points of ``kspace`` by the measured ``kspace0``."""
    _check(kspace, kspace0, mask)
    return torch.where(mask.bool(), kspace0, kspace)


def soft_dc(
    kspace: torch.Tensor, kspace0: torch.Tensor, mask: torch.Tensor, lam: float | torch.Tensor | None
) -> torch.Tensor:
    """Schlemper's data consistency with weight ``lam`` on the measured data (``None`` or ``0``: hard).

    ``lam`` is the paper's ``q / sigma``: it grows as the noise falls, so a large ``lam``
    approaches hard replacement and a small positive one keeps the prediction; ``0`` selects
    hard replacement itself (the noiseless case, as in the reference code). The output is
    therefore not continuous at ``lam = 0``, and a (learnable) tensor ``lam = 0`` has a zero
    gradient.

    Args:
        kspace: predicted k-space ``(..., H, W, 2)``.
        kspace0: measured (zero-filled) k-space, same shape.
        mask: sampling mask broadcastable to ``kspace``.
        lam: non-negative weight; a float or a (learnable) tensor.

    Returns:
        ``(1 - m) k + m (k + lam k0) / (1 + lam)``.
    """
    if lam is None or (not isinstance(lam, torch.Tensor) and lam == 0):
        return hard_dc(kspace, kspace0, mask)
    if not isinstance(lam, torch.Tensor) and lam < 0:
        raise ValueError(f"lam must be None or non-negative, got {lam}")
    _check(kspace, kspace0, mask)
    blended = (kspace + lam * kspace0) / (1 + lam)
    if isinstance(lam, torch.Tensor):  # a (learnable) lam of 0 means hard replacement too
        blended = torch.where(lam > 0, blended, kspace0)
    return torch.where(mask.bool(), blended, kspace)


data_consistency = soft_dc


def varnet_soft_dc(
    kspace: torch.Tensor, kspace0: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor | float
) -> torch.Tensor:
    """The VarNet soft data-consistency term ``m (k - k0) w`` (zero off the mask)."""
    _check(kspace, kspace0, mask)
    zero = torch.zeros((), dtype=kspace.dtype, device=kspace.device)
    return torch.where(mask.bool(), kspace - kspace0, zero) * weight
