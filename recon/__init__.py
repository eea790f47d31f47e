"""recon: accelerated MRI reconstruction in PyTorch.

fastMRI-exact operators, masks and metrics; classical and learned reconstruction behind one
call::

    import recon
    image = recon.reconstruct(kspace, mask)          # (slices, coils, H, W) -> (slices, H, W)
    flair = recon.synthesize(t1_volume, source="t1", target="flair")   # image heads
    clean = recon.denoise(noisy_image); slices = recon.generate(8, seed=0)
    thin = recon.super_resolve(thick_slices, (1, 1, 3))   # 3 mm slices -> 1 mm
    warped, transform = recon.register(fixed, moving)      # VoxelMorph; or method="bspline"

Subpackages: :mod:`recon.ops` (operators), :mod:`recon.masks`, :mod:`recon.metrics`,
:mod:`recon.data`, :mod:`recon.classical`, :mod:`recon.models`, :mod:`recon.train`,
:mod:`recon.viz` (figures).
They are imported on first use, so ``import recon.ops`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBMODULES = {"ops", "masks", "metrics", "data", "classical", "models", "heads", "train", "viz", "api", "cli"}

__all__ = ["__version__", "reconstruct", "synthesize", "denoise", "generate", "super_resolve", "register", *sorted(_SUBMODULES - {"api", "cli"})]


def __getattr__(name: str) -> Any:
    if name == "reconstruct":
        from recon.api import reconstruct

        return reconstruct
    if name in ("synthesize", "denoise", "generate", "super_resolve", "register"):
        import recon.api

        return getattr(recon.api, name)
    if name in _SUBMODULES:
        return importlib.import_module(f"recon.{name}")
    raise AttributeError(f"module 'recon' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
