"""The recon command line end to end on small simulated fastMRI files in a temporary folder."""

from __future__ import annotations

import subprocess
import sys

import h5py
import numpy as np
import pytest

from recon.cli import main
from recon.data.header import make_ismrmrd_header
from recon.data.io import write_fastmri_file


def _volume(rng, slices=2, coils=4, height=48, width=40):
    y, x = np.meshgrid(np.linspace(-1, 1, height), np.linspace(-1, 1, width), indexing="ij")
    image = (x**2 + y**2 < 0.6) * (1 + 0.5 * x) * np.exp(1j * y)
    maps = np.stack([np.exp(-((x - np.cos(a)) ** 2 + (y - np.sin(a)) ** 2)) for a in np.arange(coils) * 2 * np.pi / coils])
    maps = maps / np.sqrt((maps**2).sum(0))
    coil = maps * image
    kspace = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(coil, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    kspace = np.stack([kspace * (s + 1) for s in range(slices)])
    kspace = kspace + 1e-3 * (rng.standard_normal(kspace.shape) + 1j * rng.standard_normal(kspace.shape))
    rss = np.sqrt((np.abs(np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(kspace, axes=(-2, -1)), norm="ortho"),
                                         axes=(-2, -1))) ** 2).sum(1))
    return kspace.astype(np.complex64), rss.astype(np.float32)


def _header(height, width, coils, slices):
    return make_ismrmrd_header((height, width), (height, width), num_coils=coils, num_slices=slices)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw")
    rng = np.random.default_rng(0)
    for name, acq in (("vol_a.h5", "AXT1"), ("vol_b.h5", "AXT2")):
        kspace, rss = _volume(rng)
        write_fastmri_file(root / name, kspace, _header(48, 40, 4, 2), reconstruction_rss=rss, attrs={"acquisition": acq})
    return root


def test_reconstruct_and_evaluate_end_to_end(folder, tmp_path, capsys):
    out = tmp_path / "recons"
    assert main(["reconstruct", str(folder), "-o", str(out), "--accelerations", "2",
                 "--center-fractions", "0.3", "--method", "sense", "--nifti", "-q"]) == 0
    for name in ("vol_a.h5", "vol_b.h5"):
        with h5py.File(out / name) as hf:
            recon = hf["reconstruction"][()]
        assert recon.dtype == np.float32 and recon.ndim == 3 and recon.shape[0] == 2
        assert (out / name.replace(".h5", ".nii.gz")).is_file()
    capsys.readouterr()
    assert main(["evaluate", "--target-path", str(folder), "--predictions-path", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(" ")[0] for line in lines] == ["AXT1", "AXT2", "ALL"]
    assert "NMSE = " in lines[-1] and "PSNR = " in lines[-1] and "SSIM = " in lines[-1] and "+/-" in lines[-1]
    ssim = float(lines[-1].split("SSIM = ")[1].split(" ")[0])
    assert 0.5 < ssim <= 1.0


def test_evaluate_matches_fastmri_metrics(folder, tmp_path, capsys):
    """Predictions = targets * 0.9: NMSE is exactly 0.01 and SSIM computed as fastMRI does."""
    fastmri_evaluate = pytest.importorskip("fastmri.evaluate")  # the parity reference
    fm_nmse, fm_psnr, fm_ssim = fastmri_evaluate.nmse, fastmri_evaluate.psnr, fastmri_evaluate.ssim

    preds = tmp_path / "preds"
    preds.mkdir()
    values = {"NMSE": [], "PSNR": [], "SSIM": []}
    for path in sorted(folder.glob("*.h5")):
        with h5py.File(path) as hf:
            target = hf["reconstruction_rss"][()]
        noisy = (target * 0.9).astype(np.float32)
        with h5py.File(preds / path.name, "w") as hf:
            hf["reconstruction"] = noisy
        crop = target[..., 4:44, :]  # fastMRI crops to (W, W) = (40, 40)
        ncrop = noisy[..., 4:44, :]
        values["NMSE"].append(fm_nmse(crop, ncrop))
        values["PSNR"].append(fm_psnr(crop, ncrop))
        values["SSIM"].append(fm_ssim(crop, ncrop, maxval=crop.max()))
    capsys.readouterr()
    assert main(["evaluate", "--target-path", str(folder), "--predictions-path", str(preds)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    for name, vals in values.items():
        shown = float(last.split(f"{name} = ")[1].split(" ")[0])
        assert shown == pytest.approx(np.mean(vals), rel=1e-3)
        spread = float(last.split(f"{name} = ")[1].split(" +/- ")[1].split(" ")[0])
        assert spread == pytest.approx(2 * np.std(vals, ddof=1), rel=1e-3, abs=1e-6)


def test_reconstruct_single_file_default_method_with_stored_mask(tmp_path, capsys):
    rng = np.random.default_rng(1)
    kspace, rss = _volume(rng, slices=1, coils=6)
    mask = np.zeros(40, dtype=np.float32)
    mask[::2] = 1
    mask[14:26] = 1
    path = tmp_path / "test_file.h5"
    write_fastmri_file(path, kspace * mask, _header(48, 40, 6, 1), mask=mask, attrs={"acquisition": "AXT1"})
    assert main(["reconstruct", str(path), "-o", str(tmp_path / "out")]) == 0
    from recon.api import DEFAULT_METHOD

    assert f"test_file.h5: {DEFAULT_METHOD} ->" in capsys.readouterr().out
    with h5py.File(tmp_path / "out" / "test_file.h5") as hf:
        recon = hf["reconstruction"][()]
    assert recon.shape[0] == 1 and np.isfinite(recon).all()


def test_failures_exit_non_zero_with_one_line(tmp_path, capsys, folder):
    assert main(["reconstruct", str(tmp_path / "missing"), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("recon reconstruct: error:") and err.count("\n") == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["reconstruct", str(empty), "-o", str(tmp_path / "o")]) == 2
    assert "contains no .h5 files" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.h5").write_text("not hdf5")
    assert main(["reconstruct", str(bad), "-o", str(tmp_path / "o")]) == 2
    assert "cannot read as HDF5" in capsys.readouterr().err
    assert main(["reconstruct", str(folder), "-o", str(tmp_path / "o"), "--method", "varnet",
                 "--weights", str(tmp_path / "nope.pt")]) == 2
    assert "neither an existing file nor a bundled checkpoint" in capsys.readouterr().err
    assert main(["evaluate", "--target-path", str(folder), "--predictions-path", str(empty)]) == 2
    assert "no prediction" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["reconstruct", str(folder), "-o", str(tmp_path / "o"), "--method", "magic"])
    assert exc.value.code == 2


def test_reconstruct_unet_self_ensemble_flag(folder, tmp_path):
    from recon.api import bundled_weights, reconstruct

    if "unet" not in bundled_weights():
        pytest.skip("no bundled unet")
    with h5py.File(folder / "vol_a.h5") as hf:
        kspace = hf["kspace"][()]
    mask = np.zeros(kspace.shape[-1], dtype=np.float32)
    mask[::2] = 1
    undersampled = kspace * mask
    single = tmp_path / "single.h5"
    from recon.data.io import write_fastmri_file

    write_fastmri_file(single, undersampled, _header(48, 40, 4, 2), attrs={"acquisition": "AXT1"})
    for flag, ensemble in (([], True), (["--no-self-ensemble"], False)):
        out = tmp_path / f"o{int(ensemble)}"
        assert main(["reconstruct", str(single), "-o", str(out), "--method", "unet", "--no-crop", "-q", *flag]) == 0
        with h5py.File(out / "single.h5") as hf:
            got = hf["reconstruction"][()]
        ref = reconstruct(undersampled, mask, method="unet", self_ensemble=ensemble)
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())
        if not ensemble:
            assert np.abs(got - reconstruct(undersampled, mask, method="unet")).max() > 1e-4 * np.abs(ref).max()


def test_help_and_benchmark(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for command in ("reconstruct", "evaluate", "simulate", "benchmark", "Examples"):
        assert command in text
    with pytest.raises(SystemExit):
        main(["reconstruct", "--help"])
    assert "--accelerations" in capsys.readouterr().out
    assert main(["benchmark", "--list"]) == 0
    assert "classical" in capsys.readouterr().out
    assert main([]) == 2


def test_simulate_from_nifti(tmp_path, capsys):
    from recon.data.io import save_nifti

    volume = np.zeros((32, 32, 3), dtype=np.float32)
    volume[8:24, 8:24, :] = 1.0
    src = tmp_path / "brain.nii.gz"
    save_nifti(src, volume)
    assert main(["simulate", str(src), "-o", str(tmp_path / "sim"), "--coils", "4", "--seed", "1"]) == 0
    written = capsys.readouterr().out.strip().splitlines()
    assert len(written) == 1
    with h5py.File(written[0]) as hf:
        assert hf["kspace"].shape[:2] == (3, 4)
    assert main(["simulate", str(tmp_path / "none.nii"), "-o", str(tmp_path / "sim")]) == 2


def test_console_entry_point_runs_as_module():
    done = subprocess.run([sys.executable, "-m", "recon.cli", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "reconstruct" in done.stdout


def test_end_to_end_on_the_embedded_sample(tmp_path, capsys):
    import shutil

    from recon.data.sample import sample_file

    source = sample_file("val", "multicoil")
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(source, raw / source.name)
    out = tmp_path / "out"
    assert main(["reconstruct", str(raw), "-o", str(out), "--accelerations", "4", "-q"]) == 0
    with h5py.File(raw / source.name) as hf:
        target_shape = hf["reconstruction_rss"].shape
    with h5py.File(out / source.name) as hf:
        assert hf["reconstruction"].shape == target_shape
    capsys.readouterr()
    assert main(["evaluate", "--target-path", str(raw), "--predictions-path", str(out)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert float(last.split("SSIM = ")[1].split(" ")[0]) > 0.75


def test_train_subcommand_is_the_trainer(capsys):
    from recon.cli import main as cli_main

    with pytest.raises(SystemExit) as exc:
        cli_main(["train", "--help"])
    assert exc.value.code == 0
    assert "--model {cascade,unet,varnet}" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        cli_main(["train", "--model", "nope"])
    assert exc.value.code == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("syntax", [["4", "8"], ["4,8"], ["4, 8"], ["4,", "8"]])
def test_reconstruct_and_train_share_the_list_syntax_and_mask_types(syntax):
    """``recon reconstruct`` and ``recon train`` read --accelerations / --center-fractions the same way,
    with the same bounds, and offer the same --mask-type choices (issue 8)."""
    from recon.cli import build_parser
    from recon.masks import MASK_TYPES
    from recon.train.cli import build_parser as build_train_parser

    fractions = ["0.08,", "0.04"]
    rec = build_parser().parse_args(["reconstruct", "in", "-o", "out", "--accelerations", *syntax,
                                     "--center-fractions", *fractions])
    train = build_train_parser().parse_args(["--accelerations", *syntax, "--center-fractions", *fractions])
    assert list(rec.accelerations) == list(train.accelerations) == [4, 8]
    assert list(rec.center_fractions) == list(train.center_fractions) == [0.08, 0.04]

    def choices(parser, option):
        actions = [a for a in parser._actions if option in a.option_strings]
        if not actions:  # a subcommand's option
            sub = next(a for a in parser._actions if getattr(a, "choices", None) and "reconstruct" in a.choices)
            actions = [a for a in sub.choices["reconstruct"]._actions if option in a.option_strings]
        return list(actions[0].choices)

    assert choices(build_parser(), "--mask-type") == choices(build_train_parser(), "--mask-type") == sorted(MASK_TYPES)
    assert choices(build_parser(), "--challenge") == choices(build_train_parser(), "--challenge")


@pytest.mark.parametrize("argv", [["--accelerations", "0.5"], ["--center-fractions", "1.5"]])
def test_reconstruct_and_train_refuse_the_same_out_of_range_lists(argv, capsys):
    from recon.cli import build_parser
    from recon.train.cli import build_parser as build_train_parser

    for parser, prefix in ((build_parser(), ["reconstruct", "in", "-o", "out"]), (build_train_parser(), [])):
        with pytest.raises(SystemExit) as info:
            parser.parse_args([*prefix, *argv])
        assert info.value.code == 2
        assert argv[0] in capsys.readouterr().err
