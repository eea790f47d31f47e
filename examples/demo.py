"""The recon demo: one embedded fastMRI-format file, undersampled and reconstructed.

Reads the embedded sample (simulated 8-coil k-space of a real T1 brain, fastMRI schema),
undersamples it 4x with fastMRI's equispaced mask (seeded per volume as fastMRI validation
does), reconstructs it with zero-filling, with ``recon.reconstruct``'s default method (``cs``:
ESPIRiT + L1-wavelet, tuning-free on any input) and with the best method for this data, the
bundled deep cascade (``cascade``, trained on other slabs of the same embedded data), and
writes to ``--out``:

* ``out.h5``      the ``--method`` volume in fastMRI submission format (dataset ``reconstruction``);
* ``out.nii.gz``  the same volume as NIfTI;
* ``demo.png``    fully sampled RSS | zero-filled | default | --method | error, with PSNR/SSIM.

Run with ``make demo`` (or ``python examples/demo.py --out outputs/demo``).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import torch

import recon
from recon.api import DEFAULT_METHOD
from recon.data import sample_file, save_nifti, save_reconstructions
from recon.data.io import atomic_path
from recon.masks import create_mask_for_mask_type
from recon.metrics import psnr, ssim
from recon.ops import center_crop

log = logging.getLogger("recon.demo")


def _plot(path: Path, panels: list[tuple[str, np.ndarray]], vmax: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.6), constrained_layout=True)
    for ax, (title, image) in zip(axes, panels):
        is_error = title.startswith("|error|")
        ax.imshow(image, cmap="magma" if is_error else "gray", vmin=0, vmax=vmax / (4 if is_error else 1))
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"), help="output folder (created)")
    parser.add_argument("--method", default="cascade", help="method written to out.h5 (default: cascade)")
    parser.add_argument("--acceleration", type=int, default=4, choices=(4, 8))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    path = sample_file("val")
    with h5py.File(path, "r") as f:
        kspace = f["kspace"][()]  # (slices, coils, H, W) complex64
        target = f["reconstruction_rss"][()]  # (slices, h, w)
    log.info("read %s: kspace %s %s, target %s", path.name, kspace.shape, kspace.dtype, target.shape)

    center = {4: 0.08, 8: 0.04}[args.acceleration]
    mask_func = create_mask_for_mask_type("equispaced_fraction", [center], [args.acceleration])
    mask, num_low = mask_func((1,) + kspace.shape[-2:] + (2,), seed=tuple(map(ord, path.name)))
    column_mask = mask.reshape(-1).numpy().astype(bool)  # (W,)
    undersampled = kspace * column_mask
    log.info("mask: %d of %d columns (%d low frequencies), %.2fx", column_mask.sum(), column_mask.size,
             num_low, column_mask.size / column_mask.sum())

    crop = target.shape[-2:]
    maxval = float(target.max())
    volumes, scores = {}, {}
    for method in dict.fromkeys(("zero_filled", DEFAULT_METHOD, args.method)):
        start = time.perf_counter()
        image = recon.reconstruct(undersampled, column_mask, method=method, progress=sys.stderr.isatty())
        seconds = time.perf_counter() - start
        volumes[method] = center_crop(torch.from_numpy(image), crop).numpy()
        scores[method] = (float(psnr(target, volumes[method], maxval)), float(ssim(target, volumes[method], maxval)))
        log.info("%-12s PSNR %.2f dB  SSIM %.4f  (%.2f s for %d slices)", method, *scores[method], seconds, image.shape[0])
    image = volumes[args.method]

    args.out.mkdir(parents=True, exist_ok=True)
    save_reconstructions({"out.h5": image}, args.out)  # atomic, fastMRI submission format
    save_nifti(args.out / "out.nii.gz", np.ascontiguousarray(np.transpose(image, (2, 1, 0))[:, ::-1, :]))

    mid = image.shape[0] // 2
    panels = [("fully sampled (RSS)", target[mid])]
    for method, volume in volumes.items():
        label = f"{method} (default)" if method == DEFAULT_METHOD else method
        p, s = scores[method]
        panels.append((f"{label} {args.acceleration}x\nPSNR {p:.1f} SSIM {s:.3f}", volume[mid]))
    panels.append((f"|error| x4 ({args.method})", np.abs(image[mid] - target[mid])))
    _plot(args.out / "demo.png", panels, vmax=float(target[mid].max()))
    written = ["out.h5", "out.nii.gz", "demo.png"]
    from recon.train.tasks_heads import available_heads  # image heads (issue 13): only with bundled weights

    if "synthesis-unet-t1w-flair" in available_heads():  # the sample is an axial T1-weighted brain
        # the networks take slices in array order (X, Y), not display order (anterior up): turn the
        # displayed slice back for them and the result forward for the figure
        flair = np.rot90(recon.synthesize(np.rot90(image[mid], -1).copy(), source="t1", target="flair"))
        _plot(args.out / "demo_synthesis.png", [(f"{args.method} reconstruction (T1w)", image[mid] / image[mid].max()),
                                                ("synthesised FLAIR (recon.synthesize)", flair / np.percentile(flair, 99.5))],
              vmax=1.0)
        written.append("demo_synthesis.png")
    for name in written:
        log.info("wrote %s", args.out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
