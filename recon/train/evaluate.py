"""Validation and evaluation: run a model over a data loader, score every volume.

Scores follow fastMRI: per volume (all slices of one file, stacked in slice order) the
NMSE, PSNR and SSIM of :mod:`recon.metrics` (``evaluate.py``'s definitions), with the data
range taken from the volume's ``max`` attribute as fastMRI's Lightning modules do; the
reported figure is the mean over volumes. In distributed runs every process scores the
volumes it holds (a :class:`recon.data.VolumeSampler` keeps volumes whole) and the
per-volume scores are gathered.
"""

from __future__ import annotations

import logging
import math
import sys
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from recon.metrics import nmse, psnr, ssim
from recon.ops import center_crop, ifft2c, rss_complex
from recon.train.distributed import DistributedContext, all_gather_objects

__all__ = ["ZeroFilled", "forward_batch", "evaluate", "summarize_volumes", "volume_scores"]

logger = logging.getLogger(__name__)


class ZeroFilled(nn.Module):
    """The zero-filled baseline with a k-space model's signature: RSS of the inverse FFT.

    ``forward(masked_kspace (B, C, H, W, 2), mask, num_low_frequencies) -> (B, H, W)``.
    """

    def forward(self, masked_kspace: torch.Tensor, mask: torch.Tensor, num_low_frequencies: Any = None) -> torch.Tensor:
        return rss_complex(ifft2c(masked_kspace), dim=1)


def _num_low(value: Any) -> Optional[int]:
    """fastMRI's VarNet takes one int (or None: found from the mask) for the whole batch."""
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        values = value.reshape(-1).tolist()
        return int(values[0]) if len(set(values)) == 1 else None
    return int(value)


def _crop_to_smallest(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    h = min(a.shape[-2], b.shape[-2])
    w = min(a.shape[-1], b.shape[-1])
    return center_crop(a, (h, w)), center_crop(b, (h, w))


def forward_batch(
    model: nn.Module, batch: Any, domain: str, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run a model on a collated batch; return magnitude images in the data's units.

    Args:
        model: a k-space model (``VarNetSample`` batches) or an image model (``UnetSample``).
        batch: a collated sample batch.
        domain: ``"kspace"`` or ``"image"``.
        device: where to run.

    Returns:
        ``(output, target, max_value)``: ``(B, h, w)`` images cropped to the smaller of the
        two sizes (fastMRI's ``center_crop_to_smallest``), and ``(B,)`` data ranges. Image
        models' normalised outputs are mapped back with the sample's mean and std.
    """
    max_value = torch.as_tensor(batch.max_value, dtype=torch.float32, device=device).reshape(-1)
    if domain == "kspace":
        output = model(batch.masked_kspace.to(device), batch.mask.to(device), _num_low(batch.num_low_frequencies))
        target = batch.target.to(device)
    elif domain == "image":
        output = model(batch.image.to(device).unsqueeze(1)).squeeze(1)
        mean = batch.mean.to(device).reshape(-1, 1, 1)
        std = batch.std.to(device).reshape(-1, 1, 1)
        output = output * std + mean
        target = batch.target.to(device) * std + mean
    else:
        raise ValueError(f"domain must be 'kspace' or 'image', got {domain!r}")
    target, output = _crop_to_smallest(target, output)
    return output, target, max_value


def volume_scores(target: np.ndarray, output: np.ndarray, maxval: Optional[float]) -> dict[str, float]:
    """NMSE, PSNR and SSIM of one volume ``(slices, h, w)`` (fastMRI ``evaluate.py``)."""
    target = np.asarray(target, dtype=np.float32)
    output = np.asarray(output, dtype=np.float32)
    maxval = None if maxval is None or not maxval > 0 else float(maxval)
    return {
        "nmse": float(nmse(target, output)),
        "psnr": float(psnr(target, output, maxval=maxval)),
        "ssim": float(ssim(target, output, maxval=maxval)),
    }


def summarize_volumes(volumes: dict[str, dict[str, float]]) -> dict[str, float]:
    """Mean (and ``<metric>_std``) of per-volume scores, plus ``num_volumes``."""
    out: dict[str, float] = {"num_volumes": len(volumes)}
    for key in ("nmse", "psnr", "ssim"):
        values = np.array([v[key] for v in volumes.values()], dtype=np.float64)
        out[key] = float(values.mean()) if len(values) else math.nan
        out[f"{key}_std"] = float(values.std()) if len(values) else math.nan
    return out


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Any,
    *,
    domain: str,
    ctx: Optional[DistributedContext] = None,
    loss_fn: Optional[Callable] = None,
    progress: Optional[bool] = None,
    keep_outputs: bool = False,
) -> dict[str, Any]:
    """Score a model on every volume of a loader.

    Args:
        model: the model (switched to eval mode for the run, restored afterwards).
        loader: a DataLoader of collated samples (batch size 1 recommended: slices of
            different sizes are otherwise zero-padded).
        domain: ``"kspace"`` or ``"image"``.
        ctx: the distributed context (single process when None).
        loss_fn: ``loss_fn(output, target, max_value)`` to report as ``loss``, or None.
        progress: tqdm bar; None shows it only when stderr is a terminal (and on rank 0).
        keep_outputs: also return ``outputs``: ``{fname: (slices, h, w) numpy}`` of this
            process's volumes.

    Returns:
        ``{"nmse", "psnr", "ssim"`` (means over volumes), ``"<metric>_std"``, ``"num_volumes"``,
        ``"num_slices"``, ``"loss"`` (mean per slice, when ``loss_fn``), ``"volumes"``: per-volume
        scores``}``.
    """
    ctx = ctx or DistributedContext()
    if progress is None:
        progress = sys.stderr.isatty()
    was_training = model.training
    model.eval()
    slices: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
    maxvals: dict[str, float] = {}
    loss_sum, loss_count = 0.0, 0
    try:
        for batch in tqdm(loader, desc="validate", leave=False, disable=not (progress and ctx.is_main)):
            output, target, max_value = forward_batch(model, batch, domain, ctx.device)
            if loss_fn is not None:
                loss_sum += float(loss_fn(output, target, max_value)) * output.shape[0]
                loss_count += output.shape[0]
            slice_nums = torch.as_tensor(batch.slice_num).reshape(-1).tolist()
            for i, fname in enumerate(batch.fname):
                slices.setdefault(fname, {})[int(slice_nums[i])] = (
                    output[i].float().cpu().numpy(),
                    target[i].float().cpu().numpy(),
                )
                maxvals[fname] = float(max_value[i])
    finally:
        model.train(was_training)
    local: dict[str, dict[str, float]] = {}
    outputs = {}
    for fname, by_slice in slices.items():
        order = sorted(by_slice)
        out_vol = np.stack([by_slice[s][0] for s in order])
        tgt_vol = np.stack([by_slice[s][1] for s in order])
        local[fname] = {**volume_scores(tgt_vol, out_vol, maxvals[fname]), "slices": len(order)}
        if keep_outputs:
            outputs[fname] = out_vol
    volumes: dict[str, dict[str, float]] = {}
    losses = []
    for part, part_loss in all_gather_objects(ctx, (local, (loss_sum, loss_count))):
        volumes.update(part)
        losses.append(part_loss)
    result: dict[str, Any] = summarize_volumes(volumes)
    result["num_slices"] = int(sum(v["slices"] for v in volumes.values()))
    total = sum(c for _, c in losses)
    if loss_fn is not None:
        result["loss"] = sum(s for s, _ in losses) / total if total else math.nan
    result["volumes"] = volumes
    if keep_outputs:
        result["outputs"] = outputs
    return result
