"""Training tasks of the synthesis heads: ``recon train --task synthesis | cyclegan | gan``.

:class:`HeadTask` subclasses (see :mod:`recon.train.tasks_heads` for the interface and the
loop):

* :class:`SynthesisTask` - paired contrast synthesis, 2-D U-Net on axial slices or 3-D ResNet
  on 3-D patches; MSE on foreground-mean-normalised images, optionally up-weighted inside the
  brain (``--brain-weight``, see :meth:`SynthesisTask.add_arguments`);
* :class:`CycleGANTask` - unpaired translation: the training subjects are split in two halves,
  contrast A from the first, contrast B from the second, so no pair is ever seen;
* :class:`GANTask` - the unconditional DCGAN on 64 x 64 T1-weighted slices (least-squares
  losses, discriminator without batch norm).

Validation (``--val-data``): MAE, PSNR and SSIM over the brain mask after z-scoring
(:func:`recon.train.tasks_heads.synthesis_scores`), volume by volume, averaged.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recon.heads.gan import DCGANDiscriminator, DCGANGenerator
from recon.heads.cyclegan import TissueMapSynthesizer
from recon.heads.synthesis import (
    CycleGAN,
    ResNet3d,
    UnetSynthesizer,
    crop_axial,
    lsgan_loss,
    sliding_window_3d,
    translate_slices,
)
from recon.train.tasks_heads import (
    HeadTask,
    StepRunner,
    axial_slices,
    gan_slices,
    normalise_volume,
    pad_to_multiple,
    synthesis_scores,
)

__all__ = ["SynthesisTask", "CycleGANTask", "GANTask", "predict_volume"]


def predict_volume(model: nn.Module, volume: np.ndarray, arch: str = "unet", *, patch_size: int = 64,
                   overlap: int = 16, flip_average: bool = True) -> np.ndarray:
    """Run a synthesis network on a whole ``(X, Y, Z)`` volume (axial = last axis), as
    :func:`recon.synthesize` does: foreground-mean normalisation, then the 2-D network slice by
    slice or the 3-D network by overlapping patches, averaged with the left-right mirrored
    prediction (``flip_average``, see :func:`recon.heads.synthesis.translate_slices`).
    Returns ``(X, Y, Z)`` float32."""
    x = torch.from_numpy(normalise_volume(volume)[0])
    param = next(model.parameters())
    with torch.no_grad():
        if arch == "resnet3d":
            v = x[None].to(param.device)
            out = sliding_window_3d(model, v, patch_size=patch_size, overlap=overlap)[0]
            if flip_average:
                out = 0.5 * (out + sliding_window_3d(model, v.flip(1), patch_size=patch_size, overlap=overlap)[0].flip(0))
        else:
            slices = x.permute(2, 0, 1)[:, None].to(param.device)
            out = translate_slices(model, slices, flip_average=flip_average)[:, 0].permute(1, 2, 0)
    return out.float().cpu().numpy()


def _mean_scores(scores: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([s[k] for s in scores])) for k in scores[0]} if scores else {}


def _optimiser_steps(run: StepRunner, name: str) -> int:
    """Updates the optimiser ``name`` has made (Adam's per-parameter step count; 0 before the first)."""
    opt = run.optimisers[name]
    state = opt.state.get(opt.param_groups[0]["params"][0], {})
    return int(state.get("step", 0))


class _Crops:
    """Random square crops shared by the 2-D tasks."""

    @staticmethod
    def crop(run: StepRunner, size: int, *images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The same random ``size`` square crop of each ``(B, C, H, W)`` batch (whole if smaller)."""
        H, W = images[0].shape[-2:]
        if size >= H and size >= W:
            return images
        i0 = int(run.randint(max(H - size, 0) + 1))
        j0 = int(run.randint(max(W - size, 0) + 1))
        return tuple(im[..., i0:i0 + size, j0:j0 + size] for im in images)


class SynthesisTask(HeadTask):
    """Paired synthesis ``source -> target``: ``arch`` ``"unet"`` (2-D slices) or ``"resnet3d"``
    (3-D patches of ``patch_size``; ``crop_axial`` drops the neck). Weight name
    ``synthesis-<arch>-<source>-<target>``.

    Loss: MSE between the network output and the target, both divided by their volume's
    foreground mean (:func:`recon.train.tasks_heads.normalise_volume`), each voxel weighted by
    ``1 + brain_weight * brain_mask / s^2`` with ``s`` the standard deviation of the target in
    that volume's brain: with ``brain_weight > 0`` the loss approaches the evaluation's
    (z-scored error inside the brain) while the head outside still counts.
    """

    ARCHS = ("unet", "resnet3d")

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--brain-weight", type=float, default=0.0,
                            help="extra loss weight inside the brain mask, in units of 1/(target brain std)^2")

    def check(self) -> None:
        c = self.config
        if c.arch not in self.ARCHS:
            raise ValueError(f"arch must be one of {list(self.ARCHS)} for task {c.task!r}, got {c.arch!r}")
        if c.source == c.target:
            raise ValueError(f"source and target must differ, got {c.source!r} twice")
        bw = c.options.get("brain_weight", 0.0)
        if isinstance(bw, bool) or not isinstance(bw, (int, float)) or not bw >= 0:
            raise ValueError(f"brain_weight must be a number >= 0, got {bw!r}")

    def contrasts(self) -> list[str]:
        return [self.config.source, self.config.target]

    def weight_name(self) -> str:
        c = self.config
        return f"synthesis-{c.arch}-{c.source}-{c.target}"

    def build_model(self) -> nn.Module:
        c = self.config
        if c.arch == "resnet3d":
            return ResNet3d(chans=c.chans, num_blocks=c.depth)
        return UnetSynthesizer(chans=c.chans, num_pool_layers=c.depth)

    def _weights(self, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
        bw = float(self.config.options.get("brain_weight", 0.0))
        sd = float(target[mask].std()) if mask.any() else 1.0
        return (1.0 + bw * mask / max(sd, 1e-3) ** 2).astype(np.float32)

    def prepare(self, volumes: list[dict[str, np.ndarray]]) -> None:
        c = self.config
        if c.arch == "unet":
            src, tgt, wts = [], [], []
            for item in volumes:
                s, _ = normalise_volume(item[c.source])
                t, _ = normalise_volume(item[c.target])
                m = item["mask"]
                src.append(torch.from_numpy(np.ascontiguousarray(axial_slices(s, m))))
                tgt.append(torch.from_numpy(np.ascontiguousarray(axial_slices(t, m))))
                wts.append(torch.from_numpy(np.ascontiguousarray(axial_slices(self._weights(t, m), m))))
            self.x, self.y, self.w = torch.cat(src)[:, None], torch.cat(tgt)[:, None], torch.cat(wts)[:, None]
        else:
            self.vols = []
            for item in volumes:
                s, _ = normalise_volume(item[c.source])
                t, _ = normalise_volume(item[c.target])
                w = self._weights(t, item["mask"])
                vol = torch.stack([torch.from_numpy(s), torch.from_numpy(t), torch.from_numpy(w)])
                if c.crop_axial is not None:
                    vol = crop_axial(vol, c.crop_axial)
                self.vols.append(vol)

    def step(self, model: nn.Module, run: StepRunner) -> dict[str, float]:
        c = self.config
        if c.arch == "unet":
            i = run.randint(len(self.x), c.batch_size)
            x, y, w = _Crops.crop(run, c.patch_size, self.x[i], self.y[i], self.w[i])
            x, y, w = (pad_to_multiple(t, 2 ** c.depth).to(run.device) for t in (x, y, w))
        else:
            batch = []
            p = c.patch_size
            for _ in range(c.batch_size):
                v = self.vols[int(run.randint(len(self.vols)))]
                corner = [int(run.randint(max(n - p, 0) + 1)) for n in v.shape[1:]]
                batch.append(v[:, corner[0]:corner[0] + p, corner[1]:corner[1] + p, corner[2]:corner[2] + p])
            b = torch.stack(batch).to(run.device)
            x, y, w = b[:, :1], b[:, 1:2], b[:, 2:3]
        with run.autocast():
            pred = model(x)
        loss = (w * (pred.float() - y).square()).mean()
        return {"loss": run.optimise(loss)}

    def evaluate(self, model: nn.Module, volumes: list[dict[str, np.ndarray]]) -> dict[str, float]:
        c = self.config
        return _mean_scores([synthesis_scores(predict_volume(model, v[c.source], c.arch), v[c.target], v["mask"])
                             for v in volumes])


class CycleGANTask(HeadTask):
    """Unpaired ``source <-> target`` CycleGAN on 2-D slices (weight name
    ``cyclegan-<source>-<target>``; ships the two generators). ``arch``: the generators,
    ``"unet"`` (:class:`~recon.heads.synthesis.UnetSynthesizer`, ``depth`` pools), ``"resize"``
    (:class:`~recon.heads.synthesis.ResizeConvUnet`: resize-convolution, no checkerboard) or
    ``"local"`` (:class:`~recon.heads.synthesis.LocalSynthesizer`, ``depth`` 3x3 layers) or
    ``"tissue"`` (:class:`~recon.heads.cyclegan.TissueMapSynthesizer`: intensity look-up table of
    ``--knots`` knots up to ``--max-intensity`` plus context convolutions of ``--dilations``,
    started from ``--tissue-init``; ``depth`` unused);
    ``--disc-chans`` the discriminators' width (default ``chans``), ``--disc-layers`` their depth
    (3: 70 x 70 patches), ``--lambda-cycle`` the cycle weight (10), ``--lambda-structure`` the
    polarity-blind structure term (:func:`~recon.heads.synthesis.local_ncc_squared`; 0),
    ``--cycle-warmup N`` ramps the cycle, identity and structure weights from 0 over the first
    ``N`` generator updates (each of them resists the generators' passage from a copy of the
    input to the inverted contrast of T1w <-> T2w: the path crosses non-invertible,
    structure-less outputs); ``--source-negatives`` shows each discriminator the other
    contrast's real slices as fakes; ``--skull-strip`` trains on brain-masked slices (each volume
    multiplied by its brain mask, then normalised), so the generators expect skull-stripped
    input.

    The training subjects are split in halves: source slices from the first half, target
    slices from the second (no subject contributes both). Each step: one generator update
    (least squares adversarial + ``10`` x cycle + ``lambda_identity`` x 10 x identity L1),
    then one discriminator update on images from the :class:`~recon.heads.synthesis.ImagePool`.
    """

    ARCHS = ("unet", "resize", "local", "tissue")

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--disc-chans", type=int, default=None, help="discriminator channels (default --chans)")
        parser.add_argument("--disc-layers", type=int, default=3, help="discriminator stride-2 layers (3: 70x70 patches)")
        parser.add_argument("--lambda-cycle", type=float, default=10.0, help="cycle-consistency weight")
        parser.add_argument("--lambda-structure", type=float, default=0.0,
                            help="weight of the structure term (1 - squared local NCC of input and "
                                 "translation, each direction; 0: off)")
        parser.add_argument("--source-negatives", action="store_true",
                            help="each discriminator also learns the other contrast's real slices as fakes "
                                 "(rejects copies of the input)")
        parser.add_argument("--skull-strip", action="store_true",
                            help="train (and validate) on brain-masked slices: the generators then expect "
                                 "skull-stripped input")
        parser.add_argument("--cycle-warmup", type=int, default=0,
                            help="ramp the cycle (and identity and structure) weights linearly from 0 over this "
                                 "many steps (lets the generators leave the identity map first; 0: off)")
        parser.add_argument("--knots", type=int, default=49, help="--arch tissue: knots of the intensity table")
        parser.add_argument("--max-intensity", type=float, default=3.0,
                            help="--arch tissue: intensity of the last knot (foreground-mean units)")
        parser.add_argument("--dilations", type=int, nargs="*", default=[1, 2, 4, 1],
                            help="--arch tissue: dilations of the 3x3 context convolutions (none: a pointwise map)")
        parser.add_argument("--tissue-init", choices=["identity", "constant"], default="identity",
                            help="--arch tissue: start the table as the copy (identity) or flat (constant)")
        parser.add_argument("--background", type=float, default=None,
                            help="local generators: gate the output to 0 where the input is below this "
                                 "(foreground-mean units, e.g. 0.1)")

    def check(self) -> None:
        c = self.config
        if c.arch not in self.ARCHS:
            raise ValueError(f"arch must be one of {list(self.ARCHS)} for task {c.task!r} (the generators), got {c.arch!r}")
        if c.source == c.target:
            raise ValueError(f"source and target must differ, got {c.source!r} twice")
        if isinstance(c.lambda_identity, bool) or not isinstance(c.lambda_identity, (int, float)) or c.lambda_identity < 0:
            raise ValueError(f"lambda_identity must be a number >= 0, got {c.lambda_identity!r}")
        warmup = c.options.get("cycle_warmup", 0)
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise ValueError(f"cycle_warmup must be an int >= 0, got {warmup!r}")
        if c.arch == "tissue":  # the generator's own checks (knots, max_intensity, dilations, init), before any data
            TissueMapSynthesizer(chans=c.chans, **self._tissue_options())

    def contrasts(self) -> list[str]:
        return [self.config.source, self.config.target]

    def weight_name(self) -> str:
        return f"cyclegan-{self.config.source}-{self.config.target}"

    def build_model(self) -> nn.Module:
        c = self.config
        return CycleGAN(chans=c.chans, num_pool_layers=c.depth, disc_chans=c.options.get("disc_chans") or c.chans,
                        disc_layers=int(c.options.get("disc_layers", 3)),
                        lambda_cycle=float(c.options.get("lambda_cycle", 10.0)), lambda_identity=c.lambda_identity, generator=torch.Generator().manual_seed(c.seed + 1),
                        generator_arch=c.arch, background=c.options.get("background"),
                        lambda_structure=float(c.options.get("lambda_structure", 0.0)),
                        source_negatives=bool(c.options.get("source_negatives", False)),
                        generator_options=self._tissue_options() if c.arch == "tissue" else None)

    def _tissue_options(self) -> dict:
        """Keyword arguments of the ``"tissue"`` generators from ``config.options``."""
        o = self.config.options
        dilations = o.get("dilations", (1, 2, 4, 1))
        return {"knots": o.get("knots", 49), "max_intensity": o.get("max_intensity", 3.0),
                "dilations": tuple(dilations) if isinstance(dilations, list) else dilations,
                "init": o.get("tissue_init", "identity")}

    def shipped_module(self, model: nn.Module) -> nn.Module:
        return nn.ModuleDict({"g_ab": model.g_ab, "g_ba": model.g_ba})

    def optimisers(self, model: nn.Module) -> dict[str, torch.optim.Optimizer]:
        lr = self.config.lr
        return {"g": torch.optim.Adam(model.generators(), lr=lr, betas=(0.5, 0.999)),
                "d": torch.optim.Adam(model.discriminators(), lr=lr, betas=(0.5, 0.999))}

    def prepare(self, volumes: list[dict[str, np.ndarray]]) -> None:
        c = self.config
        half = max(len(volumes) // 2, 1)
        a = [axial_slices(normalise_volume(self._input(i, c.source))[0], i["mask"]) for i in volumes[:half]]
        b = [axial_slices(normalise_volume(self._input(i, c.target))[0], i["mask"]) for i in volumes[half:] or volumes[:half]]
        self.a = torch.from_numpy(np.concatenate(a))[:, None]
        self.b = torch.from_numpy(np.concatenate(b))[:, None]

    def step(self, model: nn.Module, run: StepRunner) -> dict[str, float]:
        c = self.config
        a = pad_to_multiple(_Crops.crop(run, c.patch_size, self.a[run.randint(len(self.a), c.batch_size)])[0], 16)
        b = pad_to_multiple(_Crops.crop(run, c.patch_size, self.b[run.randint(len(self.b), c.batch_size)])[0], 16)
        a, b = a.to(run.device), b.to(run.device)
        warmup = int(c.options.get("cycle_warmup", 0) or 0)
        if warmup:  # the step count from the optimiser's state, so a resumed run continues the ramp
            ramp = min(1.0, _optimiser_steps(run, "g") / warmup)
            model.lambda_cycle = float(c.options.get("lambda_cycle", 10.0)) * ramp
            model.lambda_structure = float(c.options.get("lambda_structure", 0.0)) * ramp
        for p in model.discriminators():
            p.requires_grad_(False)
        with run.autocast():
            g_loss, parts, fake_a, fake_b = model.generator_loss(a, b)
        g = run.optimise(g_loss, "g")
        for p in model.discriminators():
            p.requires_grad_(True)
        with run.autocast():
            d_loss = model.discriminator_loss(a, b, fake_a.float(), fake_b.float())
        d = run.optimise(d_loss, "d")
        return {"g": g, "d": d, **parts}

    def _input(self, item: dict[str, np.ndarray], contrast: str) -> np.ndarray:
        """A volume as the generators see it: brain-masked with ``--skull-strip``, else whole."""
        return item[contrast] * item["mask"] if self.config.options.get("skull_strip") else item[contrast]

    def evaluate(self, model: nn.Module, volumes: list[dict[str, np.ndarray]]) -> dict[str, float]:
        c = self.config
        return _mean_scores([synthesis_scores(predict_volume(model.g_ab, self._input(v, c.source)), v[c.target], v["mask"])
                             for v in volumes])


class GANTask(HeadTask):
    """Unconditional DCGAN on ``image_size`` square T1-weighted axial slices in ``[-1, 1]``
    (weight name ``gan``; ships the generator). Least-squares losses, discriminator without
    batch norm (DCGAN's BCE + batch-norm discriminator wins outright on these mostly-background
    slices and the generator stalls)."""

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--upsample", choices=["transpose", "resize", "blur"], default="transpose",
                            help="generator up-sampling: DCGAN's transposed convolutions, resize-convolution, "
                                 "or transposed convolutions each followed by a fixed [1, 2, 1] binomial blur")

    def check(self) -> None:
        up = self.config.options.get("upsample", "transpose")
        if up not in ("transpose", "resize", "blur"):
            raise ValueError(f"upsample must be 'transpose', 'resize' or 'blur', got {up!r}")

    def contrasts(self) -> list[str]:
        return ["t1w"]

    def build_model(self) -> nn.Module:
        c = self.config
        return nn.ModuleDict({"g": DCGANGenerator(c.latent_dim, c.chans, c.image_size,
                                                 upsample=c.options.get("upsample", "transpose")),
                              "d": DCGANDiscriminator(c.chans, c.image_size, batch_norm=False)})

    def shipped_module(self, model: nn.Module) -> nn.Module:
        return model["g"]

    def optimisers(self, model: nn.Module) -> dict[str, torch.optim.Optimizer]:
        lr = self.config.lr
        return {"g": torch.optim.Adam(model["g"].parameters(), lr=lr, betas=(0.5, 0.999)),
                "d": torch.optim.Adam(model["d"].parameters(), lr=lr, betas=(0.5, 0.999))}

    def prepare(self, volumes: list[dict[str, np.ndarray]]) -> None:
        self.x = torch.cat([gan_slices(i["t1w"], i["mask"], self.config.image_size) for i in volumes])

    def step(self, model: nn.Module, run: StepRunner) -> dict[str, float]:
        c = self.config
        real = self.x[run.randint(len(self.x), c.batch_size)].to(run.device)
        z = torch.randn(c.batch_size, c.latent_dim, generator=run.generator).to(run.device)
        with run.autocast():
            fake = model["g"](z)
            d_loss = 0.5 * (lsgan_loss(model["d"](real).float(), True) + lsgan_loss(model["d"](fake.detach()).float(), False))
        d = run.optimise(d_loss, "d")
        with run.autocast():
            g_loss = lsgan_loss(model["d"](fake).float(), True)
        g = run.optimise(g_loss, "g")
        return {"g": g, "d": d}
