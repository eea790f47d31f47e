"""Regenerate the embedded sample data in data/ from its public sources.

Sources (see data/README.md for licences):
  * MNI Colin27 T1 ("ch2.nii.gz") from the Debian package mricron-data:
        apt-get install mricron-data   ->   /usr/share/mricron/templates/ch2.nii.gz
  * dipy's wheel (BSD-3): dipy/data/files/t1_coronal_slice.npy and S0_10slices.nii.gz:
        pip download --no-deps dipy==1.12.1 && unzip dipy-*.whl 'dipy/data/files/*'

Usage:
    python scripts/make_sample_data.py --dipy-files /path/to/dipy/data/files [--mricron /usr/share/mricron/templates]

Writes (atomically) data/colin27_t1.nii.gz, data/dipy_t1_coronal_slice.nii.gz,
data/dipy_b0_10slices.nii.gz and data/fastmri/sample_val_multicoil.h5. The conversion is
lossless (the sources are 8-/16-bit integer images) and the simulation is seeded, so a
rerun reproduces the committed files' contents.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recon.data.io import save_nifti  # noqa: E402
from recon.data.sample import SAMPLE_FILE, SAMPLE_SLICES, SplitVolume, simulate_split_volume  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mricron", type=Path, default=Path("/usr/share/mricron/templates"))
    parser.add_argument("--dipy-files", type=Path, required=True, help="folder dipy/data/files from the dipy wheel")
    parser.add_argument("--out", type=Path, default=REPO / "data")
    args = parser.parse_args(argv)

    import nibabel as nib

    out: Path = args.out
    (out / SAMPLE_FILE).parent.mkdir(parents=True, exist_ok=True)

    # Colin27: kept whole (181 x 217 x 181, 1 mm, uint8) so slice indices match the source.
    ch2 = nib.load(str(args.mricron / "ch2.nii.gz"))
    colin = np.asarray(ch2.dataobj)
    if colin.dtype != np.uint8:
        raise SystemExit(f"expected uint8 ch2.nii.gz, got {colin.dtype}")
    save_nifti(out / "colin27_t1.nii.gz", colin, affine=ch2.affine)

    # dipy T1 coronal slice: stored as 8-bit values / 255 -> exact uint8. Saved so that
    # recon.data.simulate.nifti_slices (np.rot90) shows it as dipy does.
    t1 = np.load(args.dipy_files / "t1_coronal_slice.npy")
    t1_u8 = np.round(t1 * 255.0).astype(np.uint8)
    if not np.allclose(t1_u8 / 255.0, t1, atol=1e-6):
        raise SystemExit("t1_coronal_slice.npy is no longer 8-bit data; store it differently")
    save_nifti(out / "dipy_t1_coronal_slice.nii.gz", np.rot90(t1_u8, k=-1)[:, :, None].copy(), voxel_size=(1, 1, 1))

    # dipy b=0 slices (uint16, 2 mm in plane), first (only) volume, with the source affine.
    b0 = nib.load(str(args.dipy_files / "S0_10slices.nii.gz"))
    b0_data = np.asarray(b0.dataobj)[..., 0]
    save_nifti(out / "dipy_b0_10slices.nii.gz", b0_data.astype(np.uint16), affine=b0.affine)

    # The committed fastMRI-format sample: three slices from the middle of the second
    # validation slab, simulated exactly as the split files are.
    volume = SplitVolume("sample_val_multicoil", "colin27_t1.nii.gz", 2, *SAMPLE_SLICES)
    simulate_split_volume(volume, out / SAMPLE_FILE, "multicoil")
    for path in sorted(out.rglob("*")):
        if path.is_file():
            print(f"{path.relative_to(out)}  {path.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
