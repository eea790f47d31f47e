"""Fine-tuning: TrainConfig.init_weights starts a run from recon or fastMRI weights; and the
self-supervised (SSDU) path of the training loop on a tiny physics corpus."""

from __future__ import annotations

import pytest
import torch

from recon.data.corpus import CorpusConfig, build_corpus
from recon.train import TrainConfig
from recon.train.loop import train

KWARGS = {"num_cascades": 1, "chans": 4, "pools": 2, "sens_chans": 2, "sens_pools": 1}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    config = CorpusConfig.toy(num_train_subjects=1, num_val_subjects=1, num_heldout_subjects=0, slices_per_volume=1,
                              matrix_sizes=((32, 32),), coil_counts=(4,))
    return build_corpus(config, tmp_path_factory.mktemp("corpus"), progress=False, splits=("train", "val"))


def _config(corpus, out, **changes):
    base = dict(model="varnet", model_kwargs=KWARGS, train_data=str(corpus["train"]), val_data=str(corpus["val"]),
                epochs=1, max_steps=1, output_dir=str(out), resume=False, device="cpu", progress=False,
                mask_type="equispaced_fraction", center_fractions=(0.08,), accelerations=(4,))
    base.update(changes)
    return TrainConfig(**base)


def _params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_init_weights_from_a_fastmri_state_dict(corpus, tmp_path):
    fastmri_models = pytest.importorskip("fastmri.models")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        reference = fastmri_models.VarNet(**KWARGS)
    path = tmp_path / "varnet_state_dict.pt"
    torch.save(reference.state_dict(), path)
    result = train(_config(corpus, tmp_path / "run", init_weights=str(path), lr=1e-12))
    tuned = result.model.state_dict()
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(tuned[key], value, atol=1e-8, rtol=0)


def test_init_weights_from_a_recon_run_and_ssdu_loop(corpus, tmp_path):
    first = train(_config(corpus, tmp_path / "a", self_supervised="ssdu"))
    assert first.history[0]["train_loss"] > 0 and "val_ssim" in first.history[0]
    start = _params(first.model)
    second = train(_config(corpus, tmp_path / "b", init_weights=str(first.last_checkpoint), lr=1e-12))
    for key, value in start.items():
        torch.testing.assert_close(second.model.state_dict()[key], value, atol=1e-8, rtol=0)
    fresh = train(_config(corpus, tmp_path / "c", lr=1e-12))
    assert any(not torch.allclose(fresh.model.state_dict()[k], v) for k, v in start.items())


def test_bad_init_weights(corpus, tmp_path):
    with pytest.raises(ValueError, match="TrainConfig.init_weights must be"):
        _config(corpus, tmp_path, init_weights="")
    with pytest.raises(FileNotFoundError):
        train(_config(corpus, tmp_path / "x", init_weights=str(tmp_path / "missing.ckpt")))


def _write(path, kspace, target=True):
    import numpy as np

    from recon.data.header import make_ismrmrd_header
    from recon.data.io import write_fastmri_file

    h, w = kspace.shape[-2:]
    header = make_ismrmrd_header((h, w), (h, w), num_coils=kspace.shape[1] if kspace.ndim == 4 else 1, num_slices=kspace.shape[0])
    extra = {"reconstruction_rss": np.ones((kspace.shape[0], h, w), np.float32)} if target else {}
    write_fastmri_file(path, kspace.astype(np.complex64), header, attrs={"max": 1.0}, **extra)


def test_training_folders_are_checked(corpus, tmp_path):
    import numpy as np

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    _write(mixed / "multi.h5", np.ones((1, 2, 16, 16)))
    _write(mixed / "single.h5", np.ones((1, 16, 16)))
    with pytest.raises(ValueError, match="train_data folder .* mixes challenges"):
        train(_config(corpus, tmp_path / "r1", train_data=str(mixed)))
    with pytest.raises(ValueError, match="val_data folder .* mixes challenges"):
        train(_config(corpus, tmp_path / "r2", val_data=str(mixed)))
    no_targets = tmp_path / "no_targets"
    no_targets.mkdir()
    with pytest.raises(ValueError, match="train_data folder .* contains no HDF5 files"):
        train(_config(corpus, tmp_path / "r3", train_data=str(no_targets)))
    rng = np.random.default_rng(0)
    _write(no_targets / "a.h5", rng.standard_normal((1, 4, 32, 32)) + 1j * rng.standard_normal((1, 4, 32, 32)), target=False)
    with pytest.raises(ValueError, match="train_data folder .* no usable multicoil files: a.h5: no 'reconstruction_rss'"):
        train(_config(corpus, tmp_path / "r4", train_data=str(no_targets)))
    # self-supervised training needs no targets
    result = train(_config(corpus, tmp_path / "r5", train_data=str(no_targets), self_supervised="ssdu"))
    assert result.global_step == 1
