"""Run every benchmark section and write one report: ``REPORT.md``, ``results.json`` and plots.

    python -m benchmarks.run                      # full CPU report -> benchmarks/results/cpu/
    python -m benchmarks.run --quick              # smoke run (small sizes), <= 3 minutes on 2 cores
    python -m benchmarks.run --device cuda --budget 300   # GPU report -> benchmarks/results/cuda/
    python -m benchmarks.run --sections methods accuracy --out /tmp/report
    recon benchmark [--quick] [--device cpu|cuda] [--out DIR] [--budget SECONDS]   # the same

Each section is a module ``benchmarks/<name>.py`` exposing ``run(quick: bool, device:
torch.device) -> dict`` (the dict format is in :mod:`benchmarks.report`). A module that does
not exist, or whose ``run`` raises, is listed in the report as skipped with the reason; the
other sections still run. With ``--budget`` a section is started only while the elapsed time is
below the budget (the rest are listed as skipped), so the run ends near the budget.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Sequence

if __package__ in (None, ""):  # run as a script: python benchmarks/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import matplotlib

matplotlib.use("Agg")  # before any section imports pyplot; files only, no display

import torch  # noqa: E402

from benchmarks.common import RESULTS, device_name, environment  # noqa: E402
from benchmarks.headline import build as build_headline  # noqa: E402
from benchmarks.report import check_section, write_report  # noqa: E402

__all__ = ["SECTIONS", "GPU_ORDER", "run_report", "main", "parse_args", "list_sections"]

logger = logging.getLogger("benchmarks.run")

#: report order: module name -> what it measures (also the list `--sections` accepts)
SECTIONS: dict[str, str] = {
    "methods": "latency, throughput and peak memory of every reconstruction method at knee and brain sizes",
    "accuracy": "NMSE / PSNR / SSIM of every method at 4x and 8x on the held-out split, image grids",
    "robustness": "SSIM of every method under acquisitions unlike the training corpus (noise, coils, matrix, FOV)",
    "ops": "operators vs bare torch.fft and fastMRI",
    "data": "data loading vs a bare h5py read; simulation cost",
    "models": "learned models vs fastMRI; training step (checkpointing, mixed precision); bf16/compile/CUDA graphs",
    "classical": "classical methods vs sigpy",
    "scaling": "time against coils, matrix size and cascades (log-log, fitted exponent)",
    "distributed": "reconstructing a folder with 1 and 2 processes (torchrun, gloo)",
    "preprocess": "preprocessing vs SimpleITK (engineer A2)",
    "augment": "augmentation vs torchio (engineer B)",
    "dicom": "DICOM reading/conversion (engineer A1)",
    "memory": "memory of reconstruct on a brain-size volume (engineer C)",
    "heads": "image-domain heads' inference and error against their baselines",
    "superres": "super-resolution vs cubic B-spline and zero-filled interpolation on held-out anatomy",
    "registration": "learned registration vs SimpleITK affine and B-spline: Dice of tissue labels, time",
}

#: on CUDA the sections that matter most for the GPU run first (a --budget cuts the tail)
GPU_ORDER = ("models", "methods", "accuracy", "robustness", "ops", "scaling", "data", "memory", "augment", "preprocess",
             "dicom", "heads", "superres", "registration", "classical", "distributed")
#: sections that do not run on CUDA, with the reason printed in the report
CPU_ONLY = {"classical": "sigpy's reference solvers run on the CPU: see the CPU report",
            "dicom": "file reading and conversion are CPU work: see the CPU report"}

#: sections known not to exist yet, with the reason printed in the report
PLANNED: dict[str, str] = {}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The options of ``recon benchmark`` (defined once, in :mod:`recon.cli`)."""
    from recon.cli import build_parser

    return build_parser().parse_args(["benchmark", *(sys.argv[1:] if argv is None else argv)])


def list_sections() -> str:
    """One line per section: name, whether its module exists, what it measures."""
    here = Path(__file__).resolve().parent
    lines = []
    for name, what in SECTIONS.items():
        present = (here / f"{name}.py").is_file()
        lines.append(f"  {name:<12} {'' if present else '(missing) '}{what}")
    return "Report sections (benchmarks/<name>.py):\n" + "\n".join(lines)


def default_out(device: torch.device, quick: bool) -> Path:
    return RESULTS / (device_name(device) + ("-quick" if quick else ""))


def _load(name: str):
    """The section module, or (None, reason) when it does not exist / has no run()."""
    try:
        module = importlib.import_module(f"benchmarks.{name}")
    except ModuleNotFoundError as err:
        if err.name == f"benchmarks.{name}":
            return None, PLANNED.get(name, f"benchmarks/{name}.py does not exist yet")
        return None, f"cannot import benchmarks/{name}.py: {err}"
    if not callable(getattr(module, "run", None)):
        return None, f"benchmarks/{name}.py has no run(quick, device) function yet"
    return module, None


def run_report(*, quick: bool = False, device: str | torch.device = "cpu", out: str | Path | None = None,
               budget: float | None = None, sections: Sequence[str] | None = None) -> Path:
    """Run the selected sections and write the report; return the path of ``REPORT.md``.

    Args:
        quick: small sizes and few repeats (labelled QUICK MODE in the report).
        device: ``"cpu"`` or ``"cuda"``.
        out: output folder (default :func:`default_out`).
        budget: seconds after which no new section starts (``None``: no limit).
        sections: names from :data:`SECTIONS` (``None``: all).

    Raises:
        ValueError: an unknown section name or device, ``device="cuda"`` without CUDA, a
            non-positive budget.
    """
    device = torch.device(device)
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {str(device)!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but torch.cuda.is_available() is False (no GPU here)")
    if budget is not None and not budget > 0:
        raise ValueError(f"budget must be a positive number of seconds, got {budget!r}")
    if sections is None:
        names = list(GPU_ORDER) if device.type == "cuda" else list(SECTIONS)
    else:
        names = list(sections)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise ValueError(f"sections must be among {list(SECTIONS)}, got {unknown}")
    out_dir = Path(out) if out is not None else default_out(device, quick)
    env = environment(device)
    start = time.perf_counter()
    done: list[tuple[str, dict]] = []
    skipped: list[tuple[str, str]] = []
    def write(pending: Sequence[str]) -> Path:
        # after every section, so that a run stopped late (or killed) still leaves a report
        env["wall_s"] = time.perf_counter() - start
        headline, figures = build_headline(dict(done))
        headline += [line for _, section in done for line in section.get("headline", [])]
        waiting = [(n, "not run: the report was written before this section's turn (run in progress, or stopped)")
                   for n in pending]
        return write_report(out_dir, env, done, quick=quick, headline=headline, headline_figures=figures,
                            skipped=skipped + waiting)

    for index, name in enumerate(names):
        elapsed = time.perf_counter() - start
        if budget is not None and elapsed >= budget:
            skipped.append((name, f"time budget of {budget:.0f} s used up ({elapsed:.0f} s elapsed)"))
            continue
        if device.type == "cuda" and name in CPU_ONLY:
            skipped.append((name, CPU_ONLY[name]))
            continue
        if device.type == "cuda" and name == "distributed" and torch.cuda.device_count() < 2:
            skipped.append((name, "one GPU: two processes would share it (the CPU report measures the speed-up)"))
            continue
        module, why = _load(name)
        if module is None:
            skipped.append((name, why))
            continue
        logger.info("section %s ...", name)
        t0 = time.perf_counter()
        try:
            section = check_section(name, module.run(quick=quick, device=device))
        except Exception as err:  # noqa: BLE001 - one failing section must not lose the report
            last = traceback.extract_tb(err.__traceback__)[-1]
            skipped.append((name, f"run() failed: {type(err).__name__}: {err} "
                                  f"({Path(last.filename).name}:{last.lineno})"))
            logger.warning("section %s failed: %s", name, err)
            write(names[index + 1:])
            continue
        section["wall_s"] = time.perf_counter() - t0
        logger.info("section %s done in %.0f s", name, section["wall_s"])
        done.append((name, section))
        write(names[index + 1:])
    return write([])


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        print(list_sections())
        return 0
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
    try:
        report = run_report(quick=args.quick, device=args.device, out=args.out, budget=args.budget,
                            sections=args.sections)
    except ValueError as err:
        print(f"benchmarks.run: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {report} (and results.json, *.png beside it)")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
