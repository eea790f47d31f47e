"""recon.metrics against fastmri.evaluate / fastmri.losses, scikit-image and closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recon.metrics import SSIMLoss, mse, nmse, psnr, ssim, ssim_torch

try:  # only the fastMRI parity tests need the fastmri package; the rest run without it
    import fastmri.evaluate as fastmri_evaluate
    import fastmri.losses as fastmri_losses
except ImportError:
    fastmri_evaluate = fastmri_losses = None
needs_fastmri = pytest.mark.skipif(fastmri_evaluate is None, reason="fastMRI parity test: needs the fastmri package")
try:
    import skimage.metrics as skimage_metrics
except ImportError:
    skimage_metrics = None
needs_skimage = pytest.mark.skipif(skimage_metrics is None, reason="needs scikit-image (reference)")


def random_pair(shape, dtype=np.float64, noise=0.1, seed=0):
    rng = np.random.default_rng(seed)
    gt = rng.random(shape).astype(dtype)
    pred = (gt + noise * rng.standard_normal(shape)).astype(dtype)
    return gt, pred


def structured_pair(shape, dtype=np.float64, seed=0):
    """Piecewise-smooth 'anatomy': ellipses on a ramp, zero background, plus a blurred/noisy copy."""
    slices, height, width = shape
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:height, :width]
    y = (y - height / 2) / (height / 2)
    x = (x - width / 2) / (width / 2)
    gt = np.zeros(shape)
    for s in range(slices):
        body = (x / 0.8) ** 2 + (y / 0.9) ** 2 < 1
        lesion = ((x - 0.2) / 0.2) ** 2 + ((y + 0.1 * s) / 0.3) ** 2 < 1
        gt[s] = (body * (0.5 + 0.3 * x) + 0.4 * lesion) * (1 + 0.5 * s)  # per-slice maxima differ
    pred = 0.95 * gt + 0.02 * rng.standard_normal(shape)
    pred[:, ::7, :] = gt[:, ::7, :]  # exact rows: zero local error in places
    return (gt * 1000).astype(dtype), (pred * 1000).astype(dtype)  # scanner-like magnitude scale


SHAPES = [(3, 64, 64), (2, 37, 41), (1, 7, 7), (4, 96, 33)]


def as_float(value) -> float:
    return float(np.asarray(value).reshape(-1)[0])


# --------------------------------------------------------------------------------------------
# parity with fastmri.evaluate (same values, to the last bit)
# --------------------------------------------------------------------------------------------


@needs_fastmri
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("make", [random_pair, structured_pair])
def test_parity_with_fastmri_evaluate(shape, dtype, make):
    gt, pred = make(shape, dtype)
    for name, ours in [("mse", mse), ("nmse", nmse), ("psnr", psnr), ("ssim", ssim)]:
        expected = as_float(getattr(fastmri_evaluate, name)(gt, pred))
        got = ours(gt, pred)
        assert isinstance(got, np.float64)
        assert float(got) == expected, (name, shape, dtype)
    for maxval in [2.0, float(gt.max()) * 1.5]:
        assert float(psnr(gt, pred, maxval)) == as_float(fastmri_evaluate.psnr(gt, pred, maxval))
        assert float(ssim(gt, pred, maxval)) == as_float(fastmri_evaluate.ssim(gt, pred, maxval))


@needs_fastmri
def test_parity_mixed_dtypes():
    gt, pred = random_pair((2, 30, 31), np.float32)
    for pred_ in [pred.astype(np.float64), pred.astype(np.float16), (pred * 100).astype(np.int32)]:
        for name, ours in [("mse", mse), ("nmse", nmse), ("psnr", psnr), ("ssim", ssim)]:
            assert float(ours(gt, pred_)) == as_float(getattr(fastmri_evaluate, name)(gt, pred_))
            assert float(ours(pred_, gt)) == as_float(getattr(fastmri_evaluate, name)(pred_, gt))


def test_torch_inputs():
    gt, pred = random_pair((2, 20, 20))
    for metric in (mse, nmse, psnr, ssim):
        assert metric(torch.from_numpy(gt), torch.from_numpy(pred)) == metric(gt, pred)
    assert psnr(gt, pred, torch.tensor(2.0, dtype=torch.float64)) == psnr(gt, pred, 2.0)


# --------------------------------------------------------------------------------------------
# independent references: closed forms, float64 numpy, scikit-image
# --------------------------------------------------------------------------------------------


def test_closed_forms():
    gt = np.full((2, 8, 8), 2.0)
    pred = gt + 0.5
    assert mse(gt, pred) == 0.25
    assert nmse(gt, pred) == pytest.approx(0.25 / 4.0, rel=1e-15)
    # maxval 2, mse 0.25 -> 10 log10(16)
    assert psnr(gt, pred) == pytest.approx(10 * np.log10(16.0), rel=1e-15)
    assert psnr(gt, pred, maxval=4.0) == pytest.approx(10 * np.log10(64.0), rel=1e-15)
    assert psnr(gt, gt) == np.inf
    assert ssim(gt, gt) == 1.0
    # constant images: SSIM = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1), data range 2
    c1 = (0.01 * 2.0) ** 2
    assert ssim(gt, pred) == pytest.approx((2 * 2.0 * 2.5 + c1) / (2.0**2 + 2.5**2 + c1), rel=1e-12)


@needs_skimage
def test_ssim_matches_scikit_image_per_slice_mean():
    gt, pred = structured_pair((3, 45, 52))
    maxval = gt.max()
    expected = np.mean(
        [skimage_metrics.structural_similarity(g, p, data_range=maxval) for g, p in zip(gt, pred)]
    )
    assert ssim(gt, pred) == pytest.approx(expected, rel=1e-12)
    # the volume max, not a per-slice max, is the default data range
    per_slice = np.mean(
        [skimage_metrics.structural_similarity(g, p, data_range=g.max()) for g, p in zip(gt, pred)]
    )
    assert abs(ssim(gt, pred) - per_slice) > 1e-6


def test_psnr_and_nmse_float64_reference():
    gt, pred = random_pair((2, 17, 23), np.float32)
    g, p = gt.astype(np.float64), pred.astype(np.float64)
    err = np.sum((g - p) ** 2) / g.size
    assert psnr(gt, pred) == pytest.approx(10 * np.log10(float(g.max()) ** 2 / err), rel=1e-6)
    assert nmse(gt, pred) == pytest.approx(np.sum((g - p) ** 2) / np.sum(g**2), rel=1e-6)
    assert mse(gt, pred) == pytest.approx(err, rel=1e-6)


# --------------------------------------------------------------------------------------------
# torch SSIM / SSIMLoss
# --------------------------------------------------------------------------------------------


def torch_pair(shape, dtype, device, seed=0):
    generator = torch.Generator().manual_seed(seed)
    X = torch.rand(shape, generator=generator, dtype=dtype)
    Y = (X + 0.2 * torch.rand(shape, generator=generator, dtype=dtype)).clamp(min=0)
    return X.to(device), Y.to(device)


@needs_fastmri
@pytest.mark.parametrize("shape", [(3, 1, 40, 33), (1, 1, 7, 7), (2, 1, 64, 64)])
def test_ssim_loss_parity_with_fastmri(shape, device):
    X, Y = torch_pair(shape, torch.float32, device)
    data_range = torch.linspace(0.5, 2.0, shape[0], device=device)
    theirs = fastmri_losses.SSIMLoss().to(device)
    ours = SSIMLoss().to(device)
    assert torch.equal(ours(X, Y, data_range), theirs(X, Y, data_range))
    assert torch.equal(ours(X, Y, data_range, reduced=False), theirs(X, Y, data_range, reduced=False))
    # gradients too
    Xa = X.clone().requires_grad_(True)
    Xb = X.clone().requires_grad_(True)
    ours(Xa, Y, data_range).backward()
    theirs(Xb, Y, data_range).backward()
    torch.testing.assert_close(Xa.grad, Xb.grad, rtol=1e-5, atol=1e-9)


@needs_fastmri
def test_ssim_loss_state_dict_interchangeable():
    ours = SSIMLoss()
    ours.load_state_dict(fastmri_losses.SSIMLoss().state_dict())
    assert set(ours.state_dict()) == {"w"}


@needs_skimage
def test_ssim_torch_matches_scikit_image(device):
    gt, pred = structured_pair((2, 40, 35))
    data_range = float(gt.max())
    X = torch.from_numpy(pred[:, None]).to(device)
    Y = torch.from_numpy(gt[:, None]).to(device)
    got = ssim_torch(X, Y, torch.full((2,), data_range, dtype=torch.float64, device=device), reduced=False)
    for s in range(2):
        _, full = skimage_metrics.structural_similarity(pred[s], gt[s], data_range=data_range, full=True)
        np.testing.assert_allclose(got[s, 0].cpu().numpy(), full[3:-3, 3:-3], rtol=1e-10, atol=1e-12)
    # a scalar data range broadcasts; the mean equals the per-slice mean of equal-sized slices
    assert float(ssim_torch(X, Y, np.float32(2.0))) == float(ssim_torch(X, Y, 2.0))
    assert float(ssim_torch(X, Y, data_range)) == pytest.approx(float(ssim(pred, gt, data_range)), rel=1e-10)
    assert float(SSIMLoss()(X, Y, data_range)) == pytest.approx(1 - float(ssim(pred, gt, data_range)), rel=1e-9)


def test_ssim_torch_gradcheck():
    X, Y = torch_pair((1, 1, 8, 9), torch.float64, "cpu", seed=3)
    X.requires_grad_(True)
    data_range = torch.tensor([1.5], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a: ssim_torch(a, Y, data_range), (X,))
    assert torch.autograd.gradcheck(
        lambda a: SSIMLoss()(a, Y, data_range, reduced=False), (X,), fast_mode=True
    )


def test_ssim_torch_identical_is_one():
    X, _ = torch_pair((2, 1, 16, 16), torch.float64, "cpu")
    assert float(ssim_torch(X, X, torch.ones(2, dtype=torch.float64))) == pytest.approx(1.0, abs=1e-12)
    assert float(SSIMLoss()(X, X, torch.ones(2, dtype=torch.float64))) == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", [mse, nmse, psnr, ssim])
def test_numpy_metric_checks(metric):
    gt, pred = random_pair((2, 16, 16))
    with pytest.raises(ValueError, match="gt and pred must have the same shape"):
        metric(gt, pred[:, :, :15])
    bad = pred.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="pred must not contain NaN or inf"):
        metric(gt, bad)
    bad[0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="gt must not contain NaN or inf"):
        metric(bad, pred)
    with pytest.raises(TypeError, match="gt must be real"):
        metric(gt + 1j, pred)
    with pytest.raises(TypeError, match="pred must be a numpy array or torch tensor"):
        metric(gt, pred.tolist())
    with pytest.raises(TypeError, match="gt must be a real numeric array"):
        metric(gt.astype(bool), pred)
    with pytest.raises(ValueError, match="gt must not be empty"):
        metric(np.zeros((0, 16, 16)), np.zeros((0, 16, 16)))


def test_ssim_checks():
    gt, pred = random_pair((16, 16))
    with pytest.raises(ValueError, match=r"must be 3-D volumes \(slices, H, W\), got shape \(16, 16\)"):
        ssim(gt, pred)
    gt, pred = random_pair((2, 6, 16))
    with pytest.raises(ValueError, match="slices must be at least 7x7"):
        ssim(gt, pred)


@pytest.mark.parametrize("metric", [psnr, ssim])
def test_maxval_checks(metric):
    gt, pred = random_pair((2, 16, 16))
    for maxval in [0.0, -1.0, float("nan"), "1", True]:
        with pytest.raises(ValueError, match="maxval must be None or a positive finite number"):
            metric(gt, pred, maxval)


def test_nmse_zero_gt():
    with pytest.raises(ValueError, match="nmse needs a non-zero gt"):
        nmse(np.zeros((1, 8, 8)), np.ones((1, 8, 8)))


def test_torch_ssim_checks():
    X, Y = torch_pair((2, 1, 16, 16), torch.float32, "cpu")
    data_range = torch.ones(2)
    loss = SSIMLoss()
    for fn in (ssim_torch, loss):
        with pytest.raises(TypeError, match="X must be a torch.Tensor"):
            fn(X.numpy(), Y, data_range)
        with pytest.raises(TypeError, match="Y must be a real floating tensor"):
            fn(X, Y.long(), data_range)
        with pytest.raises(ValueError, match=r"X must be \(B, 1, H, W\)"):
            fn(X[:, 0], Y[:, 0], data_range)
        with pytest.raises(ValueError, match=r"X must be \(B, 1, H, W\)"):
            fn(X.expand(2, 3, 16, 16), Y.expand(2, 3, 16, 16), data_range)
        with pytest.raises(ValueError, match="X and Y must have the same shape"):
            fn(X, Y[..., :15], data_range)
        with pytest.raises(ValueError, match=r"data_range must have shape \(2,\)"):
            fn(X, Y, torch.ones(3))
        with pytest.raises(TypeError, match="data_range must be a tensor"):
            fn(X, Y, "1")
        with pytest.raises(ValueError, match="must be at least 7x7"):
            fn(X[..., :6], Y[..., :6], data_range)
    with pytest.raises(ValueError, match="win_size must be an int >= 2"):
        SSIMLoss(win_size=1)
    with pytest.raises(ValueError, match="k1 must be a positive number"):
        SSIMLoss(k1=0)
    with pytest.raises(ValueError, match="k2 must be a positive number"):
        ssim_torch(X, Y, data_range, k2=-0.1)
