"""How reconstruction time grows with the number of coils, the matrix size and the cascades.

VarNet inference (``recon.models.VarNet``, random weights, fastMRI's default widths) and the
default classical method (``recon.reconstruct(method="cs")``) on random k-space with a 4x
equispaced mask, one slice per call; median of the repeats after one warm-up call.  On
log-log axes a power law ``t = c * x**k`` is a straight line; the fitted exponent ``k`` is
in the legend and the table (``k = 1``: linear; an FFT-bound step over an N x N matrix
gives ``k`` a little above 2 against the side N).

    python -m benchmarks.scaling [--quick] [--device cuda]
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a script: python benchmarks/scaling.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import section_main, time_repeats  # noqa: E402

from recon.api import reconstruct  # noqa: E402
from recon.models import VarNet  # noqa: E402


def problem(coils: int, side: int, device: torch.device, seed: int = 0):
    """Random k-space (1, coils, side, side, 2) with a decaying spectrum and a 4x mask."""
    gen = torch.Generator().manual_seed(seed)
    k = torch.linspace(-1, 1, side)
    envelope = torch.exp(-8 * (k[:, None] ** 2 + k[None, :] ** 2))[..., None]
    kspace = torch.randn(1, coils, side, side, 2, generator=gen) * envelope
    mask = torch.zeros(1, 1, 1, side, 1, dtype=torch.bool)
    mask[..., ::4, :] = True
    low = max(8, round(0.08 * side))  # ESPIRiT needs a 6 x 6 calibration centre
    mask[..., (side - low + 1) // 2: (side - low + 1) // 2 + low, :] = True
    return (kspace * mask).to(device), mask.to(device)


def _varnet(cascades: int, device: torch.device) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return VarNet(num_cascades=cascades).to(device).eval()


def sweep(kind: str, values, *, fixed: dict, device: torch.device, repeats: int, method: str) -> list[float]:
    """Median seconds per point of one sweep (``kind`` in coils/side/cascades)."""
    times = []
    models: dict[int, torch.nn.Module] = {}
    for value in values:
        cfg = {**fixed, kind: value}
        kspace, mask = problem(cfg["coils"], cfg["side"], device)
        if method == "varnet":
            model = models.setdefault(cfg["cascades"], _varnet(cfg["cascades"], device))

            def call(model=model, kspace=kspace, mask=mask):
                with torch.inference_mode():
                    return model(kspace, mask)
        else:
            volume = torch.view_as_complex(kspace[0].contiguous())
            column = mask.reshape(-1)

            def call(volume=volume, column=column):
                return reconstruct(volume, column, method=method, device=device, progress=False)
        times.append(time_repeats({"t": call}, device, repeats=repeats, warmup=1)["t"]["median_s"])
    return times


def settings(quick: bool) -> dict:
    if quick:
        return {
            "repeats": 1,
            "varnet": {"coils": ([2, 4, 8], {"side": 64, "cascades": 2}),
                       "side": ([32, 64, 128], {"coils": 4, "cascades": 2}),
                       "cascades": ([1, 2, 4], {"coils": 4, "side": 64})},
            "cs": {"coils": ([2, 4, 8], {"side": 64}), "side": ([32, 64, 96], {"coils": 4})},
        }
    return {
        "repeats": 3,
        "varnet": {"coils": ([2, 4, 8, 16, 32], {"side": 256, "cascades": 4}),
                   "side": ([64, 128, 256, 512], {"coils": 8, "cascades": 4}),
                   "cascades": ([1, 2, 4, 8, 12], {"coils": 8, "side": 256})},
        "cs": {"coils": ([2, 4, 8, 16], {"side": 256}), "side": ([64, 128, 256, 384], {"coils": 8})},
    }


LABELS = {"coils": "number of coils", "side": "matrix side N (N x N)", "cascades": "number of cascades"}


def run(quick: bool, device: torch.device) -> dict:
    """Report section: the sweeps, fitted exponents, one log-log plot per swept quantity."""
    from benchmarks.plots import fit_exponent, loglog_scaling

    cfg = settings(quick)
    results: dict = {}
    for method in ("varnet", "cs"):
        for kind, (values, fixed) in cfg[method].items():
            fixed = {"coils": 8, "side": 256, "cascades": 4, **fixed}
            times = sweep(kind, values, fixed=fixed, device=device, repeats=cfg["repeats"], method=method)
            exponent, _ = fit_exponent(values, times)
            results.setdefault(kind, {})[method] = {"x": values, "seconds": times, "fixed": fixed,
                                                    "exponent": exponent}
    rows, figures = [], []
    for kind, by_method in results.items():
        series = {}
        for method, r in by_method.items():
            fixed = ", ".join(f"{k} {v}" for k, v in r["fixed"].items() if k != kind and (method == "varnet" or k != "cascades"))
            label = f"VarNet ({fixed})" if method == "varnet" else f"cs ({fixed})"
            series[label] = (r["x"], r["seconds"])
            rows.append([LABELS[kind], label, ", ".join(map(str, r["x"])),
                         ", ".join(f"{t:.3g}" for t in r["seconds"]), r["exponent"]])
        figures.append({"name": f"scaling-{kind}", "figure": loglog_scaling(series, xlabel=LABELS[kind],
                                                                            title=f"time vs {LABELS[kind]}"),
                        "caption": f"Time per slice against the {LABELS[kind]} (log-log, fitted exponent)"})
    notes = [__doc__.split("\n\n")[1].replace("\n", " ")]
    if quick:
        notes.append("QUICK MODE: small sizes, 2-cascade VarNet, one timed call per point.")
    return {"title": "Scaling: time against coils, matrix size and cascades",
            "tables": [{"caption": f"median seconds per slice on {device.type}",
                        "headers": ["swept", "method (fixed)", "x", "seconds", "fitted exponent"], "rows": rows}],
            "figures": figures, "notes": notes, "results": results}


def main(argv: list[str] | None = None) -> int:
    return section_main(run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
