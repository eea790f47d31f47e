"""The U-Net + 3-D ResNet ensemble of recon.synthesize (recon.heads.synthesis.ensemble_volume):
checked against each network's own forward pass, slice by slice and on the whole volume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import recon
from recon.heads.synthesis import ENSEMBLE_UNET_WEIGHT, SLICE_ENSEMBLE_WEIGHTS, ResNet3d, UnetSynthesizer, ensemble_volume
from recon.train.tasks_heads import available_heads

HEADS = available_heads()
BOTH = pytest.mark.skipif(not {"synthesis-unet-t1w-flair", "synthesis-resnet3d-t1w-flair"} <= set(HEADS),
                          reason="bundled T1w -> FLAIR weights missing")


def _volume(shape=(20, 24, 12), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    xx, yy, zz = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    r = np.sqrt(xx ** 2 + yy ** 2 + zz ** 2)
    vol = np.where(r < 0.8, 0.8, 0.0) + np.where(r < 0.4, 0.3, 0.0) + 0.05 * rng.random(shape)
    return vol.astype(np.float32)


def _per_slice(unet, vol: torch.Tensor) -> torch.Tensor:
    """The U-Net's forward on each axial slice vol[:, :, z], one at a time."""
    return torch.stack([unet(vol[:, :, z][None, None])[0, 0] for z in range(vol.shape[2])], dim=-1)


def _reference(unet, resnet, vol: torch.Tensor, weight: float, flip: bool) -> torch.Tensor:
    with torch.no_grad():
        u = _per_slice(unet, vol)
        r = resnet(vol[None, None])[0, 0]
        if flip:  # mirror along the first axis, predict, mirror back
            u = 0.5 * (u + _per_slice(unet, vol.flip(0)).flip(0))
            r = 0.5 * (r + resnet(vol.flip(0)[None, None])[0, 0].flip(0))
    return weight * u + (1 - weight) * r


@pytest.mark.parametrize("weight,flip", [(0.7, True), (0.25, False), (1.0, True), (0.0, False)])
def test_ensemble_volume_is_the_weighted_mean_of_the_two_forwards(weight, flip):
    torch.manual_seed(0)
    unet = UnetSynthesizer(chans=4, num_pool_layers=2).double().eval()
    resnet = ResNet3d(chans=4, num_blocks=1).double().eval()
    vol = torch.from_numpy(_volume()).double()
    out = ensemble_volume(unet, resnet, vol, unet_weight=weight, flip_average=flip, patch_size=32, batch_size=5)
    assert out.shape == vol.shape and out.dtype == torch.float64
    torch.testing.assert_close(out, _reference(unet, resnet, vol, weight, flip), rtol=1e-10, atol=1e-10)


def test_ensemble_volume_checks():
    unet, resnet = UnetSynthesizer(chans=2, num_pool_layers=1).eval(), ResNet3d(chans=2, num_blocks=0).eval()
    vol = torch.rand(8, 8, 8)
    with pytest.raises(ValueError, match=r"volume must be a 3-D tensor \(X, Y, Z\)"):
        ensemble_volume(unet, resnet, vol[:, :, 0])
    with pytest.raises(ValueError, match=r"unet_weight must be a number in \[0, 1\], got 1.5"):
        ensemble_volume(unet, resnet, vol, unet_weight=1.5)
    with pytest.raises(ValueError, match=r"unet_weight must be >= 0.0, got -0.5"):
        ensemble_volume(unet, resnet, vol, unet_weight=-0.5)
    with pytest.raises(ValueError, match="unet_weight must be finite"):
        ensemble_volume(unet, resnet, vol, unet_weight=float("nan"))
    with pytest.raises(TypeError, match="unet_weight must be a number"):
        ensemble_volume(unet, resnet, vol, unet_weight=True)
    with pytest.raises(TypeError, match="unet_weight must be a number"):
        ensemble_volume(unet, resnet, vol, unet_weight="0.5")
    # a numpy scalar is a weight like any other (it used to be refused as "not a number")
    with torch.no_grad():
        torch.testing.assert_close(ensemble_volume(unet, resnet, vol, unet_weight=np.float32(0.25)),
                                   ensemble_volume(unet, resnet, vol, unet_weight=0.25))
    with pytest.raises(TypeError, match="volume must be a torch.Tensor"):
        ensemble_volume(unet, resnet, vol.numpy())


def test_ensemble_weight_is_the_documented_validation_choice():
    assert ENSEMBLE_UNET_WEIGHT == 0.7


@BOTH
def test_synthesize_ensemble_matches_the_bundled_networks_run_by_hand():
    from recon.train.tasks_heads import load_head

    vol = _volume((24, 28, 10))
    scale = vol[vol > vol.mean()].astype(np.float64).mean()  # foreground mean, computed here
    x = torch.from_numpy(vol / scale).double()
    unet = load_head("synthesis-unet-t1w-flair")[0].double()
    resnet = load_head("synthesis-resnet3d-t1w-flair")[0].double()
    want = _reference(unet, resnet, x, 0.7, True).numpy()
    others = ("synthesis-unet-t1w-flair-c12", "synthesis-unet-t1w-flair-c12s2")
    if set(others) <= set(HEADS):  # the slice path is the U-Nets' slice ensemble (the reference is linear in each)
        want = SLICE_ENSEMBLE_WEIGHTS[0] * want + sum(
            w * _reference(load_head(n)[0].double(), resnet, x, 0.7, True).numpy()
            for w, n in zip(SLICE_ENSEMBLE_WEIGHTS[1:], others))
    got = recon.synthesize(vol * 37.0, source="t1", target="flair", method="ensemble", patch_size=32)
    assert got.dtype == np.float32 and got.shape == vol.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    # the default for a volume is the ensemble; unet / resnet3d are its two parts
    np.testing.assert_allclose(recon.synthesize(vol, source="t1", target="flair", patch_size=32), got, rtol=1e-5, atol=1e-5)
    u = recon.synthesize(vol, source="t1", target="flair", method="unet")
    r = recon.synthesize(vol, source="t1", target="flair", method="resnet3d", patch_size=32)
    np.testing.assert_allclose(got, 0.7 * u + 0.3 * r, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(u, recon.synthesize(vol, source="t1", target="flair", dims=2))


@BOTH
def test_synthesize_ensemble_torch_in_torch_out():
    vol = torch.from_numpy(_volume((16, 16, 9)))
    out = recon.synthesize(vol, source="t1", target="flair", method="ensemble")
    assert isinstance(out, torch.Tensor) and out.shape == vol.shape and torch.isfinite(out).all()


SLICE = _volume()[:, :, 6]
VOLUME = _volume()


@pytest.mark.parametrize("kwargs,message", [
    (dict(image=VOLUME, method="bogus"), r"method must be one of 'ensemble', 'unet', 'resnet3d' or None, got 'bogus'"),
    (dict(image=VOLUME, method=3), r"method must be one of 'ensemble', 'unet', 'resnet3d' or None, got 3"),
    (dict(image=VOLUME, method="unet", dims=2), r"give method or dims, not both.*method='unet' and dims=2"),
    (dict(image=VOLUME, method="ensemble", dims=3), "give method or dims, not both"),
    (dict(image=SLICE, method="ensemble"), r"method='ensemble' .*3-D-only ResNet3d and needs an \(X, Y, Z\) volume, "
                                           "but image is a 2-D slice"),
    (dict(image=SLICE, method="resnet3d"), r"method='resnet3d' asks for the 3-D-only ResNet3d, but image is a 2-D slice"),
    (dict(image=VOLUME, method="ensemble", weights="synthesis-unet-t1w-flair"),
     r"method='ensemble' averages the pair's two bundled networks, so weights must be None"),
    (dict(image=VOLUME, source="flair", target="pd", method="ensemble"),
     r"no bundled weights for source='flair' -> target='pd' with method='ensemble'.*available"),
])
def test_synthesize_method_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        recon.synthesize(**kwargs)


@BOTH
def test_synthesize_method_must_match_given_weights():
    with pytest.raises(ValueError, match=r"method='resnet3d' asks for the 3-D ResNet, but weights .* 2-D slice network"):
        recon.synthesize(VOLUME, weights="synthesis-unet-t1w-flair", method="resnet3d")
    with pytest.raises(ValueError, match=r"method='unet' asks for a slice network, but the weights are the 3-D-only"):
        recon.synthesize(VOLUME, weights="synthesis-resnet3d-t1w-flair", method="unet")


@BOTH
def test_cli_synthesize_method(tmp_path, capsys):
    from recon.cli import main
    from recon.data.io import load_nifti, save_nifti

    vol = _volume((16, 20, 9))
    save_nifti(tmp_path / "t1.nii.gz", vol, affine=np.diag([2.0, 2.0, 2.0, 1.0]))
    for method in ("ensemble", "unet", "resnet3d"):
        assert main(["synthesize", str(tmp_path / "t1.nii.gz"), "-o", str(tmp_path / f"{method}.nii.gz"),
                     "--method", method]) == 0
        out, _, _ = load_nifti(tmp_path / f"{method}.nii.gz")
        np.testing.assert_allclose(out, recon.synthesize(vol, source="t1", target="flair", method=method),
                                   rtol=1e-5, atol=1e-5)
    default, _, _ = load_nifti(tmp_path / "ensemble.nii.gz")
    assert main(["synthesize", str(tmp_path / "t1.nii.gz"), "-o", str(tmp_path / "d.nii.gz")]) == 0
    np.testing.assert_array_equal(load_nifti(tmp_path / "d.nii.gz")[0], default)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:  # an argparse usage error: one line, status 2
        main(["synthesize", str(tmp_path / "t1.nii.gz"), "-o", str(tmp_path / "x.nii.gz"), "--method", "gan"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--method" in err and "ensemble" in err and "resnet3d" in err
