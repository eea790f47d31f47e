"""Checkpoints: fastMRI key names, atomic save/load round trip, fastMRI checkpoints, errors."""

from __future__ import annotations

import os

import pytest
import torch
from fastmri.models import Unet as FastUnet
from fastmri.models import VarNet as FastVarNet

from recon.train import build_model, checkpoint_state_dict, export_weights, load_checkpoint, load_model, save_checkpoint

from .conftest import TINY_VARNET


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    kspace = torch.randn(1, 4, 32, 32, 2, generator=g)
    mask = torch.zeros(1, 1, 1, 32, 1, dtype=torch.bool)
    mask[..., ::2, :] = True
    mask[..., 12:20, :] = True
    return kspace * mask, mask


def test_varnet_round_trip_keys_and_outputs(tmp_path):
    model = build_model("varnet", TINY_VARNET, impl="fastmri", seed=3)
    path = save_checkpoint(
        tmp_path / "sub" / "m.ckpt", model, model_name="varnet", model_kwargs=TINY_VARNET,
        epoch=2, global_step=17, config={"lr": 0.01}, metrics={"ssim": 0.5},
    )
    ckpt = load_checkpoint(path)
    # fastMRI's VarNetModule stores the network as self.varnet: keys are "varnet.<param>"
    reference = FastVarNet(**TINY_VARNET).state_dict()
    assert set(ckpt["state_dict"]) == {f"varnet.{key}" for key in reference}
    assert ckpt["epoch"] == 2 and ckpt["global_step"] == 17
    assert ckpt["hyper_parameters"]["lr"] == 0.01 and ckpt["hyper_parameters"]["num_cascades"] == 2
    assert ckpt["recon"]["model"] == "varnet" and ckpt["recon"]["metrics"] == {"ssim": 0.5}
    # a fresh fastMRI VarNet loads the stripped state dict and reproduces the output exactly
    fresh = FastVarNet(**TINY_VARNET)
    fresh.load_state_dict(checkpoint_state_dict(ckpt, "varnet"))
    loaded, _ = load_model(path, impl="fastmri")
    kspace, mask = _inputs()
    with torch.no_grad():
        expected = model.eval()(kspace, mask, 8)
        assert torch.equal(fresh.eval()(kspace, mask, 8), expected)
        assert torch.equal(loaded(kspace, mask, 8), expected)
    assert not loaded.training
    # no temporary files are left next to the checkpoint
    assert os.listdir(tmp_path / "sub") == ["m.ckpt"]


def test_unet_keys_match_fastmri_unet_module(tmp_path):
    kwargs = {"in_chans": 1, "out_chans": 1, "chans": 4, "num_pool_layers": 2, "drop_prob": 0.0}
    model = build_model("unet", kwargs, impl="fastmri", seed=0)
    path = save_checkpoint(tmp_path / "u.ckpt", model, model_name="unet", model_kwargs=kwargs)
    ckpt = load_checkpoint(path)
    assert set(ckpt["state_dict"]) == {f"unet.{key}" for key in FastUnet(**kwargs).state_dict()}


def test_loads_fastmri_lightning_style_and_bare_state_dicts(tmp_path):
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
    model = build_model("varnet", TINY_VARNET, impl="fastmri", seed=0)
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
    model = build_model("varnet", TINY_VARNET, impl="fastmri", seed=0)
    with pytest.raises(ValueError, match="model_name must be one of"):
        save_checkpoint(tmp_path / "x.ckpt", model, model_name="vn", model_kwargs={})
    path = save_checkpoint(tmp_path / "v.ckpt", model, model_name="varnet", model_kwargs=TINY_VARNET)
    with pytest.raises(ValueError, match="weights do not fit"):
        load_model(path, model_kwargs={**TINY_VARNET, "chans": 6}, impl="fastmri")
    with pytest.raises(ValueError, match="model_name must be one of"):
        checkpoint_state_dict(load_checkpoint(path), "vn")


def test_build_model_seed_leaves_global_rng_alone():
    state = torch.get_rng_state()
    a = build_model("varnet", TINY_VARNET, impl="fastmri", seed=11)
    b = build_model("varnet", TINY_VARNET, impl="fastmri", seed=11)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    with pytest.raises(ValueError, match=r"model_kwargs for 'varnet': VarNet has no arguments \['depth'\]"):
        build_model("varnet", {"depth": 3}, impl="fastmri")
    with pytest.raises(ValueError, match="model must be one of"):
        build_model("resnet", {})
    with pytest.raises(ValueError, match="impl must be 'recon' or 'fastmri'"):
        build_model("varnet", {}, impl="lightning")


def test_checkpoint_of_fastmri_varnet_loads_into_recon_varnet(tmp_path):
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
