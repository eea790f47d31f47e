"""Command line of the trainer: ``python -m recon.train``, ``torchrun ... -m recon.train`` and
``recon train`` (the ``recon`` console script calls :func:`main` with the arguments after
``train``).

Examples::

    python -m recon.train --model varnet --model-kwargs '{"num_cascades": 4, "chans": 8}' \\
        --train-data embedded:train --val-data embedded:val --epochs 10 --output-dir runs/varnet
    torchrun --nproc_per_node 2 -m recon.train --config runs/varnet/config.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

from recon.masks import MASK_TYPES
from recon.ops._checks import CHALLENGES
from recon.train.cli_args import NumberList, OneLineParser
from recon.train.config import LOSSES, MODEL_IMPLS, TrainConfig
from recon.train.registry import MODEL_SPECS

__all__ = ["build_parser", "config_from_args", "main"]

logger = logging.getLogger("recon.train")


def _json_dict(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r} ({err.msg})") from err
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


# option name -> (TrainConfig field, argparse keyword arguments)
_OPTIONS = {
    "--model": ("model", dict(choices=sorted(MODEL_SPECS), help="model to train")),
    "--model-kwargs": ("model_kwargs", dict(type=_json_dict, metavar="JSON", help="constructor arguments as JSON, e.g. '{\"num_cascades\": 4}'")),
    "--model-impl": ("model_impl", dict(choices=MODEL_IMPLS, help="recon.models (default) or the fastmri package's class")),
    "--train-data": ("train_data", dict(metavar="PATH", help="folder of fastMRI .h5 files, or embedded:<split>")),
    "--val-data": ("val_data", dict(metavar="PATH", help="validation data (folder or embedded:<split>); 'none' to skip")),
    "--challenge": ("challenge", dict(choices=sorted(CHALLENGES))),
    "--data-cache": ("data_cache", dict(metavar="DIR", help="cache folder for embedded splits")),
    "--sample-rate": ("sample_rate", dict(type=float, help="fraction of training slices to use")),
    "--train-crop-rows": ("train_crop_rows", dict(type=int, metavar="ROWS", help="train k-space models on random readout windows of ROWS rows")),
    "--mask-type": ("mask_type", dict(choices=sorted(MASK_TYPES), help="mask function name")),
    # the list syntax of `recon reconstruct`: "0.08 0.04", "0.08,0.04" or "0.08, 0.04"
    "--center-fractions": ("center_fractions", dict(action=NumberList, low=0.0, high=1.0, metavar="F", help="e.g. 0.08,0.04")),
    "--accelerations": ("accelerations", dict(action=NumberList, low=1.0, metavar="A", help="e.g. 4,8 or '4 8'")),
    "--loss": ("loss", dict(choices=LOSSES)),
    "--l1-weight": ("l1_weight", dict(type=float)),
    "--lr": ("lr", dict(type=float)),
    "--lr-step-size": ("lr_step_size", dict(type=int)),
    "--lr-gamma": ("lr_gamma", dict(type=float)),
    "--weight-decay": ("weight_decay", dict(type=float)),
    "--grad-clip": ("grad_clip", dict(type=float)),
    "--epochs": ("epochs", dict(type=int)),
    "--max-steps": ("max_steps", dict(type=int)),
    "--batch-size": ("batch_size", dict(type=int)),
    "--num-workers": ("num_workers", dict(type=int)),
    "--seed": ("seed", dict(type=int)),
    "--output-dir": ("output_dir", dict(metavar="DIR", help="checkpoints and history.json go here")),
    "--resume": ("resume", dict(type=_bool, metavar="BOOL", help="continue from OUTPUT_DIR/last.ckpt (default true)")),
    "--val-every": ("val_every", dict(type=int)),
    "--device": ("device", dict(choices=("auto", "cpu", "cuda"))),
    "--backend": ("backend", dict(choices=("gloo", "nccl"))),
    "--num-threads": ("num_threads", dict(type=int)),
    "--progress": ("progress", dict(type=_bool, metavar="BOOL", help="progress bar (default: when a terminal)")),
    "--self-supervised": ("self_supervised", dict(choices=("ssdu",), help="train without references: SSDU (Yaman et al. 2020)")),
    "--ssdu-rho": ("ssdu_rho", dict(type=float, metavar="RHO", help="SSDU loss-set ratio in (0, 1) (default 0.4)")),
    "--init-weights": ("init_weights", dict(metavar="CKPT", help="fine-tune: start from these weights (recon or fastMRI checkpoint)")),
    "--ssdu-unit": ("ssdu_unit", dict(choices=("auto", "points", "columns"), help="SSDU loss set: auto (default: lines for column masks), points (paper) or columns")),
    "--ssdu-selection": ("ssdu_selection", dict(choices=("gaussian", "uniform"), help="SSDU loss-set selection (default gaussian)")),
}


def build_parser(prog: str = "recon train") -> argparse.ArgumentParser:
    """The argument parser of the trainer (every :class:`TrainConfig` field is an option)."""
    parser = OneLineParser(  # usage errors: one line on stderr, exit status 2
        prog=prog,
        description=(
            "Train a reconstruction model (VarNet, U-Net, cascade) fastMRI-style. Options override "
            "the --config file, which overrides TrainConfig's defaults. Run under torchrun for "
            "distributed data parallel training."
        ),
    )
    parser.add_argument("--config", type=Path, metavar="JSON", help="a TrainConfig as JSON (e.g. a run's config.json)")
    for option, (_, kwargs) in _OPTIONS.items():
        parser.add_argument(option, default=None, **kwargs)
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Merge defaults, the ``--config`` file and the command-line options into a config."""
    data = TrainConfig().to_dict()
    if args.config is not None:
        try:
            loaded = json.loads(Path(args.config).read_text())
        except FileNotFoundError as err:
            raise FileNotFoundError(f"--config file not found: {str(args.config)!r}") from err
        except json.JSONDecodeError as err:
            raise ValueError(f"--config {str(args.config)!r} is not valid JSON: {err}") from err
        if not isinstance(loaded, dict):
            raise ValueError(f"--config {str(args.config)!r} must hold a JSON object of TrainConfig fields")
        TrainConfig.check_fields(loaded, source=f"--config {str(args.config)!r}")
        data.update(loaded)
    for option, (name, _) in _OPTIONS.items():
        value = getattr(args, option[2:].replace("-", "_"))
        if value is not None:
            data[name] = value
    if isinstance(data.get("val_data"), str) and data["val_data"].lower() == "none":
        data["val_data"] = None
    return TrainConfig.from_dict(data)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run a training from command-line arguments; returns the exit status.

    Args:
        argv: the arguments (without the program name); default ``sys.argv[1:]``.

    Returns:
        0 on success, 2 on a configuration or data error (a one-line message is logged).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a == "--task" or a.startswith("--task=") for a in argv):  # image heads (recon.train.tasks_heads)
        from recon.train.tasks_heads import main as heads_main

        return heads_main(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    else:
        logging.getLogger("recon").setLevel(args.log_level)
    try:
        config = config_from_args(args)
    except (ValueError, TypeError, FileNotFoundError) as err:
        logger.error("%s", err)
        return 2
    from recon.train.loop import train

    try:
        result = train(config)
    except (ValueError, FileNotFoundError) as err:
        logger.error("%s", err)
        return 2
    logger.info(
        "done: epoch %d, step %d, last checkpoint %s%s",
        result.epoch, result.global_step, result.last_checkpoint,
        f", best {result.best_checkpoint} (val ssim {result.best['ssim']:.4f})" if result.best else "",
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
