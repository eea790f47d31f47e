"""recon.preprocess.n4_bias_correction: SimpleITK's N4 wrapped, bias recovered on a phantom."""

from __future__ import annotations

import numpy as np
import pytest

from recon.preprocess import n4_bias_correction

sitk = pytest.importorskip("SimpleITK")


def smooth_bias(shape, amplitude=0.3):
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    f = 0.7 * x + 0.5 * y * z + 0.3 * np.sin(1.5 * y)
    f = f / np.abs(f).max()
    return 1.0 + amplitude * f


def tissue_phantom(shape=(40, 44, 36)):
    """A large uniform 'white matter' ellipsoid (100) with darker inclusions (60) and a rim (40)."""
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    r = (x / 0.85) ** 2 + (y / 0.85) ** 2 + (z / 0.85) ** 2
    vol = np.where(r < 1, 40.0, 0.0)
    vol[r < 0.8] = 100.0
    for cx, cy, cz in [(0.3, 0.2, 0.0), (-0.35, -0.1, 0.3), (0.0, -0.4, -0.3)]:
        vol[(x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 < 0.04] = 60.0
    return vol + np.where(vol > 0, np.random.default_rng(0).normal(0, 1.0, shape), 0.0)


@pytest.fixture(scope="module")
def biased():
    vol = tissue_phantom().astype(np.float32)
    bias = smooth_bias(vol.shape).astype(np.float32)
    return vol, bias, vol * bias


def test_removes_a_known_bias(biased):
    vol, bias, obs = biased
    corrected, field = n4_bias_correction(obs, shrink_factor=2)
    assert corrected.shape == field.shape == obs.shape and corrected.dtype == np.float32
    assert np.all(field > 0)
    np.testing.assert_allclose(corrected * field, obs, rtol=1e-5, atol=1e-3)
    core = vol > 90  # the bright tissue: one intensity (100) in the truth
    cv = lambda a: a[core].std() / a[core].mean()  # noqa: E731
    assert cv(corrected) < 0.5 * cv(obs)
    # the field is the true one up to a constant factor
    fg = vol > 20
    ratio = field[fg] / bias[fg]
    assert ratio.std() / ratio.mean() < 0.05


def test_equals_simpleitk_without_shrink(biased):
    _, _, obs = biased
    mask = (obs > 10).astype(np.uint8)
    corrected, field = n4_bias_correction(obs, mask, shrink_factor=1, n_iterations=(10, 10))
    # the same filter run directly on SimpleITK images
    image = sitk.GetImageFromArray(obs.transpose(2, 1, 0))
    m = sitk.GetImageFromArray(mask.transpose(2, 1, 0))
    n4 = sitk.N4BiasFieldCorrectionImageFilter()
    n4.SetMaximumNumberOfIterations([10, 10])
    n4.SetNumberOfControlPoints([4, 4, 4])
    n4.Execute(image, m)
    log_field = sitk.GetArrayFromImage(n4.GetLogBiasFieldAsImage(image)).transpose(2, 1, 0)
    np.testing.assert_allclose(field, np.exp(log_field), rtol=1e-4)


def test_default_mask_and_affine_spacing(biased):
    _, _, obs = biased
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    corrected, field = n4_bias_correction(obs, affine=affine, shrink_factor=2, n_iterations=(10,))
    assert np.isfinite(corrected).all() and np.isfinite(field).all()


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(volume=np.ones((4, 4))), ValueError, "volume must be a 3-D volume"),
        (dict(volume=np.ones((4, 4, 4, 1))), ValueError, "volume must be a 3-D volume"),
        (dict(mask=np.ones((3, 3, 3))), ValueError, "mask must have the volume's shape"),
        (dict(mask=np.zeros((8, 8, 8))), ValueError, "mask selects no voxel"),
        (dict(affine=np.diag([1.0, 1.0, 0.0, 1.0])), ValueError, "affine is not invertible"),
        (dict(shrink_factor=0), ValueError, "shrink_factor must be an integer >= 1"),
        (dict(shrink_factor=1.5), ValueError, "shrink_factor must be an integer >= 1"),
        (dict(n_iterations=()), ValueError, "n_iterations must be a non-empty list"),
        (dict(n_control_points=2), ValueError, "n_control_points must be >= spline_order"),
        (dict(volume=np.full((8, 8, 8), np.nan)), ValueError, "volume contains NaN"),
        (dict(volume=-np.ones((8, 8, 8))), ValueError, "volume has no positive voxel"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    args = dict(volume=np.random.default_rng(0).random((8, 8, 8)) + 1.0) | kwargs
    with pytest.raises(exc, match=match):
        n4_bias_correction(**args)
