"""Spatial augmentation against independent references (scipy.ndimage, scipy B-splines, numpy)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recon.preprocess.augment import (
    Affine,
    CenterCrop,
    Compose,
    Crop,
    Elastic,
    Flip,
    Pad,
    RandomAffine,
    RandomCrop,
    RandomElastic,
    RandomFlip,
)

ndi = pytest.importorskip("scipy.ndimage")


def _volume(shape=(17, 20, 23), seed=0):
    return np.random.default_rng(seed).random(shape)


def _voxel_map(F: np.ndarray, shape, affine=None):
    """Output-voxel -> input-voxel matrix of a forward matrix F in centred world coordinates."""
    nd = len(shape)
    A = np.eye(nd + 1) if affine is None else affine
    c_vox = (np.array(shape) - 1) / 2
    c_w = A[:nd, :nd] @ c_vox + A[:nd, nd]
    T = np.eye(nd + 1)
    T[:nd, nd] = -c_w
    Ti = np.eye(nd + 1)
    Ti[:nd, nd] = c_w
    return np.linalg.inv(A) @ Ti @ np.linalg.inv(F) @ T @ A


def _inside(Mv: np.ndarray, shape, margin=0.0):
    nd = len(shape)
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1)
    src = idx @ Mv[:nd, :nd].T + Mv[:nd, nd]
    return np.all((src >= margin) & (src <= np.array(shape) - 1 - margin), -1)


def _scipy_affine(x, Mv):
    nd = x.ndim
    return ndi.affine_transform(x, Mv[:nd, :nd], Mv[:nd, nd], order=1, mode="constant", cval=0.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(rotation=(5, -7, 12), scale=(1.1, 0.9, 1.05), translation=(1.5, -2, 0.5), shear=(0.05, 0, -0.03)),
        dict(rotation=(0, 0, 30)),
        dict(scale=0.8),
        dict(translation=(0.3, 0.7, -1.2)),
    ],
)
def test_affine_matches_scipy_affine_transform(kwargs):
    x = _volume()
    t = Affine(**kwargs)
    out = t(torch.from_numpy(x)[None])[0].numpy()
    Mv = _voxel_map(t.forward_matrix(3).numpy(), x.shape)
    ref = _scipy_affine(x, Mv)
    inside = _inside(Mv, x.shape)
    assert inside.mean() > 0.3
    np.testing.assert_allclose(out[inside], ref[inside], atol=1e-10)


def test_affine_world_coordinates_with_anisotropic_nifti_affine():
    x = _volume((15, 22, 19), seed=1)
    A = np.array([[0.0, 0.0, 1.2, -10.0], [2.0, 0.0, 0.0, 5.0], [0.0, -0.9, 0.0, 30.0], [0, 0, 0, 1]])
    t = Affine(rotation=(8, -4, 15), scale=(1.05, 0.95, 1.0), translation=(2.0, -3.0, 1.0))
    out = t({"img": torch.from_numpy(x)[None], "affine": A})
    assert np.array_equal(out["affine"], A)  # the grid is kept
    Mv = _voxel_map(t.forward_matrix(3).numpy(), x.shape, A)
    ref = _scipy_affine(x, Mv)
    inside = _inside(Mv, x.shape)
    np.testing.assert_allclose(out["img"][0].numpy()[inside], ref[inside], atol=1e-10)


def test_affine_2d_matches_scipy_and_float32_tolerance():
    x = _volume((31, 27))
    t = Affine(rotation=20, scale=(1.1, 0.95), translation=(1.0, -2.0), shear=0.1)
    Mv = _voxel_map(t.forward_matrix(2).numpy(), x.shape)
    ref = _scipy_affine(x, Mv)
    inside = _inside(Mv, x.shape)
    out64 = t(torch.from_numpy(x)[None])[0].numpy()
    np.testing.assert_allclose(out64[inside], ref[inside], atol=1e-10)
    out32 = t(torch.from_numpy(x).float()[None])[0].numpy()
    np.testing.assert_allclose(out32[inside], ref[inside], atol=1e-4)


def test_inverse_undoes_the_affine():
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, n) for n in (24, 28, 26)], indexing="ij")
    vol = torch.from_numpy(np.exp(-(x**2 + y**2 + z**2) * 3))[None]
    t = Affine(rotation=(10, -5, 20), scale=1.1, translation=(1, 2, -1))
    back = t.inverse()(t(vol))
    np.testing.assert_allclose(back[0, 6:-6, 6:-6, 6:-6].numpy(), vol[0, 6:-6, 6:-6, 6:-6].numpy(), atol=3e-2)  # two linear interpolations blur
    F = t.forward_matrix(3)
    np.testing.assert_allclose((t.inverse().forward_matrix(3) @ F).numpy(), np.eye(4), atol=1e-12)


def _bspline_dense_reference(coeffs: np.ndarray, shape):
    """Dense cubic B-spline field with scipy.interpolate.BSpline (uniform knots, mesh n - 3)."""
    from scipy.interpolate import BSpline

    bases = []
    for n, m in zip(shape, coeffs.shape[:-1]):
        mesh = m - 3
        knots = np.arange(-3, mesh + 4, dtype=float)  # m + 4 knots for m cubic B-splines on [0, mesh]
        u = np.arange(n) * mesh / (n - 1)
        u = np.minimum(u, mesh - 1e-12)
        basis = np.stack([BSpline(knots, np.eye(m)[k], 3, extrapolate=False)(u) for k in range(m)], -1)
        bases.append(np.nan_to_num(basis))
    out = coeffs
    for axis, b in enumerate(bases):
        out = np.moveaxis(np.tensordot(b, np.moveaxis(out, axis, 0), axes=(1, 0)), 0, axis)
    return out


def test_elastic_matches_scipy_bspline_and_map_coordinates():
    x = _volume((15, 16, 14), seed=2)
    rng = np.random.default_rng(3)
    disp = rng.uniform(-1.5, 1.5, (5, 6, 5, 3))
    out = Elastic(torch.from_numpy(disp))(torch.from_numpy(x)[None])[0].numpy()
    field = _bspline_dense_reference(disp, x.shape)
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in x.shape], indexing="ij"), -1).astype(float)
    pts = idx + field
    ref = ndi.map_coordinates(x, np.moveaxis(pts, -1, 0), order=1, mode="constant", cval=0.0)
    inside = np.all((pts >= 0) & (pts <= np.array(x.shape) - 1), -1)
    np.testing.assert_allclose(out[inside], ref[inside], atol=1e-9)


def test_constant_elastic_field_is_a_translation():
    x = _volume((12, 13, 14))
    disp = torch.zeros(6, 6, 6, 3, dtype=torch.float64)
    disp[..., :] = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    out = Elastic(disp)(torch.from_numpy(x)[None])[0].numpy()
    ref = ndi.shift(x, (-1.0, 2.0, -0.5), order=1, mode="constant", cval=0.0)
    np.testing.assert_allclose(out[2:-3, 3:-3, 1:-2], ref[2:-3, 3:-3, 1:-2], atol=1e-10)


def test_compose_fuses_affine_chain_into_one_interpolation():
    x = _volume((18, 19, 20), seed=4)
    a1, a2 = Affine(rotation=(0, 0, 15), translation=(1, 0, 0)), Affine(scale=1.1, rotation=(5, 0, 0))
    out = Compose([a1, a2])(torch.from_numpy(x)[None])[0].numpy()
    F = a2.forward_matrix(3).numpy() @ a1.forward_matrix(3).numpy()  # a1 first, then a2
    Mv = _voxel_map(F, x.shape)
    ref = _scipy_affine(x, Mv)  # one interpolation
    inside = _inside(Mv, x.shape)
    np.testing.assert_allclose(out[inside], ref[inside], atol=1e-10)


@pytest.mark.parametrize("shape", [(14, 16, 15), (15, 16, 14)])  # odd depth: padded slabs
def test_compose_affine_then_elastic_is_one_interpolation_at_the_composed_points(shape):
    x = _volume(shape, seed=5)
    disp = np.random.default_rng(6).uniform(-1, 1, (5, 5, 5, 3))
    aff = Affine(rotation=(4, -6, 10), scale=1.05, translation=(0.5, -1, 0))
    out = Compose([aff, Elastic(torch.from_numpy(disp))])(torch.from_numpy(x)[None])[0].numpy()
    # content: affine first, then elastic => sample input at S_A(p + u(p))
    field = _bspline_dense_reference(disp, x.shape)
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in x.shape], indexing="ij"), -1).astype(float)
    Mv = _voxel_map(aff.forward_matrix(3).numpy(), x.shape)
    pts = (idx + field) @ Mv[:3, :3].T + Mv[:3, 3]
    ref = ndi.map_coordinates(x, np.moveaxis(pts, -1, 0), order=1, mode="constant", cval=0.0)
    inside = np.all((pts >= 0) & (pts <= np.array(x.shape) - 1), -1)
    np.testing.assert_allclose(out[inside], ref[inside], atol=1e-9)


def test_compose_elastic_then_affine_matches_reference_closely():
    x = _volume((14, 16, 15), seed=7)
    x = ndi.gaussian_filter(x, 2.0)  # smooth, so the linearly interpolated dense field is accurate
    disp = np.random.default_rng(8).uniform(-1, 1, (5, 5, 5, 3))
    aff = Affine(rotation=(0, 0, 10))
    out = Compose([Elastic(torch.from_numpy(disp)), aff])(torch.from_numpy(x)[None])[0].numpy()
    field = _bspline_dense_reference(disp, x.shape)
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in x.shape], indexing="ij"), -1).astype(float)
    Mv = _voxel_map(aff.forward_matrix(3).numpy(), x.shape)
    q = idx @ Mv[:3, :3].T + Mv[:3, 3]  # affine sampled first, then the field at the moved points
    u = np.stack([ndi.map_coordinates(field[..., k], np.moveaxis(q, -1, 0), order=3, mode="nearest") for k in range(3)], -1)
    pts = q + u
    ref = ndi.map_coordinates(x, np.moveaxis(pts, -1, 0), order=1, mode="constant", cval=0.0)
    inside = np.all((pts >= 1) & (pts <= np.array(x.shape) - 2), -1) & np.all((q >= 0) & (q <= np.array(x.shape) - 1), -1)
    np.testing.assert_allclose(out[inside], ref[inside], atol=2e-3)


def test_flips_are_exact():
    x = torch.randn(2, 5, 6, 7)
    np.testing.assert_array_equal(Flip((0, 2))(x).numpy(), np.flip(x.numpy(), (1, 3)))
    np.testing.assert_array_equal(Flip(-1)(x[:, 0]).numpy(), np.flip(x[:, 0].numpy(), 2))
    np.testing.assert_array_equal(RandomFlip(axes=(0, 1, 2), p=1.0)(x).numpy(), np.flip(x.numpy(), (1, 2, 3)))
    np.testing.assert_array_equal(RandomFlip(axes=(0, 1, 2), p=0.0)(x).numpy(), x.numpy())


def test_crops_and_pads_are_exact_and_keep_world_positions():
    x = torch.randn(1, 9, 10, 11)
    A = np.diag([2.0, 1.5, 1.0, 1.0])
    A[:3, 3] = (-5, 7, 1)
    out = Crop((1, 2, 3), (4, None, 5))({"x": x, "affine": A})
    np.testing.assert_array_equal(out["x"].numpy(), x.numpy()[:, 1:5, 2:, 3:8])
    np.testing.assert_allclose(out["affine"] @ [0, 0, 0, 1], A @ [1, 2, 3, 1])
    c = CenterCrop((None, 6, 7))(x)
    np.testing.assert_array_equal(c.numpy(), x.numpy()[:, :, 2:8, 2:9])
    p = Pad(((1, 2), (0, 0), (3, 1)), value=-1.0)({"x": x, "affine": A})
    np.testing.assert_array_equal(p["x"].numpy(), np.pad(x.numpy(), ((0, 0), (1, 2), (0, 0), (3, 1)), constant_values=-1.0))
    np.testing.assert_allclose(p["affine"] @ [1, 0, 3, 1], A @ [0, 0, 0, 1])


def test_random_crop_keeps_one_axis_whole_and_is_a_window():
    x = torch.arange(8 * 9 * 10, dtype=torch.float32).reshape(1, 8, 9, 10)
    out, params = RandomCrop((None, 4, 5))(x, generator=torch.Generator().manual_seed(0), return_params=True)
    s = params["start"][0].tolist()
    assert s[0] == 0 and out.shape == (1, 8, 4, 5)
    np.testing.assert_array_equal(out.numpy(), x.numpy()[:, :, s[1]:s[1] + 4, s[2]:s[2] + 5])


def test_batch_gets_one_grid_per_sample_in_one_call(device):
    g = torch.Generator(device=device).manual_seed(1)
    x = torch.rand(3, 2, 12, 13, 14, device=device)
    t = Compose([RandomAffine(degrees=15, translation=2), RandomElastic(num_control_points=5, max_displacement=2)])
    out, params = t(x, generator=g, batched=True, return_params=True)
    assert out.shape == x.shape and out.device == x.device
    assert not torch.allclose(params[0]["rotation"][0], params[0]["rotation"][1])
    for i in range(3):
        single = [{k: v[i:i + 1] for k, v in p.items()} for p in params]
        torch.testing.assert_close(t.replay(x[i], single), out[i], atol=1e-6, rtol=0)


def test_replay_is_bit_for_bit_and_deterministic_equivalent():
    x = torch.rand(1, 16, 18, 17)
    t = RandomAffine(degrees=10, scales=0.1, translation=3)
    out, params = t(x, generator=torch.Generator().manual_seed(5), return_params=True)
    assert torch.equal(t.replay(x, params), out)
    assert torch.equal(t.deterministic(params)(x), out)
    e = RandomElastic(num_control_points=6, max_displacement=2.0)
    out, params = e(x, generator=torch.Generator().manual_seed(5), return_params=True)
    assert torch.equal(e.replay(x, params), out)
    assert torch.equal(Elastic(params["displacement"][0])(x), out)


def test_random_affine_ranges_and_generator_reproducibility():
    x = torch.rand(1, 8, 9, 10)
    t = RandomAffine(degrees=(-5, 5, 0, 0, 10, 20), scales=(0.9, 1.2), translation=4)
    _, p = t(x, generator=torch.Generator().manual_seed(0), batched=False, return_params=True)
    _, q = t(x, generator=torch.Generator().manual_seed(0), return_params=True)
    assert all(torch.equal(p[k], q[k]) for k in p)
    r = p["rotation"][0]
    assert -5 <= r[0] <= 5 and r[1] == 0 and 10 <= r[2] <= 20
    assert ((p["scale"] >= 0.9) & (p["scale"] <= 1.2)).all()
    assert (p["translation"].abs() <= 4).all()


def test_random_elastic_locks_borders_and_bounds_displacement():
    x = torch.rand(1, 10, 10, 10)
    _, p = RandomElastic(7, 3.0, locked_borders=2)(x, generator=torch.Generator().manual_seed(0), return_params=True)
    d = p["displacement"][0]
    assert d.abs().max() <= 3.0
    for axis in range(3):
        for i in (0, 1, 5, 6):
            assert d.select(axis, i).abs().max() == 0


def test_2d_slices_linear_nearest_and_cubic():
    x = torch.from_numpy(_volume((1, 25, 30))).float()
    for interp in ("linear", "nearest", "cubic"):
        out = Affine(rotation=10, interpolation=interp)(x)
        assert out.shape == x.shape
    with pytest.raises(ValueError, match="cubic"):
        Affine(rotation=(0, 0, 10), interpolation="cubic")(torch.rand(1, 6, 6, 6))


def test_nearest_2d_matches_scipy_order0():
    x = _volume((21, 19))
    t = Affine(rotation=17, translation=(0.3, 0.2), interpolation="nearest")
    out = t(torch.from_numpy(x)[None])[0].numpy()
    Mv = _voxel_map(t.forward_matrix(2).numpy(), x.shape)
    ref = ndi.affine_transform(x, Mv[:2, :2], Mv[:2, 2], order=0, mode="constant")
    inside = _inside(Mv, x.shape, margin=1)
    assert (out[inside] == ref[inside]).mean() > 0.99  # ties at exact .5 may round differently


def test_result_does_not_depend_on_the_thread_count():
    x = torch.rand(1, 15, 16, 14)  # odd depth: padded slabs with several threads
    for t in (Compose([RandomAffine(degrees=10, translation=2), RandomElastic(6, 2.0)]), RandomAffine(translation=2)):
        out, params = t(x, generator=torch.Generator().manual_seed(0), return_params=True)
        threads = torch.get_num_threads()
        try:
            torch.set_num_threads(1)  # no depth slabs
            single = t.replay(x, params)
        finally:
            torch.set_num_threads(threads)
        assert torch.equal(single, out)  # bit for bit: DataLoader workers run with one thread


def test_random_crop_batch_gets_one_window_per_sample_and_its_affine():
    x = torch.arange(3 * 10 * 11 * 12, dtype=torch.float32).reshape(3, 1, 10, 11, 12)
    A = np.eye(4)
    out, params = RandomCrop((4, None, 5))({"x": x, "affine": A}, generator=torch.Generator().manual_seed(2),
                                           batched=True, return_params=True)
    starts = params["start"].tolist()
    assert len({tuple(s) for s in starts}) > 1
    for b, (i, j, k) in enumerate(starts):
        np.testing.assert_array_equal(out["x"][b].numpy(), x[b].numpy()[:, i:i + 4, :, k:k + 5])
        np.testing.assert_allclose(out["affine"][b][:3, 3], [i, j, k])


def test_2d_slice_with_a_4x4_affine_keeps_the_third_axis():
    A = np.array([[0.5, 0, 0, 10.0], [0, 0.7, 0, -3.0], [0, 0, 2.0, 40.0], [0, 0, 0, 1]])
    out = Crop((2, 3), (5, 6))({"s": torch.rand(1, 12, 13), "affine": A})
    expected = A.copy()
    expected[:3, 3] = (A @ np.array([2, 3, 0, 1]))[:3]
    np.testing.assert_allclose(out["affine"], expected)
    assert out["s"].shape == (1, 5, 6)
