"""recon.preprocess.resample against scipy.ndimage.zoom and SimpleITK; world coordinates kept."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from recon.preprocess import resample
from recon.preprocess.resample import voxel_sizes

RNG = np.random.default_rng(0)
SMOOTH = ndimage.gaussian_filter(RNG.random((24, 30, 20)), 2.0)


def affine_of(spacing, origin=(3.0, -4.0, 5.0), rot_deg=0.0):
    t = np.deg2rad(rot_deg)
    r = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    a = np.eye(4)
    a[:3, :3] = r @ np.diag(spacing)
    a[:3, 3] = origin
    return a


@pytest.mark.parametrize("order", [0, 1, 3])
def test_matches_scipy_zoom_grid_mode(order):
    affine = affine_of((1.0, 1.5, 2.0))
    out, new_affine = resample(SMOOTH, affine, (2.0, 1.0, 1.0), order=order)
    zoom = (0.5, 1.5, 2.0)  # old / new spacing; 24*1/2, 30*1.5/1, 20*2/1 are integers
    ref = ndimage.zoom(SMOOTH, zoom, order=order, grid_mode=True, mode="nearest")
    assert out.shape == ref.shape == (12, 45, 40)
    if order == 0:
        # nearest: equal except where a sample sits exactly half-way (rounding convention)
        assert np.mean(out == ref) > 0.97
    else:
        np.testing.assert_allclose(out, ref, atol=1e-12)
    np.testing.assert_allclose(voxel_sizes(new_affine), (2.0, 1.0, 1.0))


def test_world_coordinates_preserved_with_rotation():
    affine = affine_of((1.0, 1.2, 2.5), rot_deg=30.0)
    out, new_affine = resample(SMOOTH, affine, 0.8, order=1)
    # the centre of the field of view is the same world point
    old_c = affine @ np.r_[(np.array(SMOOTH.shape) - 1) / 2, 1]
    new_c = new_affine @ np.r_[(np.array(out.shape) - 1) / 2, 1]
    np.testing.assert_allclose(old_c, new_c, atol=1e-9)
    # directions unchanged
    np.testing.assert_allclose(new_affine[:3, :3] / voxel_sizes(new_affine), affine[:3, :3] / voxel_sizes(affine),
                               atol=1e-12)
    # a linear ramp in world x is reproduced exactly by linear interpolation (interior)
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in SMOOTH.shape], indexing="ij"), -1)
    ramp = (idx @ affine[:3, :3].T + affine[:3, 3])[..., 0]
    out_ramp, aff2 = resample(ramp, affine, 0.8, order=1)
    idx2 = np.stack(np.meshgrid(*[np.arange(n) for n in out_ramp.shape], indexing="ij"), -1)
    world_x = (idx2 @ aff2[:3, :3].T + aff2[:3, 3])[..., 0]
    inner = tuple(slice(2, -2) for _ in range(3))
    np.testing.assert_allclose(out_ramp[inner], world_x[inner], atol=1e-9)


def test_matches_simpleitk_interior():
    sitk = pytest.importorskip("SimpleITK")
    affine = affine_of((1.0, 1.5, 2.0), rot_deg=20.0)
    out, new_affine = resample(SMOOTH, affine, 1.25, order=3)
    from recon.preprocess._checks import from_sitk, to_sitk

    ref_img = sitk.Resample(to_sitk(SMOOTH, affine), to_sitk(np.zeros(out.shape), new_affine), sitk.Transform(),
                            sitk.sitkBSpline, 0.0)
    ref, ref_affine = from_sitk(ref_img)
    np.testing.assert_allclose(ref_affine, new_affine, atol=1e-9)
    inner = tuple(slice(4, -4) for _ in range(3))
    # ITK's B-spline interpolator and scipy's use different boundary handling of the prefilter;
    # the interior agrees to a small fraction of the signal range
    assert np.abs(out[inner] - ref[inner]).max() < 2e-3 * np.ptp(SMOOTH)


def test_labels_nearest_keep_values_and_dtype():
    labels = RNG.integers(0, 5, (10, 12, 14)).astype(np.uint8)
    out, _ = resample(labels, np.eye(4), (0.5, 2.0, 1.0), order=0)
    assert out.dtype == np.uint8 and set(np.unique(out)) <= set(np.unique(labels))
    # 2x upsampling along axis 0 repeats every voxel twice
    np.testing.assert_array_equal(out[::2, :, :], out[1::2, :, :])


def test_torch_input_and_identity():
    torch = pytest.importorskip("torch")
    out, new_affine = resample(torch.from_numpy(SMOOTH), affine_of((1, 1, 1)), 1.0)
    np.testing.assert_allclose(out, SMOOTH, atol=1e-10)
    np.testing.assert_allclose(new_affine, affine_of((1, 1, 1)))


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(volume=np.zeros((4, 4))), ValueError, "volume must be a 3-D volume"),
        (dict(volume=np.zeros((4, 4, 4, 2))), ValueError, "volume must be a 3-D volume"),
        (dict(affine=np.diag([1.0, 0.0, 1.0, 1.0])), ValueError, "affine is not invertible"),
        (dict(affine=np.zeros((4, 4))), ValueError, "affine last row"),
        (dict(affine=np.eye(3)), ValueError, "affine must be a 4x4 matrix"),
        (dict(voxel_size=0.0), ValueError, "voxel_size must be > 0"),
        (dict(voxel_size=(1.0, -1.0, 1.0)), ValueError, "voxel_size must be > 0"),
        (dict(voxel_size=(1.0, 2.0)), ValueError, "voxel_size must be a positive number"),
        (dict(order=2), ValueError, "order must be 0"),
        (dict(volume=[[[1.0]]]), TypeError, "volume must be a 3-D numpy array"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    args = dict(volume=SMOOTH, affine=np.eye(4), voxel_size=2.0, order=3) | kwargs
    with pytest.raises(exc, match=match):
        resample(**args)


def test_sitk_conversion_follows_nibabel_and_itk_conventions():
    sitk = pytest.importorskip("SimpleITK")
    from recon.preprocess._checks import from_sitk, to_sitk

    affine = np.array([[0.9, 0.3, 0.0, 5.0], [-0.2, 1.1, 0.1, 2.0], [0.0, 0.0, 2.0, -7.0], [0, 0, 0, 1.0]])
    volume = RNG.random((4, 5, 6)).astype(np.float32)
    image = to_sitk(volume, affine)
    # ITK index (i, j, k) holds numpy [i, j, k]; its physical point is the RAS point with x, y negated
    for index in [(0, 0, 0), (3, 1, 5), (2, 4, 0)]:
        assert image.GetPixel(index) == volume[index]
        lps = np.array(image.TransformIndexToPhysicalPoint(index))
        ras = (affine @ np.r_[index, 1])[:3]
        np.testing.assert_allclose(lps, ras * [-1, -1, 1], atol=1e-9)
    back, back_affine = from_sitk(image)
    np.testing.assert_array_equal(back, volume)
    np.testing.assert_allclose(back_affine, affine, atol=1e-12)
