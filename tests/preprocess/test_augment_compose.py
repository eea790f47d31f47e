"""Paired samples, Compose, replay and worker-independent seeding of recon.preprocess.augment."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recon.preprocess.augment import (
    AugmentedDataset,
    Compose,
    GaussianNoise,
    RandomAffine,
    RandomElastic,
    RandomFlip,
    RandomGamma,
    RandomGhosting,
    RicianNoise,
    sample_generator,
)


def _blobs(shape=(24, 28, 26)):
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    img = np.exp(-((x - 0.2) ** 2 + y**2 + (z + 0.1) ** 2) * 4) + 0.7 * np.exp(-((x + 0.4) ** 2 + (y - 0.3) ** 2 + z**2) * 10)
    return torch.from_numpy(img).float()[None]


def test_paired_label_stays_aligned_with_deformed_image():
    image = _blobs()
    label = (image > 0.5).long()
    t = Compose([RandomFlip(axes=(0, 1, 2)), RandomAffine(degrees=15, scales=0.1, translation=2),
                 RandomElastic(num_control_points=6, max_displacement=2.0)], labels=("label",))
    for seed in range(3):
        out = t({"t1": image, "t2": 2 * image, "label": label}, generator=torch.Generator().manual_seed(seed))
        assert out["label"].dtype == torch.long
        assert set(out["label"].unique().tolist()) <= {0, 1}
        agree = (out["label"] == (out["t1"] > 0.5).long()).float().mean()
        assert agree > 0.99, agree
        torch.testing.assert_close(out["t2"], 2 * out["t1"])  # same transform for every image
        assert out["label"].sum() > 0.5 * label.sum()


def test_intensity_transforms_touch_images_only():
    image = _blobs()
    label = (image > 0.5).float()
    t = Compose([RandomGamma(0.5), GaussianNoise(10), RicianNoise(10), RandomGhosting()], labels=("label",))
    out = t({"t1": image, "label": label}, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out["label"], label)
    assert not torch.equal(out["t1"], image)


def test_extras_and_affine_pass_through():
    A = np.diag([1.0, 2.0, 3.0, 1.0])
    out = RandomAffine()({"t1": _blobs(), "affine": A, "name": "s01"}, generator=torch.Generator().manual_seed(0))
    assert out["name"] == "s01" and np.array_equal(out["affine"], A)


def test_compose_replay_bit_for_bit_and_params_per_transform():
    sample = {"t1": _blobs(), "label": (_blobs() > 0.5).long()}
    t = Compose([RandomFlip(), RandomAffine(translation=3), RandomElastic(6, 2.0), RandomGamma(), RicianNoise((5, 10))],
                labels=("label",))
    out, params = t(sample, generator=torch.Generator().manual_seed(3), return_params=True)
    assert len(params) == 5 and set(params[1]) == {"rotation", "scale", "translation"}
    again = t.replay(sample, params)
    for k in out:
        assert torch.equal(again[k], out[k])
    other = t(sample, generator=torch.Generator().manual_seed(4))
    assert not torch.equal(other["t1"], out["t1"])


def test_fused_equals_sequential_draws():
    """Compose draws the same parameters as running the transforms one after another."""
    x = _blobs()
    a, e = RandomAffine(degrees=10), RandomElastic(6, 2.0)
    _, p = Compose([a, e])(x, generator=torch.Generator().manual_seed(9), return_params=True)
    g = torch.Generator().manual_seed(9)
    y, pa = a(x, generator=g, return_params=True)
    _, pe = e(y, generator=g, return_params=True)
    assert torch.equal(p[0]["rotation"], pa["rotation"]) and torch.equal(p[1]["displacement"], pe["displacement"])


def test_sample_generator_mixes_indices():
    a = torch.rand(4, generator=sample_generator(0, 1))
    b = torch.rand(4, generator=sample_generator(0, 2))
    c = torch.rand(4, generator=sample_generator(0, 1, epoch=1))
    assert not torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(a, torch.rand(4, generator=sample_generator(0, 1)))


class _Volumes(torch.utils.data.Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(100 + i)
        return {"t1": torch.rand(1, 13, 14, 12, generator=g), "label": (torch.rand(1, 13, 14, 12, generator=g) > 0.5).long()}


def test_same_seed_same_output_whatever_the_number_of_workers():
    t = Compose([RandomFlip(), RandomAffine(), RandomElastic(5, 1.5), RicianNoise((10, 20))], labels=("label",))
    ds = AugmentedDataset(_Volumes(), t, seed=1234)
    runs = []
    for workers in (0, 2):
        loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=workers, shuffle=False)
        runs.append([b for b in loader])
    for b0, b2 in zip(*runs):
        assert torch.equal(b0["t1"], b2["t1"]) and torch.equal(b0["label"], b2["label"])
    ds.set_epoch(1)
    assert not torch.equal(ds[0]["t1"], runs[0][0]["t1"][0])


def test_slices_and_batches_of_slices():
    g = torch.Generator().manual_seed(0)
    t = Compose([RandomAffine(degrees=20), RandomElastic(5, 2.0), RandomFlip(axes=(0, 1))])
    assert t(torch.rand(2, 32, 30), generator=g).shape == (2, 32, 30)
    out, params = t(torch.rand(4, 1, 32, 30), generator=g, batched=True, return_params=True)
    assert out.shape == (4, 1, 32, 30) and params[0]["rotation"].shape == (4, 1)


@pytest.mark.cuda
def test_cuda_batch_stays_on_device():
    x = torch.rand(8, 1, 32, 36, 30, device="cuda")
    g = torch.Generator(device="cuda").manual_seed(0)
    out = Compose([RandomAffine(), RandomElastic()])(x, generator=g, batched=True)
    assert out.device.type == "cuda" and out.shape == x.shape


def test_backend_argument_is_checked():
    with pytest.raises(ValueError, match="backend must be one of"):
        RandomAffine(backend="cuda")
    with pytest.raises(ValueError, match="backend must be one of"):
        Compose([RandomAffine()], backend="fast")


@pytest.mark.slow
def test_compiled_backend_matches_grid_sample_backend():
    pytest.importorskip("torch._inductor")
    x = torch.rand(2, 1, 20, 22, 21)
    sample = {"t1": x, "label": (x > 0.5).long()}
    ops = [RandomAffine(degrees=10, translation=2), RandomElastic(6, 2.0)]
    ref, params = Compose(ops, labels=("label",))(sample, generator=torch.Generator().manual_seed(0), batched=True,
                                                  return_params=True)
    out = Compose(ops, labels=("label",), backend="compiled").replay(sample, params, batched=True)
    torch.testing.assert_close(out["t1"], ref["t1"], atol=1e-5, rtol=0)
    assert (out["label"] != ref["label"]).float().mean() < 1e-3
