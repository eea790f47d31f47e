"""Every reconstruction method under acquisitions unlike the training corpus.

The learned models were trained on recon's physics corpus (SNR 15-60, plus 60-2000 since stage
10; 4-16 coils; 192-256 matrices; phase encoding along W). Here one real held-out image, dipy's
coronal T1 slice (another subject than any training data), is simulated the way recon simulates
everything (:func:`recon.data.simulate_multicoil`, 8 coils, SNR 40 unless the row says otherwise),
with one setting changed per row: noise (noiseless to SNR 15), coil count (4, 32), matrix
(320 x 320), 2x readout oversampling, phase encoding along H (a row mask); then other images:
dipy's b=0 slice at 96 x 96, pydicom's 64 x 64 MR test slice, and pydicom's CT test slice, whose
body fills the field of view, with and without a 16-pixel empty margin. Masks: fastMRI
equispaced-fraction, 4x with an 8 % centre and 8x with a 4 % centre (seed 0). Metric: fastMRI's
SSIM against the simulation's RSS target (``maxval`` = its maximum), through
``recon.reconstruct(..., crop=target size)``.

    python -m benchmarks.robustness [--quick]          # prints the tables
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):  # run as a script: python benchmarks/robustness.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import section_main  # noqa: E402

from recon.api import reconstruct  # noqa: E402
from recon.data.simulate import SimulationConfig, simulate_multicoil  # noqa: E402
from recon.masks import create_mask_for_mask_type  # noqa: E402
from recon.metrics import ssim  # noqa: E402

#: acceleration -> centre fraction (fastMRI's brain settings, the issue's held-out masks)
SETTINGS = {4: 0.08, 8: 0.04}
METHODS = ("zero_filled", "cs", "unet", "cascade", "varnet")
DATA = Path(__file__).resolve().parent.parent / "data"
#: (row label, image, SimulationConfig changes, transpose to phase-encode along H)
CONDITIONS: tuple[tuple[str, str, dict, bool], ...] = (
    ("dipy T1, SNR 40 (as the held-out split)", "dipy_t1", {}, False),
    ("dipy T1, noiseless", "dipy_t1", {"snr": None}, False),
    ("dipy T1, SNR 200", "dipy_t1", {"snr": 200.0}, False),
    ("dipy T1, SNR 15", "dipy_t1", {"snr": 15.0}, False),
    ("dipy T1, 4 coils", "dipy_t1", {"num_coils": 4}, False),
    ("dipy T1, 32 coils", "dipy_t1", {"num_coils": 32}, False),
    ("dipy T1, 320 x 320", "dipy_t1", {"matrix_size": (320, 320)}, False),
    ("dipy T1, 2x readout oversampling", "dipy_t1", {"readout_oversampling": 2}, False),
    ("dipy T1, phase encoding along H", "dipy_t1", {}, True),
    ("dipy b=0, 96 x 96", "dipy_b0", {"matrix_size": (96, 96)}, False),
    ("pydicom MR, 64 x 64", "mr_small", {}, False),
    ("pydicom CT, body fills the FOV", "ct_small", {}, False),
    ("pydicom CT, 16-pixel margin", "ct_small_margin", {}, False),
)
#: the SNR series of the plot (row labels, SNR; noiseless drawn at 5000)
SNR_SERIES = (("dipy T1, SNR 15", 15.0), ("dipy T1, SNR 40 (as the held-out split)", 40.0),
              ("dipy T1, SNR 200", 200.0), ("dipy T1, noiseless", 5000.0))


def load_image(name: str) -> np.ndarray:
    """A real magnitude image ``(H, W)`` float32 (pydicom's test files come with pydicom)."""
    if name in ("dipy_t1", "dipy_b0"):
        import nibabel as nib

        path = DATA / ("dipy_t1_coronal_slice.nii.gz" if name == "dipy_t1" else "dipy_b0_10slices.nii.gz")
        volume = np.asarray(nib.load(path).dataobj, dtype=np.float32)
        return volume.squeeze() if name == "dipy_t1" else volume[..., 5]
    import pydicom
    from pydicom.data import get_testdata_file

    file = "MR_small.dcm" if name == "mr_small" else "CT_small.dcm"
    pixels = pydicom.dcmread(get_testdata_file(file)).pixel_array.astype(np.float32)
    if name == "mr_small":
        return pixels
    image = np.clip(pixels - pixels.min(), 0, None)  # CT numbers shifted to >= 0: a magnitude image
    return np.pad(image, 16) if name == "ct_small_margin" else image


def score(image: np.ndarray, changes: dict, rows: bool, methods, device: torch.device) -> dict:
    """``{"4x": {method: SSIM}, "8x": ...}`` for one simulated slice."""
    sim = simulate_multicoil(image, SimulationConfig(**{"num_coils": 8, **changes}), seed=1)
    kspace, target = sim.kspace[0], sim.target[0].astype(np.float64)
    out: dict = {}
    for acceleration, fraction in SETTINGS.items():
        mask_func = create_mask_for_mask_type("equispaced_fraction", [fraction], [acceleration])
        columns = mask_func((1, 1, kspace.shape[-1], 1), seed=0)[0].numpy().reshape(-1).astype(np.float32)
        data, mask, truth = kspace * columns, columns, target
        if rows:  # the same acquisition with the image turned: phase encoding along H, whole rows sampled
            data = np.ascontiguousarray(data.transpose(0, 2, 1))
            mask = np.repeat(columns[:, None], kspace.shape[-2], axis=1)
            truth = target.T
        out[f"{acceleration}x"] = {
            method: float(ssim(truth[None], np.asarray(reconstruct(
                data, mask, method=method, device=device, progress=False, crop=truth.shape))[None].astype(np.float64)))
            for method in methods
        }
    return out


def snr_figure(results: dict):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6))
    for i, key in enumerate(f"{a}x" for a in SETTINGS):
        ax = fig.add_subplot(1, len(SETTINGS), i + 1)
        snrs = [snr for label, snr in SNR_SERIES if label in results]
        for j, method in enumerate(METHODS):
            ax.plot(snrs, [results[label][key][method] for label, _ in SNR_SERIES if label in results],
                    marker="o", color=f"C{j}", label=method)
        ax.set_xscale("log")
        ax.set_xticks(snrs, [("noiseless" if s >= 5000 else f"{s:g}") for s in snrs])
        ax.set_xlabel("SNR of the simulated k-space")
        ax.set_ylabel("SSIM")
        ax.set_title(f"dipy coronal T1, 8 coils, {key}", fontsize=10)
        ax.grid(True, alpha=0.3)
    fig.axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def run(quick: bool, device: torch.device) -> dict:
    """Report section: SSIM per condition and method at 4x and 8x; SSIM against SNR as a plot.

    Quick: three conditions.
    """
    conditions = CONDITIONS[:3] if quick else CONDITIONS
    results = {label: score(load_image(image), changes, rows, METHODS, device)
               for label, image, changes, rows in conditions}
    tables = []
    for key in (f"{a}x" for a in SETTINGS):
        table_rows = []
        for label, per in results.items():
            best_classical = max(per[key]["zero_filled"], per[key]["cs"])
            below = [m for m in ("unet", "cascade", "varnet") if per[key][m] < best_classical]
            table_rows.append([label, *(per[key][m] for m in METHODS), ", ".join(below) or "-"])
        tables.append({"caption": f"{key}: SSIM per condition (one slice each)",
                       "headers": ["condition", *METHODS, "learned below zero-filled or cs"], "rows": table_rows})
    figures = []
    if sum(label in results for label, _ in SNR_SERIES) >= 2:
        figures.append({"name": "robustness-snr", "figure": snr_figure(results),
                        "caption": "SSIM against the noise level of the k-space (dipy's coronal T1, 8 coils)"})
    notes = [__doc__.split("\n\n")[1].replace("\n", " ")]
    if quick:
        notes.append("QUICK MODE: the first three conditions.")
    return {"title": "Robustness: every method under acquisitions unlike the training corpus", "tables": tables,
            "figures": figures, "notes": notes, "results": {"conditions": results}}


def main(argv: list[str] | None = None) -> int:
    return section_main(run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
