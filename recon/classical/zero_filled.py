"""Zero-filled reconstruction: root-sum-of-squares of the inverse FFT of the measured k-space."""

from __future__ import annotations

import torch

from recon.classical._checks import check_kspace, check_mask
from recon.ops.coils import rss_complex
from recon.ops.fft import ifft2c

__all__ = ["zero_filled"]


def zero_filled(kspace: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """RSS of the coil images of the zero-filled k-space (fastMRI's baseline).

    ``x = sqrt(sum_c |F^-1(M y_c)|^2)``; for one coil this is the magnitude image.

    Args:
        kspace: ``(B, C, H, W, 2)``; unsampled points zero (or removed by ``mask``).
        mask: optional mask broadcastable to ``kspace``; ``None`` uses ``kspace`` as given.

    Returns:
        Magnitude images ``(B, H, W)``.

    Example:
        >>> zero_filled(torch.randn(2, 4, 32, 24, 2)).shape
        torch.Size([2, 32, 24])
    """
    kspace = check_kspace(kspace)
    mask = check_mask(mask, kspace)
    if mask is not None:
        kspace = kspace * mask
    return rss_complex(ifft2c(kspace), dim=1)
