"""Bad input to the registration (recon.register, recon.heads.registration, `recon register`):
the exception type and a message naming the argument (the command line: exit 2, one line)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import recon
from recon.heads import registration as R

VOL = np.random.default_rng(0).random((12, 11, 10)).astype(np.float32)


def _with(value, index=(1, 2, 3)):
    out = VOL.copy()
    out[index] = value
    return out


REGISTER = [
    pytest.param(lambda: recon.register(VOL, VOL[:-1]), ValueError, "fixed_affine", id="shapes-differ-no-affines"),
    pytest.param(lambda: recon.register(VOL, VOL[:-1], fixed_affine=np.eye(4)), ValueError, "moving_affine",
                 id="shapes-differ-no-moving-affine"),
    pytest.param(lambda: recon.register(_with(np.nan), VOL), ValueError, "fixed contains NaN", id="nan-fixed"),
    pytest.param(lambda: recon.register(VOL, _with(np.inf)), ValueError, "moving contains NaN or Inf", id="inf-moving"),
    pytest.param(lambda: recon.register(VOL, VOL, "demons"), ValueError, "method must be one of", id="unknown-method"),
    pytest.param(lambda: recon.register(VOL, VOL, 3), ValueError, "method must be one of", id="method-not-str"),
    pytest.param(lambda: recon.register(VOL[0], VOL[0]), ValueError, "fixed must be a 3-D volume", id="2-D"),
    pytest.param(lambda: recon.register(VOL, VOL[None]), ValueError, "moving must be a 3-D volume", id="4-D"),
    pytest.param(lambda: recon.register([[1.0]], VOL), TypeError, "fixed must be a 3-D numpy array", id="list"),
    pytest.param(lambda: recon.register(VOL.astype(np.complex64), VOL), TypeError, "fixed must be real",
                 id="complex"),
    pytest.param(lambda: recon.register(VOL, VOL > 0.5), TypeError, "moving must be a real-valued", id="bool"),
    pytest.param(lambda: recon.register(np.zeros_like(VOL), VOL), ValueError, "fixed is constant", id="constant"),
    pytest.param(lambda: recon.register(VOL, VOL, fixed_affine=np.eye(3)), ValueError, "fixed_affine must be a 4x4",
                 id="affine-3x3"),
    pytest.param(lambda: recon.register(VOL, VOL, moving_affine=np.zeros((4, 4))), ValueError, "moving_affine",
                 id="affine-singular"),
    pytest.param(lambda: recon.register(VOL, VOL, "affine", weights="register"), ValueError, "weights= is only used",
                 id="weights-iterative"),
    pytest.param(lambda: recon.register(VOL, VOL, "learned", weights="no-such-weights"), FileNotFoundError,
                 "no-such-weights", id="weights-missing"),
    pytest.param(lambda: recon.register(VOL, VOL, "learned", weights="denoise"), ValueError,
                 "not a registration network", id="weights-other-task", marks=pytest.mark.skipif(
                     "denoise" not in __import__("recon.train.tasks_heads", fromlist=["x"]).available_heads(),
                     reason="no bundled denoise weights")),
]


@pytest.mark.parametrize("call,error,match", REGISTER)
def test_register_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


X3 = torch.rand(1, 1, 8, 9, 10)
U3 = torch.zeros(1, 3, 8, 9, 10)
HEADS = [
    pytest.param(lambda: R.warp(X3, U3, mode="cubic"), ValueError, "mode must be", id="warp-mode"),
    pytest.param(lambda: R.warp(X3, torch.zeros(1, 2, 8, 9, 10)), ValueError, "displacement must be", id="warp-chans"),
    pytest.param(lambda: R.warp(X3, torch.zeros(1, 3, 8, 9, 11)), ValueError, "displacement of shape",
                 id="warp-shape"),
    pytest.param(lambda: R.warp(X3, [[0.0]]), TypeError, "displacement must be a floating", id="warp-list"),
    pytest.param(lambda: R.integrate_velocity(U3, -1), ValueError, "steps", id="steps-negative"),
    pytest.param(lambda: R.integrate_velocity(U3, 2.5), TypeError, "steps", id="steps-float"),
    pytest.param(lambda: R.local_ncc(X3, X3, window=4), ValueError, "window must be odd", id="ncc-even-window"),
    pytest.param(lambda: R.local_ncc(X3, X3[..., :-1]), ValueError, "warped must have fixed's shape", id="ncc-shape"),
    pytest.param(lambda: R.resize_displacement(U3, (4, 4)), ValueError, "shape must be 3", id="resize-shape"),
    pytest.param(lambda: R.dice_loss(X3, X3[..., :-1]), ValueError, "fixed_labels and warped_labels", id="dice"),
    pytest.param(lambda: R.RegistrationNet(ndim=4), ValueError, "ndim must be 2 or 3", id="net-ndim"),
    pytest.param(lambda: R.RegistrationNet(enc_chans=()), ValueError, "enc_chans", id="net-enc"),
    pytest.param(lambda: R.RegistrationNet(enc_chans=(4, 4), dec_chans=(4,)), ValueError, "dec_chans", id="net-dec"),
    pytest.param(lambda: R.RegistrationNet(int_downsize=0), ValueError, "int_downsize", id="net-downsize"),
    pytest.param(lambda: R.RegistrationNet(ndim=2, enc_chans=(2,), dec_chans=(2,))(X3, X3), ValueError,
                 "fixed must be a 4-D tensor", id="net-wrong-rank"),
    pytest.param(lambda: R.RegistrationNet(ndim=3, enc_chans=(2,), dec_chans=(2,))(X3, X3[:, :, :-1]), ValueError,
                 "fixed and moving must be single-channel", id="net-shape-mismatch"),
    pytest.param(lambda: R.RegistrationNet(ndim=3, enc_chans=(2,), dec_chans=(2,))(X3 * np.nan, X3), ValueError,
                 "fixed contains NaN", id="net-nan"),
    pytest.param(lambda: R.DeformableTransform((4, 4, 4), np.eye(4), np.eye(4), None, np.eye(4), (4, 4, 4),
                                               np.eye(4)).apply(np.zeros((4, 4, 4)), order=2), ValueError,
                 "order must be 0", id="apply-order"),
    pytest.param(lambda: R.DeformableTransform((4, 4, 4), np.eye(4), np.eye(4), None, np.eye(4), (4, 4, 4),
                                               np.eye(4)).apply(np.zeros((5, 4, 4))), ValueError,
                 "volume must have the moving image's shape", id="apply-shape"),
    pytest.param(lambda: R.DeformableTransform((4, 4, 4), np.eye(4), np.eye(4), None, np.eye(4), (4, 4, 4),
                                               np.eye(4)).apply(np.zeros((5, 4, 4)), affine=np.zeros((4, 4))),
                 ValueError, "affine must be an invertible", id="apply-affine"),
    pytest.param(lambda: R.normalise_intensity(np.zeros((3, 3, 3))), ValueError, "no positive signal",
                 id="normalise-empty"),
]


@pytest.mark.parametrize("call,error,match", HEADS)
def test_registration_heads_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


TASK = [
    pytest.param({"similarity": "mi"}, "similarity must be", id="similarity"),
    pytest.param({"lambda_smooth": -1}, "lambda_smooth must be", id="lambda-smooth"),
    pytest.param({"lambda_dice": "x"}, "lambda_dice must be", id="lambda-dice"),
    pytest.param({"integration_steps": -2}, "integration_steps must be", id="integration-steps"),
    pytest.param({"work_voxel": 0.1}, "work_voxel must be", id="work-voxel"),
    pytest.param({"strip_prob": 1.5}, "strip_prob must be", id="strip-prob"),
]


@pytest.mark.parametrize("options,match", TASK)
def test_register_task_bad_options(options, match):
    from recon.train.tasks_heads import HeadConfig, task_class

    with pytest.raises(ValueError, match=match):
        task_class("register")(HeadConfig(task="register", options=options))


def test_register_task_needs_two_volumes():
    from recon.train.tasks_heads import HeadConfig, task_class

    task = task_class("register")(HeadConfig(task="register"))
    with pytest.raises(ValueError, match="train_data must hold at least 2 volumes"):
        task.prepare([{"t1w": VOL, "mask": VOL > 0.5}])


@pytest.mark.parametrize("extra,match", [
    (["--labels", "seg.nii.gz"], "--labels and --labels-output"),
    (["--method", "demons"], "--method"),
])
def test_cli_register_bad_options(tmp_path, capsys, extra, match):
    from recon.cli import main
    from recon.data.io import save_nifti

    save_nifti(tmp_path / "f.nii.gz", VOL, affine=np.eye(4))
    try:
        code = main(["register", str(tmp_path / "f.nii.gz"), str(tmp_path / "f.nii.gz"), "-o",
                     str(tmp_path / "w.nii.gz"), *extra])
    except SystemExit as exit_:  # usage errors exit from the parser
        code = exit_.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and match in err and len(err.splitlines()) == 1


def test_cli_register_missing_file(tmp_path, capsys):
    from recon.cli import main

    code = main(["register", str(tmp_path / "nope.nii.gz"), str(tmp_path / "nope.nii.gz"), "-o",
                 str(tmp_path / "w.nii.gz")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "nope.nii.gz" in err and len(err.splitlines()) == 1
