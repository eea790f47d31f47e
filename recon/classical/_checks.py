"""Argument checks shared by the classical reconstructions (private)."""

from __future__ import annotations

import torch

from recon.ops._checks import check_complex_view, check_mask_broadcasts, describe

__all__ = ["check_kspace", "check_mask", "check_maps", "check_positive"]


def check_kspace(kspace: object, name: str = "kspace") -> torch.Tensor:
    """A multi-coil k-space ``(B, C, H, W, 2)`` of finite values."""
    kspace = check_complex_view(name, kspace, min_ndim=5)
    if kspace.ndim != 5:
        raise ValueError(f"{name} must be (B, C, H, W, 2), got {describe(kspace)}")
    if not bool(torch.isfinite(kspace).all()):
        raise ValueError(f"{name} contains NaN or Inf values")
    return kspace


def check_mask(mask: object, kspace: torch.Tensor) -> torch.Tensor | None:
    """A mask broadcastable to ``kspace`` ``(B, C, H, W, 2)``, returned as a float 0/1 tensor."""
    if mask is None:
        return None
    mask = check_mask_broadcasts(mask, kspace.shape, "kspace")
    return (mask != 0).to(dtype=kspace.dtype, device=kspace.device)


def check_maps(sens_maps: object, kspace: torch.Tensor) -> torch.Tensor:
    """Coil maps of the k-space's shape ``(B, C, H, W, 2)``."""
    sens_maps = check_complex_view("sens_maps", sens_maps, min_ndim=5)
    if tuple(sens_maps.shape) != tuple(kspace.shape):
        raise ValueError(
            f"sens_maps must have the shape of kspace {tuple(kspace.shape)}, got {describe(sens_maps)}"
        )
    if not bool(torch.isfinite(sens_maps).all()):
        raise ValueError("sens_maps contains NaN or Inf values")
    return sens_maps.to(dtype=kspace.dtype, device=kspace.device)


def check_positive(name: str, value: object, allow_zero: bool = False, integer: bool = False) -> None:
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(f"{name} must be {'an int' if integer else 'a number'}, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
