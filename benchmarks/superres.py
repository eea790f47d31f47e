"""Super-resolution (issue 14) on held-out anatomy: PSNR/SSIM against cubic B-spline interpolation.

Held-out data never used in training or tuning: phantom subjects with seeds 200-203
(recon.data.phantom at 1 mm, T1w/T2w/FLAIR/PD; training used seeds 0-5, validation 6-7), the
real Colin27 T1 (data/colin27_t1.nii.gz, 1 mm) and the real dipy T1 coronal slice
(data/dipy_t1_coronal_slice.nii.gz). The only real anatomy trained on is the posterior part of
the MNI152 2009a template (scripts/train_superres.py; its anterior part is validation).

Low resolution by k-space truncation (recon.heads.superres.kspace_truncate: the central N/s
k-space lines, a shorter acquisition), from the high-resolution truth cropped to a multiple of
the scale. Methods, all on the same geometry (LR voxel j covers HR voxels s j .. s j + s - 1):

* cubic B-spline: ``scipy.ndimage.zoom(lr, s, order=3, grid_mode=True, mode="reflect")`` (the
  target's baseline);
* zero-padded k-space (sinc) interpolation: recon.heads.superres.kspace_zero_pad - for
  k-space-truncated data the least-squares linear estimate, reported alongside;
* ``recon.super_resolve`` with the bundled networks (2-D fusion CNN x2/x4; for thick slices the
  default, chosen on validation: superres-2d-thick adapted to each test volume on its own in-plane
  planes (recon.train.tasks_superres.ADAPT_BY_DEFAULT / ADAPT_STEPS; self-supervised, it sees
  only the LR volume), and the bundled thick-slice networks as shipped (``adapt=False``), for
  comparison; for isotropic 2x2x2 the default, the 2-D x2 network on the planes of all three
  orientations (recon.train.tasks_superres.ISO_DEFAULT, chosen on validation), and the 3-D SRGAN
  and its content-only generator). Every network is residual to zero-filled (sinc) interpolation.
  2-D slices and in-plane volumes go through the x8 self-ensemble (flips/transposes), the default
  of recon.super_resolve (recon.train.tasks_superres.self_ensemble_default).

PSNR (recon.metrics.psnr, peak = the truth's maximum) and SSIM (recon.metrics.ssim, fastMRI
semantics: 7x7 windows per slice; 3-D thick slices scored on coronal X-Z planes, which hold the
through-plane detail). High-frequency energy: the spectral energy outside the band an LR
acquisition keeps (recon.heads.superres.high_frequency_energy), as a ratio to the truth's.

    python -m benchmarks.superres [--quick] [--figures DIR]
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
TEST_SEEDS = [200, 201, 202, 203]
CONTRASTS = ("t1w", "t2w", "flair", "pd")
#: central crop of 1 mm heads for the 3-D evaluation (brain; keeps CPU time reasonable)
CROP_3D = (96, 112, 96)
#: adaptation steps of the thick-slice default under --quick (a smoke run of the path, not its figure)
QUICK_ADAPT_STEPS = 40


def _cache() -> str:
    return os.environ.get("RECON_HEADS_CACHE", str(Path.home() / ".cache" / "recon" / "heads"))


def _phantoms(seeds):
    from recon.train.tasks_heads import phantom_volumes

    return phantom_volumes(seeds, list(CONTRASTS), voxel_size=1.0, cache=_cache())


def _colin27() -> np.ndarray:
    from recon.data.io import load_nifti

    vol, _, _ = load_nifti(ROOT / "data" / "colin27_t1.nii.gz")
    return np.ascontiguousarray(vol, dtype=np.float32)


def _dipy_slice() -> np.ndarray:
    from recon.data.io import load_nifti

    vol, _, _ = load_nifti(ROOT / "data" / "dipy_t1_coronal_slice.nii.gz")
    return np.ascontiguousarray(np.asarray(vol, dtype=np.float32).squeeze())


def _crop_multiple(x: np.ndarray, m: int | tuple) -> np.ndarray:
    ms = (m,) * x.ndim if isinstance(m, int) else m
    idx = []
    for n, f in zip(x.shape, ms):
        keep = n // f * f
        start = (n - keep) // 2
        idx.append(slice(start, start + keep))
    return np.ascontiguousarray(x[tuple(idx)])


def _centre_crop(x: np.ndarray, shape) -> np.ndarray:
    idx = []
    for n, m in zip(x.shape, shape):
        m = min(n, m)
        start = (n - m) // 2
        idx.append(slice(start, start + m))
    return np.ascontiguousarray(x[tuple(idx)])


#: width (voxels) of the cosine taper that brings every test image to 0 at its borders
APODISE = 8


def apodise(x: np.ndarray, width: int = APODISE) -> np.ndarray:
    """The truth every method is scored against: ``x`` tapered to 0 over its ``width`` border voxels
    (recon.heads.superres.taper_borders; k-space truncation assumes a periodic image, as a
    scanner's is; a phantom head clipped by the field of view, or a crop, is not: without the taper
    zero-filled interpolation loses ~3-4 dB to cubic on such slices from wrap-around ringing)."""
    from recon.heads.superres import taper_borders

    return taper_borders(torch.from_numpy(x.astype(np.float64)), width, spatial_dims=x.ndim).numpy().astype(np.float32)


def lowres(hr: np.ndarray, scale: tuple) -> np.ndarray:
    """k-space truncation (float64 inside, float32 out)."""
    from recon.heads.superres import kspace_truncate

    return kspace_truncate(torch.from_numpy(hr.astype(np.float64)), scale).numpy().astype(np.float32)


def cubic(lr: np.ndarray, scale: tuple) -> np.ndarray:
    """Cubic B-spline interpolation on the same geometry (scipy.ndimage.zoom, grid_mode=True)."""
    from scipy.ndimage import zoom

    return zoom(lr.astype(np.float64), scale, order=3, grid_mode=True, mode="reflect")


def sinc(lr: np.ndarray, scale: tuple) -> np.ndarray:
    from recon.heads.superres import kspace_zero_pad

    return kspace_zero_pad(torch.from_numpy(lr.astype(np.float64)), scale).numpy()


def scores(truth: np.ndarray, pred: np.ndarray, ssim_axes=None) -> dict[str, float]:
    from recon.metrics import psnr, ssim

    t = truth.astype(np.float64)
    p = np.asarray(pred, dtype=np.float64)
    if t.ndim == 2:
        s = ssim(t[None], p[None])
    else:
        order = ssim_axes or (0, 1, 2)
        s = ssim(np.transpose(t, order), np.transpose(p, order))
    return {"psnr": float(psnr(t, p)), "ssim": float(s)}


def _mean(rows: list[dict], key: str) -> float:
    return float(np.mean([r[key] for r in rows]))


# ----------------------------------------------------------------------------- 2-D

def _axial_slices(vol: np.ndarray, k: int) -> list[np.ndarray]:
    prof = (vol > 0.1 * vol.max()).reshape(-1, vol.shape[-1]).mean(0)
    zs = np.where(prof > 0.25)[0]
    picks = zs[np.linspace(0.15 * (len(zs) - 1), 0.85 * (len(zs) - 1), k).astype(int)] if len(zs) else []
    return [np.ascontiguousarray(vol[:, :, z]) for z in picks]


def section_2d(quick: bool) -> tuple[list, dict, dict]:
    import recon

    per = 2 if quick else 3
    items = _phantoms(TEST_SEEDS[:1] if quick else TEST_SEEDS)
    data = {"phantom (held-out)": [sl for it in items for c in (CONTRASTS[:2] if quick else CONTRASTS)
                                   for sl in _axial_slices(it[c], per)],
            "Colin27 T1 (real)": _axial_slices(_colin27(), 2 if quick else 6),
            "dipy T1 slice (real)": [_dipy_slice()]}
    rows, results, example = [], {}, {}
    for s in (2, 4):
        scale = (s, s)
        for name, slices in data.items():
            acc: dict[str, list] = {"cubic B-spline": [], "zero-padded (sinc)": [], "recon.super_resolve": []}
            for i, sl in enumerate(slices):
                hr = apodise(_crop_multiple(sl, 4))
                lr = lowres(hr, scale)
                preds = {"cubic B-spline": cubic(lr, scale), "zero-padded (sinc)": sinc(lr, scale),
                         "recon.super_resolve": np.asarray(recon.super_resolve(lr, s))}
                for k, p in preds.items():
                    acc[k].append(scores(hr, p))
                if i == 0 and name.startswith("phantom"):
                    example[s] = (hr, lr, preds["cubic B-spline"], preds["recon.super_resolve"])
            base_p, base_s = _mean(acc["cubic B-spline"], "psnr"), _mean(acc["cubic B-spline"], "ssim")
            need = 1.5 if s == 2 else 1.0
            for k, v in acc.items():
                p_, s_ = _mean(v, "psnr"), _mean(v, "ssim")
                results[f"2d/x{s}/{name}/{k}"] = {"psnr": p_, "ssim": s_, "psnr_gain_db": p_ - base_p,
                                                  "ssim_gain": s_ - base_s, "slices": len(v)}
                met = "-" if k != "recon.super_resolve" else ("yes" if p_ - base_p >= need and s_ > base_s else "no")
                rows.append([f"x{s}", name, k, len(v), p_, s_, p_ - base_p, s_ - base_s, met])
    return rows, results, example


# ----------------------------------------------------------------------------- 3-D

def _volumes_3d(quick: bool) -> dict[str, list[np.ndarray]]:
    seeds = TEST_SEEDS[:1] if quick else TEST_SEEDS
    crop = (64, 64, 48) if quick else CROP_3D
    # one contrast per held-out subject, each contrast once: T1w, T2w, FLAIR, PD
    return {"phantom (held-out)": [_centre_crop(it[CONTRASTS[k % 4]], crop) for k, it in enumerate(_phantoms(seeds))],
            "Colin27 T1 (real)": [_centre_crop(_colin27(), crop)]}


def _hf_ratio(truth: np.ndarray, pred: np.ndarray, scale: tuple) -> float:
    from recon.heads.superres import high_frequency_energy

    return high_frequency_energy(np.asarray(pred, np.float64), scale) / high_frequency_energy(truth.astype(np.float64), scale)


def section_3d(quick: bool) -> tuple[list, dict, dict, float]:
    import recon

    vols = _volumes_3d(quick)
    rows, results, example = [], {}, {}
    seconds = 0.0
    from recon.train.tasks_superres import ADAPT_BY_DEFAULT, ADAPT_STEPS, ISO_DEFAULT, available_superres, thick_default

    # --quick exercises the adapted thick-slice path with a token step budget (the full 800 steps
    # alone take ~80 s of one thread; the quick report's target is 3 min for every section)
    adapt_steps = QUICK_ADAPT_STEPS if quick else ADAPT_STEPS

    def default_label(f: int) -> str:
        """The thick-slice default: the network by factor, or the adapted one (ADAPT_BY_DEFAULT)."""
        return f"superres-2d-thick adapted {adapt_steps} steps" if ADAPT_BY_DEFAULT else thick_default(f)

    # the default thick-slice path (None) and the other bundled networks as shipped, for comparison
    bundled = available_superres()
    thick = [(s, w) for s in ((1, 1, 2), (1, 1, 3), (1, 1, 4))
             for w in [None, *[n for n in ("superres-2d-thick", "superres-3d-thick")
                               if (ADAPT_BY_DEFAULT or n != thick_default(s[2])) and n in bundled]]]
    iso = [((2, 2, 2), None), ((2, 2, 2), "srgan-3d-x2-mse"), ((2, 2, 2), "srgan-3d-x2")]
    cases = thick + iso
    if quick:
        cases = [((1, 1, 3), None), *iso]
    base_cache: dict = {}
    thick_seconds: dict[str, list] = {}  # seconds of the default thick-slice call per volume (adaptation included)
    for scale, weights in cases:
        for name, volumes in vols.items():
            key_base = (scale, name)
            acc: dict[str, list] = {}
            for i, vol in enumerate(volumes):
                hr = apodise(_crop_multiple(vol, scale))
                lr = lowres(hr, scale)
                if (key_base, i) not in base_cache:
                    base_cache[(key_base, i)] = {"cubic B-spline": cubic(lr, scale), "zero-padded (sinc)": sinc(lr, scale)}
                preds = dict(base_cache[(key_base, i)])
                t0 = time.perf_counter()
                default = f"{ISO_DEFAULT} planes" if len(set(scale)) == 1 else default_label(scale[2])
                label = f"recon.super_resolve ({weights or default})"
                thick_default_call = weights is None and scale[0] == scale[1] == 1
                extra = {"adapt": adapt_steps} if thick_default_call and ADAPT_BY_DEFAULT else {}
                preds[label] = np.asarray(recon.super_resolve(lr, scale, weights, **extra))
                seconds += time.perf_counter() - t0
                if thick_default_call:
                    thick_seconds.setdefault(f"1x1x{scale[2]}/{name}", []).append(time.perf_counter() - t0)
                for k, p in preds.items():
                    acc.setdefault(k, []).append({**scores(hr, p, ssim_axes=(1, 0, 2)),
                                                  "hf_ratio": _hf_ratio(hr, p, scale)})
                if i == 0 and name.startswith("phantom"):
                    example[(scale, weights)] = (hr, preds["cubic B-spline"], preds[label])
            base_p, base_s = _mean(acc["cubic B-spline"], "psnr"), _mean(acc["cubic B-spline"], "ssim")
            need = 1.5 if max(scale) == 2 else (1.0 if max(scale) == 4 else None)
            tag = "x".join(map(str, scale))
            for k, v in acc.items():
                if weights is not None and not k.startswith("recon"):
                    continue  # already listed with the default network
                p_, s_, hf = _mean(v, "psnr"), _mean(v, "ssim"), _mean(v, "hf_ratio")
                results[f"3d/{tag}/{name}/{k}"] = {"psnr": p_, "ssim": s_, "hf_ratio": hf, "psnr_gain_db": p_ - base_p,
                                                   "ssim_gain": s_ - base_s, "volumes": len(v)}
                if not k.startswith("recon"):
                    met = "-"
                elif weights == "srgan-3d-x2":
                    met = "see HF"
                elif weights is not None:
                    met = "(not the default)" if need is not None else "(no target)"
                elif need is None:
                    met = "(no target)"
                else:
                    met = "yes" if p_ - base_p >= need and s_ > base_s else "no"
                rows.append([tag, name, k, len(v), p_, s_, hf, p_ - base_p, s_ - base_s, met])
    for key, values in thick_seconds.items():
        results[f"3d/{key}/default seconds per volume"] = float(np.mean(values))
    return rows, results, example, seconds


def _srgan_hf(results: dict) -> list[list]:
    rows = []
    for name in ("phantom (held-out)", "Colin27 T1 (real)"):
        mse = results.get(f"3d/2x2x2/{name}/recon.super_resolve (srgan-3d-x2-mse)")
        gan = results.get(f"3d/2x2x2/{name}/recon.super_resolve (srgan-3d-x2)")
        cub = results.get(f"3d/2x2x2/{name}/cubic B-spline")
        if not (mse and gan and cub):
            continue
        closer = abs(math.log(gan["hf_ratio"])) < abs(math.log(mse["hf_ratio"]))
        rows.append([name, cub["hf_ratio"], mse["hf_ratio"], gan["hf_ratio"], gan["psnr"] - cub["psnr"],
                     "yes" if closer and gan["psnr"] > cub["psnr"] else "no"])
    return rows


def _figure(ex2d: dict, ex3d: dict):
    from matplotlib.figure import Figure

    panels = []
    for s, (hr, lr, cub, net) in sorted(ex2d.items()):
        panels.append([(f"truth", hr), (f"LR x{s} (k-space)", np.kron(lr, np.ones((s, s)))), (f"cubic x{s}", cub),
                       (f"recon.super_resolve x{s}", net)])
    for (scale, weights), (hr, cub, net) in ex3d.items():
        if scale == (1, 1, 3) or weights == "srgan-3d-x2":
            y = hr.shape[1] // 2
            tag = "x".join(map(str, scale))
            panels.append([("truth (coronal)", hr[:, y]), (f"cubic {tag}", cub[:, y]), (f"{weights or 'fusion 3-D'} {tag}", net[:, y])])
    cols = max(len(p) for p in panels)
    fig = Figure(figsize=(2.2 * cols, 2.3 * len(panels)))
    axes = fig.subplots(len(panels), cols, squeeze=False)
    for r, row in enumerate(panels):
        vmax = float(np.percentile(row[0][1], 99.5)) or 1.0
        for c in range(cols):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(row):
                ax.imshow(np.asarray(row[c][1]).T[::-1], cmap="gray", vmin=0, vmax=vmax)
                ax.set_title(row[c][0], fontsize=7)
    fig.tight_layout()
    return fig


def cards(results: dict) -> dict[str, dict]:
    """Per bundled network, its held-out figures (for the model cards)."""
    out: dict[str, dict] = {}
    for key, value in results.items():
        if "recon.super_resolve" not in key:
            continue
        parts = key.split("/")
        base = results.get("/".join(parts[:3] + ["cubic B-spline"]))
        sinc_ = results.get("/".join(parts[:3] + ["zero-padded (sinc)"]))
        if parts[0] == "2d":
            name = f"superres-2d-{parts[1]}"
        elif "(" in parts[3]:
            name = parts[3].split("(")[1].rstrip(")")
        else:
            continue
        tag = parts[1]
        if name.endswith(" planes"):  # the 2-D network on the planes of an isotropic volume
            name, tag = name[: -len(" planes")], f"{parts[1]} planes"
        entry = {k: round(v, 4) for k, v in value.items() if isinstance(v, float)}
        if base:
            entry["cubic"] = {k: round(base[k], 4) for k in ("psnr", "ssim")}
        if sinc_:
            entry["sinc"] = {k: round(sinc_[k], 4) for k in ("psnr", "ssim")}
        out.setdefault(name, {})[f"{tag}/{parts[2]}"] = entry
    return out


def run(quick: bool, device: torch.device) -> dict:
    """Report section: the super-resolution targets of issue 14 on held-out data (CPU).

    Quick: one held-out subject, fewer slices, small 3-D crops and the (1, 1, 3) and (2, 2, 2) cases.
    """
    t0 = time.perf_counter()
    rows2, res2, ex2 = section_2d(quick)
    rows3, res3, ex3, seconds3 = section_3d(quick)
    results = {**res2, **res3}
    hf_rows = _srgan_hf(results)
    results["seconds_total"] = time.perf_counter() - t0
    results["seconds_3d_networks"] = seconds3
    results["cards"] = cards({k: v for k, v in results.items() if isinstance(v, dict)})
    notes = [
        "Held-out: phantom subjects 200-203 at 1 mm (training used 0-5, validation 6-7), the real Colin27 T1 and the "
        "real dipy T1 slice (never trained or tuned on; the real anatomy trained on is the posterior part of the "
        "MNI152 2009a template). LR by k-space truncation of the truth (the central N/s lines per scaled axis). "
        "Cubic B-spline = scipy.ndimage.zoom(order=3, grid_mode=True) on the same voxel geometry; zero-padded (sinc) "
        "interpolation is the least-squares linear estimate for k-space-truncated data and is shown alongside. "
        "Targets (against cubic): PSNR +1.5 dB at 2x, +1.0 dB at 4x, and higher SSIM; the SRGAN's high-frequency "
        "energy closer to the truth than its content-only (MSE) generator's, PSNR above cubic.",
        f"Every test image (slice, volume crop) is tapered to 0 over its {APODISE} border voxels (a Tukey window) "
        "before the LR is simulated and is the truth every method is scored against: k-space truncation assumes "
        "a periodic image, as a scanner's DFT image is; a phantom head clipped by the field of view (or a crop) is "
        "not, and without the taper the zero-filled interpolation (and the networks built on it) lose 3-4 dB to "
        "cubic on the clipped slices from wrap-around ringing no acquisition has.",
        f"3-D volumes: central {CROP_3D} crops (quick: 64 x 64 x 48) of the 1 mm heads (one contrast per held-out "
        "subject: T1w, T2w, FLAIR, PD) and of Colin27; SSIM on coronal X-Z planes; HF ratio = energy outside the LR "
        "band / the truth's.",
        "The machine was a 2-core CPU shared with other jobs: times are indicative only.",
    ]
    from recon.train.tasks_superres import ADAPT_BY_DEFAULT, ADAPT_STEPS

    timed = {k.split("/")[1] + " " + k.split("/")[2]: v for k, v in results.items() if k.endswith("seconds per volume")}
    if timed:
        notes.append(("Thick slices, default path " + (f"(self-supervised adaptation, {QUICK_ADAPT_STEPS if quick else ADAPT_STEPS} Adam steps on the "
                      "volume's own X-Y planes, then the X-Z / Y-Z planes)" if ADAPT_BY_DEFAULT else "")
                      + ": CPU seconds per volume (1 thread), " + ", ".join(f"{k} {v:.0f} s" for k, v in timed.items())))
    tables = [
        {"caption": "2-D slices, LR by k-space truncation (mean over slices)",
         "headers": ["scale", "data", "method", "slices", "PSNR dB", "SSIM", "PSNR gain dB", "SSIM gain", "target met"],
         "rows": rows2},
        {"caption": "3-D volumes, LR by k-space truncation (thick slices 1x1xs; isotropic 2x2x2)",
         "headers": ["scale", "data", "method", "volumes", "PSNR dB", "SSIM", "HF ratio", "PSNR gain dB", "SSIM gain",
                     "target met"], "rows": rows3},
        {"caption": "3-D SRGAN vs its content-only generator: high-frequency energy / truth's (1 = truth)",
         "headers": ["data", "cubic", "MSE generator", "SRGAN", "SRGAN PSNR gain over cubic dB", "target met"],
         "rows": hf_rows},
    ]
    return {
        "title": "Super-resolution: multi-scale fusion CNN and 3-D SRGAN (issue 14)",
        "tables": tables,
        "figures": [{"name": "superres", "figure": _figure(ex2, ex3),
                     "caption": "Held-out subject 200: 2-D x2/x4 (axial) and 3-D (coronal) examples"}],
        "notes": notes,
        "results": results,
    }


def main(argv=None) -> int:
    """``python -m benchmarks.superres [--quick] [--figures DIR]``; a full run also writes
    ``results/cpu/superres.md`` and ``.json``."""
    from benchmarks.common import section_main

    torch.set_num_threads(1)
    return section_main(run, __doc__, argv, save_as="superres")


if __name__ == "__main__":
    raise SystemExit(main())
