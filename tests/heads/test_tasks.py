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


# ----------------------------------------------------------------------------- the task interface

class _TinyTask(T.HeadTask):
    """A registered test task: a 1x1 convolution fitted to 2 x source (closed-form target)."""

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--factor", type=float, default=2.0)

    def check(self):
        if self.config.options.get("factor", 2.0) <= 0:
            raise ValueError(f"factor must be > 0, got {self.config.options['factor']!r}")

    def weight_name(self):
        return f"tiny-x{self.config.options.get('factor', 2.0):g}"

    def build_model(self):
        return torch.nn.Conv2d(1, 1, 1)

    def prepare(self, volumes):
        self.x = torch.from_numpy(np.concatenate([T.axial_slices(v["t1w"], v["mask"]) for v in volumes]))[:, None]

    def step(self, model, run):
        x = self.x[run.randint(len(self.x), self.config.batch_size)].to(run.device)
        with run.autocast():
            pred = model(x)
        return {"loss": run.optimise((pred.float() - self.config.options.get("factor", 2.0) * x).square().mean())}

    def evaluate(self, model, volumes):
        x = torch.from_numpy(volumes[0]["t1w"]).permute(2, 0, 1)[:, None]
        return {"weight": float(model.weight.flatten()[0]), "rmse": float((model(x) - 2 * x).square().mean().sqrt())}


@pytest.fixture
def tiny_task(monkeypatch):
    monkeypatch.setitem(T.TASK_REGISTRY, "tiny", f"{__name__}:_TinyTask")
    return "tiny"


def test_registry_lookup_and_errors(tiny_task):
    assert T.task_class("synthesis").__name__ == "SynthesisTask"
    assert T.task_class(tiny_task) is _TinyTask
    with pytest.raises(ValueError, match="task must be one of .*tiny"):
        T.task_class("segment")
    with pytest.raises(ValueError, match="factor must be > 0"):
        T.HeadConfig(task=tiny_task, options={"factor": -1.0})
    with pytest.raises(ValueError, match="arch must be one of"):
        T.HeadConfig(task="synthesis", arch="vnet")
    with pytest.raises(ValueError, match="device must be"):
        T.HeadConfig(device="tpu")
    with pytest.raises(ValueError, match="val_every must be"):
        T.HeadConfig(val_every=0)
    with pytest.raises(ValueError, match="options must be a dict"):
        T.HeadConfig(options=[1])
    with pytest.raises(ValueError, match="brain_weight must be"):
        T.HeadConfig(task="synthesis", options={"brain_weight": -1})


def test_registered_task_command_line_flags(tiny_task, tmp_path):
    """A task's own flags (HeadTask.add_arguments) land in config.options and in its weight name."""
    config = T.config_from_argv(["--task", tiny_task, "--factor", "3", "--steps", "60", "--output-dir", str(tmp_path)])
    assert config.options == {"factor": 3.0} and config.name == "tiny-x3" and config.steps == 60
    assert "--factor" in T.build_parser(task=tiny_task).format_help()


@pytest.mark.slow
def test_registered_task_trains_validates_and_loads(tiny_task, tmp_path):
    """A task added by a registry entry gets the loop: steps, validation, weights."""
    config = T.HeadConfig(task=tiny_task, steps=200, lr=0.05, batch_size=4, output_dir=str(tmp_path), resume=False)
    data = _items(1, shape=(12, 12, 10))
    result = T.train_head(config, data, val_data=data)
    assert result.weights.name == "tiny-x2.pt"
    # least squares of 2x on x with a bias: weight -> 2 (closed form), error -> 0
    assert result.validation["weight"] == pytest.approx(2.0, abs=0.05)
    model, cfg, card = T.load_head(result.weights)
    assert cfg.task == tiny_task and card["validation"]["weight"] == pytest.approx(2.0, abs=0.05)
    assert float(model.weight.detach().flatten()[0]) == pytest.approx(2.0, abs=0.05)  # float16 in the file


def test_amp_step_runner_uses_bfloat16_on_cpu():
    model = torch.nn.Linear(4, 1)
    run = T.StepRunner({"model": torch.optim.SGD(model.parameters(), lr=0.1)}, torch.Generator().manual_seed(0), amp=True)
    with run.autocast():
        y = model(torch.ones(2, 4))
    assert y.dtype == torch.bfloat16 and run.amp_dtype == torch.bfloat16
    off = T.StepRunner({"model": torch.optim.SGD(model.parameters(), lr=0.1)}, torch.Generator(), amp=False)
    with off.autocast():
        assert model(torch.ones(2, 4)).dtype == torch.float32
    # one SGD step against the closed form: d/dw mean((w.x + b - t)^2)
    w0, b0 = model.weight.detach().clone(), model.bias.detach().clone()
    x, t = torch.ones(2, 4), torch.zeros(2, 1)
    off.optimise((model(x) - t).square().mean())
    r = float((w0 @ x[0] + b0)[0])
    np.testing.assert_allclose(model.weight.detach().numpy(), (w0 - 0.1 * 2 * r * x[0]).numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="name must be one of"):
        off.optimise(model(x).sum(), "d")


def _ddp_worker(rank, path):
    # a file rendezvous: no TCP port to race for on a busy machine
    torch.distributed.init_process_group("gloo", init_method=f"file://{path}/rendezvous", rank=rank, world_size=2)
    model = torch.nn.Linear(3, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    run = T.StepRunner({"model": torch.optim.SGD(model.parameters(), lr=1.0)}, torch.Generator(), world_size=2)
    x = torch.tensor([[1.0, 2.0, 3.0]]) * (rank + 1)   # rank 0: x, rank 1: 2x
    run.optimise((model(x) - 1.0).square().mean())
    torch.save(model.weight.detach(), f"{path}/w{rank}.pt")
    torch.distributed.destroy_process_group()


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not available")
def test_gradients_are_averaged_across_processes(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(str(tmp_path),), nprocs=2, join=True)
    # w = 0: grad of (w.x - 1)^2 is -2 x; mean over ranks of -2x and -4x = -3x; SGD lr 1 -> w = 3x
    expected = 3 * torch.tensor([[1.0, 2.0, 3.0]])
    for rank in range(2):
        torch.testing.assert_close(torch.load(tmp_path / f"w{rank}.pt"), expected)


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not available")
def test_torchrun_two_processes_gloo(tmp_path):
    """``torchrun --nproc_per_node 2 -m recon.train --task synthesis --amp``: trains, checkpoints both
    processes' generators, writes one weight file, resumes."""
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    from recon.data.io import save_nifti

    for k, item in enumerate(_items(2)):
        for c in ("t1w", "flair"):
            (tmp_path / "data" / c).mkdir(parents=True, exist_ok=True)
            save_nifti(tmp_path / "data" / c / f"sub-{k}.nii.gz", item[c])
    out = tmp_path / "run"
    repo = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["PYTHONPATH"] = str(repo) + os.pathsep + env.get("PYTHONPATH", "")

    def launch(steps):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(port), "-m", "recon.train", "--task", "synthesis", "--source", "t1", "--target",
               "flair", "--chans", "4", "--depth", "2", "--batch-size", "2", "--steps", str(steps), "--amp",
               "--num-threads", "1", "--train-data", str(tmp_path / "data"), "--output-dir", str(out)]
        return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)

    proc = launch(3)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = torch.load(out / "last.ckpt", weights_only=False)
    assert ckpt["step"] == 3 and ckpt["world_size"] == 2 and len(ckpt["generators"]) == 2
    model, cfg, card = T.load_head(out / "synthesis-unet-t1w-flair.pt")
    assert card["processes"] == 2 and card["amp"] is True and cfg.amp
    proc = launch(5)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert torch.load(out / "last.ckpt", weights_only=False)["step"] == 5


def test_init_weights_fine_tunes_from_a_weight_file(tmp_path):
    fields = dict(task="synthesis", arch="unet", chans=4, depth=2, batch_size=2, resume=False)
    first = T.train_head(T.HeadConfig(**fields, steps=1, output_dir=str(tmp_path / "a")), _items())
    # zero steps of training is not allowed; one step at a tiny lr keeps the start visible
    second = T.train_head(T.HeadConfig(**fields, steps=1, lr=1e-9, output_dir=str(tmp_path / "b"),
                                       init_weights=str(first.weights)), _items())
    a, b = torch.load(first.weights)["state_dict"], torch.load(second.weights)["state_dict"]
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-3) for k in a)
    with pytest.raises(ValueError, match="init_weights .* hold a 'synthesis' model, not 'denoise'"):
        T.train_head(T.HeadConfig(task="denoise", chans=4, depth=2, steps=1, output_dir=str(tmp_path / "c"),
                                  init_weights=str(first.weights)), _items())
    with pytest.raises(ValueError, match="init_weights .* do not fit this config"):
        T.train_head(T.HeadConfig(**{**fields, "chans": 8}, steps=1, output_dir=str(tmp_path / "d"),
                                  init_weights=str(first.weights)), _items())


def test_denoise_task_options(tmp_path):
    from recon.train.tasks_denoise import DenoiseTask

    config = T.config_from_argv(["--task", "denoise", "--background-pad", "8", "--all-orientations",
                                 "--skull-strip", "1", "--output-dir", str(tmp_path)])
    assert config.options == {"background_pad": 8, "all_orientations": True, "skull_strip": 1.0}
    task = DenoiseTask(config)
    task.prepare(_items(1))
    # --skull-strip 1: every training slice is multiplied by its brain mask (aligned slice by slice)
    assert len(task.m) == len(task.x) and all(m.shape == x.shape for m, x in zip(task.m, task.x))
    assert all(set(torch.unique(m).tolist()) <= {0.0, 1.0} for m in task.m)
    assert any(bool(((x > 0) & (m == 0)).any()) for m, x in zip(task.m, task.x))  # stripping removes signal
    with pytest.raises(ValueError, match="skull_strip must be a probability"):
        T.HeadConfig(task="denoise", options={"skull_strip": 1.5})
    axial = DenoiseTask(T.HeadConfig(task="denoise"))
    axial.prepare(_items(1))
    # (20, 24, 12) volumes: axial slices are 20 x 24; coronal 20 x 12 and sagittal 24 x 12 ones join them
    assert {tuple(x.shape[-2:]) for x in axial.x} == {(20, 24)}
    assert {tuple(x.shape[-2:]) for x in task.x} == {(20, 24), (20, 12), (24, 12)}
    with pytest.raises(ValueError, match="background_pad must be an int >= 0"):
        T.HeadConfig(task="denoise", options={"background_pad": -2})


def test_cosine_lr_schedule_decays_to_zero(tiny_task, tmp_path):
    data = _items(1, shape=(12, 12, 10))
    config = T.HeadConfig(task=tiny_task, steps=4, lr=0.1, lr_schedule="cosine", output_dir=str(tmp_path), resume=False)
    T.train_head(config, data)
    ckpt = torch.load(tmp_path / "last.ckpt", weights_only=False)
    # the lr used by the last step (step index 3 of 4): 0.1 * (1 + cos(3 pi / 4)) / 2
    assert ckpt["optimisers"]["model"]["param_groups"][0]["lr"] == pytest.approx(0.1 * (1 + math.cos(0.75 * math.pi)) / 2)
    with pytest.raises(ValueError, match="lr_schedule must be"):
        T.HeadConfig(lr_schedule="step")
