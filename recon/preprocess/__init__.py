"""Preprocessing layer: pure functions on image arrays and their 4x4 affines.

Resampling, N4 bias-field correction, intensity normalisation, registration, skull stripping
and 3-D augmentation (:mod:`recon.preprocess.augment`). This layer uses :mod:`recon.ops` only
(arrays and affines in, arrays and affines out); SimpleITK-backed functions need the optional
extra ``recon[preprocess]``.

Names are imported on first use, so ``import recon.preprocess`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> submodule that defines it (each submodule's own __all__ is authoritative)
_EXPORTS: dict[str, str] = {
    "resample": "resample",
    "n4_bias_correction": "bias",
    "zscore": "normalize",
    "minmax": "normalize",
    "percentile_clip": "normalize",
    "fcm_normalize": "normalize",
    "NyulNormalizer": "normalize",
    "whitestripe": "normalize",
    "register": "register",
    "RegistrationResult": "register",
    "brain_mask": "skullstrip",
    "BrainTemplate": "skullstrip",
    "default_template": "skullstrip",
}

_SUBMODULES = {"resample", "bias", "normalize", "register", "skullstrip", "augment"}

# ``resample`` and ``register`` are both a submodule and the function it defines. Importing a
# submodule binds its name on the package, which would shadow the function for good; binding the
# functions here (both modules are light: numpy/torch, SimpleITK imported on first call) keeps
# ``recon.preprocess.resample`` / ``recon.preprocess.register`` the functions whatever is imported
# later. Use ``from recon.preprocess.resample import ...`` for the modules' other names.
from recon.preprocess.register import register  # noqa: E402
from recon.preprocess.resample import resample  # noqa: E402

__all__ = sorted(_EXPORTS) + sorted(_SUBMODULES)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"recon.preprocess.{_EXPORTS[name]}"), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"recon.preprocess.{name}")
    raise AttributeError(f"module 'recon.preprocess' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
