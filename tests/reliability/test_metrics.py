"""``recon.metrics`` on degenerate targets and bad arguments (class 5): defined, never -inf/NaN."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from recon.metrics import SSIMLoss, mse, nmse, psnr, ssim, ssim_torch
from reliability_helpers import raises_naming

RNG = np.random.default_rng(0)
GT = RNG.random((2, 16, 16))
PRED = GT + 0.05 * RNG.standard_normal(GT.shape)
ZERO = np.zeros((2, 16, 16))
NEG = -1.0 - RNG.random((2, 16, 16))


def _nan(a):
    b = np.array(a)
    b[0, 1, 1] = np.nan
    return b


ERRORS = [
    ("psnr-zero-target", lambda: psnr(ZERO, PRED), ValueError, ["gt", "maxval"]),
    ("ssim-zero-target", lambda: ssim(ZERO, PRED), ValueError, ["gt", "maxval"]),
    ("ssim-zero-both", lambda: ssim(ZERO, ZERO), ValueError, ["gt"]),
    ("psnr-negative-target", lambda: psnr(NEG, PRED), ValueError, ["gt", "no positive"]),
    ("ssim-negative-target", lambda: ssim(NEG, PRED), ValueError, ["gt", "no positive"]),
    ("nmse-zero-target", lambda: nmse(ZERO, PRED), ValueError, ["gt"]),
    ("shapes-differ", lambda: psnr(GT, PRED[:1]), ValueError, ["gt", "pred"]),
    ("pred-nan", lambda: ssim(GT, _nan(PRED)), ValueError, ["pred", "NaN"]),
    ("gt-inf", lambda: mse(np.where(GT > 0.5, np.inf, GT), PRED), ValueError, ["gt"]),
    ("gt-complex", lambda: nmse(GT + 1j, PRED), TypeError, ["gt"]),
    ("pred-str", lambda: mse(GT, np.array(["a"])), TypeError, ["pred"]),
    ("gt-list", lambda: psnr(GT.tolist(), PRED), TypeError, ["gt"]),
    ("gt-empty", lambda: mse(np.zeros(0), np.zeros(0)), ValueError, ["gt", "empty"]),
    ("ssim-2d", lambda: ssim(GT[0], PRED[0]), ValueError, ["gt", "3-D"]),
    ("ssim-small-slices", lambda: ssim(GT[:, :6, :6], PRED[:, :6, :6]), ValueError, ["gt", "7x7"]),
    ("ssim-torch-bad-range", lambda: ssim_torch(torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8), torch.ones(3)), ValueError, ["data_range"]),
    ("ssim-torch-numpy", lambda: ssim_torch(GT, PRED, 1.0), TypeError, ["X"]),
    ("ssim-loss-win-1", lambda: SSIMLoss(win_size=1), ValueError, ["win_size"]),
]
for metric in (psnr, ssim):
    for bad in (0.0, -1.0, float("nan"), float("inf"), "1", True):
        ERRORS.append((f"{metric.__name__}-maxval-{bad!r}", lambda m=metric, v=bad: m(GT, PRED, maxval=v), ValueError, ["maxval"]))


@pytest.mark.parametrize("call, exc, names", [pytest.param(c, e, n, id=i) for i, c, e, n in ERRORS])
def test_metrics_refuse(call, exc, names):
    with raises_naming(exc, *names):
        call()


@pytest.mark.parametrize(
    "value, expected",
    [
        pytest.param(lambda: psnr(ZERO, ZERO + 0.1, maxval=1.0), 20.0, id="psnr-zero-target-with-maxval"),
        pytest.param(lambda: ssim(ZERO, ZERO, maxval=1.0), 1.0, id="ssim-equal-constants-is-1"),
        pytest.param(lambda: ssim(np.ones((1, 8, 8)), np.ones((1, 8, 8))), 1.0, id="ssim-constant-target"),
        pytest.param(lambda: psnr(np.ones((1, 8, 8)), np.full((1, 8, 8), 0.5)), 10 * np.log10(4.0), id="psnr-constant-target"),
    ],
)
def test_degenerate_targets_with_defined_values(value, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy RuntimeWarning on the way
        assert float(value()) == pytest.approx(expected, rel=1e-12)


def test_psnr_of_identical_volumes_is_inf():
    assert psnr(GT, GT) == np.inf


@pytest.mark.parametrize("scale", [1e-30, 1e-15, 1.0, 1e15, 1e20], ids=lambda s: f"x{s:g}")
def test_float32_at_extreme_scales_matches_float64_at_unit_scale(scale):
    """Scale-invariant metrics: float32 input at any scale = float64 reference at scale 1."""
    gt, pred = (GT * scale).astype(np.float32), (PRED * scale).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(psnr(gt, pred)) == pytest.approx(float(psnr(GT, PRED)), rel=1e-4)
        assert float(ssim(gt, pred)) == pytest.approx(float(ssim(GT, PRED)), rel=1e-4)
        assert float(nmse(gt, pred)) == pytest.approx(float(nmse(GT, PRED)), rel=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ssim_loss_on_all_zero_targets_is_finite(dtype):
    zero = torch.zeros(2, 1, 16, 16, dtype=dtype)
    noisy = zero + torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0), dtype=dtype)
    loss = SSIMLoss()
    assert float(loss(zero, zero, torch.zeros(2, dtype=dtype))) == 0.0  # equal empty images: SSIM 1
    value = loss(noisy, zero, torch.zeros(2, dtype=dtype))
    assert torch.isfinite(value) and 0 <= float(value) <= 2
