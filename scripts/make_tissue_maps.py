"""Build the compact tissue probability maps in ``data/tissue/`` used by ``recon.data.phantom``.

Two anatomies, both in MNI space, stored as 4-D uint8 NIfTI ``(X, Y, Z, 6)`` holding the
probabilities (x 255) of the tissues ``gm, wm, csf, fat, soft_tissue, bone`` (background is
``1 - sum``), cropped to the head and resampled to ``--voxel-size`` mm (default 1.5):

* ``colin27_tissue.nii.gz`` - Colin27 (one subject, 27 averaged T1 scans, Holmes et al. 1998),
  segmented here: inside the brain mask of ``ch2bet`` (the brain-extracted Colin27 of
  ``mricron-data``, shipped as ``data/templates/colin27_bet_mask.nii.gz``) a 3-class fuzzy
  c-means of the T1 intensities gives CSF / GM / WM;
  outside it, inside the head, a 3-class fuzzy c-means gives bone (dark: skull, air
  spaces), soft tissue (muscle, skin) and fat (bright: scalp fat, marrow).
* ``mni152_tissue.nii.gz`` - the ICBM 2009a nonlinear symmetric average brain (Fonov et al.
  2009/2011) from nilearn's wheel: its grey- and white-matter probability maps, CSF = the
  template's brain mask minus GM and WM, and the extra-cerebral tissues (fat, soft tissue,
  bone) of Colin27, which lies in the same space (an integer voxel shift); the space
  between the two brains is CSF.

Run (from the repository root; everything it reads ships with recon or nilearn)::

    python scripts/make_tissue_maps.py

The fuzzy c-means is ``recon.preprocess.normalize.fcm`` (Bezdek 1981, fuzzifier m = 2) on the
intensity histogram (weighted by voxel counts), which is exact for 8-bit images and takes
milliseconds. Deterministic: same inputs, same maps.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import gzip

import nibabel as nib
import numpy as np
from scipy import ndimage

from recon.data.io import atomic_path

TISSUES = ("gm", "wm", "csf", "fat", "soft_tissue", "bone")
ROOT = Path(__file__).resolve().parents[1]


def fcm_histogram(values: np.ndarray, num_classes: int, m: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Fuzzy c-means of 8-bit intensities via their histogram (``recon.preprocess.normalize.fcm``
    on the 256 levels weighted by their voxel counts: exact, and milliseconds).

    Returns:
        ``(centers (K,) ascending, memberships (256, K))``: the membership of every
        intensity level 0-255 in each class.
    """
    from recon.preprocess.normalize import fcm

    levels = np.arange(256, dtype=np.float64)
    counts = np.bincount(values.astype(np.int64).ravel(), minlength=256)[:256].astype(np.float64)
    centers, u = fcm(levels, num_classes, fuzziness=m, max_iter=500, tol=1e-8, weights=counts)
    return centers, u.T


def fill_holes_slicewise(mask: np.ndarray) -> np.ndarray:
    out = ndimage.binary_fill_holes(mask)
    for axis in range(3):
        moved = np.moveaxis(out, axis, 0)
        moved[:] = np.stack([ndimage.binary_fill_holes(s) for s in moved])
    return out


def largest_component(mask: np.ndarray) -> np.ndarray:
    labels, n = ndimage.label(mask)
    if n <= 1:
        return mask
    sizes = ndimage.sum(mask, labels, index=np.arange(1, n + 1))
    return labels == (1 + int(np.argmax(sizes)))


def segment_colin(t1: np.ndarray, bet: np.ndarray) -> np.ndarray:
    """``(X, Y, Z, 6)`` float probabilities of :data:`TISSUES` for Colin27."""
    head = fill_holes_slicewise(largest_component(ndimage.binary_opening(t1 > 0, iterations=1)))
    brain = fill_holes_slicewise(bet > 0) & head
    probs = np.zeros(t1.shape + (len(TISSUES),), dtype=np.float32)
    t1i = np.clip(np.rint(t1), 0, 255).astype(np.int64)
    _, u_brain = fcm_histogram(t1i[brain], 3)  # csf, gm, wm
    _, u_extra = fcm_histogram(t1i[head & ~brain], 3)  # bone, soft, fat
    for k, name in enumerate(("csf", "gm", "wm")):
        probs[..., TISSUES.index(name)] = np.where(brain, u_brain[t1i, k], 0)
    for k, name in enumerate(("bone", "soft_tissue", "fat")):
        probs[..., TISSUES.index(name)] = np.where(head & ~brain, u_extra[t1i, k], 0)
    return probs


def mni_with_colin_head(mni_dir: Path, colin_probs: np.ndarray, colin_affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MNI152 2009a brain tissues in the Colin27 grid, with Colin27's extra-cerebral tissues."""
    name = "mni_icbm152_{}_tal_nlin_sym_09a_converted.nii.gz"
    imgs = {k: nib.load(mni_dir / name.format(k)) for k in ("t1", "gm", "wm")}
    mni_affine = imgs["t1"].affine
    shift = np.rint(np.linalg.solve(mni_affine, colin_affine)[:3, 3]).astype(int)  # colin (0,0,0) in mni voxels
    if not np.allclose(np.linalg.solve(mni_affine, colin_affine)[:3, :3], np.eye(3)):
        raise RuntimeError("MNI and Colin27 grids are expected to be 1 mm and axis-aligned")
    shape = colin_probs.shape[:3]
    out = {}
    for key, img in imgs.items():
        data = np.asarray(img.dataobj, dtype=np.float32)
        canvas = np.zeros(shape, dtype=np.float32)
        src = tuple(slice(max(0, s), min(n, s + m)) for s, n, m in zip(shift, data.shape, shape))
        dst = tuple(slice(sl.start - s, sl.stop - s) for sl, s in zip(src, shift))
        canvas[dst] = data[src]
        out[key] = canvas
    gm, wm = out["gm"] / 255.0, out["wm"] / 255.0
    mni_brain = fill_holes_slicewise(out["t1"] > 0)
    csf = np.where(mni_brain, np.clip(1.0 - gm - wm, 0, 1), 0.0)
    brain_sum = np.clip(gm + wm + csf, 0, 1)
    probs = np.zeros_like(colin_probs)
    probs[..., TISSUES.index("gm")] = gm
    probs[..., TISSUES.index("wm")] = wm
    probs[..., TISSUES.index("csf")] = csf
    colin_brain = colin_probs[..., :3].sum(-1)
    # Colin's intracranial space not covered by the MNI brain is CSF
    probs[..., TISSUES.index("csf")] += np.clip(colin_brain - brain_sum, 0, 1)
    free = np.clip(1.0 - probs[..., :3].sum(-1), 0, 1)
    for name in ("fat", "soft_tissue", "bone"):
        k = TISSUES.index(name)
        probs[..., k] = np.minimum(colin_probs[..., k], free)
    total = probs.sum(-1, keepdims=True)
    probs = np.where(total > 1, probs / np.maximum(total, 1e-6), probs)
    return probs.astype(np.float32), colin_affine


def crop_and_resample(probs: np.ndarray, affine: np.ndarray, voxel_size: float, margin_mm: float = 6.0):
    """Crop to the head's bounding box (+ margin) and resample to ``voxel_size`` (area-averaged)."""
    occupied = probs.sum(-1) > 0.02
    idx = np.argwhere(occupied)
    lo = np.maximum(idx.min(0) - int(margin_mm), 0)
    hi = np.minimum(idx.max(0) + int(margin_mm) + 1, probs.shape[:3])
    probs = probs[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    affine = affine.copy()
    affine[:3, 3] = affine[:3, :3] @ lo + affine[:3, 3]
    factor = voxel_size / float(np.abs(affine[0, 0]))
    if factor == 1.0:
        return probs, affine
    # anti-aliasing (box-like) before linear resampling: partial volume at the new size
    smoothed = ndimage.uniform_filter(probs, size=(factor, factor, factor, 1)) if factor >= 2 else \
        ndimage.gaussian_filter(probs, sigma=(0.42 * factor, 0.42 * factor, 0.42 * factor, 0))
    new_shape = tuple(int(np.floor((n - 1) / factor)) + 1 for n in probs.shape[:3])
    grid = np.meshgrid(*[np.arange(n) * factor for n in new_shape], indexing="ij")
    out = np.stack(
        [ndimage.map_coordinates(smoothed[..., k], grid, order=1, mode="nearest") for k in range(probs.shape[-1])],
        axis=-1,
    )
    new_affine = affine.copy()
    new_affine[:3, :3] = affine[:3, :3] * factor
    return out, new_affine


def save(probs: np.ndarray, affine: np.ndarray, path: Path, source: str) -> None:
    data = np.clip(np.rint(probs * 255.0), 0, 255).astype(np.uint8)
    img = nib.Nifti1Image(data, affine)
    img.header["descrip"] = ("tissues:" + ",".join(TISSUES))[:79].encode()
    img.header.set_xyzt_units("mm")
    img.set_qform(affine, code=4)
    img.set_sform(affine, code=4)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as raw, \
            gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=9, mtime=0) as fout:
        fout.write(img.to_bytes())  # no name, no mtime in the gzip header: reruns give identical bytes
    print(f"{path}: {data.shape} uint8, {path.stat().st_size / 1e6:.2f} MB ({source})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--brain-mask", type=Path, default=ROOT / "data" / "templates" / "colin27_bet_mask.nii.gz",
                        help="Colin27 brain mask (default: data/templates/colin27_bet_mask.nii.gz, = mricron-data's ch2bet > 0)")
    parser.add_argument("--nilearn-data", type=Path, default=None, help="nilearn/datasets/data (default: the installed nilearn's)")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "tissue")
    parser.add_argument("--voxel-size", type=float, default=1.5)
    args = parser.parse_args()
    if args.nilearn_data is None:
        import nilearn

        args.nilearn_data = Path(nilearn.__file__).parent / "datasets" / "data"
    colin_img = nib.load(ROOT / "data" / "colin27_t1.nii.gz")
    t1 = np.asarray(colin_img.dataobj, dtype=np.float32)
    bet = np.asarray(nib.load(args.brain_mask).dataobj, dtype=np.float32)
    colin = segment_colin(t1, bet)
    mni, mni_affine = mni_with_colin_head(args.nilearn_data, colin, colin_img.affine)
    for name, probs, affine, source in (
        ("colin27", colin, colin_img.affine, "Colin27 T1 + ch2bet, fuzzy c-means"),
        ("mni152", mni, mni_affine, "ICBM152 2009a GM/WM/T1 (nilearn) + Colin27 head"),
    ):
        cropped, new_affine = crop_and_resample(probs, affine, args.voxel_size)
        save(cropped[..., :], new_affine, args.out / f"{name}_tissue.nii.gz", source)
    (args.out / "tissues.json").write_text(json.dumps({"tissues": list(TISSUES), "voxel_size_mm": args.voxel_size}, indent=2) + "\n")


if __name__ == "__main__":
    main()
