"""The ``recon`` command line: reconstruct fastMRI files, evaluate submissions, simulate data.

Run ``recon --help`` or ``recon <command> --help``.  Every command exits with status 0 on
success. Every failure - a bad option, a missing or unreadable file, data recon cannot use -
is reported as exactly one line on stderr, ``recon <command>: error: <message>``, naming the
option or the file, with exit status 2 and no traceback (``-v`` adds the traceback of
unexpected errors); 130 after Ctrl-C. Warnings are one line each, ``recon <command>: warning:``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Callable, Sequence

import h5py
import numpy as np

from recon.ops._checks import CHALLENGES
from recon.train.cli_args import NumberList, OneLineParser, number_type, print_error

__all__ = ["main", "build_parser"]

logger = logging.getLogger("recon.cli")

_DESCRIPTION = """\
recon: accelerated MRI reconstruction.

Commands:
  reconstruct   reconstruct fastMRI HDF5 files (a file or a folder) into fastMRI submission files
  evaluate      NMSE / PSNR / SSIM of submission files against fastMRI targets (as fastMRI's evaluate.py)
  simulate      turn NIfTI magnitude volumes into multi-coil fastMRI-format k-space files
  convert       a DICOM series (a folder, or an enhanced multi-frame file) to one NIfTI volume
  preprocess    resample, N4, register, skull-strip, normalise NIfTI volumes (a file or a folder)
  synthesize    synthesise another contrast (FLAIR, T2w from T1w) from a volume or a reconstruction
  denoise       remove Rician noise from an image (noise level estimated)
  superres      super-resolve an image: thick slices -> thin (e.g. --scale 1,1,3), 2x/4x in-plane
  register      register MOVING to FIXED: a network (VoxelMorph) or SimpleITK rigid/affine/B-spline
  train         train a VarNet / U-Net / cascade fastMRI-style (torchrun for several processes)
  benchmark     run the benchmarks: one report (REPORT.md, results.json, plots) per device

Examples:
  recon reconstruct file_brain_AXT2_001.h5 -o recons/
  recon reconstruct val_folder/ -o recons/ --accelerations 4 --method sense --nifti
  recon evaluate --target-path val_folder/ --predictions-path recons/
  recon simulate brain.nii.gz -o simulated/ --coils 8
  recon convert dicom/ct_head/ -o ct_head.nii.gz --png ct_head.png
  recon preprocess t1_folder/ -o prep/ --resample 1 --n4 --skull-strip --normalize zscore
  recon synthesize t1.nii.gz -o flair.nii.gz --source t1 --target flair
  recon denoise noisy.nii.gz -o clean.nii.gz
  recon superres thick3mm.nii.gz -o thin1mm.nii.gz --scale 1,1,3
  recon register fixed.nii.gz moving.nii.gz -o warped.nii.gz --labels seg.nii.gz --labels-output seg_warped.nii.gz
  recon benchmark --quick
  torchrun --nproc_per_node 2 -m recon.cli reconstruct val_folder/ -o recons/   # files shared by 2 processes
"""


class CommandError(Exception):
    """A failure the command reports in one line (bad input files, nothing to do)."""


# --------------------------------------------------------------------------------------------
# reconstruct


def _input_files(path: Path) -> list[Path]:
    from recon.data.io import data_files

    if path.is_dir():
        files = data_files(path, (".h5",))  # hidden names (temporaries of killed runs) skipped
        if not files:
            raise CommandError(f"input folder {str(path)!r} contains no .h5 files")
        return files
    if path.is_file():
        return [path]
    raise FileNotFoundError(f"input {str(path)!r} is neither a file nor a folder")


def _output_folder(output: str, inputs: Sequence[Path] = ()) -> Path:
    """``-o`` as a folder (created), refusing an existing file and a folder where an output
    would replace one of ``inputs``; temporaries of a killed earlier run are removed from it."""
    from recon.data.io import remove_stale_temporaries

    out_dir = Path(output)
    if out_dir.exists() and not out_dir.is_dir():
        raise CommandError(f"-o/--output {output!r} is an existing file: -o must be a folder")
    for path in inputs:
        target = out_dir / path.name
        if target.exists() and target.resolve() == path.resolve():
            raise CommandError(
                f"-o/--output {output!r} holds the input {path.name}: the output, named like the input, "
                "would replace it; choose another folder"
            )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CommandError(f"-o/--output {output!r}: cannot create the folder ({err.strerror or err})") from err
    remove_stale_temporaries(out_dir)
    return out_dir


def _mask_function(args: argparse.Namespace):
    """The mask function of ``--accelerations`` / ``--center-fractions`` / ``--mask-type``, or None."""
    if not args.accelerations:
        if args.center_fractions:
            raise CommandError("--center-fractions needs --accelerations")
        return None
    from recon.masks import create_mask_for_mask_type

    fractions = args.center_fractions or [round(0.32 / a, 4) for a in args.accelerations]
    if len(fractions) != len(args.accelerations):
        raise CommandError(
            f"--center-fractions ({len(fractions)} given) and --accelerations ({len(args.accelerations)} given) "
            "must have the same length"
        )
    try:
        return create_mask_for_mask_type(args.mask_type, fractions, args.accelerations)
    except ValueError as err:
        raise CommandError(f"--mask-type {args.mask_type} with --accelerations {args.accelerations}: {err}") from err


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
    """Centre crop of the last two dims to ``size`` (clipped to the volume), native byte order."""
    if size is None:
        return volume
    from recon.ops import center_crop_or_pad

    h, w = volume.shape[-2:]
    return center_crop_or_pad(volume, (min(size[0], h), min(size[1], w)))


def _cmd_reconstruct(args: argparse.Namespace) -> int:
    from recon.api import reconstruct
    from recon.data.io import save_nifti, save_reconstructions
    from recon.masks import volume_seed
    from recon.train.distributed import map_sharded, shutdown_distributed

    files = _input_files(Path(args.input))
    mask_func = _mask_function(args)
    out_dir = _output_folder(args.output, files)
    # Under torchrun the files are shared out across the processes (recon.train.distributed);
    # alone, this process takes them all.  Finished outputs (written atomically) are skipped.
    ctx = _init_distributed(args.device)
    device = str(ctx.device) if args.device is None and ctx.distributed else args.device
    prefix = f"[rank {ctx.rank}] " if ctx.distributed else ""

    def one(path: Path) -> None:
        try:
            with h5py.File(path, "r") as hf:
                if not isinstance(hf.get("kspace"), h5py.Dataset):
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
            drawn, _ = mask_func((1, kspace.shape[-2], kspace.shape[-1], 2), seed=volume_seed(path.name))
            mask = drawn.reshape(-1).numpy().astype(np.float32)
            kspace = kspace * mask
        volume = reconstruct(
            kspace,
            mask,
            method=args.method,
            weights=args.weights,
            device=device,
            batch_size=args.batch_size,
            progress=None if not args.quiet else False,
            single_coil=single if kspace.ndim == 3 else None,
            self_ensemble=False if args.no_self_ensemble else None,
            crop=size,  # the header's recon size; the U-Net also normalises over it, as in training
        )
        if volume.ndim == 2:
            volume = volume[None]
        save_reconstructions({path.name: volume}, out_dir)
        if args.nifti:
            stem = path.name[: -len(".h5")] if path.name.endswith(".h5") else path.stem
            # (slices, H, W) -> (W, H, slices): x along columns, y along rows, z along slices
            save_nifti(out_dir / f"{stem}.nii.gz", np.ascontiguousarray(volume.transpose(2, 1, 0)))
        if not args.quiet:
            print(f"{prefix}{path.name}: {args.method} -> {out_dir / path.name} {tuple(volume.shape)}", flush=True)

    try:
        todo = _unfinished(ctx, files, out_dir, args)
        if ctx.is_main and not args.quiet and len(todo) < len(files):
            print(f"skipping {len(files) - len(todo)} file(s) already reconstructed in {out_dir} (--overwrite to redo)")
        _, failures = map_sharded(ctx, todo, one)
    finally:
        shutdown_distributed(ctx)
    _raise_failures(failures, len(todo))
    return 0


def _init_distributed(device: str | None):
    """torchrun's process group (gloo for CPU, nccl for CUDA devices), or a single process."""
    from recon.train.distributed import init_distributed

    kind = "auto" if device is None else ("cuda" if str(device).startswith("cuda") else "cpu")
    return init_distributed(kind)


def _unfinished(ctx, files: list[Path], out_dir: Path, args: argparse.Namespace) -> list[Path]:
    """The files whose outputs are missing (all with --overwrite), decided by rank 0 for all."""
    from recon.train.distributed import broadcast_object

    todo = None
    if ctx.is_main:
        def done(path: Path) -> bool:
            stem = path.name[: -len(".h5")] if path.name.endswith(".h5") else path.stem
            return (out_dir / path.name).is_file() and (not args.nifti or (out_dir / f"{stem}.nii.gz").is_file())

        todo = [p for p in files if getattr(args, "overwrite", False) or not done(p)]
    return broadcast_object(ctx, todo)


def _raise_failures(failures, total: int) -> None:
    """One-line CommandError naming every failed file (and its rank), if any failed."""
    if not failures:
        return
    if len(failures) == 1 and total == 1:
        failure = failures[0]  # every failure names its file
        raise CommandError(failure.error if failure.item in failure.error else f"{failure.item}: {failure.error}")
    ranks = any(f.rank for f in failures)
    details = "; ".join(
        str(f) if ranks else (f.error if f.error.startswith(f.item) else f"{f.item}: {f.error}") for f in failures
    )
    raise CommandError(f"{len(failures)} of {total} files failed: {details}")


# --------------------------------------------------------------------------------------------
# evaluate


def _summary(values: dict[str, list[float]]) -> str:
    parts = []
    for name in sorted(values):
        data = np.asarray(values[name], dtype=np.float64)
        std = float(data.std(ddof=1)) if data.size > 1 else 0.0
        parts.append(f"{name} = {data.mean():.4g} +/- {2 * std:.4g}")
    return " ".join(parts)


def _open_h5(path: Path, option: str) -> h5py.File:
    """``h5py.File(path, "r")``, or a one-line error naming the file (truncated, not HDF5, ...)."""
    try:
        return h5py.File(path, "r")
    except OSError as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        raise CommandError(f"{path} ({option}): cannot read as HDF5 (truncated or not HDF5?): {reason}") from err


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from recon.metrics import nmse, psnr, ssim
    from recon.train.distributed import map_sharded, shutdown_distributed

    target_dir, pred_dir = Path(args.target_path), Path(args.predictions_path)
    for name, folder in (("--target-path", target_dir), ("--predictions-path", pred_dir)):
        if not folder.is_dir():
            raise FileNotFoundError(f"{name} {str(folder)!r} is not a folder")
    from recon.data.io import data_files

    targets = data_files(target_dir, (".h5",))
    if not targets:
        raise CommandError(f"--target-path {str(target_dir)!r} contains no .h5 files")
    # Under torchrun the targets are shared out across the processes and the scores gathered.
    ctx = _init_distributed("cpu")  # metrics are numpy: gloo, whatever the machine

    def one(tgt_path: Path) -> tuple[str, dict[str, float]] | None:
        pred_path = pred_dir / tgt_path.name
        if not pred_path.is_file():
            raise FileNotFoundError(f"no prediction {str(pred_path)!r} for target {tgt_path.name}")
        with _open_h5(tgt_path, "--target-path") as tf:
            acquisition = tf.attrs.get("acquisition", "unknown")
            acquisition = acquisition.decode() if isinstance(acquisition, bytes) else str(acquisition)
            if args.acquisition and acquisition != args.acquisition:
                return None
            if args.acceleration and tf.attrs.get("acceleration") != args.acceleration:
                return None
            challenge = args.challenge
            if challenge is None:
                challenge = "multicoil" if "reconstruction_rss" in tf else "singlecoil"
            key = "reconstruction_rss" if challenge == "multicoil" else "reconstruction_esc"
            if key not in tf:
                raise CommandError(f"{tgt_path.name}: no {key!r} dataset to evaluate against")
            target = tf[key][()]
        with _open_h5(pred_path, "--predictions-path") as pf:
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
            "SSIM": float(ssim(target, recons)),  # maxval = target.max(), as fastMRI
        }
        return acquisition, scores

    try:
        results, failures = map_sharded(ctx, targets, one)
    finally:
        shutdown_distributed(ctx)
    _raise_failures(failures, len(targets))
    groups: dict[str, dict[str, list[float]]] = {}
    for _, item in results:
        if item is None:
            continue
        acquisition, scores = item
        for group in (acquisition, "ALL"):
            for name, value in scores.items():
                groups.setdefault(group, {}).setdefault(name, []).append(value)
    if not ctx.is_main:
        return 0
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

    try:
        config = SimulationConfig(
            num_coils=args.coils,
            snr=None if args.snr <= 0 else args.snr,  # --snr is finite (parser)
            acquisition=args.acquisition,
            readout_oversampling=args.readout_oversampling,
            coil_radius=args.coil_radius,
            coil_rotation=args.coil_rotation,
            coil_offset=args.coil_offset,
            noise_correlation=args.noise_correlation,
            phase_amplitude=args.phase_amplitude,
            phase_order=args.phase_order,
            b0_amplitude=args.b0_amplitude,
            phase_encoding=args.phase_encoding,
            matrix_size=args.matrix_size,
        )
    except ValueError as err:  # name the option: "coil_radius must be ..." -> "--coil-radius: coil_radius must be ..."
        raise ValueError(f"--{str(err).split()[0].replace('_', '-')}: {err}") from err
    source = Path(args.input)
    challenge = "singlecoil" if args.single_coil else "multicoil"
    _output_folder(args.output)
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

    from recon.data.dicom import list_dicom_series, read_dicom_series
    from recon.data.io import save_nifti

    source = Path(args.input)
    if not source.exists():
        raise FileNotFoundError(f"input {str(source)!r} is neither a DICOM folder nor a file")
    if args.list:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            entries = list_dicom_series(source)
        for warning in caught:
            print(f"recon convert: warning: {_one_line(warning.message)}", file=sys.stderr)
        for e in entries:
            print(f"{e['series_uid']}\tseries {e['series_number']}\t{e['modality']}\t{e['files']} file(s)\t"
                  f"{e['rows']}x{e['columns']}\t{e['description']}")
        return 0
    if args.output is None:
        raise ValueError("-o/--output is required (a .nii or .nii.gz file), unless --list")
    output = Path(args.output)
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


def _preprocess_outputs(source: Path, output: Path) -> list[tuple[Path, Path]]:
    """(input, output) NIfTI paths of ``recon preprocess``."""
    from recon.data.io import data_files

    suffixes = (".nii", ".nii.gz")
    if source.is_dir():
        files = data_files(source, suffixes)
        if not files:
            raise CommandError(f"input folder {str(source)!r} contains no .nii/.nii.gz files")
        if output.name.lower().endswith(suffixes):
            raise ValueError(f"-o/--output must be a folder when IN is a folder, got {str(output)!r}")
        return [(path, output / path.name) for path in files]
    if source.is_file():
        if not source.name.lower().endswith(suffixes):
            raise ValueError(f"input must be a .nii/.nii.gz file or a folder of them, got {str(source)!r}")
        if output.name.lower().endswith(suffixes):
            return [(source, output)]
        return [(source, output / source.name)]
    raise FileNotFoundError(f"input {str(source)!r} is neither a NIfTI file nor a folder")


def _mask_name(path: Path, suffix: str = "_brainmask") -> Path:
    name = path.name
    stem, ext = (name[:-7], ".nii.gz") if name.lower().endswith(".nii.gz") else (name[:-4], ".nii")
    return path.with_name(f"{stem}{suffix}{ext}")


def _cmd_preprocess(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from recon.data.io import load_nifti, save_nifti
    from recon import preprocess as pp

    source, output = Path(args.input), Path(args.output)
    pairs = _preprocess_outputs(source, output)
    if any(src.resolve() == dst.resolve() for src, dst in pairs if dst.exists()):
        raise ValueError("-o/--output would overwrite an input file; choose another output path")
    fixed = None
    if args.register_to is not None:
        fixed_path = Path(args.register_to)
        if not fixed_path.is_file():
            raise FileNotFoundError(f"--register-to: no NIfTI file at {str(fixed_path)!r}")
        fixed = load_nifti(fixed_path)[:2]
    nyul = None
    if args.nyul_landmarks is not None:
        if args.normalize != "nyul":
            raise ValueError("--nyul-landmarks needs --normalize nyul")
        nyul = pp.NyulNormalizer.load(args.nyul_landmarks)
    steps = [name for name, on in (
        ("resample", args.resample is not None), ("n4", args.n4), ("register", fixed is not None),
        ("skull-strip", args.skull_strip), ("normalize", args.normalize is not None)) if on]
    if not steps:
        raise ValueError("nothing to do: give at least one of --resample, --n4, --register-to, --skull-strip, --normalize")
    for _, dst in pairs:
        dst.parent.mkdir(parents=True, exist_ok=True)
    import tempfile

    bar = tqdm(total=len(pairs) * len(steps), desc="preprocess", unit="step", disable=None, file=sys.stderr)
    # --normalize nyul without landmarks: the volumes wait in a hidden folder under OUT until the
    # landmarks are fitted on all of them, so no unstandardised volume ever has a final name
    pending = None
    if args.normalize == "nyul" and nyul is None:
        pending = tempfile.TemporaryDirectory(prefix=".recon-preprocess-", dir=pairs[0][1].parent)
    fit_later: list[tuple[Path, np.ndarray, Path, Path | None]] = []
    written: list[Path] = []
    try:
        for index, (src, dst) in enumerate(pairs):
            try:
                volume, affine, _ = load_nifti(src)
                mask = None
                for step in steps:
                    bar.set_postfix_str(f"{src.name}: {step}")
                    if step == "resample":
                        volume, affine = pp.resample(volume, affine, args.resample, order=3)
                    elif step == "n4":
                        volume, _ = pp.n4_bias_correction(volume, affine=affine, shrink_factor=args.n4_shrink)
                    elif step == "register":
                        result = pp.register(fixed[0], volume, fixed_affine=fixed[1], moving_affine=affine,
                                             transform=args.register_transform, seed=args.seed)
                        volume, affine = result.apply(volume, order=3), fixed[1]
                    elif step == "skull-strip":
                        mask = pp.brain_mask(volume, affine, seed=args.seed)
                        volume = np.where(mask, volume, 0).astype(np.float32)
                        save_nifti(_mask_name(dst), mask.astype(np.uint8), affine=affine)
                        written.append(_mask_name(dst))
                    elif step == "normalize":
                        volume = _normalize(volume, mask, args.normalize, nyul)
                    bar.update(1)
                if pending is not None:
                    held = Path(pending.name) / f"{index}.npy"
                    np.save(held, volume.astype(np.float32))
                    held_mask = None
                    if mask is not None:
                        held_mask = Path(pending.name) / f"{index}_mask.npy"
                        np.save(held_mask, mask)
                    fit_later.append((dst, affine, held, held_mask))
                else:
                    save_nifti(dst, volume.astype(np.float32), affine=affine)
                    written.append(dst)
            except (ValueError, TypeError, RuntimeError, ImportError) as err:
                raise CommandError(f"{src}: {_one_line(err)}") from err
        if fit_later:
            written += _fit_nyul(fit_later, pairs[0][1].parent)
    finally:
        bar.close()
        if pending is not None:
            pending.cleanup()
    if args.png:
        from recon.viz import show_mid_slices

        for _, dst in pairs:  # the three mid planes of each written volume, beside it
            volume, affine, _ = load_nifti(dst)
            png = _mask_name(dst, "_mid").with_suffix("")  # name_mid.nii(.gz) -> name_mid
            png = png.with_name(png.name.removesuffix(".nii") + ".png")
            figure = show_mid_slices(volume, affine, path=png, title=dst.name)
            figure.clear()
            written.append(png)
    for path in written:
        print(path)
    return 0


def _normalize(volume: np.ndarray, mask: np.ndarray | None, method: str, nyul) -> np.ndarray:
    from recon import preprocess as pp

    if method == "zscore":
        return pp.zscore(volume, mask)
    if method == "fcm":
        return pp.fcm_normalize(volume, mask)[0]
    if method == "whitestripe":
        return pp.whitestripe(volume, mask)
    if nyul is not None:
        return nyul.transform(volume, mask)
    return volume  # nyul without landmarks: fitted on every output afterwards (_fit_nyul)


def _fit_nyul(held: list[tuple[Path, np.ndarray, Path, Path | None]], folder: Path) -> list[Path]:
    """Fit Nyul landmarks on the held volumes, write them standardised and the landmarks JSON."""
    from recon.data.io import save_nifti
    from recon.preprocess import NyulNormalizer

    def load(volume_path: Path, mask_path: Path | None):
        return np.load(volume_path), None if mask_path is None else np.load(mask_path)

    scales = []
    for _, _, volume_path, mask_path in held:  # the mean of per-volume scales = a fit on all of them
        volume, mask = load(volume_path, mask_path)
        scales.append(NyulNormalizer().fit([volume], None if mask is None else [mask]).standard_scale)
    nyul = NyulNormalizer()
    nyul.standard_scale = np.mean(scales, axis=0)
    written = []
    for dst, affine, volume_path, mask_path in held:
        volume, mask = load(volume_path, mask_path)
        save_nifti(dst, nyul.transform(volume, mask), affine=affine)
        written.append(dst)
    nyul.save(folder / "nyul_landmarks.json")
    return written + [folder / "nyul_landmarks.json"]


def _read_image(path: Path) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """A NIfTI volume (with its affine) or the 'reconstruction' of a submission .h5 file, no
    affine: its display-oriented ``(slices, H, W)`` images (anterior up, as
    :func:`recon.data.simulate.nifti_slices` cuts them and fastMRI shows them) turned back to
    array order, ``(X, Y, slices)`` (each slice ``np.rot90(image, -1)``), which is how the image
    heads' networks were trained and how ``make demo`` writes ``out.nii.gz``."""
    if not path.is_file():
        raise FileNotFoundError(f"input {str(path)!r} does not exist")
    if path.suffix == ".h5":
        with _open_h5(path, "IN") as hf:
            if "reconstruction" not in hf:
                raise CommandError(f"{path}: no 'reconstruction' dataset (not a `recon reconstruct` output)")
            volume = np.asarray(hf["reconstruction"][()], dtype=np.float32)
        if volume.ndim == 2:
            return np.ascontiguousarray(np.rot90(volume, -1)), None, True
        return np.ascontiguousarray(np.moveaxis(np.rot90(volume, -1, axes=(1, 2)), 0, -1)), None, True
    if not path.name.endswith((".nii", ".nii.gz")):
        raise ValueError(f"IN must be a .nii/.nii.gz volume or a submission .h5 file, got {str(path)!r}")
    from recon.data.io import load_nifti

    volume, affine, _ = load_nifti(path)
    if volume.ndim == 3 and volume.shape[-1] == 1:
        volume = volume[..., 0]
    return volume, affine, False


def _write_image(output: Path, image: np.ndarray, affine: np.ndarray | None) -> None:
    from recon.data.io import save_nifti

    if not output.name.endswith((".nii", ".nii.gz")):
        raise ValueError(f"-o/--output must end in .nii or .nii.gz, got {str(output)!r}")
    output.parent.mkdir(parents=True, exist_ok=True)
    save_nifti(output, image if image.ndim == 3 else image[..., None], affine=affine)
    print(output)


def _cmd_synthesize(args: argparse.Namespace) -> int:
    from recon.api import synthesize

    volume, affine, from_h5 = _read_image(Path(args.input))
    # a reconstruction's slices go to the slice network unless --method/--dims says otherwise
    dims = args.dims if args.dims is not None else (2 if from_h5 and args.method is None else None)
    result = synthesize(volume, source=args.source, target=args.target, weights=args.weights, method=args.method,
                        dims=dims, progress=sys.stderr.isatty())
    _write_image(Path(args.output), result, affine)
    return 0


def _cmd_denoise(args: argparse.Namespace) -> int:
    from recon.api import denoise

    volume, affine, _ = _read_image(Path(args.input))
    _write_image(Path(args.output), denoise(volume, sigma=args.sigma, weights=args.weights), affine)
    return 0


def _scale_arg(text: str):
    """``"2"`` -> 2, ``"1,1,3"`` -> (1, 1, 3) (checked by recon.super_resolve)."""
    try:
        parts = tuple(int(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an int or comma-separated ints like 1,1,3, got {text!r}") from None
    return parts[0] if len(parts) == 1 else parts


def _superres_affine(affine: np.ndarray | None, scale, ndim: int) -> np.ndarray | None:
    """The output affine: voxel size / s, same field of view (HR voxel i at LR (i + 0.5) / s - 0.5)."""
    if affine is None:
        return None
    s = np.array((scale,) * ndim if isinstance(scale, int) else scale, dtype=np.float64)
    s = np.concatenate([s, np.ones(3 - len(s))])
    step = np.diag([*(1 / s), 1.0])
    step[:3, 3] = (1 / s - 1) / 2
    return affine @ step


def _cmd_superres(args: argparse.Namespace) -> int:
    from recon.api import super_resolve

    volume, affine, _ = _read_image(Path(args.input))
    result = super_resolve(volume, args.scale, weights=args.weights, progress=sys.stderr.isatty(), adapt=args.adapt,
                           self_ensemble=False if args.no_self_ensemble else None,
                           calibrate=False if args.no_calibrate else None)
    _write_image(Path(args.output), result, _superres_affine(affine, args.scale, volume.ndim))
    return 0


def _cmd_register(args: argparse.Namespace) -> int:
    from recon.api import register

    if (args.labels is None) != (args.labels_output is None):
        raise ValueError("--labels and --labels-output go together (the label map of MOVING and where to write "
                         "it on FIXED's grid)")
    fixed, fixed_affine, _ = _read_image(Path(args.fixed))
    moving, moving_affine, _ = _read_image(Path(args.moving))
    labels = None
    if args.labels is not None:
        labels, labels_affine, _ = _read_image(Path(args.labels))
        if labels.shape != moving.shape and labels_affine is None:
            raise ValueError(f"--labels {args.labels!r} has shape {labels.shape}, MOVING {moving.shape}: "
                             "give a label map on MOVING's grid")
    if args.refine is not None and args.method != "learned":
        raise ValueError(f"--refine is only used by --method learned, not by --method {args.method}")
    warped, transform = register(fixed, moving, args.method, fixed_affine=fixed_affine, moving_affine=moving_affine,
                                 weights=args.weights, refine=args.refine)
    _write_image(Path(args.output), warped, fixed_affine)
    if labels is not None:
        moved = transform.apply(np.rint(labels).astype(np.int32), order=0, affine=labels_affine)
        _write_image(Path(args.labels_output), moved.astype(np.int16), fixed_affine)
    return 0


def _cmd_train(argv: Sequence[str]) -> int:
    from recon.train import main as train_main

    return train_main(list(argv))


def _benchmarks_root() -> Path:
    """The repository folder holding ``benchmarks/run.py`` (benchmarks are not installed)."""
    candidates = [Path(__file__).resolve().parent.parent, Path.cwd()]
    for root in candidates:
        if (root / "benchmarks" / "run.py").is_file():
            return root
    raise CommandError(
        "benchmarks/run.py not found next to the recon package or in the current folder "
        f"(looked in {', '.join(str(c) for c in candidates)}); the benchmarks live in the source "
        "repository: run 'recon benchmark' from a clone (pip install -e .)"
    )


def _cmd_benchmark(args: argparse.Namespace) -> int:
    root = _benchmarks_root()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    import matplotlib

    matplotlib.use("Agg")
    from benchmarks import run as bench

    if args.list:
        print(bench.list_sections())
        return 0
    logging.getLogger("benchmarks").setLevel(logging.INFO)
    report = bench.run_report(quick=args.quick, device=args.device, out=args.out, budget=args.budget,
                              sections=args.sections)
    print(f"wrote {report} (and results.json, *.png beside it)")
    return 0


# --------------------------------------------------------------------------------------------
# parser and entry point


# argparse types: one finite number each, with its bound (recon.train.cli_args.number_type)
_positive_float = number_type(float, greater_than=0)
_finite_float = number_type(float)
_seed = number_type(int, minimum=0)
_positive_int = number_type(int, minimum=1)


def _number_pair(kind: type) -> Callable[[str], tuple]:
    """argparse type: two finite numbers ``A,B`` (also ``AxB``)."""

    def parse(text: str) -> tuple:
        parts = text.replace("x", ",").split(",")
        try:
            values = tuple(kind(p) for p in parts)
        except ValueError:
            values = ()
        if len(values) != 2 or not all(np.isfinite(v) for v in values):
            raise argparse.ArgumentTypeError(f"expected two {kind.__name__} values A,B, got {text!r}")
        return values

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``recon`` command."""
    from recon.api import DEFAULT_METHOD, METHODS, SYNTHESIS_METHODS
    from recon.masks import MASK_TYPES

    parser = OneLineParser(  # subcommand parsers inherit the class: one-line usage errors
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
            "files first (fastMRI's per-file seeds). Outputs are written atomically and files whose "
            "output exists are skipped (--overwrite redoes them), so an interrupted run can be rerun. "
            "Under torchrun (torchrun --nproc_per_node N -m recon.cli reconstruct ...; several machines "
            "with --nnodes and a rendezvous) the files are shared out across the processes, balanced by "
            "size; the outputs are the same as one process writes."
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
    rec.add_argument("--no-self-ensemble", action="store_true",
                     help="--method unet: one pass of the network, not the mean over the four flips of the image (4x faster)")
    rec.add_argument("--no-crop", action="store_true", help="keep the full k-space grid (no header crop; the U-Net then normalises over the full field of view)")
    rec.add_argument(
        "--challenge", choices=sorted(CHALLENGES), default="multicoil",
        help="how to read 3-D k-space: one multi-coil slice (coils, H, W) (default), or "
        "single-coil slices (slices, H, W)",
    )
    rec.add_argument("--accelerations", action=NumberList, low=1.0, default=None,
                     help="undersample first: factors >= 1, e.g. 4 or '4 8' or 4,8 (one drawn per file)")
    rec.add_argument("--center-fractions", action=NumberList, low=0.0, high=1.0, default=None,
                     help="fully sampled centre fractions in [0, 1], one per acceleration (default 0.32 / acceleration)")
    rec.add_argument("--mask-type", choices=sorted(MASK_TYPES), default="random",
                     help="mask type for --accelerations (default: random)")
    rec.add_argument("--overwrite", action="store_true", help="redo files whose output already exists (default: skip them)")
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
    ev.add_argument("--challenge", choices=sorted(CHALLENGES), default=None,
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
    sim.add_argument("--snr", type=_finite_float, default=40.0, help="mean object / noise std, <= 0 for no noise (default: 40)")
    sim.add_argument("--axis", type=int, choices=(0, 1, 2), default=2, help="slicing axis of the volume (default: 2)")
    sim.add_argument("--acquisition", default="SIM", help="acquisition attribute of the files (default: SIM)")
    sim.add_argument("--readout-oversampling", type=_positive_int, default=1, help="readout field-of-view factor (default: 1)")
    sim.add_argument("--coil-radius", type=_finite_float, default=1.5, metavar="R",
                     help="coil ring radius / half the field of view, > 1 (default: 1.5)")
    sim.add_argument("--coil-rotation", type=_finite_float, default=0.0, metavar="RAD", help="rotation of the coil ring, radians (default: 0)")
    sim.add_argument("--coil-offset", type=_number_pair(float), default=(0.0, 0.0), metavar="DY,DX",
                     help="shift of the ring's centre / half the field of view (default: 0,0)")
    sim.add_argument("--noise-correlation", type=_finite_float, default=0.0, metavar="RHO",
                     help="noise correlation of neighbouring coils, in (-1, 1) (default: 0)")
    sim.add_argument("--phase-amplitude", type=_finite_float, default=float(np.pi / 2), metavar="RAD",
                     help="peak of the smooth background phase, radians (default: pi/2)")
    sim.add_argument("--phase-order", type=_seed, default=2, metavar="N", help="highest frequency of the smooth phase (default: 2)")
    sim.add_argument("--b0-amplitude", type=_finite_float, default=0.0, metavar="RAD", help="peak of an added B0-like phase, radians (default: 0)")
    sim.add_argument("--phase-encoding", choices=("width", "height"), default="width",
                     help="phase-encoded image axis (height: images turned by 90 degrees; default: width)")
    sim.add_argument("--matrix-size", type=_number_pair(int), default=None, metavar="H,W",
                     help="pad / crop the slices to this grid (default: as the input)")
    sim.add_argument("--single-coil", action="store_true", help="write single-coil files")
    sim.add_argument("--seed", type=_seed, default=0, help="simulation seed, an integer >= 0 (default: 0)")
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
    conv.add_argument("-o", "--output", metavar="OUT", default=None, help="output .nii or .nii.gz file (required unless --list)")
    conv.add_argument("--list", action="store_true", help="list the series in DICOM (UID, number, modality, files, size, description) and exit")
    conv.add_argument("--series-uid", default=None, metavar="UID", help="SeriesInstanceUID to convert when there are several")
    conv.add_argument("--orientation", default="dicom2nifti", metavar="CODES",
                      help="axis order of the stored array: 'dicom2nifti' (default: LAS, exactly as dicom2nifti), "
                           "axis codes such as RAS or LPS, or 'none' for the DICOM storage order")
    conv.add_argument("--keep-padding", action="store_true", help="keep CT padding values instead of setting them to -1024 HU")
    conv.add_argument("--png", default=None, metavar="PNG", help="also draw the three mid planes into this PNG")
    conv.set_defaults(func=_cmd_convert)

    prep = sub.add_parser(
        "preprocess",
        help="resample, N4, register, skull-strip and normalise NIfTI volumes (a file or a folder)",
        description=(
            "Preprocess every NIfTI volume in IN (a .nii/.nii.gz file or a folder of them) and write "
            "OUT/<same name> (or OUT itself when IN is a file and OUT ends in .nii/.nii.gz), float32, "
            "atomically. Steps run in this order, each only when asked: --resample, --n4, --register-to "
            "(the output then lies on FIXED's grid), --skull-strip (background set to 0; the mask is "
            "written as <name>_brainmask.nii.gz), --normalize (over the brain mask when skull-stripped, "
            "else the non-zero foreground). --normalize nyul fits the landmarks on all outputs and writes "
            "OUT/nyul_landmarks.json, unless --nyul-landmarks gives fitted ones. Needs recon[preprocess]."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    prep.add_argument("input", metavar="IN", help="a .nii/.nii.gz file or a folder of them")
    prep.add_argument("-o", "--output", metavar="OUT", required=True, help="output folder (or .nii/.nii.gz file for one input)")
    prep.add_argument("--resample", type=_positive_float, default=None, metavar="MM", help="resample to MM isotropic voxels (cubic B-spline)")
    prep.add_argument("--n4", action="store_true", help="N4 bias-field correction")
    prep.add_argument("--n4-shrink", type=_positive_int, default=4, metavar="F", help="N4 shrink factor (default: 4)")
    prep.add_argument("--register-to", default=None, metavar="FIXED", help="register each volume to this NIfTI volume (Mattes MI)")
    prep.add_argument("--register-transform", choices=("rigid", "affine", "bspline"), default="rigid",
                      help="transform of --register-to (default: rigid)")
    prep.add_argument("--skull-strip", action="store_true", help="brain mask by MNI152 template registration; zero the rest")
    prep.add_argument("--normalize", choices=("zscore", "fcm", "nyul", "whitestripe"), default=None,
                      help="intensity normalisation")
    prep.add_argument("--nyul-landmarks", default=None, metavar="JSON", help="fitted Nyul landmarks (NyulNormalizer.save)")
    prep.add_argument("--seed", type=int, default=0, help="seed of the registrations' sampling (default: 0)")
    prep.add_argument("--png", action="store_true", help="also draw the three mid planes of each output into <name>_mid.png beside it")
    prep.set_defaults(func=_cmd_preprocess)

    syn = sub.add_parser(
        "synthesize",
        help="synthesise another contrast (e.g. FLAIR from T1w) from a NIfTI volume or a reconstruction",
        description=(
            "Synthesise TARGET from IN (contrast SOURCE) with the bundled networks (recon.synthesize): a "
            ".nii/.nii.gz volume (the ensemble of the 2-D U-Net slice by slice and the 3-D ResNet by "
            "overlapping patches; --method unet or resnet3d for one of them) or a "
            "`recon reconstruct` output .h5 (its 'reconstruction' slices, 2-D U-Net), so that "
            "`recon reconstruct k.h5 -o rec/` then `recon synthesize rec/k.h5 -o flair.nii.gz` goes from "
            "undersampled k-space to a synthesised contrast. Output in foreground-mean units (see docs/heads.md)."
        ),
    )
    syn.add_argument("input", metavar="IN", help=".nii/.nii.gz volume or submission .h5 file")
    syn.add_argument("-o", "--output", required=True, metavar="OUT", help="output .nii/.nii.gz")
    syn.add_argument("--source", default="t1", help="contrast of IN: t1, t2, flair, pd (default: t1)")
    syn.add_argument("--target", default="flair", help="contrast to synthesise (default: flair)")
    syn.add_argument("--weights", default=None, metavar="W", help="bundled head name or weight file (default: the pair's bundled one)")
    syn.add_argument("--method", choices=SYNTHESIS_METHODS, default=None,
                     help="ensemble: 0.7 x 2-D U-Net slice by slice + 0.3 x 3-D ResNet (the default for a NIfTI "
                          "volume); unet; resnet3d (default: ensemble for a volume, unet for a slice or a .h5 reconstruction)")
    syn.add_argument("--dims", type=int, choices=(2, 3), default=None,
                     help="older spelling of --method: 2 = unet, 3 = resnet3d")
    syn.set_defaults(func=_cmd_synthesize)

    den = sub.add_parser(
        "denoise",
        help="remove Rician noise from a NIfTI volume/slice or a reconstruction (sigma estimated)",
        description="Denoise IN with the bundled autoencoder (recon.denoise); the noise level is estimated unless --sigma.",
    )
    den.add_argument("input", metavar="IN", help=".nii/.nii.gz volume or slice, or submission .h5 file")
    den.add_argument("-o", "--output", required=True, metavar="OUT", help="output .nii/.nii.gz")
    den.add_argument("--sigma", type=number_type(float, minimum=0.0), default=None, help="noise sigma in IN's units (default: estimated)")
    den.add_argument("--weights", default=None, metavar="W", help="bundled head name or weight file")
    den.set_defaults(func=_cmd_denoise)

    sr = sub.add_parser(
        "superres",
        help="super-resolve a NIfTI volume/slice or a reconstruction (thick slices -> thin, 2x/4x)",
        description=(
            "Super-resolve IN with the bundled networks (recon.super_resolve): --scale 2 or 4 for a slice "
            "(2-D fusion CNN), 1,1,S for S-times thinner slices of a volume (the 2-D fusion CNN adapted to IN's own "
            "in-plane planes first, --adapt), 2 for an isotropic "
            "volume (the 2-D x2 network on the planes of all three orientations). The output covers the same field of view (its affine is IN's with "
            "voxels S times smaller), in IN's intensity units (see docs/superres.md)."
        ),
    )
    sr.add_argument("input", metavar="IN", help=".nii/.nii.gz volume or slice, or submission .h5 file")
    sr.add_argument("-o", "--output", required=True, metavar="OUT", help="output .nii/.nii.gz")
    sr.add_argument("--scale", type=_scale_arg, required=True, metavar="S",
                    help="positive int (every axis) or per-axis ints like 1,1,3")
    sr.add_argument("--weights", default=None, metavar="W", help="bundled network name or weight file (default: by scale)")
    sr.add_argument("--adapt", type=number_type(int, minimum=0), default=None, metavar="N",
                    help="thick slices: N steps of self-supervised adaptation of the 2-D network to IN's own "
                         "high-resolution planes (SMORE; 0: off; default: recon.super_resolve's)")
    sr.add_argument("--no-self-ensemble", action="store_true",
                    help="no averaging over flips/transposes (recon.super_resolve's self_ensemble=False; by default "
                         "on for slices and in-plane scales: 8 times the work, +0.3 dB at 2x on validation)")
    sr.add_argument("--no-calibrate", action="store_true",
                    help="the network's residual over sinc as it is (recon.super_resolve's calibrate=False; by "
                         "default weighted per volume for an isotropic 2x volume, fitted on IN degraded once more)")
    sr.set_defaults(func=_cmd_superres)

    reg = sub.add_parser(
        "register",
        help="register a NIfTI volume to another (learned VoxelMorph network, or rigid/affine/bspline)",
        description=(
            "Align MOVING to FIXED (recon.register) and write MOVING resampled on FIXED's grid. --method learned "
            "(default): fast affine pre-alignment + the bundled VoxelMorph network (T1-weighted heads); rigid, "
            "affine, bspline: SimpleITK's iterative registration (mutual information). --labels warps a label map "
            "of MOVING with nearest neighbour (see docs/registration.md)."
        ),
    )
    reg.add_argument("fixed", metavar="FIXED", help="reference .nii/.nii.gz volume")
    reg.add_argument("moving", metavar="MOVING", help=".nii/.nii.gz volume to align to FIXED")
    reg.add_argument("-o", "--output", required=True, metavar="OUT", help="warped MOVING, .nii/.nii.gz on FIXED's grid")
    reg.add_argument("--method", choices=("learned", "rigid", "affine", "bspline"), default="learned",
                     help="learned (default), rigid, affine or bspline")
    reg.add_argument("--labels", default=None, metavar="SEG", help="label map of MOVING to carry along (nearest neighbour)")
    reg.add_argument("--labels-output", default=None, metavar="SEG_OUT", help="where to write the warped label map")
    reg.add_argument("--weights", default=None, metavar="W", help="learned: bundled name or weight file (default: register)")
    reg.add_argument("--refine", type=int, default=None, metavar="STEPS",
                     help="learned: Adam steps per level of the instance-specific refinement (default: the built-in "
                          "schedule, see docs/registration.md; 0: the network's field as is)")
    reg.set_defaults(func=_cmd_register)

    train = sub.add_parser(
        "train",
        help="train a VarNet / U-Net / cascade fastMRI-style (see 'recon train --help')",
        add_help=False,
    )
    train.set_defaults(func=_cmd_train)  # main() hands 'recon train ...' to recon.train.main

    bench = sub.add_parser(
        "benchmark",
        help="run the benchmarks and write one report (REPORT.md, results.json, plots)",
        description=(
            "Run every benchmark section (benchmarks/<name>.py in the source repository) and write "
            "OUT/REPORT.md, OUT/results.json and PNG plots: speed and memory against bare torch/h5py, "
            "fastMRI and sigpy, error of every method on the held-out split, scaling. Default OUT: "
            "benchmarks/results/<device>/ (<device>-quick/ with --quick)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_argument("--quick", action="store_true", help="small sizes, few repeats: a smoke run (<= 3 min on 2 CPU cores)")
    bench.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where to run (default: cpu)")
    bench.add_argument("--out", default=None, metavar="DIR", help="output folder")
    bench.add_argument("--budget", type=_positive_float, default=None, metavar="SECONDS",
                       help="start no new section after this many seconds")
    bench.add_argument("--sections", nargs="+", default=None, metavar="NAME", help="only these sections (see --list)")
    bench.add_argument("--list", action="store_true", help="list the report's sections and exit")
    bench.set_defaults(func=_cmd_benchmark)
    return parser


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 500 else text[:497] + "..."


#: errors of the user's input (arguments, files, data): one line, exit status 2
_USER_ERRORS = (CommandError, ValueError, TypeError, OSError, KeyError, ImportError)


def _error_text(err: BaseException) -> str:
    if isinstance(err, KeyError) and err.args:  # str(KeyError) is the quoted key only
        return f"missing key {err.args[0]!r}"
    if isinstance(err, ModuleNotFoundError):
        return f"{_one_line(err)} (install the optional dependency)"
    return _one_line(err)


def _one_line_warnings(command: str):
    """A ``warnings.showwarning`` printing ``recon <command>: warning: <message>`` on one line."""

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"recon {command}: warning: {_one_line(message)}", file=file or sys.stderr)

    return show


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``recon`` console script; returns the exit status.

    0 on success; 2 for every failure, reported as one line on stderr naming the option or the
    file (``-v``: with the traceback of unexpected errors); 130 when interrupted.
    """
    import warnings

    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv[:1] == ["train"] else None
    args = None
    if command is None:
        parser = build_parser()
        args = parser.parse_args(argv)  # usage errors: one line, exit 2 (OneLineParser)
        if args.command is None:  # a usage error like any other: one line on stderr
            commands = ", ".join(sorted(c for c in parser._subparsers._group_actions[0].choices))
            print_error("recon", f"a COMMAND is required, one of: {commands} (see 'recon --help')")
            return 2
        command = args.command
        logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    shown = warnings.showwarning
    warnings.showwarning = _one_line_warnings(command)
    try:
        if args is None:  # the trainer has its own parser (every TrainConfig field)
            return int(_cmd_train(argv[1:]) or 0)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"recon {command}: interrupted", file=sys.stderr)
        return 130
    except _USER_ERRORS as err:
        print_error(f"recon {command}", _error_text(err))
        return 2
    except Exception as err:  # noqa: BLE001 - a bug, still one line (with -v the traceback too)
        if args is not None and args.verbose:
            logger.exception("unexpected error")
        print_error(
            f"recon {command}",
            f"unexpected {type(err).__name__}: {_one_line(err)} (rerun with -v for the traceback; please report it)",
        )
        return 2
    finally:
        warnings.showwarning = shown


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
