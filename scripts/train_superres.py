"""Reproduce the bundled super-resolution weights in data/weights/heads/ (issue 14).

Every network is trained on CPU (1 thread) on phantom subjects with seeds 0-5 at 1 mm
(recon.data.phantom.Subject; T1w, T2w, FLAIR and PD of each; even seeds 3 T, odd 1.5 T) and,
since session 4, most of them also on the posterior part of the MNI152 2009a template (below),
low resolution by k-space truncation (recon.heads.superres.kspace_truncate). The held-out scores
in the model cards (benchmarks/superres.py) come from phantom subjects 200-203 and the shipped
real images (Colin27 T1, the dipy T1 slice), never trained or tuned on.

To rebuild every bundled file: ``train`` (stage 1 of each run; superres-3d-thick there already
reads the MNI152 part), then ``finetune`` (stage 2 of superres-2d-x2, superres-2d-x4 and
srgan-3d-x2-mse from their stage-1 files), each with the ``--exact-steps`` its card records.

    python scripts/train_superres.py train [--only NAME ...] [--budget-scale 1.0] [--cache DIR] [--runs DIR] [--dest DIR]
    python scripts/train_superres.py finetune [--only NAME ...] [--exact-steps N] [--init FILE]
    python scripts/train_superres.py validate [--only NAME ...] [--weights-dir DIR] [--out FILE]
    python scripts/train_superres.py validate-adapt [--factors 2 4] [--steps 0 300 800] [--lr 1e-4] --out FILE
    python scripts/train_superres.py ship NAME [--runs DIR] [--validation FILE]
    python scripts/train_superres.py cards [--results benchmarks/results/cpu/superres.json]

Real anatomy (session 4, issue 14): ``finetune`` continues a stage-1 network on phantoms 0-5 plus
the **MNI ICBM152 2009a** 1 mm T1 template read at train time from nilearn's wheel
(``nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz``; MNI notice in
data/README.md; nothing is copied into data/). The template is split along the anterior-posterior
axis: voxel rows ``y < 108`` (posterior) are trained on, rows ``y >= 120`` (anterior, a 12-row gap)
are the real **validation** part, beside validation phantoms 6-7. ``validate`` scores networks on
both (PSNR against cubic B-spline and zero-padded sinc, as benchmarks/superres.py does on the
held-out data); the held-out Colin27 T1 and dipy T1 slice are never trained or tuned on.

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

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recon.data.io import atomic_path  # noqa: E402
from recon.train.tasks_superres import SuperresConfig, load_superres, train_superres  # noqa: E402

OUT = ROOT / "data" / "weights" / "heads"
TRAIN = "phantom:0-5"

# ----------------------------------------------------------------------------- real anatomy and validation

#: the MNI ICBM152 2009a nonlinear symmetric T1 (1 mm, 197 x 233 x 189, skull-stripped) in nilearn's wheel
MNI_FILE = "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
#: anterior-posterior voxel rows of the template: trained on / validated on (12 rows apart)
MNI_ROWS = {"train": (0, 108), "validation": (120, None)}
#: validation phantom subjects (training 0-5, benchmark test 200-203)
VAL_SEEDS = (6, 7)
#: gamma variants of the real training volumes (contrast variety from one T1 template)
GAMMAS = (1.0, 0.75, 1.35)


def mni152_t1(part: str) -> np.ndarray:
    """The ``part`` ('train' or 'validation') of the MNI152 2009a 1 mm T1 from the installed nilearn."""
    import importlib.util

    from recon.data.io import load_nifti

    spec = importlib.util.find_spec("nilearn")
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    path = Path(roots[0]) / "datasets" / "data" / MNI_FILE if roots else None
    if path is None or not path.is_file():
        raise FileNotFoundError(f"the MNI152 2009a T1 ({MNI_FILE}) ships with nilearn; pip install -e '.[train-data]'")
    vol, _, _ = load_nifti(path)
    a, b = MNI_ROWS[part]
    return np.ascontiguousarray(np.asarray(vol, dtype=np.float32)[:, a:b, :])


def real_training_volumes(repeat: int = 2) -> list[np.ndarray]:
    """The MNI152 training part in its three orientations (the last axis, the one 2-D networks
    slice along and thick slices lie across, is S-I, A-P or L-R) x :data:`GAMMAS`, normalised
    like the phantoms; the list repeated ``repeat`` times (its share of the training draws)."""
    from recon.train.tasks_superres import _normalised_box

    v = mni152_t1("train")
    v = v / float(v.max())
    out = []
    for perm in ((0, 1, 2), (0, 2, 1), (1, 2, 0)):
        t = np.ascontiguousarray(v.transpose(perm))
        out += [_normalised_box(t ** g) for g in GAMMAS]
    return out * repeat


def training_volumes(real_repeat: int, cache: str | None) -> list[np.ndarray]:
    """Phantoms 0-5 (every contrast) plus, with ``real_repeat > 0``, :func:`real_training_volumes`."""
    from recon.train.tasks_superres import superres_volumes

    vols = superres_volumes(TRAIN, ("t1w", "t2w", "flair", "pd"), cache)
    return vols + (real_training_volumes(real_repeat) if real_repeat else [])


#: the scales each bundled network is validated at
VAL_SCALES = {"superres-2d-x2": [(2, 2)], "superres-2d-x4": [(4, 4)],
              "superres-3d-thick": [(1, 1, 2), (1, 1, 3), (1, 1, 4)],
              "superres-2d-thick": [(1, 1, 2), (1, 1, 3), (1, 1, 4)],
              "srgan-3d-x2-mse": [(2, 2, 2)], "srgan-3d-x2": [(2, 2, 2)], "superres-2d-iso": [(2, 2, 2)]}


def validation_data(dims: int, cache: str | None) -> dict[str, list[np.ndarray]]:
    """Validation images: phantoms 6-7 and the MNI152 validation part (never trained on).

    2-D: 2 axial slices per contrast of each phantom, 6 axial slices of the template part;
    3-D: central 80 x 96 x 72 crops (T1w and FLAIR of seed 6, T2w and PD of seed 7) and a central
    96 x 96 x 96 crop of the template part.
    """
    from benchmarks.superres import _axial_slices, _centre_crop
    from recon.train.tasks_heads import phantom_volumes

    items = phantom_volumes(list(VAL_SEEDS), ["t1w", "t2w", "flair", "pd"], voxel_size=1.0, cache=cache)
    mni = mni152_t1("validation")
    if dims == 2:
        return {"phantom 6-7": [sl for it in items for c in ("t1w", "t2w", "flair", "pd") for sl in _axial_slices(it[c], 2)],
                "MNI152 (real, validation part)": [np.ascontiguousarray(mni[:, :, z]) for z in (40, 60, 80, 100, 120, 140)]}
    return {"phantom 6-7": [_centre_crop(items[0]["t1w"], (80, 96, 72)), _centre_crop(items[0]["flair"], (80, 96, 72)),
                            _centre_crop(items[1]["t2w"], (80, 96, 72)), _centre_crop(items[1]["pd"], (80, 96, 72))],
            "MNI152 (real, validation part)": [_centre_crop(mni, (96, 96, 96))]}


def validate(names: list[str], weights_dir: Path, cache: str | None) -> dict:
    """``{name: {scale: {data: {psnr_gain_over_cubic_db, psnr_gain_over_sinc_db, ssim_gain_over_cubic}}}}``
    plus ``"sinc"``: zero-padded interpolation's own gain over cubic (what a network must beat)."""
    import recon
    from benchmarks.superres import _crop_multiple, apodise, cubic, lowres, scores, sinc

    out: dict = {}
    sets = {d: None for d in (2, 3)}
    for name in names:
        path = weights_dir / f"{name}.pt"
        if not path.is_file():
            continue
        for scale in VAL_SCALES[name]:
            dims = len(scale)
            if sets[dims] is None:
                sets[dims] = validation_data(dims, cache)
            tag = "x".join(map(str, scale)) if dims == 3 else f"x{scale[0]}"
            for data, images in sets[dims].items():
                acc = {"cubic": [], "sinc": [], "net": []}
                for img in images:
                    hr = apodise(_crop_multiple(img, 4 if dims == 2 else scale))
                    lr = lowres(hr, scale)
                    axes = None if dims == 2 else (1, 0, 2)
                    acc["cubic"].append(scores(hr, cubic(lr, scale), axes))
                    acc["sinc"].append(scores(hr, sinc(lr, scale), axes))
                    acc["net"].append(scores(hr, np.asarray(recon.super_resolve(lr, scale, str(path))), axes))
                m = {k: {q: float(np.mean([r[q] for r in v])) for q in ("psnr", "ssim")} for k, v in acc.items()}
                row = {"psnr_gain_over_cubic_db": round(m["net"]["psnr"] - m["cubic"]["psnr"], 3),
                       "psnr_gain_over_sinc_db": round(m["net"]["psnr"] - m["sinc"]["psnr"], 3),
                       "ssim_gain_over_cubic": round(m["net"]["ssim"] - m["cubic"]["ssim"], 4), "images": len(images)}
                out.setdefault(name, {}).setdefault(tag, {})[data] = row
                out.setdefault("sinc", {}).setdefault(tag, {})[data] = {
                    "psnr_gain_over_cubic_db": round(m["sinc"]["psnr"] - m["cubic"]["psnr"], 3),
                    "ssim_gain_over_cubic": round(m["sinc"]["ssim"] - m["cubic"]["ssim"], 4)}
                logging.info("%s %s %s: %s", name, tag, data, row)
    return out


def validate_adapt(factors: list[int], steps: list[int], lr: float, cache: str | None) -> dict:
    """Self-supervised adaptation for thick slices (``recon.super_resolve(..., adapt=N)``,
    :func:`recon.heads.superres.adapt_through_plane` from ``superres-2d-thick``) on the 3-D
    validation volumes (:func:`validation_data`): per factor, volume and step count, PSNR / SSIM
    gains over cubic and over sinc, and the CPU seconds of adapting and of applying (1 thread).
    Steps 0 is the network as shipped; adapted outputs are averaged over the plane flips as
    ``recon.super_resolve`` does (``ADAPT_SELF_ENSEMBLE``). Decides ``ADAPT_STEPS`` / ``ADAPT_BY_DEFAULT``
    (recon.train.tasks_superres); the held-out data are not touched."""
    import time

    from benchmarks.superres import _crop_multiple, apodise, cubic, lowres, scores, sinc
    from recon.heads.superres import adapt_through_plane, upscale_image
    from recon.train.tasks_superres import ADAPT_SELF_ENSEMBLE, ADAPT_WEIGHTS

    base, _, _ = load_superres(ADAPT_WEIGHTS)
    data = validation_data(3, cache)
    out: dict = {"weights": ADAPT_WEIGHTS, "lr": lr, "volumes": {}}
    for f in factors:
        scale = (1, 1, f)
        for name, vols in data.items():
            for i, vol in enumerate(vols):
                hr = apodise(_crop_multiple(vol, scale))
                lr_vol = lowres(hr, scale)
                ref = {"cubic": scores(hr, cubic(lr_vol, scale), (1, 0, 2)), "sinc": scores(hr, sinc(lr_vol, scale), (1, 0, 2))}
                row: dict = {}
                for n in steps:
                    t0 = time.perf_counter()
                    model = adapt_through_plane(base, torch.from_numpy(lr_vol), scale, steps=n, lr=lr)
                    t1 = time.perf_counter()
                    pred = upscale_image(model, torch.from_numpy(lr_vol), scale,
                                         self_ensemble=bool(n) and ADAPT_SELF_ENSEMBLE).numpy()
                    t2 = time.perf_counter()
                    sc = scores(hr, pred, (1, 0, 2))
                    row[str(n)] = {"psnr_gain_over_cubic_db": round(sc["psnr"] - ref["cubic"]["psnr"], 3),
                                   "psnr_gain_over_sinc_db": round(sc["psnr"] - ref["sinc"]["psnr"], 3),
                                   "ssim_gain_over_cubic": round(sc["ssim"] - ref["cubic"]["ssim"], 4),
                                   "adapt_seconds": round(t1 - t0, 1), "apply_seconds": round(t2 - t1, 1)}
                    logging.info("1x1x%d %s %d, %d steps: %s", f, name, i, n, row[str(n)])
                row["sinc_gain_over_cubic_db"] = round(ref["sinc"]["psnr"] - ref["cubic"]["psnr"], 3)
                out["volumes"][f"1x1x{f}/{name}/{i}"] = row
    for f in factors:  # means per factor, data set and step count
        for name in data:
            rows = [v for k, v in out["volumes"].items() if k.startswith(f"1x1x{f}/{name}/")]
            out.setdefault("mean", {}).setdefault(f"1x1x{f}", {})[name] = {
                str(n): {q: round(float(np.mean([r[str(n)][q] for r in rows])), 3)
                         for q in ("psnr_gain_over_cubic_db", "psnr_gain_over_sinc_db", "ssim_gain_over_cubic",
                                   "adapt_seconds", "apply_seconds")} for n in steps}
    return out


#: name -> (SuperresConfig fields, time budget in seconds); run in this order (x4 starts from x2);
#: the 2-D x2/x4 networks predate the bias-free default (SuperresConfig.bias) and keep their biases
RUNS: dict[str, tuple[dict, float]] = {
    "superres-2d-x2": (dict(task="superres", dims=2, scales=[(2, 2)], chans=32, num_blocks=4, batch_size=8,
                            patch_size=48, lr=1e-3, bias=True, steps=4000), 720.0),
    "superres-2d-x4": (dict(task="superres", dims=2, scales=[(4, 4)], chans=32, num_blocks=4, batch_size=8,
                            patch_size=64, lr=5e-4, bias=True, steps=4000, init_from="superres-2d-x2"), 600.0),
    # session 4: superres-3d-thick gets biases again (bias-free, ReLU on a positive image left 99 %
    # of its head units dead: a residual that lost to its own sinc base) and is trained on phantoms
    # + the MNI152 training part (REAL_REPEAT); (1, 1, 2) is listed twice, so it is drawn half the
    # time (its residual is the smallest, the multi-scale MSE was dominated by 3x and 4x)
    "superres-3d-thick": (dict(task="superres", dims=3, scales=[(1, 1, 2), (1, 1, 2), (1, 1, 3), (1, 1, 4)],
                               chans=16, num_blocks=3, batch_size=4, patch_size=24, lr=1e-3, scale_input=True,
                               bias=True, crop_taper=0.5, steps=8000), 1500.0),
    # the bundled superres-2d-thick is still this bias-free, phantom-only run: the session-4 retraining
    # with biases and the MNI152 part (bias=True, steps=6000, budget 1000 s, REAL_REPEAT 2) lost to
    # sinc on the validation phantoms at every factor (-1.07 / -0.36 / -0.12 dB) and was not shipped
    "superres-2d-thick": (dict(task="superres", dims=2, scales=[(1, 2), (1, 3), (1, 4)], chans=32, num_blocks=4,
                               batch_size=8, patch_size=48, lr=1e-3, scale_input=True, bias=False, planes="through",
                               crop_taper=0.5, steps=4000), 900.0),
    "srgan-3d-x2": (dict(task="srgan", dims=3, scales=[(2, 2, 2)], chans=16, num_blocks=3, disc_chans=8,
                         batch_size=4, patch_size=24, lr=5e-4, adv_weight=3e-4, pretrain_steps=1000,
                         interpolation="zero_fill", bias=False, crop_taper=0.5, steps=3000), 900.0),
}


#: runs trained on phantoms 0-5 plus the MNI152 training part, repeated this many times (session 4)
REAL_REPEAT = {"superres-3d-thick": 2}


def _subjects(name: str) -> str:
    text = "phantom seeds 0-5 (1 mm; T1w, T2w, FLAIR, PD; even 3 T, odd 1.5 T)"
    if name in REAL_REPEAT:
        text += (f" + the MNI ICBM152 2009a 1 mm T1 (nilearn's wheel, read at train time) rows y < {MNI_ROWS['train'][1]}"
                 f" in 3 orientations x gamma {list(GAMMAS)}, x{REAL_REPEAT[name]}")
    return text


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
          exact_steps: int | None = None, dest: Path = OUT) -> None:
    for name, (fields, budget) in RUNS.items():
        if only and name not in only:
            continue
        fields = dict(fields)
        if exact_steps is not None:  # repeat a bundled run exactly: its recorded step count, no time budget
            fields["steps"], budget = exact_steps, None
        if fields.get("init_from"):
            fields["init_from"] = str(OUT / f"{fields['init_from']}.pt")
        real = REAL_REPEAT.get(name, 0)
        config = SuperresConfig(**fields, train_data=TRAIN + ("+mni152-train" if real else ""),
                                output_dir=str(runs / name), name=name,
                                time_budget=None if budget is None else budget * budget_scale, num_threads=1,
                                data_cache=cache, progress=False)
        result = train_superres(config, training_volumes(real, cache) if real else None)
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
                                                                        "the script trains on 1 mm ones"
                                                                        + ("; it has no MNI152 part" if real else "")
                                                                        + ")",
                "train_subjects": _subjects(name),
                "machine": "2-core CPU shared with other jobs, 1 thread",
                "config": {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("output_dir", "data_cache")},
            })
            blob = torch.load(runs / name / f"{n}.pt", map_location="cpu", weights_only=True)
            blob["card"] = card
            dest.mkdir(parents=True, exist_ok=True)
            with atomic_path(dest / f"{n}.pt") as tmp:
                torch.save(blob, tmp)
            with atomic_path(dest / f"{n}.json") as tmp:
                Path(tmp).write_text(json.dumps(card, indent=1, default=list))
        logging.info("%s: %d steps in %.0f s", name, result.steps, result.seconds)
        shutil.copy(runs / name / "history.json", runs / f"{name}-history.json")


#: stage 2 (session 4): name -> (SuperresConfig fields replacing the RUNS entry's, time budget s,
#: repeats of the real volumes in the training list); init: the stage-1 file (the bundled one)
FINETUNE: dict[str, tuple[dict, float, int]] = {
    "superres-2d-x2": (dict(lr=2e-4, steps=3000), 900.0, 2),
    "superres-2d-x4": (dict(lr=1e-4, steps=2000), 600.0, 2),
    # the content-only SRGAN generator (the 2x2x2 default): content loss only (adversarial steps never start)
    "srgan-3d-x2-mse": (dict(lr=2e-4, steps=3000, pretrain_steps=10**6, adv_weight=0.0), 600.0, 2),
    # session 5, NOT shipped: the 2-D x2 network continued on planes of all three orientations of
    # volumes degraded along all three axes (planes="iso"), for isotropic (2, 2, 2) volumes, from the
    # bundled superres-2d-x2 (3000 steps, 519 s). On the planes path (upscale_image) it lost to the
    # network it started from on validation: 2x2x2 gain over cubic +0.72 / +4.33 dB (phantoms 6-7 /
    # MNI152 part) against +1.60 / +4.88 (self-ensembled +0.94 / +4.45; summed residuals -4.30 / +1.31)
    "superres-2d-iso": (dict(lr=2e-4, steps=3000, planes="iso"), 2100.0, 1),
}
#: the stage-1 run a stage-2 network comes from (RUNS key)
STAGE1 = {"srgan-3d-x2-mse": "srgan-3d-x2", "superres-2d-iso": "superres-2d-x2"}
#: the bundled file a stage-2 run starts from when it is not the network's own (default: its own)
INIT = {"superres-2d-iso": "superres-2d-x2"}


def finetune(only: list[str] | None, cache: str | None, runs: Path, exact_steps: int | None = None,
             init: str | None = None) -> None:
    """Stage 2: continue each network from its stage-1 file on phantoms 0-5 + the MNI152 training
    part (:func:`training_volumes`); writes ``RUNS/<name>-real/<name>.pt`` (shipped by ``ship``)."""
    for name, (over, budget, repeat) in FINETUNE.items():
        if only and name not in only:
            continue
        fields = {**RUNS[STAGE1.get(name, name)][0], **over}
        fields.pop("init_from", None)
        if exact_steps is not None:
            fields["steps"], budget = exact_steps, None
        start = Path(init) if init else runs / f"{name}-stage1.pt"
        if not init and not start.is_file():  # the bundled stage-1 file, kept before it is replaced
            runs.mkdir(parents=True, exist_ok=True)
            shutil.copy(OUT / f"{INIT.get(name, name)}.pt", start)
        config = SuperresConfig(**fields, train_data=TRAIN + "+mni152-train", output_dir=str(runs / f"{name}-real"),
                                name=name, time_budget=budget, num_threads=1, data_cache=cache, progress=False,
                                init_from=str(start))
        result = train_superres(config, training_volumes(repeat, cache))
        logging.info("%s stage 2: %d steps in %.0f s", name, result.steps, result.seconds)


def ship(name: str, runs: Path, validation: Path | None) -> None:
    """Copy the stage-2 file of ``name`` into data/weights/heads with its card (commands, data,
    validation before -> after from ``validate`` JSON files ``{"before": ..., "after": ...}``)."""
    _, cfg, card = load_superres(runs / f"{name}-real" / f"{name}.pt")
    old = json.loads((OUT / f"{name}.json").read_text())
    stage1 = old.get("stage1") or {"steps": old["steps"], "train_seconds": old.get("train_seconds"),
                                  "train_data": old.get("train_subjects"), "command": old.get("command"),
                                  "run_steps": int(old["command"].split("--exact-steps ")[1].split()[0])}
    card.update({
        "command": f"{stage1['command']} (stage 1); then python scripts/train_superres.py finetune --only {name} "
                   f"--exact-steps {card['steps']} (stage 2, from stage 1's file)",
        "recon_train_equivalent": command(STAGE1.get(name, name), RUNS[STAGE1.get(name, name)][0], stage1["run_steps"]) + " (stage 1 only, 2 mm phantoms "
                                  "through the head loop; stage 2 reads the MNI152 training part, which the head "
                                  "loop does not split)",
        "stage1": stage1,
        "train_data": "phantom:0-5 + MNI152 2009a T1 training part",
        "train_subjects": "stage 1: phantom seeds 0-5 (1 mm; T1w, T2w, FLAIR, PD; even 3 T, odd 1.5 T); stage 2: the "
                          "same plus the MNI ICBM152 2009a 1 mm T1 (nilearn's wheel, read at train time) rows "
                          f"y < {MNI_ROWS['train'][1]}, in 3 orientations x gamma {list(GAMMAS)}",
        "machine": "2-core CPU shared with other jobs, 1 thread",
        "config": {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("output_dir", "data_cache")},
    })
    for key in ("design",):
        if key in old:
            card[key] = old[key]
    if validation is not None:
        val = json.loads(validation.read_text())
        card["validation"] = {
            "data": "validation phantoms (seeds 6-7) and the MNI152 2009a validation part (rows y >= 120, never trained "
                    "on); 2-D: axial slices, 3-D: central crops; tapered like the benchmark (scripts/train_superres.py "
                    "validate)",
            "before (stage 1)": val["before"].get(name), "after (stage 2)": val["after"].get(name),
            "sinc": val["after"].get("sinc")}
    blob = torch.load(runs / f"{name}-real" / f"{name}.pt", map_location="cpu", weights_only=True)
    blob["card"] = card
    with atomic_path(OUT / f"{name}.pt") as tmp:
        torch.save(blob, tmp)
    with atomic_path(OUT / f"{name}.json") as tmp:
        Path(tmp).write_text(json.dumps(card, indent=1, default=list))


def cards(results_path: Path) -> None:
    """Add the held-out figures of benchmarks/superres.py's results to the model cards."""
    results = json.loads(results_path.read_text())
    for name, scores in results.get("cards", {}).items():
        # "superres-2d-thick adapted 800 steps": the thick-slice default, that network adapted per volume
        base, adapted, _ = name.partition(" adapted")
        path = OUT / f"{base}.json"
        if not path.is_file():
            continue
        card = json.loads(path.read_text())
        if adapted:
            steps = name.partition(" adapted")[2].strip()
            card["held_out_adapted"] = {"what": "recon.super_resolve's thick-slice default: this network adapted to "
                                                f"each test volume ({steps} of self-supervised adaptation, "
                                                "recon.heads.superres.adapt_through_plane)", **scores}
        else:
            card["held_out"] = scores
        line = card.get("recon_train_equivalent", "")
        if card.get("config", {}).get("bias", True) and line.startswith("recon train") and "--conv-bias" not in line:
            # cards written before command() knew the bias-free default (no "bias": biases on)
            card["recon_train_equivalent"] = line.replace(" --steps ", " --conv-bias --steps ", 1)
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
    t.add_argument("--dest", default=str(OUT), help="where the weight files and cards go (default data/weights/heads)")
    f = sub.add_parser("finetune")
    f.add_argument("--only", nargs="+", default=None, choices=list(FINETUNE))
    f.add_argument("--cache", default=str(Path.home() / ".cache" / "recon" / "heads"))
    f.add_argument("--runs", default="/tmp/superres_runs")
    f.add_argument("--exact-steps", type=int, default=None, help="train exactly this many steps, no time budget")
    f.add_argument("--init", default=None, help="stage-1 weight file (default: RUNS/<name>-stage1.pt, else the bundled one)")
    v = sub.add_parser("validate")
    v.add_argument("--only", nargs="+", default=None, choices=list(VAL_SCALES))
    v.add_argument("--weights-dir", default=str(OUT))
    v.add_argument("--cache", default=str(Path.home() / ".cache" / "recon" / "heads"))
    v.add_argument("--out", required=True)
    va = sub.add_parser("validate-adapt", help="self-supervised adaptation for thick slices on the validation volumes")
    va.add_argument("--factors", type=int, nargs="+", default=[2, 4])
    va.add_argument("--steps", type=int, nargs="+", default=[0, 800])
    va.add_argument("--lr", type=float, default=3e-4)
    va.add_argument("--cache", default=str(Path.home() / ".cache" / "recon" / "heads"))
    va.add_argument("--out", required=True)
    s_ = sub.add_parser("ship")
    s_.add_argument("name", choices=list(FINETUNE))
    s_.add_argument("--runs", default="/tmp/superres_runs")
    s_.add_argument("--validation", default=None, help='JSON {"before": validate output, "after": ...}')
    c = sub.add_parser("cards")
    c.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "cpu" / "superres.json"))
    args = parser.parse_args(argv)
    if args.cmd == "train":
        train(args.only, args.budget_scale, args.cache, Path(args.runs), args.exact_steps, Path(args.dest))
    elif args.cmd == "finetune":
        finetune(args.only, args.cache, Path(args.runs), args.exact_steps, args.init)
    elif args.cmd == "validate":
        torch.set_num_threads(1)
        result = validate(args.only or list(VAL_SCALES), Path(args.weights_dir), args.cache)
        with atomic_path(Path(args.out)) as tmp:
            Path(tmp).write_text(json.dumps(result, indent=1))
    elif args.cmd == "validate-adapt":
        torch.set_num_threads(1)
        result = validate_adapt(args.factors, args.steps, args.lr, args.cache)
        with atomic_path(Path(args.out)) as tmp:
            Path(tmp).write_text(json.dumps(result, indent=1))
    elif args.cmd == "ship":
        ship(args.name, Path(args.runs), Path(args.validation) if args.validation else None)
    else:
        cards(Path(args.results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
