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

import inspect
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, Mapping, Optional

import torch
from torch import nn
from torch.torch_version import TorchVersion

from recon.data.io import atomic_path
from recon.train.registry import MODEL_SPECS, build_model, model_class

__all__ = [
    "FORMAT_VERSION",
    "save_checkpoint",
    "load_checkpoint",
    "checkpoint_state_dict",
    "load_model",
    "clear_model_cache",
    "MODEL_CACHE_SIZE",
    "infer_model_kwargs",
    "bundled_weights",
    "resolve_weights",
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
    return _save(checkpoint, path)


def _save(checkpoint: dict[str, Any], path: str | os.PathLike) -> Path:
    """``torch.save`` atomically to ``path`` (its folder created)."""
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
        The checkpoint dict; a bare state dict (or one under a ``"model"`` key) comes back as
        ``{"state_dict": ...}``.

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
    except Exception as err:  # unpickling errors come in many types
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"could not read weights file {str(path)!r} as a PyTorch checkpoint (tensors and plain data "
            f"only, weights_only=True): {first}"
        ) from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a checkpoint must be a dict, got {type(data).__name__}")
    if "state_dict" not in data:
        for state in (data, data.get("model")):
            if isinstance(state, dict) and state and all(isinstance(v, torch.Tensor) for v in state.values()):
                return {"state_dict": state}
        raise ValueError(f"{path}: no 'state_dict' in the checkpoint (keys: {sorted(map(str, data))[:10]})")
    return data


#: prefixes of wrappers (DataParallel, Lightning attribute names) stripped from bare state dicts
_WRAPPER_PREFIXES = ("module.", "model.", "net.")


def checkpoint_state_dict(checkpoint: Mapping[str, Any], model_name: str) -> dict[str, torch.Tensor]:
    """The bare model state dict of a checkpoint (the ``<prefix>.`` removed).

    Keys under another prefix (fastMRI's ``loss.w`` buffer) are dropped. A state dict
    without the prefix (fastMRI's pretrained ``.pt`` files) is returned as is, with a wrapper
    prefix shared by every key (``module.``, ``model.``, ``net.``) removed.

    Raises:
        ValueError: unknown ``model_name``.
    """
    if model_name not in MODEL_SPECS:
        raise ValueError(f"model_name must be one of {sorted(MODEL_SPECS)}, got {model_name!r}")
    state = checkpoint["state_dict"]
    head = MODEL_SPECS[model_name].prefix + "."
    if any(key.startswith(head) for key in state):
        return {key[len(head):]: value for key, value in state.items() if key.startswith(head)}
    for prefix in _WRAPPER_PREFIXES:
        if state and all(key.startswith(prefix) for key in state):
            return {key[len(prefix):]: value for key, value in state.items()}
    return dict(state)


def _infer_model_name(checkpoint: Mapping[str, Any]) -> Optional[str]:
    meta = checkpoint.get("recon")
    if isinstance(meta, dict) and meta.get("model") in MODEL_SPECS:
        return meta["model"]
    prefixes = {key.split(".", 1)[0] for key in checkpoint["state_dict"]}
    found = [name for name, spec in MODEL_SPECS.items() if spec.prefix in prefixes]
    if not found:  # a bare state dict: the model whose layers it holds
        for name in MODEL_SPECS:
            try:
                infer_model_kwargs(name, checkpoint_state_dict(checkpoint, name))
                found.append(name)
            except ValueError:
                continue
    return found[0] if len(found) == 1 else None


def _count(state: Mapping[str, Any], prefix: str) -> int:
    indices = {k[len(prefix):].split(".")[0] for k in state if k.startswith(prefix)}
    return len({i for i in indices if i.isdigit()})


def _unet_size(state: Mapping[str, Any], prefix: str) -> tuple[int, int]:
    """(channels, pooling layers) of the fastMRI U-Net whose parameters start with ``prefix``."""
    return (
        int(state[f"{prefix}down_sample_layers.0.layers.0.weight"].shape[0]),
        _count(state, f"{prefix}down_sample_layers."),
    )


def _unet_level_chans(state: Mapping[str, Any], prefix: str) -> Optional[list[int]]:
    """The channels of each level of that U-Net where they are not fastMRI's doubling, else None."""
    pools = _count(state, f"{prefix}down_sample_layers.")
    widths = [int(state[f"{prefix}down_sample_layers.{k}.layers.0.weight"].shape[0]) for k in range(pools)]
    return None if all(w == widths[0] * 2**k for k, w in enumerate(widths)) else widths


def infer_model_kwargs(name: str, state: Mapping[str, Any]) -> dict[str, Any]:
    """Architecture sizes of model ``name`` read off the parameter shapes (fastMRI names).

    Raises:
        ValueError: the state dict does not hold such a model.
    """
    kwargs: dict[str, Any] = {}
    sens = "sens_net.norm_unet.unet."
    try:
        if name == "varnet":
            kwargs["num_cascades"] = _count(state, "cascades.")
            kwargs["chans"], kwargs["pools"] = _unet_size(state, "cascades.0.model.unet.")
            kwargs["sens_chans"], kwargs["sens_pools"] = _unet_size(state, sens)
            widths = _unet_level_chans(state, "cascades.0.model.unet.")
            if widths is not None:
                kwargs["level_chans"] = widths
        elif name == "unet":
            first = state["down_sample_layers.0.layers.0.weight"]
            kwargs["in_chans"], kwargs["chans"] = int(first.shape[1]), int(first.shape[0])
            kwargs["num_pool_layers"] = _count(state, "down_sample_layers.")
            last = kwargs["num_pool_layers"] - 1
            kwargs["out_chans"] = int(state[f"up_conv.{last}.1.weight"].shape[0])
            widths = _unet_level_chans(state, "")
            if widths is not None:
                kwargs["level_chans"] = widths
        elif name == "cascade":
            kwargs["num_cascades"] = _count(state, "cascades.")
            kwargs["num_convs"] = _count(state, "cascades.0.convs.")
            kwargs["num_filters"] = int(state["cascades.0.convs.0.weight"].shape[0])
            kwargs["sens_chans"] = 0
            if f"{sens}down_sample_layers.0.layers.0.weight" in state:
                kwargs["sens_chans"], kwargs["sens_pools"] = _unet_size(state, sens)
    except (KeyError, IndexError) as err:
        raise ValueError(f"the weights do not look like a {name} checkpoint (missing {err})") from err
    if any(value == 0 for key, value in kwargs.items() if key not in ("sens_chans", "level_chans")):
        raise ValueError(f"the weights do not look like a {name} checkpoint (no {name} layers found)")
    return kwargs


# --------------------------------------------------------------------------- bundled weights

#: file suffixes of checkpoints
WEIGHT_SUFFIXES = (".pt", ".pth", ".ckpt")


def bundled_weights() -> dict[str, Path]:
    """Checkpoints bundled in ``data/weights/``: name (file stem) -> path."""
    from recon.data.sample import data_dir

    folder = data_dir() / "weights"
    if not folder.is_dir():
        return {}
    return {
        p.name[: -len(p.suffix)]: p
        for p in sorted(folder.iterdir())
        if p.is_file() and p.suffix in WEIGHT_SUFFIXES
    }


def resolve_weights(
    method: str, weights: object, bundled: Optional[Mapping[str, Path]] = None
) -> Path:
    """The checkpoint file of learned ``method``: ``weights`` as a path or a bundled name.

    Args:
        method: the model name (``"unet"``, ``"varnet"``, ``"cascade"``).
        weights: a path, the name of a bundled checkpoint (with or without suffix), or ``None``
            for the bundled checkpoint named after ``method`` (``<method>`` or ``<method>_*``).
        bundled: name -> path of the bundled checkpoints (default :func:`bundled_weights`).

    Raises:
        TypeError: ``weights`` is neither None, a str nor a path.
        FileNotFoundError: no such file and no such bundled checkpoint.
    """
    bundled = bundled_weights() if bundled is None else bundled
    available = ", ".join(sorted(bundled)) or "none"
    if weights is None:
        matches = [name for name in bundled if name == method or name.startswith(f"{method}_")]
        if not matches:
            raise FileNotFoundError(
                f"method {method!r} needs weights=: a checkpoint path or the name of a bundled "
                f"checkpoint; bundled checkpoints available: {available}"
            )
        return bundled[sorted(matches)[0]]
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(f"weights must be a path or a bundled checkpoint name, got {type(weights).__name__} {weights!r}")
    path = Path(weights).expanduser()
    if path.is_file():
        return path
    name = str(weights)
    for suffix in ("",) + WEIGHT_SUFFIXES:
        if name.endswith(suffix) and name[: len(name) - len(suffix)] in bundled:
            return bundled[name[: len(name) - len(suffix)]]
    raise FileNotFoundError(
        f"weights {name!r} is neither an existing file nor a bundled checkpoint; "
        f"bundled checkpoints available: {available}"
    )


def _locate(checkpoint: str | os.PathLike, model_name: Optional[str]) -> tuple[Path, Optional[str]]:
    """A path, a bundled checkpoint name or a learned model's name -> (file, model name)."""
    path = Path(checkpoint).expanduser()
    if path.is_file():
        return path, model_name
    name = str(checkpoint)
    if name in MODEL_SPECS and model_name in (None, name):
        return resolve_weights(name, None), name
    try:
        return resolve_weights(model_name or "", checkpoint), model_name
    except FileNotFoundError:
        if path.suffix in WEIGHT_SUFFIXES or os.sep in name:
            raise
        learned = ", ".join(MODEL_SPECS)
        raise ValueError(
            f"{name!r} is not a checkpoint file or a bundled checkpoint, and load_model needs a learned "
            f"method: method must be one of {learned} (bundled checkpoints: "
            f"{', '.join(sorted(bundled_weights())) or 'none'})"
        ) from None


# --------------------------------------------------------------------------- the loader

#: how many loaded models :func:`load_model` keeps with ``cached=True`` (least recently used out)
MODEL_CACHE_SIZE = 4
_MODEL_CACHE: "OrderedDict[tuple, tuple[nn.Module, dict[str, Any]]]" = OrderedDict()


def clear_model_cache() -> None:
    """Forget every model that :func:`load_model` cached (``cached=True``)."""
    _MODEL_CACHE.clear()


def load_model(
    checkpoint: str | os.PathLike | Mapping[str, Any],
    *,
    model_name: Optional[str] = None,
    model_kwargs: Optional[Mapping[str, Any]] = None,
    impl: str = "recon",
    map_location: str | torch.device = "cpu",
    strict: bool = True,
    cached: bool = False,
) -> tuple[nn.Module, dict[str, Any]]:
    """Build the model a checkpoint describes and load its weights: the one loader of recon.

    Reads recon's training checkpoints, fastMRI Lightning ``.ckpt`` files (``varnet.`` /
    ``unet.`` prefixes, ``hyper_parameters``) and bare state dicts (fastMRI's released
    ``*_state_dict.pt``, ``DataParallel``'s ``module.`` prefix). Constructor arguments come
    from ``model_kwargs``, else recon's metadata, else the Lightning ``hyper_parameters``,
    with every size still missing read off the parameter shapes.

    Args:
        checkpoint: a path, the name of a bundled checkpoint in ``data/weights/`` (or of a
            learned model: its bundled checkpoint), or a dict from :func:`load_checkpoint`.
        model_name: ``"varnet"``, ``"unet"`` or ``"cascade"``; default from the checkpoint's
            metadata or key prefix.
        model_kwargs: constructor arguments (default: from the file, see above).
        impl: ``"recon"`` or ``"fastmri"``.
        map_location: where tensors are loaded and the model is put.
        strict: passed to ``load_state_dict``.
        cached: reuse the model loaded before from the same file (same path, modification
            time and size, same ``model_name``, ``impl`` and ``map_location``). The cache holds
            at most :data:`MODEL_CACHE_SIZE` models (least recently used dropped first; see
            :func:`clear_model_cache`); a cached model is shared, so do not modify it.

    Returns:
        ``(model in eval mode, checkpoint dict)``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a checkpoint, the model cannot be told from the file (pass
            ``model_name``), or the weights do not fit the model, with the details.

    Example:
        >>> model, ckpt = load_model("data/weights/varnet.pt")  # doctest: +SKIP
    """
    if isinstance(checkpoint, Mapping):
        return _load_model(dict(checkpoint), model_name, model_kwargs, impl, map_location, strict)
    path, model_name = _locate(checkpoint, model_name)
    if not cached:
        ckpt = load_checkpoint(path, map_location)
        return _load_model(ckpt, model_name, model_kwargs, impl, map_location, strict)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, model_name, impl, str(map_location), strict,
           repr(sorted((model_kwargs or {}).items())))
    if key in _MODEL_CACHE:
        _MODEL_CACHE.move_to_end(key)
        return _MODEL_CACHE[key]
    ckpt = load_checkpoint(path, map_location)
    _MODEL_CACHE[key] = _load_model(ckpt, model_name, model_kwargs, impl, map_location, strict)
    while len(_MODEL_CACHE) > MODEL_CACHE_SIZE:
        _MODEL_CACHE.popitem(last=False)
    return _MODEL_CACHE[key]


def _load_model(
    ckpt: dict[str, Any],
    name: Optional[str],
    model_kwargs: Optional[Mapping[str, Any]],
    impl: str,
    map_location: str | torch.device,
    strict: bool,
) -> tuple[nn.Module, dict[str, Any]]:
    name = name or _infer_model_name(ckpt)
    if name is None:
        raise ValueError(
            f"cannot tell which model the checkpoint holds (keys like {sorted(ckpt['state_dict'])[:3]}); "
            f"pass model_name, one of {sorted(MODEL_SPECS)}"
        )
    if name not in MODEL_SPECS:
        raise ValueError(f"model_name must be one of {sorted(MODEL_SPECS)}, got {name!r}")
    state = checkpoint_state_dict(ckpt, name)
    if model_kwargs is None:
        model_kwargs = _kwargs_from_checkpoint(name, ckpt, state, impl)
        if name == "cascade" and model_kwargs.get("learn_lambda") and not model_kwargs.get("dc_lambda", 0.0):
            # written before CascadeBlock refused learn_lambda with dc_lambda = 0: such a lambda
            # never left 0 (no gradient), and the weights hold it; the same model as a buffer
            model_kwargs = dict(model_kwargs, learn_lambda=False)
    model = build_model(name, dict(model_kwargs), impl=impl)
    try:
        model.load_state_dict(state, strict=strict)
    except (RuntimeError, TypeError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"the checkpoint's weights do not fit the {name} model built with {dict(model_kwargs)}: {first}"
        ) from err
    return model.to(map_location).eval(), ckpt


def _kwargs_from_checkpoint(name: str, ckpt: Mapping[str, Any], state: Mapping[str, Any], impl: str) -> dict[str, Any]:
    """Constructor arguments: recon's metadata, else hyper-parameters plus sizes from the shapes."""
    meta = ckpt.get("recon") if isinstance(ckpt.get("recon"), dict) else {}
    if meta.get("model") == name and isinstance(meta.get("model_kwargs"), dict):
        return dict(meta["model_kwargs"])
    kwargs: dict[str, Any] = {}
    hyper = ckpt.get("hyper_parameters") or ckpt.get("hparams")
    if isinstance(hyper, Mapping):
        params = inspect.signature(model_class(name, impl).__init__).parameters
        kwargs = {key: value for key, value in hyper.items() if key in params and key != "self"}
    for key, value in infer_model_kwargs(name, state).items():
        kwargs.setdefault(key, value)
    return kwargs


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
    return _save(out, dst)
