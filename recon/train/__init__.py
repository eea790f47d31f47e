"""Training and evaluation of the learned models, fastMRI-style, in plain PyTorch.

* :class:`TrainConfig`: every setting of a run, validated, JSON-serialisable.
* :func:`train`: the loop (Adam + StepLR, SSIM/L1 loss, seeded masks, validation with
  fastMRI's per-volume NMSE/PSNR/SSIM, atomic ``last.ckpt``/``best.ckpt``, resume,
  DistributedDataParallel under ``torchrun`` with gloo or nccl).
* :func:`save_checkpoint` / :func:`load_checkpoint` / :func:`load_model` /
  :func:`export_weights`: checkpoints with fastMRI's key names (``varnet.<param>``).
* :func:`evaluate`: score a model on a data loader, volume by volume.
* :func:`main`: the command line (``python -m recon.train``, ``recon train``).

Example:
    >>> from recon.train import TrainConfig, train  # doctest: +SKIP
    >>> result = train(TrainConfig(model="varnet", model_kwargs={"num_cascades": 4}, epochs=5,
    ...                            output_dir="runs/varnet"))  # doctest: +SKIP
"""

from recon.train.checkpoint import (
    FORMAT_VERSION,
    checkpoint_state_dict,
    export_weights,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from recon.train.cli import build_parser, main
from recon.train.config import LOSSES, TrainConfig
from recon.train.distributed import DistributedContext, init_distributed
from recon.train.evaluate import ZeroFilled, evaluate, forward_batch, volume_scores
from recon.train.loop import TrainResult, train, train_step
from recon.train.losses import ReconLoss
from recon.train.registry import MODEL_SPECS, ModelSpec, build_model

__all__ = [
    "TrainConfig", "LOSSES", "train", "train_step", "TrainResult", "ReconLoss",
    "save_checkpoint", "load_checkpoint", "load_model", "export_weights", "checkpoint_state_dict",
    "FORMAT_VERSION", "evaluate", "forward_batch", "volume_scores", "ZeroFilled",
    "DistributedContext", "init_distributed", "MODEL_SPECS", "ModelSpec", "build_model",
    "build_parser", "main",
]
