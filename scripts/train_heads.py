"""Reproduce the bundled image-head weights in data/weights/heads/ (issue 13).

Every model is trained on CPU, on phantom subjects with seeds 0-11 at 2 mm
(recon.data.phantom.Subject; even seeds 3 T, odd seeds 1.5 T), the GAN and the denoiser also on
the shipped real Colin27 T1 (data/colin27_t1.nii.gz, brain mask data/templates/colin27_bet_mask,
at 2 mm and, for the denoiser, at 1 mm in all three orientations; the denoiser's stage 5 also on
phantom seeds 0-1 imaged at 1 mm, ``one_mm_seeds``). Validation subjects (seeds
100-101; the runs' own ``validation`` scores in the cards) tune the settings and the baselines of
the benchmark; held-out subjects (seeds 200-203) and the real dipy slices (never trained on) give
the scores in the model cards (benchmarks/heads.py computes them). A run with ``init`` starts
from the weights another run wrote (a fine-tuning stage; train that one first).

    python scripts/train_heads.py train [--only NAME ...] [--budget-scale 1.0] [--cache DIR]
    python scripts/train_heads.py cards          # held-out scores -> data/weights/heads/<name>.json
    python scripts/train_heads.py ensemble-weight  # the validation sweep behind ENSEMBLE_UNET_WEIGHT
    python scripts/train_heads.py slice-weight     # ... behind SLICE_ENSEMBLE_WEIGHTS (after the c12 runs)

Each training stops at its step count or its time budget, whichever comes first; the card
records the steps done and the exact ``recon train`` command that repeats the run with that
step count (training is deterministic given the steps, on one thread).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recon.data.io import atomic_path, load_nifti  # noqa: E402
from recon.train.tasks_heads import HeadConfig, load_head, phantom_volumes, train_head  # noqa: E402

OUT = ROOT / "data" / "weights" / "heads"
TRAIN_SEEDS = list(range(0, 12))
VAL_SEEDS = [100, 101]
TEST_SEEDS = [200, 201, 202, 203]

#: name -> (HeadConfig fields, time budget in seconds); "init": the run whose weights it starts from;
#: "ship": False for a stage that is not bundled (its weights stay in CACHE/runs/<name>/)
RUNS: dict[str, tuple[dict, float]] = {
    # session 2: 8000 steps with a cosine learning rate (validation 100-105: 23.8 dB vs 23.6 for the
    # first 5000-step constant-rate model, both flip-averaged); session 3: fine-tuning it for 3000
    # steps on 48 subjects (seeds 0-47, lr 1e-3 cosine) scored 23.5 dB on 100-105, 4000 more steps on
    # the same 12 (lr 5e-4 cosine) 23.81 vs 23.80: neither was kept
    "synthesis-unet-t1w-flair": (dict(task="synthesis", arch="unet", source="t1w", target="flair", chans=8, depth=3,
                                      batch_size=4, patch_size=128, lr=2e-3, lr_schedule="cosine", steps=8000), 900.0),
    # session 4: two more T1w -> FLAIR slice networks (12 channels, seeds 1 and 2; "dest": the
    # weight-file name) for the slice ensemble of recon.synthesize (recon.heads.synthesis.SliceEnsemble,
    # weights SLICE_ENSEMBLE_WEIGHTS from the `slice-weight` validation sweep below)
    "synthesis-unet-t1w-flair-c12": (dict(task="synthesis", arch="unet", source="t1w", target="flair", chans=12,
                                          depth=3, batch_size=4, patch_size=128, lr=2e-3, lr_schedule="cosine",
                                          seed=1, steps=8000, dest="synthesis-unet-t1w-flair-c12"), 3300.0),
    "synthesis-unet-t1w-flair-c12s2": (dict(task="synthesis", arch="unet", source="t1w", target="flair", chans=12,
                                            depth=3, batch_size=4, patch_size=128, lr=2e-3, lr_schedule="cosine",
                                            seed=2, steps=8000, dest="synthesis-unet-t1w-flair-c12s2"), 1800.0),
    "synthesis-unet-t1w-t2w": (dict(task="synthesis", arch="unet", source="t1w", target="t2w", chans=8, depth=3,
                                    batch_size=4, patch_size=128, lr=2e-3, steps=5000), 300.0),
    "synthesis-resnet3d-t1w-flair": (dict(task="synthesis", arch="resnet3d", source="t1w", target="flair", chans=8,
                                          depth=2, batch_size=2, patch_size=24, lr=2e-3, crop_axial=(0.2, 0.8),
                                          steps=5000), 180.0),
    "synthesis-resnet3d-t1w-t2w": (dict(task="synthesis", arch="resnet3d", source="t1w", target="t2w", chans=8,
                                        depth=2, batch_size=2, patch_size=24, lr=2e-3, crop_axial=(0.2, 0.8),
                                        steps=5000), 180.0),
    # session 4 (bundled): generators that cannot move or invent structure (`--arch tissue
    # --dilations` with no values: a learned 49-knot intensity table, receptive field 1 pixel) on
    # skull-stripped slices, cycle weight 1 ramped in over 2000 steps, no identity loss, 8-channel
    # discriminators, cosine learning rate, tables started as the copy (--tissue-init identity: 4 of 4
    # seeds succeed on validation, 3 of 4 from the flat start); validation (100-101) 19.4 dB / SSIM 0.57 vs histogram
    # matching 10.1 / 0.32 and 10.9 / 0.13 for the session-2 U-Net CycleGAN (chans 8, depth 3,
    # batch 1, lr 2e-4, 1428 steps, identity 0.5). Not kept (docs/heads.md): the same with a
    # 17 x 17 dilated context branch (14.7 / 0.37 at 2000 steps), cycle weight 10 (12-15 dB,
    # SSIM 0.1-0.3), whole heads instead of skull-stripped slices (10.0 / 0.33)
    "cyclegan-t1w-t2w": (dict(task="cyclegan", arch="tissue", source="t1w", target="t2w", chans=16, depth=3,
                              batch_size=2, patch_size=128, lr=2e-4, lr_schedule="cosine", lambda_identity=0.0,
                              steps=3000, val_every=500,
                              options={"skull_strip": True, "dilations": [], "knots": 49, "tissue_init": "identity",
                                       "lambda_cycle": 1.0, "cycle_warmup": 2000, "disc_chans": 8}), 900.0),
    # (session 3: `--upsample resize`, 4866 steps, was further from the validation slices' spectrum,
    # 0.197 vs 0.152 decades, and histogram, W1 0.052 vs 0.035, and was not shipped)
    # (session 4: `--upsample blur`, fine-tuned from this run's last.ckpt or from scratch with seeds 0
    # and 1, and this run resumed to 8219 steps: none beat it on the validation slices on both spectrum
    # and W1 (docs/heads.md "GAN spectrum"); not shipped)
    "gan": (dict(task="gan", chans=16, latent_dim=64, image_size=64, batch_size=32, lr=2e-4, steps=5000), 180.0),
    # stage 1: axial slices; stage 2 (fine-tuning): zero margins (pure Rician background) and
    # slices in every orientation; stage 3 below
    "denoise-stage1": (dict(task="denoise", chans=16, depth=3, batch_size=8, patch_size=48, lr=1e-3, steps=10000,
                            ship=False), 1140.0),
    "denoise-stage2": (dict(task="denoise", chans=16, depth=3, batch_size=8, patch_size=48, lr=5e-4,
                            lr_schedule="cosine", steps=3000, init="denoise-stage1",
                            options={"background_pad": 48, "all_orientations": True}, ship=False), 600.0),
    # stage 3 (session 3): Immerkaer sigma estimator (the network's noise input changed) and
    # skull-stripped slices (brain mask x image) 30 % of the time
    "denoise-stage3": (dict(task="denoise", chans=16, depth=3, batch_size=8, patch_size=48, lr=5e-4,
                            lr_schedule="cosine", steps=6000, init="denoise-stage2",
                            options={"background_pad": 48, "all_orientations": True, "skull_strip": 0.3},
                            ship=False), 1500.0),
    # stage 4 (session 3): more high-SNR noise draws (SNR log-uniform in 4-60)
    "denoise-stage4": (dict(task="denoise", chans=16, depth=3, batch_size=8, patch_size=48, lr=3e-4,
                            lr_schedule="cosine", steps=6000, init="denoise-stage3", snr_range=(4.0, 60.0),
                            options={"background_pad": 48, "all_orientations": True, "skull_strip": 0.3},
                            ship=False), 1500.0),
    # stage 5 (session 4, the bundled file): phantom subjects 0-1 imaged at 1 mm join the training
    # slices (real scans are often 1 mm; the phantoms were all 2 mm). Validation (MNI152 coronal,
    # phantoms 100-101 at 2 mm, phantom 100 at 1 mm): docs/heads.md
    "denoise": (dict(task="denoise", chans=16, depth=3, batch_size=8, patch_size=48, lr=2e-4, lr_schedule="cosine",
                     steps=4000, seed=5, init="denoise-stage4", snr_range=(4.0, 60.0), one_mm_seeds=[0, 1],
                     options={"background_pad": 48, "all_orientations": True, "skull_strip": 0.3}), 1500.0),
}


def colin27_2mm() -> dict[str, np.ndarray]:
    """The shipped real Colin27 T1 and its BET mask, block-averaged to 2 mm."""
    t1, _, _ = load_nifti(ROOT / "data" / "colin27_t1.nii.gz")
    mask, _, _ = load_nifti(ROOT / "data" / "templates" / "colin27_bet_mask.nii.gz")
    t = torch.from_numpy(np.ascontiguousarray(t1))[None, None]
    m = torch.from_numpy(np.ascontiguousarray(mask))[None, None]
    t2 = torch.nn.functional.avg_pool3d(t, 2, ceil_mode=True)[0, 0].numpy()
    m2 = torch.nn.functional.avg_pool3d(m, 2, ceil_mode=True)[0, 0].numpy() > 0.5
    return {"t1w": t2.astype(np.float32), "mask": m2}


def colin27_1mm() -> dict[str, np.ndarray]:
    """The shipped real Colin27 T1 (1 mm) and its BET mask."""
    t1, _, _ = load_nifti(ROOT / "data" / "colin27_t1.nii.gz")
    mask, _, _ = load_nifti(ROOT / "data" / "templates" / "colin27_bet_mask.nii.gz")
    return {"t1w": np.ascontiguousarray(t1, dtype=np.float32), "mask": mask > 0.5}


def _weight_name(fields: dict) -> str:
    """The weight-file name a run of these fields writes (``synthesis-unet-t1w-flair``, ``denoise``)."""
    keep = {k: v for k, v in fields.items() if k not in ("steps", "init", "ship", "train_seeds", "one_mm_seeds", "dest")}
    return HeadConfig(**keep).name


def command(name: str, fields: dict, steps: int) -> str:
    parts = ["recon train", f"--task {fields['task']}"]
    for key, value in fields.items():
        if key in ("task", "steps", "init", "ship", "options", "train_seeds", "one_mm_seeds", "dest"):
            continue
        flag = "--" + key.replace("_", "-")
        parts.append(f"{flag} {' '.join(map(str, value))}" if isinstance(value, tuple) else f"{flag} {value}")
    for key, value in fields.get("options", {}).items():
        flag = "--" + key.replace("_", "-")
        parts.append(flag if value is True else f"{flag} {' '.join(map(str, value))}".rstrip()
                     if isinstance(value, (list, tuple)) else f"{flag} {value}")
    if fields.get("init"):
        parts.append(f"--init-weights runs/{fields['init']}/{_weight_name(fields)}.pt")
    seeds = fields.get("train_seeds", TRAIN_SEEDS)
    parts += [f"--steps {steps}", f"--train-data phantom:{seeds[0]}-{seeds[-1]}",
              f"--val-data phantom:{VAL_SEEDS[0]}-{VAL_SEEDS[-1]}", f"--output-dir runs/{name}", "--num-threads 1"]
    if fields["task"] in ("gan", "denoise"):
        parts.append("(+ the Colin27 T1 volume" + (f" and phantom seeds {fields['one_mm_seeds']} at 1 mm"
                                                    if fields.get("one_mm_seeds") else "") + ": scripts/train_heads.py)")
    return " ".join(parts)


def train(names: list[str], budget_scale: float, cache: str, resume: bool = False) -> None:
    data = phantom_volumes(TRAIN_SEEDS, ["t1w"], cache=cache)
    val = phantom_volumes(VAL_SEEDS, ["t1w"], cache=cache)
    real = colin27_2mm()
    OUT.mkdir(parents=True, exist_ok=True)
    for name in names:
        fields, budget = RUNS[name]
        fields = dict(fields)
        weight_name = _weight_name(fields)
        init, ship = fields.pop("init", None), fields.pop("ship", True)
        weight_name = fields.pop("dest", weight_name)  # the bundled file's name (the run's own file keeps the task's)
        seeds = fields.pop("train_seeds", TRAIN_SEEDS)
        one_mm = fields.pop("one_mm_seeds", [])
        init_path = None
        if init:
            init_fields = {k: v for k, v in RUNS[init][0].items()
                           if k not in ("init", "ship", "train_seeds", "one_mm_seeds", "dest")}
            init_path = str(Path(cache) / "runs" / init / f"{_weight_name(init_fields)}.pt")
        config = HeadConfig(**fields, output_dir=str(Path(cache) / "runs" / name), resume=resume,
                            time_budget=budget * budget_scale, num_threads=1,
                            train_data=f"phantom:{seeds[0]}-{seeds[-1]}",
                            val_data=f"phantom:{VAL_SEEDS[0]}-{VAL_SEEDS[-1]}", init_weights=init_path)
        run_data = data if seeds == TRAIN_SEEDS else phantom_volumes(seeds, ["t1w"], cache=cache)
        items = run_data + [real] if fields["task"] in ("gan", "denoise") else run_data
        if fields["task"] == "denoise":  # real anatomy at its native 1 mm too (sharper than the phantoms)
            items = items + [colin27_1mm()]
        if one_mm:  # phantom subjects imaged at 1 mm (finer structure per pixel than the 2 mm ones)
            items = items + phantom_volumes(one_mm, ["t1w"], voxel_size=1.0, cache=cache)
        t0 = time.time()
        result = train_head(config, items, val_data=val)
        logging.info("%s: %d steps in %.0f s, validation %s", name, result.steps, time.time() - t0, result.validation)
        if not ship:
            continue
        blob = torch.load(result.weights, weights_only=True)
        blob["card"].update({
            "command": command(name, RUNS[name][0], result.steps),
            "train_subjects": f"phantom seeds {seeds[0]}-{seeds[-1]} (2 mm; even 3 T, odd 1.5 T)"
                              + {"gan": " + Colin27 T1 (real, 2 mm)",
                                 "denoise": " + Colin27 T1 (real, 2 mm and 1 mm)"}.get(fields["task"], "")
                              + (f" + phantom seeds {one_mm} at 1 mm" if one_mm else ""),
            "machine": "2-core CPU shared with other jobs, 1 thread",
        })
        blob["card"]["name"] = weight_name
        if init:
            blob["card"]["initialised_from"] = f"{init} (scripts/train_heads.py run)"
        with atomic_path(OUT / f"{weight_name}.pt") as tmp:
            torch.save(blob, tmp)
        card = OUT / f"{weight_name}.json"
        old = json.loads(card.read_text()) if card.is_file() else {}
        old.pop("held_out", None)  # stale: `scripts/train_heads.py cards` measures the new weights
        with atomic_path(card) as tmp:
            Path(tmp).write_text(json.dumps({**old, **blob["card"], "config": blob["config"]}, indent=1, default=list))


def cards(quick: bool) -> None:
    """Held-out scores into the cards: from benchmarks/results/cpu/heads.json when it exists
    (``python -m benchmarks.heads`` writes it), else measured now."""
    from benchmarks.heads import held_out_scores

    saved = ROOT / "benchmarks" / "results" / "cpu" / "heads.json"
    scores = held_out_scores(json.loads(saved.read_text()) if saved.is_file() and not quick else None, quick=quick)
    for name, entry in scores.items():
        card = OUT / f"{name}.json"
        if not card.is_file():
            continue
        data = json.loads(card.read_text())
        data["held_out"] = entry
        with atomic_path(card) as tmp:
            Path(tmp).write_text(json.dumps(data, indent=1))


#: validation subjects of the ensemble weight (recon.heads.synthesis.ENSEMBLE_UNET_WEIGHT)
ENSEMBLE_VAL_SEEDS = [100, 101, 102, 103, 104, 105]


def ensemble_weight(cache: str, seeds: list[int] = ENSEMBLE_VAL_SEEDS) -> dict:
    """The sweep that chose :data:`recon.heads.synthesis.ENSEMBLE_UNET_WEIGHT`: on validation
    subjects only, ``w x`` the pair's bundled 2-D U-Net ``synthesis-unet-t1w-<target>`` alone (slice by
    slice; ``slice-weight`` sweeps the volume ensemble with the slice ensemble) ``+ (1 - w) x`` the 3-D ResNet,
    both flip-averaged as recon.synthesize runs them, for ``w`` in 0, 0.1, ..., 1; mean MAE, PSNR
    and SSIM over the brain mask after z-scoring (:func:`synthesis_scores`), T1w -> FLAIR and T1w -> T2w."""
    import recon
    from recon.train.tasks_heads import synthesis_scores

    items = phantom_volumes(seeds, ["t1w", "t2w", "flair"], cache=cache)
    grid = [round(0.1 * k, 1) for k in range(11)]
    out: dict = {"subjects": list(seeds)}
    for target in ("flair", "t2w"):
        scores: dict[float, list[dict]] = {w: [] for w in grid}
        for item in items:
            # the pair's one bundled U-Net by name: method="unet" is the slice ensemble where a second
            # U-Net is bundled (T1w -> FLAIR since c8f1bf8), and this sweep is the one of the single U-Net
            u = recon.synthesize(item["t1w"], source="t1w", target=target, weights=f"synthesis-unet-t1w-{target}")
            r = recon.synthesize(item["t1w"], source="t1w", target=target, method="resnet3d")
            for w in grid:
                scores[w].append(synthesis_scores(w * u + (1 - w) * r, item[target], item["mask"]))
        out[target] = {str(w): {k: float(np.mean([s[k] for s in v])) for k in ("psnr", "ssim", "mae")}
                       for w, v in scores.items()}
        best = max(grid, key=lambda w: out[target][str(w)]["psnr"])
        logging.info("t1w -> %s: best U-Net weight %.1f (%.2f dB; U-Net alone %.2f, ResNet alone %.2f)", target, best,
                     out[target][str(best)]["psnr"], out[target]["1.0"]["psnr"], out[target]["0.0"]["psnr"])
    return out


#: the bundled slice ensembles: pair -> its U-Nets (recon.api._SLICE_ENSEMBLES)
SLICE_PAIRS = {("t1w", "flair"): ("synthesis-unet-t1w-flair", "synthesis-unet-t1w-flair-c12",
                                  "synthesis-unet-t1w-flair-c12s2")}


def slice_weight(cache: str, seeds: list[int] = ENSEMBLE_VAL_SEEDS) -> dict:
    """The sweeps behind :data:`recon.heads.synthesis.SLICE_ENSEMBLE_WEIGHTS`, on validation
    subjects only: every weighting of the pair's U-Nets on a 0.1 grid of the simplex (each U-Net
    flip-averaged, slice by slice, as ``recon.synthesize(method="unet")`` runs them), PSNR over the
    brain mask after z-scoring (:func:`synthesis_scores`); then, with the best weights, the volume
    ensemble again (``v x`` that slice ensemble ``+ (1 - v) x`` the 3-D ResNet, ``v`` in 0, 0.1,
    ..., 1) to see what the volume default gains."""
    import itertools

    import recon
    from recon.train.tasks_heads import synthesis_scores

    def mean(scores: list[dict]) -> dict:
        return {k: float(np.mean([x[k] for x in scores])) for k in ("psnr", "ssim", "mae")} | {
            "psnr_per_subject": [round(x["psnr"], 2) for x in scores]}

    out: dict = {"subjects": list(seeds)}
    for (source, target), names in SLICE_PAIRS.items():
        items = phantom_volumes(seeds, [source, target], cache=cache)
        preds = [[recon.synthesize(it[source], source=source, target=target, weights=n) for n in names] for it in items]
        resnet = [recon.synthesize(it[source], source=source, target=target, method="resnet3d") for it in items]
        key = f"{source}->{target}"
        grid = [w for w in itertools.product(range(11), repeat=len(names)) if sum(w) == 10]
        sweep = {}
        for w in grid:
            sc = [synthesis_scores(sum(k / 10 * p for k, p in zip(w, ps)), it[target], it["mask"])
                  for ps, it in zip(preds, items)]
            sweep[",".join(str(k / 10) for k in w)] = mean(sc)
        best = max(sweep, key=lambda w: sweep[w]["psnr"])
        bw = [float(v) for v in best.split(",")]
        out[key] = {"networks": list(names), "slice": sweep, "best_slice_weights": bw, "volume": {}}
        for v in [round(0.1 * k, 1) for k in range(11)]:
            sc = [synthesis_scores(v * sum(k * p for k, p in zip(bw, ps)) + (1 - v) * r, it[target], it["mask"])
                  for ps, r, it in zip(preds, resnet, items)]
            out[key]["volume"][str(v)] = mean(sc)
        logging.info("%s: best slice weights %s (%.2f dB; alone: %s)", key, best, sweep[best]["psnr"],
                     [round(sweep[",".join("1.0" if j == i else "0.0" for j in range(len(names)))]["psnr"], 2)
                      for i in range(len(names))])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--only", nargs="*", default=list(RUNS), choices=list(RUNS))
    t.add_argument("--budget-scale", type=float, default=1.0)
    t.add_argument("--cache", default=str(Path.home() / ".cache" / "recon" / "heads"))
    t.add_argument("--resume", action="store_true",
                   help="continue each run from its last.ckpt (the budget counts the time already spent)")
    c = sub.add_parser("cards")
    c.add_argument("--quick", action="store_true")
    e = sub.add_parser("ensemble-weight", help="validation sweep of the U-Net weight of the synthesis ensemble (JSON out)")
    e.add_argument("--cache", default=str(Path.home() / ".cache" / "recon" / "heads"))
    w = sub.add_parser("slice-weight", help="validation sweep of the slice ensemble's weight (JSON out)")
    w.add_argument("--cache", default=str(Path.home() / ".cache" / "recon" / "heads"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    if args.cmd == "train":
        train(args.only, args.budget_scale, args.cache, args.resume)
    elif args.cmd == "ensemble-weight":
        print(json.dumps(ensemble_weight(args.cache), indent=1))
    elif args.cmd == "slice-weight":
        print(json.dumps(slice_weight(args.cache), indent=1))
    else:
        cards(args.quick)


if __name__ == "__main__":
    main()
