"""recon.preprocess.normalize against closed forms, numpy/torch and intensity-normalization/torchio."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from recon.preprocess import NyulNormalizer, fcm_normalize, minmax, percentile_clip, whitestripe, zscore
from recon.preprocess.normalize import fcm

RNG = np.random.default_rng(0)
VOL = np.where(RNG.random((9, 10, 11)) > 0.3, RNG.gamma(3.0, 2.0, (9, 10, 11)), 0.0)


def test_zscore_closed_form_default_foreground():
    out = zscore(VOL)
    fg = VOL != 0
    mean, std = VOL[fg].mean(), VOL[fg].std()
    np.testing.assert_allclose(out, (VOL - mean) / std, rtol=1e-12, atol=1e-12)
    assert abs(out[fg].mean()) < 1e-12 and abs(out[fg].std() - 1) < 1e-12


def test_zscore_with_mask_and_torch(device):
    mask = VOL > 4
    ref = (VOL - VOL[mask].mean()) / VOL[mask].std()
    np.testing.assert_allclose(zscore(VOL, mask), ref, rtol=1e-12, atol=1e-12)
    t = torch.from_numpy(VOL).to(device)
    out = zscore(t, torch.from_numpy(mask).to(device))
    assert isinstance(out, torch.Tensor) and out.device == t.device and out.dtype == torch.float64
    np.testing.assert_allclose(out.cpu().numpy(), ref, rtol=1e-10, atol=1e-10)
    out32 = zscore(t.float())
    assert out32.dtype == torch.float32
    np.testing.assert_allclose(out32.cpu().numpy(), zscore(VOL), rtol=1e-5, atol=1e-5)


def test_zscore_integer_input_becomes_float32():
    out = zscore((VOL * 10).astype(np.int16))
    assert out.dtype == np.float32


def test_zscore_matches_torchio():
    tio = pytest.importorskip("torchio")
    t = torch.from_numpy(VOL[None].astype(np.float32))
    ref = tio.ZNormalization(masking_method=lambda x: x != 0)(tio.ScalarImage(tensor=t)).data[0].numpy()
    n = int((VOL != 0).sum())
    # torchio divides by the unbiased std (ddof=1); ours is the population std
    ours = zscore(VOL.astype(np.float32)) * np.sqrt((n - 1) / n)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)


def test_zscore_matches_intensity_normalization():
    pytest.importorskip("skfuzzy")
    zs = pytest.importorskip("intensity_normalization.normalizers.individual.zscore")
    images = pytest.importorskip("intensity_normalization.adapters.images")
    img = images.NumpyImageAdapter(VOL.astype(np.float32))
    ref = zs.ZScoreNormalizer().fit(img).transform(img).get_data()
    np.testing.assert_allclose(zscore(VOL.astype(np.float32)), ref, rtol=1e-5, atol=1e-5)


def test_minmax_and_percentile_clip(device):
    out = minmax(VOL, out_range=(-1.0, 2.0))
    np.testing.assert_allclose(out, -1 + 3 * (VOL - VOL.min()) / (VOL.max() - VOL.min()), atol=1e-12)
    lo, hi = np.percentile(VOL, [2, 97])
    np.testing.assert_allclose(percentile_clip(VOL, 2, 97), np.clip(VOL, lo, hi), atol=1e-12)
    np.testing.assert_allclose(percentile_clip(VOL, 2, 97, rescale=True), (np.clip(VOL, lo, hi) - lo) / (hi - lo),
                               atol=1e-12)
    mask = VOL > 0
    lo, hi = np.percentile(VOL[mask], [5, 95])
    t = torch.from_numpy(VOL).to(device)
    got = percentile_clip(t, 5, 95, torch.from_numpy(mask).to(device))
    np.testing.assert_allclose(got.cpu().numpy(), np.clip(VOL, lo, hi), atol=1e-10)
    mm = minmax(t, torch.from_numpy(mask).to(device))
    vm = VOL[mask]
    np.testing.assert_allclose(mm.cpu().numpy(), (VOL - vm.min()) / (vm.max() - vm.min()), atol=1e-10)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: zscore(np.zeros((3, 3))), ValueError, "mask selects no voxel"),
        (lambda: zscore(np.ones((3, 3))), ValueError, "constant over the mask"),
        (lambda: zscore(VOL, np.ones((2, 2), bool)), ValueError, "mask must have the volume's shape"),
        (lambda: zscore([1.0, 2.0]), TypeError, "volume must be a numpy array or a torch tensor"),
        (lambda: zscore(VOL.astype(np.complex64)), TypeError, "volume must be real-valued"),
        (lambda: minmax(VOL, out_range=(1, 0)), ValueError, "out_range must satisfy low < high"),
        (lambda: minmax(VOL, out_range=1), ValueError, "out_range must be two numbers"),
        (lambda: minmax(np.ones(4)), ValueError, "constant"),
        (lambda: percentile_clip(VOL, 50, 10), ValueError, "lower and upper must satisfy"),
        (lambda: percentile_clip(VOL, -1, 10), ValueError, "lower and upper must satisfy"),
        (lambda: fcm_normalize(VOL, tissue="bone"), ValueError, "tissue must be one of"),
        (lambda: fcm_normalize(VOL, tissue_mask=np.ones((2, 2))), ValueError, "tissue_mask must have"),
        (lambda: fcm_normalize(VOL, tissue_mask=np.zeros(VOL.shape)), ValueError, "tissue_mask is empty"),
        (lambda: fcm(np.arange(5.0), 0), ValueError, "n_clusters must be a positive integer"),
        (lambda: fcm(np.arange(5.0), 2, fuzziness=1.0), ValueError, "fuzziness must be > 1"),
        (lambda: whitestripe(VOL, contrast="dwi"), ValueError, "contrast must be one of"),
        (lambda: whitestripe(VOL, width=0.6), ValueError, "width must be in"),
        (lambda: NyulNormalizer(output_range=(5, 1)), ValueError, "output_range must satisfy"),
        (lambda: NyulNormalizer(percentiles=(50, 20)), ValueError, "percentiles must increase"),
        (lambda: NyulNormalizer().fit([]), ValueError, "volumes must contain at least one"),
        (lambda: NyulNormalizer().fit([VOL], masks=[None, None]), ValueError, "masks must have one entry"),
        (lambda: NyulNormalizer().transform(VOL), RuntimeError, "not fitted"),
    ],
)
def test_bad_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ----------------------------------------------------------------------------------- FCM
def test_fcm_closed_forms():
    # one cluster: the centre is the (weighted) mean
    x = RNG.random(50)
    w = RNG.random(50)
    centers, u = fcm(x, 1, weights=w)
    np.testing.assert_allclose(centers, [np.sum(w * x) / np.sum(w)], rtol=1e-12)
    np.testing.assert_allclose(u, 1.0)
    # two symmetric clusters of identical points: centres exactly at the points
    centers, u = fcm(np.r_[np.zeros(10), np.full(10, 4.0)], 2)
    np.testing.assert_allclose(centers, [0.0, 4.0], atol=1e-9)
    np.testing.assert_allclose(u.sum(axis=0), 1.0)
    # three symmetric clusters of a symmetric mixture: the middle centre is the midpoint
    x = np.r_[np.full(7, -1.0), np.full(7, 5.0), np.full(7, 11.0)]
    centers, u = fcm(x, 3)
    np.testing.assert_allclose(centers, [-1.0, 5.0, 11.0], atol=1e-8)


def test_fcm_fixed_point_two_points():
    # two points a, b and two clusters with m=2: the fixed point has centres at the points
    centers, u = fcm(np.array([1.0, 3.0]), 2)
    np.testing.assert_allclose(centers, [1.0, 3.0], atol=1e-9)
    np.testing.assert_allclose(u, np.eye(2), atol=1e-9)


def three_tissue_volume(seed=0, shape=(30, 32, 28)):
    """CSF/GM/WM-like piecewise-constant volume with noise, zero background."""
    rng = np.random.default_rng(seed)
    labels = rng.choice([0, 1, 2, 3], size=shape, p=[0.2, 0.2, 0.3, 0.3])
    means = np.array([0.0, 30.0, 70.0, 110.0])
    vol = means[labels] + np.where(labels > 0, rng.normal(0, 4.0, shape), 0.0)
    return np.clip(vol, 0, None), labels


def test_fcm_normalize_finds_white_matter_and_reuses_mask():
    vol, labels = three_tissue_volume()
    out, wm = fcm_normalize(vol)
    # the WM membership is high on label 3 and low elsewhere; the WM mean maps to 1
    assert wm[labels == 3].mean() > 0.9 and wm[labels == 1].max() < 0.1
    np.testing.assert_allclose(np.sum(out * wm) / np.sum(wm), 1.0, rtol=1e-6)
    assert abs(out[labels == 3].mean() - 1.0) < 0.01
    # another contrast of the same subject normalised with the T1's WM membership
    t2 = np.where(labels > 0, 200.0 - 40.0 * labels, 0.0)
    t2_out, same = fcm_normalize(t2, tissue_mask=wm, norm_value=2.0)
    np.testing.assert_allclose(same, wm)
    np.testing.assert_allclose(np.sum(t2_out * wm) / np.sum(wm), 2.0, rtol=1e-6)
    _, csf = fcm_normalize(vol, tissue="csf")
    assert csf[labels == 1].mean() > 0.9


def test_fcm_normalize_matches_intensity_normalization():
    pytest.importorskip("skfuzzy")
    mod = pytest.importorskip("intensity_normalization.normalizers.individual.fcm")
    images = pytest.importorskip("intensity_normalization.adapters.images")
    vol, _ = three_tissue_volume(seed=1)
    img = images.NumpyImageAdapter(vol.astype(np.float32))
    ref = mod.FCMNormalizer()
    ref.fit(img)
    expected = ref.transform(img).get_data()
    out, wm = fcm_normalize(vol.astype(np.float32))
    np.testing.assert_allclose(wm, ref.tissue_membership, atol=5e-3)
    np.testing.assert_allclose(out, expected, rtol=2e-3, atol=2e-3)


def test_fcm_normalize_torch():
    vol, _ = three_tissue_volume()
    out, wm = fcm_normalize(torch.from_numpy(vol))
    ref, ref_wm = fcm_normalize(vol)
    assert isinstance(out, torch.Tensor) and isinstance(wm, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12)


# ---------------------------------------------------------------------------------- Nyul
def nyul_set(n=3):
    rng = np.random.default_rng(3)
    return [np.where(rng.random((12, 13, 14)) > 0.2, rng.gamma(2 + i, 3 + i, (12, 13, 14)), 0.0) for i in range(n)]


def test_nyul_closed_form_on_linearly_related_volumes():
    base = nyul_set(1)[0]
    fg = base > 0
    vols = [base, np.where(fg, 3.0 * base + 7.0, 0.0)]
    nyul = NyulNormalizer().fit(vols)
    # landmarks of linearly related images coincide after the min/max mapping: a straight line
    marks = np.percentile(base[fg], nyul.landmark_percentiles)
    expected = 1 + (marks - marks[0]) * 99 / (marks[-1] - marks[0])
    np.testing.assert_allclose(nyul.standard_scale, expected, rtol=1e-10)
    a, b = nyul.transform(vols[0]), nyul.transform(vols[1])
    np.testing.assert_allclose(a[fg], b[fg], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(np.percentile(a[fg], [1, 99]), [1.0, 100.0], rtol=1e-9)


def test_nyul_matches_intensity_normalization():
    pytest.importorskip("skfuzzy")
    mod = pytest.importorskip("intensity_normalization.normalizers.population.nyul")
    images = pytest.importorskip("intensity_normalization.adapters.images")
    vols = [v.astype(np.float32) for v in nyul_set()]
    ref = mod.NyulNormalizer()
    ref.fit_population([images.NumpyImageAdapter(v) for v in vols])
    ours = NyulNormalizer().fit(vols)
    np.testing.assert_allclose(ours.standard_scale, ref.standard_scale, rtol=1e-5)
    for v in vols:
        expected = ref.transform(images.NumpyImageAdapter(v)).get_data()
        np.testing.assert_allclose(ours.transform(v), expected, rtol=1e-4, atol=1e-3)


def test_nyul_save_load_atomic(tmp_path):
    vols = nyul_set()
    nyul = NyulNormalizer().fit(vols)
    path = tmp_path / "landmarks.json"
    nyul.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["landmarks.json"]  # no temporary left
    state = json.loads(path.read_text())
    assert state["format"] == "recon.NyulNormalizer/1"
    again = NyulNormalizer.load(path)
    np.testing.assert_array_equal(again.standard_scale, nyul.standard_scale)
    np.testing.assert_array_equal(again.transform(vols[0]), nyul.transform(vols[0]))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="bad.json"):
        NyulNormalizer.load(tmp_path / "bad.json")
    with pytest.raises(RuntimeError, match="not fitted"):
        NyulNormalizer().save(tmp_path / "x.json")


# --------------------------------------------------------------------------- WhiteStripe
def test_whitestripe_closed_form_and_mask():
    vol, labels = three_tissue_volume(seed=2)
    out, stripe = whitestripe(vol, return_mask=True)
    # the stripe lies in the brightest tissue; output is z-scored over the stripe
    assert stripe.sum() > 100 and np.mean(labels[stripe] == 3) > 0.99
    np.testing.assert_allclose(out[stripe].mean(), 0.0, atol=1e-6)
    np.testing.assert_allclose(out[stripe].std(), 1.0, atol=1e-6)
    ref = (vol - vol[stripe].mean()) / vol[stripe].std()
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("contrast", ["t1", "t2"])
def test_whitestripe_matches_intensity_normalization(contrast):
    mod = pytest.importorskip("intensity_normalization.normalizers.individual.whitestripe")
    models = pytest.importorskip("intensity_normalization.domain.models")
    images = pytest.importorskip("intensity_normalization.adapters.images")
    vol, labels = three_tissue_volume(seed=4)
    if contrast == "t2":
        vol = np.where(labels > 0, 150.0 - 30.0 * labels + np.random.default_rng(5).normal(0, 4, vol.shape), 0)
        vol = np.clip(vol, 0, None)
    vol = vol.astype(np.float32)
    modality = models.Modality.T1 if contrast == "t1" else models.Modality.T2
    ref = mod.WhiteStripeNormalizer(modality=modality)
    img = images.NumpyImageAdapter(vol)
    ref.fit(img)
    out, stripe = whitestripe(vol, contrast=contrast, return_mask=True)
    np.testing.assert_array_equal(stripe, ref.whitestripe_mask)
    np.testing.assert_allclose(out, ref.transform(img).get_data(), rtol=1e-4, atol=1e-4)


def test_zscore_torch_path_equals_numpy_path():
    # CPU tensors go through numpy views; tensors with autograd (and CUDA tensors) through torch ops
    t = torch.from_numpy(VOL).float().requires_grad_()
    out = zscore(t)
    assert out.requires_grad
    np.testing.assert_allclose(out.detach().numpy(), zscore(VOL.astype(np.float32)), rtol=1e-5, atol=1e-5)
    out.sum().backward()
    assert t.grad is not None and torch.isfinite(t.grad).all()
