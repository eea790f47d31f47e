"""Issue 12's bad input through the entry points people use (``recon.train.train``, ``recon train``,
the phantom engine and ``scripts/train_bundled.py``): each refusal names the argument.

The library-level cases (``check_training_folder``, ``ssdu_split``, ``Subject.contrast``...) are in
``test_phantom.py``; here the same mistakes arrive the way a user makes them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from recon.data.header import make_ismrmrd_header
from recon.data.io import write_fastmri_file
from recon.data.phantom import Subject, sequence_defaults, tissue_parameters
from recon.train import TrainConfig, train
from recon.train.cli import main as train_main

TINY = {"num_cascades": 1, "chans": 2, "pools": 1, "sens_chans": 2, "sens_pools": 1}
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train_bundled.py"


def _h5(path: Path, shape: tuple[int, ...], target: bool = True) -> None:
    h, w = shape[-2:]
    header = make_ismrmrd_header((h, w), (h, w), num_coils=shape[1] if len(shape) == 4 else 1, num_slices=1)
    extra = {"reconstruction_rss": np.ones((1, h, w), np.float32)} if target else {}
    write_fastmri_file(path, np.ones(shape, np.complex64), header, attrs={"max": 1.0}, **extra)


def _folder(tmp_path: Path, kind: str) -> Path:
    root = tmp_path / kind
    root.mkdir()
    if kind == "mixed":
        _h5(root / "multi.h5", (1, 2, 8, 8))
        _h5(root / "single.h5", (1, 8, 8))
    elif kind == "no_targets":
        _h5(root / "test_style.h5", (1, 2, 8, 8), target=False)
    elif kind == "corrupt":
        (root / "broken.h5").write_bytes(b"not hdf5")
    return root


@pytest.mark.parametrize(
    "kind, match",
    [
        ("empty", r"train_data folder .* no HDF5 files"),
        ("corrupt", r"train_data folder .* no usable multicoil files: broken\.h5"),
        ("no_targets", r"train_data folder .* no usable multicoil files: test_style\.h5: no 'reconstruction_rss'"),
        ("mixed", r"train_data folder .* mixes challenges"),
    ],
)
def test_train_refuses_a_training_folder_without_usable_files(tmp_path, kind, match):
    config = TrainConfig(model="varnet", model_kwargs=TINY, train_data=str(_folder(tmp_path, kind)), val_data=None,
                         epochs=1, output_dir=str(tmp_path / "run"), num_threads=1, progress=False)
    with pytest.raises(ValueError, match=match):
        train(config)
    assert not (tmp_path / "run" / "last.ckpt").exists()


def test_train_refuses_mixed_validation_folder(tmp_path):
    good = tmp_path / "good"
    good.mkdir()
    _h5(good / "a.h5", (1, 2, 8, 8))
    config = TrainConfig(model="varnet", model_kwargs=TINY, train_data=str(good), val_data=str(_folder(tmp_path, "mixed")),
                         epochs=1, output_dir=str(tmp_path / "run"), num_threads=1, progress=False)
    with pytest.raises(ValueError, match=r"val_data folder .* mixes challenges"):
        train(config)


@pytest.mark.parametrize("rho", ["0", "1", "-0.2", "1.5", "nan"])
def test_recon_train_ssdu_ratio_outside_the_open_unit_interval(tmp_path, capsys, caplog, rho):
    try:
        status = train_main(["--model", "varnet", "--self-supervised", "ssdu", "--ssdu-rho", rho,
                             "--output-dir", str(tmp_path / "run")])
    except SystemExit as exit_:
        status = exit_.code
    assert status == 2
    said = capsys.readouterr().err + caplog.text  # argparse errors on stderr, config errors through logging
    assert "ssdu" in said.lower() and "rho" in said.lower(), said
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match=r"TrainConfig\.ssdu_rho"):
        TrainConfig.from_dict({"model": "varnet", "self_supervised": "ssdu", "ssdu_rho": float(rho)})


@pytest.mark.parametrize("sequence", ["dwi", "T2W", "mprage", ""])
def test_phantom_unknown_sequence(sequence):
    subject = Subject(seed=0, z_range=(20, 21), voxel_size=4.0)
    with pytest.raises(ValueError, match=r"sequence"):
        subject.contrast(sequence)
    with pytest.raises(ValueError, match=r"sequence"):
        sequence_defaults(sequence)


@pytest.mark.parametrize("tissue", ["muscle", "WM ", "skull"])
def test_phantom_unknown_tissue(tissue):
    with pytest.raises(ValueError, match=r"tissue"):
        tissue_parameters(tissue)
    with pytest.raises(ValueError, match=r"tissue"):
        Subject(seed=0, z_range=(20, 21), voxel_size=4.0).tissue_map(tissue)


def test_train_bundled_unknown_preset(capsys):
    spec = importlib.util.spec_from_file_location("train_bundled_rel", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    with pytest.raises(SystemExit):
        script.main(["reproduce", "--run-dir", "/nonexistent-recon-run", "--preset", "gpu"])
    assert "--preset" in capsys.readouterr().err
