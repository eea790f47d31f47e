"""torch.distributed set-up under ``torchrun`` (gloo on CPU, nccl on CUDA): training, and
folder reconstruction / evaluation sharded across processes and machines (:func:`map_sharded`).

``torchrun --nproc_per_node N -m recon.train ...`` sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed` reads them,
joins the process group and picks this process's device. Without those variables (or with
``WORLD_SIZE=1``) everything runs in one process and the helpers here are no-ops.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, TypeVar

import torch
import torch.distributed as dist

__all__ = [
    "DistributedContext", "init_distributed", "shutdown_distributed", "all_gather_objects", "all_reduce_sum",
    "barrier", "broadcast_object", "shard_indices", "shard_paths", "map_sharded", "ItemFailure",
]

T = TypeVar("T")


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


# --------------------------------------------------------------------------------------------
# sharding a list of files (folder reconstruction / evaluation across processes and machines)


def broadcast_object(ctx: DistributedContext, obj: Any) -> Any:
    """Rank 0's ``obj`` on every process (``obj`` itself in single-process runs)."""
    if not ctx.distributed:
        return obj
    box = [obj if ctx.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shard_indices(sizes: Sequence[float], world_size: int) -> list[list[int]]:
    """Deal items to ``world_size`` workers so their total sizes are balanced.

    Longest-processing-time-first: items in decreasing size (ties by index) each go to the
    worker with the smallest total so far (ties to the lowest rank).  Deterministic; each
    worker's indices are returned in increasing order.

    Args:
        sizes: a non-negative cost per item (e.g. file sizes in bytes).
        world_size: number of workers (>= 1).

    Returns:
        ``world_size`` lists of item indices; together they hold every index exactly once.

    Raises:
        ValueError: ``world_size`` < 1 or a negative size.

    Example:
        >>> shard_indices([5, 1, 1, 3], 2)
        [[0], [1, 2, 3]]
    """
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive integer, got {world_size!r}")
    if any(s < 0 for s in sizes):
        raise ValueError(f"sizes must be non-negative, got {list(sizes)!r}")
    loads = [0.0] * world_size
    shards: list[list[int]] = [[] for _ in range(world_size)]
    for index in sorted(range(len(sizes)), key=lambda i: (-sizes[i], i)):
        worker = min(range(world_size), key=lambda r: (loads[r], r))
        shards[worker].append(index)
        loads[worker] += sizes[index]
    return [sorted(s) for s in shards]


def shard_paths(ctx: DistributedContext, paths: Sequence[os.PathLike | str]) -> list[Path]:
    """This process's share of ``paths``, balanced by file size.

    Rank 0 reads the sizes and deals the files (:func:`shard_indices`); the assignment is
    broadcast, so every process agrees even if their views of the file system differ
    slightly (multi-node runs need the files on a shared file system).  Single-process runs
    get every path, in order.
    """
    paths = [Path(p) for p in paths]
    if not ctx.distributed:
        return paths
    assignment = None
    if ctx.is_main:
        sizes = [p.stat().st_size if p.exists() else 0 for p in paths]
        assignment = shard_indices(sizes, ctx.world_size)
    assignment = broadcast_object(ctx, assignment)
    return [paths[i] for i in assignment[ctx.rank]]


@dataclass
class ItemFailure:
    """One item that failed in :func:`map_sharded`: which process, which item, what error."""

    rank: int
    item: str
    error: str
    kind: str

    def __str__(self) -> str:
        return f"{self.item} (rank {self.rank}): {self.error}"


def map_sharded(
    ctx: DistributedContext,
    paths: Sequence[os.PathLike | str],
    fn: Callable[[Path], T],
) -> tuple[list[tuple[str, T]], list[ItemFailure]]:
    """Apply ``fn`` to this process's share of ``paths``; gather every result and failure.

    Every process calls this with the same ``paths``.  An exception from ``fn`` on one path
    is recorded (rank, file name, message) and the process goes on with its next path, so a
    bad file costs only itself; all processes then exchange their results.

    Args:
        ctx: from :func:`init_distributed`.
        paths: the items (files) of the whole job, the same list on every process.
        fn: work for one path; its return value must be picklable.

    Returns:
        ``(results, failures)`` on every process: ``results`` as ``(path name, value)`` sorted
        by name (the same order however many processes ran), ``failures`` sorted by name.
    """
    results: list[tuple[str, T]] = []
    failures: list[ItemFailure] = []
    for path in shard_paths(ctx, paths):
        try:
            results.append((path.name, fn(path)))
        except KeyboardInterrupt:
            raise
        except Exception as err:  # noqa: BLE001 - reported with the file name below
            message = " ".join(str(err).split()) or type(err).__name__
            failures.append(ItemFailure(ctx.rank, path.name, message, type(err).__name__))
    gathered = all_gather_objects(ctx, (results, failures))
    all_results = sorted((r for res, _ in gathered for r in res), key=lambda r: r[0])
    all_failures = sorted((f for _, fail in gathered for f in fail), key=lambda f: (f.item, f.rank))
    return all_results, all_failures
