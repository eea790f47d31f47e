"""Learned registration (issue 14) on held-out anatomy: Dice of tissue labels and time vs SimpleITK.

Held-out data never used in training (training: phantom seeds 0-15, validation 500-501):

* phantom pairs ``(600, 601), (602, 603)`` (recon.data.phantom.Subject at 2 mm,
  T1-weighted, even seeds 3 T / odd 1.5 T: two independent new anatomies per pair, each drawn
  by random affine + elastic deformation of the MNI152 or Colin27 tissue maps, with their own
  tissue parameters and texture);
* one real pair: the Colin27 T1 (data/colin27_t1.nii.gz, 1 mm, skull-stripped by its BET mask)
  registered to the MNI152 2009a T1 template (data/templates, 2 mm, skull-stripped); labels are
  the most probable GM/WM/CSF class of each one's own tissue maps (data/tissue/*, 1.5 mm).

For every pair and method (recon.register: ``affine`` and ``bspline`` = SimpleITK via
recon.preprocess.register with its defaults; ``learned`` = fast affine pre-alignment + the
bundled VoxelMorph network + its default instance-specific refinement; ``network`` = the same
without the refinement, ``refine=False``) the moving labels are carried to the fixed grid (nearest
neighbour) and the Dice of GM, WM and CSF with the fixed labels is computed (mean of the three).
Times: wall seconds of each recon.register call in this process, SimpleITK and torch on one
thread each; the learned time includes its affine pre-alignment, the network and the refinement.

    python -m benchmarks.registration [--quick] [--reuse-baselines] [--no-new-bspline]
    python -m benchmarks.registration --baselines-only phantom|real     # fill the baseline cache
    python -m benchmarks.registration --figure registration.png          # the mid-slice figure

The affine and B-spline results (Dice, seconds) can come from a cache
(``$RECON_HEADS_CACHE/registration-baselines.json``) filled by a full run or by
``--baselines-only`` processes running beside the main one (``--reuse-baselines``,
``--wait-for-baselines``); such rows are marked "cached": their times were measured in another
process of this script on the same machine at the same time, not in the main process.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
TEST_PAIRS = [(600, 601), (602, 603)]
LABEL_NAMES = {1: "GM", 2: "WM", 3: "CSF"}
METHODS = ("none", "affine", "bspline", "network", "learned", "prealign")


def _cache() -> Path:
    return Path(os.environ.get("RECON_HEADS_CACHE", str(Path.home() / ".cache" / "recon" / "heads")))


def phantom(seed: int, voxel_size: float = 2.0) -> dict:
    """Held-out phantom subject: ``t1w``, ``labels``, ``affine`` (cached as .npz)."""
    from recon.train.tasks_register import labelled_phantoms

    return labelled_phantoms([seed], voxel_size=voxel_size, cache=_cache())[0]


def real_pair() -> tuple[dict, dict]:
    """(fixed MNI152 2 mm template, moving skull-stripped Colin27 1 mm), each with labels + affine."""
    from recon.data.io import load_nifti

    def labels(name):
        maps, affine, _ = load_nifti(ROOT / "data" / "tissue" / f"{name}_tissue.nii.gz", dtype=np.float32)
        probs = np.moveaxis(maps, -1, 0) / 255.0
        background = np.clip(1.0 - probs.sum(0), 0, 1)
        return np.concatenate([background[None], probs]).argmax(0).astype(np.uint8), affine

    mni, mni_affine, _ = load_nifti(ROOT / "data" / "templates" / "mni152_2009a_t1_2mm.nii.gz")
    colin, colin_affine, _ = load_nifti(ROOT / "data" / "colin27_t1.nii.gz")
    mask, _, _ = load_nifti(ROOT / "data" / "templates" / "colin27_bet_mask.nii.gz")
    mni_labels, mni_label_affine = labels("mni152")
    colin_labels, colin_label_affine = labels("colin27")
    fixed = {"t1w": mni, "affine": mni_affine, "labels": mni_labels, "labels_affine": mni_label_affine}
    moving = {"t1w": colin * (mask > 0), "affine": colin_affine, "labels": colin_labels,
              "labels_affine": colin_label_affine}
    return fixed, moving


def dice(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Dice of GM, WM, CSF (labels 1, 2, 3) and their mean."""
    out = {}
    for k, name in LABEL_NAMES.items():
        x, y = a == k, b == k
        out[name] = 2.0 * float((x & y).sum()) / max(float(x.sum() + y.sum()), 1.0)
    out["mean"] = float(np.mean([out[n] for n in LABEL_NAMES.values()]))
    return out


def _fixed_labels(fixed: dict) -> np.ndarray:
    from recon.heads.registration import resample_to_grid

    if "labels_affine" not in fixed:
        return fixed["labels"]
    return resample_to_grid(fixed["labels"], fixed["labels_affine"], fixed["t1w"].shape, fixed["affine"], order=0)


def register_pair(fixed: dict, moving: dict, methods=METHODS, *, bspline_iterations: int | None = None,
                  weights=None, wait_for_weights: float = 0.0) -> dict:
    """Dice and seconds of each method on one pair (labels of ``moving`` warped to ``fixed``)."""
    import recon
    from recon.heads.registration import DeformableTransform

    truth = _fixed_labels(fixed)
    label_affine = moving.get("labels_affine", moving["affine"])
    out = {}
    for method in methods:
        if method in ("learned", "network") and wait_for_weights and weights:
            deadline = time.time() + wait_for_weights
            while not Path(weights).is_file() and time.time() < deadline:  # a training run still writing it
                time.sleep(10)
        t0, c0 = time.perf_counter(), time.process_time()
        if method == "none":
            transform = DeformableTransform(fixed["t1w"].shape, fixed["affine"], np.eye(4), None, np.eye(4),
                                            moving["t1w"].shape, moving["affine"])
        elif method == "prealign":
            learned = out.get("learned", {}).get("_transform")
            if learned is None:
                continue
            transform = DeformableTransform(learned.fixed_shape, learned.fixed_affine, learned.matrix, None,
                                            np.eye(4), learned.moving_shape, learned.moving_affine)
        elif method == "bspline" and bspline_iterations is not None:
            from recon.preprocess import register

            transform = register(fixed["t1w"], moving["t1w"], fixed_affine=fixed["affine"],
                                 moving_affine=moving["affine"], transform="bspline", num_threads=1,
                                 n_iterations=bspline_iterations)
        else:
            learned = method in ("learned", "network")
            extra = {"weights": weights} if learned and weights else {}
            if method == "network":
                extra["refine"] = False
            _, transform = recon.register(fixed["t1w"], moving["t1w"], "learned" if learned else method,
                                          fixed_affine=fixed["affine"], moving_affine=moving["affine"], num_threads=1,
                                          **extra)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        moved = transform.apply(moving["labels"], order=0, affine=label_affine)
        out[method] = {**dice(truth, moved), "seconds": seconds, "cpu_seconds": cpu}
        if method == "learned":
            out[method]["_transform"] = transform
        if method in ("learned", "network"):
            jac = transform.jacobian_determinant()
            out[method]["jacobian_min"] = float(jac.min())
            out[method]["folding_fraction"] = float((jac <= 0).mean())
    if "learned" in out:
        out["learned"].pop("_transform")
    return out


def figure(pair=TEST_PAIRS[0], weights=None):
    """Mid axial slice of a held-out pair: fixed, moving after the affine stage, after the network
    alone, after the refined network (the default), with the fixed image's WM boundary drawn on
    each (matplotlib figure)."""
    import matplotlib.pyplot as plt

    import recon
    from recon.heads.registration import DeformableTransform

    fixed, moving = phantom(pair[0]), phantom(pair[1])
    _, learned = recon.register(fixed["t1w"], moving["t1w"], fixed_affine=fixed["affine"],
                                moving_affine=moving["affine"], num_threads=1,
                                **({"weights": weights} if weights else {}))
    _, network = recon.register(fixed["t1w"], moving["t1w"], fixed_affine=fixed["affine"],
                                moving_affine=moving["affine"], num_threads=1, refine=False,
                                **({"weights": weights} if weights else {}))
    affine_only = DeformableTransform(learned.fixed_shape, learned.fixed_affine, learned.matrix, None, np.eye(4),
                                      learned.moving_shape, learned.moving_affine)
    z = fixed["t1w"].shape[2] // 2 + 8
    panels = [("fixed", fixed["t1w"], fixed["labels"]),
              ("moving, affine stage", affine_only.apply(moving["t1w"]), affine_only.apply(moving["labels"], 0)),
              ("moving, network", network.apply(moving["t1w"]), network.apply(moving["labels"], 0)),
              ("moving, network + refinement", learned.apply(moving["t1w"]), learned.apply(moving["labels"], 0))]
    fig, axes = plt.subplots(1, 4, figsize=(13, 4.2))
    vmax = float(np.percentile(fixed["t1w"], 99.5))
    for ax, (title, image, labels) in zip(axes, panels):
        ax.imshow(np.rot90(image[:, :, z]), cmap="gray", vmin=0, vmax=vmax)
        ax.contour(np.rot90(fixed["labels"][:, :, z] == 2), levels=[0.5], colors="tab:red", linewidths=0.7)
        truth, moved = fixed["labels"], labels
        d = dice(truth, moved)["mean"]
        ax.set_title(f"{title}\nDice GM/WM/CSF {d:.3f}" if title != "fixed" else "fixed (red: its WM boundary)")
        ax.axis("off")
    fig.suptitle(f"Held-out phantom pair {pair[0]} <- {pair[1]} (2 mm, slice z = {z})")
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    return fig


def _baseline_cache() -> Path:
    return _cache() / "registration-baselines.json"


def _store_baselines(key: str, value: dict) -> dict:
    """Add one pair's baselines to the cache file (re-read first: another process may write too)."""
    path = _baseline_cache()
    cache = json.loads(path.read_text()) if path.is_file() else {}
    cache[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    from recon.data.io import atomic_path

    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(cache, indent=1))
    return cache


def measure(quick: bool = False, reuse_baselines: bool = False, weights=None, wait_for_weights: float = 0.0,
            new_bspline: bool = True, wait_for_baselines: float = 0.0) -> dict:
    """Every pair, every method; the summary (means over the phantom pairs that have every method)
    and the targets.

    Args:
        quick: one phantom pair, no B-spline (about 75 s on an idle 2-core CPU even at 20 iterations),
            no real pair: the report's smoke run; the targets need the full run.
        reuse_baselines: take affine/B-spline results from the cache where present.
        weights: registration weights (default the bundled ones).
        wait_for_weights: seconds to wait for ``weights`` to appear.
        new_bspline: run B-spline where the cache has none (False: such pairs go without it).
        wait_for_baselines: seconds to wait for the cache entries of the pairs after the first (a
            ``--baselines-only`` process running beside this one).
    """
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        pairs = [(f"{a}-{b}", lambda a=a, b=b: (phantom(a), phantom(b))) for a, b in
                 (TEST_PAIRS[:1] if quick else TEST_PAIRS)]
        if not quick:
            pairs.append(("mni152<-colin27", real_pair))
        rows = {}
        for k, (key, load) in enumerate(pairs):
            deadline = time.time() + (wait_for_baselines if k > 0 and reuse_baselines else 0)
            while time.time() < deadline and (not _baseline_cache().is_file()
                                              or key not in json.loads(_baseline_cache().read_text())):
                time.sleep(10)
            cache = json.loads(_baseline_cache().read_text()) if reuse_baselines and _baseline_cache().is_file() else {}
            cached = cache.get(key, {}) if not quick else {}
            methods = [m for m in METHODS if m not in cached and ((new_bspline and not quick) or m != "bspline")
                       and not (quick and m == "network")]  # quick: the default learned call only
            res = register_pair(*load(), methods, bspline_iterations=None, weights=weights,
                                wait_for_weights=wait_for_weights)
            res.update({m: {**cached[m], "cached": True} for m in ("affine", "bspline") if m in cached})
            if not quick and not cached and "bspline" in res:
                _store_baselines(key, {m: res[m] for m in ("affine", "bspline")})
            rows[key] = res
    finally:
        torch.set_num_threads(torch_threads)
    return {"pairs": rows, **summarise(rows), "quick": quick}


def summarise(rows: dict) -> dict:
    """Phantom means and targets: each comparison over the phantom pairs that have both methods."""
    phantoms = [k for k in rows if k != "mni152<-colin27"]

    def mean(method, keys):
        return float(np.mean([rows[k][method]["mean"] for k in keys]))

    def having(*methods):
        return [k for k in phantoms if all(m in rows[k] for m in methods)]

    summary = {m: mean(m, having(m)) for m in METHODS if having(m)}
    targets: dict = {"speedup_vs_bspline": {k: rows[k]["bspline"]["seconds"] / rows[k]["learned"]["seconds"]
                                            for k in rows if "bspline" in rows[k] and "learned" in rows[k]}}
    if having("affine", "learned"):
        keys = having("affine", "learned")
        targets["learned_minus_affine"] = mean("learned", keys) - mean("affine", keys)
        targets["learned_minus_affine_pairs"] = keys
        targets["met_affine_plus_0.05"] = targets["learned_minus_affine"] >= 0.05
    if having("bspline", "learned"):
        keys = having("bspline", "learned")
        targets["bspline_minus_learned"] = mean("bspline", keys) - mean("learned", keys)
        targets["bspline_minus_learned_pairs"] = keys
        targets["met_within_0.03_of_bspline"] = targets["bspline_minus_learned"] <= 0.03
    real = rows.get("mni152<-colin27", {})
    if "bspline" in real and "learned" in real:
        targets["real_bspline_minus_learned"] = real["bspline"]["mean"] - real["learned"]["mean"]
    if "affine" in real and "learned" in real:
        targets["real_learned_minus_affine"] = real["learned"]["mean"] - real["affine"]["mean"]
    if targets["speedup_vs_bspline"]:
        targets["met_20x"] = min(targets["speedup_vs_bspline"].values()) >= 20
    return {"phantom_mean_dice": summary, "targets": targets}


def _rows(result: dict) -> list[list]:
    rows = []
    for key, res in result["pairs"].items():
        for m in METHODS:
            if m not in res:
                continue
            r = res[m]
            timed = m not in ("prealign", "none")
            folding = 100 * r["folding_fraction"] if "folding_fraction" in r else None
            rows.append([key, m, r["GM"], r["WM"], r["CSF"], r["mean"], r["seconds"] if timed else None,
                         r.get("cpu_seconds") if timed else None, folding, "yes" if r.get("cached") else ""])
    return rows


def run(quick: bool, device: torch.device) -> dict:
    """Report section: Dice after registration and time, learned vs SimpleITK (CPU; device unused).

    Quick: one phantom pair, affine and learned only (no B-spline, no network-only row), no real
    pair. Full: every
    pair; affine and B-spline results come from the baseline cache where it has them, and
    B-spline is not run where it has none (about an hour of a core per pair: fill the cache with
    ``--baselines-only phantom|real``; ``RECON_REGISTRATION_NEW_BSPLINE=1`` runs the missing ones).
    """
    new_bspline = os.environ.get("RECON_REGISTRATION_NEW_BSPLINE", "0") == "1"
    return section(measure(quick, reuse_baselines=not quick, new_bspline=new_bspline), quick)


def section(result: dict, quick: bool) -> dict:
    """The report section of a :func:`measure` result."""
    t = result["targets"]
    s = result["phantom_mean_dice"]
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    speed = ", ".join(f"{k}: {v:.1f}x" for k, v in t.get("speedup_vs_bspline", {}).items()) or "n/a"
    notes = [
        "Held-out phantom pairs (seeds 600-603; training 0-15) at 2 mm, T1w, and the real pair Colin27 (1 mm, "
        "BET-stripped) -> MNI152 2009a template (2 mm). Dice of GM/WM/CSF labels of the moving subject carried to the "
        "fixed grid by nearest neighbour. none = no registration (world coordinates as given); prealign = the learned "
        "method's own fast affine stage alone; network = that stage + the network's field (refine=False); learned = "
        "the default recon.register(method='learned'): the network's field refined for the pair (Adam on local NCC + "
        "smoothness, coarse to fine); affine / bspline = recon.preprocess.register defaults (Mattes MI). "
        "det J <= 0 %: share of the deformable field's voxels with a non-positive Jacobian determinant (folding).",
        f"Phantom means (each method over the phantom pairs it ran on): affine {fmt(s.get('affine'))}, learned "
        f"{fmt(s.get('learned'))}, bspline {fmt(s.get('bspline'))}. Targets, each over the phantom pairs that have "
        f"both methods: learned - affine = {fmt(t.get('learned_minus_affine'))} on "
        f"{', '.join(t.get('learned_minus_affine_pairs', []))} (target >= 0.05: {t.get('met_affine_plus_0.05')}); "
        f"bspline - learned = {fmt(t.get('bspline_minus_learned'))} on "
        f"{', '.join(t.get('bspline_minus_learned_pairs', []))} (target <= 0.03: "
        f"{t.get('met_within_0.03_of_bspline')}). B-spline / learned wall time: {speed} (target >= 20: "
        f"{t.get('met_20x')}); the learned time includes its affine pre-alignment, the network and the refinement. "
        f"Network alone (no refinement): {fmt(s.get('network'))}. Real pair: learned - affine = "
        f"{fmt(t.get('real_learned_minus_affine'))}, bspline - learned = {fmt(t.get('real_bspline_minus_learned'))}.",
        "Times: wall and CPU seconds of each call, SimpleITK and torch on 1 thread, on a 2-core CPU shared with other "
        "jobs; rows marked cached were measured by an earlier process of this script (--baselines-only) running at "
        "the same time on the same machine, not in this process." + (
            " QUICK run: one phantom pair, no B-spline, no network-only row; not the target measurement." if quick
            else ""),
    ]
    return {
        "title": "Learned registration (VoxelMorph) vs SimpleITK (issue 14)",
        "tables": [{"caption": "Dice after registration (moving labels on the fixed grid) and seconds per call",
                    "headers": ["pair", "method", "GM", "WM", "CSF", "mean", "wall s", "CPU s", "det J <= 0 %",
                                "cached"],
                    "rows": _rows(result)}],
        "figures": [],
        "notes": notes,
        "results": result,
    }


def main(argv=None) -> int:
    import argparse

    from benchmarks.common import markdown_table, save_results

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reuse-baselines", action="store_true")
    parser.add_argument("--weights", default=None, help="registration weights (default: the bundled 'register')")
    parser.add_argument("--wait-for-weights", type=float, default=0.0, metavar="SECONDS",
                        help="wait up to this long for --weights to appear (a training run beside this one)")
    parser.add_argument("--no-new-bspline", action="store_true",
                        help="B-spline only from the cache (pairs without it are reported without B-spline)")
    parser.add_argument("--wait-for-baselines", type=float, default=0.0, metavar="SECONDS",
                        help="wait up to this long for the cached baselines of the pairs after the first")
    parser.add_argument("--figure", default=None, metavar="PNG", help="only draw the mid-slice figure into PNG")
    parser.add_argument("--baselines-only", choices=("phantom", "real"), default=None,
                        help="only fill the affine/B-spline cache of the phantom pairs after the first, or of the real pair")
    args = parser.parse_args(argv)
    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        torch.set_num_threads(1)
        figure(weights=args.weights).savefig(args.figure, dpi=100)
        return 0
    if args.baselines_only:
        torch.set_num_threads(1)
        todo = ([(f"{a}-{b}", lambda a=a, b=b: (phantom(a), phantom(b))) for a, b in TEST_PAIRS[1:]]
                if args.baselines_only == "phantom" else [("mni152<-colin27", real_pair)])
        for key, load in todo:
            cache = json.loads(_baseline_cache().read_text()) if _baseline_cache().is_file() else {}
            if key not in cache:
                cache = _store_baselines(key, register_pair(*load(), ("affine", "bspline")))
            print(key, cache[key])
        return 0
    result = measure(args.quick, args.reuse_baselines, args.weights, args.wait_for_weights,
                     new_bspline=not args.no_new_bspline, wait_for_baselines=args.wait_for_baselines)
    sec = section(result, args.quick)
    text = "\n\n".join(sec["notes"]) + "\n\n" + "\n\n".join(
        f"{t['caption']}\n\n{markdown_table(t['headers'], t['rows'])}" for t in sec["tables"])
    if not args.quick:
        folder = save_results("registration", torch.device("cpu"), result, text, sec["title"])
        print(f"written to {folder}")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
