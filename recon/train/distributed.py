"""torch.distributed set-up for training under ``torchrun`` (gloo on CPU, nccl on CUDA).

``torchrun --nproc_per_node N -m recon.train ...`` sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed` reads them,
joins the process group and picks this process's device. Without those variables (or with
``WORLD_SIZE=1``) everything runs in one process and the helpers here are no-ops.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.distributed as dist

__all__ = ["DistributedContext", "init_distributed", "shutdown_distributed", "all_gather_objects", "all_reduce_sum", "barrier"]


@dataclass
class DistributedContext:
    """Where this process stands in a (possibly single-process) run.

    Attributes:
        rank: global rank (0 in single-process runs).
        world_size: number of processes.
        local_rank: rank on this machine (selects the CUDA device).
        device: this process's device.
        backend: the process group's backend, or None when not distributed.
        owns_group: True when :func:`init_distributed` created the group (and should
            destroy it).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: Optional[str] = None
    owns_group: bool = False

    @property
    def distributed(self) -> bool:
        """More than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs and writes files."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as err:
        raise ValueError(f"environment variable {name} must be an integer, got {value!r}") from err


def init_distributed(device: str = "auto", backend: Optional[str] = None) -> DistributedContext:
    """Join the process group described by torchrun's environment, if any.

    Args:
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        backend: ``"gloo"``, ``"nccl"`` or None (nccl for CUDA, gloo for CPU).

    Returns:
        The :class:`DistributedContext` of this process.

    Raises:
        ValueError: a bad ``device``/``backend``, ``device="cuda"`` without CUDA, or a
            malformed ``RANK``/``WORLD_SIZE``.
    """
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if backend not in (None, "gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo', 'nccl' or None, got {backend!r}")
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but torch.cuda.is_available() is False")
    if dist.is_available() and dist.is_initialized():
        rank, world_size = dist.get_rank(), dist.get_world_size()
        local_rank = _env_int("LOCAL_RANK", rank)
        owns = False
        backend = dist.get_backend()
    else:
        world_size = _env_int("WORLD_SIZE", 1)
        rank = _env_int("RANK", 0)
        local_rank = _env_int("LOCAL_RANK", rank)
        owns = world_size > 1
        if owns:
            if not dist.is_available():
                raise ValueError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
            backend = backend or ("nccl" if use_cuda else "gloo")
            dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world_size)
        else:
            backend = None
    if use_cuda:
        torch_device = torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
        torch.cuda.set_device(torch_device)
    else:
        torch_device = torch.device("cpu")
    return DistributedContext(rank, world_size, local_rank, torch_device, backend, owns)


def shutdown_distributed(ctx: DistributedContext) -> None:
    """Destroy the process group if :func:`init_distributed` created it."""
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistributedContext) -> None:
    """Wait for every process (no-op in single-process runs)."""
    if ctx.distributed:
        dist.barrier()


def all_reduce_sum(ctx: DistributedContext, values: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over processes (returns a new tensor; the input is unchanged)."""
    out = values.detach().clone()
    if ctx.distributed:
        if ctx.backend == "nccl":
            out = out.to(ctx.device)
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out.cpu()


def all_gather_objects(ctx: DistributedContext, obj: Any) -> list[Any]:
    """Every process's ``obj`` (picklable), in rank order; ``[obj]`` in single-process runs."""
    if not ctx.distributed:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out
