"""Training task of the denoiser: ``recon train --task denoise``.

:class:`DenoiseTask` (a :class:`~recon.train.tasks_heads.HeadTask`; interface and loop in
:mod:`recon.train.tasks_heads`): random crops of brain slices (every contrast the volumes
hold), Rician noise at an SNR drawn log-uniformly from ``snr_range``, each crop divided by its
slice's noisy foreground mean, the noise sigma *estimated* from the noisy slice
(:func:`recon.heads.denoise.estimate_sigma`, as :func:`recon.denoise` does at inference) and
given to the network; MSE to the clean crop. Options (``recon train --task denoise ...``):

* ``--background-pad N``: each slice is zero-padded by a random margin of up to ``N`` pixels
  per side before the noise is added, so crops also show pure Rician background (Rayleigh
  noise over zero signal) - real scans have much more of it than the tight phantom fields
  of view, and a denoiser that never saw it leaves residual noise there;
* ``--all-orientations``: axial, coronal and sagittal slices of every volume (real held-out
  slices come in any orientation); default axial only;
* ``--skull-strip P``: with probability ``P`` a training slice is multiplied by its brain mask
  before the noise is added (skull-stripped images, common in public data, have a sharp
  brain/air edge that the whole-head phantoms and Colin27 lack); default 0.

Validation (``--val-data``): PSNR of :func:`recon.heads.denoise.denoise_image` (sigma
estimated) on brain slices of the validation volumes at Rician SNR 5, 10 and 20 (fixed seed),
the clean slice's maximum as peak.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recon.heads.denoise import DenoisingAutoencoder, add_rician_noise, denoise_image, estimate_sigma
from recon.train.tasks_heads import HeadTask, StepRunner, axial_slices

__all__ = ["DenoiseTask", "VAL_SNRS"]

#: SNRs of the validation scores
VAL_SNRS = (5.0, 10.0, 20.0)


def _psnr(clean: torch.Tensor, estimate: torch.Tensor) -> float:
    mse = float((clean.double() - estimate.double()).square().mean())
    peak = float(clean.max())
    return 10 * math.log10(peak ** 2 / mse) if mse > 0 else math.inf


class DenoiseTask(HeadTask):
    """Rician denoising autoencoder (weight name ``denoise``)."""

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument("--background-pad", type=int, default=0,
                            help="zero margin of up to this many pixels per side added to training slices")
        parser.add_argument("--all-orientations", action="store_true",
                            help="train on axial, coronal and sagittal slices (default axial only)")
        parser.add_argument("--skull-strip", type=float, default=0.0,
                            help="probability that a training slice is multiplied by its brain mask")

    def check(self) -> None:
        pad = self.config.options.get("background_pad", 0)
        if isinstance(pad, bool) or not isinstance(pad, int) or pad < 0:
            raise ValueError(f"background_pad must be an int >= 0, got {pad!r}")
        strip = self.config.options.get("skull_strip", 0.0)
        if isinstance(strip, bool) or not isinstance(strip, (int, float)) or not 0 <= strip <= 1:
            raise ValueError(f"skull_strip must be a probability in [0, 1], got {strip!r}")

    def contrasts(self) -> list[str]:
        return ["t1w"]

    def build_model(self) -> nn.Module:
        return DenoisingAutoencoder(chans=self.config.chans, depth=self.config.depth)

    def prepare(self, volumes: list[dict[str, np.ndarray]]) -> None:
        axes = (2, 1, 0) if self.config.options.get("all_orientations", False) else (2,)
        slices, masks = [], []
        for k in ("t1w", "t2w", "flair", "pd"):
            for i in volumes:
                if k not in i:
                    continue
                for axis in axes:  # the slicing axis goes last
                    order = [a for a in range(3) if a != axis] + [axis]
                    m = i["mask"].transpose(order)
                    slices.append(axial_slices(i[k].transpose(order), m, 0.1))
                    masks.append(axial_slices(m, m, 0.1))
        # a list of (1, H, W) slices: volumes of different grids (2 mm phantoms, 1 mm real) mix
        self.x = [torch.from_numpy(np.ascontiguousarray(sl, dtype=np.float32))[None] for s in slices for sl in s]
        self.m = [torch.from_numpy(np.ascontiguousarray(sl, dtype=np.float32))[None] for s in masks for sl in s]

    def step(self, model: nn.Module, run: StepRunner) -> dict[str, float]:
        c = self.config
        p = c.patch_size
        clean, noisy, sig = [], [], []
        lo, hi = math.log(c.snr_range[0]), math.log(c.snr_range[1])
        pad_max = int(c.options.get("background_pad", 0))
        strip = float(c.options.get("skull_strip", 0.0))
        for _ in range(c.batch_size):
            k = int(run.randint(len(self.x)))
            s = self.x[k][None]
            if strip and float(torch.rand((), generator=run.generator)) < strip:
                s = s * self.m[k][None]
            if pad_max:
                s = F.pad(s, tuple(int(v) for v in run.randint(pad_max + 1, 4)))
            snr = math.exp(lo + (hi - lo) * float(torch.rand((), generator=run.generator)))
            n, _ = add_rician_noise(s, snr, run.generator)
            scale = float(n[n > n.mean()].mean())
            sigma = float(estimate_sigma(n)) / scale
            H, W = s.shape[-2:]
            i0 = int(run.randint(max(H - p, 0) + 1))
            j0 = int(run.randint(max(W - p, 0) + 1))
            crop_c = s[0, :, i0:i0 + p, j0:j0 + p] / scale
            crop_n = n[0, :, i0:i0 + p, j0:j0 + p] / scale
            if crop_c.shape[-2:] != (p, p):  # a slice smaller than the patch: pad
                pad = (0, p - crop_c.shape[-1], 0, p - crop_c.shape[-2])
                crop_c, crop_n = F.pad(crop_c, pad), F.pad(crop_n, pad)
            clean.append(crop_c)
            noisy.append(crop_n)
            sig.append(sigma)
        x, y = torch.stack(noisy).to(run.device), torch.stack(clean).to(run.device)
        with run.autocast():
            pred = model(x, torch.tensor(sig, device=run.device))
        loss = F.mse_loss(pred.float(), y)
        return {"loss": run.optimise(loss)}

    def evaluate(self, model: nn.Module, volumes: list[dict[str, np.ndarray]]) -> dict[str, float]:
        g = torch.Generator().manual_seed(1234)
        scores: dict[str, list[float]] = {f"psnr_snr{snr:g}": [] for snr in VAL_SNRS}
        for item in volumes:
            stack = axial_slices(item["t1w"], item["mask"], 0.15)
            for z in np.linspace(0, len(stack) - 1, min(4, len(stack))).astype(int):
                clean = torch.from_numpy(np.ascontiguousarray(stack[z], dtype=np.float32))
                for snr in VAL_SNRS:
                    noisy, _ = add_rician_noise(clean[None, None], snr, g)
                    scores[f"psnr_snr{snr:g}"].append(_psnr(clean, denoise_image(model, noisy[0, 0])))
        out = {k: float(np.mean(v)) for k, v in scores.items() if v}
        if out:
            out["psnr_mean"] = float(np.mean(list(out.values())))
        return out
