"""Benchmark of recon.preprocess.augment against torchio on the Colin27 volume (181 x 217 x 181).

Targets (ratios measured in one process, interleaved, median of repeats):

* random affine followed by random elastic deformation: at least 10x faster than torchio's
  ``Compose([RandomAffine(), RandomElasticDeformation()])`` with the same magnitudes
  (torchio's defaults: scales 0.9-1.1, 10 degrees, no translation; 7 control points per axis,
  7.5 mm, 2 locked borders);
* random affine alone: at least as fast as torchio's ``RandomAffine`` (SimpleITK resampling);
* on CUDA (``--device cuda``): a batch of 8 such volumes augmented in one call, under 50 ms per
  volume (torchio has no GPU path; its CPU figure is not repeated there).

Both libraries draw new random parameters at every call and resample linearly; the sample
carries the NIfTI affine (rotations about the world centre, displacements in mm).

    python benchmarks/augment.py [--device cpu|cuda] [--repeats 10] [--batch 8]
    python benchmarks/augment.py --figure docs/images/augment_examples.png

Writes ``benchmarks/results/<device>/augment.json`` and ``augment.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):  # run as a script: python benchmarks/augment.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import markdown_table, save_results, time_repeats  # noqa: E402

from recon.data.io import load_nifti  # noqa: E402
from recon.preprocess.augment import Compose, RandomAffine, RandomElastic  # noqa: E402

COLIN = Path(__file__).resolve().parent.parent / "data" / "colin27_t1.nii.gz"


def _torchio_cases(volume: np.ndarray, affine: np.ndarray):
    try:
        import torchio as tio
    except ImportError:  # pragma: no cover - optional reference
        return {}
    # torchio draws its parameters from torch's global RNG (left as it is: not reseeded here)
    subject = tio.Subject(t1=tio.ScalarImage(tensor=torch.from_numpy(volume)[None], affine=affine))
    both = tio.Compose([tio.RandomAffine(), tio.RandomElasticDeformation()])
    affine_only = tio.RandomAffine()
    return {"torchio affine+elastic": lambda: both(subject), "torchio affine": lambda: affine_only(subject)}


def measure(device: torch.device, repeats: int, batch: int, compiled: bool = True) -> tuple[dict, list, list, str]:
    """Time every case; returns (results, case rows, target rows, one-line setup description)."""
    volume, affine, _ = load_nifti(COLIN)
    volume = np.ascontiguousarray(volume, dtype=np.float32)
    x = torch.from_numpy(volume)[None].to(device)
    g = torch.Generator(device=device).manual_seed(0)
    both = Compose([RandomAffine(degrees=10, scales=0.1, translation=0), RandomElastic(7, 7.5, locked_borders=2)])
    affine_only = RandomAffine(degrees=10, scales=0.1, translation=0)
    sample = {"t1": x, "affine": affine}
    fns = {"recon affine+elastic": lambda: both(sample, generator=g), "recon affine": lambda: affine_only(sample, generator=g)}
    if compiled:
        _add_compiled(fns, sample, g)
    label = (x > x.mean()).to(torch.uint8)
    paired = Compose([RandomAffine(), RandomElastic()], labels=("label",))
    fns["recon affine+elastic, image + label"] = lambda: paired({"t1": x, "label": label, "affine": affine}, generator=g)
    if device.type == "cpu":
        fns.update(_torchio_cases(volume, affine))
    else:
        xb = x.expand(batch, -1, -1, -1, -1).contiguous()
        fns[f"recon affine+elastic, batch of {batch}"] = lambda: both({"t1": xb, "affine": affine}, generator=g, batched=True)
    times = time_repeats(fns, device, repeats=repeats, warmup=2)
    med = {k: v["median_s"] for k, v in times.items()}
    rows = [[name, f"{1000 * t:.1f}", f"{1000 * times[name]['min_s']:.1f}"] for name, t in med.items()]
    results: dict = {"shape": list(volume.shape), "times": times, "device": str(device)}
    targets = []
    if "torchio affine+elastic" in med:
        r1 = med["torchio affine+elastic"] / med["recon affine+elastic"]
        r2 = med["torchio affine"] / med["recon affine"]
        results["speedup_affine_elastic"] = r1
        results["speedup_affine"] = r2
        targets += [["affine + elastic vs torchio (grid_sample backend)", f"{r1:.1f}x faster", ">= 10x", "met" if r1 >= 10 else "NOT met"],
                    ["affine alone vs torchio (grid_sample backend)", f"{r2:.2f}x faster", ">= 1x", "met" if r2 >= 1 else "NOT met"]]
        if "recon affine (compiled)" in med:
            c1 = med["torchio affine+elastic"] / med["recon affine+elastic (compiled)"]
            c2 = med["torchio affine"] / med["recon affine (compiled)"]
            results["speedup_affine_elastic_compiled"] = c1
            results["speedup_affine_compiled"] = c2
            targets += [["affine + elastic vs torchio (compiled backend)", f"{c1:.1f}x faster", ">= 10x", "met" if c1 >= 10 else "NOT met"],
                        ["affine alone vs torchio (compiled backend)", f"{c2:.2f}x faster", ">= 1x", "met" if c2 >= 1 else "NOT met"]]
    if device.type == "cuda":
        per = med[f"recon affine+elastic, batch of {batch}"] / batch
        results["batch_ms_per_volume"] = 1000 * per
        targets.append([f"batch of {batch} on {device}", f"{1000 * per:.1f} ms/volume", "< 50 ms", "met" if per < 0.05 else "NOT met"])
    else:
        targets.append(["batch of 8 on a GPU", "not measured (no GPU)", "< 50 ms/volume", "-"])
    setup = (
        f"Colin27 T1 {tuple(volume.shape)}, float32, {torch.get_num_threads()} threads, device {device}; "
        f"median of {repeats} interleaved calls (new random parameters each call). The machine may be "
        "shared: compare the ratios, measured in the same run."
    )
    return results, rows, targets, setup


def _add_compiled(fns: dict, sample: dict, g: torch.Generator) -> None:
    """The ``backend="compiled"`` variants, compiled outside the timing (first call of the process)."""
    spatial = [RandomAffine(degrees=10, scales=0.1, translation=0), RandomElastic(7, 7.5, locked_borders=2)]
    both_c = Compose(spatial, backend="compiled")
    affine_c = RandomAffine(degrees=10, scales=0.1, translation=0, backend="compiled")
    try:
        both_c(sample, generator=g)
        affine_c(sample, generator=g)
    except Exception as err:  # pragma: no cover - no compiler on this machine
        print(f"backend='compiled' unavailable: {err}")
        return
    fns["recon affine+elastic (compiled)"] = lambda: both_c(sample, generator=g)
    fns["recon affine (compiled)"] = lambda: affine_c(sample, generator=g)


CASE_HEADERS = ["case", "median ms", "min ms"]
TARGET_HEADERS = ["target", "measured", "wanted", "state"]
TITLE = "Augmentation: recon.preprocess.augment vs torchio"


def run(quick: bool, device: torch.device) -> dict:
    """Report section (benchmarks/run.py): augmentation of Colin27 against torchio.

    Quick: 3 repeats, batch of 2, no compiled backend (its first-call compile takes tens of seconds).
    """
    repeats, batch = (3, 2) if quick else (10, 8)
    results, rows, targets, setup = measure(device, repeats, batch, compiled=not quick)
    return {
        "title": TITLE,
        "tables": [{"caption": "Time per call", "headers": CASE_HEADERS, "rows": rows},
                   {"caption": "Targets of issue 11", "headers": TARGET_HEADERS, "rows": targets}],
        "figures": [],
        "notes": [setup],
        "results": results,
    }


def figure(path: Path) -> None:
    """Mid-axial slice of Colin27 under each kind of augmentation (PNG, written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from recon.data.io import atomic_path
    from recon.preprocess.augment import (Gibbs, Ghosting, Motion, RandomBiasField, RicianNoise, Spike, Undersample)

    volume, affine, _ = load_nifti(COLIN)
    x = torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32))[None]
    label = (x > 60).to(torch.uint8)
    g = torch.Generator().manual_seed(3)
    sample = {"t1": x, "label": label, "affine": affine}
    spatial = Compose([RandomAffine(degrees=10, scales=0.1, translation=5), RandomElastic(7, 7.5)], labels=("label",))
    moved = spatial(sample, generator=g)
    z = x.shape[-1] // 2
    sl = x[..., z]  # (1, X, Y) axial slice
    mask = torch.zeros(1, 1, sl.shape[-1], 1)
    mask[..., ::4, :] = 1
    mask[..., sl.shape[-1] // 2 - 8: sl.shape[-1] // 2 + 8, :] = 1
    panels = [
        ("original", sl),
        ("affine + elastic (one resampling)", moved["t1"][..., z]),
        ("label moved with it", moved["label"][..., z].float()),
        ("bias field + Rician noise (SNR 20)", RicianNoise(20)(RandomBiasField(0.4)(sl, generator=g), generator=g)),
        ("motion (k-space)", Motion([4.0, -3.0], [[3.0, 0.0], [-2.0, 4.0]], [0.45, 0.55])(sl)),
        ("ghosting", Ghosting(4, 0.6)(sl)),
        ("spike (herringbone)", Spike([(0.12, 0.08)], 0.05)(sl)),
        ("Gibbs (30% of k-space)", Gibbs(0.3)(sl)),
        ("undersampled 4x (zero-filled)", Undersample(mask=mask)(sl)),
    ]
    fig, axes = plt.subplots(3, 3, figsize=(9, 10))
    for ax, (title, img) in zip(axes.ravel(), panels):
        ax.imshow(np.rot90(img[0].numpy()), cmap="gray")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
    print(f"figure written to {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--figure", type=Path, default=None, help="only draw the example figure to this PNG")
    args = parser.parse_args(argv)
    if args.figure is not None:
        figure(args.figure)
        return 0
    device = torch.device(args.device)
    results, rows, targets, setup = measure(device, args.repeats, args.batch)
    table = setup + "\n\n" + markdown_table(CASE_HEADERS, rows) + "\n\n" + markdown_table(TARGET_HEADERS, targets)
    folder = save_results("augment", device, results, table, TITLE)
    print(table)
    print(f"written to {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
