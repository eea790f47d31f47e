"""The ``recon`` command line: reconstruct fastMRI files, evaluate submissions, simulate data.

Run ``recon --help`` or ``recon <command> --help``.  Every command exits with status 0 on
success and prints a one-line ``recon: error: ...`` message with a non-zero status on failure
(1 for bad data or arguments found while running, 2 for command-line usage errors).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

__all__ = ["main", "build_parser"]

logger = logging.getLogger("recon.cli")

_DESCRIPTION = """\
recon: accelerated MRI reconstruction.

Commands:
  reconstruct   reconstruct fastMRI HDF5 files (a file or a folder) into fastMRI submission files
  evaluate      NMSE / PSNR / SSIM of submission files against fastMRI targets (as fastMRI's evaluate.py)
  simulate      turn NIfTI magnitude volumes into multi-coil fastMRI-format k-space files
  convert       a DICOM series (a folder, or an enhanced multi-frame file) to one NIfTI volume
  train         train a VarNet / U-Net / cascade fastMRI-style (torchrun for several processes)
  benchmark     how to run the benchmark scripts

Examples:
  recon reconstruct file_brain_AXT2_001.h5 -o recons/
  recon reconstruct val_folder/ -o recons/ --accelerations 4 --method sense --nifti
  recon evaluate --target-path val_folder/ --predictions-path recons/
  recon simulate brain.nii.gz -o simulated/ --coils 8
  recon convert dicom/ct_head/ -o ct_head.nii.gz --png ct_head.png
"""


class CommandError(Exception):
    """A failure the command reports in one line (bad input files, nothing to do)."""


# --------------------------------------------------------------------------------------------
# reconstruct


def _input_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix == ".h5" and p.is_file())
        if not files:
            raise CommandError(f"input folder {str(path)!r} contains no .h5 files")
        return files
    if path.is_file():
        return [path]
    raise FileNotFoundError(f"input {str(path)!r} is neither a file nor a folder")


def _recon_size(hf: h5py.File) -> tuple[int, int] | None:
    if "ismrmrd_header" not in hf:
        return None
    from recon.data.header import HeaderError, parse_ismrmrd_header

    try:
        info = parse_ismrmrd_header(hf["ismrmrd_header"][()])
    except HeaderError:
        return None
    return info.recon_size[0], info.recon_size[1]


def _crop(volume: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if size is None:
        return volume
    h, w = volume.shape[-2:]
    ch, cw = min(size[0], h), min(size[1], w)
    top, left = (h - ch) // 2, (w - cw) // 2
    return volume[..., top : top + ch, left : left + cw]


def _cmd_reconstruct(args: argparse.Namespace) -> int:
    from recon.api import reconstruct
    from recon.data.io import save_nifti, save_reconstructions

    files = _input_files(Path(args.input))
    mask_func = None
    if args.accelerations:
        from recon.masks import create_mask_for_mask_type

        fractions = args.center_fractions or [round(0.32 / a, 4) for a in args.accelerations]
        mask_func = create_mask_for_mask_type(args.mask_type, fractions, args.accelerations)
    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in files:
        try:
            with h5py.File(path, "r") as hf:
                if "kspace" not in hf:
                    raise CommandError(f"{path.name}: no 'kspace' dataset (not a fastMRI raw-data file)")
                kspace = hf["kspace"][()]
                stored_mask = hf["mask"][()] if "mask" in hf else None
                size = None if args.no_crop else _recon_size(hf)
        except OSError as err:
            raise CommandError(f"{path.name}: cannot read as HDF5 ({err})") from err
        if not np.iscomplexobj(kspace):
            raise CommandError(f"{path.name}: 'kspace' must be complex, got {kspace.dtype}")
        single = kspace.ndim == 3 and args.challenge == "singlecoil"
        mask = stored_mask
        if mask_func is not None:
            seed = tuple(map(ord, path.name))
            drawn, _ = mask_func((1, kspace.shape[-2], kspace.shape[-1], 2), seed=seed)
            mask = drawn.reshape(-1).numpy().astype(np.float32)
            kspace = kspace * mask
        volume = reconstruct(
            kspace,
            mask,
            method=args.method,
            weights=args.weights,
            device=args.device,
            batch_size=args.batch_size,
            progress=None if not args.quiet else False,
            single_coil=single if kspace.ndim == 3 else None,
        )
        if volume.ndim == 2:
            volume = volume[None]
        volume = _crop(volume, size)
        save_reconstructions({path.name: volume}, out_dir)
        if args.nifti:
            stem = path.name[: -len(".h5")] if path.name.endswith(".h5") else path.stem
            # (slices, H, W) -> (W, H, slices): x along columns, y along rows, z along slices
            save_nifti(out_dir / f"{stem}.nii.gz", np.ascontiguousarray(volume.transpose(2, 1, 0)))
        if not args.quiet:
            print(f"{path.name}: {args.method} -> {out_dir / path.name} {tuple(volume.shape)}")
    return 0


# --------------------------------------------------------------------------------------------
# evaluate


def _summary(values: dict[str, list[float]]) -> str:
    parts = []
    for name in sorted(values):
        data = np.asarray(values[name], dtype=np.float64)
        std = float(data.std(ddof=1)) if data.size > 1 else 0.0
        parts.append(f"{name} = {data.mean():.4g} +/- {2 * std:.4g}")
    return " ".join(parts)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from recon.metrics import nmse, psnr, ssim

    target_dir, pred_dir = Path(args.target_path), Path(args.predictions_path)
    for name, folder in (("--target-path", target_dir), ("--predictions-path", pred_dir)):
        if not folder.is_dir():
            raise FileNotFoundError(f"{name} {str(folder)!r} is not a folder")
    targets = sorted(p for p in target_dir.iterdir() if p.suffix == ".h5" and p.is_file())
    if not targets:
        raise CommandError(f"--target-path {str(target_dir)!r} contains no .h5 files")
    groups: dict[str, dict[str, list[float]]] = {}
    for tgt_path in targets:
        pred_path = pred_dir / tgt_path.name
        if not pred_path.is_file():
            raise FileNotFoundError(f"no prediction {str(pred_path)!r} for target {tgt_path.name}")
        with h5py.File(tgt_path, "r") as tf:
            acquisition = tf.attrs.get("acquisition", "unknown")
            acquisition = acquisition.decode() if isinstance(acquisition, bytes) else str(acquisition)
            if args.acquisition and acquisition != args.acquisition:
                continue
            if args.acceleration and tf.attrs.get("acceleration") != args.acceleration:
                continue
            challenge = args.challenge
            if challenge is None:
                challenge = "multicoil" if "reconstruction_rss" in tf else "singlecoil"
            key = "reconstruction_rss" if challenge == "multicoil" else "reconstruction_esc"
            if key not in tf:
                raise CommandError(f"{tgt_path.name}: no {key!r} dataset to evaluate against")
            target = tf[key][()]
        with h5py.File(pred_path, "r") as pf:
            if "reconstruction" not in pf:
                raise CommandError(f"{pred_path}: no 'reconstruction' dataset (not a submission file)")
            recons = pf["reconstruction"][()]
        # fastMRI's evaluate.py: both cropped to (W, W) of the target, W its last dim
        size = (min(target.shape[-1], target.shape[-2]), target.shape[-1])
        target, recons = _crop(target, size), _crop(recons, size)
        if target.shape != recons.shape:
            raise CommandError(
                f"{tgt_path.name}: prediction of shape {recons.shape} does not match the target {target.shape}"
            )
        scores = {
            "NMSE": float(nmse(target, recons)),
            "PSNR": float(psnr(target, recons)),
            "SSIM": float(ssim(target, recons, maxval=target.max())),
        }
        for group in (acquisition, "ALL"):
            for name, value in scores.items():
                groups.setdefault(group, {}).setdefault(name, []).append(value)
    if not groups:
        raise CommandError("no target volume matched the filters")
    for group in sorted(g for g in groups if g != "ALL") + ["ALL"]:
        count = len(groups[group]["NMSE"])
        print(f"{group} ({count} volume{'s' if count != 1 else ''}): {_summary(groups[group])}")
    return 0


# --------------------------------------------------------------------------------------------
# simulate and benchmark


def _cmd_simulate(args: argparse.Namespace) -> int:
    from recon.data.simulate import SimulationConfig, simulate_folder, simulate_nifti

    config = SimulationConfig(
        num_coils=args.coils,
        snr=None if args.snr <= 0 else args.snr,
        acquisition=args.acquisition,
        readout_oversampling=args.readout_oversampling,
    )
    source = Path(args.input)
    challenge = "singlecoil" if args.single_coil else "multicoil"
    if source.is_dir():
        written = simulate_folder(source, args.output, config=config, axis=args.axis, challenge=challenge, seed=args.seed)
    elif source.is_file():
        written = [simulate_nifti(source, args.output, config=config, axis=args.axis, challenge=challenge, seed=args.seed)]
    else:
        raise FileNotFoundError(f"input {str(source)!r} is neither a NIfTI file nor a folder")
    for path in written:
        print(path)
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    import warnings

    from recon.data.dicom import read_dicom_series
    from recon.data.io import save_nifti

    source, output = Path(args.input), Path(args.output)
    if not source.exists():
        raise FileNotFoundError(f"input {str(source)!r} is neither a DICOM folder nor a file")
    if not (output.name.endswith(".nii") or output.name.endswith(".nii.gz")):
        raise ValueError(f"-o/--output must end in .nii or .nii.gz, got {str(output)!r}")
    if args.png is not None and Path(args.png).suffix.lower() != ".png":
        raise ValueError(f"--png must end in .png, got {args.png!r}")
    orientation = None if args.orientation.lower() == "none" else args.orientation
    with warnings.catch_warnings(record=True) as caught:  # skipped files etc.: one line each
        warnings.simplefilter("always")
        volume, affine, info = read_dicom_series(
            source, args.series_uid, orientation=orientation, pad_to_air=not args.keep_padding,
            progress=sys.stderr.isatty(),
        )
    for warning in caught:
        print(f"recon convert: warning: {_one_line(warning.message)}", file=sys.stderr)
    output.parent.mkdir(parents=True, exist_ok=True)
    save_nifti(output, volume, affine=affine)  # what recon.data.dicom_to_nifti writes
    logger.info(
        "%s: %s %s, %s mm, %s", info.series_description or info.series_uid, info.modality,
        "x".join(map(str, info.shape)), " x ".join(f"{v:.3g}" for v in info.voxel_size), info.orientation,
    )
    print(output)
    if args.png is not None:
        from recon.viz import show_mid_slices

        png = Path(args.png)
        png.parent.mkdir(parents=True, exist_ok=True)
        show_mid_slices(volume, affine, path=png, title=f"{source.name}: {info.series_description or info.modality}")
        print(png)
    return 0


def _cmd_train(argv: Sequence[str]) -> int:
    from recon.train import main as train_main

    return train_main(list(argv))


def _cmd_benchmark(args: argparse.Namespace) -> int:
    print(
        "Benchmarks are scripts (results go to benchmarks/results/<device>/):\n"
        "  python benchmarks/ops.py         # FFT and operator speed vs fastMRI\n"
        "  python benchmarks/data.py        # SliceDataset + transform vs bare h5py; simulation\n"
        "  python benchmarks/models.py      # VarNet / U-Net / cascade latency and memory vs fastMRI\n"
        "  python benchmarks/classical.py   # CG-SENSE and the default method vs sigpy\n"
        "Run them from the repository root; each writes a .json and a .md report."
    )
    return 0


# --------------------------------------------------------------------------------------------
# parser and entry point


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from err
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``recon`` command."""
    from recon.api import DEFAULT_METHOD, METHODS

    parser = argparse.ArgumentParser(
        prog="recon", description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    rec = sub.add_parser(
        "reconstruct",
        help="reconstruct fastMRI HDF5 files into fastMRI submission files",
        description=(
            "Reconstruct every fastMRI raw-data file (.h5 with a 'kspace' dataset) in IN (a file or a "
            "folder) and write OUT/<same name>.h5 with a 'reconstruction' dataset (slices, H, W), cropped "
            "to the header's reconstruction size. The sampling mask is the file's 'mask' dataset if it has "
            "one, else it is inferred from the zero columns; --accelerations undersamples fully sampled "
            "files first (fastMRI's per-file seeds)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rec.add_argument("input", metavar="IN", help="a fastMRI .h5 file or a folder of them")
    rec.add_argument("-o", "--output", metavar="OUT", required=True, help="output folder")
    rec.add_argument("--method", choices=METHODS, default=DEFAULT_METHOD, help=f"reconstruction method (default: {DEFAULT_METHOD})")
    rec.add_argument("--weights", default=None, help="learned methods: checkpoint path or bundled name")
    rec.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: CUDA when available, else cpu)")
    rec.add_argument("--batch-size", type=_positive_int, default=None, help="slices per batch (default: as many as fit a memory budget)")
    rec.add_argument("--nifti", action="store_true", help="also write OUT/<name>.nii.gz")
    rec.add_argument("--no-crop", action="store_true", help="keep the full k-space grid (no header crop)")
    rec.add_argument(
        "--challenge", choices=("multicoil", "singlecoil"), default="multicoil",
        help="how to read 3-D k-space: one multi-coil slice (coils, H, W) (default), or "
        "single-coil slices (slices, H, W)",
    )
    rec.add_argument("--accelerations", type=float, nargs="+", default=None, help="undersample first, e.g. 4")
    rec.add_argument("--center-fractions", type=float, nargs="+", default=None,
                     help="fully sampled centre fractions (default 0.32 / acceleration)")
    rec.add_argument("--mask-type", default="random", help="mask type for --accelerations (default: random)")
    rec.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    rec.set_defaults(func=_cmd_reconstruct)

    ev = sub.add_parser(
        "evaluate",
        help="NMSE / PSNR / SSIM of submission files (as fastMRI's evaluate.py)",
        description=(
            "For every target file in --target-path, compare its reconstruction_rss (multicoil) or "
            "reconstruction_esc (singlecoil) with --predictions-path/<same name> 'reconstruction', both "
            "centre-cropped to (W, W), and print the mean +/- 2 standard deviations over volumes per "
            "acquisition type and for all volumes."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ev.add_argument("--target-path", required=True, help="folder of fastMRI files with targets")
    ev.add_argument("--predictions-path", required=True, help="folder of submission files")
    ev.add_argument("--challenge", choices=("multicoil", "singlecoil"), default=None,
                    help="target key (default: reconstruction_rss when present)")
    ev.add_argument("--acquisition", default=None, help="only volumes of this acquisition, e.g. AXT2")
    ev.add_argument("--acceleration", type=int, default=None, help="only volumes with this acceleration attr")
    ev.set_defaults(func=_cmd_evaluate)

    sim = sub.add_parser(
        "simulate",
        help="NIfTI magnitude volumes -> multi-coil fastMRI-format files",
        description=(
            "Simulate multi-coil k-space (smooth phase, birdcage coil maps, complex noise) from a NIfTI "
            "volume or every NIfTI volume in a folder, one fastMRI-format .h5 file each in OUT."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sim.add_argument("input", metavar="IN", help="a .nii/.nii.gz file or a folder of them")
    sim.add_argument("-o", "--output", metavar="OUT", required=True, help="output folder")
    sim.add_argument("--coils", type=_positive_int, default=8, help="number of receive coils (default: 8)")
    sim.add_argument("--snr", type=float, default=40.0, help="mean object / noise std, <= 0 for no noise (default: 40)")
    sim.add_argument("--axis", type=int, default=2, help="slicing axis of the volume (default: 2)")
    sim.add_argument("--acquisition", default="SIM", help="acquisition attribute of the files (default: SIM)")
    sim.add_argument("--readout-oversampling", type=_positive_int, default=1, help="readout field-of-view factor (default: 1)")
    sim.add_argument("--single-coil", action="store_true", help="write single-coil files")
    sim.add_argument("--seed", type=int, default=0, help="simulation seed (default: 0)")
    sim.set_defaults(func=_cmd_simulate)

    conv = sub.add_parser(
        "convert",
        help="a DICOM series -> one NIfTI volume (as dicom2nifti), optionally a PNG of its three planes",
        description=(
            "Convert one DICOM series to NIfTI: files grouped by series, slices ordered along the slice "
            "normal, modality rescale (Hounsfield units for CT, padding set to -1024 HU), stored LAS as "
            "dicom2nifti does. A folder with several series needs --series-uid (the error lists them); "
            "files that are not DICOM are skipped with a warning."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    conv.add_argument("input", metavar="DICOM", help="a folder of DICOM files (searched recursively) or one file")
    conv.add_argument("-o", "--output", metavar="OUT", required=True, help="output .nii or .nii.gz file")
    conv.add_argument("--series-uid", default=None, metavar="UID", help="SeriesInstanceUID to convert when there are several")
    conv.add_argument("--orientation", default="dicom2nifti", metavar="CODES",
                      help="axis order of the stored array: 'dicom2nifti' (default: LAS, exactly as dicom2nifti), "
                           "axis codes such as RAS or LPS, or 'none' for the DICOM storage order")
    conv.add_argument("--keep-padding", action="store_true", help="keep CT padding values instead of setting them to -1024 HU")
    conv.add_argument("--png", default=None, metavar="PNG", help="also draw the three mid planes into this PNG")
    conv.set_defaults(func=_cmd_convert)

    train = sub.add_parser(
        "train",
        help="train a VarNet / U-Net / cascade fastMRI-style (see 'recon train --help')",
        add_help=False,
    )
    train.set_defaults(func=_cmd_train)  # main() hands 'recon train ...' to recon.train.main

    bench = sub.add_parser("benchmark", help="how to run the benchmark scripts")
    bench.set_defaults(func=_cmd_benchmark)
    return parser


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 500 else text[:497] + "..."


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``recon`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:  # the trainer has its own parser (every TrainConfig field)
        return _cmd_train(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("recon: interrupted", file=sys.stderr)
        return 130
    except (CommandError, FileNotFoundError, ValueError, TypeError, OSError, KeyError) as err:
        print(f"recon {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
