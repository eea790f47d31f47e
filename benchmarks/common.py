"""Timing, memory, environment and report helpers shared by the benchmark scripts.

Benchmarks are scripts, not tests: each compares implementations as ratios measured in one
process on the same data, which stays meaningful on a noisy or shared machine.  This module
is the one home of the timer (:func:`time_repeats`), the peak-memory probe
(:func:`peak_memory_bytes`), the markdown table (:func:`markdown_table`) and the environment
header (:func:`environment`) that every section of the report uses.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

import torch

from recon.data.io import atomic_path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"

__all__ = [
    "RESULTS", "ROOT", "device_name", "sync", "time_repeats", "peak_memory_bytes", "environment",
    "write_atomic", "markdown_table", "save_results", "section_in_child", "wants_child",
]


def device_name(device: torch.device) -> str:
    """Folder name for a device's results: ``cpu`` or ``cuda`` (the GPU's name is in the header)."""
    return "cuda" if device.type == "cuda" else "cpu"


def sync(device: torch.device) -> None:
    """Wait for queued CUDA work (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_repeats(
    fns: Mapping[str, Callable[[], object]],
    device: torch.device,
    repeats: int = 10,
    warmup: int = 2,
) -> dict[str, dict[str, object]]:
    """Time each function ``repeats`` times, round-robin, after ``warmup`` untimed calls each.

    Interleaving (one call of each function per round) spreads machine noise evenly over the
    implementations being compared, so their ratios are stable even when absolute times drift.
    On CUDA each call is timed with CUDA events (device time between two recorded events,
    after a synchronisation), on CPU with ``time.perf_counter``; ``time.process_time`` (CPU
    time of all this process's threads) is recorded too.

    Args:
        fns: name -> zero-argument callable.
        device: where the callables compute (``cuda`` switches to CUDA events).
        repeats: timed calls per function (>= 1).
        warmup: untimed calls per function first (>= 0).

    Returns:
        name -> ``{"median_s", "min_s", "max_s", "iqr_s", "samples_s", "cpu_median_s"}``;
        ``iqr_s`` is the interquartile range of the samples (0 for fewer than 4 samples: then
        read ``min_s``/``max_s``).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync(device)
    cuda = device.type == "cuda"
    samples: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            start_cpu = time.process_time()
            if cuda:
                start_event = torch.cuda.Event(enable_timing=True)
                end_event = torch.cuda.Event(enable_timing=True)
                start_event.record()
                fn()
                end_event.record()
                end_event.synchronize()
                elapsed = start_event.elapsed_time(end_event) / 1e3
            else:
                start = time.perf_counter()
                fn()
                elapsed = time.perf_counter() - start
            samples[name].append(elapsed)
            cpu[name].append(time.process_time() - start_cpu)
    out: dict[str, dict[str, object]] = {}
    for name, ts in samples.items():
        quartiles = statistics.quantiles(ts, n=4) if len(ts) >= 4 else [0.0, 0.0, 0.0]
        out[name] = {
            "median_s": statistics.median(ts),
            "min_s": min(ts),
            "max_s": max(ts),
            "iqr_s": quartiles[2] - quartiles[0],
            "samples_s": ts,
            "cpu_median_s": statistics.median(cpu[name]),
        }
    return out


def _proc_status_bytes(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


def peak_memory_bytes(fn: Callable[[], object], device: torch.device, runs: int = 2) -> int | None:
    """Peak bytes allocated during ``fn()`` above what was allocated before.

    CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, minus the
    memory allocated before the call.  CPU (Linux): the peak resident set size during the call
    (``VmHWM``, reset by writing ``5`` to ``/proc/self/clear_refs``) above the resident size
    before it; meaningful when glibc returns large buffers to the system on ``free`` (run with
    ``MALLOC_MMAP_THRESHOLD_=65536``, as ``benchmarks/models.py`` does), otherwise a lower
    bound.  The minimum over ``runs`` calls.  ``None`` where neither probe exists (non-Linux
    CPU).
    """
    peaks = []
    for _ in range(runs):
        if device.type == "cuda":
            sync(device)
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
            out = fn()
            sync(device)
            peaks.append(torch.cuda.max_memory_allocated(device) - before)
            del out
            continue
        try:
            with open("/proc/self/clear_refs", "w") as f:  # reset the peak-RSS mark (VmHWM)
                f.write("5")
            before = _proc_status_bytes("VmRSS")
        except OSError:  # pragma: no cover - not Linux
            return None
        out = fn()
        del out
        peaks.append(max(0, _proc_status_bytes("VmHWM") - before))
    return int(min(peaks))


def section_in_child(module: str, quick: bool, device: torch.device) -> dict:
    """Run ``python -m benchmarks.<module> --section quick|full`` with glibc's mmap threshold at
    64 KiB (so that CPU peak-RSS figures follow the live tensors, see :func:`peak_memory_bytes`)
    and return the section dict it prints as JSON on its last line (figures are not included).
    """
    child = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", "--section", "quick" if quick else "full",
         "--device", str(device)],
        env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}, capture_output=True, text=True, cwd=ROOT,
    )
    if child.returncode != 0:
        raise RuntimeError(f"benchmarks.{module} child failed: {child.stderr.strip()[-2000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def wants_child(device: torch.device) -> bool:
    """True where a CPU section should run in a child with the mmap threshold pinned."""
    return device.type == "cpu" and sys.platform.startswith("linux") and "MALLOC_MMAP_THRESHOLD_" not in os.environ


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def environment(device: torch.device | None = None) -> dict[str, object]:
    """Where and when a benchmark ran: versions, device, threads, date, git commit, load."""
    commit = _git("rev-parse", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    gpu = None
    if torch.cuda.is_available() and (device is None or device.type == "cuda"):
        gpu = torch.cuda.get_device_name(device if device is not None else None)
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        load = None
    return {
        "torch": torch.__version__,
        "cuda_runtime": torch.version.cuda,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "device": str(device) if device is not None else "cpu",
        "gpu": gpu,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "commit": commit,
        "commit_dirty": bool(dirty) if dirty is not None else None,
        "load_average": load,
    }


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data)


def format_value(value: object) -> str:
    """A table cell: floats to 3 significant digits, ``None`` as ``-``."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table (floats to 3 significant digits, ``None`` as ``-``)."""
    lines = ["| " + " | ".join(map(str, headers)) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(format_value(v).replace("|", "\\|") for v in row) + " |" for row in rows]
    return "\n".join(lines)


def save_results(name: str, device: torch.device, payload: dict, table: str, title: str) -> Path:
    """Write ``results/<device>/<name>.json`` and ``<name>.md`` atomically; return the folder."""
    folder = RESULTS / device_name(device)
    payload = {"environment": environment(device), **payload}
    write_atomic(folder / f"{name}.json", json.dumps(payload, indent=2, default=str) + "\n")
    write_atomic(folder / f"{name}.md", f"# {title}\n\n{table}\n")
    return folder


def section_main(run, doc: str, argv=None, section=None, save_as: str | None = None) -> int:
    """``main()`` of a section module: ``python -m benchmarks.<name> [--quick] [--device D]
    [--figures DIR]`` prints the section's notes and tables; ``--figures`` also saves its PNGs
    there (otherwise only the report saves them). With ``save_as``, a full run (not ``--quick``)
    also writes ``results/<device>/<save_as>.md`` and ``.json`` (:func:`save_results`; the
    section's ``results`` as the payload).  ``--section quick|full`` (the child mode of
    :func:`section_in_child`) prints ``section(quick, device)`` as JSON instead.
    """
    import argparse

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--figures", default=None, metavar="DIR", help="also save the section's PNG figures into DIR")
    parser.add_argument("--section", choices=["quick", "full"], default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.section is not None:
        if section is None:
            parser.error("--section: this module has no child mode")
        print(json.dumps(section(args.section == "quick", device), default=str))
        return 0
    import matplotlib

    matplotlib.use("Agg")
    result = run(args.quick, device)
    blocks = [*result.get("notes", [])]
    for table in result.get("tables", []):
        blocks.append(f"{table.get('caption', '')}\n\n"
                      + (table["text"] if "text" in table else markdown_table(table["headers"], table["rows"])))
    text = "\n\n".join(blocks)
    if args.figures:
        Path(args.figures).mkdir(parents=True, exist_ok=True)
        for f in result.get("figures", []):
            f["figure"].savefig(Path(args.figures) / f"{f['name']}.png", dpi=110, format="png")
    if save_as is not None and not args.quick:
        print(f"written to {save_results(save_as, device, result.get('results', {}), text, result['title'])}")
    print(f"# {result['title']}\n\n{text}\n")
    return 0
    import matplotlib

    matplotlib.use("Agg")
    result = run(args.quick, device)
    print(f"# {result['title']}\n")
    for note in result.get("notes", []):
        print(f"{note}\n")
    for table in result.get("tables", []):
        print(f"{table.get('caption', '')}\n")
        print((table["text"] if "text" in table else markdown_table(table["headers"], table["rows"])) + "\n")
    return 0
