"""Training tasks of the image heads: ``recon train --task synthesis | cyclegan | gan | denoise``.

The image heads (:mod:`recon.heads`) learn image -> image maps, so their training needs no
k-space, masks or coil data: this module holds their data preparation (phantom subjects of
:mod:`recon.data.phantom` or NIfTI folders), one small training loop with checkpoints and
resume (``OUTPUT_DIR/last.ckpt``, written atomically), progress bars, the head weight files
(``data/weights/heads/<name>.pt``) and their loader, and the synthesis evaluation (MAE, PSNR,
SSIM over the brain mask after z-scoring, volume by volume).

Data (``--train-data`` / ``--val-data``):

* ``phantom:A-B`` - phantom subjects with seeds ``A..B`` (inclusive) at 2 mm, every contrast
  from the same anatomy (:class:`recon.data.phantom.Subject`), brain mask from its labels;
* a folder with one sub-folder per contrast (``t1w/``, ``flair/``, ...) of NIfTI volumes
  matched by name (:class:`recon.data.PairedVolumeDataset` for paired tasks).

Example::

    recon train --task synthesis --source t1 --target flair --arch unet \\
        --train-data phantom:0-11 --val-data phantom:100-101 --steps 400 --output-dir runs/t1-flair
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recon.heads.denoise import DenoisingAutoencoder, add_rician_noise, estimate_sigma
from recon.heads.gan import DCGANDiscriminator, DCGANGenerator
from recon.heads.synthesis import CycleGAN, ResNet3d, UnetSynthesizer, crop_axial, lsgan_loss
from recon.ops.crop import center_crop_or_pad

__all__ = [
    "CONTRASTS",
    "TASKS",
    "HeadConfig",
    "canonical_contrast",
    "build_head",
    "save_head",
    "load_head",
    "available_heads",
    "heads_dir",
    "phantom_volumes",
    "folder_volumes",
    "normalise_volume",
    "synthesis_scores",
    "train_head",
    "main",
]

logger = logging.getLogger("recon.train")

#: contrasts the heads know (phantom sequence names) and their accepted spellings
CONTRASTS: dict[str, str] = {"t1": "t1w", "t1w": "t1w", "t2": "t2w", "t2w": "t2w", "flair": "flair", "pd": "pd"}
#: training tasks of this module
TASKS: tuple[str, ...] = ("synthesis", "cyclegan", "gan", "denoise")
FORMAT = "recon-head-1"


def canonical_contrast(name: str, argument: str = "source") -> str:
    """``"t1"`` -> ``"t1w"`` etc.; ValueError naming ``argument`` for an unknown contrast."""
    if not isinstance(name, str) or name.lower() not in CONTRASTS:
        raise ValueError(f"{argument} must be one of {sorted(set(CONTRASTS))}, got {name!r}")
    return CONTRASTS[name.lower()]


@dataclass
class HeadConfig:
    """Everything that defines a head training run (saved in checkpoints and weight files)."""

    task: str = "synthesis"
    arch: str = "unet"                      # synthesis: 'unet' (2-D) or 'resnet3d'
    source: str = "t1w"
    target: str = "flair"
    train_data: str = "phantom:0-11"
    val_data: Optional[str] = "phantom:100-101"
    output_dir: str = "runs/head"
    chans: int = 16
    depth: int = 3                          # U-Net pools / residual blocks / denoiser levels
    steps: int = 400
    time_budget: Optional[float] = None     # seconds; stop early (the card records the steps done)
    batch_size: int = 8
    patch_size: int = 32                    # 3-D patches (resnet3d), 2-D training crops (others but gan)
    crop_axial: Optional[tuple[float, float]] = None  # e.g. (0.2, 0.8): drop the neck (3-D)
    lr: float = 1e-3
    seed: int = 0
    latent_dim: int = 64                    # gan
    image_size: int = 64                    # gan
    snr_range: tuple[float, float] = (3.0, 30.0)  # denoise
    lambda_identity: float = 0.5            # cyclegan
    resume: bool = True
    progress: bool = False
    num_threads: Optional[int] = None
    data_cache: Optional[str] = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {list(TASKS)}, got {self.task!r}")
        if self.arch not in ("unet", "resnet3d"):
            raise ValueError(f"arch must be 'unet' or 'resnet3d', got {self.arch!r}")
        self.source = canonical_contrast(self.source, "source")
        self.target = canonical_contrast(self.target, "target")
        if self.task in ("synthesis", "cyclegan") and self.source == self.target:
            raise ValueError(f"source and target must differ, got {self.source!r} twice")
        for name in ("chans", "depth", "steps", "batch_size", "patch_size", "latent_dim", "image_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not (isinstance(self.lr, (int, float)) and 0 < self.lr < 1):
            raise ValueError(f"lr must be in (0, 1), got {self.lr!r}")
        lo, hi = self.snr_range
        if not 0 < lo <= hi:
            raise ValueError(f"snr_range must be (low, high) with 0 < low <= high, got {self.snr_range!r}")

    @property
    def name(self) -> str:
        """Weight-file name: ``synthesis-unet-t1w-flair``, ``cyclegan-t1w-t2w``, ``gan``, ``denoise``."""
        if self.task == "synthesis":
            return f"synthesis-{self.arch}-{self.source}-{self.target}"
        if self.task == "cyclegan":
            return f"cyclegan-{self.source}-{self.target}"
        return self.task


# ----------------------------------------------------------------------------- models and files

def build_head(config: HeadConfig) -> nn.Module:
    """The network of ``config`` (fresh weights, seeded by ``config.seed``)."""
    with _fork(config.seed):
        if config.task == "synthesis":
            if config.arch == "resnet3d":
                return ResNet3d(chans=config.chans, num_blocks=config.depth)
            return UnetSynthesizer(chans=config.chans, num_pool_layers=config.depth)
        if config.task == "cyclegan":
            return CycleGAN(chans=config.chans, num_pool_layers=config.depth, disc_chans=config.chans,
                            lambda_identity=config.lambda_identity,
                            generator=torch.Generator().manual_seed(config.seed + 1))
        if config.task == "gan":
            return nn.ModuleDict({"g": DCGANGenerator(config.latent_dim, config.chans, config.image_size),
                                  "d": DCGANDiscriminator(config.chans, config.image_size, batch_norm=False)})
        return DenoisingAutoencoder(chans=config.chans, depth=config.depth)


class _fork:
    """Seed torch's RNG inside a block and restore it after (module init draws from it)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def __enter__(self):
        self._devices = torch.random.fork_rng(devices=[])
        self._devices.__enter__()
        torch.manual_seed(self.seed)

    def __exit__(self, *exc):
        return self._devices.__exit__(*exc)


def heads_dir() -> Path:
    """Folder of the bundled head weights: ``<data>/weights/heads``."""
    from recon.data.sample import data_dir

    return data_dir() / "weights" / "heads"


def _shipped_module(config: HeadConfig, model: nn.Module) -> nn.Module:
    """The part of a trained model that ships: CycleGAN's generators, the GAN's generator."""
    if config.task == "cyclegan":
        return nn.ModuleDict({"g_ab": model.g_ab, "g_ba": model.g_ba})
    if config.task == "gan":
        return model["g"]
    return model


def save_head(path: str | Path, config: HeadConfig, model: nn.Module, card: dict, *, half: bool = True) -> Path:
    """Write a head weight file atomically: ``{format, config, state_dict (float16), card}``."""
    from recon.data.io import atomic_path

    state = {k: (v.half() if half and v.is_floating_point() else v).cpu().clone()
             for k, v in _shipped_module(config, model).state_dict().items()}
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "config": dataclasses.asdict(config), "state_dict": state, "card": card}, tmp)
    return path


def available_heads(folder: str | Path | None = None) -> dict[str, dict]:
    """``{name: card}`` of the weight files in ``folder`` (default :func:`heads_dir`)."""
    folder = Path(folder) if folder is not None else heads_dir()
    out = {}
    for path in sorted(folder.glob("*.pt")) if folder.is_dir() else []:
        try:
            out[path.stem] = json.loads((path.with_suffix(".json")).read_text()) if path.with_suffix(".json").is_file() else {}
        except (OSError, json.JSONDecodeError):
            out[path.stem] = {}
    return out


def load_head(weights: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, HeadConfig, dict]:
    """Load a head weight file (a path or the name of a bundled one) in eval mode, float32.

    Returns:
        ``(module, config, card)``: the synthesis network, ``ModuleDict(g_ab, g_ba)`` for a
        CycleGAN, the generator for the GAN, the autoencoder for the denoiser.

    Raises:
        FileNotFoundError: no such file or bundled name (the message lists the bundled ones).
        ValueError: not a head weight file.
    """
    path = Path(weights)
    if not path.is_file():
        candidate = heads_dir() / f"{weights}.pt"
        if not candidate.is_file():
            raise FileNotFoundError(
                f"weights {str(weights)!r} is neither a file nor a bundled head; bundled: {sorted(available_heads())}"
            )
        path = candidate
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same user error
        raise ValueError(f"weights {str(path)!r} cannot be read as a head weight file: {err}") from err
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ValueError(f"weights {str(path)!r} is not a recon head weight file (format {FORMAT!r})")
    cfg = dict(blob["config"])
    for key in ("crop_axial", "snr_range"):
        if isinstance(cfg.get(key), list):
            cfg[key] = tuple(cfg[key])
    config = HeadConfig(**cfg)
    model = _shipped_module(config, build_head(config))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()})
    return model.to(device).eval(), config, blob.get("card", {})


# ----------------------------------------------------------------------------- data

def normalise_volume(volume: np.ndarray) -> tuple[np.ndarray, float]:
    """``volume / s`` with ``s`` the mean of the voxels above the mean (scale only; 0 stays 0)."""
    v = np.asarray(volume, dtype=np.float32)
    mean = float(v.mean())
    fg = v[v > mean]
    scale = float(fg.mean()) if fg.size else mean
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError("volume has no positive signal to normalise")
    return v / scale, scale


def _parse_seeds(spec: str) -> list[int]:
    body = spec.split(":", 1)[1]
    seeds: list[int] = []
    try:
        for part in body.split(","):
            if "-" in part:
                a, b = part.split("-")
                seeds += list(range(int(a), int(b) + 1))
            elif part.strip():
                seeds.append(int(part))
    except ValueError as err:
        raise ValueError(f"phantom data must look like 'phantom:0-11' or 'phantom:3,5,8', got {spec!r}") from err
    if not seeds or min(seeds) < 0:
        raise ValueError(f"phantom data must name non-negative seeds, got {spec!r}")
    return seeds


def phantom_volumes(seeds: Sequence[int], contrasts: Sequence[str], *, voxel_size: float = 2.0,
                    cache: str | Path | None = None) -> list[dict[str, np.ndarray]]:
    """Phantom subjects as ``{contrast: (X, Y, Z) float32, "mask": bool brain mask}`` dicts.

    Subject ``seed`` is imaged at 3 T for even seeds and 1.5 T for odd ones (so the models see
    both field strengths). With ``cache`` the volumes are kept as ``.npz`` files there.
    """
    from recon.data.phantom import Subject

    out = []
    for seed in seeds:
        item: dict[str, np.ndarray] = {}
        path = Path(cache) / f"phantom-{seed}-{voxel_size:g}mm.npz" if cache else None
        if path is not None and path.is_file():
            with np.load(path) as z:
                item = {k: z[k] for k in z.files}
        missing = [c for c in contrasts if c not in item]
        if missing or "mask" not in item:
            subject = Subject(seed=int(seed), voxel_size=voxel_size)
            field_strength = 3.0 if seed % 2 == 0 else 1.5
            for c in sorted(set(CONTRASTS.values())):
                item[c] = subject.contrast(c, field_strength=field_strength).volume
            item["mask"] = np.isin(subject.labels, (1, 2, 3))  # gm, wm, csf
            if path is not None:
                from recon.data.io import atomic_path

                path.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                    np.savez(fh, **item)
        out.append(item)
    return out


def folder_volumes(root: str | Path, contrasts: Sequence[str]) -> list[dict[str, np.ndarray]]:
    """Paired NIfTI volumes ``root/<contrast>/<subject>.nii.gz`` (same grid per subject).

    The brain mask is ``root/mask/<subject>`` when present, else the voxels above the mean of the
    first contrast.
    """
    from recon.data import PairedVolumeDataset

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"training data folder {str(root)!r} does not exist")
    first = contrasts[0]
    others = list(contrasts[1:]) or [first]
    sets = [PairedVolumeDataset(root / first, root / c, seed=0) for c in others]
    out = []
    for i in range(len(sets[0])):
        item = {first: sets[0][i]["source"][0].numpy()}
        for c, ds in zip(others, sets):
            item[c] = ds[i]["target"][0].numpy()
        mask_dir = root / "mask"
        if mask_dir.is_dir():
            item["mask"] = PairedVolumeDataset(root / first, mask_dir, seed=0)[i]["target"][0].numpy() > 0.5
        else:
            item["mask"] = item[first] > item[first].mean()
        out.append(item)
    return out


def load_data(spec: str, contrasts: Sequence[str], cache: str | None = None) -> list[dict[str, np.ndarray]]:
    """``phantom:...`` or a folder (see the module docstring)."""
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"train_data must be 'phantom:A-B' or a folder, got {spec!r}")
    if spec.startswith("phantom:"):
        return phantom_volumes(_parse_seeds(spec), contrasts, cache=cache)
    return folder_volumes(spec, contrasts)


def axial_slices(volume: np.ndarray, mask: np.ndarray, min_fraction: float = 0.02) -> np.ndarray:
    """Axial slices ``(N, X, Y)`` whose brain mask covers at least ``min_fraction`` of the slice."""
    keep = mask.reshape(-1, mask.shape[-1]).mean(0) >= min_fraction
    return np.moveaxis(volume[..., keep], -1, 0)


def gan_slices(volume: np.ndarray, mask: np.ndarray, size: int) -> torch.Tensor:
    """Brain slices padded to a square and resized to ``size``, scaled to ``[-1, 1]`` by the 99.5th percentile."""
    s = torch.from_numpy(np.ascontiguousarray(axial_slices(volume, mask, 0.1))).float()[:, None]
    n = max(s.shape[-2:])
    s = center_crop_or_pad(s, (n, n))
    s = F.interpolate(s, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    q = float(np.percentile(volume[volume > 0], 99.5))
    return (s / q).clamp(0, 1) * 2 - 1


# ----------------------------------------------------------------------------- evaluation

def synthesis_scores(prediction: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """MAE, PSNR and SSIM over ``mask`` after z-scoring both volumes over ``mask``.

    PSNR uses the z-scored truth's range inside the mask; SSIM is scikit-image's SSIM map
    (7-voxel window, same data range) averaged over the mask.
    """
    from skimage.metrics import structural_similarity

    from recon.preprocess import zscore

    mask = np.asarray(mask, bool)
    if prediction.shape != truth.shape or mask.shape != truth.shape:
        raise ValueError(f"prediction, truth and mask must share a shape, got {prediction.shape}, {truth.shape}, {mask.shape}")
    p = zscore(np.asarray(prediction, np.float64), mask)
    t = zscore(np.asarray(truth, np.float64), mask)
    err = p[mask] - t[mask]
    rng = float(t[mask].max() - t[mask].min())
    mse = float(np.mean(err ** 2))
    _, smap = structural_similarity(t, p, data_range=rng, full=True, win_size=7)
    return {"mae": float(np.mean(np.abs(err))), "psnr": 10 * math.log10(rng ** 2 / mse) if mse > 0 else math.inf,
            "ssim": float(smap[mask].mean())}


# ----------------------------------------------------------------------------- training

def _pad_to(x: torch.Tensor, multiple: int) -> torch.Tensor:
    H, W = x.shape[-2:]
    return F.pad(x, (0, (-W) % multiple, 0, (-H) % multiple))


class _Task:
    """One task's batches, losses and optimisers."""

    def __init__(self, config: HeadConfig, model: nn.Module, data: list[dict[str, np.ndarray]], generator: torch.Generator):
        self.c, self.model, self.g = config, model, generator
        c = config
        if c.task == "synthesis" and c.arch == "unet":
            src, tgt = [], []
            for item in data:
                s, _ = normalise_volume(item[c.source])
                t, _ = normalise_volume(item[c.target])
                src.append(torch.from_numpy(np.ascontiguousarray(axial_slices(s, item["mask"]))))
                tgt.append(torch.from_numpy(np.ascontiguousarray(axial_slices(t, item["mask"]))))
            self.x, self.y = torch.cat(src)[:, None], torch.cat(tgt)[:, None]
        elif c.task == "synthesis":
            self.vols = []
            for item in data:
                s, _ = normalise_volume(item[c.source])
                t, _ = normalise_volume(item[c.target])
                pair = torch.stack([torch.from_numpy(s), torch.from_numpy(t)])
                if c.crop_axial is not None:
                    pair = crop_axial(pair, c.crop_axial)
                self.vols.append(pair)
        elif c.task == "cyclegan":
            half = max(len(data) // 2, 1)
            a = [axial_slices(normalise_volume(i[c.source])[0], i["mask"]) for i in data[:half]]
            b = [axial_slices(normalise_volume(i[c.target])[0], i["mask"]) for i in data[half:] or data[:half]]
            self.a = torch.from_numpy(np.concatenate(a))[:, None]
            self.b = torch.from_numpy(np.concatenate(b))[:, None]
        elif c.task == "gan":
            self.x = torch.cat([gan_slices(i["t1w"], i["mask"], c.image_size) for i in data])
        else:
            slices = [axial_slices(i["t1w"], i["mask"], 0.1) for i in data]
            slices += [axial_slices(i[k], i["mask"], 0.1) for i in data for k in ("t2w", "flair") if k in i]
            # a list of (1, H, W) slices: volumes of different grids (2 mm phantoms, 1 mm real) mix
            self.x = [torch.from_numpy(np.ascontiguousarray(sl, dtype=np.float32))[None] for s in slices for sl in s]
        self.optimisers = self._optimisers()

    def _optimisers(self) -> dict[str, torch.optim.Optimizer]:
        c, m = self.c, self.model
        if c.task == "cyclegan":
            return {"g": torch.optim.Adam(m.generators(), lr=c.lr, betas=(0.5, 0.999)),
                    "d": torch.optim.Adam(m.discriminators(), lr=c.lr, betas=(0.5, 0.999))}
        if c.task == "gan":
            return {"g": torch.optim.Adam(m["g"].parameters(), lr=c.lr, betas=(0.5, 0.999)),
                    "d": torch.optim.Adam(m["d"].parameters(), lr=c.lr, betas=(0.5, 0.999))}
        return {"model": torch.optim.Adam(m.parameters(), lr=c.lr)}

    def _crop(self, *images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The same random ``patch_size`` square crop of each ``(B, 1, H, W)`` batch (whole if smaller)."""
        p = self.c.patch_size
        H, W = images[0].shape[-2:]
        if p >= H and p >= W:
            return images
        i0 = int(torch.randint(max(H - p, 0) + 1, (), generator=self.g))
        j0 = int(torch.randint(max(W - p, 0) + 1, (), generator=self.g))
        return tuple(im[..., i0:i0 + p, j0:j0 + p] for im in images)

    def _pick(self, n: int, k: int) -> torch.Tensor:
        return torch.randint(n, (k,), generator=self.g)

    def step(self) -> dict[str, float]:
        c, m, opt = self.c, self.model, self.optimisers
        if c.task == "synthesis" and c.arch == "unet":
            i = self._pick(len(self.x), c.batch_size)
            x, y = self._crop(self.x[i], self.y[i])
            x, y = _pad_to(x, 8), _pad_to(y, 8)
            loss = F.mse_loss(m(x), y)
            opt["model"].zero_grad(set_to_none=True)
            loss.backward()
            opt["model"].step()
            return {"loss": loss.item()}
        if c.task == "synthesis":
            batch = []
            p = c.patch_size
            for _ in range(c.batch_size):
                v = self.vols[int(self._pick(len(self.vols), 1))]
                corner = [int(torch.randint(max(n - p, 0) + 1, (), generator=self.g)) for n in v.shape[1:]]
                batch.append(v[:, corner[0]:corner[0] + p, corner[1]:corner[1] + p, corner[2]:corner[2] + p])
            b = torch.stack(batch)
            loss = F.mse_loss(m(b[:, :1]), b[:, 1:])
            opt["model"].zero_grad(set_to_none=True)
            loss.backward()
            opt["model"].step()
            return {"loss": loss.item()}
        if c.task == "cyclegan":
            a = _pad_to(self._crop(self.a[self._pick(len(self.a), c.batch_size)])[0], 16)
            b = _pad_to(self._crop(self.b[self._pick(len(self.b), c.batch_size)])[0], 16)
            for p_ in m.discriminators():
                p_.requires_grad_(False)
            g_loss, parts, fake_a, fake_b = m.generator_loss(a, b)
            opt["g"].zero_grad(set_to_none=True)
            g_loss.backward()
            opt["g"].step()
            for p_ in m.discriminators():
                p_.requires_grad_(True)
            d_loss = m.discriminator_loss(a, b, fake_a, fake_b)
            opt["d"].zero_grad(set_to_none=True)
            d_loss.backward()
            opt["d"].step()
            return {"g": g_loss.item(), "d": d_loss.item(), **parts}
        if c.task == "gan":
            real = self.x[self._pick(len(self.x), c.batch_size)]
            z = torch.randn(c.batch_size, c.latent_dim, generator=self.g)
            fake = m["g"](z)
            # least-squares GAN losses, discriminator without batch norm (DCGAN's BCE + batch-norm
            # discriminator wins outright on these mostly-background slices and the generator stalls)
            d_loss = 0.5 * (lsgan_loss(m["d"](real), True) + lsgan_loss(m["d"](fake.detach()), False))
            opt["d"].zero_grad(set_to_none=True)
            d_loss.backward()
            opt["d"].step()
            g_loss = lsgan_loss(m["d"](fake), True)
            opt["g"].zero_grad(set_to_none=True)
            g_loss.backward()
            opt["g"].step()
            return {"g": g_loss.item(), "d": d_loss.item()}
        # denoise: random crops of random slices, Rician noise at a random SNR, estimated sigma
        p = c.patch_size
        clean, noisy, sig = [], [], []
        lo, hi = math.log(c.snr_range[0]), math.log(c.snr_range[1])
        for _ in range(c.batch_size):
            s = self.x[int(self._pick(len(self.x), 1))][None]
            snr = math.exp(lo + (hi - lo) * float(torch.rand((), generator=self.g)))
            n, _ = add_rician_noise(s, snr, self.g)
            scale = float(n[n > n.mean()].mean())
            sigma = float(estimate_sigma(n)) / scale
            H, W = s.shape[-2:]
            i0 = int(torch.randint(max(H - p, 0) + 1, (), generator=self.g))
            j0 = int(torch.randint(max(W - p, 0) + 1, (), generator=self.g))
            clean.append(s[0, :, i0:i0 + p, j0:j0 + p] / scale)
            noisy.append(n[0, :, i0:i0 + p, j0:j0 + p] / scale)
            sig.append(sigma)
        x, y = torch.stack(noisy), torch.stack(clean)
        loss = F.mse_loss(m(x, torch.tensor(sig)), y)
        opt["model"].zero_grad(set_to_none=True)
        loss.backward()
        opt["model"].step()
        return {"loss": loss.item()}


@dataclass
class HeadResult:
    """What :func:`train_head` did."""

    config: HeadConfig
    steps: int
    seconds: float
    last_checkpoint: Path
    weights: Path
    history: list = field(default_factory=list)


def train_head(config: HeadConfig, data: list[dict[str, np.ndarray]] | None = None) -> HeadResult:
    """Train one head; checkpoints in ``config.output_dir`` (``last.ckpt``, resumed when present).

    Args:
        config: the run.
        data: training volumes (default: loaded from ``config.train_data``).

    Returns:
        :class:`HeadResult`; the weight file is ``OUTPUT_DIR/<config.name>.pt``.
    """
    from tqdm.auto import tqdm

    from recon.data.io import atomic_path, remove_stale_temporaries

    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    contrasts = [config.source, config.target] if config.task in ("synthesis", "cyclegan") else ["t1w"]
    if data is None:
        data = load_data(config.train_data, contrasts, config.data_cache)
    if not data:
        raise ValueError(f"train_data {config.train_data!r} holds no volumes")
    threads = torch.get_num_threads()
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    try:
        model = build_head(config).train()
        generator = torch.Generator().manual_seed(config.seed)
        task = _Task(config, model, data, generator)
        start_step, history, elapsed0 = 0, [], 0.0
        ckpt_path = out / "last.ckpt"
        if config.resume and ckpt_path.is_file():
            ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
            if ckpt["config"]["task"] != config.task:
                raise ValueError(f"{ckpt_path} belongs to task {ckpt['config']['task']!r}, not {config.task!r}")
            model.load_state_dict(ckpt["model"])
            for k, o in task.optimisers.items():
                o.load_state_dict(ckpt["optimisers"][k])
            generator.set_state(ckpt["generator"])
            start_step, history, elapsed0 = ckpt["step"], ckpt["history"], ckpt.get("seconds", 0.0)
        t0 = time.perf_counter()
        step = start_step
        bar = tqdm(total=config.steps, initial=start_step, disable=not config.progress, desc=config.name)

        def save_checkpoint() -> None:
            with atomic_path(ckpt_path) as tmp:
                torch.save({"config": dataclasses.asdict(config), "model": model.state_dict(),
                            "optimisers": {k: o.state_dict() for k, o in task.optimisers.items()},
                            "generator": generator.get_state(), "step": step, "history": history,
                            "seconds": elapsed0 + time.perf_counter() - t0}, tmp)

        while step < config.steps:
            if config.time_budget is not None and elapsed0 + time.perf_counter() - t0 > config.time_budget:
                logger.info("%s: time budget %.0f s reached at step %d", config.name, config.time_budget, step)
                break
            losses = task.step()
            step += 1
            bar.update(1)
            if step % 25 == 0 or step == config.steps:
                history.append({"step": step, **losses})
                bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items() if k in ("loss", "g", "d")})
            if step % 200 == 0:
                save_checkpoint()
        bar.close()
        save_checkpoint()
        seconds = elapsed0 + time.perf_counter() - t0
        model.eval()
        card = {"name": config.name, "task": config.task, "steps": step, "train_seconds": round(seconds, 1),
                "train_data": config.train_data, "final_losses": history[-1] if history else {}}
        weights = save_head(out / f"{config.name}.pt", config, model, card)
        with atomic_path(out / "history.json") as tmp:
            Path(tmp).write_text(json.dumps(history, indent=1))
        return HeadResult(config, step, seconds, ckpt_path, weights, history)
    finally:
        torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- command line

def build_parser(prog: str = "recon train"):
    """Parser of ``recon train --task ...`` (the image heads)."""
    from recon.train.cli_args import OneLineParser

    d = HeadConfig()
    p = OneLineParser(prog=prog, description="Train an image head (contrast synthesis, CycleGAN, slice GAN, denoiser).")
    p.add_argument("--task", required=True, choices=TASKS)
    p.add_argument("--arch", default=d.arch, choices=("unet", "resnet3d"), help="synthesis network: 2-D U-Net or 3-D ResNet")
    p.add_argument("--source", default=d.source, help="source contrast (t1, t2, flair, pd)")
    p.add_argument("--target", default=d.target, help="target contrast")
    p.add_argument("--train-data", default=d.train_data, help="'phantom:A-B' or a folder with one sub-folder per contrast")
    p.add_argument("--output-dir", default=d.output_dir)
    p.add_argument("--data-cache", default=None, help="folder for generated phantom volumes (.npz)")
    for name in ("chans", "depth", "steps", "batch_size", "patch_size", "seed", "latent_dim", "image_size", "num_threads"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(d, name))
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--time-budget", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--crop-axial", type=float, nargs=2, default=None, metavar=("START", "STOP"),
                   help="3-D: keep this fraction of the axial axis (e.g. 0.2 0.8 drops the neck)")
    p.add_argument("--no-resume", action="store_true", help="start afresh even if OUTPUT_DIR/last.ckpt exists")
    p.add_argument("--progress", action="store_true")
    return p


def config_from_argv(argv: Sequence[str]) -> HeadConfig:
    """A :class:`HeadConfig` from ``recon train --task ...`` arguments."""
    args = build_parser().parse_args(list(argv))
    kwargs = {k: v for k, v in vars(args).items() if k not in ("no_resume",)}
    kwargs["resume"] = not args.no_resume
    if kwargs["crop_axial"] is not None:
        kwargs["crop_axial"] = tuple(kwargs["crop_axial"])
    if args.task in ("gan", "denoise"):
        kwargs["source"], kwargs["target"] = "t1w", "t2w"
    return HeadConfig(**kwargs)


def main(argv: Sequence[str]) -> int:
    """``recon train --task ...``: train, log where the weights went; 0 or 2 (one-line error)."""
    try:
        config = config_from_argv(argv)
        result = train_head(config)
    except (ValueError, TypeError, FileNotFoundError) as err:
        logger.error("%s", err)
        return 2
    logger.info("done: %d steps in %.0f s, weights %s", result.steps, result.seconds, result.weights)
    return 0
