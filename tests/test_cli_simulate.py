"""`recon simulate`'s scanner options: each reaches recon.data.SimulationConfig, bad values name the option."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from recon.cli import main
from recon.data.io import save_nifti
from recon.data.simulate import SimulationConfig, simulate_nifti


@pytest.fixture(scope="module")
def nifti(tmp_path_factory):
    root = tmp_path_factory.mktemp("nii")
    y, x = np.meshgrid(np.linspace(-1, 1, 40), np.linspace(-1, 1, 32), indexing="ij")
    volume = np.stack([(x**2 + y**2 < 0.7) * (1.0 + 0.3 * x + 0.1 * s) for s in range(2)], axis=-1).astype(np.float32)
    path = root / "head.nii.gz"
    save_nifti(path, volume)
    return path


SCANNER = [
    "--coils", "6", "--snr", "25", "--coil-radius", "1.8", "--coil-rotation", "0.7", "--coil-offset", "0.1,-0.2",
    "--noise-correlation", "0.3", "--phase-amplitude", "1.2", "--phase-order", "3", "--b0-amplitude", "2.0",
    "--phase-encoding", "height", "--matrix-size", "48x36", "--readout-oversampling", "2", "--seed", "3",
]


def test_scanner_options_reach_the_simulation(nifti, tmp_path, capsys):
    assert main(["simulate", str(nifti), "-o", str(tmp_path / "cli"), *SCANNER]) == 0
    (written,) = capsys.readouterr().out.strip().splitlines()
    # the same scanner through the Python API: the CLI must give the identical file content
    config = SimulationConfig(
        num_coils=6, snr=25.0, coil_radius=1.8, coil_rotation=0.7, coil_offset=(0.1, -0.2), noise_correlation=0.3,
        phase_amplitude=1.2, phase_order=3, b0_amplitude=2.0, phase_encoding="height", matrix_size=(48, 36),
        readout_oversampling=2, acquisition="SIM",
    )
    reference = simulate_nifti(nifti, tmp_path / "api", config=config, seed=3)
    with h5py.File(written) as a, h5py.File(reference) as b:
        np.testing.assert_array_equal(a["kspace"][()], b["kspace"][()])
        np.testing.assert_array_equal(a["reconstruction_rss"][()], b["reconstruction_rss"][()])
        assert a["kspace"].shape[1] == 6
        assert a["kspace"].shape[2] == 2 * a["reconstruction_rss"].shape[1]  # 2x readout oversampling
    # and each option changes the k-space (none is silently ignored)
    with h5py.File(written) as hf:
        base = hf["kspace"][()]
    for i in range(4, len(SCANNER) - 2, 2):  # every option after --coils/--snr, except the seed
        flag, value = SCANNER[i], SCANNER[i + 1]
        argv = [a for j, a in enumerate(SCANNER) if j not in (i, i + 1)]
        out = tmp_path / f"drop{i}"
        assert main(["simulate", str(nifti), "-o", str(out), *argv]) == 0, flag
        (path,) = capsys.readouterr().out.strip().splitlines()
        with h5py.File(path) as hf:
            other = hf["kspace"][()]
        assert other.shape != base.shape or not np.allclose(other, base), f"{flag} {value} had no effect"


@pytest.mark.parametrize(
    "argv, name",
    [
        (["--coil-radius", "0.5"], "--coil-radius"),
        (["--coil-radius", "nan"], "--coil-radius"),
        (["--coil-offset", "0.9,0.9"], "--coil-offset"),
        (["--coil-offset", "0.1"], "--coil-offset"),
        (["--noise-correlation", "1.5"], "--noise-correlation"),
        (["--phase-amplitude", "-1"], "--phase-amplitude"),
        (["--phase-order", "-1"], "--phase-order"),
        (["--b0-amplitude", "-0.5"], "--b0-amplitude"),
        (["--phase-encoding", "diagonal"], "--phase-encoding"),
        (["--matrix-size", "1,64"], "--matrix-size"),
        (["--matrix-size", "64"], "--matrix-size"),
        (["--coil-rotation", "inf"], "--coil-rotation"),
    ],
)
def test_bad_scanner_options_name_the_option(nifti, tmp_path, capsys, argv, name):
    try:
        status = main(["simulate", str(nifti), "-o", str(tmp_path / "out"), *argv])
    except SystemExit as exit_:  # argparse's usage errors
        status = exit_.code
    err = capsys.readouterr().err
    assert status == 2
    assert name in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.strip()]) == 1
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
