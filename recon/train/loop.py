"""The training loop: fastMRI's recipe in plain PyTorch, single process or torchrun.

One epoch: every training slice once (each process a share of whole volumes, see
:class:`recon.data.VolumeSampler`), a fresh seeded mask per slice, Adam on the
:class:`~recon.train.ReconLoss`, then a StepLR step, validation, and checkpoints
``last.ckpt`` (every epoch) and ``best.ckpt`` (best validation SSIM) written atomically by
rank 0, with ``history.json`` beside them. A run with ``resume=True`` continues from
``last.ckpt``: weights, optimiser and scheduler state, epoch and step count.

Randomness: the model is initialised from ``config.seed``; shuffling, masks and any
dropout draw from generators derived from it. The caller's global RNG state is left as it
was (the loop runs inside ``torch.random.fork_rng``).
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn
from tqdm import tqdm

from recon.data.io import atomic_path, remove_stale_temporaries
from recon.train.checkpoint import checkpoint_state_dict, load_checkpoint, save_checkpoint
from recon.train.config import TrainConfig
from recon.train.data import make_dataset, make_loader, make_transform
from recon.train.distributed import (
    DistributedContext,
    all_reduce_sum,
    barrier,
    init_distributed,
    shutdown_distributed,
)
from recon.train.evaluate import evaluate, forward_batch
from recon.train.losses import ReconLoss, optimizer_step
from recon.train.ssdu import SSDU
from recon.train.registry import MODEL_SPECS, build_model

__all__ = ["TrainResult", "train", "train_step"]

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a run produced.

    Attributes:
        output_dir: the run's folder.
        last_checkpoint: ``output_dir/last.ckpt``.
        best_checkpoint: ``output_dir/best.ckpt`` (None without validation).
        epoch: epochs finished.
        global_step: optimiser steps taken.
        history: one record per epoch (train loss, lr, time, validation scores).
        best: the best validation scores and their epoch.
        model: the trained model (this process's copy, unwrapped).
    """

    output_dir: Path
    last_checkpoint: Path
    best_checkpoint: Optional[Path]
    epoch: int
    global_step: int
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=dict)
    model: Optional[nn.Module] = None


def train_step(
    model: nn.Module,
    batch: Any,
    *,
    domain: str,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    grad_clip: Optional[float] = None,
    ssdu: Optional[SSDU] = None,
) -> float:
    """One optimiser step on one batch; returns the batch loss (the SSDU loss when
    ``ssdu`` is given: self-supervised, the batch's targets are not used)."""
    if ssdu is not None:
        loss = ssdu.loss(model, batch, device)
    else:
        output, target, max_value = forward_batch(model, batch, domain, device)
        loss = loss_fn(output, target, max_value)
    return optimizer_step(model, loss, optimizer, grad_clip)


def _show_progress(config: TrainConfig, ctx: DistributedContext) -> bool:
    progress = sys.stderr.isatty() if config.progress is None else config.progress
    return bool(progress and ctx.is_main)


def _write_json(path: Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))


def _check_resume(ckpt: dict, config: TrainConfig, path: Path) -> None:
    meta = ckpt.get("recon") or {}
    if meta.get("model") != config.model or meta.get("model_kwargs") != config.model_kwargs:
        raise ValueError(
            f"cannot resume from {path}: it holds {meta.get('model')!r} with {meta.get('model_kwargs')}, "
            f"the config asks for {config.model!r} with {config.model_kwargs}; use another output_dir "
            "or resume=False"
        )
    for key in ("optimizer_states", "lr_schedulers"):
        if key not in ckpt:
            raise ValueError(f"cannot resume from {path}: it has no {key!r} (an exported weights file?)")


def _load_initial_weights(model: nn.Module, config: TrainConfig) -> None:
    """Fine-tuning: copy ``config.init_weights`` into the freshly built model (strict)."""
    from recon.train.checkpoint import load_model

    source, _ = load_model(
        config.init_weights, model_name=config.model, model_kwargs=config.model_kwargs, impl=config.model_impl
    )
    model.load_state_dict(source.state_dict())
    logger.info("initialised %s from %s", config.model, config.init_weights)


def train(config: TrainConfig) -> TrainResult:
    """Train a model as ``config`` says (see :class:`TrainConfig`).

    Runs in one process, or in every process of a ``torchrun`` launch (DistributedDataParallel,
    gloo on CPU / nccl on CUDA); rank 0 logs, validates the gathered scores and writes files.
    The caller's global RNG state and torch thread count are restored on return.

    Args:
        config: the run's configuration.

    Returns:
        A :class:`TrainResult`.

    Raises:
        ValueError: a checkpoint in ``output_dir`` that does not match the config (when resuming).
        FileNotFoundError: missing data.

    Example:
        >>> from recon.train import TrainConfig, train
        >>> result = train(TrainConfig(model="varnet", model_kwargs={"num_cascades": 2},
        ...                            epochs=1, output_dir="/tmp/varnet-run"))  # doctest: +SKIP
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    ctx = init_distributed(config.device, config.backend)
    threads = torch.get_num_threads()
    try:
        devices = [ctx.device.index or 0] if ctx.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            if config.num_threads is not None:
                torch.set_num_threads(config.num_threads)
            return _train(config, ctx)
    finally:
        torch.set_num_threads(threads)
        shutdown_distributed(ctx)


@dataclass
class _RunFiles:
    """The files of a run in ``output_dir``, committed in this order: ``last.ckpt`` (which holds
    ``best`` and ``history`` too), then ``best.ckpt``, then ``history.json``."""

    out_dir: Path

    def __post_init__(self) -> None:
        self.last, self.best, self.history = (self.out_dir / n for n in ("last.ckpt", "best.ckpt", "history.json"))

    def commit(self, is_best: bool, history: list[dict[str, Any]]) -> None:
        """After ``last.ckpt`` was written: copy it to ``best.ckpt`` when it is the best, rewrite
        ``history.json``.  Each write is atomic; a crash between them is undone by :meth:`repair`."""
        if is_best:
            with atomic_path(self.best) as tmp:
                shutil.copyfile(self.last, tmp)
        _write_json(self.history, history)

    def repair(self, ckpt: dict[str, Any]) -> None:
        """Bring ``best.ckpt`` and ``history.json`` in line with ``last.ckpt`` (``ckpt``) after a
        crash between the writes: ``last.ckpt`` is written first and holds both."""
        meta = ckpt.get("recon") or {}
        best = meta.get("best") or {}
        if best and best.get("epoch") == ckpt.get("epoch"):
            held = load_checkpoint(self.best).get("epoch") if self.best.is_file() else None
            if held != ckpt.get("epoch"):
                logger.warning("repairing %s from %s (a previous run stopped between the writes)", self.best, self.last)
                self.commit(True, list(meta.get("history") or []))
        history = list(meta.get("history") or [])
        try:
            current = json.loads(self.history.read_text())
        except (OSError, ValueError):
            current = None
        if current != history:
            _write_json(self.history, history)


@dataclass
class _State:
    """What a run carries from epoch to epoch (and what ``last.ckpt`` stores)."""

    epoch: int = 0
    global_step: int = 0
    best: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)


def _resume(config: TrainConfig, ctx: DistributedContext, files: _RunFiles, model: nn.Module, optimizer, scheduler) -> _State:
    """Continue from ``last.ckpt`` (weights, optimiser, scheduler, progress) when asked and present."""
    if not (config.resume and files.last.is_file()):
        return _State()
    ckpt = load_checkpoint(files.last, map_location="cpu")
    _check_resume(ckpt, config, files.last)
    model.load_state_dict(checkpoint_state_dict(ckpt, config.model))
    optimizer.load_state_dict(ckpt["optimizer_states"][0])
    scheduler.load_state_dict(ckpt["lr_schedulers"][0])
    # a resumed run may change the schedule (e.g. fewer epochs): the config's step and gamma win
    scheduler.step_size, scheduler.gamma = config.lr_step_size, config.lr_gamma
    if ctx.is_main:
        files.repair(ckpt)
        logger.info("resumed from %s at epoch %d, step %d", files.last, int(ckpt["epoch"]), int(ckpt["global_step"]))
    return _State(
        int(ckpt["epoch"]), int(ckpt["global_step"]),
        dict(ckpt["recon"].get("best") or {}), list(ckpt["recon"].get("history") or []),
    )


def _loaders(config: TrainConfig, ctx: DistributedContext) -> tuple[Any, Any, Any, Any, Optional[Any]]:
    """``(train_transform, train_set, train_loader, train_sampler, val_loader)``."""
    mask_args = dict(mask_type=config.mask_type, center_fractions=config.center_fractions, accelerations=config.accelerations)
    train_transform = make_transform(
        config.model, train=True, seed=config.seed, challenge=config.challenge, crop_rows=config.train_crop_rows, **mask_args
    )
    train_set = make_dataset(
        config.train_data, train_transform, challenge=config.challenge, cache=config.data_cache,
        sample_rate=config.sample_rate, seed=config.seed,
        check="train_data", require_targets=config.self_supervised is None,
    )
    loader_args = dict(num_replicas=ctx.world_size, rank=ctx.rank, num_workers=config.num_workers, seed=config.seed)
    train_loader, train_sampler = make_loader(train_set, batch_size=config.batch_size, shuffle=True, **loader_args)
    val_loader = None
    if config.val_data is not None:
        val_transform = make_transform(config.model, train=False, seed=config.seed, challenge=config.challenge, **mask_args)
        val_set = make_dataset(
            config.val_data, val_transform, challenge=config.challenge, cache=config.data_cache, check="val_data"
        )
        val_loader, _ = make_loader(val_set, batch_size=1, shuffle=False, **loader_args)
    return train_transform, train_set, train_loader, train_sampler, val_loader


def _build(config: TrainConfig, ctx: DistributedContext, files: _RunFiles):
    """The model (seeded, fine-tuning weights when asked, on the run's device), Adam and StepLR."""
    model = build_model(config.model, config.model_kwargs, impl=config.model_impl, seed=config.seed)
    if config.init_weights is not None and not (config.resume and files.last.is_file()):
        _load_initial_weights(model, config)
    model = model.to(ctx.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, config.lr_step_size, config.lr_gamma)
    return model, optimizer, scheduler


def _out_of_steps(config: TrainConfig, state: _State) -> bool:
    return config.max_steps is not None and state.global_step >= config.max_steps


def _train_epoch(net, loader, state: _State, config: TrainConfig, ctx: DistributedContext, *, show: bool, **step_args) -> dict[str, Any]:
    """One pass over ``loader`` (stopping at ``max_steps``); the epoch's record of the history."""
    net.train()
    start = time.perf_counter()
    loss_sum, loss_count = 0.0, 0
    bar = tqdm(loader, desc=f"epoch {state.epoch + 1}/{config.epochs}", leave=False, disable=not show)
    for batch in bar:
        loss = train_step(net, batch, device=ctx.device, grad_clip=config.grad_clip, **step_args)
        state.global_step += 1
        loss_sum, loss_count = loss_sum + loss, loss_count + 1
        bar.set_postfix(loss=f"{loss:.4f}")
        if _out_of_steps(config, state):
            break
    bar.close()
    totals = all_reduce_sum(ctx, torch.tensor([loss_sum, float(loss_count)], dtype=torch.float64))
    return {
        "epoch": state.epoch + 1,
        "global_step": state.global_step,
        "train_loss": float(totals[0] / max(totals[1], 1.0)),
        "train_time_s": round(time.perf_counter() - start, 2),
    }


def _validate(net, val_loader, record: dict[str, Any], ctx: DistributedContext, *, show: bool, **eval_args) -> dict[str, Any]:
    """Validation scores (volumes dropped), also added to ``record`` as ``val_*``."""
    start = time.perf_counter()
    result = evaluate(net, val_loader, ctx=ctx, progress=show, **eval_args)
    metrics = {key: value for key, value in result.items() if key != "volumes"}
    record.update({f"val_{key}": value for key, value in metrics.items()})
    record["val_time_s"] = round(time.perf_counter() - start, 2)
    return metrics


def _train(config: TrainConfig, ctx: DistributedContext) -> TrainResult:
    domain = MODEL_SPECS[config.model].domain
    files = _RunFiles(Path(config.output_dir))
    if ctx.is_main:
        files.out_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(files.out_dir)
    model, optimizer, scheduler = _build(config, ctx, files)
    state = _resume(config, ctx, files, model, optimizer, scheduler)
    net: nn.Module = model
    if ctx.distributed:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
    train_transform, train_set, train_loader, train_sampler, val_loader = _loaders(config, ctx)
    loss_fn = ReconLoss(config.loss, config.l1_weight).to(ctx.device)
    ssdu = None
    if config.self_supervised == "ssdu":
        ssdu = SSDU(config.ssdu_rho, config.ssdu_selection, seed=config.seed + ctx.rank, unit=config.ssdu_unit)
    show = _show_progress(config, ctx)
    if ctx.is_main:
        logger.info(
            "training %s (%d parameters) on %d slices (%d per process, %d processes), epochs %d-%d",
            config.model, sum(p.numel() for p in model.parameters()), len(train_set), len(train_sampler),
            ctx.world_size, state.epoch + 1, config.epochs,
        )

    for epoch_index in range(state.epoch, config.epochs):
        if _out_of_steps(config, state):
            break
        torch.manual_seed((config.seed * 1_000_003 + epoch_index * 7919 + ctx.rank) % 2**63)
        train_sampler.set_epoch(epoch_index)
        train_transform.set_epoch(epoch_index)
        lr = optimizer.param_groups[0]["lr"]
        record = _train_epoch(
            net, train_loader, state, config, ctx, show=show,
            domain=domain, loss_fn=loss_fn, optimizer=optimizer, ssdu=ssdu,
        )
        record["lr"] = lr
        scheduler.step()
        state.epoch = epoch_index + 1
        metrics: dict[str, Any] = {}
        if val_loader is not None and (state.epoch % config.val_every == 0 or state.epoch == config.epochs or _out_of_steps(config, state)):
            metrics = _validate(net, val_loader, record, ctx, show=show, domain=domain, loss_fn=loss_fn)
        state.history.append(record)
        is_best = bool(metrics) and (not state.best or metrics["ssim"] > state.best["ssim"])
        if is_best:
            state.best = {"epoch": state.epoch, "global_step": state.global_step, **metrics}
        if ctx.is_main:
            _save(files, model, optimizer, scheduler, config, state, record, metrics, is_best)
        barrier(ctx)

    return TrainResult(
        output_dir=files.out_dir, last_checkpoint=files.last, best_checkpoint=files.best if state.best else None,
        epoch=state.epoch, global_step=state.global_step, history=state.history, best=state.best, model=model,
    )


def _save(files: _RunFiles, model, optimizer, scheduler, config: TrainConfig, state: _State, record, metrics, is_best: bool) -> None:
    """Rank 0 at the end of an epoch: log, write ``last.ckpt``, then ``best.ckpt`` and ``history.json``."""
    logger.info(
        "epoch %d step %d train_loss %.4f%s (%.1fs)",
        state.epoch, state.global_step, record["train_loss"],
        "" if not metrics else f" val ssim {metrics['ssim']:.4f} psnr {metrics['psnr']:.2f} nmse {metrics['nmse']:.4f}",
        record["train_time_s"],
    )
    save_checkpoint(
        files.last, model, model_name=config.model, model_kwargs=config.model_kwargs,
        optimizer=optimizer, scheduler=scheduler, epoch=state.epoch, global_step=state.global_step,
        config=config.to_dict(), metrics=metrics, best=state.best, history=state.history,
    )
    files.commit(is_best, state.history)
