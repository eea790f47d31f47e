"""DICOM target of issue 10: ``read_dicom_series`` equals ``dicom2nifti`` on every test series.

For each series - the DICOM series in pydicom's wheel (``dicomdirtests``) and synthetic series
written with bare pydicom from a Colin27 block in seven orientations (axial, flipped axial,
rotated, sagittal, coronal, oblique, reversed stacking), at 12 random 3-D rotations, plus
enhanced multi-frame files - the
files are copied under random names in three shuffled orders and converted by both tools.
Recorded: whether dicom2nifti and recon both convert or both refuse, whether the volume is
identical (``np.array_equal`` after casting dicom2nifti's float64 to float32), the largest
affine difference in memory and as nibabel reads both NIfTI files, and the conversion time
ratio (recon / dicom2nifti, interleaved in one process on a shared 2-core machine).

    python benchmarks/dicom.py
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):  # run as a script: python benchmarks/dicom.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "data"))
from benchmarks.common import markdown_table, save_results, time_repeats  # noqa: E402
from dicom_files import colin_block, geometry, rotation, write_enhanced, write_series  # noqa: E402

from recon.data import dicom_to_nifti, read_dicom_series  # noqa: E402


def synthetic_series(root: Path, quick: bool = False) -> dict[str, Path]:
    block = colin_block()
    geometries = {
        "axial": geometry(),
        "axial-z-down": geometry(rot=np.diag([1.0, -1.0, -1.0])),
        "rotated-20-z": geometry(rot=rotation("z", 20)),
        "rotated-30-x-reversed": geometry(rot=rotation("x", 30) @ np.diag([1.0, 1.0, -1.0])),
        "sagittal": geometry(rot=np.array([[0.0, 0, 1], [1, 0, 0], [0, 1, 0]])),
        "coronal": geometry(rot=np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])),
        "oblique": geometry(rot=rotation("x", 25) @ rotation("y", -15) @ rotation("z", 40)),
    }
    out = {}
    for name, affine in geometries.items():
        folder = root / f"synthetic-ct-{name}"
        write_series(folder, block * 4.0 - 1000.0, affine, slope=0.5, intercept=-1024.0, reverse_instances=True)
        out[folder.name] = folder
    mr = root / "synthetic-mr-oblique"
    write_series(mr, block, geometries["oblique"], modality="MR", slope=0.37, intercept=1.5)
    out[mr.name] = mr
    # strongly oblique stacks: random 3-D rotations (seeds 40, 43, 58: dicom2nifti's axis choice is not nibabel's)
    from scipy.spatial.transform import Rotation

    small = colin_block(shape=(12, 14, 8))
    for seed in (3, 40, 58) if quick else (1, 2, 3, 5, 8, 13, 21, 34, 40, 43, 55, 58):
        folder = root / f"random-rotation-{seed}"
        write_series(folder, small, geometry(rot=Rotation.random(random_state=seed).as_matrix()), slope=1.0, intercept=0.0)
        out[folder.name] = folder
    for reverse in (False, True):
        folder = root / f"synthetic-enhanced-mr{'-reversed' if reverse else ''}"
        folder.mkdir()
        write_enhanced(folder / "multi.dcm", block, geometries["rotated-20-z"], slope=2.0, intercept=10.0, reverse_frames=reverse)
        out[folder.name] = folder
    return out


def pydicom_series() -> dict[str, Path]:
    import pydicom

    root = Path(os.path.dirname(pydicom.data.__file__)) / "test_files" / "dicomdirtests"
    folders = sorted({p.parent for p in root.rglob("*") if p.is_file() and not p.name.startswith("DICOMDIR")})
    return {"pydicom:" + str(f.relative_to(root)): f for f in folders if f != root and "TINY_ALPHA" not in str(f)}


def shuffled(src: Path, dst: Path, seed: int) -> Path:
    dst.mkdir(parents=True)
    files = sorted(p for p in src.iterdir() if p.is_file())
    random.Random(seed).shuffle(files)
    for i, f in enumerate(files):
        shutil.copy(f, dst / f"f{random.Random(seed * 7919 + i).getrandbits(32):08x}")
    return dst


def compare(folder: Path, work: Path) -> dict[str, object]:
    import dicom2nifti
    import nibabel as nib

    row: dict[str, object] = {}
    try:
        d2n = dicom2nifti.dicom_series_to_nifti(str(folder), str(work / "d2n.nii.gz"))["NII"]
    except Exception as err:  # dicom2nifti raises several types
        d2n, row["dicom2nifti"] = None, f"refuses ({type(err).__name__}: {str(err)[:40]})"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            volume, affine, _ = read_dicom_series(folder)
            dicom_to_nifti(folder, work / "recon.nii.gz")
    except ValueError as err:
        message = str(err).splitlines()[0].replace(f"'{folder}'", "<dir>").replace(f"{folder}/", "")
        volume, row["recon"] = None, f"refuses ({message[:70]})"
    if d2n is None or volume is None:
        row["agree"] = d2n is None and volume is None
        return row
    ours, theirs = nib.load(str(work / "recon.nii.gz")), nib.load(str(work / "d2n.nii.gz"))
    row["dicom2nifti"] = row["recon"] = "converts"
    row["shape"] = "x".join(map(str, volume.shape))
    row["data_identical"] = volume.shape == d2n.shape and bool(np.array_equal(volume, np.asarray(d2n.dataobj).astype(np.float32)))
    row["affine_max_diff_mm"] = float(np.abs(affine - d2n.affine).max())
    row["file_affine_identical"] = bool(np.array_equal(ours.affine, theirs.affine))
    # recon stores float32; dicom2nifti keeps float64 where the rescale makes floats: compare values as float32
    row["file_data_identical"] = bool(np.array_equal(ours.get_fdata(dtype=np.float32), theirs.get_fdata().astype(np.float32)))
    row["agree"] = bool(row["data_identical"] and row["file_affine_identical"] and row["file_data_identical"] and row["affine_max_diff_mm"] == 0.0)
    return row


def measure(orders: int, repeats: int, quick: bool) -> tuple[list[list], dict, object]:
    """Compare every series in ``orders`` shuffled file orders; time one conversion of each tool."""
    import logging

    import dicom2nifti

    logging.getLogger("dicom2nifti").setLevel("ERROR")
    rows, payload = [], {"series": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        series = {**pydicom_series(), **synthetic_series(tmp / "synthetic", quick=quick)}
        for name, folder in series.items():
            results = []
            for seed in range(orders):
                work = tmp / "work" / f"{len(payload['series'])}-{seed}"
                work.mkdir(parents=True)
                results.append(compare(shuffled(folder, work / "dicom", seed), work))
            payload["series"][name] = results
            first = results[0]
            both = all("shape" in r for r in results)  # converted by both tools in every order
            rows.append([
                name, len(list(folder.iterdir())), first.get("shape", "-"), first.get("dicom2nifti"), first.get("recon"),
                all(r["data_identical"] for r in results) if both else None,
                max(r["affine_max_diff_mm"] for r in results) if both else None,
                all(r["file_affine_identical"] and r["file_data_identical"] for r in results) if both else None,
                all(r["agree"] for r in results),
            ])
        # speed: one mid-size synthetic series (24 slices 40 x 48), both tools, interleaved
        folder = series["synthetic-ct-oblique"]
        out = tmp / "timing"
        out.mkdir()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            times = time_repeats(
                {
                    "recon.dicom_to_nifti": lambda: dicom_to_nifti(folder, out / "a.nii.gz"),
                    "dicom2nifti": lambda: dicom2nifti.dicom_series_to_nifti(str(folder), str(out / "b.nii.gz")),
                },
                torch.device("cpu"),
                repeats=repeats,
                warmup=1,
            )
            volume, affine, info = read_dicom_series(folder)
        from recon.viz import show_mid_slices

        figure = show_mid_slices(volume, affine, title=f"synthetic oblique CT read by recon ({info.orientation}, as dicom2nifti)")
    ratio = times["recon.dicom_to_nifti"]["median_s"] / times["dicom2nifti"]["median_s"]
    payload["timing"] = {k: {kk: v[kk] for kk in ("median_s", "min_s", "max_s")} for k, v in times.items()}
    payload["timing_ratio_recon_over_dicom2nifti"] = ratio
    payload["series_agreeing"] = sum(1 for r in rows if r[-1])
    payload["series_total"] = len(rows)
    payload["series_converted_by_both"] = sum(1 for r in rows if r[3] == "converts")
    return rows, payload, figure


HEADERS = ["series", "files", "shape", "dicom2nifti", "recon", "data identical", "max affine diff (mm, memory)",
           "NIfTI files identical (affine, values)", "agree in all orders"]


def _summary(payload: dict, orders: int, repeats: int) -> str:
    t = payload["timing"]
    return (
        f"{payload['series_agreeing']}/{payload['series_total']} series: recon and dicom2nifti agree in every one of "
        f"{orders} shuffled file orders ({payload['series_converted_by_both']} converted by both with identical data "
        "and affine; the others refused by both).\n\n"
        f"Time to convert the 24-slice oblique synthetic series to .nii.gz (median of {repeats}, interleaved; shared "
        f"2-core machine): recon {t['recon.dicom_to_nifti']['median_s'] * 1e3:.0f} ms, dicom2nifti "
        f"{t['dicom2nifti']['median_s'] * 1e3:.0f} ms, ratio {payload['timing_ratio_recon_over_dicom2nifti']:.2f}.\n\n"
        "recon refuses with a message naming the file or slice position (mixed orientations, missing slice, "
        "several series); dicom2nifti's refusals are its error codes. Note: dicom2nifti does not set CT padding to "
        "air; none of these series has padding voxels, so recon's default `pad_to_air=True` changes nothing here.\n"
    )


def run(quick: bool, device: torch.device) -> dict:
    """Report section (benchmarks/run.py): recon vs dicom2nifti on every test series.

    Quick: one file order, 3 random rotations, 3 timing repeats (about 10 s). CPU only (file work).
    """
    orders, repeats = (1, 3) if quick else (3, 5)
    rows, payload, figure = measure(orders, repeats, quick)
    return {
        "title": "DICOM -> NIfTI: recon vs dicom2nifti",
        "tables": [{"caption": f"Every series in {orders} shuffled file order(s)", "headers": HEADERS, "rows": rows}],
        "figures": [{"name": "dicom-oblique-mid-slices", "figure": figure,
                     "caption": "Mid planes of the synthetic oblique CT series as read by recon.read_dicom_series"}],
        "notes": [_summary(payload, orders, repeats)],
        "results": payload,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=3, help="shuffled file orders per series")
    parser.add_argument("--repeats", type=int, default=5, help="timed conversions per tool")
    parser.add_argument("--quick", action="store_true", help="3 random rotations instead of 12")
    args = parser.parse_args(argv)
    rows, payload, _ = measure(args.orders, args.repeats, args.quick)
    summary = _summary(payload, args.orders, args.repeats)
    table = markdown_table(HEADERS, rows)
    folder = save_results("dicom", torch.device("cpu"), payload, summary + "\n" + table, "DICOM -> NIfTI: recon vs dicom2nifti")
    print(summary)
    print(table)
    print(f"written to {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
