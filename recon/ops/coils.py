"""Multi-coil helpers: root-sum-of-squares and sensitivity expand / reduce.

Layouts (fastMRI): coil k-space and coil images ``(B, C, H, W, 2)``, a combined image
``(B, 1, H, W, 2)``, sensitivity maps ``(B, C, H, W, 2)``.  The coil dimension of
:func:`sens_expand` / :func:`sens_reduce` is dim ``-4``, so unbatched ``(C, H, W, 2)`` works too.
"""

from __future__ import annotations

import torch

from recon.ops._checks import check_complex_view, check_tensor
from recon.ops.complex import complex_abs_sq, multiply
from recon.ops.fft import fft2c, ifft2c

__all__ = ["rss", "rss_complex", "sens_expand", "sens_reduce"]


def rss(data: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Root-sum-of-squares ``sqrt(sum_c |x_c|^2)`` of real data over ``dim`` (fastMRI's ``rss``)."""
    check_tensor("data", data)
    return torch.sqrt((data**2).sum(dim))


def rss_complex(data: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Root-sum-of-squares of complex ``data`` ``(..., 2)`` over ``dim`` (fastMRI's ``rss_complex``)."""
    check_complex_view("data", data, min_ndim=2)
    return torch.sqrt(complex_abs_sq(data).sum(dim))


def _check_maps(image: torch.Tensor, sens_maps: torch.Tensor, image_name: str) -> None:
    check_complex_view(image_name, image, min_ndim=4)
    check_complex_view("sens_maps", sens_maps, min_ndim=4)
    if image.shape[-3:-1] != sens_maps.shape[-3:-1]:
        raise ValueError(
            f"sens_maps must have the spatial size of {image_name} {tuple(image.shape[-3:-1])}, "
            f"got sens_maps of shape {tuple(sens_maps.shape)}"
        )


def sens_expand(image: torch.Tensor, sens_maps: torch.Tensor) -> torch.Tensor:
    """Coil k-space ``F(S_c x)`` from a combined image.

    Args:
        image: ``(B, 1, H, W, 2)`` (or ``(1, H, W, 2)``).
        sens_maps: ``(B, C, H, W, 2)`` (or ``(C, H, W, 2)``).

    Returns:
        Coil k-space ``(B, C, H, W, 2)``.
    """
    _check_maps(image, sens_maps, "image")
    return fft2c(multiply(image, sens_maps, conj_y=False))


def sens_reduce(kspace: torch.Tensor, sens_maps: torch.Tensor) -> torch.Tensor:
    """Combined image ``sum_c conj(S_c) F^-1(k_c)`` from coil k-space (the adjoint of :func:`sens_expand`).

    Args:
        kspace: ``(B, C, H, W, 2)`` (or ``(C, H, W, 2)``).
        sens_maps: ``(B, C, H, W, 2)`` (or ``(C, H, W, 2)``).

    Returns:
        Combined image ``(B, 1, H, W, 2)`` (or ``(1, H, W, 2)``).
    """
    _check_maps(kspace, sens_maps, "kspace")
    return multiply(ifft2c(kspace), sens_maps, conj_y=True).sum(dim=-4, keepdim=True)
