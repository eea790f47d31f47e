"""Extra peak resident memory of :func:`recon.reconstruct` on a brain-size volume.

The input is a multi-coil volume of fastMRI's brain size, 16 slices x 16 coils x 640 x 320
complex64 (420 MB), with a 4x equispaced column mask (8% centre); the figure is

    (peak resident memory during the call - resident memory just before it) / input size,

the peak read from ``VmHWM`` after resetting it through ``/proc/self/clear_refs``
(:func:`benchmarks.common.peak_memory_bytes`).  Each case runs in a fresh subprocess with
glibc's mmap threshold pinned at 64 KiB, so that freed buffers leave the resident set and the
figure follows the live arrays; torch runs on one thread.  The target (issue 8) is at most
0.75x for ``zero_filled``, ``cs`` and ``varnet``.

    python -m benchmarks.memory            # the three methods, 16 slices
    python -m benchmarks.memory --quick    # 4 slices

Writes ``benchmarks/results/cpu/memory.json`` and ``memory.md``.  ``RECON_PATH=<folder holding
another recon package>`` measures that one instead (``--no-save``; the figures name the recon
that was imported), e.g. the code before issue 8:
``git archive 6cd6057 recon | tar -x -C /tmp/orig; RECON_PATH=/tmp/orig python -m benchmarks.memory --no-save``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):  # run as a script: python benchmarks/memory.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
if os.environ.get("RECON_PATH"):  # measure another checkout: bypass the editable install's finder
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
    sys.path.insert(0, os.environ["RECON_PATH"])
from benchmarks.common import ROOT, markdown_table, peak_memory_bytes, save_results  # noqa: E402

METHODS = ("zero_filled", "cs", "varnet")
SHAPE = (16, 16, 640, 320)  # slices, coils, H, W
TARGET = 0.75
HEADERS = ["method", "mask", "input", "extra peak RSS", "extra / input", "target", "seconds"]


def _volume(slices: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A smooth random image per slice times random smooth coil maps, in k-space (complex64)."""
    _, coils, height, width = SHAPE
    rng = np.random.default_rng(seed)
    kspace = np.empty((slices, coils, height, width), dtype=np.complex64)
    yy, xx = np.mgrid[:height, :width]
    disc = ((yy - height / 2) / (0.45 * height)) ** 2 + ((xx - width / 2) / (0.45 * width)) ** 2 < 1
    images = [disc * (1.0 + 0.3 * rng.standard_normal((height, width))).astype(np.float32) for _ in range(slices)]
    for c in range(coils):  # coil maps: a Gaussian bump around the disc per coil
        angle = 2 * np.pi * c / coils
        cy, cx = height / 2 * (1 + 0.8 * np.sin(angle)), width / 2 * (1 + 0.8 * np.cos(angle))
        coil = np.exp(-(((yy - cy) / height) ** 2 + ((xx - cx) / width) ** 2) * 2).astype(np.complex64)
        for s, image in enumerate(images):
            kspace[s, c] = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(image * coil), norm="ortho"))
    mask = np.zeros(width, dtype=np.float32)
    mask[::4] = 1
    centre = round(0.08 * width)
    mask[(width - centre + 1) // 2 : (width - centre + 1) // 2 + centre] = 1
    return kspace, mask


def child(method: str, slices: int, with_mask: bool) -> dict:
    """One case, in this (fresh) process: the figure as a dict."""
    import recon
    from recon import reconstruct

    torch.set_num_threads(1)
    kspace, mask = _volume(slices)
    reconstruct(kspace[:1, :, :64, :64], mask[:64], method=method, progress=False)  # warm up lazy imports
    start = time.perf_counter()
    extra = peak_memory_bytes(
        lambda: reconstruct(kspace, mask if with_mask else None, method=method, progress=False),
        torch.device("cpu"), runs=1,
    )
    seconds = time.perf_counter() - start
    return {
        "method": method, "mask": "column (W,)" if with_mask else "None (inferred)", "slices": slices,
        "input_bytes": int(kspace.nbytes), "extra_bytes": extra, "ratio": extra / kspace.nbytes,
        "seconds": seconds, "recon": str(Path(recon.__file__).parent),
    }


def run_case(method: str, slices: int, with_mask: bool) -> dict:
    args = [sys.executable, "-m", "benchmarks.memory", "--child", method, "--slices", str(slices)]
    if not with_mask:
        args.append("--no-mask")
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(args, env=env, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"case {method} failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


TITLE = "reconstruct: extra peak memory"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 slices instead of 16")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--child", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--slices", type=int, default=SHAPE[0], help=argparse.SUPPRESS)
    parser.add_argument("--no-mask", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-save", action="store_true", help="print only, do not write results")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.slices, not args.no_mask)))
        return
    results, table, notes = measure(4 if args.quick else SHAPE[0], args.methods)
    print(table + notes)
    if not args.no_save:
        payload = {"target_ratio": TARGET, "shape": list(SHAPE), "cases": results}
        save_results("memory", torch.device("cpu"), payload, table + notes, TITLE)


def measure(slices: int, methods: list[str]) -> tuple[list[dict], str, str]:
    """Every case in a fresh process; returns (results, markdown table, notes)."""
    cases = [(m, True) for m in methods] + [("zero_filled", False)]
    results = [run_case(method, slices, with_mask) for method, with_mask in cases]
    rows = [
        [r["method"], r["mask"], f"{r['slices']}x{SHAPE[1]}x{SHAPE[2]}x{SHAPE[3]} complex64 ({r['input_bytes'] / 2**20:.0f} MiB)",
         f"{r['extra_bytes'] / 2**20:.0f} MiB", f"{r['ratio']:.2f}x", f"<= {TARGET}x", r["seconds"]]
        for r in results
    ]
    table = markdown_table(HEADERS, rows)
    notes = (
        "\n\nPeak resident memory during `reconstruct` minus resident memory before it, over the "
        "input size; each case in a fresh process (glibc mmap threshold 64 KiB, one torch thread), "
        f"4x equispaced column mask with an 8% centre. recon imported from `{results[0]['recon']}`. "
        "CPU machine shared with other jobs (memory figures are not affected by load)."
    )
    return results, table, notes


def run(quick: bool, device: torch.device) -> dict:
    """Report section (benchmarks/run.py): extra peak memory of reconstruct (CPU resident memory).

    Quick: zero_filled only (seconds; the iterative and learned methods take minutes at this size
    on a CPU). Always the full 16 slices: on a small input, the fixed allocations of torch would
    dominate the ratio.
    """
    slices, methods = SHAPE[0], (["zero_filled"] if quick else list(METHODS))
    results, _, notes = measure(slices, methods)
    rows = [[r["method"], r["mask"], f"{r['input_bytes'] / 2**20:.0f}", f"{r['extra_bytes'] / 2**20:.0f}",
             round(r["ratio"], 2), TARGET] for r in results]
    return {
        "title": TITLE,
        "tables": [{"caption": f"{slices} x {SHAPE[1]} x {SHAPE[2]} x {SHAPE[3]} complex64 k-space",
                    "headers": ["method", "mask", "input MiB", "extra MiB", "extra / input", "target"], "rows": rows}],
        "figures": [],
        "notes": [notes.strip()],
        "results": {"target_ratio": TARGET, "slices": slices, "cases": results},
    }


if __name__ == "__main__":
    main()
