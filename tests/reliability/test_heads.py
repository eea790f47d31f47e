"""Bad input to the image heads (recon.synthesize / denoise / generate, recon.heads): a clear
ValueError/TypeError naming the argument; unknown pairs list the available ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import recon
from recon.heads import (
    CycleGAN, DCGANGenerator, DenoisingAutoencoder, ImagePool, PatchDiscriminator, ResNet3d, UnetSynthesizer,
    add_rician_noise, max_ncc,
)

SLICE = np.random.default_rng(0).random((32, 40)).astype(np.float32) + 0.1
VOLUME = np.random.default_rng(1).random((24, 28, 20)).astype(np.float32) + 0.1
NAN = SLICE.copy()
NAN[3, 4] = np.nan
INF = VOLUME.copy()
INF[1, 2, 3] = np.inf

CASES = [
    pytest.param(lambda: recon.synthesize(SLICE, source="dwi"), ValueError, "source must be one of", id="unknown-source"),
    pytest.param(lambda: recon.synthesize(SLICE, target="ct"), ValueError, "target must be one of", id="unknown-target"),
    pytest.param(lambda: recon.synthesize(SLICE, source="t1", target="t1w"), ValueError, "target must differ", id="same"),
    pytest.param(lambda: recon.synthesize(SLICE, source="flair", target="pd"), ValueError,
                 "no bundled weights for source='flair' -> target='pd'.*available", id="pair-without-weights"),
    pytest.param(lambda: recon.synthesize(SLICE, dims=3), ValueError, "dims=3.*3-D-only.*2-D slice", id="2d-to-3d-only"),
    pytest.param(lambda: recon.synthesize(SLICE, dims=4), ValueError, "dims must be 2, 3 or None", id="dims"),
    pytest.param(lambda: recon.synthesize(VOLUME, method="gan"), ValueError,
                 "method must be one of 'ensemble', 'unet', 'resnet3d' or None, got 'gan'", id="method"),
    pytest.param(lambda: recon.synthesize(VOLUME, method="unet", dims=2), ValueError, "give method or dims, not both",
                 id="method-and-dims"),
    pytest.param(lambda: recon.synthesize(SLICE, method="ensemble"), ValueError,
                 "method='ensemble' .*needs an \\(X, Y, Z\\) volume, but image is a 2-D slice", id="ensemble-2d"),
    pytest.param(lambda: recon.synthesize(VOLUME, method="ensemble", weights="synthesis-unet-t1w-flair"), ValueError,
                 "method='ensemble' .*weights must be None", id="ensemble-weights"),
    pytest.param(lambda: recon.synthesize(VOLUME, device="gpu0"), ValueError,
                 "device must be a torch device such as 'cpu' or 'cuda', got 'gpu0'", id="synthesize-device"),
    pytest.param(lambda: recon.denoise(SLICE, device="gpu0"), ValueError, "device must be a torch device",
                 id="denoise-device"),
    pytest.param(lambda: recon.generate(2, device="gpu0"), ValueError, "device must be a torch device",
                 id="generate-device"),
    pytest.param(lambda: recon.synthesize(NAN), ValueError, "image contains NaN or Inf", id="nan"),
    pytest.param(lambda: recon.synthesize(INF), ValueError, "image contains NaN or Inf", id="inf"),
    pytest.param(lambda: recon.synthesize(np.zeros((4, 32, 32, 32), np.float32)), ValueError, "image must be 2-D or 3-D",
                 id="4d"),
    pytest.param(lambda: recon.synthesize(SLICE.astype(np.complex64)), TypeError, "image must be a real", id="complex"),
    pytest.param(lambda: recon.synthesize([[1.0]]), TypeError, "image must be a numpy array", id="list"),
    pytest.param(lambda: recon.synthesize(np.ones((4, 4), np.float32)), ValueError, "at least 8 pixels", id="tiny"),
    pytest.param(lambda: recon.synthesize(-SLICE), ValueError, "no positive signal", id="negative"),
    pytest.param(lambda: recon.synthesize(SLICE, weights="no-such-weights"), FileNotFoundError,
                 "weights 'no-such-weights' is neither a file nor a bundled head", id="weights-missing"),
    pytest.param(lambda: recon.denoise(NAN), ValueError, "image contains NaN", id="denoise-nan"),
    pytest.param(lambda: recon.denoise(SLICE, sigma=-1.0), ValueError, "sigma must be a finite number >= 0", id="sigma<0"),
    pytest.param(lambda: recon.denoise(SLICE, sigma=float("nan")), ValueError, "sigma must be", id="sigma-nan"),
    pytest.param(lambda: recon.generate(0), ValueError, "n must be a positive int", id="n=0"),
    pytest.param(lambda: recon.generate(2.5), TypeError, "n must be a positive int", id="n-float"),
    pytest.param(lambda: recon.generate(2, seed=-1), ValueError, "seed must be an int >= 0", id="seed<0"),
    pytest.param(lambda: add_rician_noise(torch.ones(1, 1, 8, 8), -5.0, torch.Generator()), ValueError,
                 "snr must be a positive finite number", id="negative-snr"),
    pytest.param(lambda: add_rician_noise(torch.ones(1, 1, 8, 8), 0, torch.Generator()), ValueError, "snr", id="zero-snr"),
    pytest.param(lambda: add_rician_noise(torch.ones(1, 1, 8, 8), float("inf"), torch.Generator()), ValueError, "snr",
                 id="inf-snr"),
    pytest.param(lambda: ResNet3d(chans=2, num_blocks=1)(torch.zeros(1, 1, 16, 16)), ValueError,
                 "volume must be a 5-D.*3-D-only", id="resnet3d-2d"),
    pytest.param(lambda: ResNet3d(chans=0), ValueError, "chans must be a positive int", id="resnet3d-chans"),
    pytest.param(lambda: UnetSynthesizer(chans=2, num_pool_layers=1)(torch.zeros(1, 2, 8, 8)), ValueError,
                 "image must have 1 channel", id="unet-channels"),
    pytest.param(lambda: PatchDiscriminator(num_layers=0), ValueError, "num_layers", id="patchgan-layers"),
    pytest.param(lambda: ImagePool(-1), ValueError, "size must be an int >= 0", id="pool-size"),
    pytest.param(lambda: ImagePool(2, generator=3), TypeError, "generator must be a torch.Generator", id="pool-gen"),
    pytest.param(lambda: CycleGAN(lambda_identity=-0.5), ValueError, "lambda_identity", id="cyclegan-identity"),
    pytest.param(lambda: DCGANGenerator(size=12), ValueError, "size must be a power of two", id="dcgan-size"),
    pytest.param(lambda: DCGANGenerator(latent_dim=4, chans=2, size=8).sample(0, torch.Generator()), ValueError,
                 "n must be a positive int", id="sample-n"),
    pytest.param(lambda: DenoisingAutoencoder(depth=0), ValueError, "depth must be a positive int", id="dae-depth"),
    pytest.param(lambda: max_ncc(torch.rand(2, 8, 8), torch.rand(3, 9, 8)), ValueError, "training must be", id="ncc-shapes"),
    # the head training configuration (recon.train.tasks_heads.HeadConfig and the task checks)
    pytest.param(lambda: _config(task="segment"), ValueError, "task must be one of", id="cfg-task"),
    pytest.param(lambda: _config(arch="vnet"), ValueError, "arch must be one of", id="cfg-arch"),
    pytest.param(lambda: _config(task="cyclegan", arch="resnet3d"), ValueError, "arch must be one of", id="cfg-cycle-arch"),
    pytest.param(lambda: _config(lr_schedule="step"), ValueError, "lr_schedule must be", id="cfg-schedule"),
    pytest.param(lambda: _config(device="tpu"), ValueError, "device must be", id="cfg-device"),
    pytest.param(lambda: _config(val_every=0), ValueError, "val_every must be", id="cfg-val-every"),
    pytest.param(lambda: _config(checkpoint_every=0), ValueError, "checkpoint_every must be", id="cfg-ckpt-every"),
    pytest.param(lambda: _config(amp="yes"), ValueError, "amp must be True or False", id="cfg-amp"),
    pytest.param(lambda: _config(options=[("a", 1)]), ValueError, "options must be a dict", id="cfg-options"),
    pytest.param(lambda: _config(options={"brain_weight": -1.0}), ValueError, "brain_weight must be", id="cfg-brain-weight"),
    pytest.param(lambda: _config(task="denoise", options={"background_pad": 1.5}), ValueError, "background_pad must be",
                 id="cfg-background-pad"),
    pytest.param(lambda: _config(task="cyclegan", lambda_identity=-1.0), ValueError, "lambda_identity", id="cfg-identity"),
    pytest.param(lambda: _config(source="t2", target="t2w"), ValueError, "source and target must differ", id="cfg-same"),
]


def _config(**fields):
    from recon.train.tasks_heads import HeadConfig

    return HeadConfig(**fields)


@pytest.mark.parametrize("call,exc,match", CASES)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_2d_image_to_3d_weights_names_the_model():
    from recon.train.tasks_heads import available_heads

    if "synthesis-resnet3d-t1w-flair" not in available_heads():
        pytest.skip("3-D weights missing")
    with pytest.raises(ValueError, match="image is a 2-D slice but weights .* 3-D-only ResNet3d"):
        recon.synthesize(SLICE, weights="synthesis-resnet3d-t1w-flair")


def test_wrong_kind_of_weights():
    from recon.train.tasks_heads import available_heads

    if "gan" not in available_heads():
        pytest.skip("gan weights missing")
    with pytest.raises(ValueError, match="weights 'gan' are a 'gan' model, not a synthesis model"):
        recon.synthesize(SLICE, weights="gan")
    with pytest.raises(ValueError, match="not a denoiser"):
        recon.denoise(SLICE, weights="gan")


def test_cli_one_line_errors(tmp_path, capsys):
    from recon.cli import main

    assert main(["synthesize", str(tmp_path / "missing.nii.gz"), "-o", str(tmp_path / "o.nii.gz")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.nii.gz" in err[0]
    (tmp_path / "a.txt").write_text("x")
    assert main(["denoise", str(tmp_path / "a.txt"), "-o", str(tmp_path / "o.nii.gz")]) == 2
    assert "IN must be a .nii/.nii.gz" in capsys.readouterr().err
