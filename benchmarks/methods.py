"""Latency, throughput and peak memory of every reconstruction method of :func:`recon.reconstruct`.

Each method reconstructs the same simulated multi-coil volume (a smooth phantom, birdcage
coils, 4x equispaced mask with an 8% centre) at fastMRI's knee size (15 coils, 640 x 368) and
brain size (16 coils, 640 x 320), with 1 and 4 slices per call (``batch_size`` = slices, so
the 4-slice call processes them together).  Learned methods use the bundled weights.  Latency
= median wall time of one call (after one warm-up call, which also loads the weights);
throughput = slices / latency; peak memory = peak above the memory before the call (CPU: peak
resident set size in a child process with glibc's mmap threshold at 64 KiB; CUDA:
``max_memory_allocated``).

    python -m benchmarks.methods [--quick] [--device cuda]     # prints the section's tables
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):  # run as a script: python benchmarks/methods.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import peak_memory_bytes, section_in_child, section_main, time_repeats, wants_child  # noqa: E402

from recon.api import METHODS, reconstruct  # noqa: E402
from recon.data.simulate import SimulationConfig, simulate_multicoil  # noqa: E402
from recon.masks import create_mask_for_mask_type  # noqa: E402

SIZES = {"knee": (15, 640, 368), "brain": (16, 640, 320)}
QUICK_SIZES = {"small (quick)": (4, 128, 96)}
#: methods whose 4-slice call is skipped in full CPU runs (minutes per call on 2 cores)
SLOW_ON_CPU = ("tv",)


def phantom_kspace(slices: int, coils: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(undersampled k-space (slices, coils, H, W) complex64, column mask (W,)) of a smooth phantom."""
    yy, xx = np.mgrid[:height, :width]
    ellipse = ((yy - height / 2) / (0.42 * height)) ** 2 + ((xx - width / 2) / (0.42 * width)) ** 2 < 1
    images = np.stack([ellipse * (1 + 0.4 * np.sin(xx / (5.0 + s)) * np.cos(yy / 9.0)) for s in range(slices)])
    config = SimulationConfig(num_coils=coils, matrix_size=(height, width), snr=40.0)
    kspace = simulate_multicoil(images.astype(np.float32), config, seed=0).kspace
    mask_func = create_mask_for_mask_type("equispaced_fraction", [0.08], [4])
    mask, _ = mask_func((1, 1, width, 2), seed=0)
    mask = mask.reshape(-1).numpy().astype(np.float32)
    return (kspace * mask).astype(np.complex64), mask


def measure(sizes: dict[str, tuple[int, int, int]], batches: tuple[int, ...], device: torch.device,
            repeats: int, methods=METHODS, skip_slow_batches: bool = False, memory: bool = True,
            log=None) -> list[dict]:
    """One row per (size, method, batch): latency, spread, throughput, peak memory."""
    log = log or (lambda msg: None)
    rows = []
    for size_name, (coils, height, width) in sizes.items():
        kspace, mask = phantom_kspace(max(batches), coils, height, width)
        data = torch.view_as_real(torch.from_numpy(kspace)).to(device)  # the input already on the device
        torch_mask = torch.from_numpy(mask).to(device)
        for method in methods:
            for batch in batches:
                if skip_slow_batches and batch > 1 and method in SLOW_ON_CPU:
                    continue
                volume = torch.view_as_complex(data[:batch])

                def call(volume=volume, method=method, batch=batch):
                    return reconstruct(volume, torch_mask, method=method, device=device, batch_size=batch,
                                       progress=False)

                log(f"{size_name} {method} batch {batch}")
                # the 1-slice call warms the method up (weights loaded, caches built); the
                # batched call then needs no warm-up and, on CPU, one timed call
                first = batch == batches[0]
                reps = repeats if first or device.type == "cuda" else 1
                timing = time_repeats({method: call}, device, repeats=reps, warmup=1 if first else 0)[method]
                peak = peak_memory_bytes(call, device, runs=1) if memory and (first or device.type == "cuda") else None
                input_mb = volume.numel() * volume.element_size() / 2**20
                rows.append({
                    "size": size_name, "shape": [batch, coils, height, width], "method": method, "batch": batch,
                    "latency_median_s": timing["median_s"], "latency_min_s": timing["min_s"],
                    "latency_max_s": timing["max_s"], "repeats": reps,
                    "s_per_slice": timing["median_s"] / batch, "slices_per_s": batch / timing["median_s"],
                    "peak_mb": None if peak is None else peak / 2**20, "input_mb": input_mb,
                })
    return rows


def settings(quick: bool, device: torch.device) -> dict:
    if quick:
        return {"sizes": QUICK_SIZES, "batches": (1,), "repeats": 1}
    return {"sizes": SIZES, "batches": (1, 4), "repeats": 3 if device.type == "cpu" else 10}


def section(quick: bool, device: torch.device) -> dict:
    """The section's tables and results (no figures: see :func:`run`)."""
    cfg = settings(quick, device)
    rows = measure(cfg["sizes"], cfg["batches"], device, cfg["repeats"],
                   skip_slow_batches=device.type == "cpu" and not quick, memory=not quick)
    table = [[r["size"], r["method"], r["batch"], r["latency_median_s"],
              f"{r['latency_min_s']:.3g}-{r['latency_max_s']:.3g}", r["s_per_slice"], r["slices_per_s"],
              r["peak_mb"], r["input_mb"]] for r in rows]
    notes = [f"Every method of `recon.reconstruct` on one simulated volume per size (4x equispaced mask, 8% "
             f"centre), `batch_size` = slices per call; 1 slice per call: median of {cfg['repeats']} calls after "
             "one warm-up call (range = min-max); more slices per call: "
             + ("one call (CPU)" if device.type == "cpu" else f"median of {cfg['repeats']} calls")
             + "; learned methods with the bundled weights. Peak MB = peak memory above that before the "
             "call (the input is not counted); on CPU for 1-slice calls only."]
    if device.type == "cpu" and not quick:
        notes.append(f"Methods {', '.join(SLOW_ON_CPU)}: 1-slice calls only on CPU (the 4-slice call takes "
                     "minutes and its per-slice time is the same).")
    if quick:
        notes.append("QUICK MODE: a small volume (4 coils, 128 x 96), 1 slice, one timed call, no memory figures.")
    return {
        "title": "Every reconstruction method: latency, throughput, peak memory",
        "tables": [{"caption": f"recon.reconstruct on {device.type}",
                    "headers": ["size", "method", "slices per call", "latency (s)", "range (s)", "s / slice",
                                "slices / s", "peak MB", "input MB"],
                    "rows": table}],
        "figures": [],
        "notes": notes,
        "results": {"rows": rows, "settings": {k: (v if k != "sizes" else {n: list(s) for n, s in v.items()})
                                               for k, v in cfg.items()}},
    }


def figures(section_dict: dict) -> list[dict]:
    """Throughput bars per method at the first size, one slice per call and the largest batch."""
    from benchmarks.plots import bar_chart

    rows = section_dict["results"]["rows"]
    first = rows[0]["size"]
    largest = max(r["batch"] for r in rows)
    single = {r["method"]: r["slices_per_s"] for r in rows if r["size"] == first and r["batch"] == 1}
    many = {r["method"]: r["slices_per_s"] for r in rows if r["size"] == first and r["batch"] == largest}
    values = {f"{m} (1)": v for m, v in single.items()}
    values.update({f"{m} ({largest})": v for m, v in many.items()})
    order = sorted(values, key=lambda k: (k.split(" (")[0], k))
    return [{"name": "methods-throughput",
             "figure": bar_chart({k: values[k] for k in order}, xlabel="slices / s (log)", log=True,
                                 title=f"Throughput at {first} size (slices per call in brackets)"),
             "caption": f"Throughput of every method at {first} size, 1 and {largest} slices per call"}]


def run(quick: bool, device: torch.device) -> dict:
    """Report section (see the module doc); on CPU measured in a child process (memory)."""
    child = wants_child(device) and not quick  # quick: no memory figures, no child process
    result = section_in_child("methods", quick, device) if child else section(quick, device)
    result["figures"] = figures(result)
    return result


def main(argv: list[str] | None = None) -> int:
    return section_main(run, __doc__, argv, section=section)


if __name__ == "__main__":
    sys.exit(main())
