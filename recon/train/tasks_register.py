"""Training task of the learned registration: ``recon train --task register``.

:class:`RegisterTask` (a :class:`~recon.train.tasks_heads.HeadTask`; loop in
:mod:`recon.train.tasks_heads`) trains :class:`recon.heads.registration.RegistrationNet`
(VoxelMorph, Balakrishnan et al. 2019) unsupervised, with an optional Dice term on tissue
labels (the paper's semi-supervised variant):

``loss = -local_ncc(fixed, warped) + lambda_smooth * gradient_loss(u) + lambda_dice * dice_loss(labels)``

(``--similarity mse`` swaps NCC for the mean squared error).

Data: the training volumes (``--train-data phantom:A-B``: phantom subjects of
:class:`recon.data.phantom.Subject`, each a new anatomy drawn by random affine and elastic
deformation of the MNI152 or Colin27 tissue maps) are brought, as at inference, to the
working grid (``--work-voxel`` mm, default 4) and affinely aligned
(:func:`recon.heads.registration.prealign`) to the first volume, so every pair ``(i, j)`` of
them is an affinely pre-aligned pair, as :func:`recon.register` gives the network. Each step
draws a random ordered pair; with probability ``--strip-prob`` both images are reduced to
their brain (labels GM/WM/CSF, or the mask) so skull-stripped inputs are seen as well.
Labels: ``volume["labels"]`` (uint8, 1 GM, 2 WM, 3 CSF, as the phantom's) when present, else
the brain mask as one class.

Validation (``--val-data``): the mean Dice of GM/WM/CSF (or of the mask) over pairs of
consecutive validation volumes, after the affine pre-alignment only and after the network,
on the working grid.

Example::

    recon train --task register --train-data phantom:0-15 --val-data phantom:500-503 \\
        --steps 400 --num-threads 1 --output-dir runs/register
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recon.heads.registration import (
    WORK_VOXEL_SIZE,
    RegistrationNet,
    dice_loss,
    gradient_loss,
    local_ncc,
    mse,
    normalise_intensity,
    prealign,
    resample_to_grid,
    warp,
)
from recon.train.tasks_heads import HeadTask, StepRunner

__all__ = ["RegisterTask", "LABELS", "aligned_volumes", "label_dice", "build_network", "labelled_phantoms"]

#: tissue labels the Dice term and the scores use (phantom labels: 1 GM, 2 WM, 3 CSF)
LABELS = (1, 2, 3)


def build_network(config) -> RegistrationNet:
    """The network of a registration ``HeadConfig``: ``depth`` levels of ``chans`` then ``2 chans``."""
    chans, depth = config.chans, config.depth
    enc = [chans] + [2 * chans] * (depth - 1)
    dec = [2 * chans] * depth + [chans, chans]
    return RegistrationNet(ndim=3, enc_chans=enc, dec_chans=dec,
                           integration_steps=int(config.options.get("integration_steps", 7)), int_downsize=2)


def labelled_phantoms(seeds, *, voxel_size: float = 2.0, cache=None) -> list[dict[str, np.ndarray]]:
    """Phantom subjects with what registration needs: ``t1w``, ``labels`` (uint8, 1 GM, 2 WM,
    3 CSF, ...), ``mask`` (GM/WM/CSF) and ``affine`` (even seeds 3 T, odd 1.5 T).

    With ``cache`` (a folder) each subject is kept as ``register-<seed>-<voxel>mm.npz`` there.
    """
    from pathlib import Path

    from recon.data.io import save_npz
    from recon.data.phantom import Subject

    out = []
    for seed in seeds:
        path = Path(cache) / f"register-{seed}-{voxel_size:g}mm.npz" if cache else None
        if path is not None and path.is_file():
            with np.load(path) as z:
                out.append({k: z[k] for k in z.files})
            continue
        subject = Subject(seed=int(seed), voxel_size=voxel_size)
        item = {"t1w": subject.contrast("t1w", field_strength=3.0 if seed % 2 == 0 else 1.5).volume,
                "labels": subject.labels, "mask": np.isin(subject.labels, LABELS), "affine": subject.affine}
        if path is not None:
            save_npz(path, item)
        out.append(item)
    return out


def _labels(item: dict) -> np.ndarray:
    if "labels" in item:
        return np.asarray(item["labels"]).astype(np.uint8)
    return np.asarray(item["mask"]).astype(np.uint8)


def aligned_volumes(volumes: list[dict], contrast: str, voxel_size: float = WORK_VOXEL_SIZE,
                    affine_key: str = "affine") -> list[dict[str, np.ndarray]]:
    """Every volume on the first one's working grid, affinely aligned to it (:func:`prealign`).

    Returns:
        dicts with ``image`` (float32, normalised by :func:`normalise_intensity`), ``labels``
        (uint8) on the common working grid, and ``affine`` (the grid's 4x4). Volumes without an
        ``affine`` entry (those of :func:`recon.train.tasks_heads.load_data`) are taken as 2 mm
        grids sharing one origin, which the phantom subjects are.
    """
    from recon.preprocess import resample

    ref = volumes[0]
    ref_affine = np.asarray(ref.get(affine_key, np.diag([2.0, 2.0, 2.0, 1.0])), dtype=np.float64)
    out = []
    for k, item in enumerate(volumes):
        aff = np.asarray(item.get(affine_key, np.diag([2.0, 2.0, 2.0, 1.0])), dtype=np.float64)
        if k == 0:
            image, work_affine = resample(ref[contrast], ref_affine, voxel_size, order=3)
            image = normalise_intensity(np.maximum(image, 0))
            labels, _ = resample(_labels(ref), ref_affine, voxel_size, order=0)
        else:
            pair = prealign(ref[contrast], ref_affine, item[contrast], aff, voxel_size=voxel_size, num_threads=1)
            image, work_affine = pair["moving"], pair["affine"]
            labels = resample_to_grid(_labels(item), aff, image.shape, work_affine, order=0, matrix=pair["matrix"])
        out.append({"image": image, "labels": labels, "affine": work_affine})
    return out


def label_dice(a: np.ndarray, b: np.ndarray, labels=LABELS) -> dict[int, float]:
    """Dice ``2|A n B| / (|A| + |B|)`` of each label present in either map."""
    out = {}
    for k in labels:
        x, y = a == k, b == k
        total = int(x.sum()) + int(y.sum())
        if total:
            out[k] = 2.0 * int((x & y).sum()) / total
    return out


def _one_hot(labels: torch.Tensor, classes: tuple[int, ...]) -> torch.Tensor:
    """``(B, 1, *S)`` integer labels -> ``(B, len(classes), *S)`` float one-hot."""
    return torch.cat([(labels == k).float() for k in classes], 1)


class RegisterTask(HeadTask):
    """VoxelMorph registration network (weight name ``register``)."""

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--similarity", choices=("ncc", "mse"), default="ncc", help="register: similarity term")
        parser.add_argument("--lambda-smooth", type=float, default=1.0, help="register: weight of the smoothness loss")
        parser.add_argument("--lambda-dice", type=float, default=1.0, help="register: weight of the label Dice loss")
        parser.add_argument("--integration-steps", type=int, default=7,
                            help="register: scaling-and-squaring steps (0: plain displacement)")
        parser.add_argument("--work-voxel", type=float, default=WORK_VOXEL_SIZE, help="register: working grid, mm")
        parser.add_argument("--strip-prob", type=float, default=0.3,
                            help="register: probability of skull-stripping a training pair")

    def _option(self, name: str, default):
        return self.config.options.get(name, default)

    def check(self) -> None:
        o = self.config.options
        if o.get("similarity", "ncc") not in ("ncc", "mse"):
            raise ValueError(f"similarity must be 'ncc' or 'mse', got {o.get('similarity')!r}")
        for name in ("lambda_smooth", "lambda_dice"):
            value = o.get(name, 1.0)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        steps = o.get("integration_steps", 7)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"integration_steps must be an int >= 0, got {steps!r}")
        voxel = o.get("work_voxel", WORK_VOXEL_SIZE)
        if isinstance(voxel, bool) or not isinstance(voxel, (int, float)) or not 0.5 <= voxel <= 10:
            raise ValueError(f"work_voxel must be a number of mm in [0.5, 10], got {voxel!r}")
        prob = o.get("strip_prob", 0.3)
        if isinstance(prob, bool) or not isinstance(prob, (int, float)) or not 0 <= prob <= 1:
            raise ValueError(f"strip_prob must be in [0, 1], got {prob!r}")

    def contrasts(self) -> list[str]:
        return [self.config.source]

    def weight_name(self) -> str:
        return "register"

    def build_model(self) -> nn.Module:
        return build_network(self.config)

    def prepare(self, volumes: list[dict[str, np.ndarray]]) -> None:
        if len(volumes) < 2:
            raise ValueError(f"train_data must hold at least 2 volumes to make pairs, got {len(volumes)}")
        aligned = aligned_volumes(volumes, self.config.source, float(self._option("work_voxel", WORK_VOXEL_SIZE)))
        self.images = torch.stack([torch.from_numpy(a["image"]) for a in aligned])[:, None]
        self.labels = torch.stack([torch.from_numpy(a["labels"].astype(np.int64)) for a in aligned])[:, None]
        present = tuple(k for k in LABELS if bool((self.labels == k).any()))
        self.classes = present or (1,)

    def _pair(self, run: StepRunner) -> tuple[torch.Tensor, ...]:
        i, j = (int(v) for v in run.randint(len(self.images), 2))
        if i == j:
            j = (j + 1) % len(self.images)
        f, m = self.images[i:i + 1].clone(), self.images[j:j + 1].clone()
        lf, lm = self.labels[i:i + 1], self.labels[j:j + 1]
        if float(torch.rand((), generator=run.generator)) < float(self._option("strip_prob", 0.3)):
            f, m = f * (lf > 0), m * (lm > 0)
            for x in (f, m):  # renormalise as normalise_intensity would
                q = torch.quantile(x[x > 0], 0.99) if bool((x > 0).any()) else torch.tensor(1.0)
                x.div_(q).clamp_(0, 2)
        return f, m, lf, lm

    def losses(self, model: nn.Module, fixed: torch.Tensor, moving: torch.Tensor, fixed_labels: torch.Tensor,
               moving_labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """The loss terms of one pair ``(B, 1, *S)`` (labels integer)."""
        warped, u = model(fixed, moving)
        sim = -local_ncc(fixed, warped.float()) if self._option("similarity", "ncc") == "ncc" else mse(fixed, warped.float())
        smooth = gradient_loss(u.float())
        out = {"similarity": sim, "smooth": smooth}
        lam_d = float(self._option("lambda_dice", 1.0))
        if lam_d > 0:
            warped_labels = warp(_one_hot(moving_labels, self.classes), u.float())
            out["dice"] = dice_loss(_one_hot(fixed_labels, self.classes), warped_labels)
        out["loss"] = sim + float(self._option("lambda_smooth", 1.0)) * smooth + lam_d * out.get("dice", 0.0)
        return out

    def step(self, model: nn.Module, run: StepRunner) -> dict[str, float]:
        f, m, lf, lm = (t.to(run.device) for t in self._pair(run))
        with run.autocast():
            parts = self.losses(model, f, m, lf, lm)
        loss = run.optimise(parts.pop("loss"))
        return {"loss": loss, **{k: float(v.detach()) for k, v in parts.items()}}

    def evaluate(self, model: nn.Module, volumes: list[dict[str, np.ndarray]]) -> dict[str, float]:
        if len(volumes) < 2:
            return {}
        voxel = float(self._option("work_voxel", WORK_VOXEL_SIZE))
        affine_dice, learned_dice = [], []
        for a, b in zip(volumes[:-1], volumes[1:]):
            pair = aligned_volumes([a, b], self.config.source, voxel)
            f = torch.from_numpy(pair[0]["image"])[None, None]
            m = torch.from_numpy(pair[1]["image"])[None, None]
            u = model.field(f, m)
            lm = torch.from_numpy(pair[1]["labels"].astype(np.float32))[None, None]
            warped = warp(lm, u, mode="nearest")[0, 0].round().numpy().astype(np.uint8)
            affine_dice.append(np.mean(list(label_dice(pair[0]["labels"], pair[1]["labels"]).values())))
            learned_dice.append(np.mean(list(label_dice(pair[0]["labels"], warped).values())))
        return {"dice_affine": float(np.mean(affine_dice)), "dice_learned": float(np.mean(learned_dice))}
