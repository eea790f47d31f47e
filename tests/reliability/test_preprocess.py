"""Bad input to recon.preprocess (resample, N4, normalisation, registration, skull stripping).

Issue 10's list: a 2-D or 4-D array to a 3-D function, an affine that is not invertible, a voxel
size <= 0, image and mask of different shapes - each a clear error naming the argument. Plus
``recon preprocess`` on bad paths: one line on stderr, a non-zero status, nothing written.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reliability_helpers import raises_naming  # noqa: E402

from recon import preprocess as P  # noqa: E402

V = np.random.default_rng(0).random((8, 9, 10)).astype(np.float32) + 0.5
EYE = np.eye(4)
SINGULAR = np.diag([1.0, 0.0, 1.0, 1.0])

CASES = [
    # 2-D / 4-D to 3-D functions
    pytest.param(lambda: P.resample(V[0], EYE, 1.0), ValueError, ["volume", "3-D", "(9, 10)"], id="resample-2d"),
    pytest.param(lambda: P.resample(V[..., None], EYE, 1.0), ValueError, ["volume", "3-D"], id="resample-4d"),
    pytest.param(lambda: P.n4_bias_correction(V[0]), ValueError, ["volume", "3-D"], id="n4-2d"),
    pytest.param(lambda: P.n4_bias_correction(V[..., None]), ValueError, ["volume", "3-D"], id="n4-4d"),
    pytest.param(lambda: P.register(V[0], V), ValueError, ["fixed", "3-D"], id="register-fixed-2d"),
    pytest.param(lambda: P.register(V, V[None]), ValueError, ["moving", "3-D"], id="register-moving-4d"),
    pytest.param(lambda: P.brain_mask(V[0], EYE), ValueError, ["volume", "3-D"], id="brain_mask-2d"),
    pytest.param(lambda: P.brain_mask(V[None], EYE), ValueError, ["volume", "3-D"], id="brain_mask-4d"),
    # affines
    pytest.param(lambda: P.resample(V, SINGULAR, 1.0), ValueError, ["affine", "not invertible"], id="resample-singular"),
    pytest.param(lambda: P.resample(V, np.eye(3), 1.0), ValueError, ["affine", "4x4"], id="resample-3x3"),
    pytest.param(lambda: P.resample(V, np.full((4, 4), np.nan), 1.0), ValueError, ["affine", "finite"], id="resample-nan-affine"),
    pytest.param(lambda: P.n4_bias_correction(V, affine=SINGULAR), ValueError, ["affine", "not invertible"], id="n4-singular"),
    pytest.param(lambda: P.register(V, V, fixed_affine=SINGULAR), ValueError, ["fixed_affine", "not invertible"], id="register-fixed-affine"),
    pytest.param(lambda: P.register(V, V, moving_affine=SINGULAR), ValueError, ["moving_affine", "not invertible"], id="register-moving-affine"),
    pytest.param(lambda: P.brain_mask(V, SINGULAR), ValueError, ["affine", "not invertible"], id="brain_mask-singular"),
    # voxel sizes
    pytest.param(lambda: P.resample(V, EYE, 0.0), ValueError, ["voxel_size", "> 0"], id="voxel-zero"),
    pytest.param(lambda: P.resample(V, EYE, -1.0), ValueError, ["voxel_size", "> 0"], id="voxel-negative"),
    pytest.param(lambda: P.resample(V, EYE, (1.0, 1.0, 0.0)), ValueError, ["voxel_size", "> 0"], id="voxel-one-zero"),
    pytest.param(lambda: P.resample(V, EYE, float("nan")), ValueError, ["voxel_size"], id="voxel-nan"),
    # image / mask shapes
    pytest.param(lambda: P.n4_bias_correction(V, np.ones((8, 9, 9))), ValueError, ["mask", "(8, 9, 10)", "(8, 9, 9)"], id="n4-mask-shape"),
    pytest.param(lambda: P.zscore(V, np.ones((8, 9)) > 0), ValueError, ["mask", "(8, 9, 10)"], id="zscore-mask-shape"),
    pytest.param(lambda: P.minmax(V, np.ones((8, 9)) > 0), ValueError, ["mask"], id="minmax-mask-shape"),
    pytest.param(lambda: P.percentile_clip(V, mask=np.ones((2, 2)) > 0), ValueError, ["mask"], id="clip-mask-shape"),
    pytest.param(lambda: P.fcm_normalize(V, np.ones((2, 2)) > 0), ValueError, ["mask"], id="fcm-mask-shape"),
    pytest.param(lambda: P.whitestripe(V, np.ones((2, 2)) > 0), ValueError, ["mask"], id="whitestripe-mask-shape"),
    pytest.param(lambda: P.NyulNormalizer().fit([V], [np.ones((2, 2)) > 0]), ValueError, ["mask"], id="nyul-mask-shape"),
    pytest.param(lambda: P.register(V, V, fixed_mask=np.ones((2, 2, 2))), ValueError, ["fixed_mask"], id="register-mask-shape"),
    # types
    pytest.param(lambda: P.zscore("volume.nii"), TypeError, ["volume"], id="zscore-str"),
    pytest.param(lambda: P.resample(V.astype(np.complex64), EYE, 1.0), TypeError, ["volume", "real"], id="resample-complex"),
    pytest.param(lambda: P.n4_bias_correction(np.full(V.shape, np.inf)), ValueError, ["volume", "NaN or infinite"], id="n4-inf"),
]


@pytest.mark.parametrize("call, exc, names", CASES)
def test_bad_input(call, exc, names):
    pytest.importorskip("SimpleITK")
    with raises_naming(exc, *names):
        call()


def _nifti(path: Path, volume: np.ndarray) -> Path:
    from recon.data.io import save_nifti

    save_nifti(path, volume, affine=np.diag([2.0, 2.0, 2.0, 1.0]))
    return path


@pytest.mark.parametrize(
    "argv, names",
    [
        (["missing.nii.gz", "-o", "out", "--n4"], ["missing.nii.gz"]),
        (["in.nii.gz", "-o", "out"], ["nothing to do"]),
        (["in.nii.gz", "-o", "out", "--register-to", "nofixed.nii.gz"], ["--register-to", "nofixed.nii.gz"]),
        (["in.nii.gz", "-o", "out", "--normalize", "zscore", "--nyul-landmarks", "x.json"], ["--nyul-landmarks"]),
        (["notnifti.txt", "-o", "out", "--n4"], ["notnifti.txt"]),
        (["flat.nii.gz", "-o", "out", "--normalize", "zscore"], ["flat.nii.gz"]),
    ],
)
def test_cli_bad_input_one_line_nothing_written(tmp_path, monkeypatch, capsys, argv, names):
    from recon.cli import main

    monkeypatch.chdir(tmp_path)
    _nifti(tmp_path / "in.nii.gz", V)
    _nifti(tmp_path / "flat.nii.gz", np.zeros((6, 6, 6), np.float32))
    (tmp_path / "notnifti.txt").write_text("hello")
    before = sorted(p.name for p in tmp_path.iterdir())
    status = main(["preprocess", *argv])
    err = capsys.readouterr().err.strip()
    assert status != 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("recon preprocess: error:"), err
    assert "Traceback" not in err
    for name in names:
        assert name in lines[0]
    after = sorted(p.name for p in tmp_path.iterdir() if p.name != "out")
    assert after == before
    out = tmp_path / "out"
    assert not out.exists() or not any(out.iterdir())
