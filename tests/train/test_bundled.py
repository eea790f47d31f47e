"""The bundled VarNet (data/weights/varnet.pt) loads into recon.models.VarNet and beats zero-filled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from recon.data import SliceDataset, sample_file
from recon.metrics import ssim
from recon.train import ZeroFilled, load_checkpoint, load_model
from recon.train.data import make_transform

WEIGHTS = Path(__file__).resolve().parents[2] / "data" / "weights" / "varnet.pt"

pytestmark = pytest.mark.skipif(not WEIGHTS.is_file(), reason="data/weights/varnet.pt is not there")


def test_bundled_checkpoint_format():
    ckpt = load_checkpoint(WEIGHTS)
    assert ckpt["recon"]["model"] == "varnet"
    assert all(key.startswith("varnet.") for key in ckpt["state_dict"])
    assert "optimizer_states" not in ckpt  # exported: weights and metadata only
    assert WEIGHTS.stat().st_size < 8e6
    assert ckpt["recon"]["best"]["ssim"] > 0.8  # validation SSIM recorded at export


@pytest.mark.parametrize("acceleration,center_fraction", [(4, 0.08), (8, 0.04)])
def test_bundled_varnet_beats_zero_filled_on_a_val_slice(acceleration, center_fraction):
    pytest.importorskip("recon.models")
    torch.set_num_threads(1)
    model, _ = load_model(WEIGHTS, impl="recon")
    assert type(model).__module__.startswith("recon.models")
    transform = make_transform(
        "varnet", train=False, mask_type="random", center_fractions=[center_fraction],
        accelerations=[acceleration], seed=0,
    )
    dataset = SliceDataset(sample_file("val", "multicoil"), "multicoil", transform)
    sample = dataset[1]
    with torch.inference_mode():
        args = (sample.masked_kspace[None], sample.mask[None], sample.num_low_frequencies)
        learned = model(*args)[0].numpy()
        zero_filled = ZeroFilled()(*args)[0].numpy()
    target = sample.target.numpy()[None]
    score = float(ssim(target, learned[None], maxval=sample.max_value))
    baseline = float(ssim(target, zero_filled[None], maxval=sample.max_value))
    assert score > baseline + 0.05, (score, baseline)
    assert np.isfinite(learned).all()
