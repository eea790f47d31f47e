"""The training configuration: one validated dataclass, serialisable to plain JSON.

A :class:`TrainConfig` holds everything a run depends on (model and its constructor
arguments, data, masks, loss, optimiser, schedule, seed, output folder), so that a
checkpoint that stores ``config.to_dict()`` says exactly how it was made and
``TrainConfig.from_dict`` rebuilds the run.

Example:
    >>> from recon.train import TrainConfig
    >>> config = TrainConfig(
    ...     model="varnet",
    ...     model_kwargs={"num_cascades": 4, "chans": 8, "pools": 3, "sens_chans": 4, "sens_pools": 2},
    ...     train_data="embedded:train",
    ...     val_data="embedded:val",
    ...     accelerations=(4, 8),
    ...     center_fractions=(0.08, 0.04),
    ...     epochs=2,
    ...     output_dir="/tmp/run",
    ... )
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Optional

from recon.masks import MASK_TYPES
from recon.ops._checks import CHALLENGES
from recon.train.registry import MODEL_SPECS, check_model_kwargs

__all__ = ["TrainConfig", "LOSSES", "MODEL_IMPLS", "EMBEDDED_PREFIX"]

#: training losses: SSIM (fastMRI's VarNet loss), L1 (fastMRI's U-Net loss) or their sum
LOSSES = ("ssim", "l1", "ssim_l1")

#: which class implements the model: recon's own (default) or the fastMRI reference package
MODEL_IMPLS = ("recon", "fastmri")

#: data paths starting with this name an embedded split of :mod:`recon.data.sample`
EMBEDDED_PREFIX = "embedded:"

_DEVICES = ("auto", "cpu", "cuda")
_BACKENDS = (None, "gloo", "nccl")


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))


def _fail(name: str, rule: str, value: object) -> ValueError:
    return ValueError(f"TrainConfig.{name} must be {rule}, got {value!r}")


@dataclass
class TrainConfig:
    """Everything a training run depends on.

    Attributes:
        model: ``"varnet"``, ``"unet"`` or ``"cascade"`` (see :data:`recon.train.MODEL_SPECS`).
        model_kwargs: constructor keyword arguments of the model class (fastMRI's names,
            e.g. ``num_cascades``, ``chans``, ``pools``, ``sens_chans``, ``sens_pools``).
        model_impl: ``"recon"`` (``recon.models``) or ``"fastmri"`` (the reference package's
            class, for parity runs); the checkpoint format is the same.
        train_data: a folder (or file) of fastMRI HDF5 training data, or ``"embedded:<split>"``
            for a split of the embedded sample data (``embedded:train``).
        val_data: validation data in the same forms, or None to skip validation.
        challenge: ``"multicoil"`` or ``"singlecoil"``.
        data_cache: cache folder for embedded splits (default ``$RECON_CACHE``/``~/.cache/recon``).
        sample_rate: fraction of training slices used (drawn with ``seed``), or None for all.
        train_crop_rows: train k-space models on random windows of this many rows along the
            fully sampled readout direction (whole phase-encoding direction, so the same
            aliasing as whole slices; a step costs about ``H / train_crop_rows`` less), or None.
        mask_type: a :func:`recon.masks.create_mask_for_mask_type` name (``"random"``,
            ``"equispaced_fraction"``, ...).
        center_fractions: fully sampled centre fraction per acceleration.
        accelerations: undersampling factors; each training sample draws one pair.
        loss: ``"ssim"`` (1 - SSIM), ``"l1"`` (mean absolute error divided by the volume's
            max) or ``"ssim_l1"`` (their sum, the L1 weighted by ``l1_weight``).
        l1_weight: weight of the L1 term of ``"ssim_l1"``.
        lr: Adam learning rate.
        lr_step_size: epochs between learning-rate decays (StepLR, as fastMRI).
        lr_gamma: learning-rate decay factor.
        weight_decay: Adam weight decay.
        grad_clip: clip the gradient norm to this value, or None.
        epochs: number of training epochs.
        max_steps: stop after this many optimiser steps in total, or None.
        batch_size: training slices per step (per process in distributed runs).
        num_workers: DataLoader worker processes.
        seed: the one seed of the run: model initialisation, shuffling and training masks.
        output_dir: folder for checkpoints (``last.ckpt``, ``best.ckpt``) and ``history.json``.
        resume: continue from ``output_dir/last.ckpt`` when it exists.
        val_every: validate every this many epochs (and after the last one).
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        backend: torch.distributed backend for multi-process runs, None to choose (gloo on CPU,
            nccl on CUDA).
        num_threads: torch CPU threads per process, or None to leave torch's setting.
        progress: show a tqdm bar; None shows it only when stderr is a terminal.
        self_supervised: None (supervised, on the targets) or ``"ssdu"``: train a k-space
            model on undersampled data alone (:mod:`recon.train.ssdu`, Yaman et al. 2020);
            validation is unchanged.
        ssdu_rho: SSDU loss-set ratio ``|Lambda| / |Omega|``, in (0, 1).
        ssdu_selection: ``"gaussian"`` or ``"uniform"`` selection of the loss set.
        ssdu_unit: ``"auto"`` (whole acquired lines for column masks, points for 2-D masks),
            ``"points"`` (the paper: single k-space points) or ``"columns"``.
        init_weights: start from these weights (fine-tuning): a recon checkpoint, a fastMRI
            Lightning ``.ckpt`` or released ``*_state_dict.pt`` (read by
            :func:`recon.train.load_model`; the architecture must match ``model_kwargs``), or
            None for a fresh initialisation. Ignored when resuming from ``last.ckpt``.

    Raises:
        ValueError: a field out of range or of the wrong kind; the message names the field.
    """

    model: str = "varnet"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    model_impl: str = "recon"
    train_data: str = "embedded:train"
    val_data: Optional[str] = "embedded:val"
    challenge: str = "multicoil"
    data_cache: Optional[str] = None
    sample_rate: Optional[float] = None
    train_crop_rows: Optional[int] = None
    mask_type: str = "random"
    center_fractions: tuple[float, ...] = (0.08, 0.04)
    accelerations: tuple[float, ...] = (4, 8)
    loss: str = "ssim"
    l1_weight: float = 1.0
    lr: float = 3e-4
    lr_step_size: int = 40
    lr_gamma: float = 0.1
    weight_decay: float = 0.0
    grad_clip: Optional[float] = None
    epochs: int = 50
    max_steps: Optional[int] = None
    batch_size: int = 1
    num_workers: int = 0
    seed: int = 42
    output_dir: str = "train_output"
    resume: bool = True
    val_every: int = 1
    device: str = "auto"
    backend: Optional[str] = None
    num_threads: Optional[int] = None
    progress: Optional[bool] = None
    self_supervised: Optional[str] = None
    ssdu_rho: float = 0.4
    ssdu_selection: str = "gaussian"
    ssdu_unit: str = "auto"
    init_weights: Optional[str] = None

    def __post_init__(self) -> None:
        if self.model not in MODEL_SPECS:
            raise _fail("model", f"one of {sorted(MODEL_SPECS)}", self.model)
        if not isinstance(self.model_kwargs, dict) or not all(isinstance(k, str) for k in self.model_kwargs):
            raise _fail("model_kwargs", "a dict of constructor keyword arguments", self.model_kwargs)
        if self.model_impl not in MODEL_IMPLS:
            raise _fail("model_impl", f"one of {list(MODEL_IMPLS)}", self.model_impl)
        if self.model_impl == "fastmri" and MODEL_SPECS[self.model].fastmri_class is None:
            raise _fail("model_impl", f"'recon' for model={self.model!r} (fastMRI has no such model)", self.model_impl)
        problem = check_model_kwargs(self.model, self.model_kwargs, self.model_impl)
        if problem:
            raise ValueError(f"TrainConfig.model_kwargs: {problem}")
        self.model_kwargs = dict(self.model_kwargs)
        if not isinstance(self.train_data, str) or not self.train_data:
            raise _fail("train_data", "a data folder or 'embedded:<split>'", self.train_data)
        if self.val_data is not None and (not isinstance(self.val_data, str) or not self.val_data):
            raise _fail("val_data", "a data folder, 'embedded:<split>' or None", self.val_data)
        if self.challenge not in CHALLENGES:
            raise _fail("challenge", "'singlecoil' or 'multicoil'", self.challenge)
        if self.model == "varnet" and self.challenge != "multicoil":
            raise _fail("challenge", "'multicoil' for model='varnet'", self.challenge)
        if self.data_cache is not None and not isinstance(self.data_cache, str):
            raise _fail("data_cache", "a folder path (str) or None", self.data_cache)
        if self.sample_rate is not None and not (_is_real(self.sample_rate) and 0 < self.sample_rate <= 1):
            raise _fail("sample_rate", "a number in (0, 1] or None", self.sample_rate)
        if self.train_crop_rows is not None:
            if not (_is_int(self.train_crop_rows) and self.train_crop_rows >= 8):
                raise _fail("train_crop_rows", "an int >= 8 or None", self.train_crop_rows)
            if MODEL_SPECS[self.model].domain != "kspace":
                raise _fail("train_crop_rows", f"None for the image-domain model {self.model!r}", self.train_crop_rows)
        if self.mask_type not in MASK_TYPES:
            raise _fail("mask_type", f"one of {sorted(MASK_TYPES)}", self.mask_type)
        for name in ("center_fractions", "accelerations"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) == 0:
                raise _fail(name, "a non-empty sequence of numbers", value)
            if not all(_is_real(v) for v in value):
                raise _fail(name, "a non-empty sequence of numbers", value)
        self.center_fractions = tuple(float(f) for f in self.center_fractions)
        self.accelerations = tuple(int(a) if float(a).is_integer() else float(a) for a in self.accelerations)
        if not all(0 < f < 1 for f in self.center_fractions):
            raise _fail("center_fractions", "fractions in (0, 1)", self.center_fractions)
        if not all(a >= 1 for a in self.accelerations):
            raise _fail("accelerations", "factors >= 1", self.accelerations)
        if len(self.center_fractions) != len(self.accelerations):
            raise ValueError(
                "TrainConfig.center_fractions and TrainConfig.accelerations must have the same length, "
                f"got {list(self.center_fractions)} and {list(self.accelerations)}"
            )
        if self.loss not in LOSSES:
            raise _fail("loss", f"one of {list(LOSSES)}", self.loss)
        for name in ("lr", "lr_gamma"):
            value = getattr(self, name)
            if not (_is_real(value) and value > 0):
                raise _fail(name, "a positive number", value)
        for name in ("l1_weight", "weight_decay"):
            value = getattr(self, name)
            if not (_is_real(value) and value >= 0):
                raise _fail(name, "a number >= 0", value)
        if self.grad_clip is not None and not (_is_real(self.grad_clip) and self.grad_clip > 0):
            raise _fail("grad_clip", "a positive number or None", self.grad_clip)
        for name in ("lr_step_size", "epochs", "batch_size", "val_every"):
            value = getattr(self, name)
            if not (_is_int(value) and value >= 1):
                raise _fail(name, "an int >= 1", value)
        if self.max_steps is not None and not (_is_int(self.max_steps) and self.max_steps >= 1):
            raise _fail("max_steps", "an int >= 1 or None", self.max_steps)
        if not (_is_int(self.num_workers) and self.num_workers >= 0):
            raise _fail("num_workers", "an int >= 0", self.num_workers)
        if not (_is_int(self.seed) and 0 <= self.seed < 2**32):
            raise _fail("seed", "an int in [0, 2**32)", self.seed)
        if not isinstance(self.output_dir, str) or not self.output_dir:
            raise _fail("output_dir", "a folder path (str)", self.output_dir)
        if not isinstance(self.resume, bool):
            raise _fail("resume", "True or False", self.resume)
        if self.device not in _DEVICES:
            raise _fail("device", f"one of {list(_DEVICES)}", self.device)
        if self.backend not in _BACKENDS:
            raise _fail("backend", f"one of {list(_BACKENDS)}", self.backend)
        if self.num_threads is not None and not (_is_int(self.num_threads) and self.num_threads >= 1):
            raise _fail("num_threads", "an int >= 1 or None", self.num_threads)
        if self.progress is not None and not isinstance(self.progress, bool):
            raise _fail("progress", "True, False or None", self.progress)
        if self.self_supervised not in (None, "ssdu"):
            raise _fail("self_supervised", "None or 'ssdu'", self.self_supervised)
        if self.self_supervised is not None and MODEL_SPECS[self.model].domain != "kspace":
            raise _fail("self_supervised", f"None for the image-domain model {self.model!r} (SSDU needs a k-space model)", self.self_supervised)
        if not (_is_real(self.ssdu_rho) and 0 < self.ssdu_rho < 1):
            raise _fail("ssdu_rho", "a number in (0, 1)", self.ssdu_rho)
        if self.ssdu_selection not in ("gaussian", "uniform"):
            raise _fail("ssdu_selection", "'gaussian' or 'uniform'", self.ssdu_selection)
        if self.ssdu_unit not in ("auto", "points", "columns"):
            raise _fail("ssdu_unit", "'auto', 'points' or 'columns'", self.ssdu_unit)
        if self.init_weights is not None and (not isinstance(self.init_weights, str) or not self.init_weights):
            raise _fail("init_weights", "a checkpoint path (str) or None", self.init_weights)

    # -- serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible dict (tuples become lists)."""
        out = dataclasses.asdict(self)
        for name in ("center_fractions", "accelerations"):
            out[name] = list(out[name])
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """Rebuild a config from :meth:`to_dict` output.

        Raises:
            ValueError: unknown keys (the message lists them) or invalid values.
        """
        if not isinstance(data, dict):
            raise TypeError(f"data must be a dict of TrainConfig fields, got {type(data).__name__}")
        cls.check_fields(data)
        return cls(**data)

    @classmethod
    def check_fields(cls, data: dict[str, Any], source: str = "") -> None:
        """``ValueError`` listing the keys of ``data`` that are no TrainConfig field (``source``
        names where they come from, e.g. a ``--config`` file)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            where = f" in {source}" if source else ""
            raise ValueError(f"unknown TrainConfig fields {unknown}{where}; known fields: {sorted(known)}")

    def to_json(self) -> str:
        """The config as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "TrainConfig":
        """Rebuild a config from :meth:`to_json` output."""
        return cls.from_dict(json.loads(text))

    def replace(self, **changes: Any) -> "TrainConfig":
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)
