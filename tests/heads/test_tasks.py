"""recon.train.tasks_heads: every task trains, checkpoints, resumes and writes a loadable weight file;
the synthesis scores against an independent numpy computation; `recon train --task` end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from recon.train import tasks_heads as T


def _items(n=2, shape=(20, 24, 12), seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        mask = np.zeros(shape, bool)
        mask[4:16, 5:19, 2:10] = True
        base = rng.random(shape).astype(np.float32) * mask
        out.append({"t1w": base + 0.1, "t2w": (1 - base) * mask + 0.05, "flair": base ** 2 + 0.02,
                    "pd": base + 0.3, "mask": mask})
    return out


TASKS = [
    dict(task="synthesis", arch="unet", chans=4, depth=2, batch_size=2),
    dict(task="synthesis", arch="resnet3d", chans=4, depth=1, batch_size=1, patch_size=8, crop_axial=(0.2, 0.8)),
    dict(task="cyclegan", source="t1w", target="t2w", chans=4, depth=2, batch_size=1),
    dict(task="gan", chans=4, latent_dim=8, image_size=16, batch_size=4),
    dict(task="denoise", chans=4, depth=2, batch_size=2, patch_size=16),
]


@pytest.mark.slow
@pytest.mark.parametrize("fields", TASKS, ids=lambda f: f["task"] + "-" + f.get("arch", ""))
def test_task_trains_resumes_and_loads(tmp_path, fields):
    data = _items()
    config = T.HeadConfig(**fields, steps=2, output_dir=str(tmp_path), train_data="phantom:0-1")
    result = T.train_head(config, data)
    assert result.steps == 2 and result.weights.is_file() and (tmp_path / "last.ckpt").is_file()
    more = T.train_head(T.HeadConfig(**fields, steps=3, output_dir=str(tmp_path), train_data="phantom:0-1"), data)
    assert more.steps == 3  # resumed from step 2
    model, cfg, card = T.load_head(result.weights)
    assert cfg.task == fields["task"] and card["steps"] == 3 and not model.training
    assert all(p.dtype == torch.float32 for p in model.parameters())


@pytest.mark.slow
def test_same_seed_same_weights(tmp_path):
    fields = dict(task="synthesis", arch="unet", chans=4, depth=2, batch_size=2, steps=2, resume=False)
    a = T.train_head(T.HeadConfig(**fields, output_dir=str(tmp_path / "a")), _items())
    b = T.train_head(T.HeadConfig(**fields, output_dir=str(tmp_path / "b")), _items())
    sa, sb = torch.load(a.weights)["state_dict"], torch.load(b.weights)["state_dict"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_synthesis_scores_against_numpy():
    rng = np.random.default_rng(3)
    truth = rng.random((16, 18, 14))
    pred = truth + 0.1 * rng.standard_normal(truth.shape)
    mask = np.zeros(truth.shape, bool)
    mask[3:13, 2:15, 2:12] = True
    s = T.synthesis_scores(pred, truth, mask)
    z = lambda v: (v - v[mask].mean()) / v[mask].std()  # noqa: E731
    zp, zt = z(pred), z(truth)
    err = zp[mask] - zt[mask]
    rng_ = zt[mask].max() - zt[mask].min()
    assert s["mae"] == pytest.approx(np.abs(err).mean(), rel=1e-10)
    assert s["psnr"] == pytest.approx(10 * math.log10(rng_ ** 2 / np.mean(err ** 2)), rel=1e-10)
    assert T.synthesis_scores(truth, truth, mask)["ssim"] == pytest.approx(1.0)
    assert s["ssim"] < 1
    # scale and offset of the prediction do not matter (z-scoring)
    s2 = T.synthesis_scores(5 * pred + 3, truth, mask)
    assert s2["psnr"] == pytest.approx(s["psnr"], rel=1e-10)


def test_normalise_volume_is_scale_free():
    v = np.random.default_rng(0).random((8, 9, 10)).astype(np.float32)
    a, sa = T.normalise_volume(v)
    b, sb = T.normalise_volume(250 * v)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    assert sb == pytest.approx(250 * sa, rel=1e-6)
    fg = v[v > v.mean()]
    assert sa == pytest.approx(fg.mean(), rel=1e-6)


def test_config_checks():
    with pytest.raises(ValueError, match="task must be one of"):
        T.HeadConfig(task="segment")
    with pytest.raises(ValueError, match="source must be one of"):
        T.HeadConfig(source="dwi")
    with pytest.raises(ValueError, match="target must be one of"):
        T.HeadConfig(target="ct")
    with pytest.raises(ValueError, match="source and target must differ"):
        T.HeadConfig(source="t1", target="t1w")
    with pytest.raises(ValueError, match="steps must be a positive int"):
        T.HeadConfig(steps=0)
    with pytest.raises(ValueError, match="snr_range"):
        T.HeadConfig(snr_range=(-1.0, 5.0))
    with pytest.raises(ValueError, match="phantom data must"):
        T.load_data("phantom:a-b", ["t1w"])


def test_load_head_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a file nor a bundled head"):
        T.load_head("no-such-head")
    bad = tmp_path / "x.pt"
    torch.save({"hello": 1}, bad)
    with pytest.raises(ValueError, match="not a recon head weight file"):
        T.load_head(bad)


def test_recon_train_task_on_a_nifti_folder(tmp_path):
    from recon.cli import main
    from recon.data.io import save_nifti

    for k, item in enumerate(_items(2)):
        for c in ("t1w", "flair"):
            (tmp_path / "data" / c).mkdir(parents=True, exist_ok=True)
            save_nifti(tmp_path / "data" / c / f"sub-{k}.nii.gz", item[c])
    out = tmp_path / "run"
    status = main(["train", "--task", "synthesis", "--source", "t1", "--target", "flair", "--chans", "4", "--depth", "2",
                   "--batch-size", "2", "--steps", "2", "--train-data", str(tmp_path / "data"), "--output-dir", str(out)])
    assert status == 0
    assert (out / "synthesis-unet-t1w-flair.pt").is_file()
    assert main(["train", "--task", "synthesis", "--source", "dwi", "--output-dir", str(out)]) == 2
