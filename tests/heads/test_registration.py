"""recon.heads.registration against independent references (scipy.ndimage, closed forms, numpy),
the registration task, recon.register and `recon register`."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from scipy.linalg import expm

import recon
from recon.heads import registration as R
from recon.train.tasks_heads import available_heads


def _smooth(shape, seed=0, sigma=2.0):
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.random(shape), sigma)


def _affine_field(shape, matrix, offset):
    """u(x) = (A - I) x + t in voxel units, (1, n, *shape) float64."""
    n = len(shape)
    idx = np.indices(shape, dtype=np.float64)
    u = np.einsum("ij,j...->i...", matrix - np.eye(n), idx) + np.asarray(offset).reshape(n, *([1] * n))
    return torch.from_numpy(u)[None]


@pytest.mark.parametrize("shape", [(9, 11, 10), (13, 17)])
def test_warp_translation_matches_scipy_map_coordinates(shape):
    image = _smooth(shape)
    shift = np.array([0.3, -1.7, 2.25][: len(shape)])
    u = torch.from_numpy(np.broadcast_to(shift.reshape(-1, *([1] * len(shape))), (len(shape), *shape)).copy())[None]
    out = R.warp(torch.from_numpy(image)[None, None], u)[0, 0].numpy()
    coords = np.indices(shape, dtype=np.float64) + shift.reshape(-1, *([1] * len(shape)))
    ref = ndimage.map_coordinates(image, coords, order=1, mode="nearest")
    np.testing.assert_allclose(out, ref, atol=1e-10)


def test_warp_affine_displacement_matches_scipy_affine_transform():
    shape = (12, 10, 11)
    image = _smooth(shape, 1)
    a = np.array([[1.05, 0.1, 0.0], [-0.08, 0.95, 0.05], [0.02, 0.0, 1.1]])
    t = np.array([0.5, -0.4, 0.8])
    out = R.warp(torch.from_numpy(image)[None, None], _affine_field(shape, a, t))[0, 0].numpy()
    ref = ndimage.affine_transform(image, a, offset=t, order=1, mode="nearest")
    np.testing.assert_allclose(out, ref, atol=1e-10)


def test_warp_nearest_keeps_label_values():
    labels = np.random.default_rng(0).integers(0, 4, (8, 9, 7)).astype(np.float64)
    shift = np.array([1.3, -0.4, 0.2])
    u = torch.from_numpy(np.broadcast_to(shift.reshape(3, 1, 1, 1), (3, 8, 9, 7)).copy())[None]
    out = R.warp(torch.from_numpy(labels)[None, None], u, mode="nearest")[0, 0].numpy()
    idx = np.rint(np.indices(labels.shape) + shift.reshape(3, 1, 1, 1)).astype(int)
    for a in range(3):
        idx[a] = np.clip(idx[a], 0, labels.shape[a] - 1)
    np.testing.assert_array_equal(out, labels[idx[0], idx[1], idx[2]])


def test_scaling_and_squaring_of_constant_velocity_is_the_translation():
    v = torch.zeros(1, 3, 10, 9, 8, dtype=torch.float64)
    v[:, 0], v[:, 1], v[:, 2] = 1.5, -0.75, 0.4
    u = R.integrate_velocity(v, 7)
    torch.testing.assert_close(u, v, atol=1e-10, rtol=0)


def test_scaling_and_squaring_of_linear_velocity_is_the_matrix_exponential():
    # v(x) = B (x - c): exp(v) maps x to c + expm(B) (x - c); trilinear interpolation is exact on
    # affine fields, so away from the border the result is exact
    shape = (41, 41)
    b = np.array([[0.0, -0.15], [0.15, 0.02]])
    c = np.array([20.0, 20.0])
    idx = np.indices(shape, dtype=np.float64)
    v = np.einsum("ij,j...->i...", b, idx - c.reshape(2, 1, 1))
    u = R.integrate_velocity(torch.from_numpy(v)[None], 8)[0].numpy()
    inner = (slice(None), slice(12, 29), slice(12, 29))
    # exactly the 2^8-th power of the first small step (compositions of affine maps are exact) ...
    power = np.linalg.matrix_power(np.eye(2) + b / 2 ** 8, 2 ** 8)
    exact = np.einsum("ij,j...->i...", power - np.eye(2), idx - c.reshape(2, 1, 1))
    np.testing.assert_allclose(u[inner], exact[inner], atol=1e-8)
    # ... which is the flow of v, exp(B), up to O(|B|^2 / 2^8)
    ref = np.einsum("ij,j...->i...", expm(b) - np.eye(2), idx - c.reshape(2, 1, 1))
    np.testing.assert_allclose(u[inner], ref[inner], atol=1e-3)


def test_diffeomorphic_integration_has_positive_jacobian_where_the_raw_field_folds():
    rng = np.random.default_rng(3)
    v = np.stack([ndimage.gaussian_filter(rng.standard_normal((24, 24, 24)), 2.0) for _ in range(3)])
    v *= 6.0 / np.abs(v).max()
    v_t = torch.from_numpy(v)[None]
    assert float(R.jacobian_determinant(v_t).min()) < 0  # used as a displacement it folds
    u = R.integrate_velocity(v_t, 7)
    assert float(R.jacobian_determinant(u)[:, 2:-2, 2:-2, 2:-2].min()) > 0


def test_jacobian_of_affine_field_is_the_determinant():
    a = np.array([[1.1, 0.2, 0.0], [0.0, 0.9, 0.1], [0.05, 0.0, 1.2]])
    det = R.jacobian_determinant(_affine_field((7, 8, 9), a, [1.0, 0.0, -2.0]))
    np.testing.assert_allclose(det.numpy(), np.linalg.det(a), atol=1e-10)
    a2 = np.array([[1.3, 0.4], [-0.2, 0.7]])
    np.testing.assert_allclose(R.jacobian_determinant(_affine_field((6, 5), a2, [0, 0])).numpy(),
                               np.linalg.det(a2), atol=1e-10)


def test_resize_displacement_rescales_voxel_units():
    u = torch.full((1, 2, 9, 5), 2.0, dtype=torch.float64)
    out = R.resize_displacement(u, (17, 9))
    torch.testing.assert_close(out, torch.full((1, 2, 17, 9), 4.0, dtype=torch.float64))


def _ncc_numpy(f, w, window, eps):
    n = window ** f.ndim
    box = lambda x: ndimage.uniform_filter(x, window, mode="constant") * n  # noqa: E731
    fs, ws = box(f), box(w)
    cross = box(f * w) - fs * ws / n
    fv = box(f * f) - fs * fs / n
    wv = box(w * w) - ws * ws / n
    return np.mean(cross ** 2 / (fv * wv + eps))


def test_local_ncc_matches_numpy_and_is_one_for_identical_images():
    f = _smooth((10, 12, 11), 4, 1.0)
    w = _smooth((10, 12, 11), 5, 1.0)
    got = float(R.local_ncc(torch.from_numpy(f)[None, None], torch.from_numpy(w)[None, None], 5, 1e-8))
    assert got == pytest.approx(_ncc_numpy(f, w, 5, 1e-8), rel=1e-8)
    same = float(R.local_ncc(torch.from_numpy(f)[None, None], torch.from_numpy(3 * f)[None, None], 5, 1e-12))
    assert same == pytest.approx(1.0, abs=1e-6)


def test_mse_gradient_and_dice_losses_closed_forms():
    f, w = torch.zeros(1, 1, 4, 4), torch.full((1, 1, 4, 4), 0.5)
    assert float(R.mse(f, w)) == pytest.approx(0.25)
    x = torch.arange(6.0).view(1, 1, 6, 1, 1).expand(1, 1, 6, 4, 5)
    u = torch.cat([2 * x, torch.zeros_like(x), torch.zeros_like(x)], 1)  # u_0 = 2 x_0
    # differences: along axis 0 component 0 is 2 (1 of 3 components), 0 elsewhere
    assert float(R.gradient_loss(u)) == pytest.approx((4.0 / 3) / 3)
    a = torch.zeros(1, 1, 4, 4)
    b = torch.zeros(1, 1, 4, 4)
    a[..., :2, :] = 1
    b[..., 1:3, :] = 1
    assert float(R.dice_loss(a, b, eps=0)) == pytest.approx(1 - 2 * 4 / 16)


@pytest.mark.parametrize("ndim,shape", [(3, (11, 14, 9)), (2, (30, 21))])
def test_network_shapes_and_identity_at_init(ndim, shape):
    torch.manual_seed(0)
    net = R.RegistrationNet(ndim=ndim, enc_chans=(4, 8), dec_chans=(8, 8, 4), integration_steps=4)
    fixed, moving = torch.rand(2, 1, *shape), torch.rand(2, 1, *shape)
    warped, u = net(fixed, moving)
    assert warped.shape == moving.shape and u.shape == (2, ndim, *shape)
    assert float(u.detach().abs().max()) < 1e-2  # the flow layer starts near zero: nearly the identity
    torch.testing.assert_close(warped, moving, atol=2e-2, rtol=0)


@pytest.mark.slow
def test_network_learns_a_translation():
    torch.manual_seed(0)
    shape = (24, 24)
    base = torch.from_numpy(_smooth((40, 40), 6, 2.0)).float()
    fixed, moving = base[8:32, 8:32][None, None], base[9:33, 10:34][None, None]  # moving = fixed shifted (1, 2)
    net = R.RegistrationNet(ndim=2, enc_chans=(8, 8), dec_chans=(8, 8, 8), integration_steps=0)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(150):
        warped, u = net(fixed, moving)
        loss = R.mse(fixed, warped) * 1e3 + 0.01 * R.gradient_loss(u)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        u = net.field(fixed, moving)[0, :, 6:-6, 6:-6]
    assert float(u[0].mean()) == pytest.approx(-1.0, abs=0.35)
    assert float(u[1].mean()) == pytest.approx(-2.0, abs=0.5)


def test_deformable_transform_apply_matches_scipy_affine_transform():
    rng = np.random.default_rng(0)
    moving = ndimage.gaussian_filter(rng.random((14, 12, 13)), 1.5).astype(np.float64)
    fixed_affine = np.diag([2.0, 2.0, 2.0, 1.0])
    fixed_affine[:3, 3] = [-3.0, 1.0, 2.0]
    moving_affine = np.diag([1.5, 1.5, 1.5, 1.0])
    matrix = np.eye(4)
    matrix[:3, :3] = [[1.0, 0.05, 0.0], [0.0, 0.98, 0.0], [0.02, 0.0, 1.03]]
    matrix[:3, 3] = [1.0, -0.5, 0.3]
    t = R.DeformableTransform((8, 7, 9), fixed_affine, matrix, np.zeros((3, 4, 4, 4), np.float32), np.eye(4),
                              moving.shape, moving_affine)
    out = t.apply(moving, order=1)
    vox = np.linalg.inv(moving_affine) @ matrix @ fixed_affine
    ref = ndimage.affine_transform(moving, vox[:3, :3], offset=vox[:3, 3], output_shape=(8, 7, 9), order=1,
                                   mode="constant", cval=0.0)
    np.testing.assert_allclose(out, ref, atol=1e-10)
    labels = (moving > np.median(moving)).astype(np.uint8)
    moved = t.apply(labels, order=0)
    assert moved.dtype == np.uint8 and set(np.unique(moved)) <= {0, 1}


def test_deformable_transform_displacement_is_in_work_grid_voxels():
    moving = np.random.default_rng(1).random((10, 10, 10))
    u = np.zeros((3, 5, 5, 5), np.float32)
    u[0] = 0.5  # half a 2 mm work voxel = 1 mm = one moving voxel along x
    work = np.diag([2.0, 2.0, 2.0, 1.0])
    t = R.DeformableTransform((10, 10, 10), np.eye(4), np.eye(4), u, work, moving.shape, np.eye(4))
    out = t.apply(moving, order=1)
    np.testing.assert_allclose(out[:-1], moving[1:], atol=1e-6)


def test_register_task_trains_end_to_end(tmp_path):
    from recon.train.tasks_heads import HeadConfig, load_head, train_head

    rng = np.random.default_rng(0)
    vols = []
    for k in range(3):
        labels = np.zeros((24, 26, 22), np.uint8)
        labels[5 + k:18, 6:20 - k, 5:17] = 2
        labels[8:15, 9:16, 8:14 + k] = 1
        image = ndimage.gaussian_filter(labels.astype(np.float64) + 0.05 * rng.random(labels.shape), 0.7)
        vols.append({"t1w": image.astype(np.float32), "labels": labels, "mask": labels > 0,
                     "affine": np.diag([2.0, 2.0, 2.0, 1.0])})
    config = HeadConfig(task="register", chans=4, depth=2, steps=3, output_dir=str(tmp_path), num_threads=1,
                        options={"work_voxel": 3.0, "integration_steps": 3})
    result = train_head(config, data=vols, val_data=vols[:2])
    assert result.steps == 3 and np.isfinite(result.history[0]["loss"])
    assert set(result.validation) == {"dice_affine", "dice_learned"}
    model, cfg, _ = load_head(result.weights)
    assert isinstance(model, R.RegistrationNet) and cfg.options["integration_steps"] == 3


def _blob_volume(shift=(0.0, 0.0, 0.0), shape=(32, 30, 28)):
    idx = np.indices(shape, dtype=np.float64)
    c = np.array(shape) / 2 + np.asarray(shift)
    r = np.sqrt(sum(((idx[a] - c[a]) / (0.3 * shape[a])) ** 2 for a in range(3)))
    inner = np.sqrt(sum(((idx[a] - c[a] - 2) / (0.12 * shape[a])) ** 2 for a in range(3)))
    return (ndimage.gaussian_filter((r < 1).astype(float) + (inner < 1), 1.0) * 300).astype(np.float32)


def test_register_rigid_recovers_a_translation_and_returns_torch_for_torch():
    fixed = _blob_volume()
    moving = _blob_volume((2.0, -1.5, 1.0))
    warped, transform = recon.register(torch.from_numpy(fixed), moving, "rigid", num_threads=1)
    assert isinstance(warped, torch.Tensor) and warped.shape == fixed.shape
    before = np.abs(moving - fixed).mean()
    after = np.abs(warped.numpy() - fixed).mean()
    assert after < 0.3 * before
    np.testing.assert_allclose(transform.matrix[:3, 3], [2.0, -1.5, 1.0], atol=0.3)


@pytest.mark.skipif("register" not in available_heads(), reason="bundled weights 'register' missing")
def test_register_learned_runs_and_warps_labels():
    fixed = _blob_volume(shape=(44, 48, 40))
    moving = _blob_volume((1.0, 2.0, -1.0), shape=(44, 48, 40))
    affine = np.diag([2.0, 2.0, 2.0, 1.0])  # 2 mm voxels: the network's 4 mm grid is 22 x 24 x 20
    # a short refinement (the default schedule is measured by benchmarks/registration.py)
    warped, transform = recon.register(fixed, moving * 7.0, fixed_affine=affine, moving_affine=affine, refine=10)
    assert warped.shape == fixed.shape and warped.dtype == np.float32 and np.isfinite(warped).all()
    assert transform.displacement.shape == (3, 44, 48, 40)  # refined on the 2 mm grid
    again, _ = recon.register(fixed, moving * 7.0, fixed_affine=affine, moving_affine=affine, refine=10)
    np.testing.assert_array_equal(again, warped)  # single-threaded pre-alignment + Adam: reproducible
    labels = (moving > 150).astype(np.uint8)
    moved = transform.apply(labels, order=0)
    assert moved.dtype == np.uint8
    dice = 2 * np.sum(moved & (fixed > 150)) / (moved.sum() + (fixed > 150).sum())
    assert dice > 0.8
    assert float(transform.jacobian_determinant().min()) > 0


def test_cli_register_affine_writes_volume_and_labels(tmp_path):
    from recon.cli import main
    from recon.data.io import load_nifti, save_nifti

    fixed, moving = _blob_volume(), _blob_volume((1.0, 0.0, -1.0))
    save_nifti(tmp_path / "f.nii.gz", fixed, affine=np.eye(4))
    save_nifti(tmp_path / "m.nii.gz", moving, affine=np.eye(4))
    save_nifti(tmp_path / "seg.nii.gz", (moving > 150).astype(np.int16), affine=np.eye(4))
    code = main(["register", str(tmp_path / "f.nii.gz"), str(tmp_path / "m.nii.gz"), "-o", str(tmp_path / "w.nii.gz"),
                 "--method", "affine", "--labels", str(tmp_path / "seg.nii.gz"),
                 "--labels-output", str(tmp_path / "seg_w.nii.gz")])
    assert code == 0
    warped, _, _ = load_nifti(tmp_path / "w.nii.gz")
    seg, _, _ = load_nifti(tmp_path / "seg_w.nii.gz")
    assert warped.shape == fixed.shape and set(np.unique(seg)) <= {0, 1}


# ----------------------------------------------------------------------------- instance-specific refinement

def _pattern(x, y):
    """A smooth closed-form 2-D image."""
    return np.sin(x / 3.0) * np.cos(y / 4.0) + 0.5 * np.sin((x + y) / 5.0) + 0.02 * x


def _known_warp(n=48):
    """moving = g(x), fixed = g(x + u_true(x)) in closed form, and u_true (2, n, n), up to 1.5 voxels."""
    x, y = np.indices((n, n), dtype=np.float64)
    u_true = np.stack([1.5 * np.sin(2 * np.pi * y / n) * np.sin(np.pi * x / n),
                       1.2 * np.cos(2 * np.pi * x / n) * np.sin(np.pi * y / n)])
    moving = _pattern(x, y)
    fixed = _pattern(x + u_true[0], y + u_true[1])
    t = lambda a: torch.from_numpy(a)[None, None]  # noqa: E731
    return t(fixed), t(moving), u_true


def test_refinement_recovers_a_known_smooth_warp_and_lowers_the_loss():
    fixed, moving, u_true = _known_warp()
    zero = torch.zeros(1, 2, 48, 48, dtype=torch.float64)
    u = R.refine_displacement(fixed, moving, zero, 150, lr=0.1, lambda_smooth=0.1, window=9)
    inner = (slice(None), slice(8, -8), slice(8, -8))
    err_before = np.abs(u_true[inner]).mean()
    err_after = np.abs(u[0].numpy()[inner] - u_true[inner]).mean()
    assert err_after < 0.25 * err_before
    loss = lambda v: float(-R.local_ncc(fixed, R.warp(moving, v), 9) + 0.1 * R.gradient_loss(v))  # noqa: E731
    assert loss(u) < loss(zero)
    # labels of the closed-form image: Dice after refinement beats Dice without
    truth = (fixed[0, 0].numpy() > 0.3).astype(np.float64)
    labels = (moving > 0.3).double()
    moved = R.warp(labels, u, mode="nearest")[0, 0].numpy()
    dice = lambda a, b: 2 * (a * b).sum() / (a.sum() + b.sum())  # noqa: E731
    assert 1 - dice(truth, moved) < 0.5 * (1 - dice(truth, labels[0, 0].numpy()))  # half the mismatch or less
    # starting from a partial answer (what the network gives) also ends near the truth
    half = torch.from_numpy(0.5 * u_true)[None]
    u_half = R.refine_displacement(fixed, moving, half, 60, lr=0.1, lambda_smooth=0.1, window=9)
    assert np.abs(u_half[0].numpy()[inner] - u_true[inner]).mean() < 0.5 * np.abs(0.5 * u_true[inner]).mean()
    # deterministic, and zero steps returns the start
    again = R.refine_displacement(fixed, moving, zero, 150, lr=0.1, lambda_smooth=0.1, window=9)
    assert torch.equal(again, u)
    assert torch.equal(R.refine_displacement(fixed, moving, half, 0), half)


def test_carry_displacement_of_a_linear_field_is_exact_on_a_finer_grid():
    work_affine = np.diag([4.0, 4.0, 4.0, 1.0])
    work_affine[:3, 3] = [-10.0, 5.0, 2.0]
    shape4 = (8, 9, 7)
    a = np.array([[1.04, 0.05, 0.0], [-0.03, 0.97, 0.02], [0.01, 0.0, 1.05]])
    t = np.array([0.4, -0.3, 0.2])
    u4 = _affine_field(shape4, a, t)[0].numpy()
    grid_affine = np.diag([2.0, 2.0, 2.0, 1.0])
    grid_affine[:3, 3] = work_affine[:3, 3]  # the 2 mm grid starts at the same corner centre
    u2 = R.carry_displacement(u4, work_affine, (15, 17, 13), grid_affine)
    # closed form: the 2 mm voxel q is the 4 mm point p = q / 2, mapped to A p + t, i.e. 2 (A p + t) in 2 mm voxels
    q = np.indices((15, 17, 13), dtype=np.float64)
    expected = 2 * (np.einsum("ij,j...->i...", a, q / 2) + t.reshape(3, 1, 1, 1)) - q
    np.testing.assert_allclose(u2, expected, atol=1e-4)


def test_refine_transform_recovers_a_known_translation_in_world_space():
    fixed = _blob_volume(shape=(30, 32, 28))
    moving = _blob_volume((1.5, -1.0, 1.0), shape=(30, 32, 28))  # 1.5 voxels = 3 mm
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    start = R.DeformableTransform(fixed.shape, affine, np.eye(4), None, np.eye(4), moving.shape, affine)
    out = R.refine_transform(start, fixed, moving, levels=((4.0, 60), (2.0, 30)), lambda_smooth=1.0)
    assert out.displacement.shape == (3, 30, 32, 28) and np.allclose(out.work_affine, affine)
    centre = np.array([15.0, 16.0, 14.0]) * 2.0
    shift = out.fixed_to_moving(centre.reshape(3, 1)).ravel() - centre
    np.testing.assert_allclose(shift, [3.0, -2.0, 2.0], atol=0.6)
    labels = (moving > 150).astype(np.uint8)
    truth = fixed > 150
    dice = lambda m: 2 * np.sum(m & truth) / (m.sum() + truth.sum())  # noqa: E731
    assert dice(out.apply(labels, order=0).astype(bool)) > dice(labels.astype(bool)) + 0.1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_refine_transform_on_cuda_matches_the_cpu():
    fixed = _blob_volume(shape=(30, 32, 28))
    moving = _blob_volume((1.5, -1.0, 1.0), shape=(30, 32, 28))
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    start = R.DeformableTransform(fixed.shape, affine, np.eye(4), None, np.eye(4), moving.shape, affine)
    kwargs = dict(levels=((4.0, 30), (2.0, 10)), lambda_smooth=1.0)
    on_cpu = R.refine_transform(start, fixed, moving, **kwargs).displacement
    on_gpu = R.refine_transform(start, fixed, moving, device="cuda", **kwargs).displacement
    assert isinstance(on_gpu, np.ndarray)
    np.testing.assert_allclose(on_gpu, on_cpu, atol=0.05)


@pytest.mark.parametrize("refine, error, words", [
    (-1, ValueError, "refine"), ("yes", TypeError, "refine"), (2.5, TypeError, "refine"),
    ([(2.0, -1)], ValueError, "refine steps"), ([(0.0, 5)], ValueError, "refine voxel_mm"),
    ([5], TypeError, "refine levels"),
])
def test_refine_argument_is_checked(refine, error, words):
    with pytest.raises(error, match=words):
        R.refine_levels(refine)


def test_refine_levels_of_the_accepted_forms():
    assert R.refine_levels(True) == tuple((4.0 if v is None else v, n) for v, n in R.REFINE_LEVELS)
    assert R.refine_levels(False) == () and R.refine_levels(0) == ()
    assert R.refine_levels(np.int64(7)) == ((4.0, 7), (2.0, 7))
    assert R.refine_levels([(None, 3), (3.0, 0), (2, 4)], work_voxel=5.0) == ((5.0, 3), (2.0, 4))


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(steps=-1), ValueError, "steps"), (dict(steps=1.0), TypeError, "steps"),
    (dict(steps=1, lr=0.0), ValueError, "lr"), (dict(steps=1, lambda_smooth=-1.0), ValueError, "lambda_smooth"),
    (dict(steps=1, lr="fast"), TypeError, "lr"),
])
def test_refine_displacement_bad_settings(kwargs, error, words):
    f = torch.rand(1, 1, 12, 12)
    with pytest.raises(error, match=words):
        R.refine_displacement(f, f, torch.zeros(1, 2, 12, 12), **kwargs)


def test_refine_displacement_refuses_images_off_the_field_grid():
    with pytest.raises(ValueError, match="moving"):
        R.refine_displacement(torch.rand(1, 1, 12, 12), torch.rand(1, 1, 12, 11), torch.zeros(1, 2, 12, 12), 1)


@pytest.mark.skipif("register" not in available_heads(), reason="bundled weights 'register' missing")
def test_register_refine_bad_input_names_the_argument():
    fixed = _blob_volume(shape=(20, 20, 20))
    with pytest.raises(ValueError, match="refine"):
        recon.register(fixed, fixed, refine=-3)
    with pytest.raises(TypeError, match="refine"):
        recon.register(fixed, fixed, refine="many")
    with pytest.raises(ValueError, match="refine= is only used by method 'learned'"):
        recon.register(fixed, fixed, "affine", refine=5)
    with pytest.raises(ValueError, match=r"device must be a torch device such as 'cpu' or 'cuda', got 'gpu0'"):
        recon.register(fixed, fixed, device="gpu0")


def test_refine_transform_bad_device_fails_before_any_work():
    fixed = _blob_volume(shape=(20, 20, 20))
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    start = R.DeformableTransform(fixed.shape, affine, np.eye(4), None, np.eye(4), fixed.shape, affine)
    with pytest.raises(ValueError, match=r"device must be a torch device such as 'cpu' or 'cuda', got 'gpu0'"):
        R.refine_transform(start, fixed, fixed, levels=((4.0, 1),), device="gpu0")


def test_cli_register_refine_is_for_the_learned_method_only(tmp_path, capsys):
    from recon.cli import main
    from recon.data.io import save_nifti

    save_nifti(tmp_path / "f.nii.gz", _blob_volume(shape=(16, 16, 16)), affine=np.eye(4))
    code = main(["register", str(tmp_path / "f.nii.gz"), str(tmp_path / "f.nii.gz"), "-o", str(tmp_path / "w.nii.gz"),
                 "--method", "affine", "--refine", "5"])
    assert code == 2 and "--refine" in capsys.readouterr().err
    assert not (tmp_path / "w.nii.gz").exists()
