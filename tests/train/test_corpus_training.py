"""The corpus retraining pipeline of scripts/train_bundled.py at toy size (CPU smoke run)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train_bundled.py"


def _script():
    spec = importlib.util.spec_from_file_location("train_bundled_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_corpus_configs_are_valid_and_fit_the_size_budget():
    from recon.train import TrainConfig
    from recon.train.registry import build_model

    script = _script()
    params = 0
    for name, settings in script.CORPUS_BUNDLED.items():
        config = TrainConfig.from_dict({**settings, "train_data": "x", "val_data": "y"})
        if name in script.BUNDLED:  # varnet_ssdu / varnet_short are not shipped
            params += sum(p.numel() for p in build_model(config.model, config.model_kwargs).parameters())
    assert script.CORPUS_BUNDLED["varnet_ssdu"]["self_supervised"] == "ssdu"
    assert params * 2 / 1e6 <= 20.0  # float16 exports, MB
    # the old (embedded-data) configs are untouched
    assert script.BUNDLED["varnet"]["train_data"] == "embedded:train"


@pytest.mark.slow
def test_toy_reproduce_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("RECON_CACHE", str(tmp_path / "cache"))
    script = _script()
    run = tmp_path / "run"
    code = script.main(["reproduce", "--preset", "toy", "--run-dir", str(run), "--num-threads", "1",
                        "--names", "varnet", "varnet_ssdu", "--api-methods", "--no-compare-bundled"])
    assert code == 0
    scores = json.loads((run / "heldout_scores.json").read_text())
    assert {k.split("/")[2] for k in scores["splits"]} == {"varnet", "varnet_ssdu", "zero_filled"}
    # validation (which decides the export) and held-out, both accelerations
    assert {k.rsplit("/", 1)[0] for k in scores["splits"]} == {"val/4x", "val/8x", "test_heldout/4x", "test_heldout/8x"}
    assert (run / "cards" / "varnet_ssdu.md").read_text().count("self-supervised SSDU") == 1
    assert "dipy_b0_axial" in (run / "REPORT.md").read_text()
    assert not (script.WEIGHTS_DIR / "varnet_ssdu.pt").exists()  # nothing exported without --export


def test_cpu_preset_fine_tunes_the_bundled_architectures(tmp_path):
    from recon.data.corpus import CorpusConfig
    from recon.train import TrainConfig

    script = _script()
    folders = {"train": tmp_path / "train", "val": tmp_path / "val"}
    for name in script.CPU_ORDER:
        settings = script.corpus_settings(name, "cpu", folders, init_dir=tmp_path / "init")
        config = TrainConfig.from_dict(settings)
        base = name.split("_")[0]
        assert config.model_kwargs == script.BUNDLED[base]["model_kwargs"]  # loads the bundled weights
        assert config.init_weights == str(tmp_path / "init" / f"{base}.pt")
        assert config.num_threads == 1
        assert config.mask_type == "equispaced_fraction" and list(config.accelerations) == [4, 8]
    # the SSDU comparison: same data, init, schedule and budget, only the training signal differs
    ssdu = script.corpus_settings("varnet_ssdu", "cpu", folders)
    short = script.corpus_settings("varnet_short", "cpu", folders)
    assert ssdu["self_supervised"] == "ssdu" and short.get("self_supervised") is None
    assert {k: v for k, v in ssdu.items() if not k.startswith(("ssdu", "self_"))} == \
        {k: v for k, v in short.items() if not k.startswith(("ssdu", "self_"))}
    # the cpu corpus is smaller than the full one, but it is scored on the full preset's held-out split
    assert script.heldout_config("cpu") == CorpusConfig() == script.corpus_config("full")
    cpu = script.corpus_config("cpu")
    assert cpu.num_train_subjects < CorpusConfig().num_train_subjects and cpu.key() != CorpusConfig().key()


def test_export_decisions_need_both_accelerations():
    script = _script()

    def entry(ssim):
        return {"ssim": ssim}

    results = {"splits": {
        "val/4x/varnet": entry(0.90), "val/8x/varnet": entry(0.80),
        "val/4x/bundled_varnet": entry(0.85), "val/8x/bundled_varnet": entry(0.70),
        "val/4x/cascade": entry(0.90), "val/8x/cascade": entry(0.69),
        "val/4x/bundled_cascade": entry(0.85), "val/8x/bundled_cascade": entry(0.70),
        "val/4x/unet": entry(0.90),
        "val/4x/bundled_unet": entry(0.85), "val/8x/bundled_unet": entry(0.70),
    }}
    decisions = script.export_decisions(results, ["varnet", "cascade", "unet", "varnet_ssdu"])
    assert decisions["varnet"][0] is True
    assert decisions["cascade"][0] is False and "0.6900 vs bundled 0.7000" in decisions["cascade"][1]
    assert decisions["unet"][0] is False and "8x: not scored" in decisions["unet"][1]
    assert "varnet_ssdu" not in decisions  # not a bundled model


def test_export_decisions_are_taken_on_validation_not_held_out():
    script = _script()
    # better held-out, worse on validation: not exported (the held-out split chooses nothing)
    results = {"splits": {
        "val/4x/varnet": {"ssim": 0.80}, "val/8x/varnet": {"ssim": 0.70},
        "val/4x/bundled_varnet": {"ssim": 0.81}, "val/8x/bundled_varnet": {"ssim": 0.69},
        "test_heldout/4x/varnet": {"ssim": 0.95}, "test_heldout/8x/varnet": {"ssim": 0.95},
        "test_heldout/4x/bundled_varnet": {"ssim": 0.85}, "test_heldout/8x/bundled_varnet": {"ssim": 0.75},
    }}
    ok, why = script.export_decisions(results, ["varnet"])["varnet"]
    assert ok is False and why.startswith("val ") and "0.8000 vs bundled 0.8100" in why
    assert script.export_decisions(results, ["varnet"], split="test_heldout")["varnet"][0] is True


def test_cpu_more_preset_continues_the_cpu_run_on_a_larger_corpus(tmp_path):
    from recon.data.corpus import CorpusConfig, _jobs
    from recon.train import TrainConfig

    script = _script()
    cpu, more = script.corpus_config("cpu"), script.corpus_config("cpu-more")
    # same sources, scanners and slab size: the cpu corpus's subjects are the first of cpu-more's
    assert more.num_train_subjects == 4 * cpu.num_train_subjects
    assert (more.slices_per_volume, more.coil_counts, more.seed) == (cpu.slices_per_volume, cpu.coil_counts, cpu.seed)
    cpu_train = [(j.index, j.kind) for j in _jobs(cpu, "train") if j.kind == "phantom"]
    assert cpu_train == [(j.index, j.kind) for j in _jobs(more, "train") if j.kind == "phantom"][: len(cpu_train)]
    assert more.num_val_subjects > cpu.num_val_subjects and more.key() != cpu.key()
    assert script.heldout_config("cpu-more") == CorpusConfig()  # scored on the same held-out files
    folders = {"train": tmp_path / "train", "val": tmp_path / "val"}
    for name in script.CPU_MORE_ORDER:
        config = TrainConfig.from_dict(script.corpus_settings(name, "cpu-more", folders, init_dir=tmp_path / "cpu-run"))
        assert config.init_weights == str(tmp_path / "cpu-run" / f"{name}.pt")  # the cpu run's export
        assert config.model_kwargs == script.BUNDLED[name]["model_kwargs"]
        assert config.lr < script.CPU_SCHEDULES[name]["lr"] and config.val_every == 1 and config.num_threads == 1
    with pytest.raises(SystemExit, match="cascade"):
        script.corpus_settings("cascade", "cpu-more", folders)  # the cascade is not continued


def test_cpu_orient_preset_continues_all_three_on_three_orientations(tmp_path):
    from recon.data.corpus import CorpusConfig, _jobs
    from recon.train import TrainConfig

    script = _script()
    more, orient = script.corpus_config("cpu-more"), script.corpus_config("cpu-orient")
    assert orient.orientations == ("axial", "coronal", "sagittal") and more.orientations == ("axial",)
    assert orient.seed != more.seed  # new phantom subjects, not stage 2's cut another way
    for split in ("train", "val"):
        cut = {j.orientation for j in _jobs(orient, split) if j.kind == "phantom"}
        assert cut == {"axial", "coronal", "sagittal"}, split  # validation in all three orientations too
    assert script.heldout_config("cpu-orient") == CorpusConfig()  # the same held-out files as stages 1-2
    folders = {"train": tmp_path / "train", "val": tmp_path / "val"}
    assert set(script.CPU_ORIENT_ORDER) == set(script.BUNDLED)  # the three compared on equal data
    for name in script.CPU_ORIENT_ORDER:
        config = TrainConfig.from_dict(script.corpus_settings(name, "cpu-orient", folders, init_dir=tmp_path / "init"))
        assert config.init_weights == str(tmp_path / "init" / f"{name}.pt")
        assert config.model_kwargs == script.BUNDLED[name]["model_kwargs"]
        assert config.val_every == 1 and config.num_threads == 1
    with pytest.raises(SystemExit):  # argparse refuses an unknown preset
        script.main(["train", "varnet", "--data", "corpus", "--preset", "cpu-nope"])


def test_cpu_deep_preset_new_subjects_and_a_deeper_unet(tmp_path):
    from recon.train import TrainConfig

    script = _script()
    deep, orient = script.corpus_config("cpu-deep"), script.corpus_config("cpu-orient")
    assert deep.seed not in (orient.seed, script.corpus_config("cpu-more").seed)  # new phantom subjects
    assert deep.num_train_subjects == 2 * orient.num_train_subjects and deep.orientations == orient.orientations
    assert script.heldout_config("cpu-deep") == script.heldout_config("cpu-orient")  # same held-out files
    folders = {"train": tmp_path / "train", "val": tmp_path / "val"}
    unet = TrainConfig.from_dict(script.corpus_settings("unet", "cpu-deep", folders, init_dir=tmp_path / "init"))
    assert unet.model_kwargs["num_pool_layers"] == script.BUNDLED["unet"]["model_kwargs"]["num_pool_layers"] + 1
    varnet = TrainConfig.from_dict(script.corpus_settings("varnet", "cpu-deep", folders, init_dir=tmp_path / "init"))
    assert varnet.model_kwargs == script.BUNDLED["varnet"]["model_kwargs"]


def test_deepen_unet_keeps_the_outer_levels_and_starts_the_new_one_as_identity(tmp_path):
    import torch

    from recon.models.unet import Unet
    from recon.train.checkpoint import load_model

    script = _script()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        small = Unet(in_chans=1, out_chans=1, chans=4, num_pool_layers=2)
    src = tmp_path / "unet.pt"
    torch.save(small.state_dict(), src)
    deep, _ = load_model(script.deepen_unet(src, tmp_path / "deep.pt"), model_name="unet")
    assert deep.num_pool_layers == 3 and deep.chans == 4
    old, new = small.state_dict(), deep.state_dict()
    # outer levels unchanged; the old bottleneck is the new third down-sampling block
    for key in ("down_sample_layers.0.layers.0.weight", "down_sample_layers.1.layers.4.weight"):
        assert torch.equal(new[key], old[key])
    assert torch.equal(new["down_sample_layers.2.layers.0.weight"], old["conv.layers.0.weight"])
    assert torch.equal(new["up_transpose_conv.1.layers.0.weight"], old["up_transpose_conv.0.layers.0.weight"])
    assert torch.equal(new["up_conv.2.1.weight"], old["up_conv.1.1.weight"])  # the final 1x1 conv
    # the new level's up block: 3x3 centre taps 1 from the skip channels (16 of 32 inputs), 0 elsewhere
    first = new["up_conv.0.layers.0.weight"]
    assert first.shape == (16, 32, 3, 3) and float(first.abs().sum()) == 16.0
    assert all(float(first[c, 16 + c, 1, 1]) == 1.0 for c in range(16))
    x = torch.randn(1, 1, 32, 32)
    assert deep(x).shape == x.shape


def test_deepen_varnet_deepens_every_cascade_and_keeps_the_rest(tmp_path):
    import torch

    from recon.models.varnet import VarNet
    from recon.train.checkpoint import load_model

    script = _script()
    kwargs = {"num_cascades": 2, "chans": 2, "pools": 2, "sens_chans": 2, "sens_pools": 1}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        small = VarNet(**kwargs)
    src = tmp_path / "varnet.pt"
    torch.save({"state_dict": {f"varnet.{k}": v for k, v in small.state_dict().items()},
                "recon": {"model": "varnet", "model_kwargs": kwargs}}, src)
    deep, _ = load_model(script.deepen_varnet(src, tmp_path / "deep.pt"), model_name="varnet")
    old, new = small.state_dict(), deep.state_dict()
    for c in range(2):
        unet = f"cascades.{c}.model.unet."
        assert new[unet + "down_sample_layers.2.layers.0.weight"].shape == old[unet + "conv.layers.0.weight"].shape
        assert torch.equal(new[unet + "down_sample_layers.2.layers.0.weight"], old[unet + "conv.layers.0.weight"])
        assert torch.equal(new[unet + "up_conv.1.layers.0.weight"], old[unet + "up_conv.0.layers.0.weight"])
        assert float(new[unet + "up_conv.0.layers.0.weight"].abs().sum()) == 8.0  # identity on 8 skip channels
        assert torch.equal(new[f"cascades.{c}.dc_weight"], old[f"cascades.{c}.dc_weight"])
    for key in old:
        if ".model.unet." not in key:
            assert torch.equal(new[key], old[key]), key  # the sensitivity network etc. unchanged
    assert script.CPU_DEEP2_SCHEDULES["varnet"]["model_kwargs"]["pools"] == script.BUNDLED["varnet"]["model_kwargs"]["pools"] + 1


def _small_cascade(tmp_path):
    """A trained-looking 2-cascade x 3-conv x 4-filter CascadeNet and its checkpoint file."""
    from recon.models.cascade import CascadeNet

    kwargs = {"num_cascades": 2, "num_convs": 3, "num_filters": 4, "dc_lambda": 0.5, "learn_lambda": True,
              "sens_chans": 2, "sens_pools": 1}
    return _trained_looking(CascadeNet, "cascade", kwargs, tmp_path)


def _trained_looking(cls, name: str, kwargs: dict, tmp_path):
    """``cls(**kwargs)`` with trained-looking weights (non-zero biases, lambdas, DC weights) and
    its checkpoint file ``tmp_path / <name>.pt``."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = cls(**kwargs)
        for p in model.parameters():
            p.data.add_(0.05 * torch.randn_like(p))
    src = tmp_path / f"{name}.pt"
    torch.save({"state_dict": {f"{name}.{k}": v for k, v in model.state_dict().items()},
                "recon": {"model": name, "model_kwargs": kwargs}}, src)
    return model, src


def test_grow_cascade_wider_and_deeper_computes_the_same_image(tmp_path):
    import torch

    from recon.train.checkpoint import load_model

    script = _script()
    small, src = _small_cascade(tmp_path)
    grown, _ = load_model(script.grow_cascade(src, tmp_path / "grown.pt", 2, 5, 8), model_name="cascade")
    assert len(grown.cascades) == 2 and len(grown.cascades[0].convs) == 5
    assert grown.cascades[0].convs[1].weight.shape == (8, 8, 3, 3)
    torch.manual_seed(1)
    kspace = torch.randn(1, 4, 16, 24, 2)
    mask = torch.zeros(1, 1, 1, 24, 1, dtype=torch.bool)
    mask[..., ::3, :] = True
    mask[..., 10:14, :] = True
    with torch.no_grad():
        for old_block, new_block in zip(small.cascades, grown.cascades):
            image = torch.randn(2, 1, 16, 24, 2)
            torch.testing.assert_close(new_block.cnn(image), old_block.cnn(image), rtol=0, atol=1e-6)
            assert torch.equal(new_block.dc_lambda, old_block.dc_lambda)
        torch.testing.assert_close(grown(kspace * mask, mask), small(kspace * mask, mask), rtol=1e-5, atol=1e-6)
    # new filters are trainable: not all zero on their inputs
    assert float(grown.cascades[0].convs[0].weight.detach()[4:].abs().sum()) > 0


def test_grow_cascade_appends_cascades_with_a_zero_residual_and_refuses_to_shrink(tmp_path):
    import torch

    from recon.train.checkpoint import load_model

    script = _script()
    small, src = _small_cascade(tmp_path)
    grown, _ = load_model(script.grow_cascade(src, tmp_path / "grown.pt", 4, 3, 4), model_name="cascade")
    image = torch.randn(1, 1, 8, 8, 2)
    with torch.no_grad():
        for block in grown.cascades[2:]:
            assert torch.equal(block.cnn(image), image)
            assert torch.equal(block.dc_lambda, small.cascades[1].dc_lambda)
    for key, value in small.state_dict().items():  # the trained part and the sensitivity network unchanged
        assert torch.equal(grown.state_dict()[key], value), key
    with pytest.raises(ValueError, match="only grow"):
        script.grow_cascade(src, tmp_path / "x.pt", 1, 3, 4)


def test_cpu_8x_preset_weights_8x_twice_and_grows_the_cascade(tmp_path):
    from recon.train import TrainConfig

    script = _script()
    folders = {"train": tmp_path / "train", "val": tmp_path / "val"}
    assert script.corpus_config("cpu-8x") == script.corpus_config("cpu-deep")  # the stage-5 corpus
    for name in ("varnet", "cascade"):
        config = TrainConfig.from_dict(script.corpus_settings(name, "cpu-8x", folders, init_dir=tmp_path))
        assert list(config.accelerations) == [4, 8, 8] and list(config.center_fractions) == [0.08, 0.04, 0.04]
    varnet = TrainConfig.from_dict(script.corpus_settings("varnet", "cpu-8x", folders, init_dir=tmp_path))
    assert varnet.model_kwargs == script.CPU_DEEP2_SCHEDULES["varnet"]["model_kwargs"]
    cascade = TrainConfig.from_dict(script.corpus_settings("cascade", "cpu-8x", folders, init_dir=tmp_path))
    bundled = script.BUNDLED["cascade"]["model_kwargs"]
    for key in ("num_cascades", "num_convs", "num_filters"):
        assert cascade.model_kwargs[key] > bundled[key]
    again = TrainConfig.from_dict(script.corpus_settings("varnet", "cpu-8x2", folders, init_dir=tmp_path / "run7"))
    assert again.init_weights == str(tmp_path / "run7" / "varnet.pt") and again.lr > varnet.lr
    assert list(again.accelerations) == [4, 8, 8] and again.model_kwargs == varnet.model_kwargs
    grown = TrainConfig.from_dict(script.corpus_settings("cascade", "cpu-8x2", folders, init_dir=tmp_path / "run7"))
    assert grown.model_kwargs == cascade.model_kwargs and grown.init_weights == str(tmp_path / "run7" / "cascade.pt")


def test_float16_export_loads_into_float32_models(tmp_path):
    import torch

    from recon.train import export_weights, load_model
    from recon.train.checkpoint import save_checkpoint
    from recon.train.registry import build_model

    kwargs = {"num_cascades": 2, "chans": 4, "pools": 2, "sens_chans": 2, "sens_pools": 1}
    model = build_model("varnet", kwargs, seed=0)
    src = save_checkpoint(tmp_path / "full.ckpt", model, model_name="varnet", model_kwargs=kwargs)
    half = export_weights(src, tmp_path / "half.pt", half=True)
    loaded, _ = load_model(half)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        if a.is_floating_point():  # float16 rounding: relative 2**-11
            torch.testing.assert_close(b, a.half().float(), rtol=0, atol=0, msg=name)
    assert half.stat().st_size < 0.6 * src.stat().st_size


def _small_varnet(tmp_path):
    """A trained-looking small VarNet (U-Net widths 2, 4) and its checkpoint file."""
    from recon.models.varnet import VarNet

    kwargs = {"num_cascades": 2, "chans": 2, "pools": 2, "sens_chans": 2, "sens_pools": 1}
    return _trained_looking(VarNet, "varnet", kwargs, tmp_path)


def test_widen_varnet_computes_the_same_image_with_trainable_new_channels(tmp_path):
    import torch

    from recon.train.checkpoint import load_checkpoint, load_model

    script = _script()
    small, src = _small_varnet(tmp_path)
    dst = script.widen_varnet(src, tmp_path / "wide.pt", [6, 6])
    wide, _ = load_model(dst, model_name="varnet")
    assert load_checkpoint(dst)["recon"]["model_kwargs"]["level_chans"] == [6, 6]
    unet = wide.cascades[0].model.unet
    assert unet.level_chans == (6, 6) and unet.up_conv[1][0].layers[0].weight.shape == (6, 12, 3, 3)
    torch.manual_seed(2)
    kspace = torch.randn(1, 4, 24, 20, 2)
    mask = torch.zeros(1, 1, 1, 20, 1, dtype=torch.bool)
    mask[..., ::3, :] = True
    mask[..., 8:12, :] = True
    with torch.no_grad():
        for old_block, new_block in zip(small.cascades, wide.cascades):
            image = torch.randn(2, 1, 24, 20, 2)
            torch.testing.assert_close(new_block.model(image), old_block.model(image), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(wide(kspace * mask, mask), small(kspace * mask, mask), rtol=1e-5, atol=1e-6)
    for key, value in small.state_dict().items():
        if ".model.unet." not in key:
            assert torch.equal(wide.state_dict()[key], value), key  # sensitivity network, dc weights
    # the new channels are trainable: their inputs are not all zero, and a loss reaches their outputs
    first = unet.down_sample_layers[0].layers[0].weight
    assert float(first.detach()[2:].abs().sum()) > 0
    wide.train()
    wide(kspace * mask, mask).sum().backward()
    assert float(unet.down_sample_layers[1].layers[0].weight.grad[:, 2:].abs().sum()) > 0


def test_widen_varnet_refuses_narrower_levels(tmp_path):
    script = _script()
    _, src = _small_varnet(tmp_path)
    with pytest.raises(ValueError, match=r"level_chans must be 2 widths of at least \[2, 4\]"):
        script.widen_varnet(src, tmp_path / "x.pt", [4, 2])
    with pytest.raises(ValueError, match="level_chans must be 2 widths"):
        script.widen_varnet(src, tmp_path / "x.pt", [4, 4, 8])


def test_cpu_wide_preset_widens_the_stage_7_varnet(tmp_path):
    from recon.train import TrainConfig

    script = _script()
    folders = {"train": tmp_path / "train", "val": tmp_path / "val"}
    assert script.corpus_config("cpu-wide") == script.corpus_config("cpu-8x")  # the stage-5 corpus
    config = TrainConfig.from_dict(script.corpus_settings("varnet", "cpu-wide", folders, init_dir=tmp_path))
    assert list(config.accelerations) == [4, 8, 8]
    stage7 = script.CPU_8X_SCHEDULES["varnet"]["model_kwargs"]
    widths = config.model_kwargs["level_chans"]
    assert len(widths) == stage7["pools"]
    assert all(w >= stage7["chans"] * 2**k for k, w in enumerate(widths)) and widths[0] > stage7["chans"]
    assert config.init_weights == str(tmp_path / "varnet.pt")
    assert script.CPU_PRESET_ORDERS["cpu-wide"] == ["varnet"]
    again = TrainConfig.from_dict(script.corpus_settings("varnet", "cpu-wide2", folders, init_dir=tmp_path / "run8"))
    assert again.init_weights == str(tmp_path / "run8" / "varnet.pt")  # the cpu-wide run's file
    assert again.model_kwargs == config.model_kwargs and list(again.accelerations) == [4, 8, 8]
    assert script.corpus_config("cpu-wide2") == script.corpus_config("cpu-wide")
    # stage 9 trains the bundled (stage-8) file on, same architecture, corpus and masks, no reshape
    third = TrainConfig.from_dict(script.corpus_settings("varnet", "cpu-wide3", folders, init_dir=tmp_path / "w"))
    assert third.init_weights == str(tmp_path / "w" / "varnet.pt")
    assert third.model_kwargs == config.model_kwargs and list(third.accelerations) == [4, 8, 8]
    assert third.lr < again.lr and script.corpus_config("cpu-wide3") == script.corpus_config("cpu-wide")
    assert ("cpu-wide3", "varnet") not in script.INIT_RESHAPES


def test_init_reshapes_name_presets_and_models_that_exist_and_get_their_sizes(tmp_path, monkeypatch):
    """Each reshape step of cmd_train is keyed by a real preset and one of its models, and the
    model_kwargs it reads are in that preset's schedule (a typo would silently skip the step)."""
    script = _script()
    for (preset, name), reshape in script.INIT_RESHAPES.items():
        assert preset in script.CPU_PRESETS and name in script.CPU_PRESETS[preset], (preset, name)
        kwargs = script.CPU_PRESETS[preset][name].get("model_kwargs", {})
        seen = {}
        for fn in ("deepen_unet", "deepen_varnet", "grow_cascade", "widen_varnet"):
            monkeypatch.setattr(script, fn, lambda src, dst, *a, _fn=fn: seen.update(fn=_fn, dst=dst, args=a) or dst)
        out = reshape(tmp_path / "init.pt", tmp_path, kwargs)
        assert out == seen["dst"] and out.parent == tmp_path
        if seen["fn"] == "grow_cascade":
            assert seen["args"] == (kwargs["num_cascades"], kwargs["num_convs"], kwargs["num_filters"])
        if seen["fn"] == "widen_varnet":
            assert seen["args"] == (kwargs["level_chans"],)
        assert seen["fn"].split("_")[1] == name  # deepen_unet for a U-Net, grow_cascade for a cascade


def test_cpu_snr_preset_trains_the_bundled_architectures_on_the_union_of_two_corpora(tmp_path):
    """Stage 10: the bundled VarNet and cascade (same architectures, no reshape) on the stage-5
    corpus plus a high-SNR one; the union folder links every file of both, once, under distinct
    names, and is reused."""
    from recon.data.corpus import CorpusConfig
    from recon.train import TrainConfig

    script = _script()
    assert script.corpus_config("cpu-snr") == script.corpus_config("cpu-wide3")  # the stage-5 corpus
    supplement = script.snr_supplement_config()
    assert isinstance(supplement, CorpusConfig) and supplement.snr_range[0] >= script.corpus_config("cpu-snr").snr_range[1]
    assert supplement.seed != script.corpus_config("cpu-snr").seed and supplement.num_heldout_subjects == 0
    folders = {"train": tmp_path / "train", "val": tmp_path / "val"}
    for name, stage in (("varnet", "cpu-wide3"), ("cascade", "cpu-8x2"), ("unet", "cpu-deep")):
        config = TrainConfig.from_dict(script.corpus_settings(name, "cpu-snr", folders, init_dir=tmp_path / "w"))
        before = TrainConfig.from_dict(script.corpus_settings(name, stage, folders, init_dir=tmp_path / "w"))
        assert config.model_kwargs == before.model_kwargs
        assert list(config.accelerations) == list(before.accelerations)  # the masks of the file's last stage
        assert config.init_weights == str(tmp_path / "w" / f"{name}.pt")
        assert ("cpu-snr", name) not in script.INIT_RESHAPES
    assert script.CPU_PRESET_ORDERS["cpu-snr"] == ["varnet", "cascade", "unet"]

    a, b = tmp_path / "a", tmp_path / "b"
    for folder, names in ((a, ["x.h5", "y.h5"]), (b, ["x.h5", "notes.txt"])):
        folder.mkdir()
        for n in names:
            (folder / n).write_text(f"{folder.name}/{n}")
    union = script.union_folder(tmp_path / "u", "train", {"base": a, "snr": b})
    assert sorted(p.name for p in union.iterdir()) == ["base_x.h5", "base_y.h5", "snr_x.h5"]
    assert (union / "snr_x.h5").read_text() == "b/x.h5" and (union / "base_x.h5").read_text() == "a/x.h5"
    assert script.union_folder(tmp_path / "u", "train", {"base": a}) == union  # reused as it is
    assert len(list(union.iterdir())) == 3 and sorted(p.name for p in (tmp_path / "u").iterdir()) == ["train"]
    with pytest.raises(SystemExit, match="no .h5 files"):
        script.union_folder(tmp_path / "u", "empty", {"base": a, "snr": tmp_path / "none"})
    assert sorted(p.name for p in (tmp_path / "u").iterdir()) == ["train"]  # nothing half-built left
