"""Training: crash consistency of the run files, the command line's one-line promise, global state.

A run commits ``last.ckpt`` (which holds ``best`` and ``history``), then ``best.ckpt``, then
``history.json``; a kill -9 between those writes leaves ``best.ckpt``/``history.json`` stale, and
the next ``--resume`` run repairs them from ``last.ckpt`` even when it has no epoch left to train.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from recon.train import TrainConfig, build_model, load_checkpoint, train
from recon.cli import main as recon_main
from recon.train.cli import main

from reliability_helpers import raises_naming

CHILD = Path(__file__).with_name("crash_child.py")
TINY = {"num_cascades": 1, "chans": 4, "pools": 1, "sens_chans": 2, "sens_pools": 1}


@pytest.fixture(scope="module")
def tiny_split(tmp_path_factory):
    from recon.data import SimulationConfig, simulate_multicoil, write_simulated
    import numpy as np

    root = tmp_path_factory.mktemp("train_data")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:32, :32] - 15.5
    for v in range(2):
        images = np.stack([((yy**2 + xx**2) < 150) * (1 + 0.2 * rng.random((32, 32))) for _ in range(2)]).astype(np.float32)
        write_simulated(root / f"vol{v}.h5", simulate_multicoil(images, SimulationConfig(num_coils=2, snr=60.0), seed=v),
                        acquisition="SIM", patient_id=f"p{v}")
    return root


def _args(data: Path, out: Path, epochs: int = 1) -> list[str]:
    return [
        "train", "--model", "varnet", "--model-kwargs", json.dumps(TINY), "--train-data", str(data),
        "--val-data", str(data), "--epochs", str(epochs), "--output-dir", str(out), "--center-fractions", "0.25",
        "--accelerations", "2", "--num-threads", "1", "--log-level", "ERROR",
    ]


def _consistent(out: Path) -> None:
    last = load_checkpoint(out / "last.ckpt")
    best = last["recon"]["best"]
    assert load_checkpoint(out / "best.ckpt")["epoch"] == best["epoch"]
    assert json.loads((out / "history.json").read_text()) == last["recon"]["history"]
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")], "temporaries left"


# the atomic writes of one epoch: 1 last.ckpt, 2 best.ckpt, 3 history.json
CRASHES = [
    pytest.param("after-rename", 1, id="after-last.ckpt"),
    pytest.param("before-rename", 2, marks=pytest.mark.slow, id="before-best.ckpt"),
    pytest.param("after-rename", 2, marks=pytest.mark.slow, id="after-best.ckpt"),
    pytest.param("temp-created", 3, marks=pytest.mark.slow, id="during-history.json"),
]


@pytest.mark.parametrize("point,nth", CRASHES)
def test_kill_between_checkpoint_writes_is_repaired_on_resume(tiny_split, tmp_path, point, nth):
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, str(CHILD), point, str(nth), *_args(tiny_split, out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    assert (out / "last.ckpt").is_file()
    # the rerun has no epoch left to train, and still leaves a consistent set
    assert recon_main([*_args(tiny_split, out), "--resume", "true"]) == 0
    _consistent(out)


def test_repair_of_stale_best_and_history(tiny_split, tmp_path):
    """The state a kill after ``last.ckpt`` leaves, made by hand: resume repairs it in process."""
    config = TrainConfig(model="varnet", model_kwargs=TINY, train_data=str(tiny_split), val_data=str(tiny_split),
                         center_fractions=(0.25,), accelerations=(2,), epochs=1, output_dir=str(tmp_path / "run"),
                         progress=False, num_threads=1)
    train(config)
    out = tmp_path / "run"
    (out / "best.ckpt").unlink()
    (out / "history.json").write_text("[]")
    result = train(config)  # resume=True by default; nothing left to train
    assert result.epoch == 1
    _consistent(out)


def test_train_restores_threads_and_rng(tiny_split, tmp_path):
    threads = torch.get_num_threads()
    state = torch.get_rng_state()
    config = TrainConfig(model="varnet", model_kwargs=TINY, train_data=str(tiny_split), epochs=1,
                         center_fractions=(0.25,), accelerations=(2,), output_dir=str(tmp_path / "run"),
                         progress=False, num_threads=max(1, threads - 1) if threads > 1 else 2, max_steps=1)
    train(config)
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.get_rng_state(), state)


def test_unet_without_model_kwargs_builds():
    """``python -m recon.train --model unet`` used to die in Unet() (in_chans/out_chans missing)."""
    model = build_model("unet", {})
    assert model.in_chans == 1 and model.out_chans == 1
    assert TrainConfig(model="unet").model_kwargs == {}


BAD_CONFIGS = [
    pytest.param({"model": "resnet"}, ValueError, "model", id="unknown-model"),
    pytest.param({"epochs": 0}, ValueError, "epochs", id="zero-epochs"),
    pytest.param({"lr": -1.0}, ValueError, "lr", id="negative-lr"),
    pytest.param({"model_kwargs": {"depth": 3}}, ValueError, "depth", id="unknown-model-kwarg"),
    pytest.param({"challenge": "triplecoil"}, ValueError, "challenge", id="bad-challenge"),
    pytest.param({"accelerations": (0,)}, ValueError, "accelerations", id="zero-acceleration"),
    pytest.param({"batch_size": 0}, ValueError, "batch_size", id="zero-batch"),
]


@pytest.mark.parametrize("changes,exc,name", BAD_CONFIGS)
def test_bad_configs_name_the_field(changes, exc, name):
    with raises_naming(exc, name):
        TrainConfig(**changes)


BAD_ARGS = [
    pytest.param(["--epochs", "0"], "epochs", id="cli-zero-epochs"),
    pytest.param(["--model-kwargs", "{not json"], "model-kwargs", id="cli-bad-json"),
    pytest.param(["--train-data", "/nonexistent/folder"], "nonexistent", id="cli-missing-data"),
]


@pytest.mark.parametrize("extra,name", BAD_ARGS)
def test_command_line_errors_are_one_line(tmp_path, capsys, extra, name):
    base = ["--model", "varnet", "--output-dir", str(tmp_path / "run"), "--log-level", "ERROR"]
    try:
        status = main(base + extra)
    except SystemExit as err:  # argparse errors
        status = err.code
    assert status == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
