"""recon.train.ssdu: the Theta/Lambda split, the normalised L1-L2 loss, the k-space hook,
a tiny self-supervised run, and the TrainConfig / CLI wiring."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recon.models import CascadeNet, VarNet
from recon.ops import ifft2c
from recon.train import TrainConfig
from recon.train.cli import build_parser, config_from_args
from recon.train.ssdu import SSDU, kspace_forward, ssdu_loss, ssdu_split


def _mask(width=64, step=4, low=8, batch=1):
    cols = torch.zeros(width, dtype=torch.bool)
    cols[::step] = True
    start = (width - low + 1) // 2
    cols[start:start + low] = True
    return cols.view(1, 1, 1, width, 1).expand(batch, 1, 1, width, 1).clone(), low


def _gen(seed):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("selection", ["gaussian", "uniform"])
@pytest.mark.parametrize("rho", [0.2, 0.4, 0.6])
def test_split_is_a_partition_with_the_requested_ratio(selection, rho):
    mask, low = _mask()
    theta, lam = ssdu_split(mask, (48, 64), rho=rho, selection=selection, num_low_frequencies=low, generator=_gen(0),
                            unit="points")
    omega = mask.expand(1, 1, 48, 64, 1)
    assert theta.shape == lam.shape == (1, 1, 48, 64, 1)
    assert not (theta & lam).any()
    assert torch.equal(theta | lam, omega)
    assert int(lam.sum()) == round(rho * int(omega.sum()))
    # the ACS columns stay in Theta
    start = (64 - low + 1) // 2
    assert theta[..., start:start + low, :].all()


def test_split_is_seeded():
    mask, low = _mask(batch=2)
    a = ssdu_split(mask, (32, 64), num_low_frequencies=low, generator=_gen(1), unit="points")
    b = ssdu_split(mask, (32, 64), num_low_frequencies=low, generator=_gen(1), unit="points")
    c = ssdu_split(mask, (32, 64), num_low_frequencies=low, generator=_gen(2), unit="points")
    assert torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])
    assert not torch.equal(a[1][0], a[1][1])  # each sample its own split


def test_gaussian_selection_favours_the_centre():
    mask, low = _mask(width=128, step=2, low=4)
    dist = {}
    for selection in ("gaussian", "uniform"):
        _, lam = ssdu_split(mask, (128, 128), rho=0.3, selection=selection, num_low_frequencies=low, generator=_gen(3),
                            unit="points")
        rows, cols = torch.nonzero(lam[0, 0, :, :, 0], as_tuple=True)
        dist[selection] = float(((rows - 64.0) ** 2 + (cols - 64.0) ** 2).sqrt().mean())
    assert dist["gaussian"] < 0.8 * dist["uniform"]


def test_centre_found_from_the_mask_when_not_given():
    mask, low = _mask(width=64, step=5, low=10)
    theta, _ = ssdu_split(mask, (16, 64), rho=0.5, num_low_frequencies=None, generator=_gen(0))
    start = (64 - low + 1) // 2
    assert theta[..., start:start + low, :].all()


def test_loss_matches_numpy_closed_form():
    rng = np.random.default_rng(0)
    pred = rng.standard_normal((2, 3, 8, 10, 2))
    ref = rng.standard_normal((2, 3, 8, 10, 2))
    lam = rng.random((2, 1, 8, 10, 1)) < 0.3
    expected = 0.0
    for b in range(2):
        r = ((ref[b] - pred[b]) * lam[b]).ravel()
        y = (ref[b] * lam[b]).ravel()
        expected += np.linalg.norm(r) / np.linalg.norm(y) + np.abs(r).sum() / np.abs(y).sum()
    got = ssdu_loss(torch.from_numpy(pred), torch.from_numpy(ref), torch.from_numpy(lam))
    assert float(got) == pytest.approx(expected / 2, rel=1e-12)


@pytest.mark.parametrize("model", [
    VarNet(num_cascades=2, chans=4, pools=2, sens_chans=2, sens_pools=1),
    CascadeNet(num_cascades=2, num_convs=2, num_filters=4, sens_chans=2, sens_pools=1),
])
def test_kspace_forward_returns_the_last_cascade(model):
    torch.manual_seed(0)
    kspace = torch.randn(1, 4, 16, 24, 2)
    mask, low = _mask(width=24, step=3, low=4)
    image, kpred = kspace_forward(model, kspace * mask, mask, low)
    assert kpred.shape == kspace.shape
    torch.testing.assert_close(image, ifft2c(kpred).square().sum(dim=(1, 4)).sqrt())


def test_kspace_forward_refuses_image_models():
    from recon.models import Unet

    with pytest.raises(TypeError, match="last cascade returns the multi-coil k-space"):
        kspace_forward(Unet(1, 1, 4, 1), torch.zeros(1, 2, 8, 8, 2), torch.ones(1, 1, 1, 8, 1, dtype=torch.bool))


class _Batch:
    def __init__(self, kspace, mask, low):
        self.masked_kspace, self.mask, self.num_low_frequencies = kspace * mask, mask, low


def test_tiny_ssdu_training_decreases_the_loss():
    from recon.data.phantom import Subject

    image = Subject(seed=1, anatomy="mni152", voxel_size=(4.0, 4.0, 4.0), z_range=(20, 21)).contrast("t2w").volume[..., 0]
    image = torch.from_numpy(np.ascontiguousarray(image[8:40, 8:40])).float()
    h, w = image.shape
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    maps = torch.stack([torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2)) for cy, cx in ((-1, -1), (-1, 1), (1, -1), (1, 1))])
    coil = torch.stack([maps * image, torch.zeros_like(maps)], dim=-1)  # real image, 4 coils
    from recon.ops import fft2c

    kspace = fft2c(coil)[None] / image.max()
    mask, low = _mask(width=w, step=2, low=6)
    torch.manual_seed(0)
    model = VarNet(num_cascades=2, chans=8, pools=2, sens_chans=2, sens_pools=1)
    ssdu = SSDU(rho=0.4, selection="uniform", seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    batch = _Batch(kspace, mask, low)
    losses = [ssdu.train_step(model, batch, optimizer=opt, device=torch.device("cpu")) for _ in range(25)]
    assert np.mean(losses[-5:]) < 0.9 * np.mean(losses[:5])


@pytest.mark.parametrize("rho", [0.0, 1.0, -0.2, 1.5, float("nan"), "0.4", True])
def test_rho_outside_the_open_unit_interval(rho):
    mask, _ = _mask()
    with pytest.raises(ValueError, match=r"rho .* must be in \(0, 1\)"):
        ssdu_split(mask, (8, 64), rho=rho, generator=_gen(0))
    with pytest.raises(ValueError, match=r"rho .* must be in \(0, 1\)"):
        SSDU(rho=rho)


def test_bad_split_arguments():
    mask, _ = _mask()
    with pytest.raises(ValueError, match="selection must be one of"):
        ssdu_split(mask, (8, 64), selection="poisson", generator=_gen(0))
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        ssdu_split(mask, (8, 64))
    with pytest.raises(ValueError, match="does not fit k-space"):
        ssdu_split(mask, (8, 32), generator=_gen(0))
    with pytest.raises(ValueError, match="mask must be a"):
        ssdu_split(mask[0], (8, 64), generator=_gen(0))


def test_train_config_and_cli():
    kwargs = dict(model="varnet", model_kwargs={"num_cascades": 1})
    config = TrainConfig(**kwargs, self_supervised="ssdu", ssdu_rho=0.3, ssdu_selection="uniform")
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="TrainConfig.ssdu_rho must be a number in"):
        TrainConfig(**kwargs, self_supervised="ssdu", ssdu_rho=1.0)
    with pytest.raises(ValueError, match="TrainConfig.self_supervised must be"):
        TrainConfig(**kwargs, self_supervised="noise2noise")
    with pytest.raises(ValueError, match="TrainConfig.self_supervised must be None for the image-domain model"):
        TrainConfig(model="unet", self_supervised="ssdu")
    with pytest.raises(ValueError, match="TrainConfig.ssdu_selection"):
        TrainConfig(**kwargs, ssdu_selection="poisson")
    args = build_parser().parse_args(["--self-supervised", "ssdu", "--ssdu-rho", "0.25", "--ssdu-selection", "uniform"])
    parsed = config_from_args(args)
    assert (parsed.self_supervised, parsed.ssdu_rho, parsed.ssdu_selection) == ("ssdu", 0.25, "uniform")


def test_small_acs_block_as_the_papers_code():
    mask, low = _mask(width=64, step=4, low=8)
    theta, lam = ssdu_split(mask, (32, 64), rho=0.6, selection="gaussian", num_low_frequencies=low,
                            generator=_gen(0), acs_block=(4, 4), unit="points")
    assert theta[0, 0, 14:18, 30:34, 0].all()  # the central 4 x 4 block stays in Theta
    start = (64 - low + 1) // 2
    assert lam[0, 0, :, start:start + low, 0].any()  # the rest of the centre may be in Lambda
    assert torch.equal(theta | lam, mask.expand(1, 1, 32, 64, 1))
    with pytest.raises(ValueError, match="acs_block must be None or"):
        SSDU(acs_block=(4,))


@pytest.mark.parametrize("selection", ["gaussian", "uniform"])
def test_column_unit_splits_whole_lines(selection):
    mask, low = _mask(width=64, step=2, low=8)
    theta, lam = ssdu_split(mask, (16, 64), rho=0.4, selection=selection, num_low_frequencies=low,
                            generator=_gen(5), unit="columns")
    omega = mask.expand(1, 1, 16, 64, 1)
    assert torch.equal(theta | lam, omega) and not (theta & lam).any()
    lam_cols = lam[0, 0, :, :, 0]
    assert torch.equal(lam_cols.any(0), lam_cols.all(0))  # whole columns
    assert int(lam_cols.any(0).sum()) == round(0.4 * int(mask.sum()))
    start = (64 - low + 1) // 2
    assert not lam_cols[:, start:start + low].any()
    with pytest.raises(ValueError, match="unit must be one of"):
        ssdu_split(mask, (16, 64), generator=_gen(0), unit="rows")
    # auto = columns for a column mask, points for a 2-D mask; columns refuse a 2-D mask
    auto = ssdu_split(mask, (16, 64), rho=0.4, num_low_frequencies=low, generator=_gen(5), selection=selection)
    assert torch.equal(auto[1], lam)
    mask_2d = mask.expand(1, 1, 16, 64, 1).clone()
    _, lam_2d = ssdu_split(mask_2d, (16, 64), rho=0.4, num_low_frequencies=low, generator=_gen(5))
    assert int(lam_2d.sum()) == round(0.4 * int(mask_2d.sum()))
    with pytest.raises(ValueError, match="unit='columns' needs a column mask"):
        ssdu_split(mask_2d, (16, 64), generator=_gen(0), unit="columns")
