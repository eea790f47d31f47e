"""Phantom engine, training corpus and SSDU fed bad input: each refusal names the argument
(issue 12: unknown sequence or tissue, a self-supervised ratio outside (0, 1), a training
folder with no usable files, files of mixed challenge)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recon.data.corpus import CorpusConfig, check_training_folder
from recon.data.phantom import SEQUENCES, TISSUES, Subject, load_tissue_maps, sequence_defaults, tissue_parameters
from recon.data.simulate import SimulationConfig
from recon.train import TrainConfig
from recon.train.ssdu import SSDU, ssdu_split
from reliability_helpers import raises_naming


@pytest.fixture(scope="module")
def subject():
    return Subject(seed=0, z_range=(80, 81), voxel_size=2.0)


@pytest.mark.parametrize(
    "kwargs, names",
    [
        pytest.param(dict(sequence="T1w"), ["sequence", "'T1w'", *SEQUENCES], id="case-sensitive-sequence"),
        pytest.param(dict(sequence="dwi"), ["sequence", "'dwi'", "flair"], id="unknown-sequence"),
        pytest.param(dict(sequence="t1w", field_strength=7), ["field_strength", "7"], id="field-7T"),
        pytest.param(dict(sequence="t1w", field_strength="3T"), ["field_strength", "3T"], id="field-string"),
        pytest.param(dict(sequence="t1w", flip_angle=30.0), ["flip_angle", "t1w", "te", "tr"], id="param-of-other-sequence"),
        pytest.param(dict(sequence="t2w", te=float("nan")), ["te", "nan"], id="te-nan"),
        pytest.param(dict(sequence="t2w", tr=0.0), ["tr", "0.0"], id="tr-zero"),
        pytest.param(dict(sequence="t2w", te=5000.0), ["te", "tr"], id="te-beyond-tr"),
        pytest.param(dict(sequence="flair", ti=9000.0), ["ti", "tr"], id="ti-equals-tr"),
        pytest.param(dict(sequence="gre", flip_angle=270.0), ["flip_angle", "270"], id="flip-270"),
        pytest.param(dict(sequence="gre", flip_angle=True), ["flip_angle", "True"], id="flip-bool"),
    ],
)
def test_bad_contrast_request(subject, kwargs, names):
    with raises_naming(ValueError, *names):
        subject.contrast(**kwargs)


@pytest.mark.parametrize("tissue", ["muscle", "GM", "", "background"])
def test_unknown_tissue(subject, tissue):
    with raises_naming(ValueError, "tissue", repr(tissue), *TISSUES):
        subject.tissue_map(tissue)
    with raises_naming(ValueError, "tissue", repr(tissue)):
        tissue_parameters(tissue)


@pytest.mark.parametrize(
    "kwargs, names",
    [
        pytest.param(dict(anatomy="knee"), ["anatomy", "knee", "mni152"], id="anatomy"),
        pytest.param(dict(seed=-3), ["seed", "-3"], id="negative-seed"),
        pytest.param(dict(seed=1.5), ["seed", "1.5"], id="float-seed"),
        pytest.param(dict(voxel_size=-1.0), ["voxel_size", "-1.0"], id="voxel-negative"),
        pytest.param(dict(voxel_size=(1.0, 1.0)), ["voxel_size"], id="voxel-2d"),
        pytest.param(dict(z_range=(10, 5)), ["z_range", "(10, 5)"], id="z-range-reversed"),
        pytest.param(dict(z_range=(0, 10_000)), ["z_range"], id="z-range-too-long"),
        pytest.param(dict(variation=0.9), ["variation", "0.9"], id="variation"),
        pytest.param(dict(texture=-0.1), ["texture", "-0.1"], id="texture"),
        pytest.param(dict(deform="yes"), ["deform", "yes"], id="deform-string"),
        pytest.param(dict(max_rotation=400.0), ["max_rotation", "400"], id="rotation"),
    ],
)
def test_bad_subject(kwargs, names):
    with raises_naming(ValueError, *names):
        Subject(**{"seed": 0, **kwargs})


def test_bad_anatomy_and_sequence_helpers():
    with raises_naming(ValueError, "anatomy", "brain"):
        load_tissue_maps("brain")
    with raises_naming(ValueError, "sequence", "mprage"):
        sequence_defaults("mprage")


@pytest.mark.parametrize("rho", [0, 1, -0.5, 2.0, float("inf"), float("nan"), None, "0.4"], ids=repr)
def test_ssdu_ratio_outside_the_open_unit_interval(rho):
    mask = torch.ones(1, 1, 1, 16, 1, dtype=torch.bool)
    with raises_naming(ValueError, "rho", "(0, 1)"):
        SSDU(rho=rho)
    with raises_naming(ValueError, "rho", "(0, 1)"):
        ssdu_split(mask, (8, 16), rho=rho, generator=torch.Generator())
    with raises_naming(ValueError, "TrainConfig.ssdu_rho"):
        TrainConfig(model="varnet", self_supervised="ssdu", ssdu_rho=rho)


def _h5(path, kspace, target=True):
    from recon.data.header import make_ismrmrd_header
    from recon.data.io import write_fastmri_file

    h, w = kspace.shape[-2:]
    header = make_ismrmrd_header((h, w), (h, w), num_coils=kspace.shape[1] if kspace.ndim == 4 else 1, num_slices=1)
    extra = {"reconstruction_rss": np.ones((1, h, w), np.float32)} if target else {}
    write_fastmri_file(path, kspace.astype(np.complex64), header, attrs={"max": 1.0}, **extra)


@pytest.mark.parametrize(
    "files, names",
    [
        pytest.param({}, ["no HDF5 files"], id="empty-folder"),
        pytest.param({"notes.txt": b"x"}, ["no HDF5 files"], id="no-h5"),
        pytest.param({"bad.h5": b"truncated"}, ["no usable", "bad.h5", "not a readable HDF5"], id="corrupt-only"),
        pytest.param({"t.h5": ("multi", False)}, ["no usable", "t.h5", "reconstruction_rss"], id="test-style-only"),
        pytest.param({"a.h5": ("multi", True), "b.h5": ("single", True)}, ["mixes challenges", "a.h5", "b.h5"], id="mixed"),
        pytest.param({"s.h5": ("single", True)}, ["singlecoil", "challenge='multicoil'"], id="other-challenge"),
    ],
)
def test_training_folder_without_usable_files(tmp_path, files, names):
    for name, spec in files.items():
        if isinstance(spec, bytes):
            (tmp_path / name).write_bytes(spec)
        else:
            kind, target = spec
            shape = (1, 2, 8, 8) if kind == "multi" else (1, 8, 8)
            _h5(tmp_path / name, np.ones(shape), target)
    with raises_naming(ValueError, str(tmp_path), *names):
        check_training_folder(tmp_path, "multicoil")


@pytest.mark.parametrize(
    "kwargs, names",
    [
        pytest.param(dict(coil_offset=(0.0, 0.6)), ["coil_offset", "coil_radius"], id="ring-through-fov"),
        pytest.param(dict(coil_rotation=float("nan")), ["coil_rotation"], id="rotation-nan"),
        pytest.param(dict(b0_amplitude=-1.0), ["b0_amplitude", "-1.0"], id="b0-negative"),
        pytest.param(dict(phase_encoding="columns"), ["phase_encoding", "columns"], id="phase-encoding"),
    ],
)
def test_bad_simulation_variety(kwargs, names):
    with raises_naming(ValueError, *names):
        SimulationConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs, names",
    [
        pytest.param(dict(heldout_contrasts=("t1w",)), ["heldout_contrasts", "t1w"], id="heldout-overlap"),
        pytest.param(dict(contrasts=("T2",)), ["contrasts", "T2"], id="contrast-name"),
        pytest.param(dict(num_train_subjects=-1), ["num_train_subjects", "-1"], id="subjects"),
        pytest.param(dict(coil_counts=(0,)), ["coil_counts"], id="coils"),
    ],
)
def test_bad_corpus_config(kwargs, names):
    with raises_naming(ValueError, "CorpusConfig", *names):
        CorpusConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs, names",
    [
        pytest.param(dict(ssdu_selection="poisson"), ["TrainConfig.ssdu_selection", "poisson"], id="selection"),
        pytest.param(dict(ssdu_unit="rows"), ["TrainConfig.ssdu_unit", "rows"], id="unit"),
        pytest.param(dict(self_supervised="n2n"), ["TrainConfig.self_supervised", "n2n"], id="method"),
        pytest.param(dict(init_weights=3), ["TrainConfig.init_weights", "3"], id="init-weights-int"),
    ],
)
def test_bad_self_supervised_config(kwargs, names):
    with raises_naming(ValueError, *names):
        TrainConfig(model="varnet", **kwargs)
