"""Training of the image heads: ``recon train --task synthesis | cyclegan | gan | denoise | ...``.

The image heads (:mod:`recon.heads`) learn image -> image maps, so their training needs no
k-space, masks or coil data. This module holds what every head task shares:

* the **task interface** :class:`HeadTask` and the **registry** :data:`TASK_REGISTRY`
  (task name -> ``"module:Class"``, imported on first use): adding a task is one class and
  one registry entry;
* :func:`train_head`, the loop: checkpoints and resume (``OUTPUT_DIR/last.ckpt``, written
  atomically), progress bars, validation (``--val-data``, the task's :meth:`HeadTask.evaluate`),
  ``torchrun`` (one process per rank, gradients averaged across ranks before every optimiser
  step: works for one network or for GANs with several optimisers) and mixed precision
  (``--amp``: bfloat16 autocast on CPU, float16 autocast + ``GradScaler`` on CUDA);
* the head weight files (``data/weights/heads/<name>.pt``), their loader :func:`load_head`;
* data preparation (phantom subjects of :mod:`recon.data.phantom` or NIfTI folders) and the
  synthesis evaluation (MAE, PSNR, SSIM over the brain mask after z-scoring, volume by volume).

The built-in tasks live in :mod:`recon.train.tasks_synthesis` (``synthesis``, ``cyclegan``,
``gan``) and :mod:`recon.train.tasks_denoise` (``denoise``).

Data (``--train-data`` / ``--val-data``):

* ``phantom:A-B`` - phantom subjects with seeds ``A..B`` (inclusive) at 2 mm, every contrast
  from the same anatomy (:class:`recon.data.phantom.Subject`), brain mask from its labels;
* a folder with one sub-folder per contrast (``t1w/``, ``flair/``, ...) of NIfTI volumes
  matched by name (:class:`recon.data.PairedVolumeDataset` for paired tasks).

Example::

    recon train --task synthesis --source t1 --target flair --arch unet \\
        --train-data phantom:0-11 --val-data phantom:100-101 --steps 400 --output-dir runs/t1-flair
    torchrun --nproc_per_node 2 -m recon.train --task denoise --steps 400 --amp --output-dir runs/dn
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recon.ops.crop import center_crop_or_pad

__all__ = [
    "CONTRASTS",
    "TASK_REGISTRY",
    "TASKS",
    "HeadConfig",
    "HeadTask",
    "StepRunner",
    "HeadResult",
    "task_class",
    "canonical_contrast",
    "build_head",
    "save_head",
    "load_head",
    "available_heads",
    "heads_dir",
    "phantom_volumes",
    "folder_volumes",
    "load_data",
    "normalise_volume",
    "axial_slices",
    "synthesis_scores",
    "train_head",
    "main",
]

logger = logging.getLogger("recon.train")

#: contrasts the heads know (phantom sequence names) and their accepted spellings
CONTRASTS: dict[str, str] = {"t1": "t1w", "t1w": "t1w", "t2": "t2w", "t2w": "t2w", "flair": "flair", "pd": "pd"}

#: task name -> ``"module:Class"`` of its :class:`HeadTask` subclass (imported on first use).
#: Adding a task: write the class in its own module and add one entry here.
TASK_REGISTRY: dict[str, str] = {
    "synthesis": "recon.train.tasks_synthesis:SynthesisTask",
    "cyclegan": "recon.train.tasks_synthesis:CycleGANTask",
    "gan": "recon.train.tasks_synthesis:GANTask",
    "denoise": "recon.train.tasks_denoise:DenoiseTask",
    "register": "recon.train.tasks_register:RegisterTask",
    "superres": "recon.train.tasks_superres:SuperresTask",
    "srgan": "recon.train.tasks_superres:SRGANTask",
}
#: the registered task names (kept for callers of the first version; the registry is the truth)
TASKS: tuple[str, ...] = tuple(TASK_REGISTRY)
FORMAT = "recon-head-1"


def canonical_contrast(name: str, argument: str = "source") -> str:
    """``"t1"`` -> ``"t1w"`` etc.; ValueError naming ``argument`` for an unknown contrast."""
    if not isinstance(name, str) or name.lower() not in CONTRASTS:
        raise ValueError(f"{argument} must be one of {sorted(set(CONTRASTS))}, got {name!r}")
    return CONTRASTS[name.lower()]


def task_class(name: str) -> type["HeadTask"]:
    """The :class:`HeadTask` subclass registered as ``name`` in :data:`TASK_REGISTRY`.

    Raises:
        ValueError: ``name`` is not registered (the message lists the tasks).
    """
    if not isinstance(name, str) or name not in TASK_REGISTRY:
        raise ValueError(f"task must be one of {sorted(TASK_REGISTRY)}, got {name!r}")
    module_name, _, class_name = TASK_REGISTRY[name].partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, HeadTask)):
        raise TypeError(f"TASK_REGISTRY[{name!r}] = {TASK_REGISTRY[name]!r} is not a HeadTask subclass")
    return cls


@dataclass
class HeadConfig:
    """Everything that defines a head training run (saved in checkpoints and weight files).

    Generic fields are shared by every task (each task reads the ones it needs and checks
    them in :meth:`HeadTask.check`); task-specific settings that have no field here go in
    ``options`` (a JSON-able dict; on the command line each task declares its own flags in
    :meth:`HeadTask.add_arguments`).
    """

    task: str = "synthesis"
    arch: str = "unet"                      # synthesis: 'unet' (2-D) or 'resnet3d'; other tasks their own
    source: str = "t1w"
    target: str = "flair"
    train_data: str = "phantom:0-11"
    val_data: Optional[str] = None          # e.g. 'phantom:100-101': the task's evaluate() at the end
    output_dir: str = "runs/head"
    chans: int = 16
    depth: int = 3                          # U-Net pools / residual blocks / denoiser levels
    steps: int = 400
    time_budget: Optional[float] = None     # seconds; stop early (the card records the steps done)
    batch_size: int = 8                     # per process (torchrun: the effective batch is x world size)
    patch_size: int = 32                    # 3-D patches (resnet3d), 2-D training crops (others but gan)
    crop_axial: Optional[tuple[float, float]] = None  # e.g. (0.2, 0.8): drop the neck (3-D)
    lr: float = 1e-3
    lr_schedule: str = "constant"           # or 'cosine': lr * (1 + cos(pi step / steps)) / 2, every optimiser
    seed: int = 0
    latent_dim: int = 64                    # gan
    image_size: int = 64                    # gan
    snr_range: tuple[float, float] = (3.0, 30.0)  # denoise
    lambda_identity: float = 0.5            # cyclegan
    resume: bool = True
    progress: bool = False
    num_threads: Optional[int] = None
    data_cache: Optional[str] = None
    amp: bool = False                       # bf16 autocast on CPU, fp16 autocast + GradScaler on CUDA
    device: str = "cpu"                     # 'cpu', 'cuda' or 'auto'
    val_every: Optional[int] = None         # steps between validations (None: at the end only)
    checkpoint_every: int = 200             # steps between checkpoints
    init_weights: Optional[str] = None      # fine-tune: start from this head weight file / bundled name
    options: dict = field(default_factory=dict)  # task-specific settings (HeadTask.add_arguments)

    def __post_init__(self) -> None:
        if not isinstance(self.task, str) or self.task not in TASK_REGISTRY:
            raise ValueError(f"task must be one of {sorted(TASK_REGISTRY)}, got {self.task!r}")
        self.source = canonical_contrast(self.source, "source")
        self.target = canonical_contrast(self.target, "target")
        for name in ("chans", "depth", "steps", "batch_size", "patch_size", "latent_dim", "image_size",
                     "checkpoint_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.val_every is not None and (isinstance(self.val_every, bool) or not isinstance(self.val_every, int)
                                           or self.val_every < 1):
            raise ValueError(f"val_every must be a positive int or None, got {self.val_every!r}")
        if not (isinstance(self.lr, (int, float)) and 0 < self.lr < 1):
            raise ValueError(f"lr must be in (0, 1), got {self.lr!r}")
        lo, hi = self.snr_range
        if not 0 < lo <= hi:
            raise ValueError(f"snr_range must be (low, high) with 0 < low <= high, got {self.snr_range!r}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}")
        if self.device not in ("cpu", "cuda", "auto"):
            raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', got {self.device!r}")
        if not isinstance(self.amp, bool):
            raise ValueError(f"amp must be True or False, got {self.amp!r}")
        if not isinstance(self.options, dict):
            raise ValueError(f"options must be a dict, got {type(self.options).__name__}")
        task_class(self.task)(self)  # the task's own checks (arch, contrasts, options)

    @property
    def name(self) -> str:
        """Weight-file name (:meth:`HeadTask.weight_name`): ``synthesis-unet-t1w-flair``, ``gan``, ..."""
        return task_class(self.task)(self).weight_name()


# ----------------------------------------------------------------------------- the task interface

class HeadTask:
    """One trainable image head: what :func:`train_head` needs to know about a task.

    Subclass it in its own module, register it in :data:`TASK_REGISTRY`, and implement
    :meth:`build_model`, :meth:`prepare` and :meth:`step`; override the others as needed.
    A task object is cheap to make (``TaskClass(config)``, no data): :func:`load_head` makes
    one to rebuild a network from a weight file's config.

    Life of a training run (every process of a torchrun launch does the same)::

        task = TaskClass(config)                       # check(): config errors -> ValueError
        model = task.build_model()                     # under torch.manual_seed(config.seed)
        task.prepare(volumes)                          # training data -> tensors (CPU)
        run = StepRunner(task.optimisers(model), ...)
        for step in ...: losses = task.step(model, run)   # returns floats for the log
        scores = task.evaluate(model, val_volumes)     # rank 0, eval mode, no grad
        save_head(..., task.shipped_module(model))     # -> OUTPUT_DIR/<task.weight_name()>.pt

    Volumes (``prepare`` / ``evaluate``) are dicts ``{contrast: (X, Y, Z) float32 array,
    "mask": bool brain mask}`` (:func:`load_data`), holding at least :meth:`contrasts`.

    Attributes:
        config: the run's :class:`HeadConfig`.
    """

    def __init__(self, config: HeadConfig) -> None:
        self.config = config
        self.check()

    # -- configuration
    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add this task's own command-line flags; their values land in ``config.options``
        under the flag's ``dest`` (``--scale-factor`` -> ``options["scale_factor"]``).
        Read them with ``self.config.options.get(name, default)`` (weight files written
        before a flag existed have no value for it)."""

    def check(self) -> None:
        """Refuse a config this task cannot train (ValueError naming the field)."""

    def contrasts(self) -> list[str]:
        """Contrasts :func:`load_data` must read for this task (default: ``[config.source]``)."""
        return [self.config.source]

    def voxel_size(self) -> float:
        """Voxel size (mm) of the ``phantom:A-B`` subjects :func:`load_data` makes for this task
        (default 2.0; NIfTI folders keep their own grid)."""
        return 2.0

    def weight_name(self) -> str:
        """Stem of the weight file (``OUTPUT_DIR/<name>.pt``, a bundled ``data/weights/heads/<name>.pt``)."""
        return self.config.task

    # -- networks
    def build_model(self) -> nn.Module:
        """A fresh network with everything trained (e.g. generators and discriminators)."""
        raise NotImplementedError

    def shipped_module(self, model: nn.Module) -> nn.Module:
        """The part of ``model`` that goes into the weight file (default all of it); must be
        rebuildable as ``shipped_module(build_model())`` for :func:`load_head`."""
        return model

    def optimisers(self, model: nn.Module) -> dict[str, torch.optim.Optimizer]:
        """Named optimisers (default ``{"model": Adam(lr)}``); :meth:`StepRunner.optimise` steps them."""
        return {"model": torch.optim.Adam(model.parameters(), lr=self.config.lr)}

    # -- training
    def prepare(self, volumes: list[dict[str, np.ndarray]]) -> None:
        """Turn the training volumes into whatever :meth:`step` samples from (CPU tensors)."""
        raise NotImplementedError

    def step(self, model: nn.Module, run: "StepRunner") -> dict[str, float]:
        """One training iteration: draw a batch with ``run.generator``, move it to ``run.device``,
        compute the loss(es) inside ``with run.autocast():`` and call ``run.optimise(loss, name)``
        once per optimiser. Returns the losses as floats (logged every 25 steps)."""
        raise NotImplementedError

    def evaluate(self, model: nn.Module, volumes: list[dict[str, np.ndarray]]) -> dict[str, float]:
        """Validation scores on ``volumes`` (called in eval mode under ``torch.no_grad``, rank 0
        only, on CPU); default none. Written to ``history.json`` and the weight card."""
        return {}


class StepRunner:
    """What a :meth:`HeadTask.step` uses: the batch generator, the device, autocast and
    :meth:`optimise` (mixed precision and torchrun handled here, not in the tasks).

    Args:
        optimisers: the task's named optimisers.
        generator: this process's ``torch.Generator`` (seeded by the config seed and the rank).
        device: where the model lives.
        amp: mixed precision: bfloat16 autocast on CPU; float16 autocast and a ``GradScaler``
            per optimiser on CUDA.
        world_size: processes whose gradients are averaged before each optimiser step.
        grad_clip: clip the gradient norm of each optimiser's parameters to this (None: off).
    """

    def __init__(self, optimisers: dict[str, torch.optim.Optimizer], generator: torch.Generator,
                 device: torch.device = torch.device("cpu"), *, amp: bool = False, world_size: int = 1,
                 grad_clip: Optional[float] = None) -> None:
        self.optimisers = optimisers
        self.generator = generator
        self.device = torch.device(device)
        self.amp = bool(amp)
        self.world_size = int(world_size)
        self.grad_clip = grad_clip
        use_scaler = self.amp and self.device.type == "cuda"
        self.scalers = {k: torch.amp.GradScaler("cuda", enabled=use_scaler) for k in optimisers}

    @property
    def amp_dtype(self) -> Optional[torch.dtype]:
        """The autocast dtype (None when AMP is off)."""
        if not self.amp:
            return None
        return torch.float16 if self.device.type == "cuda" else torch.bfloat16

    def autocast(self):
        """``torch.autocast`` for the forward pass (a no-op context when AMP is off)."""
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def randint(self, high: int, size: int | tuple = ()) -> torch.Tensor:
        """``torch.randint(high, size)`` from this process's generator."""
        return torch.randint(high, size if isinstance(size, tuple) else (size,), generator=self.generator)

    def optimise(self, loss: torch.Tensor, name: str = "model") -> float:
        """Zero the named optimiser's gradients, back-propagate ``loss`` (scaled under fp16
        AMP), average its gradients over the torchrun processes, clip, step. Returns the loss.

        Only the parameters of optimiser ``name`` are averaged and stepped; gradients that
        ``loss`` leaves in other networks' parameters are cleared by their own ``optimise``.
        """
        if name not in self.optimisers:
            raise ValueError(f"name must be one of {sorted(self.optimisers)}, got {name!r}")
        opt, scaler = self.optimisers[name], self.scalers[name]
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss.float()).backward()
        params = [p for group in opt.param_groups for p in group["params"] if p.requires_grad]
        if self.world_size > 1:
            _average_gradients(params, self.world_size)
        if self.grad_clip is not None:
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(params, self.grad_clip)
        scaler.step(opt)
        scaler.update()
        return float(loss.detach())

    def state_dict(self) -> dict:
        return {k: s.state_dict() for k, s in self.scalers.items()}

    def load_state_dict(self, state: dict) -> None:
        for k, s in self.scalers.items():
            if k in state and state[k]:
                s.load_state_dict(state[k])


def _average_gradients(params: list[torch.Tensor], world_size: int) -> None:
    """All-reduce the gradients of ``params`` (one flat buffer) and divide by ``world_size``;
    a missing gradient counts as zeros, so every process sends the same layout."""
    import torch.distributed as dist

    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= world_size
    offset = 0
    for p, g in zip(params, grads):
        n = g.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone()
        offset += n


# ----------------------------------------------------------------------------- models and files

def build_head(config: HeadConfig) -> nn.Module:
    """The network of ``config`` (fresh weights, seeded by ``config.seed``; the global RNG is
    left as it was)."""
    with _fork(config.seed):
        return task_class(config.task)(config).build_model()


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
    """The part of a trained model that ships (:meth:`HeadTask.shipped_module`)."""
    return task_class(config.task)(config).shipped_module(model)


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
    config = _config_from_dict(blob["config"])
    model = _shipped_module(config, build_head(config))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()})
    return model.to(device).eval(), config, blob.get("card", {})


def _config_from_dict(data: dict) -> HeadConfig:
    """A :class:`HeadConfig` from its ``dataclasses.asdict`` form (JSON lists back to tuples;
    fields a later version dropped are ignored)."""
    known = {f.name for f in dataclasses.fields(HeadConfig)}
    cfg = {k: v for k, v in dict(data).items() if k in known}
    for key in ("crop_axial", "snr_range"):
        if isinstance(cfg.get(key), list):
            cfg[key] = tuple(cfg[key])
    return HeadConfig(**cfg)


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
                from recon.data.io import save_npz

                save_npz(path, item)
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


def load_data(spec: str, contrasts: Sequence[str], cache: str | None = None,
              voxel_size: float = 2.0) -> list[dict[str, np.ndarray]]:
    """``phantom:...`` (at ``voxel_size`` mm) or a folder (see the module docstring)."""
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"train_data must be 'phantom:A-B' or a folder, got {spec!r}")
    if spec.startswith("phantom:"):
        return phantom_volumes(_parse_seeds(spec), contrasts, cache=cache, voxel_size=voxel_size)
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

def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Zero-pad the last two axes (bottom, right) to multiples of ``multiple``."""
    H, W = x.shape[-2:]
    return F.pad(x, (0, (-W) % multiple, 0, (-H) % multiple))


_pad_to = pad_to_multiple  # the first version's name


@dataclass
class HeadResult:
    """What :func:`train_head` did."""

    config: HeadConfig
    steps: int
    seconds: float
    last_checkpoint: Path
    weights: Path
    history: list = field(default_factory=list)
    validation: dict = field(default_factory=dict)


def _validate(task: HeadTask, model: nn.Module, volumes: list, device: torch.device) -> dict[str, float]:
    """``task.evaluate`` on CPU in eval mode without gradients; the model goes back after."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model.cpu()
            return {k: float(v) for k, v in task.evaluate(model, volumes).items()}
    finally:
        model.to(device)
        model.train(was_training)


def train_head(config: HeadConfig, data: list[dict[str, np.ndarray]] | None = None,
               val_data: list[dict[str, np.ndarray]] | None = None) -> HeadResult:
    """Train one head; checkpoints in ``config.output_dir`` (``last.ckpt``, resumed when present).

    Runs in one process, or in every process of a ``torchrun`` launch: each process draws its
    own batches (generator seeded by ``config.seed`` and the rank), gradients are averaged
    before every optimiser step (:meth:`StepRunner.optimise`), rank 0 validates and writes
    the files. The caller's global RNG state and thread count are restored on return.

    Args:
        config: the run.
        data: training volumes (default: loaded from ``config.train_data``).
        val_data: validation volumes (default: loaded from ``config.val_data`` when set).

    Returns:
        :class:`HeadResult`; the weight file is ``OUTPUT_DIR/<weight name>.pt``.

    Example:
        >>> config = HeadConfig(task="denoise", chans=8, steps=100, output_dir="runs/dn")  # doctest: +SKIP
        >>> train_head(config).weights                                                    # doctest: +SKIP
        PosixPath('runs/dn/denoise.pt')
    """
    from recon.train.distributed import all_gather_objects, barrier, init_distributed, shutdown_distributed

    threads = torch.get_num_threads()
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    ctx = init_distributed("cpu" if config.device == "cpu" else config.device)
    try:
        with torch.random.fork_rng(devices=[]):
            return _train_head(config, data, val_data, ctx)
    finally:
        barrier(ctx)
        shutdown_distributed(ctx)
        torch.set_num_threads(threads)


def _train_head(config: HeadConfig, data, val_data, ctx) -> HeadResult:
    from tqdm.auto import tqdm

    from recon.data.io import atomic_path, remove_stale_temporaries
    from recon.train.distributed import all_gather_objects, all_reduce_sum, barrier

    out = Path(config.output_dir)
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(out)
    barrier(ctx)
    task = task_class(config.task)(config)
    name = task.weight_name()
    if data is None:
        data = load_data(config.train_data, task.contrasts(), config.data_cache, task.voxel_size())
    if not data:
        raise ValueError(f"train_data {config.train_data!r} holds no volumes")
    if val_data is None and config.val_data and ctx.is_main:
        val_data = load_data(config.val_data, task.contrasts(), config.data_cache, task.voxel_size())
    model = build_head(config).to(ctx.device).train()
    task.prepare(data)
    generator = torch.Generator().manual_seed(config.seed + 1_000_003 * ctx.rank)
    run = StepRunner(task.optimisers(model), generator, ctx.device, amp=config.amp, world_size=ctx.world_size)
    start_step, history, elapsed0 = 0, [], 0.0
    ckpt_path = out / "last.ckpt"
    if config.resume and ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if ckpt["config"]["task"] != config.task or ckpt.get("name", name) != name:
            raise ValueError(f"cannot resume from {ckpt_path}: it belongs to {ckpt.get('name', ckpt['config']['task'])!r}, "
                             f"not {name!r}; use another output_dir or resume=False")
        model.load_state_dict(ckpt["model"])
        for k, o in run.optimisers.items():
            o.load_state_dict(ckpt["optimisers"][k])
        run.load_state_dict(ckpt.get("scalers", {}))
        states = ckpt.get("generators") or [ckpt["generator"]]
        if len(states) == ctx.world_size:
            generator.set_state(states[ctx.rank])
        elif ctx.is_main:
            logger.warning("%s: checkpoint from %d process(es), now %d: batch generators reseeded",
                           ckpt_path, len(states), ctx.world_size)
        start_step, history, elapsed0 = ckpt["step"], ckpt["history"], ckpt.get("seconds", 0.0)
    elif config.init_weights:
        source, source_config, _ = load_head(config.init_weights)
        if source_config.task != config.task:
            raise ValueError(f"init_weights {config.init_weights!r} hold a {source_config.task!r} model, "
                             f"not {config.task!r}")
        try:
            task.shipped_module(model).load_state_dict(source.state_dict())
        except RuntimeError as err:
            raise ValueError(f"init_weights {config.init_weights!r} do not fit this config (arch, chans, depth?): "
                             f"{str(err).splitlines()[0]}") from err
        if ctx.is_main:
            logger.info("%s: initialised from %s", name, config.init_weights)
    t0 = time.perf_counter()
    step = start_step
    show = config.progress and ctx.is_main
    bar = tqdm(total=config.steps, initial=start_step, disable=not show, desc=name)

    def save_checkpoint() -> None:
        states = all_gather_objects(ctx, generator.get_state())
        if ctx.is_main:
            with atomic_path(ckpt_path) as tmp:
                torch.save({"config": dataclasses.asdict(config), "name": name, "model": model.state_dict(),
                            "optimisers": {k: o.state_dict() for k, o in run.optimisers.items()},
                            "scalers": run.state_dict(), "generators": states, "step": step, "history": history,
                            "seconds": elapsed0 + time.perf_counter() - t0, "world_size": ctx.world_size}, tmp)
        barrier(ctx)

    def validate() -> dict[str, float]:
        scores = _validate(task, model, val_data, ctx.device) if (ctx.is_main and val_data) else {}
        barrier(ctx)
        return scores

    validation: dict[str, float] = {}
    while step < config.steps:
        if config.time_budget is not None:
            over = float(elapsed0 + time.perf_counter() - t0 > config.time_budget)
            if ctx.distributed:  # every process stops at the same step
                over = float(all_reduce_sum(ctx, torch.tensor([over]))[0])
            if over:
                if ctx.is_main:
                    logger.info("%s: time budget %.0f s reached at step %d", name, config.time_budget, step)
                break
        if config.lr_schedule == "cosine":
            factor = 0.5 * (1.0 + math.cos(math.pi * step / config.steps))
            for opt in run.optimisers.values():
                for group in opt.param_groups:
                    group["lr"] = group.setdefault("initial_lr", group["lr"]) * factor
        losses = task.step(model, run)
        step += 1
        bar.update(1)
        if step % 25 == 0 or step == config.steps:
            history.append({"step": step, **losses})
            bar.set_postfix({k: f"{v:.3g}" for k, v in list(losses.items())[:3]})
        if config.val_every and step % config.val_every == 0 and step < config.steps:
            validation = validate()
            if validation and ctx.is_main:
                history.append({"step": step, **{f"val_{k}": v for k, v in validation.items()}})
                logger.info("%s step %d: %s", name, step, {k: round(v, 4) for k, v in validation.items()})
        if step % config.checkpoint_every == 0:
            save_checkpoint()
    bar.close()
    seconds = elapsed0 + time.perf_counter() - t0
    validation = validate()
    if validation and ctx.is_main:
        history.append({"step": step, **{f"val_{k}": v for k, v in validation.items()}})
        logger.info("%s step %d: %s", name, step, {k: round(v, 4) for k, v in validation.items()})
    save_checkpoint()
    weights = out / f"{name}.pt"
    if ctx.is_main:
        model.eval()
        losses = [h for h in history if not any(k.startswith("val_") for k in h)]
        card = {"name": name, "task": config.task, "steps": step, "train_seconds": round(seconds, 1),
                "train_data": config.train_data, "processes": ctx.world_size, "amp": config.amp,
                "final_losses": losses[-1] if losses else {}}
        if validation:
            card["validation"] = {"data": config.val_data, **validation}
        save_head(weights, config, model, card)
        with atomic_path(out / "history.json") as tmp:
            Path(tmp).write_text(json.dumps(history, indent=1))
    barrier(ctx)
    model.cpu()
    return HeadResult(config, step, seconds, ckpt_path, weights, history, validation)


# ----------------------------------------------------------------------------- command line

def _pre_task(argv: Sequence[str]) -> Optional[str]:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--task")
    known, _ = pre.parse_known_args(list(argv))
    return known.task


def build_parser(prog: str = "recon train", task: Optional[str] = None):
    """Parser of ``recon train --task ...`` (the image heads); with ``task``, also its own flags."""
    from recon.train.cli_args import OneLineParser

    d = HeadConfig()
    p = OneLineParser(prog=prog, description="Train an image head (contrast synthesis, CycleGAN, slice GAN, denoiser, "
                                             "and every task of TASK_REGISTRY).")
    p.add_argument("--task", required=True, choices=sorted(TASK_REGISTRY))
    p.add_argument("--arch", default=d.arch, help="network of the task (synthesis: unet = 2-D U-Net, resnet3d = 3-D ResNet; "
                                                  "cyclegan generators: unet, resize, local, tissue)")
    p.add_argument("--source", default=d.source, help="source contrast (t1, t2, flair, pd)")
    p.add_argument("--target", default=d.target, help="target contrast")
    p.add_argument("--train-data", default=d.train_data, help="'phantom:A-B' or a folder with one sub-folder per contrast")
    p.add_argument("--val-data", default=None, help="validation data ('phantom:100-101' or a folder); none by default")
    p.add_argument("--output-dir", default=d.output_dir)
    p.add_argument("--data-cache", default=None, help="folder for generated phantom volumes (.npz)")
    for name in ("chans", "depth", "steps", "batch_size", "patch_size", "seed", "latent_dim", "image_size", "num_threads",
                 "val_every", "checkpoint_every"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(d, name))
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--lambda-identity", type=float, default=d.lambda_identity,
                   help="cyclegan: identity loss weight relative to the cycle weight (0 = off)")
    p.add_argument("--lr-schedule", default=d.lr_schedule, choices=("constant", "cosine"),
                   help="cosine: the learning rate decays to 0 at --steps")
    p.add_argument("--time-budget", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--init-weights", default=None, help="fine-tune: start from this head weight file or bundled name")
    p.add_argument("--crop-axial", type=float, nargs=2, default=None, metavar=("START", "STOP"),
                   help="3-D: keep this fraction of the axial axis (e.g. 0.2 0.8 drops the neck)")
    p.add_argument("--amp", action="store_true", help="mixed precision (bf16 autocast on CPU, fp16 + GradScaler on CUDA)")
    p.add_argument("--device", default=d.device, choices=("cpu", "cuda", "auto"))
    p.add_argument("--no-resume", action="store_true", help="start afresh even if OUTPUT_DIR/last.ckpt exists")
    p.add_argument("--progress", action="store_true")
    if task in TASK_REGISTRY:
        group = p.add_argument_group(f"options of --task {task}")
        task_class(task).add_arguments(group)
    return p


def config_from_argv(argv: Sequence[str]) -> HeadConfig:
    """A :class:`HeadConfig` from ``recon train --task ...`` arguments (task flags -> ``options``)."""
    task = _pre_task(argv)
    args = build_parser(task=task).parse_args(list(argv))
    fields = {f.name for f in dataclasses.fields(HeadConfig)}
    values = vars(args)
    kwargs = {k: v for k, v in values.items() if k in fields}
    kwargs["options"] = {k: v for k, v in values.items() if k not in fields and k != "no_resume"}
    kwargs["resume"] = not args.no_resume
    if kwargs["crop_axial"] is not None:
        kwargs["crop_axial"] = tuple(kwargs["crop_axial"])
    if args.task in ("gan", "denoise"):
        kwargs["source"], kwargs["target"] = "t1w", "t2w"
    return HeadConfig(**kwargs)


def main(argv: Sequence[str]) -> int:
    """``recon train --task ...``: train, log where the weights went; 0 or 2 (one-line error)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_argv(argv)
        result = train_head(config)
    except (ValueError, TypeError, FileNotFoundError) as err:
        logger.error("%s", err)
        return 2
    logger.info("done: %d steps in %.0f s, weights %s", result.steps, result.seconds, result.weights)
    return 0
