"""A 2-process DistributedDataParallel run with the gloo backend, launched by torchrun."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from recon.train import load_checkpoint
from recon.train.distributed import DistributedContext, all_gather_objects, all_reduce_sum, init_distributed

from .conftest import TINY_VARNET

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not available")
def test_two_process_gloo_run(tiny_data, tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
        "--master_port", str(_free_port()), "-m", "recon.train",
        "--model", "varnet", "--model-impl", "recon", "--model-kwargs", json.dumps(TINY_VARNET),
        "--train-data", str(tiny_data["train"]), "--val-data", str(tiny_data["val"]),
        "--center-fractions", "0.25", "--accelerations", "2", "--epochs", "1", "--seed", "3",
        "--device", "cpu", "--num-threads", "1", "--output-dir", str(out), "--progress", "false",
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = load_checkpoint(out / "last.ckpt")
    # 3 volumes of 2 slices dealt to 2 ranks whole: loads 4 and 2, padded to 4 per rank -> 4 steps
    assert ckpt["global_step"] == 4
    metrics = ckpt["recon"]["metrics"]
    # validation volumes are split between the ranks and the scores gathered: both volumes scored
    assert metrics["num_volumes"] == 2 and metrics["num_slices"] == 4
    assert all(k.startswith("varnet.") for k in ckpt["state_dict"])  # no DDP "module." prefix
    assert "gloo" in proc.stderr or "epoch 1" in proc.stderr


def test_single_process_context_helpers(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    ctx = init_distributed("cpu")
    assert (ctx.rank, ctx.world_size, ctx.distributed, ctx.is_main) == (0, 1, False, True)
    assert all_gather_objects(ctx, {"a": 1}) == [{"a": 1}]
    values = torch.tensor([1.0, 2.0])
    assert torch.equal(all_reduce_sum(ctx, values), values)
    assert DistributedContext().device == torch.device("cpu")


def test_init_distributed_errors(monkeypatch):
    with pytest.raises(ValueError, match="device must be 'auto', 'cpu' or 'cuda'"):
        init_distributed("tpu")
    with pytest.raises(ValueError, match="backend must be 'gloo', 'nccl' or None"):
        init_distributed("cpu", backend="mpi")
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE must be an integer"):
        init_distributed("cpu")
    if not torch.cuda.is_available():
        monkeypatch.delenv("WORLD_SIZE")
        with pytest.raises(ValueError, match="device='cuda' was asked for"):
            init_distributed("cuda")
