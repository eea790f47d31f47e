"""Checkpoints: fastMRI key names, atomic save/load round trip, fastMRI checkpoints, errors."""

from __future__ import annotations

import os

import pytest
import torch

from recon.models import CascadeNet, Unet, VarNet
from recon.train import build_model, checkpoint_state_dict, export_weights, load_checkpoint, load_model, save_checkpoint
from recon.train import checkpoint as checkpoint_module

from .conftest import TINY_VARNET


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    kspace = torch.randn(1, 4, 32, 32, 2, generator=g)
    mask = torch.zeros(1, 1, 1, 32, 1, dtype=torch.bool)
    mask[..., ::2, :] = True
    mask[..., 12:20, :] = True
    return kspace * mask, mask


def test_varnet_round_trip_keys_and_outputs(tmp_path):
    model = build_model("varnet", TINY_VARNET, seed=3)
    path = save_checkpoint(
        tmp_path / "sub" / "m.ckpt", model, model_name="varnet", model_kwargs=TINY_VARNET,
        epoch=2, global_step=17, config={"lr": 0.01}, metrics={"ssim": 0.5},
    )
    ckpt = load_checkpoint(path)
    # fastMRI's VarNetModule stores the network as self.varnet: keys are "varnet.<param>"
    reference = VarNet(**TINY_VARNET).state_dict()
    assert set(ckpt["state_dict"]) == {f"varnet.{key}" for key in reference}
    assert ckpt["epoch"] == 2 and ckpt["global_step"] == 17
    assert ckpt["hyper_parameters"]["lr"] == 0.01 and ckpt["hyper_parameters"]["num_cascades"] == 2
    assert ckpt["recon"]["model"] == "varnet" and ckpt["recon"]["metrics"] == {"ssim": 0.5}
    # a fresh VarNet loads the stripped state dict and reproduces the output exactly
    fresh = VarNet(**TINY_VARNET)
    fresh.load_state_dict(checkpoint_state_dict(ckpt, "varnet"))
    loaded, _ = load_model(path)
    kspace, mask = _inputs()
    with torch.no_grad():
        expected = model.eval()(kspace, mask, 8)
        assert torch.equal(fresh.eval()(kspace, mask, 8), expected)
        assert torch.equal(loaded(kspace, mask, 8), expected)
    assert not loaded.training
    # no temporary files are left next to the checkpoint
    assert os.listdir(tmp_path / "sub") == ["m.ckpt"]


def test_unet_keys_match_fastmri_unet_module(tmp_path):
    FastUnet = pytest.importorskip("fastmri.models").Unet
    kwargs = {"in_chans": 1, "out_chans": 1, "chans": 4, "num_pool_layers": 2, "drop_prob": 0.0}
    model = build_model("unet", kwargs, impl="fastmri", seed=0)
    path = save_checkpoint(tmp_path / "u.ckpt", model, model_name="unet", model_kwargs=kwargs)
    ckpt = load_checkpoint(path)
    assert set(ckpt["state_dict"]) == {f"unet.{key}" for key in FastUnet(**kwargs).state_dict()}


def test_loads_fastmri_lightning_style_and_bare_state_dicts(tmp_path):
    FastVarNet = pytest.importorskip("fastmri.models").VarNet
    reference = FastVarNet(**TINY_VARNET)
    lightning = {
        "state_dict": {**{f"varnet.{k}": v for k, v in reference.state_dict().items()}, "loss.w": torch.ones(1, 1, 7, 7) / 49},
        "hyper_parameters": {**TINY_VARNET, "lr": 3e-4, "lr_step_size": 40},
        "epoch": 5,
    }
    torch.save(lightning, tmp_path / "lightning.ckpt")
    torch.save(reference.state_dict(), tmp_path / "bare.pt")
    kspace, mask = _inputs(1)
    with torch.no_grad():
        expected = reference.eval()(kspace, mask, 8)
        model, _ = load_model(tmp_path / "lightning.ckpt", impl="fastmri")  # name and kwargs from the file
        assert torch.equal(model(kspace, mask, 8), expected)
        model, _ = load_model(tmp_path / "bare.pt", model_name="varnet", model_kwargs=TINY_VARNET, impl="fastmri")
        assert torch.equal(model(kspace, mask, 8), expected)


def test_export_weights_drops_optimizer_state(tmp_path):
    model = build_model("varnet", TINY_VARNET, seed=0)
    optimizer = torch.optim.Adam(model.parameters())
    model(*_inputs(), 8).sum().backward()
    optimizer.step()
    src = save_checkpoint(tmp_path / "full.ckpt", model, model_name="varnet", model_kwargs=TINY_VARNET, optimizer=optimizer)
    dst = export_weights(src, tmp_path / "w" / "small.pt")
    small = load_checkpoint(dst)
    assert "optimizer_states" not in small and "optimizer_states" in load_checkpoint(src)
    assert dst.stat().st_size < src.stat().st_size
    half = load_checkpoint(export_weights(src, tmp_path / "half.pt", half=True))
    assert all(v.dtype == torch.float16 for v in half["state_dict"].values() if v.is_floating_point())


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.ckpt"):
        load_checkpoint(tmp_path / "junk.ckpt")
    torch.save({"epoch": 1}, tmp_path / "nostate.ckpt")
    with pytest.raises(ValueError, match="no 'state_dict'"):
        load_checkpoint(tmp_path / "nostate.ckpt")
    torch.save([1, 2], tmp_path / "list.ckpt")
    with pytest.raises(ValueError, match="must be a dict"):
        load_checkpoint(tmp_path / "list.ckpt")
    torch.save({"a.weight": torch.zeros(2)}, tmp_path / "anon.pt")
    with pytest.raises(ValueError, match="cannot tell which model"):
        load_model(tmp_path / "anon.pt")
    with pytest.raises(ValueError, match="model_name must be one of"):
        load_model(tmp_path / "anon.pt", model_name="resnet")
    model = build_model("varnet", TINY_VARNET, seed=0)
    with pytest.raises(ValueError, match="model_name must be one of"):
        save_checkpoint(tmp_path / "x.ckpt", model, model_name="vn", model_kwargs={})
    path = save_checkpoint(tmp_path / "v.ckpt", model, model_name="varnet", model_kwargs=TINY_VARNET)
    with pytest.raises(ValueError, match="weights do not fit"):
        load_model(path, model_kwargs={**TINY_VARNET, "chans": 6})
    with pytest.raises(ValueError, match="model_name must be one of"):
        checkpoint_state_dict(load_checkpoint(path), "vn")


def test_build_model_seed_leaves_global_rng_alone():
    state = torch.get_rng_state()
    a = build_model("varnet", TINY_VARNET, seed=11)
    b = build_model("varnet", TINY_VARNET, seed=11)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    with pytest.raises(ValueError, match=r"model_kwargs for 'varnet': VarNet has no arguments \['depth'\]"):
        build_model("varnet", {"depth": 3})
    with pytest.raises(ValueError, match="model must be one of"):
        build_model("resnet", {})
    with pytest.raises(ValueError, match="impl must be 'recon' or 'fastmri'"):
        build_model("varnet", {}, impl="lightning")


def test_checkpoint_of_fastmri_varnet_loads_into_recon_varnet(tmp_path):
    pytest.importorskip("fastmri.models")
    models = pytest.importorskip("recon.models")
    reference = build_model("varnet", TINY_VARNET, impl="fastmri", seed=5)
    path = save_checkpoint(tmp_path / "v.ckpt", reference, model_name="varnet", model_kwargs=TINY_VARNET)
    model, _ = load_model(path)  # impl="recon" by default
    assert isinstance(model, models.VarNet)
    kspace, mask = _inputs(2)
    with torch.no_grad():
        expected = reference.eval()(kspace, mask, 8)
        got = model(kspace, mask, 8)
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))


def _perturbed(model, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return model.eval()


@pytest.mark.parametrize("name", ["varnet", "cascade", "unet"])
def test_one_loader_reads_every_layout_and_infers_sizes(tmp_path, name):
    """Lightning layout, bare and DataParallel state dicts: sizes read off the shapes."""
    kwargs = {
        "varnet": TINY_VARNET,
        "cascade": {"num_cascades": 2, "num_convs": 3, "num_filters": 4, "sens_chans": 2, "sens_pools": 1},
        "unet": {"in_chans": 1, "out_chans": 1, "chans": 4, "num_pool_layers": 2},
    }[name]
    cls = {"varnet": VarNet, "cascade": CascadeNet, "unet": Unet}[name]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(4)
        reference = _perturbed(cls(**kwargs), 5)
    state = reference.state_dict()
    layouts = {
        "lightning.ckpt": {"state_dict": {f"{name}.{k}": v for k, v in state.items()}, "hyper_parameters": {"lr": 1e-3}},
        "bare.pt": state,
        "module.pt": {f"module.{k}": v for k, v in state.items()},
        "under_model.pth": {"model": state},
    }
    for file, content in layouts.items():
        torch.save(content, tmp_path / file)
        model, _ = load_model(tmp_path / file, model_name=name)
        assert not model.training
        assert load_model(tmp_path / file)[0].state_dict().keys() == state.keys()  # name from the keys
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), state.values()))
    # a mapping works too
    model, _ = load_model({"state_dict": state}, model_name=name)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), state.values()))


def test_bad_state_dicts(tmp_path):
    torch.save({"conv.weight": torch.zeros(3, 3)}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="do not look like a varnet checkpoint"):
        load_model(tmp_path / "bad.pt", model_name="varnet")


def test_cache_reuses_until_the_file_changes(tmp_path):
    checkpoint_module.clear_model_cache()
    path = tmp_path / "v.pt"
    torch.save(VarNet(**TINY_VARNET).state_dict(), path)
    first, _ = load_model(path, model_name="varnet", cached=True)
    again, _ = load_model(path, model_name="varnet", cached=True)
    assert again is first
    assert load_model(path, model_name="varnet")[0] is not first  # uncached: a fresh model
    stat = path.stat()
    torch.save(VarNet(**TINY_VARNET).state_dict(), path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    changed, _ = load_model(path, model_name="varnet", cached=True)
    assert changed is not first
    for i in range(checkpoint_module.MODEL_CACHE_SIZE + 2):  # bounded
        other = tmp_path / f"u{i}.pt"
        torch.save(VarNet(**TINY_VARNET).state_dict(), other)
        load_model(other, model_name="varnet", cached=True)
    assert len(checkpoint_module._MODEL_CACHE) == checkpoint_module.MODEL_CACHE_SIZE
    checkpoint_module.clear_model_cache()
    assert not checkpoint_module._MODEL_CACHE


def test_names_resolve_to_bundled_checkpoints(tmp_path, monkeypatch):
    path = tmp_path / "varnet_brain.pt"
    torch.save(VarNet(**TINY_VARNET).state_dict(), path)
    monkeypatch.setattr(checkpoint_module, "bundled_weights", lambda: {"varnet_brain": path})
    model, _ = load_model("varnet_brain", model_name="varnet")
    assert isinstance(model, VarNet)
    assert isinstance(load_model("varnet")[0], VarNet)  # a learned model's name: its bundled checkpoint
    with pytest.raises(ValueError, match="load_model needs a learned method: method must be one of"):
        load_model("cs")
    with pytest.raises(FileNotFoundError, match="neither an existing file nor a bundled checkpoint"):
        load_model(tmp_path / "missing.pt")
    with pytest.raises(TypeError, match="weights must be a path"):
        checkpoint_module.resolve_weights("varnet", 3)


def test_cascade_checkpoints_that_said_learn_lambda_with_lambda_zero_still_load(tmp_path):
    """Older cascade checkpoints (the bundled one among them, before 2026-12-07) record
    learn_lambda=True with dc_lambda=0.0, which CascadeBlock now refuses; their lambdas never
    left 0, so they load as the same model with lambda a buffer."""
    kwargs = {"num_cascades": 2, "num_convs": 2, "num_filters": 4, "dc_lambda": 0.0, "sens_chans": 2, "sens_pools": 1}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = CascadeNet(**kwargs).eval()
    path = tmp_path / "old_cascade.pt"
    torch.save({"state_dict": {f"cascade.{k}": v for k, v in net.state_dict().items()},
                "recon": {"model": "cascade", "model_kwargs": dict(kwargs, learn_lambda=True)}}, path)
    loaded, _ = load_model(path)
    assert not loaded.cascades[0].learn_lambda and float(loaded.cascades[0].dc_lambda) == 0.0
    kspace = torch.randn(1, 3, 12, 12, 2)
    mask = torch.zeros(1, 1, 1, 12, 1, dtype=torch.bool)
    mask[..., ::2, :] = True
    with torch.no_grad():
        assert torch.equal(loaded(kspace * mask, mask), net(kspace * mask, mask))
    with pytest.raises(ValueError, match="learn_lambda=True needs dc_lambda > 0"):
        load_model(path, model_kwargs=dict(kwargs, learn_lambda=True))  # asked for explicitly: refused
