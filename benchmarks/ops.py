"""Benchmark of recon.ops against the bare torch.fft call and against fastMRI.

Every op is timed on the same data together with the bare FFT and fastMRI's version,
round-robin in one process, median of repeats after warm-up (CUDA synchronised).  Each op runs
in a fresh process, once per allocator regime (a warm heap that reuses freed blocks, and fresh
pages for every large tensor), because on CPU glibc's allocator state otherwise couples the
implementations and moves their times by up to 2x.  Ratios: ``vs fft2`` = time / bare ``torch.fft.fft2`` time on the
same complex data (the floor for a 2-D FFT), ``fastMRI / ours`` = speed-up over fastMRI's
implementation of the same op (when the ``fastmri`` package is installed).

    python benchmarks/ops.py                 # fastMRI knee size (1, 15, 640, 368)
    python benchmarks/ops.py --shape 1 16 640 320 --device cuda

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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import markdown_table, save_results, time_interleaved  # noqa: E402

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


def run_case(name: str, shape: tuple[int, ...], device: torch.device, repeats: int, warmup: int) -> dict:
    """Time one case (its implementations and the bare FFT) in this process."""
    built = build_cases(shape, device)
    fns = {"floor": built["floor"], **built["cases"][name]}
    with torch.inference_mode():
        times = time_interleaved(fns, device, repeats=repeats, warmup=warmup)
    ours, floor, ref = times["ours"], times["floor"], times.get("fastmri")
    return {
        "ours_ms": ours * 1e3,
        "torch_fft2_ms": floor * 1e3,
        "fastmri_ms": None if ref is None else ref * 1e3,
        "ours_vs_fft2": ours / floor,
        "fastmri_over_ours": None if ref is None else ref / ours,
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

    # Each case runs in a fresh process, once per allocator regime, so that no case inherits
    # the allocator state another left behind (on CPU that state moves the FFT's time by 2x).
    names = list(build_cases((1, 1, 2, 2), torch.device("cpu"))["cases"])
    common_args = ["--shape", *map(str, shape), "--device", args.device,
                   "--repeats", str(args.repeats), "--warmup", str(args.warmup)]
    results: dict[str, dict] = {regime: {} for regime in REGIMES}
    for regime, env in REGIMES.items():
        for name in names:
            child = subprocess.run(
                [sys.executable, __file__, "--case", name, *common_args],
                env={**os.environ, **env}, capture_output=True, text=True, check=True,
            )
            results[regime][name] = json.loads(child.stdout.strip().splitlines()[-1])

    def fmt(value: float | None) -> object:
        return "-" if value is None else value

    headers = ["op"]
    for regime in REGIMES:
        headers += [f"ours ms ({regime})", f"ours / fft2 ({regime})", f"fastMRI / ours ({regime})"]
    rows = []
    for name in names:
        row: list[object] = [name]
        for regime in REGIMES:
            r = results[regime][name]
            row += [r["ours_ms"], r["ours_vs_fft2"], fmt(r["fastmri_over_ours"])]
        rows.append(row)
    table = markdown_table(headers, rows)
    title = f"recon.ops on {device.type}, shape {shape} (+ complex dim), float32"
    payload = {"shape": list(shape), "repeats": args.repeats, "regimes": {k: v for k, v in REGIMES.items()},
               "ops": results}
    folder = save_results("ops", device, payload, table, title)
    print(f"# {title}\n\n{table}\n\nwritten to {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
