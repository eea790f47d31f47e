"""The training loop: a step lowers the loss, runs are reproducible, resume continues, RNG untouched."""

from __future__ import annotations

import json

import pytest
import torch

from recon.train import ReconLoss, build_model, load_checkpoint, train, train_step
from recon.train.data import make_dataset, make_loader, make_transform

from .conftest import TINY_VARNET


def _batch(tiny_data):
    transform = make_transform("varnet", train=False, mask_type="random", center_fractions=[0.25], accelerations=[2], seed=0)
    dataset = make_dataset(tiny_data["train"], transform)
    loader, _ = make_loader(dataset, batch_size=2, shuffle=False, seed=0)
    return next(iter(loader))


def test_one_step_decreases_the_loss(tiny_data, single_thread):
    batch = _batch(tiny_data)
    model = build_model("varnet", TINY_VARNET, seed=0)
    loss_fn = ReconLoss("ssim")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    cpu = torch.device("cpu")
    first = train_step(model, batch, domain="kspace", loss_fn=loss_fn, optimizer=optimizer, device=cpu)
    second = train_step(model, batch, domain="kspace", loss_fn=loss_fn, optimizer=optimizer, device=cpu, grad_clip=1.0)
    assert 0 < second < first


def test_train_resume_and_reproducibility(tiny_config):
    rng_state = torch.get_rng_state()
    config = tiny_config(epochs=1, max_steps=2)
    result = train(config)
    assert torch.equal(torch.get_rng_state(), rng_state)  # the caller's global RNG is untouched
    assert result.global_step == 2 and result.epoch == 1
    assert result.last_checkpoint.is_file() and result.best_checkpoint.is_file()
    ckpt = load_checkpoint(result.last_checkpoint)
    assert ckpt["global_step"] == 2 and ckpt["epoch"] == 1
    assert "optimizer_states" in ckpt and "lr_schedulers" in ckpt
    assert ckpt["recon"]["config"]["max_steps"] == 2
    assert {"ssim", "psnr", "nmse", "loss"} <= set(ckpt["recon"]["metrics"])
    history = json.loads((result.output_dir / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1] and "val_ssim" in history[0]

    # resume: the second epoch starts where the first stopped; step count and history continue
    # (with a new StepLR schedule: step every epoch, gamma 0.5 -> the lr halves after epoch 2)
    resumed = train(config.replace(epochs=2, max_steps=None, lr_step_size=1, lr_gamma=0.5))
    assert resumed.epoch == 2
    assert resumed.global_step == 2 + 6  # 3 volumes x 2 slices, batch size 1
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    ckpt = load_checkpoint(resumed.last_checkpoint)
    assert ckpt["global_step"] == 8
    assert ckpt["lr_schedulers"][0]["step_size"] == 1
    assert ckpt["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(0.5e-3)


def _weights(path):
    return load_checkpoint(path)["state_dict"]


def test_resumed_run_equals_uninterrupted_run(tiny_config, tmp_path):
    straight = train(tiny_config(epochs=2, output_dir=str(tmp_path / "a"), val_data=None))
    train(tiny_config(epochs=1, output_dir=str(tmp_path / "b"), val_data=None))
    resumed = train(tiny_config(epochs=2, output_dir=str(tmp_path / "b"), val_data=None))
    assert straight.best_checkpoint is None  # no validation, no best
    a, b = _weights(straight.last_checkpoint), _weights(resumed.last_checkpoint)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert straight.global_step == resumed.global_step == 12


def test_resume_refuses_a_different_model(tiny_config):
    train(tiny_config(max_steps=1, val_data=None))
    with pytest.raises(ValueError, match="cannot resume from .*last.ckpt"):
        train(tiny_config(max_steps=1, val_data=None, model_kwargs={**TINY_VARNET, "chans": 6}))


def test_train_rejects_non_config():
    with pytest.raises(TypeError, match="config must be a TrainConfig"):
        train({"model": "varnet"})


def test_train_with_readout_crops(tiny_config):
    result = train(tiny_config(train_crop_rows=16, max_steps=2, val_data=None))
    assert result.global_step == 2
    assert load_checkpoint(result.last_checkpoint)["recon"]["config"]["train_crop_rows"] == 16
