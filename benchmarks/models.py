"""Benchmark of the learned models (recon.models) against fastMRI's implementations.

Measured in one process on the same data and the same weights, round-robin (one call of each
implementation per round, so machine noise hits all of them alike):

* inference (``torch.inference_mode``, eval mode): latency (median and min over repeats),
  throughput (slices / s), peak memory, and the relative difference of the outputs, for
  VarNet (ours vs fastMRI), U-Net (ours vs fastMRI) and CascadeNet (D5-C5, ours only);
* one VarNet training step (forward, L1 loss, backward, Adam step): time and peak
  activation memory, ours without and with gradient checkpointing, and fastMRI;
* on CUDA, bf16 autocast inference vs float32: speed-up and the SSIM between the outputs.

Peak memory
    CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, minus the
    memory allocated before the call.  CPU (Linux): the peak resident set size of this
    process during the call above the resident size before it.  The script re-executes
    itself with ``MALLOC_MMAP_THRESHOLD_=65536``, which makes glibc serve every buffer larger
    than 64 KiB with its own ``mmap`` and return it to the system on ``free``: the resident
    size then follows the live allocations (tensors, and also oneDNN / FFT workspaces)
    instead of the allocator's cached heap.  The peak mark (``VmHWM``) is reset before each
    call by writing ``5`` to ``/proc/self/clear_refs``.  Checked on a known sequence of
    allocations (two live 3.8 MB tensors read 7.62 MB).  Minimum over two calls, separate
    from the timed calls.
    For a training step the weights, gradients and Adam state exist before the measured step
    (a warm-up step allocates them; gradients are zeroed, not freed), so the figure is the
    activation memory of the step.

Usage::

    python benchmarks/models.py                          # knee size (1, 15, 640, 368), 12 cascades
    python benchmarks/models.py --size brain             # (1, 16, 640, 320)
    python benchmarks/models.py --quick                  # small size, few cascades: a smoke run
    python benchmarks/models.py --cascades 4 --repeats 3 --skip unet cascadenet
    python benchmarks/models.py --device cuda

Writes ``benchmarks/results/<device>/models.json`` and ``models.md`` (atomically).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import markdown_table, save_results, sync  # noqa: E402

from recon.models import CascadeNet, Unet, VarNet  # noqa: E402

try:  # the reference implementation, optional
    import fastmri.models as fastmri_models
except ImportError:  # pragma: no cover - depends on the environment
    fastmri_models = None

SIZES = {"knee": (1, 15, 640, 368), "brain": (1, 16, 640, 320), "quick": (1, 4, 128, 96)}


# ----------------------------------------------------------------------------- measurement
def time_round_robin(
    fns: dict[str, Callable[[], object]], device: torch.device, repeats: int, warmup: int = 1
) -> dict[str, dict[str, float]]:
    """Median and min wall time (s) and median CPU time of each function, round-robin.

    CPU time (``time.process_time``, all threads of this process) is what the process itself
    spent; with ``--threads 1`` on a shared machine it is the figure least disturbed by other
    processes, while wall time includes the time spent waiting for a core.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync(device)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            sync(device)
            samples[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return {
        name: {"median_s": statistics.median(ts), "min_s": min(ts), "samples_s": ts,
               "cpu_median_s": statistics.median(cpu[name])}
        for name, ts in samples.items()
    }


def _proc_status_bytes(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


def peak_memory_bytes(fn: Callable[[], object], device: torch.device, runs: int = 2) -> int:
    """Peak bytes allocated during ``fn()`` above what was allocated before (see module doc).

    The minimum over ``runs`` calls (CPU figures vary by a few per cent between calls with
    the order in which threads free memory).
    """
    peaks = []
    for _ in range(runs):
        if device.type == "cuda":
            sync(device)
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
            out = fn()
            sync(device)
            peaks.append(torch.cuda.max_memory_allocated(device) - before)
            del out
            continue
        with open("/proc/self/clear_refs", "w") as f:  # reset the peak-RSS mark (VmHWM)
            f.write("5")
        before = _proc_status_bytes("VmRSS")
        out = fn()
        del out
        peaks.append(_proc_status_bytes("VmHWM") - before)
    return int(min(peaks))


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return float((a - b).norm() / b.norm())


# ----------------------------------------------------------------------------- problems
def make_problem(shape: tuple[int, int, int, int], device: torch.device, seed: int = 0):
    """Random smooth-ish k-space with a fastMRI-style equispaced 4x mask (8% centre)."""
    b, c, h, w = shape
    gen = torch.Generator().manual_seed(seed)
    # decaying spectrum, like real k-space
    ky = torch.linspace(-1, 1, h)[:, None]
    kx = torch.linspace(-1, 1, w)[None, :]
    envelope = torch.exp(-8 * (kx**2 + ky**2))[..., None]
    kspace = torch.randn(b, c, h, w, 2, generator=gen) * envelope * 1e-3
    mask = torch.zeros(b, 1, 1, w, 1, dtype=torch.bool)
    mask[..., ::4, :] = True
    low = round(0.08 * w)
    mask[..., (w - low + 1) // 2 : (w - low + 1) // 2 + low, :] = True
    return (kspace * mask).to(device), mask.to(device)


def seeded(factory: Callable[[], torch.nn.Module], seed: int) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory()


# ----------------------------------------------------------------------------- benchmarks
def bench_inference(name, impls, inputs, device, repeats, batch) -> list[dict]:
    """impls: {label: model}; all called as model(*inputs) under inference_mode."""

    def runner(model):
        def run():
            with torch.inference_mode():
                return model(*inputs)
        return run

    fns = {label: runner(model) for label, model in impls.items()}
    outputs = {label: fn() for label, fn in fns.items()}
    times = time_round_robin(fns, device, repeats)
    rows = []
    reference = outputs.get("fastmri")
    for label, fn in fns.items():
        peak = peak_memory_bytes(fn, device)
        row = {
            "model": name,
            "impl": label,
            "latency_median_s": times[label]["median_s"],
            "latency_min_s": times[label]["min_s"],
            "cpu_median_s": times[label]["cpu_median_s"],
            "samples_s": times[label]["samples_s"],
            "throughput_slices_per_s": batch / times[label]["median_s"],
            "peak_memory_mb": peak / 2**20,
        }
        if reference is not None and label != "fastmri":
            row["rel_diff_vs_fastmri"] = rel_diff(outputs[label], reference)
        rows.append(row)
    if "fastmri" in times:
        base = times["fastmri"]
        for row in rows:
            row["speedup_vs_fastmri_median"] = base["median_s"] / times[row["impl"]]["median_s"]
            row["speedup_vs_fastmri_min"] = base["min_s"] / times[row["impl"]]["min_s"]
            row["speedup_vs_fastmri_cpu"] = base["cpu_median_s"] / times[row["impl"]]["cpu_median_s"]
    return rows


def bench_training(impls, kspace, mask, target, device, repeats) -> list[dict]:
    """One training step (forward, L1 loss, backward, Adam) per implementation."""
    steps = {}
    for label, model in impls.items():
        model.train()
        optim = torch.optim.Adam(model.parameters(), lr=1e-4)

        def step(model=model, optim=optim):
            optim.zero_grad(set_to_none=False)
            loss = (model(kspace, mask) - target).abs().mean()
            loss.backward()
            optim.step()
            return None

        steps[label] = step
    times = time_round_robin(steps, device, repeats)  # warm-up allocates grads and Adam state
    rows = []
    for label, step in steps.items():
        rows.append(
            {
                "model": "varnet-train-step",
                "impl": label,
                "step_median_s": times[label]["median_s"],
                "step_min_s": times[label]["min_s"],
                "step_cpu_median_s": times[label]["cpu_median_s"],
                "samples_s": times[label]["samples_s"],
                "peak_activation_mb": peak_memory_bytes(step, device) / 2**20,
            }
        )
    if "fastmri" in times:
        base = next(r for r in rows if r["impl"] == "fastmri")
        for row in rows:
            row["time_ratio_vs_fastmri_median"] = row["step_median_s"] / base["step_median_s"]
            row["time_ratio_vs_fastmri_min"] = row["step_min_s"] / base["step_min_s"]
            row["time_ratio_vs_fastmri_cpu"] = row["step_cpu_median_s"] / base["step_cpu_median_s"]
            row["memory_ratio_vs_fastmri"] = row["peak_activation_mb"] / base["peak_activation_mb"]
    return rows


def bench_bf16(model, kspace, mask, device, repeats) -> dict:
    """CUDA only: bf16 autocast vs float32 inference of our VarNet (speed-up, SSIM)."""

    def run32():
        with torch.inference_mode():
            return model(kspace, mask)

    def run16():
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16):
            return model(kspace, mask)

    out32, out16 = run32(), run16()
    times = time_round_robin({"float32": run32, "bf16": run16}, device, repeats)
    ssim_value = _ssim(out32, out16)
    return {
        "model": "varnet-bf16",
        "float32_median_s": times["float32"]["median_s"],
        "bf16_median_s": times["bf16"]["median_s"],
        "speedup": times["float32"]["median_s"] / times["bf16"]["median_s"],
        "ssim_bf16_vs_float32": ssim_value,
        "ssim_loss": 1.0 - ssim_value,
        "rel_diff": rel_diff(out16, out32),
    }


def _ssim(reference: torch.Tensor, other: torch.Tensor) -> float:
    """SSIM of ``other`` against ``reference`` (B, H, W), fastMRI's evaluate.ssim semantics."""
    gt = reference.detach().float().cpu().numpy()
    pred = other.detach().float().cpu().numpy()
    try:
        from recon.metrics import ssim
    except ImportError:  # pragma: no cover - metrics are written by another module
        from fastmri.evaluate import ssim
    return float(ssim(gt, pred, maxval=float(gt.max())))


# ----------------------------------------------------------------------------- main
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", default="knee",
                        help="knee, brain, quick, or B,C,H,W (e.g. 1,15,320,184)")
    parser.add_argument("--train-size", default=None,
                        help="size for the training step (default: --size)")
    parser.add_argument("--cascades", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-repeats", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--quick", action="store_true", help="quick size, 2 cascades, 2 repeats")
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["varnet", "unet", "cascadenet", "train", "bf16"])
    parser.add_argument("--no-fastmri", action="store_true", help="do not run fastMRI's models")
    parser.add_argument("--no-save", action="store_true", help="print only, write no results")
    parser.add_argument("--name", default="models", help="results file stem (default: models)")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.cascades, args.repeats = "quick", 2, 2
    return args


def parse_size(text: str) -> tuple[int, int, int, int]:
    if text in SIZES:
        return SIZES[text]
    parts = tuple(int(p) for p in text.split(","))
    if len(parts) != 4:
        raise SystemExit(f"--size must be knee, brain, quick or B,C,H,W; got {text!r}")
    return parts


def _reexec_with_mmap_threshold() -> None:
    """Restart the interpreter with glibc's mmap threshold pinned (see the module doc)."""
    if sys.platform.startswith("linux") and "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
        os.execve(sys.executable, [sys.executable, *sys.argv], env)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.device == "cpu" and argv is None:
        _reexec_with_mmap_threshold()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    use_fastmri = fastmri_models is not None and not args.no_fastmri
    shape = parse_size(args.size)
    train_shape = parse_size(args.train_size) if args.train_size else shape
    train_repeats = args.train_repeats or args.repeats
    results: dict[str, object] = {
        "config": {
            "size": shape, "train_size": train_shape, "cascades": args.cascades,
            "repeats": args.repeats, "train_repeats": train_repeats,
            "load_average_at_start": os.getloadavg(), "fastmri": use_fastmri,
            "malloc_mmap_threshold": os.environ.get("MALLOC_MMAP_THRESHOLD_"),
            "threads": torch.get_num_threads(),
        },
        "inference": [], "training": [], "bf16": None,
    }
    kspace, mask = make_problem(shape, device)
    batch = shape[0]

    def log(msg):
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    # Training first: recon.ops caches FFT sign tensors, and one created under
    # inference_mode cannot be used by autograd later in the same process.
    if "train" not in args.skip:
        log(f"VarNet-{args.cascades} training step {train_shape}")
        tk, tm = make_problem(train_shape, device, seed=2)
        target = torch.rand(train_shape[0], train_shape[2], train_shape[3],
                            generator=torch.Generator().manual_seed(3)).to(device) * 1e-3
        base = seeded(lambda: VarNet(num_cascades=args.cascades), 0)
        impls = {"recon": base.to(device)}
        ckpt = VarNet(num_cascades=args.cascades, checkpoint_cascades=True)
        ckpt.load_state_dict(base.state_dict())
        impls["recon-checkpoint"] = ckpt.to(device)
        if use_fastmri:
            ref = fastmri_models.VarNet(num_cascades=args.cascades)
            ref.load_state_dict(base.state_dict())
            impls["fastmri"] = ref.to(device)
        results["training"] = bench_training(impls, tk, tm, target, device, train_repeats)
        log(results["training"])

    if "varnet" not in args.skip:
        log(f"VarNet-{args.cascades} inference {shape}")
        ours = seeded(lambda: VarNet(num_cascades=args.cascades), 0).to(device).eval()
        impls = {"recon": ours}
        if use_fastmri:
            ref = fastmri_models.VarNet(num_cascades=args.cascades).to(device).eval()
            ref.load_state_dict(ours.state_dict())
            impls["fastmri"] = ref
        results["inference"] += bench_inference(
            f"varnet-{args.cascades}", impls, (kspace, mask), device, args.repeats, batch
        )
        log(results["inference"][-len(impls):])
        if device.type == "cuda" and "bf16" not in args.skip:
            results["bf16"] = bench_bf16(ours, kspace, mask, device, args.repeats)
            log(results["bf16"])
        del impls, ours

    if "unet" not in args.skip:
        log("U-Net (fastMRI single-coil baseline: 1 -> 1 channels, 32 chans, 4 pools) inference")
        gen = torch.Generator().manual_seed(1)
        image = torch.randn(batch, 1, shape[2], shape[3], generator=gen).to(device)
        ours = seeded(lambda: Unet(1, 1, chans=32, num_pool_layers=4), 0).to(device).eval()
        impls = {"recon": ours}
        if use_fastmri:
            ref = fastmri_models.Unet(1, 1, chans=32, num_pool_layers=4).to(device).eval()
            ref.load_state_dict(ours.state_dict())
            impls["fastmri"] = ref
        results["inference"] += bench_inference("unet-32", impls, (image,), device, args.repeats, batch)
        log(results["inference"][-len(impls):])

    if "cascadenet" not in args.skip:
        log("CascadeNet D5-C5 (64 filters, learned maps) inference")
        net = seeded(lambda: CascadeNet(num_cascades=5, num_convs=5, num_filters=64), 0).to(device).eval()
        results["inference"] += bench_inference(
            "cascadenet-d5c5", {"recon": net}, (kspace, mask), device, args.repeats, batch
        )
        log(results["inference"][-1:])

    table = report(results)
    print(table)
    if not args.no_save:
        folder = save_results(args.name, device, results, table, "recon.models benchmark")
        log(f"wrote {folder}/{args.name}.json and {args.name}.md")


def report(results: dict) -> str:
    cfg = results["config"]
    lines = [
        f"Size {tuple(cfg['size'])} (training {tuple(cfg['train_size'])}), {cfg['cascades']} cascades, "
        f"{cfg['repeats']} repeats round-robin; {cfg.get('threads')} threads; "
        f"load average at start {tuple(round(x, 1) for x in cfg['load_average_at_start'])}.",
        "",
        "## Inference (inference_mode, float32)",
        "",
    ]
    rows = [
        [r["model"], r["impl"], r["latency_median_s"], r["latency_min_s"], r["cpu_median_s"],
         r["throughput_slices_per_s"], r["peak_memory_mb"], r.get("speedup_vs_fastmri_median", "-"),
         r.get("speedup_vs_fastmri_min", "-"), r.get("speedup_vs_fastmri_cpu", "-"),
         r.get("rel_diff_vs_fastmri", "-")]
        for r in results["inference"]
    ]
    lines.append(markdown_table(
        ["model", "impl", "latency median (s)", "latency min (s)", "CPU time median (s)", "slices/s",
         "peak MB", "speed-up vs fastMRI (wall median)", "speed-up (wall min)", "speed-up (CPU time)",
         "rel. diff vs fastMRI"], rows))
    if results["training"]:
        lines += ["", "## Training step (forward + L1 + backward + Adam)", ""]
        rows = [
            [r["impl"], r["step_median_s"], r["step_min_s"], r["step_cpu_median_s"], r["peak_activation_mb"],
             r.get("time_ratio_vs_fastmri_median", "-"), r.get("time_ratio_vs_fastmri_min", "-"),
             r.get("time_ratio_vs_fastmri_cpu", "-"), r.get("memory_ratio_vs_fastmri", "-")]
            for r in results["training"]
        ]
        lines.append(markdown_table(
            ["impl", "step median (s)", "step min (s)", "step CPU time (s)", "peak activation MB",
             "time / fastMRI (wall median)", "time / fastMRI (wall min)", "time / fastMRI (CPU time)",
             "memory / fastMRI"], rows))
    lines += ["", "## bf16 autocast (CUDA)", ""]
    if results["bf16"]:
        b = results["bf16"]
        lines.append(markdown_table(
            ["float32 (s)", "bf16 (s)", "speed-up", "SSIM bf16 vs float32", "rel. diff"],
            [[b["float32_median_s"], b["bf16_median_s"], b["speedup"], b["ssim_bf16_vs_float32"], b["rel_diff"]]]))
    else:
        lines.append("Not run (no CUDA device in this run).")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
