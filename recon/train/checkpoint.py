"""Checkpoints in fastMRI's Lightning layout, written atomically, with recon's metadata.

A checkpoint is a ``torch.save`` dict of plain data (tensors, numbers, strings, lists,
dicts), so ``torch.load(path, weights_only=True)`` reads it without unpickling code:

============================  =============================================================
key                           content
============================  =============================================================
``state_dict``                model parameters as ``<prefix>.<name>``: ``varnet.cascades.0...``
                              (fastMRI's ``VarNetModule``), ``unet.down_sample_layers...``
                              (``UnetModule``), ``cascade....`` (CascadeNet)
``epoch``, ``global_step``    progress: epochs finished, optimiser steps taken
``optimizer_states``          ``[optimizer.state_dict()]`` (absent in exported weights)
``lr_schedulers``             ``[scheduler.state_dict()]`` (absent in exported weights)
``hyper_parameters``          the model's constructor arguments plus ``lr``, ``lr_step_size``,
                              ``lr_gamma``, ``weight_decay`` (what Lightning stores)
``recon``                     ``format_version``, ``model``, ``model_kwargs``, ``config``
                              (:meth:`TrainConfig.to_dict`), ``metrics`` (last validation),
                              ``best`` (best validation), ``history``, ``torch_version``
============================  =============================================================

An official fastMRI checkpoint (a Lightning ``.ckpt`` or a bare ``state_dict`` as in
fastMRI's pretrained ``.pt`` files) loads with :func:`load_model` too, given the model
name when the file does not say it.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any, Mapping, Optional

import torch
from torch import nn
from torch.torch_version import TorchVersion

from recon.data.io import atomic_path
from recon.train.registry import MODEL_SPECS, build_model

__all__ = [
    "FORMAT_VERSION",
    "save_checkpoint",
    "load_checkpoint",
    "checkpoint_state_dict",
    "load_model",
    "export_weights",
    "prefixed_state_dict",
]

FORMAT_VERSION = 1


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def prefixed_state_dict(model: nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    """``model``'s state dict with keys ``<prefix>.<name>``, tensors detached on the CPU."""
    state = _unwrap(model).state_dict()
    return {f"{prefix}.{key}": value.detach().cpu().clone() for key, value in state.items()}


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    *,
    model_name: str,
    model_kwargs: Mapping[str, Any],
    optimizer: Optional[torch.optim.Optimizer] = None,
    scheduler: Optional[Any] = None,
    epoch: int = 0,
    global_step: int = 0,
    config: Optional[Mapping[str, Any]] = None,
    metrics: Optional[Mapping[str, Any]] = None,
    best: Optional[Mapping[str, Any]] = None,
    history: Optional[list] = None,
) -> Path:
    """Write a checkpoint atomically (temporary file in the same folder, then rename).

    Args:
        path: destination file (its folder is created).
        model: the model (a DistributedDataParallel wrapper is unwrapped).
        model_name: a key of :data:`recon.train.MODEL_SPECS`; sets the key prefix.
        model_kwargs: the model's constructor arguments.
        optimizer: saved as ``optimizer_states`` when given.
        scheduler: saved as ``lr_schedulers`` when given.
        epoch: epochs finished.
        global_step: optimiser steps taken.
        config: the training config as a dict.
        metrics: the latest validation metrics.
        best: the best validation metrics so far (with their epoch).
        history: per-epoch records.

    Returns:
        ``path``.

    Raises:
        ValueError: unknown ``model_name``.
    """
    if model_name not in MODEL_SPECS:
        raise ValueError(f"model_name must be one of {sorted(MODEL_SPECS)}, got {model_name!r}")
    spec = MODEL_SPECS[model_name]
    config = dict(config or {})
    hyper = dict(model_kwargs)
    for key in ("lr", "lr_step_size", "lr_gamma", "weight_decay"):
        if key in config:
            hyper[key] = config[key]
    checkpoint: dict[str, Any] = {
        "state_dict": prefixed_state_dict(model, spec.prefix),
        "epoch": int(epoch),
        "global_step": int(global_step),
        "hyper_parameters": hyper,
        "recon": {
            "format_version": FORMAT_VERSION,
            "model": model_name,
            "model_kwargs": dict(model_kwargs),
            "config": config,
            "metrics": dict(metrics or {}),
            "best": dict(best or {}),
            "history": list(history or []),
            "torch_version": str(torch.__version__),
        },
    }
    if optimizer is not None:
        checkpoint["optimizer_states"] = [optimizer.state_dict()]
    if scheduler is not None:
        checkpoint["lr_schedulers"] = [scheduler.state_dict()]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint (recon's, a fastMRI Lightning ``.ckpt`` or a bare state dict).

    Reads with ``weights_only=True``: tensors and plain containers only, no code.

    Args:
        path: the file.
        map_location: where tensors are loaded.

    Returns:
        The checkpoint dict; a bare state dict comes back as ``{"state_dict": ...}``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a torch checkpoint, or one holding arbitrary objects.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {str(path)!r}")
    try:
        # TorchVersion (a str subclass) is allowed: older recon files stored torch.__version__ as is
        with torch.serialization.safe_globals([TorchVersion]):
            data = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{path}: not loadable with weights_only=True (it holds objects other than tensors and "
            f"plain data, or is not a torch checkpoint): {str(err).splitlines()[0]}"
        ) from err
    except (RuntimeError, EOFError, OSError) as err:
        raise ValueError(f"{path}: not a readable torch checkpoint ({type(err).__name__}: {err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a checkpoint must be a dict, got {type(data).__name__}")
    if "state_dict" not in data:
        if data and all(isinstance(v, torch.Tensor) for v in data.values()):
            return {"state_dict": data}
        raise ValueError(f"{path}: no 'state_dict' in the checkpoint (keys: {sorted(data)[:10]})")
    return data


def checkpoint_state_dict(checkpoint: Mapping[str, Any], model_name: str) -> dict[str, torch.Tensor]:
    """The bare model state dict of a checkpoint (the ``<prefix>.`` removed).

    Keys under another prefix (fastMRI's ``loss.w`` buffer) are dropped. A state dict
    without the prefix (fastMRI's pretrained ``.pt`` files) is returned as is.

    Raises:
        ValueError: unknown ``model_name``.
    """
    if model_name not in MODEL_SPECS:
        raise ValueError(f"model_name must be one of {sorted(MODEL_SPECS)}, got {model_name!r}")
    state = checkpoint["state_dict"]
    head = MODEL_SPECS[model_name].prefix + "."
    if any(key.startswith(head) for key in state):
        return {key[len(head):]: value for key, value in state.items() if key.startswith(head)}
    return dict(state)


def _infer_model_name(checkpoint: Mapping[str, Any]) -> Optional[str]:
    meta = checkpoint.get("recon")
    if isinstance(meta, dict) and meta.get("model") in MODEL_SPECS:
        return meta["model"]
    prefixes = {key.split(".", 1)[0] for key in checkpoint["state_dict"]}
    found = [name for name, spec in MODEL_SPECS.items() if spec.prefix in prefixes]
    return found[0] if len(found) == 1 else None


def load_model(
    checkpoint: str | os.PathLike | Mapping[str, Any],
    *,
    model_name: Optional[str] = None,
    model_kwargs: Optional[Mapping[str, Any]] = None,
    impl: str = "recon",
    map_location: str | torch.device = "cpu",
    strict: bool = True,
) -> tuple[nn.Module, dict[str, Any]]:
    """Build the model a checkpoint describes and load its weights.

    Args:
        checkpoint: a path, or a dict from :func:`load_checkpoint`.
        model_name: the model; default from the checkpoint's metadata or key prefix.
        model_kwargs: constructor arguments; default the checkpoint's ``recon.model_kwargs``
            or, for a fastMRI Lightning checkpoint, the matching ``hyper_parameters``.
        impl: ``"recon"`` or ``"fastmri"``.
        map_location: where tensors are loaded.
        strict: passed to ``load_state_dict``.

    Returns:
        ``(model in eval mode, checkpoint dict)``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the model cannot be told from the file (pass ``model_name``), or the weights
            do not fit the model (missing/unexpected keys, shape mismatches), with the details.
    """
    ckpt = load_checkpoint(checkpoint, map_location) if not isinstance(checkpoint, Mapping) else dict(checkpoint)
    name = model_name or _infer_model_name(ckpt)
    if name is None:
        raise ValueError(
            f"cannot tell which model the checkpoint holds (keys like {sorted(ckpt['state_dict'])[:3]}); "
            f"pass model_name, one of {sorted(MODEL_SPECS)}"
        )
    if name not in MODEL_SPECS:
        raise ValueError(f"model_name must be one of {sorted(MODEL_SPECS)}, got {name!r}")
    meta = ckpt.get("recon") if isinstance(ckpt.get("recon"), dict) else {}
    if model_kwargs is None:
        if meta.get("model") == name and isinstance(meta.get("model_kwargs"), dict):
            model_kwargs = meta["model_kwargs"]
        else:
            model_kwargs = _kwargs_from_hyper_parameters(name, ckpt.get("hyper_parameters"), impl)
    model = build_model(name, dict(model_kwargs), impl=impl)
    state = checkpoint_state_dict(ckpt, name)
    try:
        model.load_state_dict(state, strict=strict)
    except RuntimeError as err:
        raise ValueError(f"the checkpoint's weights do not fit {type(model).__name__}({dict(model_kwargs)}): {err}") from err
    model.eval()
    return model, ckpt


def _kwargs_from_hyper_parameters(name: str, hyper: object, impl: str) -> dict[str, Any]:
    if not isinstance(hyper, Mapping):
        return {}
    import inspect

    from recon.train.registry import model_class

    params = inspect.signature(model_class(name, impl).__init__).parameters
    return {key: value for key, value in hyper.items() if key in params and key != "self"}


def export_weights(src: str | os.PathLike, dst: str | os.PathLike, *, half: bool = False) -> Path:
    """Write a small inference checkpoint: weights and metadata, no optimiser state.

    Args:
        src: a training checkpoint.
        dst: destination file (written atomically).
        half: store floating tensors as float16 (halves the file; loading casts back).

    Returns:
        ``dst``.
    """
    ckpt = load_checkpoint(src)
    out = {key: value for key, value in ckpt.items() if key not in ("optimizer_states", "lr_schedulers")}
    if half:
        out["state_dict"] = {
            key: value.half() if value.is_floating_point() else value for key, value in out["state_dict"].items()
        }
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dst) as tmp:
        torch.save(out, tmp)
    return dst
