"""Which models can be trained, how they are built, and what their checkpoints are called.

Each trainable model has a :class:`ModelSpec`: the class name in :mod:`recon.models` (and
in ``fastmri.models`` where fastMRI has one), the prefix of its parameters in a
checkpoint's ``state_dict`` (fastMRI's Lightning modules store ``VarNet`` parameters as
``varnet.<name>`` and ``Unet`` parameters as ``unet.<name>``; recon keeps that), and its
domain: ``"kspace"`` models take ``(masked_kspace, mask, num_low_frequencies)``,
``"image"`` models take a normalised zero-filled magnitude image ``(B, 1, H, W)``.

The model classes are imported when a model is built, not when this module is imported,
so the training package loads even where a model's dependencies are missing.
"""

from __future__ import annotations

import importlib
import inspect
import numbers
from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import nn

__all__ = ["ModelSpec", "MODEL_SPECS", "model_class", "build_model", "check_model_kwargs"]


@dataclass(frozen=True)
class ModelSpec:
    """How one trainable model is found, built and stored.

    Attributes:
        name: the model's name in configs, checkpoints and ``recon.reconstruct(method=...)``.
        class_name: class in :mod:`recon.models`.
        fastmri_class: class in ``fastmri.models`` with the same parameters, or None.
        prefix: ``state_dict`` key prefix in checkpoints (fastMRI's Lightning attribute name).
        domain: ``"kspace"`` or ``"image"``.
        defaults: constructor arguments used where ``model_kwargs`` does not give them
            (the U-Net reconstructs one magnitude channel: ``in_chans = out_chans = 1``).
    """

    name: str
    class_name: str
    fastmri_class: Optional[str]
    prefix: str
    domain: str
    defaults: tuple[tuple[str, Any], ...] = ()


MODEL_SPECS: dict[str, ModelSpec] = {
    "varnet": ModelSpec("varnet", "VarNet", "VarNet", "varnet", "kspace"),
    "unet": ModelSpec("unet", "Unet", "Unet", "unet", "image", (("in_chans", 1), ("out_chans", 1))),
    "cascade": ModelSpec("cascade", "CascadeNet", None, "cascade", "kspace"),
}


def _spec(name: str) -> ModelSpec:
    if name not in MODEL_SPECS:
        raise ValueError(f"model must be one of {sorted(MODEL_SPECS)}, got {name!r}")
    return MODEL_SPECS[name]


def model_class(name: str, impl: str = "recon") -> type:
    """The class that implements model ``name``.

    Args:
        name: a key of :data:`MODEL_SPECS`.
        impl: ``"recon"`` (``recon.models``) or ``"fastmri"`` (``fastmri.models``).

    Raises:
        ValueError: unknown name or impl, or fastMRI has no such model.
        ImportError: the implementing package is not installed or lacks the class.
    """
    spec = _spec(name)
    if impl == "recon":
        module_name, class_name = "recon.models", spec.class_name
    elif impl == "fastmri":
        if spec.fastmri_class is None:
            raise ValueError(f"impl='fastmri' has no {name!r} model; use impl='recon'")
        module_name, class_name = "fastmri.models", spec.fastmri_class
    else:
        raise ValueError(f"impl must be 'recon' or 'fastmri', got {impl!r}")
    module = importlib.import_module(module_name)
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ImportError(f"{module_name} has no class {class_name} (needed for model {name!r})")
    return cls


def _is_plain(value: object) -> bool:
    if value is None or isinstance(value, (bool, str)):
        return True
    if isinstance(value, numbers.Real):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    return False


def check_model_kwargs(name: str, kwargs: dict[str, Any], impl: str = "recon") -> Optional[str]:
    """Why ``kwargs`` cannot build model ``name``, or None when they can (as far as known).

    Values must be plain JSON-like values (numbers, strings, booleans, None, lists), so that
    checkpoints store them as data. Names are checked against the class's signature when
    the class can be imported.
    """
    bad = sorted(k for k, v in kwargs.items() if not _is_plain(v))
    if bad:
        return f"values must be numbers, strings, booleans, None or lists; not for {bad}"
    try:
        cls = model_class(name, impl)
    except ImportError:
        return None
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    unknown = sorted(set(kwargs) - set(params) - {"self"})
    if unknown:
        accepted = sorted(p for p in params if p != "self")
        return f"{cls.__name__} has no arguments {unknown}; it accepts {accepted}"
    required = [
        p.name for p in params.values()
        if p.name != "self" and p.default is inspect.Parameter.empty
        and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    missing = [p for p in required if p not in kwargs and p not in dict(_spec(name).defaults)]
    if missing:
        return f"{cls.__name__} needs the arguments {missing} (e.g. --model-kwargs '{{\"{missing[0]}\": ...}}')"
    return None


def build_model(name: str, kwargs: Optional[dict[str, Any]] = None, *, impl: str = "recon", seed: Optional[int] = None) -> nn.Module:
    """Build model ``name`` with constructor ``kwargs``.

    Args:
        name: a key of :data:`MODEL_SPECS`.
        kwargs: constructor keyword arguments (over the spec's ``defaults``).
        impl: ``"recon"`` or ``"fastmri"``.
        seed: initialise parameters from this seed. The global torch RNG is forked, so the
            caller's random state is unchanged; None uses the global RNG as torch does.

    Returns:
        The model (train mode, CPU, float32).

    Raises:
        ValueError: unknown model or bad kwargs (named).
    """
    kwargs = dict(kwargs or {})
    problem = check_model_kwargs(name, kwargs, impl)
    if problem:
        raise ValueError(f"model_kwargs for {name!r}: {problem}")
    cls = model_class(name, impl)
    kwargs = {**dict(_spec(name).defaults), **kwargs}
    if seed is None:
        return cls(**kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return cls(**kwargs)
