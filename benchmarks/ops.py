"""Benchmark of recon.ops against the bare torch.fft call and against fastMRI.

Every op is timed on the same data together with the bare FFT and fastMRI's version,
round-robin in one process, median of repeats after warm-up (CUDA synchronised).  Each op runs
in a fresh process, once per allocator regime (a warm heap that reuses freed blocks, and fresh
pages for every large tensor), because on CPU glibc's allocator state otherwise couples the
implementations and moves their times by up to 2x.  Ratios: ``vs fft2`` = time / bare ``torch.fft.fft2`` time on the
same complex data (the floor for a 2-D FFT), ``fastMRI / ours`` = speed-up over fastMRI's
implementation of the same op (when the ``fastmri`` package is installed).

    python -m benchmarks.ops                 # fastMRI knee size (1, 15, 640, 368)
    python -m benchmarks.ops --shape 1 16 640 320 --device cuda

Writes ``benchmarks/results/<device>/ops.json`` and ``ops.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a script: python benchmarks/ops.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import markdown_table, peak_memory_bytes, save_results, time_repeats  # noqa: E402

from recon import ops  # noqa: E402

try:  # the reference implementation, optional
    import fastmri
except ImportError:  # pragma: no cover - depends on the environment
    fastmri = None


def build_cases(shape: tuple[int, ...], device: torch.device) -> dict[str, dict]:
    g = torch.Generator(device="cpu").manual_seed(0)
    kspace = torch.randn(*shape, 2, generator=g).to(device)
    image = torch.randn(shape[0], 1, *shape[2:], 2, generator=g).to(device)
    maps = torch.randn(*shape, 2, generator=g).to(device)
    complex_kspace = torch.view_as_complex(kspace.clone())
    crop = (shape[-2] // 2, shape[-1] // 2)

    cases: dict[str, dict] = {
        "fft2c": {"ours": lambda: ops.fft2c(kspace)},
        "ifft2c": {"ours": lambda: ops.ifft2c(kspace)},
        "rss_complex": {"ours": lambda: ops.rss_complex(kspace, dim=1)},
        "complex_abs": {"ours": lambda: ops.complex_abs(kspace)},
        "complex_mul": {"ours": lambda: ops.complex_mul(kspace, maps)},
        "sens_expand": {"ours": lambda: ops.sens_expand(image, maps)},
        "sens_reduce": {"ours": lambda: ops.sens_reduce(kspace, maps)},
        "complex_center_crop": {"ours": lambda: ops.complex_center_crop(kspace, crop).contiguous()},
    }
    if fastmri is not None:
        from fastmri.data import transforms as fT

        cases["fft2c"]["fastmri"] = lambda: fastmri.fft2c(kspace)
        cases["ifft2c"]["fastmri"] = lambda: fastmri.ifft2c(kspace)
        cases["rss_complex"]["fastmri"] = lambda: fastmri.rss_complex(kspace, dim=1)
        cases["complex_abs"]["fastmri"] = lambda: fastmri.complex_abs(kspace)
        cases["complex_mul"]["fastmri"] = lambda: fastmri.complex_mul(kspace, maps)
        # fastMRI's VarNet sens_expand / sens_reduce, written out with its public functions
        cases["sens_expand"]["fastmri"] = lambda: fastmri.fft2c(fastmri.complex_mul(image, maps))
        cases["sens_reduce"]["fastmri"] = lambda: fastmri.complex_mul(
            fastmri.ifft2c(kspace), fastmri.complex_conj(maps)
        ).sum(dim=1, keepdim=True)
        cases["complex_center_crop"]["fastmri"] = lambda: fT.complex_center_crop(kspace, crop).contiguous()
    floor = lambda: torch.fft.fft2(complex_kspace, norm="ortho")  # noqa: E731
    return {"floor": floor, "cases": cases}


REGIMES = {
    # freed large blocks stay in the heap and are reused, never returned to the OS (the steady
    # state of a training or reconstruction loop, and what a caching GPU allocator gives);
    # glibc's default adapts between this and the next regime depending on history.
    "warm heap": {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)},
    # every large tensor is a fresh mapping whose pages fault in on first touch (a program
    # that keeps allocating new large tensors); fewer allocations win here.
    "fresh pages": {"MALLOC_MMAP_THRESHOLD_": str(1 << 20)},
}


def _memory_measurable(device: torch.device) -> bool:
    """CUDA always; CPU only when glibc maps every large buffer freshly (the resident size then
    follows the live tensors), i.e. in the "fresh pages" regime."""
    threshold = os.environ.get("MALLOC_MMAP_THRESHOLD_")
    return device.type == "cuda" or (threshold is not None and int(threshold) <= 1 << 20)


def run_case(name: str, shape: tuple[int, ...], device: torch.device, repeats: int, warmup: int) -> dict:
    """Time one case (its implementations and the bare FFT) in this process; peak memory too."""
    built = build_cases(shape, device)
    fns = {"floor": built["floor"], **built["cases"][name]}
    with torch.inference_mode():
        times = time_repeats(fns, device, repeats=repeats, warmup=warmup)
        memory = {label: peak_memory_bytes(fn, device) for label, fn in fns.items()} if _memory_measurable(device) else {}
    ours, floor = times["ours"]["median_s"], times["floor"]["median_s"]
    ref = times["fastmri"]["median_s"] if "fastmri" in times else None

    def mb(label: str) -> float | None:
        value = memory.get(label)
        return None if value is None else value / 2**20

    return {
        "ours_ms": ours * 1e3,
        "ours_iqr_ms": times["ours"]["iqr_s"] * 1e3,
        "torch_fft2_ms": floor * 1e3,
        "fastmri_ms": None if ref is None else ref * 1e3,
        "ours_vs_fft2": ours / floor,
        "fastmri_over_ours": None if ref is None else ref / ours,
        "ours_peak_mb": mb("ours"),
        "torch_fft2_peak_mb": mb("floor"),
        "fastmri_peak_mb": mb("fastmri"),
    }


def case_names() -> list[str]:
    return list(build_cases((1, 1, 2, 2), torch.device("cpu"))["cases"])


def measure(shape: tuple[int, ...], device: torch.device, repeats: int, warmup: int,
            regimes: dict[str, dict[str, str]] | None = None) -> dict[str, dict]:
    """Every case in a fresh process per allocator regime (``None``: in this process)."""
    names = case_names()
    if regimes is None:
        return {"this process": {name: run_case(name, shape, device, repeats, warmup) for name in names}}
    # Each case runs in a fresh process, once per allocator regime, so that no case inherits
    # the allocator state another left behind (on CPU that state moves the FFT's time by 2x).
    common_args = ["--shape", *map(str, shape), "--device", str(device),
                   "--repeats", str(repeats), "--warmup", str(warmup)]
    root = str(Path(__file__).resolve().parent.parent)
    results: dict[str, dict] = {regime: {} for regime in regimes}
    for regime, env in regimes.items():
        for name in names:
            child = subprocess.run(
                [sys.executable, "-m", "benchmarks.ops", "--case", name, *common_args],
                env={**os.environ, **env}, capture_output=True, text=True, check=True, cwd=root,
            )
            results[regime][name] = json.loads(child.stdout.strip().splitlines()[-1])
    return results


def table_rows(results: dict[str, dict]) -> tuple[list[str], list[list[object]]]:
    headers = ["op"]
    for regime in results:
        headers += [f"ours ms ({regime})", f"ours / fft2 ({regime})", f"fastMRI / ours ({regime})",
                    f"peak MB ours / fastMRI ({regime})"]
    rows = []
    for name in next(iter(results.values())):
        row: list[object] = [name]
        for regime in results:
            r = results[regime][name]
            mem = "-" if r["ours_peak_mb"] is None else f"{r['ours_peak_mb']:.3g}"
            if r.get("fastmri_peak_mb") is not None:
                mem += f" / {r['fastmri_peak_mb']:.3g}"
            row += [r["ours_ms"], r["ours_vs_fft2"], r["fastmri_over_ours"], mem]
        rows.append(row)
    return headers, rows


def run(quick: bool, device: torch.device) -> dict:
    """Report section: every op against the bare FFT and fastMRI (see the module doc).

    Full: knee size (1, 15, 640, 368), 30 repeats, each op in a fresh process per allocator
    regime.  Quick: (1, 4, 128, 96), 5 repeats, in this process.
    """
    if quick:
        shape, repeats, warmup, regimes = (1, 4, 128, 96), 5, 2, None
    else:
        shape, repeats, warmup = (1, 15, 640, 368), 15, 3
        regimes = REGIMES if device.type == "cpu" else {"default": {}}
    results = measure(shape, device, repeats, warmup, regimes)
    headers, rows = table_rows(results)
    return {
        "title": "Operators vs bare torch.fft and fastMRI",
        "tables": [{"caption": f"recon.ops on {device.type}, shape {shape} (+ complex dim), float32; "
                               "ours / fft2 = time over the bare `torch.fft.fft2` of the same complex data; "
                               "fastMRI / ours = speed-up over fastMRI's version; medians of "
                               f"{repeats} interleaved repeats after {warmup} warm-up calls",
                    "headers": headers, "rows": rows}],
        "figures": [],
        "notes": [] if fastmri is not None else ["fastMRI is not installed: no fastMRI columns."],
        "results": {"shape": list(shape), "repeats": repeats, "ops": results},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", type=int, nargs=4, default=[1, 15, 640, 368], metavar=("B", "C", "H", "W"))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)  # child mode: one case, JSON out
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    shape = tuple(args.shape)
    if args.case is not None:
        print(json.dumps(run_case(args.case, shape, device, args.repeats, args.warmup)))
        return 0
    results = measure(shape, device, args.repeats, args.warmup, REGIMES)
    headers, rows = table_rows(results)
    table = markdown_table(headers, rows)
    title = f"recon.ops on {device.type}, shape {shape} (+ complex dim), float32"
    payload = {"shape": list(shape), "repeats": args.repeats, "regimes": {k: v for k, v in REGIMES.items()},
               "ops": results}
    folder = save_results("ops", device, payload, table, title)
    print(f"# {title}\n\n{table}\n\nwritten to {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
