"""The command line (recon.train.main) and the training data helpers."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from recon.train import TrainConfig, main
from recon.train.cli import build_parser, config_from_args
from recon.train.data import SeededTrainTransform, crop_readout, make_dataset, make_transform, resolve_data_path

from .conftest import TINY_VARNET


def test_config_from_args_merges_file_and_options(tmp_path):
    config_file = tmp_path / "c.json"
    config_file.write_text(json.dumps({"model": "varnet", "epochs": 7, "lr": 0.01, "model_impl": "recon"}))
    args = build_parser().parse_args(
        ["--config", str(config_file), "--lr", "0.002", "--accelerations", "4,8", "--center-fractions", "0.08,0.04",
         "--val-data", "none", "--resume", "false", "--model-kwargs", json.dumps(TINY_VARNET)]
    )
    config = config_from_args(args)
    assert config.epochs == 7 and config.lr == 0.002 and config.val_data is None and config.resume is False
    assert config.accelerations == (4, 8) and config.model_kwargs == TINY_VARNET


def test_main_trains_and_reports_errors(tiny_data, tmp_path, caplog):
    out = tmp_path / "run"
    argv = [
        "--model-impl", "recon", "--model-kwargs", json.dumps(TINY_VARNET), "--train-data", str(tiny_data["train"]),
        "--val-data", "none", "--center-fractions", "0.25", "--accelerations", "2", "--max-steps", "1",
        "--output-dir", str(out), "--num-threads", "1",
    ]
    assert main(argv) == 0
    assert (out / "last.ckpt").is_file()
    with caplog.at_level(logging.ERROR, logger="recon.train"):
        assert main(argv + ["--lr", "-1"]) == 2
        assert main(argv + ["--train-data", str(tmp_path / "missing")]) == 2
        assert main(["--config", str(tmp_path / "nope.json")]) == 2
    assert "TrainConfig.lr must be a positive number" in caplog.text
    assert "data path not found" in caplog.text
    assert "--config file not found" in caplog.text
    with pytest.raises(SystemExit):
        main(["--accelerations", "four"])


def test_config_file_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        config_from_args(build_parser().parse_args(["--config", str(bad)]))
    bad.write_text(json.dumps({"epoch": 3}))
    with pytest.raises(ValueError, match=r"unknown TrainConfig fields \[.epoch.\] in --config"):
        config_from_args(build_parser().parse_args(["--config", str(bad)]))
    bad.write_text("[1]")
    with pytest.raises(ValueError, match="must hold a JSON object"):
        config_from_args(build_parser().parse_args(["--config", str(bad)]))


def test_training_masks_are_seeded_per_epoch_file_and_slice(tiny_data):
    transform = make_transform("varnet", train=True, mask_type="random", center_fractions=[0.08, 0.04], accelerations=[4, 8], seed=5)
    assert isinstance(transform, SeededTrainTransform)
    dataset = make_dataset(tiny_data["train"], transform)
    masks = {}
    for epoch in (0, 1):
        transform.set_epoch(epoch)
        masks[epoch] = [dataset[i].mask.clone() for i in range(len(dataset))]
    transform.set_epoch(0)
    again = [dataset[i].mask for i in range(len(dataset))]
    assert all(torch.equal(a, b) for a, b in zip(masks[0], again))  # reproducible
    assert not all(torch.equal(a, b) for a, b in zip(masks[0], masks[1]))  # fresh each epoch
    assert len({tuple(m.flatten().tolist()) for m in masks[0]}) > 1  # differ between slices
    assert transform.sample_seed("ab.h5", 3) == (5, 0, 97, 98, 46, 104, 53, 3)
    with pytest.raises(ValueError, match="domain must be 'kspace' or 'image'"):
        SeededTrainTransform("hybrid", None, 0)


def test_unet_transform_and_data_path_errors(tiny_data, tmp_path):
    transform = make_transform("unet", train=True, mask_type="random", center_fractions=[0.25], accelerations=[2], seed=0)
    sample = make_dataset(tiny_data["train"], transform)[0]
    assert sample.image.shape == sample.target.shape == (32, 32)
    with pytest.raises(ValueError, match="embedded split must be one of"):
        resolve_data_path("embedded:holdout")
    with pytest.raises(FileNotFoundError, match="data path not found"):
        resolve_data_path(tmp_path / "nothing")


def _ifft2c(x):
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))


def test_crop_readout_is_the_kspace_of_the_cropped_images():
    rng = np.random.default_rng(0)
    kspace = (rng.standard_normal((3, 40, 24)) + 1j * rng.standard_normal((3, 40, 24))).astype(np.complex64)
    target = np.sqrt((np.abs(_ifft2c(kspace.astype(np.complex128))) ** 2).sum(0))[4:36]  # centred, 32 rows
    cropped, cropped_target, start = crop_readout(kspace, target, 16, np.random.default_rng(1))
    assert cropped.shape == (3, 16, 24) and cropped.dtype == np.complex64 and cropped_target.shape == (16, 24)
    assert 4 <= start <= 36 - 16
    full = _ifft2c(kspace.astype(np.complex128))
    np.testing.assert_allclose(_ifft2c(cropped.astype(np.complex128)), full[:, start : start + 16], atol=1e-5)
    np.testing.assert_allclose(cropped_target, target[start - 4 : start - 4 + 16])
    with pytest.raises(ValueError, match=r"crop rows \(48\) must not exceed"):
        crop_readout(kspace, target, 48, np.random.default_rng(0))


def test_train_transform_with_crop(tiny_data):
    transform = make_transform("varnet", train=True, mask_type="random", center_fractions=[0.25], accelerations=[2], seed=0, crop_rows=16)
    sample = make_dataset(tiny_data["train"], transform)[0]
    assert sample.masked_kspace.shape == (4, 16, 32, 2) and sample.target.shape == (16, 32)
    assert sample.crop_size == (16, 32)
    with pytest.raises(ValueError, match="crop_rows must be None or an int >= 8 for k-space models"):
        SeededTrainTransform("image", None, 0, crop_rows=16)
    with pytest.raises(ValueError, match=r"TrainConfig\.train_crop_rows must be None for the image-domain model 'unet'"):
        TrainConfig(model="unet", train_crop_rows=16)
    with pytest.raises(ValueError, match=r"TrainConfig\.train_crop_rows must be an int >= 8 or None"):
        TrainConfig(train_crop_rows=4)
