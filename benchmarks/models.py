"""Benchmark of the learned models (recon.models) against fastMRI's implementations.

Measured in one process on the same data and the same weights, round-robin (one call of each
implementation per round, so machine noise hits all of them alike):

* inference (``torch.inference_mode``, eval mode): latency (median and min over repeats),
  throughput (slices / s), peak memory, and the relative difference of the outputs, for
  VarNet (ours vs fastMRI), U-Net (ours vs fastMRI) and CascadeNet (D5-C5, ours only);
* one VarNet training step (forward, L1 loss, backward, Adam step): time and peak
  activation memory, ours without and with gradient checkpointing, and fastMRI;
* VarNet inference variants: bf16 autocast vs float32 (CPU and CUDA); on CUDA also
  ``torch.compile`` and ``torch.compile`` with CUDA graphs: speed-up over fastMRI and the SSIM
  between the outputs and eager float32;
* the training step also under bf16 autocast (mixed precision), with and without checkpointing.

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

    python -m benchmarks.models                          # knee size (1, 15, 640, 368), 12 cascades
    python -m benchmarks.models --size brain             # (1, 16, 640, 320)
    python -m benchmarks.models --quick                  # small size, few cascades: a smoke run
    python -m benchmarks.models --cascades 4 --repeats 3 --skip unet cascadenet
    python -m benchmarks.models --device cuda

Writes ``benchmarks/results/<device>/models.json`` and ``models.md`` (atomically).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Callable

import torch

if __package__ in (None, ""):  # run as a script: python benchmarks/models.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import markdown_table, save_results, section_in_child, time_repeats, wants_child  # noqa: E402
from benchmarks.common import peak_memory_bytes as _peak_memory_bytes  # noqa: E402

from recon.models import CascadeNet, Unet, VarNet  # noqa: E402

try:  # the reference implementation, optional
    import fastmri.models as fastmri_models
except ImportError:  # pragma: no cover - depends on the environment
    fastmri_models = None

SIZES = {"knee": (1, 15, 640, 368), "brain": (1, 16, 640, 320), "quick": (1, 4, 128, 96)}


# ----------------------------------------------------------------------------- measurement
def time_round_robin(fns, device: torch.device, repeats: int, warmup: int = 1):
    """:func:`benchmarks.common.time_repeats` (interleaved; CUDA events on GPU)."""
    return time_repeats(fns, device, repeats=repeats, warmup=warmup)


def peak_memory_bytes(fn: Callable[[], object], device: torch.device, runs: int = 2) -> int:
    """:func:`benchmarks.common.peak_memory_bytes`, 0 where it cannot be measured."""
    return _peak_memory_bytes(fn, device, runs) or 0


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
def bench_inference(name, impls, inputs, device, repeats, batch, memory_runs=2) -> list[dict]:
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
        peak = peak_memory_bytes(fn, device, memory_runs)
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


def bench_training(impls, kspace, mask, target, device, repeats, autocast=None, memory_runs=2) -> list[dict]:
    """One training step (forward, L1 loss, backward, Adam) per implementation.

    ``autocast``: label -> dtype (e.g. ``torch.bfloat16``) for the labels whose forward and
    loss run under ``torch.autocast`` (mixed precision; the weights stay float32).
    """
    autocast = autocast or {}
    steps = {}
    for label, model in impls.items():
        model.train()
        optim = torch.optim.Adam(model.parameters(), lr=1e-4)

        def step(model=model, optim=optim, dtype=autocast.get(label)):
            optim.zero_grad(set_to_none=False)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = (model(kspace, mask).float() - target).abs().mean()
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
                "peak_activation_mb": peak_memory_bytes(step, device, memory_runs) / 2**20,
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


def inference_variants(model, device: torch.device, compile_variants: bool) -> dict[str, Callable]:
    """Ways to run one VarNet for inference: eager float32 and bf16 autocast and, when
    ``compile_variants``, ``torch.compile(mode="reduce-overhead")`` (on CUDA: with CUDA graphs)
    in float32 and under bf16 autocast.  Each value: ``(kspace, mask) -> image`` (float32).
    """

    def eager(dtype):
        def fn(kspace, mask):
            with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                return model(kspace, mask).float()
        return fn

    variants: dict[str, Callable] = {"eager float32": eager(None), "eager bf16 autocast": eager(torch.bfloat16)}
    if compile_variants:
        graphs = " + CUDA graphs" if device.type == "cuda" else ""

        def compiled(dtype):
            # one compiled module per precision: the autocast graph differs from the float32 one
            module = torch.compile(model, mode="reduce-overhead", dynamic=False)

            def fn(kspace, mask):
                with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                    # CUDA graphs reuse their output buffers: copy before the next replay
                    return module(kspace, mask).float().clone()
            return fn

        variants[f"torch.compile{graphs} float32"] = compiled(None)
        variants[f"torch.compile{graphs} bf16 autocast"] = compiled(torch.bfloat16)
    return variants


def bench_inference_variants(model, kspace, mask, device, repeats, compile_variants, reference=None) -> list[dict]:
    """Latency of each :func:`inference_variants` entry (and fastMRI's float32 ``reference``
    model with the same weights, if given); SSIM and relative difference against eager float32.
    A variant that fails (e.g. no compiler toolchain) is reported with its error, not raised.
    """
    variants = inference_variants(model, device, compile_variants)
    if reference is not None:
        def fastmri_fp32(kspace, mask):
            with torch.inference_mode():
                return reference(kspace, mask)
        variants = {"fastMRI eager float32": fastmri_fp32, **variants}
    outputs, fns, errors = {}, {}, {}
    for label, fn in variants.items():
        try:
            for _ in range(3 if "compile" in label else 1):  # compile, record the graph, replay
                outputs[label] = fn(kspace, mask)
            fns[label] = (lambda fn=fn: fn(kspace, mask))
        except Exception as err:  # noqa: BLE001 - reported in the table
            errors[label] = f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
    times = time_round_robin(fns, device, repeats) if fns else {}
    base32 = outputs.get("eager float32")
    base_time = times.get("fastMRI eager float32", times.get("eager float32", {})).get("median_s")
    rows = []
    for label in variants:
        if label in errors:
            rows.append({"variant": label, "error": errors[label]})
            continue
        t = times[label]
        rows.append({
            "variant": label,
            "latency_median_s": t["median_s"], "latency_min_s": t["min_s"], "latency_iqr_s": t["iqr_s"],
            "throughput_slices_per_s": kspace.shape[0] / t["median_s"],
            "speedup_vs_baseline": None if base_time is None else base_time / t["median_s"],
            "ssim_vs_eager_float32": None if base32 is None else _ssim(base32, outputs[label]),
            "rel_diff_vs_eager_float32": None if base32 is None else rel_diff(outputs[label], base32),
        })
    return rows


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
                        choices=["varnet", "unet", "cascadenet", "train", "variants", "compile"])
    parser.add_argument("--section", choices=["quick", "full"], default=None, help=argparse.SUPPRESS)
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


def measure(device: torch.device, shape, train_shape, cascades: int, repeats: int, train_repeats: int,
            skip=(), use_fastmri: bool = True, compile_variants: bool = False, log=None,
            memory_runs: int = 2) -> dict:
    """Run the model benchmarks selected by ``skip``; return the results dict of :func:`report`."""
    log = log or (lambda msg: None)
    use_fastmri = use_fastmri and fastmri_models is not None
    results: dict[str, object] = {
        "config": {
            "size": shape, "train_size": train_shape, "cascades": cascades,
            "repeats": repeats, "train_repeats": train_repeats,
            "load_average_at_start": os.getloadavg(), "fastmri": use_fastmri,
            "malloc_mmap_threshold": os.environ.get("MALLOC_MMAP_THRESHOLD_"),
            "threads": torch.get_num_threads(),
        },
        "inference": [], "training": [], "variants": [],
    }
    kspace, mask = make_problem(shape, device)
    batch = shape[0]

    # Training first: recon.ops caches FFT sign tensors, and one created under
    # inference_mode cannot be used by autograd later in the same process.
    if "train" not in skip:
        log(f"VarNet-{cascades} training step {train_shape}")
        tk, tm = make_problem(train_shape, device, seed=2)
        target = torch.rand(train_shape[0], train_shape[2], train_shape[3],
                            generator=torch.Generator().manual_seed(3)).to(device) * 1e-3
        base = seeded(lambda: VarNet(num_cascades=cascades), 0)
        impls = {"recon": base.to(device)}
        ckpt = VarNet(num_cascades=cascades, checkpoint_cascades=True)
        ckpt.load_state_dict(base.state_dict())
        impls["recon-checkpoint"] = ckpt.to(device)
        amp = VarNet(num_cascades=cascades)
        amp.load_state_dict(base.state_dict())
        impls["recon-bf16-autocast"] = amp.to(device)
        amp_ckpt = VarNet(num_cascades=cascades, checkpoint_cascades=True)
        amp_ckpt.load_state_dict(base.state_dict())
        impls["recon-checkpoint-bf16-autocast"] = amp_ckpt.to(device)
        if use_fastmri:
            ref = fastmri_models.VarNet(num_cascades=cascades)
            ref.load_state_dict(base.state_dict())
            impls["fastmri"] = ref.to(device)
        autocast = {"recon-bf16-autocast": torch.bfloat16, "recon-checkpoint-bf16-autocast": torch.bfloat16}
        results["training"] = bench_training(impls, tk, tm, target, device, train_repeats, autocast, memory_runs)
        log(results["training"])
        del impls, base, ckpt, amp, amp_ckpt

    if "varnet" not in skip:
        log(f"VarNet-{cascades} inference {shape}")
        ours = seeded(lambda: VarNet(num_cascades=cascades), 0).to(device).eval()
        impls = {"recon": ours}
        ref = None
        if use_fastmri:
            ref = fastmri_models.VarNet(num_cascades=cascades).to(device).eval()
            ref.load_state_dict(ours.state_dict())
            impls["fastmri"] = ref
        results["inference"] += bench_inference(
            f"varnet-{cascades}", impls, (kspace, mask), device, repeats, batch, memory_runs
        )
        log(results["inference"][-len(impls):])
        if "variants" not in skip:
            results["variants"] = bench_inference_variants(ours, kspace, mask, device, repeats, compile_variants, ref)
            log(results["variants"])
        del impls, ours, ref

    if "unet" not in skip:
        log("U-Net (fastMRI single-coil baseline: 1 -> 1 channels, 32 chans, 4 pools) inference")
        gen = torch.Generator().manual_seed(1)
        image = torch.randn(batch, 1, shape[2], shape[3], generator=gen).to(device)
        ours = seeded(lambda: Unet(1, 1, chans=32, num_pool_layers=4), 0).to(device).eval()
        impls = {"recon": ours}
        if use_fastmri:
            ref = fastmri_models.Unet(1, 1, chans=32, num_pool_layers=4).to(device).eval()
            ref.load_state_dict(ours.state_dict())
            impls["fastmri"] = ref
        results["inference"] += bench_inference("unet-32", impls, (image,), device, repeats, batch, memory_runs)
        log(results["inference"][-len(impls):])

    if "cascadenet" not in skip:
        log("CascadeNet D5-C5 (64 filters, learned maps) inference")
        net = seeded(lambda: CascadeNet(num_cascades=5, num_convs=5, num_filters=64), 0).to(device).eval()
        results["inference"] += bench_inference(
            "cascadenet-d5c5", {"recon": net}, (kspace, mask), device, repeats, batch, memory_runs
        )
        log(results["inference"][-1:])
    return results


def section_settings(quick: bool, device: torch.device) -> dict:
    """Sizes and repeats of the report's model section (quick: a smoke-size run)."""
    if quick:
        return {"shape": SIZES["quick"], "train_shape": (1, 4, 64, 48), "cascades": 2, "repeats": 2,
                "train_repeats": 1, "brain": None, "memory_runs": 1}
    if device.type == "cuda":
        return {"shape": SIZES["knee"], "train_shape": SIZES["knee"], "cascades": 12, "repeats": 20,
                "train_repeats": 5, "brain": SIZES["brain"]}
    # CPU: the training step at a quarter of the knee's area (a full-knee step takes ~15 s per
    # implementation and is in models-train-knee.md)
    return {"shape": SIZES["knee"], "train_shape": (1, 15, 320, 184), "cascades": 12, "repeats": 3,
            "train_repeats": 2, "brain": SIZES["brain"]}


def section(quick: bool, device: torch.device) -> dict:
    """The model section in this process (see :func:`run`)."""
    cfg = section_settings(quick, device)
    compile_variants = device.type == "cuda"
    results = measure(device, cfg["shape"], cfg["train_shape"], cfg["cascades"], cfg["repeats"],
                      cfg["train_repeats"], compile_variants=compile_variants, memory_runs=cfg.get("memory_runs", 2))
    if cfg["brain"] is not None:
        brain = measure(device, cfg["brain"], cfg["brain"], cfg["cascades"], cfg["repeats"], 1,
                        skip=("train", "variants", "unet", "cascadenet"))
        results["inference"] += brain["inference"]
        results["config"]["brain_size"] = cfg["brain"]
    text = report(results)
    tables = _tables_from_markdown(text)
    notes = [text.split("\n")[0]]
    if not compile_variants:
        notes.append("torch.compile and CUDA graphs are measured on CUDA only (not in this CPU run).")
    if quick:
        notes.append(f"QUICK MODE: size {cfg['shape']} (training {cfg['train_shape']}), {cfg['cascades']} cascades, "
                     f"{cfg['repeats']} repeats (a smoke run, not the knee/brain figures).")
    return {"title": "Learned models: inference, training step, precision and compilation",
            "tables": tables, "figures": [], "notes": notes, "results": results}


def _tables_from_markdown(text: str) -> list[dict]:
    """Split :func:`report`'s markdown into the report's table dicts (caption = the heading)."""
    tables, caption = [], ""
    for block in text.split("\n\n"):
        block = block.strip()
        if block.startswith("## "):
            caption = block[3:]
        elif block.startswith("|"):
            lines = block.splitlines()
            headers = [c.strip() for c in lines[0].strip("|").split("|")]
            rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
            tables.append({"caption": caption, "headers": headers, "rows": rows})
        elif block:
            tables.append({"caption": caption, "text": block})
    return tables


def run(quick: bool, device: torch.device) -> dict:
    """Report section: VarNet / U-Net / CascadeNet against fastMRI (latency, throughput, peak
    memory), the VarNet training step with and without gradient checkpointing and bf16 mixed
    precision, and inference variants (bf16 autocast; on CUDA ``torch.compile`` and CUDA graphs).

    On CPU the section runs in a child process with ``MALLOC_MMAP_THRESHOLD_=65536`` so that
    peak resident memory follows the live tensors (see the module doc).
    """
    if wants_child(device):
        return section_in_child("models", quick, device)
    return section(quick, device)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.section is not None:  # child mode of run(): the section as JSON on the last line
        device = torch.device(args.device)
        print(json.dumps(section(args.section == "quick", device), default=str))
        return
    if args.device == "cpu" and argv is None:
        _reexec_with_mmap_threshold()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    shape = parse_size(args.size)
    train_shape = parse_size(args.train_size) if args.train_size else shape

    def log(msg):
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    results = measure(device, shape, train_shape, args.cascades, args.repeats, args.train_repeats or args.repeats,
                      skip=args.skip, use_fastmri=not args.no_fastmri,
                      compile_variants=device.type == "cuda" and "compile" not in args.skip, log=log)
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
    if results.get("variants"):
        lines += ["", "## VarNet inference variants (speed-up vs fastMRI eager float32, same weights)", ""]
        rows = []
        for r in results["variants"]:
            if "error" in r:
                rows.append([r["variant"], "-", "-", "-", "-", "-", "failed: " + r["error"]])
            else:
                rows.append([r["variant"], r["latency_median_s"], r["latency_iqr_s"], r["throughput_slices_per_s"],
                             r["speedup_vs_baseline"], r["ssim_vs_eager_float32"], r["rel_diff_vs_eager_float32"]])
        lines.append(markdown_table(
            ["variant", "latency median (s)", "IQR (s)", "slices/s", "speed-up vs fastMRI fp32",
             "SSIM vs eager fp32", "rel. diff vs eager fp32"], rows))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
