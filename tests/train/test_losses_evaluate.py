"""Losses against fastMRI's SSIMLoss and closed forms; validation scores against fastMRI's evaluate.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recon.train import ReconLoss, ZeroFilled, evaluate, volume_scores
from recon.train.data import make_dataset, make_loader, make_transform
from recon.train.evaluate import summarize_volumes


def _images(seed=0, shape=(3, 24, 20)):
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(shape, generator=g, dtype=torch.float64)
    output = target + 0.1 * torch.randn(shape, generator=g, dtype=torch.float64)
    return output, target


def test_ssim_loss_equals_fastmri():
    FastSSIMLoss = pytest.importorskip("fastmri.losses").SSIMLoss
    output, target = _images()
    max_value = target.flatten(1).amax(1)
    expected = FastSSIMLoss().double()(output.unsqueeze(1), target.unsqueeze(1), data_range=max_value)
    got = ReconLoss("ssim").double()(output, target, max_value)
    assert torch.allclose(got, expected, rtol=0, atol=1e-12)


def test_l1_and_combined_losses_closed_form():
    output, target = _images(1)
    max_value = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
    l1 = np.mean(np.abs((output - target).numpy()).reshape(3, -1).mean(1) / max_value.numpy())
    got = ReconLoss("l1").double()(output, target, max_value)
    assert abs(float(got) - l1) < 1e-12
    ssim_part = ReconLoss("ssim").double()(output, target, max_value)
    both = ReconLoss("ssim_l1", l1_weight=0.5).double()(output, target, max_value)
    assert abs(float(both) - (float(ssim_part) + 0.5 * l1)) < 1e-12


def test_loss_errors():
    with pytest.raises(ValueError, match="kind must be one of"):
        ReconLoss("mse")
    with pytest.raises(ValueError, match="l1_weight must be a number >= 0"):
        ReconLoss("ssim_l1", l1_weight=-1)
    with pytest.raises(ValueError, match=r"output and target must both be \(B, H, W\)"):
        ReconLoss()(torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16), torch.ones(2))
    with pytest.raises(ValueError, match=r"max_value must be \(2,\)"):
        ReconLoss()(torch.rand(2, 16, 16), torch.rand(2, 16, 16), torch.ones(3))


def test_volume_scores_equal_fastmri_evaluate():
    fm_evaluate = pytest.importorskip("fastmri.evaluate")
    output, target = _images(2)
    out, tgt = output.numpy().astype(np.float32), target.numpy().astype(np.float32)
    maxval = float(tgt.max()) * 1.1
    scores = volume_scores(tgt, out, maxval)
    assert scores["nmse"] == pytest.approx(float(fm_evaluate.nmse(tgt, out)), rel=1e-6)
    assert scores["psnr"] == pytest.approx(float(fm_evaluate.psnr(tgt, out, maxval=maxval)), rel=1e-6)
    assert scores["ssim"] == pytest.approx(float(np.squeeze(fm_evaluate.ssim(tgt, out, maxval=maxval))), rel=1e-6)
    summary = summarize_volumes({"a": {"nmse": 1.0, "psnr": 30.0, "ssim": 0.5}, "b": {"nmse": 3.0, "psnr": 32.0, "ssim": 0.7}})
    assert summary["num_volumes"] == 2 and summary["psnr"] == 31.0 and summary["ssim_std"] == pytest.approx(0.1)


def test_evaluate_zero_filled_matches_a_numpy_reference(tiny_data):
    transform = make_transform("varnet", train=False, mask_type="random", center_fractions=[0.25], accelerations=[2], seed=0)
    dataset = make_dataset(tiny_data["val"], transform)
    loader, _ = make_loader(dataset, batch_size=1, shuffle=False, seed=0)
    result = evaluate(ZeroFilled(), loader, domain="kspace", progress=False, keep_outputs=True)
    assert result["num_volumes"] == 2 and result["num_slices"] == 4
    # independent reference: numpy inverse FFT of the masked k-space, RSS, scored with fastMRI's evaluate
    for fname, volume in result["outputs"].items():
        samples = [dataset[i] for i in range(len(dataset)) if dataset.raw_samples[i].fname.name == fname]
        recon = []
        for sample in samples:
            k = sample.masked_kspace.numpy()
            k = k[..., 0] + 1j * k[..., 1]
            img = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
            recon.append(np.sqrt((np.abs(img) ** 2).sum(0)))
        recon = np.stack(recon)
        np.testing.assert_allclose(volume, recon, rtol=1e-4, atol=1e-7 * recon.max())
        target = np.stack([s.target.numpy() for s in samples])
        maxval = samples[0].max_value
        skimage_metrics = pytest.importorskip("skimage.metrics")  # fastMRI's evaluate.ssim, per slice
        expected = np.mean([
            skimage_metrics.structural_similarity(t, r, data_range=maxval)
            for t, r in zip(target, recon.astype(np.float32))
        ])
        assert result["volumes"][fname]["ssim"] == pytest.approx(float(expected), abs=1e-4)
