"""Bad input to super-resolution (recon.super_resolve, recon.heads.superres, recon train --task superres,
recon superres): a clear ValueError/TypeError naming the argument, or for the command line exit 2 and
one line on stderr."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import recon
from recon.heads.superres import (
    MultiScaleFusionSR, SRGenerator3d, image_degrade, kspace_truncate, kspace_zero_pad, superres_volume,
)
from recon.train.tasks_heads import HeadConfig
from recon.train.tasks_superres import SuperresConfig, load_superres, train_superres

SLICE = np.random.default_rng(0).random((32, 40)).astype(np.float32) + 0.1
VOLUME = np.random.default_rng(1).random((24, 28, 20)).astype(np.float32) + 0.1
NAN = SLICE.copy()
NAN[3, 4] = np.nan
INF = VOLUME.copy()
INF[1, 2, 3] = np.inf


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("srw")
    vols = [np.random.default_rng(2).random((24, 26, 24)).astype(np.float32) + 0.5]
    out = {}
    for key, kw in {"2d": dict(dims=2, scales=[(2, 2)], patch_size=16),
                    "3d": dict(dims=3, scales=[(1, 1, 3)], patch_size=12),
                    "srgan": dict(task="srgan", dims=3, scales=[(2, 2, 2)], patch_size=12)}.items():
        config = SuperresConfig(**kw, chans=4, num_blocks=1, disc_chans=4, steps=1, batch_size=1,
                                output_dir=str(folder / key))
        out[key] = str(train_superres(config, vols).weights)
    return out


SCALE_CASES = [
    pytest.param(0, ValueError, "scale must be a positive int", id="zero"),
    pytest.param(-2, ValueError, "scale must be a positive int", id="negative"),
    pytest.param(2.5, TypeError, "scale must be a positive int", id="float"),
    pytest.param("2", TypeError, "scale must be a positive int", id="string"),
    pytest.param(True, TypeError, "scale must be a positive int", id="bool"),
    pytest.param((2, 2, 2), ValueError, "scale must be a positive int or a tuple of 2", id="3-tuple-for-slice"),
    pytest.param((2, 0), ValueError, "scale must be a positive int", id="tuple-with-zero"),
    pytest.param((2, 2.0), TypeError, "scale must be a positive int", id="tuple-with-float"),
    pytest.param((1, 1), ValueError, "scale must enlarge at least one axis", id="all-ones"),
    pytest.param(None, TypeError, "scale must be a positive int", id="none"),
]


@pytest.mark.parametrize("scale,exc,match", SCALE_CASES)
def test_super_resolve_bad_scale(weights, scale, exc, match):
    with pytest.raises(exc, match=match):
        recon.super_resolve(SLICE, scale, weights=weights["2d"])


@pytest.mark.parametrize("scale,exc,match", SCALE_CASES[:5])
def test_degradations_bad_scale(scale, exc, match):
    for fn in (kspace_truncate, kspace_zero_pad, image_degrade):
        with pytest.raises(exc, match=match):
            fn(torch.rand(16, 16), scale)


def _cases(w):
    return [
        (lambda: recon.super_resolve(NAN, 2, weights=w["2d"]), ValueError, "image contains NaN or Inf"),
        (lambda: recon.super_resolve(INF, (1, 1, 3), weights=w["3d"]), ValueError, "image contains NaN or Inf"),
        (lambda: recon.super_resolve(np.ones((4, 5), np.float32), 2, weights=w["2d"]), ValueError,
         "image is smaller than the network's receptive field"),
        (lambda: recon.super_resolve(np.ones((40, 40, 2), np.float32), (1, 1, 3), weights=w["3d"]), ValueError,
         "image is smaller than the network's receptive field"),
        (lambda: recon.super_resolve(SLICE, 2, weights=w["srgan"]), ValueError, "image is a 2-D slice.*3-D network"),
        (lambda: recon.super_resolve(SLICE, 2, weights=w["3d"]), ValueError, "image is a 2-D slice.*3-D network"),
        (lambda: recon.super_resolve(VOLUME, (2, 2, 1), weights=w["srgan"]), ValueError,
         "scale .* is not the scale .* SRGAN"),
        (lambda: recon.super_resolve(VOLUME, (2, 1, 2), weights=w["2d"]), ValueError, "scale .* enlarges the last axis"),
        (lambda: recon.super_resolve(VOLUME, (3, 3, 3)), ValueError, "scale .* has no bundled network"),
        (lambda: recon.super_resolve(np.zeros((2, 16, 16, 16), np.float32), 2), ValueError, "image must be 2-D or 3-D"),
        (lambda: recon.super_resolve(SLICE.astype(np.complex64), 2), TypeError, "image must be a real"),
        (lambda: recon.super_resolve([[1.0, 2.0]], 2), TypeError, "image must be a numpy array"),
        (lambda: recon.super_resolve(-SLICE, 2, weights=w["2d"]), ValueError, "image has no positive signal"),
        (lambda: recon.super_resolve(SLICE, 2, weights="no-such-net"), FileNotFoundError,
         "weights 'no-such-net' is neither a file nor a bundled super-resolution"),
    ]


@pytest.mark.parametrize("index", range(14))
def test_super_resolve_bad_input(weights, index):
    fn, exc, match = _cases(weights)[index]
    with pytest.raises(exc, match=match):
        fn()


def test_not_a_superres_weight_file(tmp_path):
    path = tmp_path / "w.pt"
    torch.save({"format": "something-else"}, path)
    with pytest.raises(ValueError, match="weights .* is not a recon head weight file"):
        load_superres(path)
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="cannot be read as a head weight file"):
        load_superres(tmp_path / "junk.pt")
    with pytest.raises(ValueError, match="weights .* are a 'denoise' head, not a super-resolution network"):
        load_superres("denoise")


@pytest.mark.parametrize("call,exc,match", [
    pytest.param(lambda: kspace_truncate(torch.rand(15, 16), 2), ValueError, "multiple of scale", id="not-multiple"),
    pytest.param(lambda: kspace_truncate(torch.rand(8, 8, 8, 8), 2), ValueError, "spatial_dims must be given",
                 id="ambiguous-dims"),
    pytest.param(lambda: kspace_truncate(torch.rand(8, 8), 2, spatial_dims=4), ValueError, "spatial_dims must be 2 or 3",
                 id="spatial-dims"),
    pytest.param(lambda: kspace_truncate(np.ones((8, 8)), 2), TypeError, "image must be a torch.Tensor", id="numpy"),
    pytest.param(lambda: kspace_truncate(torch.ones(8, 8, dtype=torch.int64), 2), TypeError,
                 "image must be a real floating-point", id="int"),
    pytest.param(lambda: image_degrade(torch.rand(8, 8), 2, fwhm=-1.0), ValueError, "fwhm must be", id="fwhm"),
    pytest.param(lambda: image_degrade(torch.rand(8, 8), 2, noise_sigma=-0.1), ValueError, "noise_sigma must be",
                 id="noise-sigma"),
    pytest.param(lambda: image_degrade(torch.rand(8, 8), 2, noise_sigma=0.1), TypeError, "generator must be",
                 id="noise-without-generator"),
    pytest.param(lambda: MultiScaleFusionSR(dims=4), ValueError, "dims must be 2 or 3", id="fusion-dims"),
    pytest.param(lambda: MultiScaleFusionSR(kernel_sizes=(3, 4)), ValueError, "kernel_sizes must be odd", id="even-kernel"),
    pytest.param(lambda: MultiScaleFusionSR(chans=0), ValueError, "chans must be a positive int", id="chans"),
    pytest.param(lambda: MultiScaleFusionSR(dims=3, chans=2, num_blocks=0)(torch.rand(1, 1, 8, 8), 2), ValueError,
                 "lr must be a 5-D tensor.*3-D network", id="fusion-3d-given-2d"),
    pytest.param(lambda: MultiScaleFusionSR(dims=2, chans=2, num_blocks=0)(torch.rand(1, 2, 8, 8), 2), ValueError,
                 "lr must have 1 channel", id="channels"),
    pytest.param(lambda: MultiScaleFusionSR(dims=3, chans=2, num_blocks=0, scale_input=True).refine(
        torch.rand(1, 1, 8, 8, 8)), ValueError, "scale is required", id="scale-input-without-scale"),
    pytest.param(lambda: SRGenerator3d((2, 2, 2), chans=2, num_blocks=0)(torch.rand(1, 1, 8, 8)), ValueError,
                 "lr must be a 5-D tensor.*3-D-only", id="srgan-2d"),
    pytest.param(lambda: SRGenerator3d((2, 2, 2), chans=2, num_blocks=0)(torch.rand(1, 1, 8, 8, 8), 3), ValueError,
                 "scale must be this generator's", id="srgan-scale"),
    pytest.param(lambda: superres_volume(lambda x, s: x, torch.rand(1, 8, 8, 8), 2, patch_size=4, overlap=4),
                 ValueError, "overlap must be smaller than patch_size", id="overlap"),
    pytest.param(lambda: SuperresConfig(task="srgan", dims=2), ValueError, "dims must be 3 for the 3-D SRGAN", id="srgan-dims"),
    pytest.param(lambda: SuperresConfig(task="srgan", dims=3, scales=[(2, 2, 2), (1, 1, 3)]), ValueError,
                 "scales must be one scale for srgan", id="srgan-scales"),
    pytest.param(lambda: SuperresConfig(degradation="blur"), ValueError, "degradation must be", id="degradation"),
    pytest.param(lambda: SuperresConfig(scales=[(2, 2)], patch_size=4), ValueError, "patch_size must be at least",
                 id="patch"),
    pytest.param(lambda: SuperresConfig(contrasts=("ct",)), ValueError, "contrasts must be among", id="contrasts"),
    pytest.param(lambda: SuperresConfig(crop_taper=1.5), ValueError, "crop_taper must be a probability", id="crop-taper"),
    pytest.param(lambda: SRGenerator3d((2, 2, 2), chans=2, num_blocks=0, interpolation="linear"), ValueError,
                 "interpolation must be one of", id="srgan-interpolation"),
    pytest.param(lambda: SRGenerator3d((2, 2, 2), chans=2, num_blocks=0)(torch.rand(1, 1, 4, 4, 4),
                                                                        base=torch.rand(1, 1, 4, 4, 4)),
                 ValueError, "base must have the output's shape", id="srgan-base"),
    pytest.param(lambda: HeadConfig(task="superres", options={"scales": ["1,x"]}), ValueError,
                 "scales must be ints", id="task-scales"),
    pytest.param(lambda: HeadConfig(task="srgan", options={"dims": 2}), ValueError,
                 "dims must be 3 for the 3-D SRGAN", id="task-srgan-dims"),
])
def test_components_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize("args,match", [
    (["--scale", "0"], "scale must be a positive int"),
    (["--scale", "a,b"], "--scale: must be an int or comma-separated ints"),
    (["--scale", "1,1"], "scale must enlarge at least one axis"),
])
def test_cli_superres_one_line_errors(tmp_path, capsys, weights, args, match):
    from recon.cli import main
    from recon.data.io import save_nifti

    src = tmp_path / "in.nii.gz"
    save_nifti(src, SLICE[..., None], affine=np.eye(4))
    try:
        code = main(["superres", str(src), "-o", str(tmp_path / "out.nii.gz"), "--weights", weights["2d"], *args])
    except SystemExit as exit_:  # usage errors leave through argparse
        code = exit_.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert __import__("re").search(match, err), err
