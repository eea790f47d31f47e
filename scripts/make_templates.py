"""Build the brain template used by ``recon.preprocess.brain_mask`` (data/templates/).

Source: the MNI ICBM152 2009a nonlinear symmetric template as shipped inside nilearn's wheel
(``nilearn/datasets/data/mni_icbm152_{t1,gm,wm}_tal_nlin_sym_09a_converted.nii.gz``: 1 mm,
197 x 233 x 189, uint8; the T1 is skull-stripped). nilearn is needed only here, never at
run time.

Outputs (2 mm, 99 x 117 x 95, uint8, compact):

* ``data/templates/mni152_2009a_t1_2mm.nii.gz``: the T1 template averaged over 2x2x2 blocks;
* ``data/templates/mni152_2009a_brain_2mm.nii.gz``: brain probability x 255, where the 1 mm
  brain mask is ``GM + WM probability > 0.5``, closed (3 voxels), holes filled (ventricles
  and deep CSF become brain) and restricted to its largest connected component, then averaged
  over 2x2x2 blocks (so its 0.5 level set is the 1 mm mask's boundary, without staircase).

Reference for tests and benchmarks (another subject than the template's):

* ``data/templates/colin27_bet_mask.nii.gz``: the brain mask of Colin27 (``data/colin27_t1.nii.gz``)
  from ``ch2bet.nii.gz`` of Debian's ``mricron-data`` (Chris Rorden's BET extraction of the same
  volume; voxels and affine identical to ``ch2.nii.gz``): ``ch2bet > 0``, uint8 0/1.

Run:  python scripts/make_templates.py [--nilearn-data DIR] [--mricron-templates DIR] [--out data/templates]
      (``apt-get download mricron-data && dpkg -x mricron-data_*.deb x`` gives
      ``x/usr/share/mricron/templates``; without --mricron-templates that file is not rebuilt)
"""

from __future__ import annotations

import argparse
import os
import uuid
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

NAME = "mni_icbm152_{}_tal_nlin_sym_09a_converted.nii.gz"


def _nilearn_data() -> Path:
    import nilearn  # only this script needs nilearn

    return Path(nilearn.__file__).parent / "datasets" / "data"


def brain_mask_1mm(gm: np.ndarray, wm: np.ndarray) -> np.ndarray:
    """GM + WM probability > 0.5, closed, filled, largest component (boolean)."""
    mask = (gm + wm) > 0.5
    mask = ndimage.binary_closing(mask, structure=ndimage.generate_binary_structure(3, 1), iterations=3)
    mask = ndimage.binary_fill_holes(mask)
    labels, n = ndimage.label(mask)
    if n > 1:
        sizes = ndimage.sum(mask, labels, index=np.arange(1, n + 1))
        mask = labels == (1 + int(np.argmax(sizes)))
    return mask


def block_mean(volume: np.ndarray, affine: np.ndarray, factor: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Average ``factor``^3 blocks (zero padding at the high end); the affine of the block centres."""
    pad = [(0, (-n) % factor) for n in volume.shape]
    v = np.pad(volume.astype(np.float64), pad)
    shp = [n // factor for n in v.shape]
    v = v.reshape(shp[0], factor, shp[1], factor, shp[2], factor).mean(axis=(1, 3, 5))
    new = affine.copy()
    new[:3, :3] = affine[:3, :3] * factor
    new[:3, 3] = affine[:3, :3] @ np.full(3, (factor - 1) / 2) + affine[:3, 3]
    return v, new


def _save(volume: np.ndarray, affine: np.ndarray, path: Path, code: int = 4) -> None:
    img = nib.Nifti1Image(volume.astype(np.uint8), affine)
    img.header.set_xyzt_units("mm")
    img.set_qform(affine, code=code)  # 4: MNI152, 3: Talairach/other template space
    img.set_sform(affine, code=code)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp.nii.gz"
    try:
        nib.save(img, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nilearn-data", type=Path, default=None, help="nilearn/datasets/data folder")
    parser.add_argument("--mricron-templates", type=Path, default=None,
                        help="mricron-data templates folder holding ch2bet.nii.gz (Colin27 reference mask)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "data" / "templates")
    args = parser.parse_args(argv)
    src = args.nilearn_data or _nilearn_data()
    t1_img = nib.load(src / NAME.format("t1"))
    t1 = np.asarray(t1_img.dataobj, dtype=np.float64)
    gm = np.asarray(nib.load(src / NAME.format("gm")).dataobj, dtype=np.float64) / 255.0
    wm = np.asarray(nib.load(src / NAME.format("wm")).dataobj, dtype=np.float64) / 255.0
    mask = brain_mask_1mm(gm, wm)
    t1_2mm, affine = block_mean(t1, t1_img.affine)
    prob_2mm, _ = block_mean(mask.astype(np.float64), t1_img.affine)
    args.out.mkdir(parents=True, exist_ok=True)
    _save(np.clip(np.round(t1_2mm), 0, 255), affine, args.out / "mni152_2009a_t1_2mm.nii.gz")
    _save(np.clip(np.round(prob_2mm * 255), 0, 255), affine, args.out / "mni152_2009a_brain_2mm.nii.gz")
    if args.mricron_templates is not None:
        bet = nib.load(args.mricron_templates / "ch2bet.nii.gz")
        _save((np.asarray(bet.dataobj) > 0).astype(np.uint8), bet.affine, args.out / "colin27_bet_mask.nii.gz",
              code=3)
    print(f"wrote {args.out}: brain mask {int(mask.sum())} mm^3 at 1 mm; 2 mm grid {t1_2mm.shape}")


if __name__ == "__main__":
    main()
