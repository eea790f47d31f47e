"""Input checks and the centre-of-k-space rule shared by the k-space models (private)."""

from __future__ import annotations

from typing import Optional, Union

import torch

from recon.ops._checks import check_complex_view, check_mask_broadcasts, describe

__all__ = ["LowFrequencies", "check_kspace_and_mask", "low_frequency_columns"]

LowFrequencies = Optional[Union[int, torch.Tensor]]


def check_kspace_and_mask(masked_kspace: object, mask: object) -> torch.Tensor:
    check_complex_view("masked_kspace", masked_kspace, min_ndim=5)
    if masked_kspace.ndim != 5:
        raise ValueError(f"masked_kspace must be (B, C, H, W, 2), got {describe(masked_kspace)}")
    check_mask_broadcasts(mask, masked_kspace.shape, "masked_kspace")
    if mask.ndim != 5:
        raise ValueError(f"mask must be 5-D, e.g. (B, 1, 1, W, 1); got {describe(mask)}")
    return mask if mask.dtype == torch.bool else mask != 0


def low_frequency_columns(
    mask: torch.Tensor, num_low_frequencies: LowFrequencies, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(pad, num_low_freqs)``, each ``(B,)`` long: the fully sampled centre columns.

    fastMRI's rule: without ``num_low_frequencies`` (``None`` or 0) the centre block is the
    largest symmetric run of sampled columns around ``W // 2`` (at least 1 column), and
    ``pad = (W - num_low_freqs + 1) // 2``.  Zero entries of a ``(B,)`` tensor fall back to
    the mask for their sample.
    """
    given = None
    if isinstance(num_low_frequencies, torch.Tensor):
        given = num_low_frequencies.to(device=mask.device, dtype=torch.long).reshape(-1)
        given = given.expand(mask.shape[0])
    elif num_low_frequencies is not None:
        if not isinstance(num_low_frequencies, int) or isinstance(num_low_frequencies, bool) \
                or num_low_frequencies < 0:
            raise ValueError(
                "num_low_frequencies must be None, a non-negative int or a (B,) tensor, "
                f"got {describe(num_low_frequencies)}"
            )
        if num_low_frequencies > 0:
            given = torch.full((mask.shape[0],), num_low_frequencies, dtype=torch.long, device=mask.device)
    columns = mask[:, 0, 0, :, 0].to(torch.int8)
    cent = columns.shape[1] // 2
    left = torch.argmin(columns[:, :cent].flip(1), dim=1)
    right = torch.argmin(columns[:, cent:], dim=1)
    from_mask = torch.clamp(2 * torch.minimum(left, right), min=1)
    # per sample: the given count, or the mask's centre block where none (0) is given
    low = from_mask if given is None else torch.where(given > 0, given, from_mask)
    low = low.to(torch.long)
    pad = torch.div(width - low + 1, 2, rounding_mode="floor")
    return pad, low
