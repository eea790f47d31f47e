"""Input checks shared by the image heads (private)."""

from __future__ import annotations

import torch

from recon.ops._checks import describe

__all__ = ["check_image_tensor", "check_finite"]


def check_image_tensor(name: str, image: object, ndim: int, layout: str, *, hint: str = "") -> torch.Tensor:
    """Refuse anything but a floating-point tensor with ``ndim`` dimensions (``layout`` names them)."""
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor {layout}, got {describe(image)}")
    if image.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D tensor {layout}{hint}, got shape {tuple(image.shape)}")
    if not image.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {image.dtype}")
    return image


def check_finite(name: str, image: torch.Tensor) -> torch.Tensor:
    """Refuse NaN/Inf values (the message names ``name``)."""
    if not bool(torch.isfinite(image).all()):
        raise ValueError(f"{name} contains NaN or Inf values")
    return image
