import numpy as np
import pytest
import sigpy.mri as mr
import torch

from recon.classical import cg_sense
from recon.ops import SenseOp, from_numpy, to_numpy


def _mask_tensor(mask):
    return torch.from_numpy(mask).double().view(1, 1, 1, -1, 1)


@pytest.mark.parametrize("columns", [True, False])
@pytest.mark.parametrize("shape", [(80, 63), (64, 48)])
def test_shifted_operator_equals_senseop(shape, columns, device):
    """The FFT-shifted complex operator is the reference SenseOp (odd and even sizes, column
    masks in hybrid space and general 2-D masks); forward and adjoint are adjoint."""
    gen = torch.Generator().manual_seed(0)
    maps = torch.randn(2, 3, *shape, 2, generator=gen, dtype=torch.float64).to(device)
    mask_shape = (2, 1, 1, shape[1], 1) if columns else (2, 1, *shape, 1)
    mask = (torch.rand(*mask_shape, generator=gen) < 0.5).double().to(device)
    kspace = torch.randn(2, 3, *shape, 2, generator=gen, dtype=torch.float64).to(device)
    image = torch.randn(2, 1, *shape, 2, generator=gen, dtype=torch.float64).to(device)
    ref = SenseOp(maps, mask)
    op = ref.shifted()
    x = op.to_shifted(torch.view_as_complex(image.contiguous()))
    torch.testing.assert_close(op.unshift(op.normal(x)), ref.normal(image), rtol=1e-10, atol=1e-10)
    rhs = op.adjoint(op.measured(kspace))
    torch.testing.assert_close(op.unshift(rhs), ref.adjoint(kspace), rtol=1e-10, atol=1e-10)
    assert op.columns == columns
    u = torch.randn(2, 3, *shape, dtype=torch.complex128, generator=gen).to(device)
    lhs = torch.vdot(op.forward(x).flatten(), u.flatten())
    rhs = torch.vdot(x.flatten(), op.adjoint(u).flatten())
    torch.testing.assert_close(lhs, rhs, rtol=1e-10, atol=1e-10)
    bound = (maps**2).sum(dim=(1, 4)).flatten(1).amax(dim=1)
    torch.testing.assert_close(ref.normal_bound().flatten(), bound, rtol=1e-12, atol=0)


@pytest.mark.parametrize("dtype,rtol", [(torch.float32, 1e-3), (torch.float64, 1e-8)])
def test_matches_sigpy_senserecon(phantom, column_mask, dtype, rtol):
    _, maps, kspace = phantom
    y = kspace * column_mask
    ref = mr.app.SenseRecon(
        y, maps, lamda=0.01, weights=column_mask.astype(np.float64), max_iter=25, show_pbar=False
    ).run()
    ours = cg_sense(
        from_numpy(y, dtype)[None], from_numpy(maps, dtype)[None], _mask_tensor(column_mask),
        lam=0.01, max_iter=25, tol=0, relative_lam=False,
    )
    out = to_numpy(ours[0, 0])
    assert np.linalg.norm(out - ref) / np.linalg.norm(ref) < rtol


def test_relative_lambda_is_scale_free(phantom, column_mask):
    _, maps, kspace = phantom
    k = from_numpy(kspace * column_mask, torch.float64)[None]
    m = from_numpy(maps, torch.float64)[None]
    a = cg_sense(k, m, lam=0.05, max_iter=40, tol=0)
    b = cg_sense(k, 3 * m, lam=0.05, max_iter=40, tol=0)  # maps x3 -> image / 3
    torch.testing.assert_close(3 * b, a, rtol=1e-6, atol=1e-9)


def test_fully_sampled_noiseless_recovers_the_image(phantom):
    image, maps, _ = phantom
    import sigpy as sp

    kspace = sp.fft(maps * image, axes=(-2, -1))
    out = cg_sense(from_numpy(kspace, torch.float64)[None], from_numpy(maps, torch.float64)[None],
                   lam=0, max_iter=100, tol=1e-12)
    support = np.abs(maps).sum(0) > 0
    np.testing.assert_allclose(to_numpy(out[0, 0])[support], image[support], atol=1e-8)


def test_batch_and_mask_none(phantom, column_mask, device):
    _, maps, kspace = phantom
    k = from_numpy(kspace * column_mask)[None].to(device)
    m = from_numpy(maps)[None].to(device)
    two = cg_sense(torch.cat([k, 2 * k]), torch.cat([m, m]))
    one = cg_sense(k, m, _mask_tensor(column_mask).float().to(device))
    torch.testing.assert_close(two[:1], one, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(two[1:], 2 * one, rtol=1e-4, atol=1e-6)


def test_errors(phantom):
    _, maps, kspace = phantom
    k = from_numpy(kspace)[None]
    m = from_numpy(maps)[None]
    with pytest.raises(ValueError, match="sens_maps must have the shape of kspace"):
        cg_sense(k, m[:, :3])
    with pytest.raises(ValueError, match="lam must be >= 0"):
        cg_sense(k, m, lam=-1.0)
    with pytest.raises(TypeError, match="max_iter must be an int"):
        cg_sense(k, m, max_iter=2.5)
    with pytest.raises(ValueError, match="tol must be >= 0"):
        cg_sense(k, m, tol=-1e-3)
    with pytest.raises(TypeError, match="lam must be a number"):
        cg_sense(k, m, lam="0.1")
    with pytest.raises(ValueError, match="kspace contains NaN or Inf"):
        cg_sense(k * float("inf"), m)
    with pytest.raises(ValueError, match="sens_maps contains NaN"):
        cg_sense(k, m * float("nan"))
    with pytest.raises(TypeError, match="kspace must be a torch.Tensor"):
        cg_sense(kspace, m)
    with pytest.raises(ValueError, match="does not broadcast"):
        cg_sense(k, m, torch.ones(1, 1, 1, 7, 1))


@pytest.mark.parametrize("shift", [(0, 0), (3, 0), (0, -2), (5, 7), (-33, 100)])
def test_roll2d_equals_torch_roll(shift):
    from recon.ops.linop import roll2d

    x = torch.arange(2 * 9 * 8, dtype=torch.float32).view(2, 9, 8)
    assert torch.equal(roll2d(x, *shift), torch.roll(x, shift, dims=(-2, -1)))
