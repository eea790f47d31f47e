"""Reproduce the bundled super-resolution weights in data/weights/heads/ (issue 14).

Every network is trained on CPU (1 thread) on phantom subjects with seeds 0-5 at 1 mm
(recon.data.phantom.Subject; T1w, T2w, FLAIR and PD of each; even seeds 3 T, odd 1.5 T), low
resolution by k-space truncation (recon.heads.superres.kspace_truncate). Nothing real is trained
on: the held-out scores in the model cards (benchmarks/superres.py) come from phantom subjects
200-203 and the shipped real images (Colin27 T1, the dipy T1 slice).

    python scripts/train_superres.py train [--only NAME ...] [--budget-scale 1.0] [--cache DIR] [--runs DIR]
    python scripts/train_superres.py cards [--results benchmarks/results/cpu/superres.json]

Each training stops at its step count or its time budget, whichever comes first; the card
records the steps done and the command that repeats the run exactly (``--exact-steps N``:
deterministic given the steps, on one thread), and the equivalent ``recon train --task ...`` line
(the head-task loop, which reads 2 mm phantoms).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recon.data.io import atomic_path  # noqa: E402
from recon.train.tasks_superres import SuperresConfig, load_superres, train_superres  # noqa: E402

OUT = ROOT / "data" / "weights" / "heads"
TRAIN = "phantom:0-5"

#: name -> (SuperresConfig fields, time budget in seconds); run in this order (x4 starts from x2);
#: the 2-D x2/x4 networks predate the bias-free default (SuperresConfig.bias) and keep their biases
RUNS: dict[str, tuple[dict, float]] = {
    "superres-2d-x2": (dict(task="superres", dims=2, scales=[(2, 2)], chans=32, num_blocks=4, batch_size=8,
                            patch_size=48, lr=1e-3, bias=True, steps=4000), 720.0),
    "superres-2d-x4": (dict(task="superres", dims=2, scales=[(4, 4)], chans=32, num_blocks=4, batch_size=8,
                            patch_size=64, lr=5e-4, bias=True, steps=4000, init_from="superres-2d-x2"), 600.0),
    "superres-3d-thick": (dict(task="superres", dims=3, scales=[(1, 1, 2), (1, 1, 3), (1, 1, 4)], chans=16,
                               num_blocks=3, batch_size=4, patch_size=24, lr=1e-3, scale_input=True, bias=False,
                               crop_taper=0.5, steps=4000), 1200.0),
    "superres-2d-thick": (dict(task="superres", dims=2, scales=[(1, 2), (1, 3), (1, 4)], chans=32, num_blocks=4,
                               batch_size=8, patch_size=48, lr=1e-3, scale_input=True, bias=False, planes="through",
                               crop_taper=0.5, steps=4000), 900.0),
    "srgan-3d-x2": (dict(task="srgan", dims=3, scales=[(2, 2, 2)], chans=16, num_blocks=3, disc_chans=8,
                         batch_size=4, patch_size=24, lr=5e-4, adv_weight=3e-4, pretrain_steps=1000,
                         interpolation="zero_fill", bias=False, crop_taper=0.5, steps=3000), 900.0),
}


def command(name: str, fields: dict, steps: int) -> str:
    """The ``recon train`` line of the same run through the head-task loop (which reads 2 mm phantoms
    for ``phantom:A-B``; this script reads 1 mm ones)."""
    parts = ["recon train", f"--task {fields['task']}", f"--dims {fields['dims']}",
             "--scales " + " ".join(",".join(map(str, s)) if len(set(s)) > 1 else str(s[0]) for s in fields["scales"])]
    names = {"num_blocks": "depth", "init_from": "init-weights"}
    for key, value in fields.items():
        if key in ("task", "dims", "scales", "steps"):
            continue
        if key == "init_from":
            value = f"data/weights/heads/{value}.pt"
        if key == "bias":  # bias-free is the default; --conv-bias asks for biases
            if value:
                parts.append("--conv-bias")
            continue
        flag = f"--{names.get(key, key).replace('_', '-')}"
        parts.append(flag if value is True else f"{flag} {value}")
    parts += [f"--steps {steps}", f"--train-data {TRAIN}", f"--output-dir runs/{name}", "--num-threads 1"]
    return " ".join(parts)


def train(only: list[str] | None, budget_scale: float, cache: str | None, runs: Path,
          exact_steps: int | None = None) -> None:
    for name, (fields, budget) in RUNS.items():
        if only and name not in only:
            continue
        fields = dict(fields)
        if exact_steps is not None:  # repeat a bundled run exactly: its recorded step count, no time budget
            fields["steps"], budget = exact_steps, None
        if fields.get("init_from"):
            fields["init_from"] = str(OUT / f"{fields['init_from']}.pt")
        config = SuperresConfig(**fields, train_data=TRAIN, output_dir=str(runs / name), name=name,
                                time_budget=None if budget is None else budget * budget_scale, num_threads=1,
                                data_cache=cache, progress=False)
        result = train_superres(config)
        names = [name] + ([f"{name}-mse"] if config.task == "srgan" else [])
        for n in names:
            _, cfg, card = load_superres(runs / name / f"{n}.pt")
            shown = {k: v for k, v in RUNS[name][0].items()}
            steps = card["steps"] if not n.endswith("-mse") else result.steps
            card.update({
                "command": f"python scripts/train_superres.py train --only {name} --exact-steps {steps}" + (
                    f" (this file: the content-only snapshot at step {card['steps']} of that run)"
                    if n.endswith("-mse") else ""),
                "recon_train_equivalent": command(name, shown, steps) + " (2 mm phantoms through the head loop; "
                                                                        "the script trains on 1 mm ones)",
                "train_subjects": "phantom seeds 0-5 (1 mm; T1w, T2w, FLAIR, PD; even 3 T, odd 1.5 T)",
                "machine": "2-core CPU shared with other jobs, 1 thread",
                "config": {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("output_dir", "data_cache")},
            })
            blob = torch.load(runs / name / f"{n}.pt", map_location="cpu", weights_only=True)
            blob["card"] = card
            with atomic_path(OUT / f"{n}.pt") as tmp:
                torch.save(blob, tmp)
            with atomic_path(OUT / f"{n}.json") as tmp:
                Path(tmp).write_text(json.dumps(card, indent=1, default=list))
        logging.info("%s: %d steps in %.0f s", name, result.steps, result.seconds)
        shutil.copy(runs / name / "history.json", runs / f"{name}-history.json")


def cards(results_path: Path) -> None:
    """Add the held-out figures of benchmarks/superres.py's results to the model cards."""
    results = json.loads(results_path.read_text())
    for name, scores in results.get("cards", {}).items():
        path = OUT / f"{name}.json"
        if not path.is_file():
            continue
        card = json.loads(path.read_text())
        card["held_out"] = scores
        with atomic_path(path) as tmp:
            Path(tmp).write_text(json.dumps(card, indent=1))


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--only", nargs="+", default=None, choices=list(RUNS))
    t.add_argument("--budget-scale", type=float, default=1.0)
    t.add_argument("--cache", default=str(Path.home() / ".cache" / "recon" / "heads"))
    t.add_argument("--runs", default="/tmp/superres_runs")
    t.add_argument("--exact-steps", type=int, default=None, help="train exactly this many steps, no time budget")
    c = sub.add_parser("cards")
    c.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "cpu" / "superres.json"))
    args = parser.parse_args(argv)
    if args.cmd == "train":
        train(args.only, args.budget_scale, args.cache, Path(args.runs), args.exact_steps)
    else:
        cards(Path(args.results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
