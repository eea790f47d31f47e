"""The slice ensemble of recon.synthesize (recon.heads.synthesis.SliceEnsemble): checked against
each network's own forward pass (float64 sums computed here), on slices, with the mirror
average, inside the volume paths, and the bad-input errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recon.heads.synthesis import (SLICE_ENSEMBLE_WEIGHTS, SliceEnsemble, UnetSynthesizer, translate_slices,
                                   unet_volume)


def _nets(seed: int = 0):
    torch.manual_seed(seed)
    return (UnetSynthesizer(chans=4, num_pool_layers=2).double().eval(),
            UnetSynthesizer(chans=6, num_pool_layers=2).double().eval())


def _slices(n: int = 3, shape=(20, 26), seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).random((n, 1, *shape)))


@pytest.mark.parametrize("weights", [[0.5, 0.5], [0.8, 0.2], [1.0, 0.0], None])
def test_forward_is_the_weighted_mean_of_each_networks_own_forward(weights):
    a, b = _nets()
    x = _slices()
    with torch.no_grad():
        ya, yb = a(x).numpy(), b(x).numpy()
        got = SliceEnsemble([a, b], weights)(x).numpy()
    wa, wb = weights if weights is not None else (0.5, 0.5)
    np.testing.assert_allclose(got, wa * ya + wb * yb, rtol=1e-12, atol=1e-12)


def test_three_members_and_a_tuple():
    a, b = _nets()
    c = UnetSynthesizer(chans=2, num_pool_layers=2).double().eval()
    x = _slices(2)
    with torch.no_grad():
        want = 0.2 * a(x).numpy() + 0.3 * b(x).numpy() + 0.5 * c(x).numpy()
        np.testing.assert_allclose(SliceEnsemble((a, b, c), (0.2, 0.3, 0.5))(x).numpy(), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("flip", [True, False])
def test_translate_slices_of_an_ensemble_is_the_mean_of_each_networks_flip_average(flip):
    a, b = _nets(1)
    x = _slices(5)
    ens = SliceEnsemble([a, b], [0.3, 0.7])
    got = translate_slices(ens, x, flip_average=flip, batch_size=2)
    with torch.no_grad():  # each network's mirror average by hand: f(x) and mirror(f(mirror(x))), H mirrored
        def own(net):
            y = net(x).numpy()
            return 0.5 * (y + net(x.flip(-2)).flip(-2).numpy()) if flip else y
        want = 0.3 * own(a) + 0.7 * own(b)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)


def test_unet_volume_of_an_ensemble():
    a, b = _nets(2)
    vol = torch.from_numpy(np.random.default_rng(3).random((18, 22, 5)))
    got = unet_volume(SliceEnsemble([a, b], [0.6, 0.4]), vol, flip_average=False)
    with torch.no_grad():
        want = np.stack([0.6 * a(vol[:, :, z][None, None])[0, 0].numpy() + 0.4 * b(vol[:, :, z][None, None])[0, 0].numpy()
                         for z in range(vol.shape[2])], axis=-1)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)


def test_slice_ensemble_weights_are_the_documented_validation_choice():
    assert SLICE_ENSEMBLE_WEIGHTS == (0.3, 0.3, 0.4)


def test_errors():
    a, b = _nets()
    with pytest.raises(ValueError, match="models must be a non-empty list of networks"):
        SliceEnsemble([])
    with pytest.raises(ValueError, match="models must be a non-empty list of networks"):
        SliceEnsemble(a)
    with pytest.raises(TypeError, match=r"models\[1\] must be a torch.nn.Module"):
        SliceEnsemble([a, "b"])
    with pytest.raises(ValueError, match="weights must be a sequence of 2 numbers"):
        SliceEnsemble([a, b], [1.0])
    with pytest.raises(ValueError, match="weights must be a sequence of 2 numbers"):
        SliceEnsemble([a, b], 0.5)
    with pytest.raises(ValueError, match=r"weights\[1\] must be >= 0.0, got -0.5"):
        SliceEnsemble([a, b], [1.5, -0.5])
    with pytest.raises(ValueError, match=r"weights\[0\] must be finite"):
        SliceEnsemble([a, b], [float("nan"), 0.5])
    with pytest.raises(TypeError, match=r"weights\[0\] must be a number"):
        SliceEnsemble([a, b], [True, 0.0])
    with pytest.raises(ValueError, match="weights must sum to 1"):
        SliceEnsemble([a, b], [0.5, 0.6])
    two = UnetSynthesizer(out_chans=2, chans=4, num_pool_layers=2).double().eval()
    with torch.no_grad(), pytest.raises(ValueError, match=r"models\[1\] returned shape \(3, 2, 20, 26\)"):
        SliceEnsemble([a, two])(_slices())


NETS = ("synthesis-unet-t1w-flair", "synthesis-unet-t1w-flair-c12", "synthesis-unet-t1w-flair-c12s2")


@pytest.mark.skipif(not set(NETS) <= set(__import__("recon.train.tasks_heads", fromlist=["x"]).available_heads()),
                    reason="bundled T1w -> FLAIR U-Nets missing")
def test_synthesize_slice_path_is_the_bundled_unets_weighted_mean():
    import recon
    from recon.train.tasks_heads import load_head

    rng = np.random.default_rng(4)
    yy, xx = np.meshgrid(np.linspace(-1, 1, 30), np.linspace(-1, 1, 26), indexing="ij")
    img = (np.where(xx ** 2 + yy ** 2 < 0.6, 1.0, 0.0) + 0.05 * rng.random((30, 26))).astype(np.float32)
    x = torch.from_numpy(img / img[img > img.mean()].astype(np.float64).mean())[None, None]  # foreground mean, here
    with torch.no_grad():
        def own(name):
            net = load_head(name)[0].double()
            return 0.5 * (net(x)[0, 0] + net(x.flip(-2)).flip(-2)[0, 0]).numpy()
        each = [own(n) for n in NETS]
    want = sum(w * y for w, y in zip(SLICE_ENSEMBLE_WEIGHTS, each))
    got = recon.synthesize(img * 50.0, source="t1", target="flair")
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(recon.synthesize(img * 50.0, source="t1", target="flair", method="unet"), got)
    # a named weight file is that one network alone
    np.testing.assert_allclose(recon.synthesize(img, source="t1", target="flair", weights=NETS[1]), each[1],
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", NETS[1:])
def test_bundled_card_command_rebuilds_the_bundled_unet(name):
    import json
    import shlex
    from pathlib import Path

    from recon.train.tasks_heads import build_head, config_from_argv, heads_dir, load_head

    card_path = Path(heads_dir()) / f"{name}.json"
    if not card_path.is_file():
        pytest.skip(f"no bundled {name}")
    card = json.loads(card_path.read_text())
    model, config, _ = load_head(name)
    rebuilt = config_from_argv(shlex.split(card["command"])[2:])  # after "recon train"
    assert (rebuilt.arch, rebuilt.chans, rebuilt.depth, rebuilt.seed, rebuilt.steps) == \
        (config.arch, config.chans, config.depth, config.seed, card["steps"])
    build_head(rebuilt).load_state_dict(model.state_dict())  # same architecture, same parameter shapes
