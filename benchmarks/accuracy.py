"""Error of every reconstruction method at 4x and 8x on the held-out split.

Data: ``recon.data.sample_files("test_heldout")`` — other subjects and contrasts than any
training, validation or tuning data (a coronal T1 slice, ten axial b=0 slices; 8-coil
simulations).  Masks: fastMRI random masks, 4x with an 8% centre and 8x with a 4% centre,
seeded per file as fastMRI's challenge does (``seed = file name``).  Metrics: fastMRI's
``evaluate.py`` semantics from :mod:`recon.metrics` — NMSE, PSNR and SSIM per volume against
``reconstruction_rss`` with ``maxval`` = the target volume's maximum, then the mean over
volumes.  Learned methods use the bundled weights (retrained on recon's physics corpus, whose held-out sources include these files: see data/weights/README.md).

    python -m benchmarks.accuracy [--quick]          # prints the tables
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import h5py
import numpy as np
import torch

if __package__ in (None, ""):  # run as a script: python benchmarks/accuracy.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import section_main  # noqa: E402

from recon.api import METHODS, reconstruct  # noqa: E402
from recon.data.sample import sample_files  # noqa: E402
from recon.masks import create_mask_for_mask_type  # noqa: E402
from recon.metrics import nmse, psnr, ssim  # noqa: E402

#: acceleration -> centre fraction (fastMRI's brain settings)
SETTINGS = {4: 0.08, 8: 0.04}
#: the file whose first slice is shown in the image grids
GRID_FILE = "dipy_t1_coronal.h5"


def draw_mask(name: str, width: int, acceleration: int) -> np.ndarray:
    """fastMRI random column mask for ``acceleration``, seeded by the file name; ``(W,)`` float32."""
    mask_func = create_mask_for_mask_type("random", [SETTINGS[acceleration]], [acceleration])
    mask, _ = mask_func((1, 1, width, 2), seed=tuple(map(ord, name)))
    return mask.reshape(-1).numpy().astype(np.float32)


def evaluate(files: list[Path], methods, device: torch.device, log=None) -> dict:
    """Per acceleration, method and file: NMSE/PSNR/SSIM and seconds; the grid images too."""
    log = log or (lambda msg: None)
    out: dict = {"per_file": {}, "mean": {}, "grid": {}}
    for acceleration in SETTINGS:
        key = f"{acceleration}x"
        out["per_file"][key], out["grid"][key] = {}, {}
        for path in files:
            with h5py.File(path, "r") as hf:
                kspace, target = hf["kspace"][()], hf["reconstruction_rss"][()]
            mask = draw_mask(path.name, kspace.shape[-1], acceleration)
            undersampled = (kspace * mask).astype(np.complex64)
            maxval = float(target.max())
            if path.name == GRID_FILE:
                out["grid"][key]["target"] = target[0]
            for method in methods:
                log(f"{key} {path.name} {method}")
                start = time.perf_counter()
                recon = np.asarray(reconstruct(undersampled, mask, method=method, device=device, progress=False))
                seconds = time.perf_counter() - start
                if recon.shape != target.shape:
                    raise ValueError(f"{method} on {path.name}: output {recon.shape} != target {target.shape}")
                out["per_file"][key].setdefault(method, {})[path.name] = {
                    "NMSE": float(nmse(target, recon)), "PSNR": float(psnr(target, recon)),
                    "SSIM": float(ssim(target, recon, maxval=maxval)), "seconds": seconds,
                    "slices": int(target.shape[0]),
                }
                if path.name == GRID_FILE:
                    out["grid"][key][method] = recon[0]
        out["mean"][key] = {
            method: {m: float(np.mean([v[m] for v in per.values()])) for m in ("NMSE", "PSNR", "SSIM")}
            for method, per in out["per_file"][key].items()
        }
    return out


def run(quick: bool, device: torch.device) -> dict:
    """Report section: error tables per acceleration and one image grid per acceleration.

    Quick: only the one-slice coronal file.
    """
    from benchmarks.plots import image_grid

    files = sample_files("test_heldout")
    if quick:
        files = [p for p in files if p.name == GRID_FILE] or files[:1]
    result = evaluate(files, METHODS, device)
    tables, figures = [], []
    for key, means in result["mean"].items():
        rows = [[method, m["NMSE"], m["PSNR"], m["SSIM"]] for method, m in means.items()]
        tables.append({"caption": f"{key}: mean over {len(files)} held-out volume(s) "
                                  f"({', '.join(p.name for p in files)})",
                       "headers": ["method", "NMSE", "PSNR (dB)", "SSIM"], "rows": rows})
        grid = result["grid"][key]
        if "target" in grid:
            target = grid.pop("target")
            scores = {method: f"SSIM {result['per_file'][key][method][GRID_FILE]['SSIM']:.3f}" for method in grid}
            figures.append({"name": f"grid-{key}", "figure": image_grid(target, grid, scores=scores,
                                                                      title=f"{GRID_FILE}, {key} random mask"),
                            "caption": f"{key}: target, every method (SSIM on this slice) and 5x error maps"})
    notes = [__doc__.split("\n\n")[1].replace("\n", " ")]
    if quick:
        notes.append(f"QUICK MODE: only {GRID_FILE} (one slice).")
    per_file = {k: v for k, v in result["per_file"].items()}
    return {"title": "Error of every method on the held-out split (4x, 8x)", "tables": tables,
            "figures": figures, "notes": notes,
            "results": {"files": [p.name for p in files], "mean": result["mean"], "per_file": per_file}}


def main(argv: list[str] | None = None) -> int:
    return section_main(run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
