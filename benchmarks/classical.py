"""Classical reconstruction against sigpy, on the same data in one process.

1. ``cg_sense`` vs sigpy's ``SenseRecon``: same ESPIRiT maps, same mask, same ``lamda``, same
   number of CG iterations; relative difference of the complex images and time per slice.
2. The default method of :func:`recon.reconstruct` (``cs``: ESPIRiT + L1-wavelet FISTA + data
   consistency, RSS output) vs sigpy's ``L1WaveletRecon`` (db4, 100 FISTA iterations) with
   ``lamda`` tuned by a grid search on a validation slice of another subject, given the *same*
   ESPIRiT maps as ours.  Test data: the held-out split (other subjects and contrasts than the
   validation/tuning data: a coronal T1 slice and ten axial b=0 slices), 8-coil simulations,
   fastMRI random masks at 4x (8% centre) and 8x (4% centre) with fastMRI's per-file seeds.
   SSIM is fastMRI's volume SSIM (``maxval`` = target max) against ``reconstruction_rss``.
   Our time is the whole pipeline (maps + solver + output); sigpy's is its solver alone.

    python -m benchmarks.classical              # CPU, 1 thread for both libraries
    python -m benchmarks.classical --quick      # fewer repeats and a coarser lamda grid

Writes ``benchmarks/results/<device>/classical.json`` and ``classical.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import torch

if __package__ in (None, ""):  # run as a script: python benchmarks/classical.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import markdown_table, save_results  # noqa: E402

import sigpy.mri as mr  # noqa: E402

from recon.api import reconstruct  # noqa: E402
from recon.classical import cg_sense, espirit_maps  # noqa: E402
from recon.data.sample import sample_files  # noqa: E402
from recon.masks import create_mask_for_mask_type  # noqa: E402
from recon.metrics import ssim  # noqa: E402
from recon.ops import from_numpy, ifft2c, rss_complex, sens_expand, to_numpy  # noqa: E402

SETTINGS = {4: 0.08, 8: 0.04}  # acceleration -> centre fraction (fastMRI's brain settings)
SENSE_HEADERS = ["file", "k-space", "rel. difference", "sigpy s/slice", "ours s/slice", "speed-up"]
DEFAULT_HEADERS = ["accel.", "file", "SSIM zero-filled", "SSIM sigpy L1 (tuned)", "SSIM sigpy + our DC/RSS",
                   "SSIM ours (default)", "sigpy s/slice", "ours s/slice", "speed-up"]


def load(path: Path, slices: slice | None = None) -> tuple[np.ndarray, np.ndarray]:
    with h5py.File(path, "r") as hf:
        kspace = hf["kspace"][()] if slices is None else hf["kspace"][slices]
        target = hf["reconstruction_rss"][()] if slices is None else hf["reconstruction_rss"][slices]
    return kspace, target


def draw_mask(name: str, width: int, acceleration: int) -> np.ndarray:
    mask_func = create_mask_for_mask_type("random", [SETTINGS[acceleration]], [acceleration])
    mask, _ = mask_func((1, 1, width, 2), seed=tuple(map(ord, name)))
    return mask.reshape(-1).numpy().astype(np.float32)


def timed(fn, repeats: int) -> tuple[object, float]:
    """(result, median seconds) of ``repeats`` calls (keeps the result, unlike time_repeats)."""
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return out, float(np.median(times))


def our_maps(kspace: np.ndarray, mask: np.ndarray) -> torch.Tensor:
    k = from_numpy(kspace * mask)
    return espirit_maps(k, torch.from_numpy(mask).view(1, 1, 1, -1, 1))


def sigpy_l1(kspace: np.ndarray, maps: np.ndarray, mask: np.ndarray, lam: float) -> np.ndarray:
    """Magnitude of sigpy's L1WaveletRecon, slice by slice (complex64)."""
    out = []
    for k, m in zip(kspace, maps):
        x = mr.app.L1WaveletRecon(k * mask, m, lam, weights=mask, show_pbar=False).run()
        out.append(np.abs(x))
    return np.stack(out)


def dc_rss(image: np.ndarray, maps: np.ndarray, kspace: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Our output step (data consistency + RSS) applied to a complex image from elsewhere."""
    x = from_numpy(image)[:, None]
    s = from_numpy(maps)
    m = torch.from_numpy(mask).bool().view(1, 1, 1, -1, 1)
    k = torch.where(m, from_numpy(kspace * mask), sens_expand(x, s))
    return rss_complex(ifft2c(k), dim=1).numpy()


def bench_sense(files, repeats: int) -> tuple[list[dict], str]:
    rows, table = [], []
    for path in files:
        kspace, _ = load(path)
        mask = draw_mask(path.name, kspace.shape[-1], 4)
        maps_t = our_maps(kspace, mask)
        maps = to_numpy(maps_t)
        y = (kspace * mask).astype(np.complex64)
        lam, iters = 0.01, 30

        def ours():
            return cg_sense(from_numpy(y), maps_t, torch.from_numpy(mask).view(1, 1, 1, -1, 1),
                            lam=lam, max_iter=iters, tol=0, relative_lam=False)

        def theirs():
            return np.stack([
                mr.app.SenseRecon(k, m, lamda=lam, weights=mask, max_iter=iters, show_pbar=False).run()
                for k, m in zip(y, maps)
            ])

        times_ours, times_sigpy = [], []
        for _ in range(repeats):  # round-robin, medians
            ref, t = timed(theirs, 1)
            times_sigpy.append(t)
            out, t = timed(ours, 1)
            times_ours.append(t)
        t_ours, t_sigpy = float(np.median(times_ours)), float(np.median(times_sigpy))
        out = to_numpy(out[:, 0])
        rel = float(np.linalg.norm(out - ref) / np.linalg.norm(ref))
        n = kspace.shape[0]
        row = {
            "file": path.name, "shape": list(kspace.shape), "lamda": lam, "iterations": iters,
            "relative_difference": rel, "sigpy_s_per_slice": t_sigpy / n, "ours_s_per_slice": t_ours / n,
            "speedup": t_sigpy / t_ours,
        }
        rows.append(row)
        table.append([path.name, "x".join(map(str, kspace.shape)), f"{rel:.1e}", t_sigpy / n, t_ours / n,
                      f"{t_sigpy / t_ours:.1f}x"])
    text = markdown_table(SENSE_HEADERS, table)
    return rows, text


def tune_sigpy(val_path: Path, acceleration: int, grid: list[float]) -> tuple[float, list[dict]]:
    """Best L1WaveletRecon lamda (relative to the 99th percentile of |A^H y|) on one val slice."""
    kspace, target = load(val_path, slice(4, 5))
    mask = draw_mask(val_path.name, kspace.shape[-1], acceleration)
    maps = to_numpy(our_maps(kspace, mask))
    adjoint = np.sum(np.conj(maps) * np.fft.fftshift(
        np.fft.ifft2(np.fft.ifftshift(kspace * mask, axes=(-2, -1)), norm="ortho"), axes=(-2, -1)), axis=1)
    scale = float(np.quantile(np.abs(adjoint), 0.99))
    scores = []
    for rel in grid:
        out = sigpy_l1(kspace, maps, mask, rel * scale)
        scores.append({"relative_lamda": rel, "ssim": float(ssim(target, out, maxval=target.max()))})
    best = max(scores, key=lambda s: s["ssim"])["relative_lamda"]
    return best, scores


def bench_default(val_path: Path, test_files, grid: list[float], repeats: int) -> tuple[dict, str]:
    results, table = {}, []
    for acceleration in SETTINGS:
        best, scores = tune_sigpy(val_path, acceleration, grid)
        per_file = []
        for path in test_files:
            kspace, target = load(path)
            mask = draw_mask(path.name, kspace.shape[-1], acceleration)
            y = (kspace * mask).astype(np.complex64)
            maps = to_numpy(our_maps(kspace, mask))
            adjoint = np.sum(np.conj(maps) * np.fft.fftshift(
                np.fft.ifft2(np.fft.ifftshift(y, axes=(-2, -1)), norm="ortho"), axes=(-2, -1)), axis=1)
            scales = np.quantile(np.abs(adjoint).reshape(len(y), -1), 0.99, axis=1)

            def ours():
                return reconstruct(y, mask, method="cs", device="cpu", progress=False)

            def theirs():
                return np.stack([
                    mr.app.L1WaveletRecon(k, m, best * s, weights=mask, show_pbar=False).run()
                    for k, m, s in zip(y, maps, scales)
                ])

            # round-robin, so that machine noise falls on both alike; medians
            times_ours, times_sigpy = [], []
            for _ in range(repeats):
                out, t = timed(ours, 1)
                times_ours.append(t)
                theirs_out, t = timed(theirs, 1)
                times_sigpy.append(t)
            t_ours, t_sigpy = float(np.median(times_ours)), float(np.median(times_sigpy))
            theirs = theirs_out
            _, t_calib = timed(lambda: [mr.app.EspiritCalib(k, calib_width=24, show_pbar=False).run()
                                        for k in y[:1]], 1)
            zf = reconstruct(y, mask, method="zero_filled")
            n = kspace.shape[0]
            maxval = target.max()
            row = {
                "file": path.name, "shape": list(kspace.shape),
                "ssim_ours": float(ssim(target, out, maxval=maxval)),
                "ssim_sigpy": float(ssim(target, np.abs(theirs), maxval=maxval)),
                "ssim_sigpy_with_our_dc_rss": float(ssim(target, dc_rss(theirs, maps, kspace, mask), maxval=maxval)),
                "ssim_zero_filled": float(ssim(target, zf, maxval=maxval)),
                "ours_s_per_slice": t_ours / n, "sigpy_s_per_slice": t_sigpy / n,
                "sigpy_espiritcalib_s_per_slice": t_calib,
                "speedup": t_sigpy / t_ours,
            }
            per_file.append(row)
            table.append([
                f"{acceleration}x", path.name, row["ssim_zero_filled"], row["ssim_sigpy"],
                row["ssim_sigpy_with_our_dc_rss"], row["ssim_ours"], row["sigpy_s_per_slice"],
                row["ours_s_per_slice"], f"{row['speedup']:.1f}x",
            ])
        mean = {k: float(np.mean([r[k] for r in per_file])) for k in ("ssim_ours", "ssim_sigpy", "ssim_zero_filled")}
        total_ours = sum(r["ours_s_per_slice"] * r["shape"][0] for r in per_file)
        total_sigpy = sum(r["sigpy_s_per_slice"] * r["shape"][0] for r in per_file)
        mean["speedup_per_slice"] = total_sigpy / total_ours
        results[f"{acceleration}x"] = {"sigpy_relative_lamda": best, "tuning": scores, "files": per_file, "mean": mean}
        table.append([f"{acceleration}x", "**mean**", mean["ssim_zero_filled"], mean["ssim_sigpy"], "",
                      mean["ssim_ours"], "", "", f"**{mean['speedup_per_slice']:.1f}x**"])
    text = markdown_table(DEFAULT_HEADERS, table)
    return results, text


def _rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()[2:]]


def run(quick: bool, device: torch.device) -> dict:
    """Report section: CG-SENSE vs sigpy SenseRecon and the default method vs sigpy
    L1WaveletRecon on the held-out split (CPU; sigpy runs on the CPU only).

    Quick: the one-slice held-out file, 1 repeat, a 2-point lamda grid.
    """
    test_files = sample_files("test_heldout")
    val_path = sample_files("val")[1]
    repeats = 1 if quick else 2
    grid = [2e-3] if quick else [3e-4, 1e-3, 2e-3, 5e-3, 1e-2]
    if quick:
        test_files = sorted(test_files, key=lambda p: p.stat().st_size)[:1]
    sense_rows, sense_table = bench_sense(test_files, repeats)
    default_results, default_table = bench_default(val_path, test_files, grid, repeats)
    notes = [f"On the CPU with torch's default threads ({torch.get_num_threads()}); sigpy's FFTs run on one "
             "thread. Ours = whole pipeline (ESPIRiT + solver + DC/RSS), sigpy = solver only; medians of "
             f"{repeats} round-robin run(s)."]
    if quick:
        notes.append("QUICK MODE: one held-out file, 1 repeat, sigpy lamda not tuned (one value).")
    return {
        "title": "Classical methods vs sigpy",
        "tables": [
            {"caption": "CG-SENSE vs sigpy SenseRecon (same maps, mask 4x, lamda 0.01, 30 iterations)",
             "headers": SENSE_HEADERS, "rows": _rows(sense_table)},
            {"caption": "Default method (cs) vs sigpy L1WaveletRecon (lamda tuned on a validation slice, same maps)",
             "headers": DEFAULT_HEADERS, "rows": _rows(default_table)},
        ],
        "figures": [], "notes": notes,
        "results": {"repeats": repeats, "cg_sense_vs_sigpy_senserecon": sense_rows,
                    "default_vs_sigpy_l1waveletrecon": default_results},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (numpy/sigpy FFTs run on one)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 repeat, 4-point lamda grid")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    repeats = 1 if args.quick else args.repeats
    grid = [3e-4, 1e-3, 3e-3, 1e-2] if args.quick else [1e-4, 3e-4, 1e-3, 2e-3, 5e-3, 1e-2, 3e-2]
    val_path = sample_files("val")[1]
    test_files = sample_files("test_heldout")

    sense_rows, sense_table = bench_sense(test_files, repeats)
    default_results, default_table = bench_default(val_path, test_files, grid, repeats)
    payload = {
        "threads": args.threads, "repeats": repeats, "validation_file": val_path.name,
        "cg_sense_vs_sigpy_senserecon": sense_rows, "default_vs_sigpy_l1waveletrecon": default_results,
    }
    text = (
        "## CG-SENSE vs sigpy SenseRecon (same maps, mask 4x, lamda 0.01, 30 iterations)\n\n"
        f"{sense_table}\n\n"
        "## Default method (cs) vs sigpy L1WaveletRecon (lamda tuned on a validation slice, same maps)\n\n"
        f"{default_table}\n\n"
        f"Tuned sigpy relative lamda: "
        + ", ".join(f"{a}: {r['sigpy_relative_lamda']}" for a, r in default_results.items())
        + f". torch threads: {args.threads}; times are medians of {repeats} round-robin run(s); ours = whole pipeline "
        "(ESPIRiT + solver + DC/RSS), sigpy = solver only (its EspiritCalib time is in the JSON).\n"
    )
    folder = save_results("classical", torch.device("cpu"), payload, text, "Classical reconstruction vs sigpy")
    print(text)
    print(f"written to {folder}")


if __name__ == "__main__":
    main()
