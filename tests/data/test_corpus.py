"""recon.data.corpus: splits, held-out sources, determinism, caching, folder checks; and the
simulation variety of recon.data.simulate (coil ring geometry, B0 phase, phase encoding)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from recon.data import SliceDataset
from recon.data.corpus import (
    CorpusConfig,
    build_corpus,
    check_training_folder,
    corpus_dir,
    random_simulation_config,
)
from recon.data.simulate import SimulationConfig, b0_phase, birdcage_maps, simulate_multicoil

TINY = dict(
    num_train_subjects=2, num_val_subjects=1, num_heldout_subjects=2, slices_per_volume=1,
    matrix_sizes=((32, 32), (32, 24)), coil_counts=(4,), include_real=False,
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    return root, build_corpus(CorpusConfig.toy(**TINY), root, progress=False)


def test_splits_are_fastmri_folders(corpus):
    _, folders = corpus
    assert set(folders) == {"train", "val", "test_heldout"}
    for split, folder in folders.items():
        files = sorted(folder.glob("*.h5"))
        assert files, split
        ds = SliceDataset(folder, challenge="multicoil")
        assert len(ds) >= len(files)
        with h5py.File(files[0]) as hf:
            assert hf["kspace"].ndim == 4 and "reconstruction_rss" in hf
            assert hf.attrs["max"] > 0


def test_heldout_split_holds_only_untrained_sources(corpus):
    root, folders = corpus
    top = folders["train"].parent
    train = json.loads((top / "train.json").read_text())
    val = json.loads((top / "val.json").read_text())
    held = json.loads((top / "test_heldout.json").read_text())
    trained_contrasts = {r["contrast"] for r in train + val}
    assert trained_contrasts <= {"t1w", "t2w", "pd", "flair", "gre"}
    sources = [r["source"] for r in held]
    assert "real:dipy_t1_coronal_slice.nii.gz" in sources and "real:dipy_b0_10slices.nii.gz" in sources
    for record in held:
        if record["source"].startswith("phantom:"):
            assert record["contrast"] == "ir" and record["orientation"] in ("coronal", "sagittal")
            assert record["simulation"]["num_coils"] == 8
    assert all(r["orientation"] == "axial" for r in train + val)
    assert not {r["source"] for r in train + val} & {s for s in sources if s.startswith("real:")}
    seeds = {tuple(r["volume_seed"]) for r in train + val + held}
    assert len(seeds) == len(train) + len(val) + len(held)  # no subject twice


def test_deterministic_and_cached(corpus, tmp_path):
    root, folders = corpus
    config = CorpusConfig.toy(**TINY)
    assert corpus_dir(config, root) == folders["train"].parent
    stamp = {p.name: p.stat().st_mtime_ns for p in folders["train"].glob("*.h5")}
    again = build_corpus(config, root, progress=False, splits=("train",))
    assert {p.name: p.stat().st_mtime_ns for p in again["train"].glob("*.h5")} == stamp  # reused
    other = build_corpus(config, tmp_path, progress=False, splits=("train",))
    for a in sorted(folders["train"].glob("*.h5")):
        with h5py.File(a) as ha, h5py.File(other["train"] / a.name) as hb:
            np.testing.assert_array_equal(ha["kspace"][()], hb["kspace"][()])
    assert not list(tmp_path.glob("corpus-*/.train.*"))  # no temporary folders left
    changed = CorpusConfig.toy(**{**TINY, "seed": 1})
    assert corpus_dir(changed, root) != corpus_dir(config, root)


def test_scanner_variety():
    rng = np.random.default_rng(0)
    configs = [random_simulation_config(rng, coil_counts=(4, 32)) for _ in range(200)]
    assert {c.num_coils for c in configs} == {4, 32}
    assert {c.phase_encoding for c in configs} == {"width", "height"}
    assert {c.readout_oversampling for c in configs} == {1, 2}
    assert any(c.b0_amplitude > 0 for c in configs) and any(c.b0_amplitude == 0 for c in configs)
    snrs = [c.snr for c in configs]
    assert 15 <= min(snrs) and max(snrs) <= 60
    assert all(c.coil_radius - np.hypot(*c.coil_offset) > 1 for c in configs)


# -- simulation variety (recon.data.simulate) ----------------------------------------------------
def test_birdcage_without_rotation_or_offset_matches_sigpy():
    sigpy_mri = pytest.importorskip("sigpy.mri")
    from recon.data.simulate import _birdcage_moved

    ours = _birdcage_moved(6, 30, 34, 1.5, 0.0, (0.0, 0.0))
    ref = sigpy_mri.birdcage_maps((6, 30, 34), r=1.5)
    ref = ref / np.sqrt((np.abs(ref) ** 2).sum(0))
    np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_rotating_the_ring_by_one_coil_shifts_the_coils():
    nc = 8
    base = birdcage_maps(nc, (40, 40), 1.5)
    turned = birdcage_maps(nc, (40, 40), 1.5, rotation=2 * np.pi / nc)
    np.testing.assert_allclose(np.abs(turned[:-1]), np.abs(base[1:]), atol=1e-5)


def test_offset_moves_the_sensitivity_centre():
    base = np.abs(birdcage_maps(4, (64, 64), 1.5, offset=(0.0, 0.0)))[0]
    moved = np.abs(birdcage_maps(4, (64, 64), 1.5, offset=(0.0, 0.3)))[0]
    # coil 0 sits at +x; shifting the ring to +x brings it closer: more signal on the right
    assert moved[:, 48:].mean() / moved[:, :16].mean() > base[:, 48:].mean() / base[:, :16].mean()


def test_b0_phase_peak_and_reproducibility():
    a = b0_phase((40, 50), np.random.default_rng(1), 2.5)
    b = b0_phase((40, 50), np.random.default_rng(1), 2.5)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a).max() == pytest.approx(2.5, rel=1e-5)
    assert np.all(b0_phase((8, 8), np.random.default_rng(0), 0.0) == 0)


def test_phase_encoding_height_turns_the_image():
    rng = np.random.default_rng(0)
    images = rng.random((2, 24, 32)).astype(np.float32)
    config = SimulationConfig(num_coils=4, snr=None, phase_amplitude=0.0)
    turned = simulate_multicoil(np.rot90(images, axes=(1, 2)).copy(), config, seed=0)
    height = simulate_multicoil(images, SimulationConfig(num_coils=4, snr=None, phase_amplitude=0.0, phase_encoding="height"), seed=0)
    np.testing.assert_array_equal(turned.kspace, height.kspace)
    assert height.kspace.shape[-2:] == (32, 32)


def test_new_fields_default_to_the_old_model():
    config = SimulationConfig()
    assert (config.coil_rotation, config.coil_offset, config.b0_amplitude, config.phase_encoding) == (0.0, (0.0, 0.0), 0.0, "width")
    assert birdcage_maps(8, (16, 16)) is birdcage_maps(8, (16, 16), rotation=0.0, offset=(0.0, 0.0))


# -- training-folder checks ---------------------------------------------------------------------
def _write(path, kspace, target=True):
    from recon.data.header import make_ismrmrd_header
    from recon.data.io import write_fastmri_file

    h, w = kspace.shape[-2:]
    header = make_ismrmrd_header((h, w), (h, w), num_coils=kspace.shape[1] if kspace.ndim == 4 else 1, num_slices=kspace.shape[0])
    targets = {"reconstruction_rss": np.ones((kspace.shape[0], h, w), np.float32)} if target else {}
    write_fastmri_file(path, kspace.astype(np.complex64), header, attrs={"max": 1.0}, **targets)


def test_check_training_folder(tmp_path, corpus):
    _, folders = corpus
    assert len(check_training_folder(folders["train"])) == len(list(folders["train"].glob("*.h5")))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="contains no HDF5 files"):
        check_training_folder(empty)
    with pytest.raises(FileNotFoundError, match="training data folder not found"):
        check_training_folder(tmp_path / "missing")
    no_targets = tmp_path / "no_targets"
    no_targets.mkdir()
    _write(no_targets / "a.h5", np.ones((1, 2, 8, 8)), target=False)
    (no_targets / "b.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match=r"no usable multicoil files: a.h5: no 'reconstruction_rss' target.*b.h5: not a readable"):
        check_training_folder(no_targets)
    assert [p.name for p in check_training_folder(no_targets, require_targets=False)] == ["a.h5"]
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    _write(mixed / "multi.h5", np.ones((1, 2, 8, 8)))
    _write(mixed / "single.h5", np.ones((1, 8, 8)))
    with pytest.raises(ValueError, match=r"mixes challenges: multicoil files \['multi.h5'\] and singlecoil files \['single.h5'\]"):
        check_training_folder(mixed)
    single = tmp_path / "single"
    single.mkdir()
    _write(single / "single.h5", np.ones((1, 8, 8)))
    with pytest.raises(ValueError, match="readable files are singlecoil, the run expects challenge='multicoil'"):
        check_training_folder(single)
    with pytest.raises(ValueError, match="challenge must be"):
        check_training_folder(single, "knee")


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"contrasts": ("t1w", "ir")}, "heldout_contrasts must not appear in contrasts"),
        ({"contrasts": ("dwi",)}, "contrasts must be a tuple of"),
        ({"contrasts": ()}, "contrasts must not be empty"),
        ({"field_strengths": (7.0,)}, "field_strengths must be"),
        ({"slices_per_volume": 0}, "slices_per_volume must be an int >= 1"),
        ({"matrix_sizes": ((8, 8),)}, "matrix_sizes must be"),
        ({"snr_range": (0.0, 10.0)}, "snr_range must be"),
        ({"fov_mm": (300.0, 200.0)}, "fov_mm must be"),
        ({"orientations": ("axial", "oblique")}, r"orientations must be a non-empty tuple of distinct \['axial', 'coronal', 'sagittal'\], got \('axial', 'oblique'\)"),
        ({"orientations": "axial"}, "orientations must be a non-empty tuple"),
        ({"orientations": ()}, "orientations must be a non-empty tuple"),
        ({"orientations": ("axial", "axial")}, "orientations must be a non-empty tuple of distinct"),
    ],
)
def test_bad_corpus_config(changes, match):
    with pytest.raises(ValueError, match=match):
        CorpusConfig.toy(**changes)


def test_bad_build_arguments(tmp_path):
    with pytest.raises(ValueError, match="splits must be a sequence of"):
        build_corpus(CorpusConfig.toy(), tmp_path, splits=("test",))
    with pytest.raises(ValueError, match="num_workers must be"):
        build_corpus(CorpusConfig.toy(), tmp_path, num_workers=-1)
    with pytest.raises(TypeError, match="config must be a CorpusConfig"):
        build_corpus({}, tmp_path)


# -- slice orientations of train / val ----------------------------------------------------------
def test_default_orientations_keep_the_keys_of_older_corpora():
    # folder names of corpora built before the field existed (the stage-1 / stage-2 training corpora
    # and the full preset's, whose held-out split scores every run): the key must not move
    assert CorpusConfig().key() == "05473a73"
    common = dict(slices_per_volume=4, coil_counts=(4, 6, 8, 12, 16))
    assert CorpusConfig(num_train_subjects=40, num_val_subjects=2, **common).key() == "8b1471ed"
    assert CorpusConfig(num_train_subjects=160, num_val_subjects=8, **common).key() == "9390d4de"
    assert CorpusConfig(orientations=["axial"]).key() == "05473a73"  # a list is the same tuple
    assert CorpusConfig(orientations=("axial", "coronal")).key() != CorpusConfig().key()
    assert CorpusConfig(orientations=("axial", "coronal")).key() != CorpusConfig(orientations=("coronal", "axial")).key()


def test_orientations_cycle_over_train_and_val_subjects():
    from recon.data.corpus import _jobs

    config = CorpusConfig.toy(num_train_subjects=7, num_val_subjects=3, orientations=("axial", "coronal", "sagittal"))
    train = [j.orientation for j in _jobs(config, "train") if j.kind == "phantom"]
    assert train == ["axial", "coronal", "sagittal", "axial", "coronal", "sagittal", "axial"]
    assert [j.orientation for j in _jobs(config, "val") if j.kind == "phantom"] == ["axial", "coronal", "sagittal"]
    # the held-out split does not depend on the training orientations
    assert _jobs(config, "test_heldout") == _jobs(CorpusConfig.toy(num_train_subjects=7, num_val_subjects=3), "test_heldout")
    assert all(j.orientation == "axial" for j in _jobs(CorpusConfig.toy(), "train"))


def test_coronal_and_sagittal_training_volumes(tmp_path):
    config = CorpusConfig.toy(**{**TINY, "num_train_subjects": 2, "orientations": ("coronal", "sagittal")})
    folders = build_corpus(config, tmp_path, splits=("train",), progress=False)
    records = json.loads((folders["train"].parent / "train.json").read_text())
    assert [r["orientation"] for r in records] == ["coronal", "sagittal"]
    assert [r["file"].split("_")[-1] for r in records] == [f"cor{records[0]['contrast']}.h5", f"sag{records[1]['contrast']}.h5"]
    for record in records:
        with h5py.File(folders["train"] / record["file"]) as hf:
            target = hf["reconstruction_rss"][()]
            assert hf.attrs["acquisition"].startswith(("COR", "SAG"))
        # a slab of the head, not of the background around it
        assert (target > 0.1 * target.max()).mean() > 0.2
