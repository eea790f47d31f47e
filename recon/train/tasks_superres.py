"""Training of the super-resolution heads: ``recon train --task superres | srgan``.

Two entry points share the data preparation and the losses here:

* :class:`SuperresTask` / :class:`SRGANTask` - the head-task interface of
  :mod:`recon.train.tasks_heads` (registered as ``superres`` and ``srgan``): ``recon train
  --task superres ...`` runs them in :func:`~recon.train.tasks_heads.train_head` (checkpoints,
  resume, torchrun, AMP) and writes head weight files (``recon-head-1``);
* :func:`train_superres` with a :class:`SuperresConfig` - the scripted trainer that reads
  phantom subjects at **1 mm** (``load_data`` of the head loop gives 2 mm phantoms) and made the
  bundled networks (``scripts/train_superres.py``).

Both write head weight files (``recon-head-1``: a :class:`~recon.train.tasks_heads.HeadConfig`
whose ``options`` hold the super-resolution settings), read by
:func:`~recon.train.tasks_heads.load_head` and :func:`load_superres`.

:func:`select_superres` picks the bundled network for a
scale (:func:`recon.super_resolve`).

High-resolution (HR) truth: phantom subjects of :mod:`recon.data.phantom` (``phantom:A-B``,
every contrast - T1w, T2w, FLAIR, PD - of each anatomy) or NIfTI volumes; each volume divided by
its foreground mean (mean of the voxels above the mean) and cropped to the head. Low resolution
(LR) is simulated from each whole volume once per training scale, the MRI way
(:func:`recon.heads.superres.kspace_truncate`, default) or the image way
(:func:`recon.heads.superres.image_degrade`); the fusion network's input is the whole LR image
interpolated to the HR grid, so training patches are aligned crops of the same volume. Each HR
image is first tapered to 0 over its 8 border voxels (:func:`~recon.heads.superres.taper_borders`):
k-space truncation assumes a periodic image, as a scanner's is; a phantom cut by its field of view
is not.

* ``--task superres --dims 2``: :class:`~recon.heads.superres.MultiScaleFusionSR` on axial
  slices (in-plane scales such as ``--scales 2``), random flips and transposes;
* ``--task superres --dims 3``: the same network in 3-D on patches (``--scales 2`` isotropic or
  ``--scales 1,1,2 1,1,3 1,1,4`` for thick slices, one scale drawn per batch);
* ``--task srgan``: :class:`~recon.heads.superres.SRGAN3d` - ``--pretrain-steps`` with the
  content loss only (an MSE network), then content + ``--adv-weight`` x adversarial with the
  discriminator trained alternately.

Example::

    recon train --task superres --dims 2 --scales 2 --chans 32 --depth 4 --patch-size 48 \
        --train-data phantom:0-5 --steps 3000 --output-dir runs/sr2d-x2 --num-threads 1
"""

from __future__ import annotations

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

from recon.heads.superres import (
    INTERPOLATIONS, SRGAN3d, MultiScaleFusionSR, check_scale, image_degrade, interpolate, kspace_truncate,
    taper_borders,
)
from recon.train.tasks_heads import HeadConfig, HeadTask, StepRunner

__all__ = [
    "TASKS",
    "SuperresConfig",
    "build_superres",
    "save_superres",
    "load_superres",
    "superres_volumes",
    "train_superres",
    "SuperresResult",
    "parse_scales",
    "available_superres",
    "select_superres",
    "sinc_network",
    "SINC",
    "ADAPT_WEIGHTS",
    "ADAPT_STEPS",
    "ADAPT_BY_DEFAULT",
    "ADAPT_LR",
    "ADAPT_SELF_ENSEMBLE",
    "adapt_plan",
    "ISO_DEFAULT",
    "CALIBRATE_BY_DEFAULT",
    "calibrate_default",
    "self_ensemble_default",
    "SuperresTask",
    "SRGANTask",
]

logger = logging.getLogger("recon.train")

#: training tasks of this module
TASKS: tuple[str, ...] = ("superres", "srgan")
CONTRASTS = ("t1w", "t2w", "flair", "pd")
#: the pseudo-network of zero-filled k-space (sinc) interpolation alone (no learned residual): the
#: default for a factor where no bundled network beat sinc on validation (:data:`THICK_DEFAULT`)
SINC = "sinc"
#: the bundled network for thick slices (one enlarged axis of a volume) by slice-thickness factor,
#: chosen on validation (phantoms 6-7 and the MNI152 validation part, tapered crops; a network is
#: the default only if it beats sinc on both): at 2x none did, so sinc alone (:data:`SINC`); at 3x
#: and 4x the 2-D network on the planes through the slices; other factors the 3-D one. Since
#: session 5 ``recon.super_resolve`` uses these only with ``adapt=False``: by default it adapts
#: :data:`ADAPT_WEIGHTS` to each thick-slice volume (:data:`ADAPT_BY_DEFAULT`)
THICK_DEFAULT = {2: SINC, 3: "superres-2d-thick", 4: "superres-2d-thick"}


def sinc_network(dims: int = 3) -> tuple[nn.Module, SuperresConfig, dict]:
    """``(network, config, card)`` of :data:`SINC`: a residual-to-sinc fusion network whose last
    layer is zero, i.e. exactly :func:`~recon.heads.superres.kspace_zero_pad` (any scale)."""
    scales = [(1, 1, 2), (1, 1, 3), (1, 1, 4)] if dims == 3 else [(1, 2), (1, 3), (1, 4)]
    config = SuperresConfig(dims=dims, scales=scales, chans=1, num_blocks=1, patch_size=16, name=SINC,
                            interpolation="zero_fill", bias=False)
    model = build_superres(config).eval()
    card = {"name": SINC, "design": "zero-filled k-space (sinc) interpolation, no learned residual: the default "
                                    "where no bundled network beat it on validation"}
    return model, config, card


def thick_default(factor: int) -> str:
    """The bundled thick-slice network for a slice-thickness ``factor`` (:data:`THICK_DEFAULT`)."""
    return THICK_DEFAULT.get(int(factor), "superres-3d-thick")


#: the network self-supervised adaptation to a thick-slice volume starts from
#: (:func:`~recon.heads.superres.adapt_through_plane`; ``recon.super_resolve(..., adapt=...)``)
ADAPT_WEIGHTS = "superres-2d-thick"
#: its Adam steps for ``adapt=True`` (and the default, :data:`ADAPT_BY_DEFAULT`) and learning rate,
#: chosen on validation (phantoms 6-7 and the MNI152 validation part, 1x1x2 and 1x1x4; gain over
#: sinc grew with the steps, 300 -> 800: +0.32 -> +0.48 / +2.27 -> +4.35 dB at 2x, +0.80 -> +0.90 /
#: +2.19 -> +2.64 at 4x with lr 1e-4; lr 3e-4 added +0.07 to +0.29 dB at 800 steps on the three
#: phantom cases tried); about 2 min on one CPU thread whatever the volume's size
ADAPT_STEPS = 800
ADAPT_LR = 3e-4
#: whether thick slices with the default weights are adapted unless ``adapt=False``: yes, the adapted
#: network beat sinc and the shipped networks on both validation sets at 2x and 4x (docs/superres.md)
ADAPT_BY_DEFAULT = True
#: the adapted network's output averaged over the 4 flips of each plane (``self_ensemble=None``):
#: +0.10 to +0.12 dB at 2x on the validation phantoms (adapted, 800 steps, lr 3e-4)
ADAPT_SELF_ENSEMBLE = True


def adapt_plan(adapt: object, ndim: int, scale: tuple[int, ...], weights: object) -> tuple[int, object]:
    """``(steps, weights to start from)`` of ``recon.super_resolve``'s ``adapt`` option.

    ``adapt``: None (:data:`ADAPT_STEPS` for a thick-slice volume with ``weights=None`` when
    :data:`ADAPT_BY_DEFAULT`, else 0), False/True (0 / :data:`ADAPT_STEPS`) or a number of steps
    ``>= 0``. Adapting starts from ``weights``, or :data:`ADAPT_WEIGHTS` for None / ``"sinc"``.

    Raises:
        TypeError: ``adapt`` not None, a bool or an int.
        ValueError: a negative number of steps; steps for anything but a volume with one enlarged axis.
    """
    thick = ndim == 3 and sum(1 for f in scale if f > 1) == 1
    if adapt is None:
        steps = ADAPT_STEPS if ADAPT_BY_DEFAULT and weights is None and thick else 0
    elif isinstance(adapt, bool):
        steps = ADAPT_STEPS if adapt else 0
    elif isinstance(adapt, (int, np.integer)):
        if adapt < 0:
            raise ValueError(f"adapt must be None, a bool or a number of steps >= 0, got {adapt!r}")
        steps = int(adapt)
    else:
        raise TypeError(f"adapt must be None, a bool or a number of steps >= 0, got {type(adapt).__name__} {adapt!r}")
    if steps and not thick:
        raise ValueError(f"adapt (self-supervised adaptation) needs a volume with thick slices, one enlarged axis "
                         f"such as scale (1, 1, 3); got a {ndim}-D image with scale {tuple(scale)} (pass adapt=False)")
    if not steps:
        return 0, weights
    return steps, ADAPT_WEIGHTS if weights is None or (isinstance(weights, str) and weights == SINC) else weights


#: the default for an isotropic (2, 2, 2) volume, chosen on validation (phantoms 6-7, central 80 x 96 x 72
#: crops; the MNI152 validation part, a 96^3 crop; gain over cubic B-spline): the 2-D x2 network on the
#: planes of all three orientations (:func:`~recon.heads.superres.upscale_image`) +1.60 / +4.88 dB,
#: against +1.42 / +0.97 for the 3-D generator srgan-3d-x2-mse and +1.45 / +0.22 for sinc alone;
#: averaging it with the generator (weights 0.25 / 0.5) gained <= 0.1 dB on the phantoms and lost
#: 0.8 / 1.8 dB on the MNI152 part, and a frequency-partitioned fusion of the plane families lost to
#: the plain mean on both (session 5)
ISO_DEFAULT = "superres-2d-x2"

#: ``recon.super_resolve(..., calibrate=None)`` on the isotropic ``(2, 2, 2)`` default: the network's
#: residual over sinc is weighted per volume by :func:`recon.heads.superres.residual_weight` (the LR
#: volume degraded once more tells how much the residual helps). Chosen on validation (phantoms 6-7,
#: central 80 x 96 x 72 crops; the MNI152 validation part; gain over cubic, dB): per phantom volume
#: +1.21 / +2.36 / +2.11 / +0.74 for the planes path alone, +1.48 / +1.42 / +1.38 / +1.52 for sinc
#: alone, +1.51 / +2.36 / +2.11 / +1.30 calibrated (mean +1.82 vs +1.60 and +1.45); MNI152 +4.88
#: either way (weight 1). Off elsewhere: not validated there (session 5).
CALIBRATE_BY_DEFAULT = True


def calibrate_default(ndim: int, scale: Sequence[int], weights: object) -> bool:
    """Whether ``recon.super_resolve(..., calibrate=None)`` weights the residual per image: only for the
    validated case, the bundled isotropic ``(2, 2, 2)`` default (``weights=None`` on a volume)."""
    return bool(CALIBRATE_BY_DEFAULT) and weights is None and ndim == 3 and tuple(scale) == (2, 2, 2)


def self_ensemble_default(ndim: int, scale: Sequence[int], dims: int, name: str | None = None) -> bool:
    """Whether ``recon.super_resolve`` averages over flips/transposes (``self_ensemble=None``) for an
    image of ``ndim`` axes, ``scale`` and a ``dims``-D network; chosen on validation (phantoms 6-7, the
    MNI152 validation part; gain of the x8 self-ensemble):

    * a 2-D network on 2-D slices or slice by slice on in-plane ``(s, s, 1)`` volumes: on (+0.27 /
      +0.33 dB at x2 over 16 / 6 slices, +0.09 / +0.02 dB at x4);
    * a 2-D network on the planes of an isotropic volume: off (+0.09 / -0.07 dB, 8 times the time);
    * 3-D networks (only used when asked for by name): off, as before - the content-trained
      srgan-3d-x2-mse gains +0.03 / +0.22 dB with ``self_ensemble=True``, but averaging would wash out
      the adversarial generator's texture, its purpose;
    * thick slices (one enlarged axis): off (not validated there);
    * the :data:`SINC` pseudo-network (``name``): off - it has nothing to average, and on an even
      LR grid the flipped zero-filled band differs at its Nyquist line.
    """
    enlarged = sum(1 for f in scale if f > 1)
    return dims == 2 and name != SINC and (ndim == 2 or (enlarged == 2 and scale[-1] == 1))


def parse_scales(text: str | Sequence, dims: int) -> list[tuple[int, ...]]:
    """``"2"`` -> ``[(2, 2)]`` (dims 2); ``["1,1,3", "1,1,4"]`` -> ``[(1, 1, 3), (1, 1, 4)]``."""
    items = text.split() if isinstance(text, str) else list(text)
    out = []
    for item in items:
        if isinstance(item, str):
            try:
                parts = [int(p) for p in item.split(",")]
            except ValueError as err:
                raise ValueError(f"scales must be ints or comma-separated per-axis ints like 1,1,3, got {item!r}") from err
            item = parts[0] if len(parts) == 1 else tuple(parts)
        out.append(check_scale(tuple(item) if isinstance(item, list) else item, dims, "scales"))
    if not out:
        raise ValueError("scales must name at least one scale")
    return out


@dataclass
class SuperresConfig:
    """Everything that defines a super-resolution training run (saved in checkpoints and weights)."""

    task: str = "superres"
    dims: int = 2
    scales: list = field(default_factory=lambda: [(2, 2)])
    degradation: str = "kspace"             # 'kspace' (truncation) or 'image' (block average)
    train_data: str = "phantom:0-11"
    contrasts: tuple = CONTRASTS
    output_dir: str = "runs/superres"
    name: Optional[str] = None              # weight-file name (default from task, dims, scales)
    chans: int = 32
    num_blocks: int = 4
    kernel_sizes: Optional[tuple] = None    # fusion paths (default (3, 5, 7) in 2-D, (3, 5) in 3-D)
    interpolation: str = "zero_fill"        # fusion base: 'zero_fill' (sinc) or 'cubic'
    scale_input: bool = False               # fusion: condition on the scale (several scales in one network)
    bias: bool = False                      # convolution biases (False: scale-equivariant residual)
    crop_taper: float = 0.0                 # probability that a patch comes from a tapered crop
    planes: str = "axial"                   # 2-D: 'axial' slices, 'through' (X-Z and Y-Z planes, thick slices) or
    #                                         'iso' (planes of all 3 orientations of a volume degraded in 3-D)
    disc_chans: int = 16                    # srgan
    adv_weight: float = 1e-3                # srgan
    pretrain_steps: int = 0                 # srgan: content-only steps first
    steps: int = 2000
    time_budget: Optional[float] = None     # seconds; stop early (the card records the steps done)
    batch_size: int = 8
    patch_size: int = 48                    # HR patch side (voxels)
    lr: float = 1e-3
    seed: int = 0
    init_from: Optional[str] = None         # start from these weights (same architecture)
    resume: bool = True
    progress: bool = False
    num_threads: Optional[int] = None
    data_cache: Optional[str] = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {list(TASKS)}, got {self.task!r}")
        if self.dims not in (2, 3):
            raise ValueError(f"dims must be 2 or 3, got {self.dims!r}")
        if self.task == "srgan" and self.dims != 3:
            raise ValueError(f"dims must be 3 for the 3-D SRGAN, got {self.dims!r}")
        self.scales = parse_scales(self.scales, self.dims) if isinstance(self.scales, str) else \
            [check_scale(tuple(s) if isinstance(s, list) else s, self.dims, "scales") for s in self.scales]
        if self.task == "srgan" and len(self.scales) != 1:
            raise ValueError(f"scales must be one scale for srgan (its upsampling is learned), got {self.scales}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {list(INTERPOLATIONS)}, got {self.interpolation!r}")
        if self.degradation not in ("kspace", "image"):
            raise ValueError(f"degradation must be 'kspace' or 'image', got {self.degradation!r}")
        self.contrasts = tuple(self.contrasts)
        if not self.contrasts or any(c not in CONTRASTS for c in self.contrasts):
            raise ValueError(f"contrasts must be among {list(CONTRASTS)}, got {self.contrasts!r}")
        if self.kernel_sizes is not None:
            self.kernel_sizes = tuple(self.kernel_sizes)
        for name in ("chans", "num_blocks", "disc_chans", "steps", "batch_size", "patch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if isinstance(self.pretrain_steps, bool) or not isinstance(self.pretrain_steps, int) or self.pretrain_steps < 0:
            raise ValueError(f"pretrain_steps must be an int >= 0, got {self.pretrain_steps!r}")
        if self.planes not in ("axial", "through", "iso"):
            raise ValueError(f"planes must be 'axial', 'through' or 'iso', got {self.planes!r}")
        if self.planes == "iso" and (self.dims != 2 or len(self.scales) != 1 or len(set(self.scales[0])) != 1):
            raise ValueError(f"planes='iso' needs dims=2 and one in-plane scale with equal factors (the volume is "
                             f"degraded by it along all three axes), got dims={self.dims}, scales={self.scales}")
        if self.planes == "iso" and self.crop_taper:
            raise ValueError(f"planes='iso' takes no crop_taper (its pairs are planes of whole volumes), "
                             f"got {self.crop_taper!r}")
        if isinstance(self.crop_taper, bool) or not isinstance(self.crop_taper, (int, float)) \
                or not 0 <= self.crop_taper <= 1:
            raise ValueError(f"crop_taper must be a probability in [0, 1], got {self.crop_taper!r}")
        if not (isinstance(self.lr, (int, float)) and 0 < self.lr < 1):
            raise ValueError(f"lr must be in (0, 1), got {self.lr!r}")
        big = max(max(s) for s in self.scales)
        if self.patch_size < 4 * big:
            raise ValueError(f"patch_size must be at least 4 x the largest scale factor ({4 * big}), got {self.patch_size}")

    @property
    def weight_name(self) -> str:
        """``superres-2d-x2``, ``superres-3d-1x1x3`` / ``superres-3d-thick`` (several), ``srgan-3d-x2``."""
        if self.name:
            return self.name

        def tag(s: tuple[int, ...]) -> str:
            return f"x{s[0]}" if len(set(s)) == 1 else "x".join(map(str, s))

        if len(self.scales) == 1:
            return f"{self.task}-{self.dims}d-{tag(self.scales[0])}"
        if self.dims == 3 and all(s[0] == s[1] == 1 for s in self.scales):
            return f"{self.task}-3d-thick"
        return f"{self.task}-{self.dims}d-multi"


# ----------------------------------------------------------------------------- models and files

def build_superres(config: SuperresConfig) -> nn.Module:
    """The network of ``config`` (fresh weights drawn inside a seeded fork of torch's RNG)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        if config.task == "srgan":
            return SRGAN3d(config.scales[0], chans=config.chans, num_blocks=config.num_blocks,
                           disc_chans=config.disc_chans, adv_weight=config.adv_weight,
                           interpolation=config.interpolation, bias=config.bias)
        return MultiScaleFusionSR(dims=config.dims, chans=config.chans, num_blocks=config.num_blocks,
                                  kernel_sizes=config.kernel_sizes, interpolation=config.interpolation,
                                  scale_input=config.scale_input, bias=config.bias)


def _shipped(config: SuperresConfig, model: nn.Module) -> nn.Module:
    return model.g if config.task == "srgan" else model


def head_config(config: SuperresConfig) -> HeadConfig:
    """The head-task config (:class:`~recon.train.tasks_heads.HeadConfig` with ``options``) of a run."""
    options = {"dims": config.dims, "scales": [",".join(map(str, s)) for s in config.scales],
               "degradation": config.degradation, "interpolation": config.interpolation,
               "contrasts": list(config.contrasts), "disc_chans": config.disc_chans, "adv_weight": config.adv_weight,
               "pretrain_steps": config.pretrain_steps, "name": config.weight_name, "scale_input": config.scale_input,
               "bias": config.bias, "crop_taper": config.crop_taper, "planes": config.planes}
    if config.kernel_sizes is not None:
        options["kernel_sizes"] = list(config.kernel_sizes)
    return HeadConfig(task=config.task, chans=config.chans, depth=config.num_blocks, steps=config.steps,
                      batch_size=config.batch_size, patch_size=config.patch_size, lr=config.lr, seed=config.seed,
                      train_data=config.train_data, time_budget=config.time_budget, options=options)


def save_superres(path: str | Path, config: SuperresConfig, model: nn.Module, card: dict, *, half: bool = True) -> Path:
    """Write a head weight file (``recon-head-1``, :func:`recon.train.tasks_heads.save_head`; the
    SRGAN: its generator) atomically, readable by :func:`load_superres` and ``--init-weights``."""
    from recon.train.tasks_heads import save_head

    return save_head(path, head_config(config), model, card, half=half)


def _config_dict(config: SuperresConfig) -> dict:
    d = dataclasses.asdict(config)
    d["scales"] = [list(s) for s in config.scales]
    return d


def load_superres(weights: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, SuperresConfig, dict]:
    """Load a super-resolution weight file (a path or a bundled name) in eval mode, float32.

    Returns:
        ``(network, config, card)``: :class:`MultiScaleFusionSR` or the SRGAN's
        :class:`~recon.heads.superres.SRGenerator3d`.

    Raises:
        FileNotFoundError: no such file or bundled name (the message lists the bundled ones).
        ValueError: not a super-resolution weight file.
    """
    from recon.train.tasks_heads import heads_dir

    if isinstance(weights, str) and weights == SINC:
        model, config, card = sinc_network()
        return model.to(device), config, card
    path = Path(weights)
    if not path.is_file():
        candidate = heads_dir() / f"{weights}.pt"
        if not candidate.is_file():
            raise FileNotFoundError(f"weights {str(weights)!r} is neither a file nor a bundled super-resolution "
                                    f"network; bundled: {sorted(available_superres())} (and {SINC!r})")
        path = candidate
    from recon.train.tasks_heads import load_head, task_class

    module, config, card = load_head(path, device)  # ValueError for anything but a head weight file
    if config.task not in TASKS:
        raise ValueError(f"weights {str(path)!r} are a {config.task!r} head, not a super-resolution network")
    return module, task_class(config.task)(config).sr, card


def available_superres(folder: str | Path | None = None) -> dict[str, dict]:
    """``{name: config}`` of the super-resolution weight files in ``folder`` (default the bundled ones)."""
    from recon.train.tasks_heads import heads_dir

    folder = Path(folder) if folder is not None else heads_dir()
    out = {}
    for path in sorted(folder.glob("*.pt")) if folder.is_dir() else []:
        if not path.stem.startswith(("superres-", "srgan-")):
            continue
        card_path = path.with_suffix(".json")
        try:
            card = json.loads(card_path.read_text()) if card_path.is_file() else {}
        except (OSError, json.JSONDecodeError):
            card = {}
        out[path.stem] = card
    return out


def select_superres(ndim: int, scale: tuple[int, ...], weights: str | Path | None = None,
                    device: torch.device | str = "cpu") -> tuple[nn.Module, SuperresConfig, tuple[int, ...] | None]:
    """The network for an LR image of ``ndim`` axes and per-axis ``scale`` (bundled default or ``weights``).

    Defaults: 2-D ``superres-2d-x2`` (largest factor 2) or ``superres-2d-x4``; a volume with one
    enlarged axis (thick slices) :func:`thick_default` - sinc alone (``"sinc"``) at 2x,
    ``superres-2d-thick`` (the 2-D network on the planes through the slices) at 3x and 4x; both
    trained through-plane on the last axis: another thick axis is moved there, see the returned
    permutation; ``(2, 2, 2)`` :data:`ISO_DEFAULT` (the 2-D x2 network on the planes of all three
    orientations); an in-plane ``(s, s, 1)`` on a volume the 2-D network slice by slice.

    Returns:
        ``(network, config, axes)``: ``axes`` a permutation to apply to the image (and the
        scale) before the network and to undo after, or None.

    Raises:
        ValueError: no bundled network for this scale, a fixed-scale SRGAN generator asked for
            another scale, a 2-D image with 3-D weights.
        FileNotFoundError: ``weights`` neither a file nor a bundled name.
    """
    import warnings

    enlarged = [a for a, f in enumerate(scale) if f > 1]
    if weights is None:
        if ndim == 2:
            weights = "superres-2d-x2" if max(scale) <= 2 else "superres-2d-x4"
        elif len(enlarged) == 1:
            weights = thick_default(scale[enlarged[0]])
        elif tuple(scale) == (2, 2, 2):
            weights = ISO_DEFAULT
        elif scale[2] == 1 and scale[0] == scale[1]:
            weights = "superres-2d-x2" if scale[0] <= 2 else "superres-2d-x4"
        else:
            raise ValueError(f"scale {tuple(scale)} has no bundled network for a volume (bundled: thick slices "
                             "(1, 1, s), isotropic (2, 2, 2), in-plane (s, s, 1)); pass weights= of a network "
                             "trained for it (recon train --task superres --dims 3 --scales ...)")
    if isinstance(weights, str) and weights == SINC:  # sinc alone, 2-D or 3-D, any scale
        model, config, _ = sinc_network(2 if ndim == 2 else 3)
        model = model.to(device)
    else:
        model, config, _ = load_superres(weights, device)
    if config.dims == 3 and ndim == 2:
        raise ValueError(f"image is a 2-D slice but weights {str(weights)!r} are a 3-D network; pass a volume "
                         "or 2-D weights")
    axes = None
    want = tuple(scale)
    through = all(max(s[:-1]) == 1 for s in config.scales)  # trained through-plane only (thick slices)
    if ndim == 3 and len(enlarged) == 1 and through and enlarged[0] != 2:
        axes = tuple(a for a in range(3) if a != enlarged[0]) + (enlarged[0],)
        want = tuple(scale[a] for a in axes)
    if config.dims == 2 and ndim == 3:  # the planes the 2-D network sees: axial (also for isotropic
        # scales, planes of all three orientations), or X-Z / Y-Z for thick slices
        want = want[:2] if want[2] == 1 or len(set(want)) == 1 else (1, want[2])
    if config.task == "srgan":
        if want != tuple(config.scales[0]):
            raise ValueError(f"scale {tuple(scale)} is not the scale {tuple(config.scales[0])} the SRGAN generator "
                             f"{str(weights)!r} learned")
    elif want not in [tuple(s) for s in config.scales] and config.name != SINC:
        warnings.warn(f"weights {str(weights)!r} were trained for scales {[tuple(s) for s in config.scales]}, "
                      f"not {tuple(scale)}: expect results closer to cubic interpolation", stacklevel=3)
    return model, config, axes


# ----------------------------------------------------------------------------- data

def superres_volumes(spec: str, contrasts: Sequence[str] = CONTRASTS, cache: str | None = None) -> list[np.ndarray]:
    """HR training volumes ``(X, Y, Z)`` float32, each divided by its foreground mean and cropped
    to the bounding box of its voxels above 5 % of the maximum.

    ``spec``: ``phantom:A-B`` (1 mm phantom subjects, one volume per contrast) or a folder of
    ``.nii``/``.nii.gz`` volumes (searched recursively).
    """
    from recon.train.tasks_heads import _parse_seeds, phantom_volumes

    if not isinstance(spec, str) or not spec:
        raise ValueError(f"train_data must be 'phantom:A-B' or a folder, got {spec!r}")
    raw: list[np.ndarray] = []
    if spec.startswith("phantom:"):
        for item in phantom_volumes(_parse_seeds(spec), list(contrasts), voxel_size=1.0, cache=cache):
            raw += [item[c] for c in contrasts]
    else:
        from recon.data.io import load_nifti

        root = Path(spec)
        if not root.is_dir():
            raise FileNotFoundError(f"train_data folder {str(root)!r} does not exist")
        files = sorted(p for p in root.rglob("*") if p.name.endswith((".nii", ".nii.gz")))
        if not files:
            raise ValueError(f"train_data folder {str(root)!r} holds no .nii/.nii.gz volumes")
        for p in files:
            vol, _, _ = load_nifti(p)
            raw.append(np.asarray(vol, dtype=np.float32).squeeze())
    return [_normalised_box(vol) for vol in raw]


def _normalised_box(volume: np.ndarray) -> np.ndarray:
    """``volume`` / its foreground mean, cropped to the box of the voxels above 5 % of its maximum."""
    from recon.train.tasks_heads import normalise_volume

    v, _ = normalise_volume(volume)
    idx = np.nonzero(v > 0.05 * v.max())
    box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in idx)
    return np.ascontiguousarray(v[box])


def _degrade(config: SuperresConfig, hr: torch.Tensor, scale: tuple[int, ...]) -> torch.Tensor:
    if config.degradation == "kspace":
        return kspace_truncate(hr, scale, spatial_dims=len(scale))
    return image_degrade(hr, scale, spatial_dims=len(scale))


class _Pairs:
    """Aligned inputs and HR truths per scale, and random aligned patches of them.

    The fusion network's input is the whole image interpolated to the HR grid (its own
    interpolation, computed once per image and scale: no patch-border effects); the SRGAN's is
    the LR image, with the whole image's interpolation as ``base`` (zero-filled k-space: it wraps
    around on a patch). Arrays are float32 (float16 rounding, ~5e-4 of the signal, is of the
    order of the residual a 2x through-plane network has to learn).
    """

    def __init__(self, config: SuperresConfig, volumes: list[np.ndarray], generator: torch.Generator) -> None:
        self.c, self.g = config, generator
        self.on_hr_grid = config.task == "superres"
        self.with_base = config.task == "srgan" and config.interpolation == "zero_fill"
        store = torch.float32
        lcm = 1
        for s in config.scales:
            for f in s:
                lcm = lcm * f // math.gcd(lcm, f)
        self.items: list[dict] = []
        stacks = []
        for vol in volumes:
            t = torch.from_numpy(vol)
            if config.dims == 3:
                stacks.append(taper_borders(t[tuple(slice(0, n // lcm * lcm) for n in t.shape)], spatial_dims=3))
                continue
            if config.planes == "iso":
                # every third plane of each orientation of the volume degraded along all three axes (and
                # interpolated in 3-D): what the 2-D network sees on an isotropic volume (upscale_image)
                v = taper_borders(t[tuple(slice(0, n // lcm * lcm) for n in t.shape)].float(), spatial_dims=3)
                s2 = config.scales[0]
                s3 = (s2[0],) * 3
                with torch.no_grad():
                    up = interpolate(_degrade(config, v, s3)[None, None], s3, config.interpolation)[0, 0]
                for axis in range(3):
                    hr_p, up_p = v.movedim(axis, 0)[::3], up.movedim(axis, 0)[::3]
                    keep = (hr_p > 0.1).float().mean(dim=(1, 2)) > 0.1
                    if bool(keep.any()):
                        self.items.append({"hr": hr_p[keep].to(store).contiguous(),
                                           "input": {s2: up_p[keep].to(store).contiguous()}, "base": {}})
                continue
            # 2-D: axial slices (Z, X, Y), or every third X-Z (Y, X, Z) and Y-Z (X, Y, Z) plane
            planes = [t.permute(2, 0, 1)] if config.planes == "axial" else [t.permute(1, 0, 2)[::3], t[::3]]
            for t in planes:
                keep = (t > 0.1).float().mean(dim=(1, 2)) > 0.1
                t = t[keep]
                if t.shape[0] == 0:
                    continue
                X, Y = t.shape[1] // lcm * lcm, t.shape[2] // lcm * lcm
                stacks.append(taper_borders(t[:, :X, :Y], spatial_dims=2))
        for t in stacks:
            t = t.contiguous()
            inputs, bases = {}, {}
            for s in config.scales:
                lr = _degrade(config, t, s)
                if self.on_hr_grid or self.with_base:
                    with torch.no_grad():
                        batch = lr[:, None] if config.dims == 2 else lr[None, None]
                        up = interpolate(batch, s, config.interpolation)
                        up = up[:, 0] if config.dims == 2 else up[0, 0]
                    if self.on_hr_grid:
                        lr = up
                    else:
                        bases[s] = up.to(store).contiguous()
                inputs[s] = lr.to(store).contiguous()
            self.items.append({"hr": t.to(store), "input": inputs, "base": bases})
        if not self.items:
            raise ValueError("train_data gives no usable volumes")

    def _int(self, high: int) -> int:
        return int(torch.randint(max(high, 1), (), generator=self.g))

    def _tapered_crop(self, hr_all: torch.Tensor, s: tuple[int, ...]
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """A random box of the volume (patch + 0-16 voxels per axis, multiples of ``s``) tapered to 0
        over its 8 border voxels, as a crop of a scan is evaluated: ``(input, hr, base)`` of the box
        with the low resolution and the interpolation done on the box itself."""
        c = self.c
        box = [min(n // f * f, -(-(c.patch_size + self._int(17)) // f) * f) for n, f in zip(hr_all.shape[-c.dims:], s)]
        for _attempt in range(8):
            corner = [self._int(n - b + 1) for n, b in zip(hr_all.shape, box)]
            hr = hr_all[tuple(slice(a, a + b) for a, b in zip(corner, box))]
            if float((hr > 0.1).float().mean()) > 0.25:
                break
        hr = taper_borders(hr.float(), spatial_dims=c.dims)
        lr = _degrade(c, hr, s)
        up = interpolate(lr[None, None], s, c.interpolation)[0, 0] if (self.on_hr_grid or self.with_base) else None
        if c.dims == 2:  # a stack of one slice
            hr, lr, up = hr[None], lr[None], up[None] if up is not None else None
        if self.on_hr_grid:
            return up, hr, None
        return lr, hr, up if self.with_base else None

    def batch(self, generator: torch.Generator | None = None
              ) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...], torch.Tensor | None]:
        """``(input, hr, scale, base)``: input ``(B, 1, *p)`` (HR grid for the fusion network, LR for
        the SRGAN), hr ``(B, 1, *P)``, base the whole image's interpolation cropped like hr (a
        zero-filling SRGAN) or None; drawn with ``generator`` (default the one given at construction)."""
        if generator is not None:
            self.g = generator
        c = self.c
        s = c.scales[self._int(len(c.scales))]
        grid = (1,) * c.dims if self.on_hr_grid else s
        in_patch = [max(c.patch_size // f, 2) for f in grid]
        ins, hrs, bases = [], [], []
        for _ in range(c.batch_size):
            item = self.items[self._int(len(self.items))]
            hr_all, in_all = item["hr"], item["input"][s]
            base_all = item["base"].get(s)
            if c.crop_taper > 0 and float(torch.rand((), generator=self.g)) < c.crop_taper:
                with torch.no_grad():
                    hr_src = hr_all if c.dims == 3 else hr_all[self._int(hr_all.shape[0])]
                    in_all, hr_all, base_all = self._tapered_crop(hr_src, s)
            for _attempt in range(8):
                if c.dims == 2:
                    z = self._int(hr_all.shape[0])
                    hr_img, in_img = hr_all[z], in_all[z]
                else:
                    hr_img, in_img = hr_all, in_all
                corner = [self._int(n - p + 1) for n, p in zip(in_img.shape, in_patch)]
                in_p = in_img[tuple(slice(a, a + p) for a, p in zip(corner, in_patch))]
                hr_region = tuple(slice(a * f, (a + p) * f) for a, p, f in zip(corner, in_patch, grid))
                hr_p = hr_img[hr_region]
                if float((hr_p > 0.1).float().mean()) > 0.25:
                    break
            base_p = base_all[hr_region] if base_all is not None else None
            if tuple(in_p.shape) != tuple(in_patch):  # image smaller than the patch: pad
                pads = [x for n, p in zip(reversed(in_p.shape), reversed(in_patch)) for x in (0, p - n)]
                hpads = [x for n, p, f in zip(reversed(hr_p.shape), reversed(in_patch), reversed(grid))
                         for x in (0, p * f - n)]
                in_p, hr_p = F.pad(in_p, pads), F.pad(hr_p, hpads)
                base_p = F.pad(base_p, hpads) if base_p is not None else None
            ins.append(in_p.float())
            hrs.append(hr_p.float())
            if base_p is not None:
                bases.append(base_p.float())
        x, hr = torch.stack(ins)[:, None], torch.stack(hrs)[:, None]
        base = torch.stack(bases)[:, None] if bases else None
        # flips (and a transpose of the two in-plane axes when their factors agree)
        for axis in range(c.dims):
            if self._int(2):
                x, hr = x.flip(2 + axis), hr.flip(2 + axis)
                base = base.flip(2 + axis) if base is not None else None
        a, b = c.dims, c.dims + 1
        if s[-2] == s[-1] and x.shape[a] == x.shape[b] and self._int(2):
            x, hr = x.transpose(a, b), hr.transpose(a, b)
            base = base.transpose(a, b) if base is not None else None
        return x.contiguous(), hr.contiguous(), s, base.contiguous() if base is not None else None


# ----------------------------------------------------------------------------- training

@dataclass
class SuperresResult:
    """What :func:`train_superres` did."""

    config: SuperresConfig
    steps: int
    seconds: float
    last_checkpoint: Path
    weights: Path
    history: list = field(default_factory=list)


def _optimisers(config: SuperresConfig, model: nn.Module) -> dict[str, torch.optim.Optimizer]:
    if config.task == "srgan":
        return {"g": torch.optim.Adam(model.g.parameters(), lr=config.lr, betas=(0.9, 0.999)),
                "d": torch.optim.Adam(model.d.parameters(), lr=config.lr, betas=(0.5, 0.999))}
    return {"model": torch.optim.Adam(model.parameters(), lr=config.lr)}


def _step(config: SuperresConfig, model: nn.Module, opt: dict, pairs: _Pairs, step: int) -> dict[str, float]:
    lr, hr, s, base = pairs.batch()
    if config.task == "superres":
        loss = F.mse_loss(model.refine(lr, s), hr)  # lr: the interpolated input on the HR grid
        opt["model"].zero_grad(set_to_none=True)
        loss.backward()
        opt["model"].step()
        return {"loss": loss.item()}
    adversarial = step >= config.pretrain_steps
    for p in model.d.parameters():
        p.requires_grad_(False)
    if adversarial:
        g_loss, parts, sr = model.generator_loss(lr, hr, base)
    else:
        sr = model.g(lr, base=base)
        g_loss = F.mse_loss(sr, hr)
        parts = {"content": g_loss.item(), "adv": 0.0}
    opt["g"].zero_grad(set_to_none=True)
    g_loss.backward()
    opt["g"].step()
    for p in model.d.parameters():
        p.requires_grad_(True)
    d_loss = model.discriminator_loss(hr, sr)
    opt["d"].zero_grad(set_to_none=True)
    d_loss.backward()
    opt["d"].step()
    return {"loss": g_loss.item(), "d": d_loss.item(), **parts}


def train_superres(config: SuperresConfig, volumes: list[np.ndarray] | None = None) -> SuperresResult:
    """Train one super-resolution network; checkpoints in ``config.output_dir`` (resumed when present).

    Args:
        config: the run.
        volumes: HR training volumes (default: :func:`superres_volumes` of ``config.train_data``).

    Returns:
        :class:`SuperresResult`; the weight file is ``OUTPUT_DIR/<config.weight_name>.pt``.
    """
    from tqdm.auto import tqdm

    from recon.data.io import atomic_path, remove_stale_temporaries

    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    threads = torch.get_num_threads()
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    try:
        if volumes is None:
            volumes = superres_volumes(config.train_data, config.contrasts, config.data_cache)
        model = build_superres(config).train()
        if config.init_from:
            init, init_config, _ = load_superres(config.init_from)
            target = model.g if config.task == "srgan" else model
            target.load_state_dict(init.state_dict())
        generator = torch.Generator().manual_seed(config.seed)
        pairs = _Pairs(config, volumes, generator)
        opt = _optimisers(config, model)
        step, history, elapsed0 = 0, [], 0.0
        ckpt_path = out / "last.ckpt"
        if config.resume and ckpt_path.is_file():
            ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
            if ckpt["config"]["task"] != config.task:
                raise ValueError(f"{ckpt_path} belongs to task {ckpt['config']['task']!r}, not {config.task!r}")
            model.load_state_dict(ckpt["model"])
            for k, o in opt.items():
                o.load_state_dict(ckpt["optimisers"][k])
            generator.set_state(ckpt["generator"])
            step, history, elapsed0 = ckpt["step"], ckpt["history"], ckpt.get("seconds", 0.0)
        t0 = time.perf_counter()
        bar = tqdm(total=config.steps, initial=step, disable=not config.progress, desc=config.weight_name)

        def save_checkpoint() -> None:
            with atomic_path(ckpt_path) as tmp:
                torch.save({"config": _config_dict(config), "model": model.state_dict(),
                            "optimisers": {k: o.state_dict() for k, o in opt.items()},
                            "generator": generator.get_state(), "step": step, "history": history,
                            "seconds": elapsed0 + time.perf_counter() - t0}, tmp)

        while step < config.steps:
            if config.time_budget is not None and elapsed0 + time.perf_counter() - t0 > config.time_budget:
                logger.info("%s: time budget %.0f s reached at step %d", config.weight_name, config.time_budget, step)
                break
            losses = _step(config, model, opt, pairs, step)
            step += 1
            bar.update(1)
            if step % 25 == 0 or step == config.steps:
                history.append({"step": step, "seconds": round(elapsed0 + time.perf_counter() - t0, 1), **losses})
                bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items() if k in ("loss", "d")})
            if step % 200 == 0:
                save_checkpoint()
            if config.task == "srgan" and step == config.pretrain_steps:
                # the content-only generator: the MSE network the adversarial one is compared with
                mse_config = dataclasses.replace(config, name=f"{config.weight_name}-mse", adv_weight=0.0,
                                                 pretrain_steps=0)
                save_superres(out / f"{mse_config.weight_name}.pt", mse_config, model,
                              {"name": mse_config.weight_name, "task": "srgan", "dims": 3, "steps": step,
                               "content_only": True, "train_seconds": round(elapsed0 + time.perf_counter() - t0, 1),
                               "train_data": config.train_data, "scales": [list(s) for s in config.scales],
                               "degradation": config.degradation})
        bar.close()
        save_checkpoint()
        seconds = elapsed0 + time.perf_counter() - t0
        model.eval()
        card = {"name": config.weight_name, "task": config.task, "dims": config.dims,
                "scales": [list(s) for s in config.scales], "degradation": config.degradation, "steps": step,
                "train_seconds": round(seconds, 1), "train_data": config.train_data,
                "final_losses": history[-1] if history else {}}
        weights = save_superres(out / f"{config.weight_name}.pt", config, model, card)
        with atomic_path(out / "history.json") as tmp:
            Path(tmp).write_text(json.dumps(history, indent=1))
        return SuperresResult(config, step, seconds, ckpt_path, weights, history)
    finally:
        torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- the head-task interface

#: task options (``config.options``) -> SuperresConfig fields
_OPTIONS = ("dims", "scales", "degradation", "interpolation", "kernel_sizes", "contrasts", "disc_chans", "adv_weight",
            "pretrain_steps", "name", "scale_input", "bias", "crop_taper", "planes")


class SuperresTask(HeadTask):
    """``recon train --task superres``: the multi-scale fusion CNN (:class:`~recon.heads.superres.MultiScaleFusionSR`)
    through :func:`recon.train.tasks_heads.train_head` (checkpoints, resume, torchrun, AMP, validation).

    HeadConfig fields used: ``chans``, ``depth`` (fusion blocks), ``batch_size``, ``patch_size`` (HR
    patch side), ``lr``, ``seed``, ``train_data``; options (own flags): ``--dims``, ``--scales``,
    ``--degradation``, ``--interpolation``, ``--kernel-sizes``, ``--contrasts``. Training volumes
    are every listed contrast of each subject (``phantom:A-B`` gives the 2 mm phantoms of
    :func:`~recon.train.tasks_heads.load_data`; the bundled networks were trained on 1 mm ones by
    ``scripts/train_superres.py``), each divided by its foreground mean.
    """

    task_name = "superres"

    @classmethod
    def add_arguments(cls, parser) -> None:
        d = SuperresConfig()
        parser.add_argument("--dims", type=int, choices=(2, 3), default=None, help="2: slices, 3: volumes (srgan: 3)")
        parser.add_argument("--scales", nargs="+", default=["2"], metavar="S",
                            help="training scales: ints (isotropic) or per-axis like 1,1,3 (default: 2)")
        parser.add_argument("--degradation", choices=("kspace", "image"), default=d.degradation,
                            help="low resolution by k-space truncation (default) or block averaging")
        parser.add_argument("--interpolation", choices=INTERPOLATIONS, default=d.interpolation,
                            help="the interpolation the network adds its residual to: zero_fill (sinc, default) or cubic")
        parser.add_argument("--kernel-sizes", type=int, nargs="+", default=None, help="fusion paths' kernel sizes")
        parser.add_argument("--scale-input", action="store_true",
                            help="fusion: condition on the scale (for several --scales in one network)")
        parser.add_argument("--planes", choices=("axial", "through", "iso"), default=d.planes,
                            help="2-D: train on axial slices (in-plane scales such as 2), or on the X-Z and Y-Z "
                                 "planes (through-plane scales such as 1,3: thick slices, the network then runs "
                                 "on both plane families of a volume), or 'iso': planes of all three orientations "
                                 "of volumes degraded along all three axes (in-plane scale such as 2: the network "
                                 "then serves isotropic (s, s, s) volumes)")
        parser.add_argument("--crop-taper", type=float, default=d.crop_taper, metavar="P",
                            help="probability that a training patch comes from a random crop of the head "
                                 "tapered at its borders, its low resolution simulated on the crop (default 0)")
        parser.add_argument("--conv-bias", dest="bias", action="store_true",
                            help="convolutions with biases (default: bias-free, the same result at any intensity scale)")
        parser.add_argument("--contrasts", nargs="+", default=list(d.contrasts), choices=CONTRASTS)
        parser.add_argument("--disc-chans", type=int, default=d.disc_chans, help="srgan discriminator channels")
        parser.add_argument("--adv-weight", type=float, default=d.adv_weight, help="srgan adversarial weight")
        parser.add_argument("--pretrain-steps", type=int, default=d.pretrain_steps,
                            help="srgan: content-only steps before the adversarial ones")

    def sr_config(self) -> SuperresConfig:
        """The :class:`SuperresConfig` equivalent of this run (validates the options)."""
        c, o = self.config, self.config.options
        dims = o.get("dims") or (3 if self.task_name == "srgan" else 2)
        scales = o.get("scales", ["2"])
        scales = parse_scales(scales, dims) if all(isinstance(x, str) for x in scales) else \
            [check_scale(tuple(x) if isinstance(x, list) else x, dims, "scales") for x in scales]
        kw = {k: o[k] for k in _OPTIONS if k in o and o[k] is not None and k not in ("dims", "scales")}
        for key in ("kernel_sizes", "contrasts"):
            if key in kw:
                kw[key] = tuple(kw[key])
        if "bias" not in o:
            # a weight file from before the residual-to-sinc retraining (2026-12-07): convolutions
            # with biases, and the SRGAN generator added cubic interpolation whatever 'interpolation' said
            kw["bias"] = True
            if self.task_name == "srgan":
                kw["interpolation"] = "cubic"
        return SuperresConfig(task=self.task_name, dims=dims, scales=scales, chans=c.chans, num_blocks=c.depth,
                              batch_size=c.batch_size, patch_size=c.patch_size, lr=c.lr, seed=c.seed, steps=c.steps,
                              train_data=c.train_data, **kw)

    def check(self) -> None:
        self.sr = self.sr_config()

    def contrasts(self) -> list[str]:
        return list(self.sr.contrasts)

    def voxel_size(self) -> float:
        """1 mm phantoms, as ``scripts/train_superres.py`` (the bundled weights) trains on."""
        return 1.0

    def weight_name(self) -> str:
        return self.sr.weight_name

    def build_model(self) -> nn.Module:
        return build_superres(self.sr)

    def shipped_module(self, model: nn.Module) -> nn.Module:
        return _shipped(self.sr, model)

    def optimisers(self, model: nn.Module) -> dict[str, torch.optim.Optimizer]:
        return _optimisers(self.sr, model)

    def prepare(self, volumes: list[dict[str, np.ndarray]]) -> None:
        arrays = [_normalised_box(item[c]) for item in volumes for c in self.sr.contrasts if c in item]
        self.pairs = _Pairs(self.sr, arrays, torch.Generator().manual_seed(self.sr.seed))

    def step(self, model: nn.Module, run: StepRunner) -> dict[str, float]:
        x, hr, s, _ = self.pairs.batch(run.generator)
        x, hr = x.to(run.device), hr.to(run.device)
        with run.autocast():
            loss = F.mse_loss(model.refine(x, s).float(), hr)
        return {"loss": run.optimise(loss, "model")}


class SRGANTask(SuperresTask):
    """``recon train --task srgan``: the 3-D SRGAN (:class:`~recon.heads.superres.SRGAN3d`):
    ``--pretrain-steps`` content-only generator steps (counted by the generator optimiser's own
    step count, so a resumed run continues the schedule), then content + ``--adv-weight`` x
    adversarial, the discriminator trained alternately. Ships the generator."""

    task_name = "srgan"

    def step(self, model: nn.Module, run: StepRunner) -> dict[str, float]:
        lr, hr, s, base = self.pairs.batch(run.generator)
        lr, hr = lr.to(run.device), hr.to(run.device)
        base = base.to(run.device) if base is not None else None
        state = run.optimisers["g"].state
        done = int(next(iter(state.values()))["step"]) if state else 0
        for p in model.d.parameters():
            p.requires_grad_(False)
        with run.autocast():
            if done >= self.sr.pretrain_steps:
                g_loss, parts, sr = model.generator_loss(lr, hr, base)
            else:
                sr = model.g(lr, base=base)
                g_loss = F.mse_loss(sr.float(), hr)
                parts = {"content": float(g_loss.detach()), "adv": 0.0}
        loss = run.optimise(g_loss, "g")
        for p in model.d.parameters():
            p.requires_grad_(True)
        with run.autocast():
            d_loss = model.discriminator_loss(hr, sr)
        return {"loss": loss, "d": run.optimise(d_loss, "d"), **parts}
