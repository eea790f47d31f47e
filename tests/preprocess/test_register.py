"""recon.preprocess.register: known rigid/affine motions recovered, across contrasts too."""

from __future__ import annotations

import numpy as np
import pytest

from recon.preprocess import register

from preprocess_helpers import blob_phantom, move, rigid_about

sitk = pytest.importorskip("SimpleITK")

AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])
AFFINE[:3, 3] = [-40.0, -44.0, -36.0]


@pytest.fixture(scope="module")
def scene():
    fixed = blob_phantom((40, 44, 36)).astype(np.float32)
    center = AFFINE @ np.r_[(np.array(fixed.shape) - 1) / 2, 1]
    truth = rigid_about(center[:3], [(0, 6.0), (2, 8.0)], [3.0, -4.0, 0.0])  # 10 degrees, 5 mm
    moving = move(fixed, AFFINE, truth).astype(np.float32)
    inside = np.argwhere(fixed > 0.2)
    points = (AFFINE @ np.c_[inside, np.ones(len(inside))].T).T
    return fixed, moving, truth, points


def mean_error(matrix, truth, points):
    """Mean displacement error (mm) over the object between two fixed->moving world maps."""
    return float(np.linalg.norm(((matrix - truth) @ points.T)[:3], axis=0).mean())


# accuracy tests use num_threads=1: bitwise reproducible, so a pass is not a lucky rounding order
@pytest.mark.parametrize("metric", ["mean_squares", "mutual_information"])
def test_rigid_motion_recovered(scene, metric):
    fixed, moving, truth, points = scene
    result = register(fixed, moving, fixed_affine=AFFINE, moving_affine=AFFINE, metric=metric, seed=1, num_threads=1)
    assert mean_error(result.matrix, truth, points) < 0.5
    # matrix, ITK transform and transform_points agree
    np.testing.assert_allclose(result.transform_points(points[:5, :3]), (result.matrix @ points[:5].T).T[:, :3],
                               atol=1e-6)
    # the warped moving image is back on the fixed one
    inner = fixed > 0.2
    assert np.abs(result.warped[inner] - fixed[inner]).mean() < 0.1 * np.abs(moving[inner] - fixed[inner]).mean()
    assert result.warped.shape == fixed.shape and result.fixed_shape == fixed.shape


def test_across_contrasts_with_mutual_information(scene):
    fixed, _, truth, points = scene
    # the same anatomy with the tissue intensities remapped non-monotonically (T2-like), then moved
    t2 = move(blob_phantom((40, 44, 36), values=(0.9, 0.3, 0.5, 1.0)), AFFINE, truth).astype(np.float32)
    result = register(fixed, t2, fixed_affine=AFFINE, moving_affine=AFFINE, metric="mutual_information",
                      num_threads=1)
    assert mean_error(result.matrix, truth, points) < 0.5


def test_deterministic_with_seed(scene):
    fixed, moving, _, _ = scene
    kwargs = dict(fixed_affine=AFFINE, moving_affine=AFFINE, seed=3, num_threads=1, shrink_factors=(4, 2),
                  smoothing_sigmas=(2.0, 1.0), max_samples=5000)
    a = register(fixed, moving, **kwargs)
    b = register(fixed, moving, **kwargs)
    c = register(fixed, moving, **(kwargs | {"seed": 4}))
    assert not np.array_equal(a.matrix, c.matrix)  # the seed does pick the samples
    np.testing.assert_array_equal(a.matrix, b.matrix)  # bitwise with one thread


def test_default_seed_zero_is_deterministic(scene):
    """SimpleITK reads its own seed 0 as 'wall clock'; recon's default seed 0 must not."""
    fixed, moving, _, _ = scene
    kwargs = dict(fixed_affine=AFFINE, moving_affine=AFFINE, num_threads=1, shrink_factors=(4, 2),
                  smoothing_sigmas=(2.0, 1.0), max_samples=5000)
    a = register(fixed, moving, **kwargs)
    b = register(fixed, moving, **kwargs)
    np.testing.assert_array_equal(a.matrix, b.matrix)


@pytest.mark.parametrize("seed", [-1, 2**31, 1.5, True, "0"])
def test_bad_seed_is_refused(scene, seed):
    fixed, moving, _, _ = scene
    with pytest.raises(ValueError, match="seed"):
        register(fixed, moving, fixed_affine=AFFINE, moving_affine=AFFINE, seed=seed)


def test_apply_labels_and_other_grid(scene):
    fixed, moving, truth, _ = scene
    result = register(fixed, moving, fixed_affine=AFFINE, moving_affine=AFFINE, metric="mean_squares",
                      num_threads=1)
    labels = (moving > 0.5).astype(np.uint8) * 3
    warped = result.apply(labels, order=0)
    assert warped.dtype == np.uint8 and set(np.unique(warped)) <= {0, 3}
    dice = 2 * np.sum((warped > 0) & (fixed > 0.5)) / (np.sum(warped > 0) + np.sum(fixed > 0.5))
    assert dice > 0.95
    # the same image given on another grid (1 mm, shifted) lands on the same place
    fine_affine = AFFINE.copy()
    fine_affine[:3, :3] = np.eye(3)
    from scipy import ndimage

    m = np.linalg.inv(AFFINE) @ fine_affine
    fine = ndimage.affine_transform(moving, m[:3, :3], m[:3, 3], output_shape=(80, 88, 72), order=1)
    again = result.apply(fine, order=1, affine=fine_affine)
    inner = fixed > 0.2
    assert np.abs(again[inner] - result.warped[inner]).mean() < 0.03
    bool_mask = result.apply(moving > 0.5, order=0)
    assert bool_mask.dtype == bool


def test_affine_recovers_a_scaling(scene):
    fixed, _, _, points = scene
    center = AFFINE @ np.r_[(np.array(fixed.shape) - 1) / 2, 1]
    # scale about the centre, then rotate 5 degrees about it and shift 2.8 mm
    scale = np.eye(4)
    scale[:3, :3] = np.diag([1.08, 0.95, 1.0])
    scale[:3, 3] = center[:3] - scale[:3, :3] @ center[:3]
    truth = rigid_about(center[:3], [(1, 5.0)], [2.0, 0.0, -2.0]) @ scale
    moving = move(fixed, AFFINE, truth).astype(np.float32)
    result = register(fixed, moving, fixed_affine=AFFINE, moving_affine=AFFINE, transform="affine",
                      metric="mean_squares", num_threads=1)
    assert mean_error(result.matrix, truth, points) < 0.7


@pytest.mark.slow
def test_bspline_improves_on_affine(scene):
    fixed, moving, _, _ = scene
    from scipy import ndimage

    rng = np.random.default_rng(0)
    disp = [ndimage.gaussian_filter(rng.normal(0, 1, fixed.shape), 6) * 40 for _ in range(3)]
    grid = np.meshgrid(*[np.arange(n) for n in fixed.shape], indexing="ij")
    warped_truth = ndimage.map_coordinates(fixed, [g + d for g, d in zip(grid, disp)], order=1)
    aff = register(fixed, warped_truth.astype(np.float32), fixed_affine=AFFINE, moving_affine=AFFINE,
                   transform="affine", metric="mean_squares")
    bsp = register(fixed, warped_truth.astype(np.float32), fixed_affine=AFFINE, moving_affine=AFFINE,
                   transform="bspline", metric="mean_squares", bspline_mesh=4)
    assert bsp.matrix is None
    err = lambda r: np.mean((r.warped - fixed) ** 2)  # noqa: E731
    assert err(bsp) < 0.7 * err(aff)
    lab = bsp.apply((warped_truth > 0.5).astype(np.uint8), order=0)
    assert lab.shape == fixed.shape


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(fixed=np.ones((5, 5))), ValueError, "fixed must be a 3-D volume"),
        (dict(moving=np.ones((5, 5, 5, 2))), ValueError, "moving must be a 3-D volume"),
        (dict(fixed_affine=np.diag([1.0, 0.0, 1.0, 1.0])), ValueError, "fixed_affine is not invertible"),
        (dict(moving_affine=np.eye(3)), ValueError, "moving_affine must be a 4x4 matrix"),
        (dict(transform="similarity"), ValueError, "transform must be one of"),
        (dict(metric="ncc"), ValueError, "metric must be one of"),
        (dict(initialize="random"), ValueError, "initialize must be"),
        (dict(fixed_mask=np.ones((3, 3, 3), bool)), ValueError, "fixed_mask must have the volume's shape"),
        (dict(moving_mask=np.ones((3, 3, 3), bool)), ValueError, "moving_mask must have the volume's shape"),
        (dict(shrink_factors=(2, 1), smoothing_sigmas=(1.0,)), ValueError, "shrink_factors and smoothing_sigmas"),
        (dict(sampling_percentage=0.0), ValueError, "sampling_percentage must be in"),
        (dict(n_iterations=0), ValueError, "n_iterations must be >= 1"),
        (dict(moving=np.ones((8, 8, 8), np.float32)), ValueError, "moving is constant"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    vol = blob_phantom((8, 8, 8)).astype(np.float32)
    args = dict(fixed=vol, moving=vol) | kwargs
    fixed, moving = args.pop("fixed"), args.pop("moving")
    with pytest.raises(exc, match=match):
        register(fixed, moving, **args)


def test_apply_bad_order(scene):
    fixed, moving, _, _ = scene
    result = register(fixed, moving, fixed_affine=AFFINE, moving_affine=AFFINE, n_iterations=2,
                      shrink_factors=(4,), smoothing_sigmas=(2.0,))
    with pytest.raises(ValueError, match="order must be 0"):
        result.apply(moving, order=2)
    with pytest.raises(ValueError, match="volume must have the moving image's shape"):
        result.apply(np.ones((3, 3, 3)))


def test_num_threads_restores_global_setting(scene):
    fixed, moving, _, _ = scene
    before = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    register(fixed, moving, fixed_affine=AFFINE, moving_affine=AFFINE, num_threads=1, n_iterations=3)
    assert sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() == before
