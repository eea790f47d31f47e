"""Timing, memory and report helpers shared by the benchmark scripts.

Benchmarks are scripts, not tests: each compares implementations as ratios measured in one
process on the same data, which stays meaningful on a noisy or shared machine.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

import torch

from recon.data.io import atomic_path

RESULTS = Path(__file__).resolve().parent / "results"


def device_name(device: torch.device) -> str:
    """Folder name for a device's results, e.g. ``cpu`` or ``cuda-nvidia-h100``."""
    if device.type == "cuda":
        return "cuda-" + torch.cuda.get_device_name(device).lower().replace(" ", "-")
    return "cpu"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_interleaved(
    fns: Mapping[str, Callable[[], object]], device: torch.device, repeats: int = 30, warmup: int = 5
) -> dict[str, float]:
    """Median wall time in seconds of each function, measured round-robin.

    Interleaving (one call of each function per round) spreads machine noise evenly over the
    implementations being compared, so their ratios are stable even when absolute times drift.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync(device)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in samples.items()}


def environment() -> dict[str, object]:
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def fmt(v: object) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def save_results(name: str, device: torch.device, payload: dict, table: str, title: str) -> Path:
    """Write ``results/<device>/<name>.json`` and ``<name>.md`` atomically; return the folder."""
    folder = RESULTS / device_name(device)
    payload = {"environment": environment(), **payload}
    write_atomic(folder / f"{name}.json", json.dumps(payload, indent=2) + "\n")
    write_atomic(folder / f"{name}.md", f"# {title}\n\n{table}\n")
    return folder
