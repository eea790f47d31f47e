"""`recon preprocess`: a file or a folder of NIfTI through the steps; outputs only under -o."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recon.cli import main
from recon.data.io import load_nifti, save_nifti

from preprocess_helpers import blob_phantom, move, rigid_about

pytest.importorskip("SimpleITK")
AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])
AFFINE[:3, 3] = [-40.0, -44.0, -36.0]


def write(path, volume, affine=AFFINE):
    save_nifti(path, volume.astype(np.float32), affine=affine)
    return path


def test_single_file_resample_n4_zscore(tmp_path, capsys):
    src = write(tmp_path / "t1.nii.gz", blob_phantom((40, 44, 36)) * 100 + 1)
    out = tmp_path / "prep"
    assert main(["preprocess", str(src), "-o", str(out), "--resample", "4", "--n4", "--normalize", "zscore"]) == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == ["t1.nii.gz"]
    volume, affine, zooms = load_nifti(out / "t1.nii.gz")
    assert volume.shape == (20, 22, 18) and np.allclose(zooms, 4.0)
    fg = volume != volume.flat[0]
    assert abs(volume.mean()) < 1e-3 or abs(volume[fg].mean()) < 0.5
    # world centre preserved by the resampling
    c_in = AFFINE @ np.r_[(np.array([40, 44, 36]) - 1) / 2, 1]
    c_out = affine @ np.r_[(np.array(volume.shape) - 1) / 2, 1]
    np.testing.assert_allclose(c_in, c_out, atol=1e-6)
    assert str(out / "t1.nii.gz") in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prep", "t1.nii.gz"]


def test_output_file_name_and_register_to(tmp_path):
    fixed = blob_phantom((40, 44, 36)).astype(np.float32)
    center = AFFINE @ np.r_[(np.array(fixed.shape) - 1) / 2, 1]
    truth = rigid_about(center[:3], [(2, 8.0)], [2.0, 3.0, 0.0])
    moving = move(fixed, AFFINE, truth)
    write(tmp_path / "fixed.nii.gz", fixed)
    write(tmp_path / "moving.nii.gz", moving)
    dst = tmp_path / "aligned.nii.gz"
    assert main(["preprocess", str(tmp_path / "moving.nii.gz"), "-o", str(dst),
                 "--register-to", str(tmp_path / "fixed.nii.gz")]) == 0
    aligned, affine, _ = load_nifti(dst)
    np.testing.assert_allclose(affine, AFFINE)
    inner = fixed > 0.2
    assert np.abs(aligned[inner] - fixed[inner]).mean() < 0.2 * np.abs(moving[inner] - fixed[inner]).mean()


def test_folder_with_nyul_fit(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        blob = blob_phantom((20, 22, 18), seed=i)
        write(src / f"s{i}.nii.gz", np.where(blob > 0.1, blob * (50 + 20 * i) + 5 * i, 0.0))
    (src / "notes.txt").write_text("not a volume")
    out = tmp_path / "out"
    assert main(["preprocess", str(src), "-o", str(out), "--normalize", "nyul"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["nyul_landmarks.json", "s0.nii.gz", "s1.nii.gz", "s2.nii.gz"]
    state = json.loads((out / "nyul_landmarks.json").read_text())
    for i in range(3):
        vol = load_nifti(out / f"s{i}.nii.gz")[0]
        fg = load_nifti(src / f"s{i}.nii.gz")[0] > 0
        # every output's landmarks land on the common standard scale
        marks = np.percentile(vol[fg], state["landmark_percentiles"])
        np.testing.assert_allclose(marks, state["standard_scale"], rtol=1e-3, atol=1e-2)
    # reuse the landmarks on a new subject
    out2 = tmp_path / "out2"
    assert main(["preprocess", str(src / "s0.nii.gz"), "-o", str(out2), "--normalize", "nyul",
                 "--nyul-landmarks", str(out / "nyul_landmarks.json")]) == 0
    np.testing.assert_allclose(load_nifti(out2 / "s0.nii.gz")[0], load_nifti(out / "s0.nii.gz")[0], rtol=1e-4, atol=1e-3)


def test_folder_output_must_be_a_folder(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    write(src / "a.nii.gz", blob_phantom((10, 10, 10)))
    assert main(["preprocess", str(src), "-o", str(tmp_path / "x.nii.gz"), "--normalize", "zscore"]) != 0
    assert "must be a folder" in capsys.readouterr().err


@pytest.mark.slow
def test_skull_strip_colin27(tmp_path):
    from preprocess_helpers import DATA

    out = tmp_path / "out"
    assert main(["preprocess", str(DATA / "colin27_t1.nii.gz"), "-o", str(out), "--skull-strip",
                 "--normalize", "whitestripe"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["colin27_t1.nii.gz", "colin27_t1_brainmask.nii.gz"]
    mask = load_nifti(out / "colin27_t1_brainmask.nii.gz")[0] > 0
    ref = load_nifti(DATA / "templates" / "colin27_bet_mask.nii.gz")[0] > 0
    assert 2 * np.sum(mask & ref) / (mask.sum() + ref.sum()) > 0.9


def test_png_draws_the_mid_planes_of_each_output(tmp_path, capsys):
    matplotlib_image = pytest.importorskip("matplotlib.image")
    src = write(tmp_path / "t1.nii.gz", blob_phantom((40, 44, 36)) * 100 + 1)
    out = tmp_path / "prep"
    assert main(["preprocess", str(src), "-o", str(out), "--normalize", "zscore", "--png"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["t1.nii.gz", "t1_mid.png"]
    image = matplotlib_image.imread(out / "t1_mid.png")
    assert image.ndim == 3 and image.shape[1] > image.shape[0]  # three panels side by side
    assert image[..., :3].std() > 0.05  # something was drawn
    assert str(out / "t1_mid.png") in capsys.readouterr().out
