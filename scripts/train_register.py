"""Reproduce the bundled registration network data/weights/heads/register.pt (issue 14).

Trained on CPU (1 thread) on phantom subjects with seeds 0-15 at 2 mm
(recon.data.phantom.Subject: new anatomies by random affine + elastic deformation of the
MNI152 / Colin27 tissue maps; even seeds 3 T, odd seeds 1.5 T), T1-weighted, with their tissue
labels for the Dice term; validated on seeds 500-501. The held-out scores of the model card come
from benchmarks/registration.py (phantom seeds 600-603, never trained on, and the real pair
Colin27 -> MNI152 template).

    python scripts/train_register.py train [--budget 1200] [--steps 4000] [--cache DIR]
    python -m benchmarks.registration                 # held-out scores -> benchmarks/results/cpu/registration.*
    python scripts/train_register.py card             # weights + card -> data/weights/heads/register.{pt,json}
    python scripts/train_register.py refine-validation [--cache DIR]  # refinement on validation pairs -> card
    python scripts/train_register.py card --keep-weights  # only the card's held-out block, weights as they are

The default instance-specific refinement of recon.register (recon.heads.registration.REFINE_LEVELS,
REFINE_SETTINGS: Adam steps on the pair's own loss after the network) was chosen on validation
pairs (seeds 500-501, 504-505, 506-507: never trained on, not held out); ``refine-validation``
measures the network alone and the default refinement on them and records both in the card.

Training stops at its step count or its time budget, whichever comes first; the card records
the steps done and the ``recon train`` command that repeats the run with that step count
(training is deterministic given the steps, on one thread; the command's data path has no
labels unless recon.train.tasks_heads.phantom_volumes stores them, so this script passes
labelled volumes itself).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recon.data.io import atomic_path  # noqa: E402
from recon.train.tasks_heads import HeadConfig, train_head  # noqa: E402
from recon.train.tasks_register import labelled_phantoms  # noqa: E402

OUT = ROOT / "data" / "weights" / "heads"
TRAIN_SEEDS = list(range(0, 16))
VAL_SEEDS = [500, 501]
CONFIG = dict(task="register", source="t1w", chans=16, depth=3, batch_size=1, lr=1e-3, steps=4000,
              options={"similarity": "ncc", "lambda_smooth": 1.0, "lambda_dice": 1.0, "integration_steps": 7,
                       "work_voxel": 4.0, "strip_prob": 0.3})


def command(config: HeadConfig, steps: int) -> str:
    o = config.options
    return (f"recon train --task register --source t1w --chans {config.chans} --depth {config.depth} "
            f"--batch-size {config.batch_size} --lr {config.lr:g} --steps {steps} --train-data phantom:0-15 "
            f"--val-data phantom:500-501 --similarity {o['similarity']} --lambda-smooth {o['lambda_smooth']:g} "
            f"--lambda-dice {o['lambda_dice']:g} --integration-steps {o['integration_steps']} "
            f"--work-voxel {o['work_voxel']:g} --strip-prob {o['strip_prob']:g} --num-threads 1 "
            "--output-dir runs/register (with tissue labels: scripts/train_register.py)")


def train(args) -> None:
    cache = Path(args.cache) if args.cache else None
    run_dir = Path(args.run_dir)
    config = HeadConfig(**{**CONFIG, "steps": args.steps}, time_budget=args.budget, output_dir=str(run_dir),
                        val_data="phantom:500-501", train_data="phantom:0-15", num_threads=1, progress=args.progress,
                        checkpoint_every=100)
    t0 = time.perf_counter()
    data = labelled_phantoms(TRAIN_SEEDS, cache=cache)
    val = labelled_phantoms(VAL_SEEDS, cache=cache)
    logging.info("data ready in %.0f s", time.perf_counter() - t0)
    result = train_head(config, data=data, val_data=val)
    card = {"name": "register", "task": "register", "steps": result.steps, "train_seconds": round(result.seconds, 1),
            "train_data": "phantom:0-15", "validation": result.validation,
            "command": command(config, result.steps),
            "train_subjects": "phantom seeds 0-15 (2 mm, T1w; even 3 T, odd 1.5 T) with GM/WM/CSF labels",
            "machine": "2-core CPU shared with other jobs, 1 thread"}
    (run_dir / "card.json").write_text(json.dumps(card, indent=1))
    logging.info("trained %d steps in %.0f s; validation %s", result.steps, result.seconds, result.validation)


REFINE_VALIDATION_PAIRS = [(500, 501), (504, 505), (506, 507)]


def refine_validation(args) -> None:
    """Dice of GM/WM/CSF (2 mm) of the network alone and of the default refinement on the
    validation pairs, written into the card's ``refinement`` block."""
    import torch

    import recon
    from recon.heads.registration import REFINE_LEVELS, REFINE_SETTINGS

    torch.set_num_threads(1)
    cache = Path(args.cache) if args.cache else None
    rows = {}
    for a, b in REFINE_VALIDATION_PAIRS:
        fixed, moving = labelled_phantoms([a, b], cache=cache)
        row = {}
        for name, refine in (("network", False), ("refined", True)):
            t0 = time.perf_counter()
            _, transform = recon.register(fixed["t1w"], moving["t1w"], fixed_affine=fixed["affine"],
                                          moving_affine=moving["affine"], num_threads=1, refine=refine)
            seconds = time.perf_counter() - t0
            moved = transform.apply(moving["labels"], order=0)
            dice = [2.0 * np.sum((moved == k) & (fixed["labels"] == k))
                    / max(np.sum(moved == k) + np.sum(fixed["labels"] == k), 1) for k in (1, 2, 3)]
            jac = transform.jacobian_determinant()
            row[name] = {"dice_mean": round(float(np.mean(dice)), 4), "seconds": round(seconds, 1),
                         "folding_percent": round(100 * float((jac <= 0).mean()), 4)}
        rows[f"{a}-{b}"] = row
        logging.info("%d-%d %s", a, b, row)
    block = {
        "method": "instance-specific optimisation (Balakrishnan et al. 2019, sec. IV-E): Adam on the pair's own "
                  "-local NCC + lambda_smooth * |grad u|^2, starting from the network's field, coarse to fine",
        "levels_voxel_mm_steps": [[v, n] for v, n in REFINE_LEVELS],
        "settings": REFINE_SETTINGS,
        "chosen_on": "validation phantom pairs 500-501, 504-505, 506-507 (never trained on, not held out); "
                     "lambda_smooth 0.3/1/2/3/5/10/30, step counts and window compared (docs/registration.md)",
        "validation": rows,
        "validation_mean_dice": {m: round(float(np.mean([r[m]["dice_mean"] for r in rows.values()])), 4)
                                 for m in ("network", "refined")},
        "measured_by": "python scripts/train_register.py refine-validation",
    }
    path = OUT / "register.json"
    base = json.loads(path.read_text())
    base["refinement"] = block
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(base, indent=1))


def card(args) -> None:
    """Copy the trained weights into data/weights/heads and write the card with the held-out
    scores of benchmarks/results/cpu/registration.json (``python -m benchmarks.registration``);
    with ``--keep-weights`` only the held-out block of the bundled card is rewritten."""
    run_dir = Path(args.run_dir)
    base = json.loads(((OUT / "register.json") if args.keep_weights else (run_dir / "card.json")).read_text())
    results = json.loads((ROOT / "benchmarks" / "results" / "cpu" / "registration.json").read_text())
    pairs = {key: {m: {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}
                   for m, r in res.items()} for key, res in results["pairs"].items()}
    base["held_out"] = {
        "data": "phantom pairs (600,601), (602,603) at 2 mm (never trained on) and the real pair "
                "Colin27 (BET-stripped) -> MNI152 2009a template; Dice of GM/WM/CSF on the fixed grid",
        "phantom_mean_dice": {k: round(v, 4) for k, v in results["phantom_mean_dice"].items()},
        "targets": results["targets"],
        "pairs": pairs,
        "measured_by": "python -m benchmarks.registration --reuse-baselines --no-new-bspline "
                       "(benchmarks/results/cpu/registration.md)",
    }
    if args.note:
        base["note"] = args.note
    if not args.keep_weights:
        shutil.copyfile(run_dir / "register.pt", OUT / "register.pt")
    with atomic_path(OUT / "register.json") as tmp:
        Path(tmp).write_text(json.dumps(base, indent=1))


def main(argv=None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--budget", type=float, default=1200.0, help="time budget, seconds")
    t.add_argument("--steps", type=int, default=CONFIG["steps"])
    t.add_argument("--cache", default=None, help="folder for the generated phantom volumes")
    t.add_argument("--run-dir", default="runs/register")
    t.add_argument("--progress", action="store_true")
    c = sub.add_parser("card")
    c.add_argument("--run-dir", default="runs/register")
    c.add_argument("--note", default=None, help="free text for the card (e.g. how the run was split)")
    c.add_argument("--keep-weights", action="store_true", help="update the bundled card's held-out block only")
    r = sub.add_parser("refine-validation")
    r.add_argument("--cache", default=None, help="folder for the generated phantom volumes")
    args = p.parse_args(argv)
    {"train": train, "card": card, "refine-validation": refine_validation}[args.cmd](args)


if __name__ == "__main__":
    main()
