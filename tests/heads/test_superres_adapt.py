"""Self-supervised adaptation of the thick-slice network to one volume (SMORE;
recon.heads.superres.adapt_through_plane, ``recon.super_resolve(..., adapt=...)``), against
independent references: numpy FFT sinc interpolation in float64, the truth of a synthetic volume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import recon
from recon.heads.superres import MultiScaleFusionSR, adapt_through_plane, kspace_truncate, upscale_image


def _np_sinc_z(lr: np.ndarray, s: int) -> np.ndarray:
    """Zero-filled interpolation along the last axis by a direct trigonometric sum in float64 (no
    FFT): the frequencies a centred n-point DFT holds (k = -n//2 .. n - n//2 - 1), HR voxel i at LR
    coordinate (i - (s - 1) / 2) / s; magnitude."""
    n = lr.shape[-1]
    t = (np.arange(n * s) - (s - 1) / 2) / s
    k = np.arange(-(n // 2), n - n // 2)
    j = np.arange(n)
    basis = np.exp(2j * np.pi * k[None, None, :] * (t[:, None, None] - j[None, :, None]) / n).sum(-1) / n
    return np.abs(lr.astype(np.complex128) @ basis.T)


def _blocks(shape, seed: int = 0) -> np.ndarray:
    """Piecewise-constant random boxes on a background: the same statistics along every axis."""
    rng = np.random.default_rng(seed)
    vol = np.full(shape, 0.2)
    for _ in range(40):
        lo = [int(rng.integers(0, n - 4)) for n in shape]
        size = [int(rng.integers(3, 10)) for _ in shape]
        vol[tuple(slice(a, a + b) for a, b in zip(lo, size))] = rng.uniform(0.4, 1.5)
    return vol


def _taper(vol: np.ndarray, width: int = 4) -> np.ndarray:
    out = vol.copy()
    for axis, n in enumerate(vol.shape):
        w = np.ones(n)
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(width) + 0.5) / width)
        w[:width], w[n - width:] = ramp, ramp[::-1]
        shape = [1] * vol.ndim
        shape[axis] = n
        out = out * w.reshape(shape)
    return out


def _psnr(truth: np.ndarray, pred: np.ndarray) -> float:
    return float(10 * np.log10(truth.max() ** 2 / np.mean((truth - pred) ** 2)))


def test_adaptation_beats_sinc_on_a_volume_with_the_same_statistics_in_every_direction():
    """Boxes (sharp edges along every axis), 2x thick along z: an untrained residual-to-sinc network
    is the numpy sinc interpolation; fine-tuned on the volume's own X-Y planes degraded along X or Y,
    it removes part of the ringing along z (PSNR against the truth above sinc's); the model passed
    in is left unchanged."""
    truth = _taper(_blocks((32, 32, 32)))
    lr = kspace_truncate(torch.from_numpy(truth), (1, 1, 2)).numpy()
    sinc = np.clip(_np_sinc_z(lr, 2), 0, None)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = MultiScaleFusionSR(dims=2, chans=8, num_blocks=1, kernel_sizes=(3, 5), interpolation="zero_fill",
                                 scale_input=True, bias=True).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.from_numpy(lr).float()
    np.testing.assert_allclose(upscale_image(net, x, (1, 1, 2)).numpy(), sinc, rtol=0, atol=2e-5)
    adapted = adapt_through_plane(net, x, (1, 1, 2), steps=60, batch_size=4, patch_size=16, lr=3e-3)
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    out = upscale_image(adapted, x, (1, 1, 2)).numpy()
    assert not adapted.training and out.shape == truth.shape
    assert _psnr(truth, out) > _psnr(truth, sinc) + 0.5


def test_adaptation_zero_steps_copy_determinism_and_bad_input():
    vol = torch.from_numpy(_taper(_blocks((20, 20, 10), seed=1))).float()
    net = MultiScaleFusionSR(dims=2, chans=4, num_blocks=1, kernel_sizes=(3,), interpolation="zero_fill").eval()
    torch.nn.init.constant_(net.tail.weight, 0.01)
    copy0 = adapt_through_plane(net, vol, (1, 1, 2), steps=0)
    assert copy0 is not net
    for a, b in zip(copy0.parameters(), net.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    runs = [adapt_through_plane(net, vol, (1, 1, 2), steps=3, batch_size=2, patch_size=8, seed=5) for _ in range(2)]
    for a, b in zip(runs[0].parameters(), runs[1].parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(ValueError, match="model must be a 2-D"):
        adapt_through_plane(MultiScaleFusionSR(dims=3, chans=4, num_blocks=1), vol, (1, 1, 2))
    with pytest.raises(ValueError, match=r"scale must be \(1, 1, s\)"):
        adapt_through_plane(net, vol, (2, 2, 1))
    with pytest.raises(ValueError, match="steps"):
        adapt_through_plane(net, vol, (1, 1, 2), steps=-1)
    with pytest.raises(ValueError, match="lr"):
        adapt_through_plane(net, vol, (1, 1, 2), lr=2.0)
    with pytest.raises(ValueError, match="patch_size"):
        adapt_through_plane(net, vol, (1, 1, 4), patch_size=8)
    with pytest.raises(ValueError, match="image must be"):
        adapt_through_plane(net, vol[0], (1, 1, 2))
    with pytest.raises(ValueError, match="no positive signal"):
        adapt_through_plane(net, torch.zeros(20, 20, 10), (1, 1, 2), steps=1)


def test_super_resolve_adapt_option_wiring_and_errors():
    """``recon.super_resolve(..., adapt=N)``: the bundled thick-slice network adapted for N steps on
    the volume, averaged over the plane flips (a thick axis other than the last moved there and
    back, the same as adapting the moved volume by hand); adapt=False is the network as shipped;
    bad values name ``adapt``; a volume too thin for the network is refused before adapting."""
    from recon.train.tasks_superres import ADAPT_LR, ADAPT_WEIGHTS, load_superres

    vol = (_taper(_blocks((32, 32, 16), seed=2)) * 300).astype(np.float32)  # any intensity scale
    plain = recon.super_resolve(vol, (1, 1, 2), weights=ADAPT_WEIGHTS, adapt=False)
    adapted = recon.super_resolve(np.ascontiguousarray(vol.transpose(2, 0, 1)), (2, 1, 1), adapt=2)
    assert adapted.shape == (32, 32, 32) and adapted.dtype == np.float32
    net, _, _ = load_superres(ADAPT_WEIGHTS)
    by_hand = upscale_image(adapt_through_plane(net, torch.from_numpy(vol), (1, 1, 2), steps=2, lr=ADAPT_LR),
                            torch.from_numpy(vol), (1, 1, 2), self_ensemble=True).numpy()
    np.testing.assert_allclose(adapted, by_hand.transpose(2, 0, 1), rtol=0, atol=1e-4 * float(vol.max()))
    assert np.abs(by_hand - plain).max() > 1e-4 * float(vol.max())  # two steps changed the network
    np.testing.assert_array_equal(recon.super_resolve(vol, (1, 1, 2), weights=ADAPT_WEIGHTS, adapt=0), plain)
    with pytest.raises(ValueError, match="adapt .*needs a volume with thick slices"):
        recon.super_resolve(vol[:, :, 0], 2, adapt=True)
    with pytest.raises(ValueError, match="adapt .*needs a volume with thick slices"):
        recon.super_resolve(vol, 2, adapt=3)
    with pytest.raises(ValueError, match="adapt must be"):
        recon.super_resolve(vol, (1, 1, 2), adapt=-1)
    with pytest.raises(TypeError, match="adapt must be"):
        recon.super_resolve(vol, (1, 1, 2), adapt="yes")
    with pytest.raises(ValueError, match="smaller than the network's receptive field"):  # before adapting
        recon.super_resolve(vol[:, :, :4], (1, 1, 2))
    with pytest.raises(ValueError, match="adapt needs 2-D thick-slice weights"):
        recon.super_resolve(vol, (1, 1, 2), weights="superres-3d-thick", adapt=1)


def test_recon_superres_adapt_flag(tmp_path, capsys):
    """``recon superres --adapt N``: N adaptation steps (0: off, the shipped network's output);
    a negative N is refused by the parser, naming the option."""
    from recon.cli import main as cli_main
    from recon.data.io import load_nifti, save_nifti

    vol = (_taper(_blocks((32, 32, 16), seed=3)) * 50).astype(np.float32)
    save_nifti(tmp_path / "thick.nii.gz", vol, affine=np.diag([1.0, 1.0, 2.0, 1.0]))
    assert cli_main(["superres", str(tmp_path / "thick.nii.gz"), "-o", str(tmp_path / "thin.nii.gz"), "--scale",
                     "1,1,2", "--weights", "superres-2d-thick", "--adapt", "0"]) == 0
    thin, affine, _ = load_nifti(tmp_path / "thin.nii.gz")
    assert thin.shape == (32, 32, 32)
    np.testing.assert_allclose(np.diag(affine)[:3], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(thin, recon.super_resolve(vol, (1, 1, 2), weights="superres-2d-thick", adapt=False),
                               rtol=0, atol=1e-5 * float(vol.max()))
    with pytest.raises(SystemExit):
        cli_main(["superres", str(tmp_path / "thick.nii.gz"), "-o", str(tmp_path / "x.nii.gz"), "--scale", "1,1,2",
                  "--adapt", "-1"])
    assert "--adapt" in capsys.readouterr().err
