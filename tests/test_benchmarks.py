"""The benchmark report: writer, runner, timer, plots, the CLI entry and the GPU script.

The default run checks the machinery with fake sections and one real cheap section (``ops``
in quick mode, a few seconds); the whole ``--quick`` report (issue 15: at most 3 minutes, about
70 s on an idle 2-core machine) runs in the default suite too and checks every file it writes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import types
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.image  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import run as bench_run  # noqa: E402
from benchmarks.common import environment, markdown_table, time_repeats  # noqa: E402
from benchmarks.plots import fit_exponent, image_grid, loglog_scaling  # noqa: E402
from benchmarks.report import check_section, json_safe, write_report  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _figure():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 2))
    fig.add_subplot().plot([1, 2, 3], [1, 4, 9])
    return fig


def _section(title="Fake", figure_name="fake-plot"):
    return {
        "title": title,
        "tables": [{"caption": "numbers", "headers": ["a", "b"], "rows": [["x", 1.23456], ["y", None]]},
                   {"caption": "free text", "text": "some words"}],
        "figures": [{"name": figure_name, "figure": _figure(), "caption": "a parabola"}],
        "notes": ["a note"],
        "results": {"value": 1.5, "tuple": (1, 2), "nan": float("nan"), "array": np.arange(3)},
    }


def _check_report(out: Path, expect_figures=()) -> tuple[str, dict]:
    text = (out / "REPORT.md").read_text()
    payload = json.loads((out / "results.json").read_text())
    for line in ("| date |", "| commit |", "| device |", "| torch |", "| CPU threads (torch) / cores |"):
        assert line in text
    for name in set(expect_figures) | {p.stem for p in out.glob("*.png")}:
        png = out / f"{name}.png"
        assert png.read_bytes()[:8] == PNG_MAGIC
        image = matplotlib.image.imread(png)
        assert image.ndim == 3 and image.shape[0] > 20 and image.shape[1] > 20
        assert f"({name}.png)" in text or name.startswith("headline")
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporaries left
    return text, payload


# ---------------------------------------------------------------------------- common helpers


def test_time_repeats_calls_warmup_plus_repeats_and_orders_statistics():
    calls = {"a": 0, "b": 0}

    def make(name, seconds):
        def fn():
            calls[name] += 1
            time.sleep(seconds)
        return fn

    out = time_repeats({"a": make("a", 0.002), "b": make("b", 0.0)}, torch.device("cpu"), repeats=5, warmup=2)
    assert calls == {"a": 7, "b": 7}
    for stats in out.values():
        assert len(stats["samples_s"]) == 5
        assert stats["min_s"] <= stats["median_s"] <= stats["max_s"] and stats["iqr_s"] >= 0
    assert out["a"]["median_s"] >= 0.002 > out["b"]["median_s"]


@pytest.mark.parametrize("kwargs, match", [({"repeats": 0}, "repeats must be >= 1"), ({"warmup": -1}, "warmup must be >= 0")])
def test_time_repeats_rejects_bad_counts(kwargs, match):
    with pytest.raises(ValueError, match=match):
        time_repeats({"f": lambda: None}, torch.device("cpu"), **kwargs)


def test_markdown_table_formats_cells():
    text = markdown_table(["name", "value"], [["a|b", 0.000123456], ["c", None], ["d", 12]])
    assert text.splitlines() == ["| name | value |", "|---|---|", "| a\\|b | 0.000123 |", "| c | - |", "| d | 12 |"]


def test_environment_names_the_machine():
    env = environment(torch.device("cpu"))
    assert env["torch"] == torch.__version__ and env["threads"] == torch.get_num_threads()
    assert env["device"] == "cpu" and env["date"].endswith("UTC")
    assert env["commit"] is None or len(env["commit"]) == 40


def test_fit_exponent_recovers_a_power_law():
    x = np.array([2.0, 4.0, 8.0, 16.0, 64.0])
    k, c = fit_exponent(x, 3.0 * x**2.5)
    assert k == pytest.approx(2.5, abs=1e-12) and c == pytest.approx(3.0, rel=1e-10)


@pytest.mark.parametrize("x, y, match", [([1.0], [1.0], "two or more"), ([1.0, 2.0], [1.0, 0.0], "positive"),
                                         ([1.0, 2.0], [1.0], "two or more")])
def test_fit_exponent_rejects_bad_points(x, y, match):
    with pytest.raises(ValueError, match=match):
        fit_exponent(x, y)


def test_plots_make_figures():
    fig = loglog_scaling({"a": ([1, 2, 4], [1.0, 4.0, 16.0]), "single": ([3], [1.0])}, xlabel="coils")
    assert fig.axes[0].get_legend().get_texts()[0].get_text() == "a: ~ x^2.00"
    target = np.ones((8, 8))
    grid = image_grid(target, {"m1": target * 0.9, "m2": target}, scores={"m1": "SSIM 0.9"})
    assert len(grid.axes) == 6


# ---------------------------------------------------------------------------- report writer


def test_write_report_writes_markdown_json_and_pngs(tmp_path):
    env = {**environment(torch.device("cpu")), "wall_s": 1.0}
    report = write_report(tmp_path, env, [("fake", check_section("fake", _section()))], quick=True,
                          headline=["headline text"], skipped=[("other", "does not exist yet")])
    text, payload = _check_report(tmp_path, ["fake-plot"])
    assert report == tmp_path / "REPORT.md"
    assert "QUICK MODE" in text and "headline text" in text and "`other`: not in this report: does not exist yet" in text
    assert "| x | 1.23 |" in text and "| y | - |" in text and "some words" in text and "a note" in text
    assert payload["quick"] is True and payload["skipped"] == {"other": "does not exist yet"}
    assert payload["sections"]["fake"]["results"] == {"value": 1.5, "tuple": [1, 2], "nan": None, "array": [0, 1, 2]}
    assert payload["sections"]["fake"]["figures"] == ["fake-plot.png"]


@pytest.mark.parametrize("section, match", [
    ([], "must return a dict"),
    ({"tables": []}, "'title' must be a string"),
    ({"title": "t", "tables": [{"headers": ["a"]}]}, "needs 'headers' and 'rows'"),
    ({"title": "t", "tables": [{"headers": ["a", "b"], "rows": [[1]]}]}, "2 headers but a row of 1 cells"),
    ({"title": "t", "figures": [{"name": "x"}]}, "needs 'name' and 'figure'"),
    ({"title": "t", "figures": [{"name": "Bad Name", "figure": None}]}, "figure name must be lower-case"),
])
def test_check_section_rejects_malformed_sections(section, match):
    with pytest.raises((TypeError, ValueError), match=match):
        check_section("fake", section)


def test_write_report_rejects_duplicate_figure_names(tmp_path):
    env = environment(torch.device("cpu"))
    with pytest.raises(ValueError, match="figure names must be unique"):
        write_report(tmp_path, env, [("a", _section()), ("b", _section())], quick=False)


def test_json_safe_converts_non_json_values():
    assert json_safe({1: (float("inf"), np.float32(2.5), torch.tensor([1, 2]), Path("p"))}) == {"1": [None, 2.5, [1, 2], "p"]}


# ---------------------------------------------------------------------------- runner


def _fake_modules(monkeypatch, modules):
    def load(name):
        if name in modules:
            return modules[name], None
        return None, f"benchmarks/{name}.py does not exist yet"
    monkeypatch.setattr(bench_run, "_load", load)


def test_run_report_skips_missing_failing_and_over_budget_sections(tmp_path, monkeypatch):
    seen = []

    def good_run(quick, device):
        seen.append((quick, device))
        time.sleep(0.05)
        return _section()

    def bad_run(quick, device):
        raise RuntimeError("boom")

    _fake_modules(monkeypatch, {"ops": types.SimpleNamespace(run=good_run), "data": types.SimpleNamespace(run=bad_run),
                                "models": types.SimpleNamespace(run=good_run)})
    report = bench_run.run_report(quick=True, out=tmp_path, budget=0.01, sections=["heads", "data", "ops", "models"])
    text, payload = _check_report(tmp_path, ["fake-plot"])
    assert seen == [(True, torch.device("cpu"))]  # 'models' came after the budget was used up
    assert "run() failed: RuntimeError: boom" in payload["skipped"]["data"]
    assert "does not exist yet" in payload["skipped"]["heads"]
    assert "time budget of 0 s used up" in payload["skipped"]["models"]
    assert list(payload["sections"]) == ["ops"] and report.exists()


@pytest.mark.parametrize("kwargs, match", [
    ({"sections": ["nope"]}, "sections must be among"),
    ({"budget": 0}, "budget must be a positive number"),
    ({"device": "mps"}, "device must be 'cpu' or 'cuda'"),
])
def test_run_report_rejects_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        bench_run.run_report(out=tmp_path, **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
def test_run_report_cuda_without_gpu_says_so(tmp_path):
    with pytest.raises(ValueError, match="no GPU here"):
        bench_run.run_report(device="cuda", out=tmp_path)


def test_every_section_is_ordered_for_the_gpu_and_existing_modules_have_run():
    assert sorted(bench_run.GPU_ORDER) == sorted(bench_run.SECTIONS)
    for name in bench_run.SECTIONS:
        if (ROOT / "benchmarks" / f"{name}.py").is_file() and name not in ("preprocess", "augment", "memory", "dicom"):
            module, why = bench_run._load(name)
            assert module is not None, why


def test_main_parses_the_documented_options(capsys):
    args = bench_run.parse_args(["--quick", "--device", "cuda", "--out", "x", "--budget", "300", "--sections", "ops"])
    assert (args.quick, args.device, args.out, args.budget, args.sections) == (True, "cuda", "x", 300.0, ["ops"])
    for bad in (["--budget", "0"], ["--budget", "soon"], ["--device", "tpu"]):
        with pytest.raises(SystemExit):
            bench_run.parse_args(bad)
    assert bench_run.main(["--list"]) == 0
    assert "accuracy" in capsys.readouterr().out
    assert bench_run.main(["--sections", "nope", "--out", "unused"]) == 2
    assert "sections must be among" in capsys.readouterr().err


def test_real_ops_section_in_quick_mode(tmp_path):
    """A real (cheap) section end to end: ops in quick mode, in this process."""
    bench_run.run_report(quick=True, out=tmp_path, sections=["ops"])
    text, payload = _check_report(tmp_path)
    assert "fft2c" in text and "QUICK MODE" in text
    assert payload["sections"]["ops"]["results"]["shape"] == [1, 4, 128, 96]


def test_model_inference_variants_on_cpu_without_compile():
    from benchmarks.models import bench_inference_variants, make_problem

    from recon.models import VarNet

    kspace, mask = make_problem((1, 2, 32, 24), torch.device("cpu"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = VarNet(num_cascades=1, sens_chans=2, sens_pools=1, chans=4, pools=1).eval()
    rows = bench_inference_variants(model, kspace, mask, torch.device("cpu"), repeats=1, compile_variants=False)
    assert [r["variant"] for r in rows] == ["eager float32", "eager bf16 autocast"]
    assert rows[0]["rel_diff_vs_eager_float32"] == 0 and rows[0]["ssim_vs_eager_float32"] == pytest.approx(1.0)
    assert 0 < rows[1]["rel_diff_vs_eager_float32"] < 0.1


# ---------------------------------------------------------------------------- CLI and GPU script


def test_recon_benchmark_cli(tmp_path, capsys, monkeypatch):
    from recon import cli

    assert cli.main(["benchmark", "--list"]) == 0
    assert "scaling" in capsys.readouterr().out
    if not torch.cuda.is_available():
        assert cli.main(["benchmark", "--device", "cuda", "--out", str(tmp_path)]) != 0
        assert "no GPU here" in capsys.readouterr().err
    try:  # usage errors: exit status 2 (raised or returned, depending on the parser)
        code = cli.main(["benchmark", "--budget", "-5"])
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    capsys.readouterr()
    assert cli.main(["benchmark", "--quick", "--sections", "ops", "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "REPORT.md").is_file()
    # outside a source checkout: a clear error
    monkeypatch.setattr(cli, "__file__", str(tmp_path / "site-packages" / "recon" / "cli.py"))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["benchmark", "--list"]) != 0
    assert "benchmarks/run.py not found" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available() or shutil.which("bash") is None, reason="checks the no-GPU path")
def test_gpu_script_says_no_gpu_and_exits_zero():
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu.sh")], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHON": sys.executable})
    assert done.returncode == 0
    assert "no CUDA device" in done.stderr and "GPU report not run" in done.stderr


# ---------------------------------------------------------------------------- the whole quick report


def test_quick_report_end_to_end(tmp_path):
    """`python -m benchmarks.run --quick`: every section, REPORT.md, results.json, PNGs (issue 15: <= 3 min)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "benchmarks.run", "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=900)
    seconds = time.perf_counter() - start
    assert done.returncode == 0, done.stderr[-3000:]
    text, payload = _check_report(tmp_path, ["grid-4x", "grid-8x", "methods-throughput", "scaling-coils",
                                             "scaling-side", "scaling-cascades", "headline-tradeoff"])
    for name in ("methods", "accuracy", "ops", "data", "models", "classical", "scaling", "distributed",
                 "preprocess", "augment", "dicom", "heads"):
        assert name in payload["sections"], payload["skipped"].get(name)
    means = payload["sections"]["accuracy"]["results"]["mean"]
    for key in ("4x", "8x"):
        assert set(means[key]) == {"zero_filled", "sense", "cs", "tv", "unet", "cascade", "varnet"}
        for scores in means[key].values():
            assert 0 < scores["SSIM"] <= 1 and scores["NMSE"] > 0
    assert "## Headline" in text
    if seconds > 180:  # a shared machine can be slower; the figure is in the test output
        import warnings

        warnings.warn(f"--quick took {seconds:.0f} s (target <= 180 s on an idle 2-core machine)")


@pytest.mark.slow
def test_compiled_variants_run_on_cpu():
    """The torch.compile path of the GPU run, exercised on the CPU with a tiny VarNet."""
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("torch.compile on CPU needs a C compiler")
    from benchmarks.models import bench_inference_variants, make_problem

    from recon.models import VarNet

    kspace, mask = make_problem((1, 2, 32, 24), torch.device("cpu"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = VarNet(num_cascades=1, sens_chans=2, sens_pools=1, chans=4, pools=1).eval()
    rows = bench_inference_variants(model, kspace, mask, torch.device("cpu"), repeats=1, compile_variants=True)
    compiled = [r for r in rows if r["variant"].startswith("torch.compile")]
    assert len(compiled) == 2
    for row in compiled:
        assert "error" not in row, row
    assert compiled[0]["rel_diff_vs_eager_float32"] < 1e-4


def test_merge_reports_combines_runs(tmp_path):
    from benchmarks.report import merge_reports

    env = {**environment(torch.device("cpu")), "wall_s": 2.0}
    write_report(tmp_path / "one", env, [("ops", check_section("ops", _section("Ops", "ops-plot")))], quick=False,
                 skipped=[("data", "not run: the report was written before this section's turn (run in progress, or stopped)")])
    write_report(tmp_path / "two", env, [("data", check_section("data", _section("Data", "data-plot")))], quick=False,
                 skipped=[("heads", "does not exist yet")])
    merge_reports(tmp_path / "out", [tmp_path / "one", tmp_path / "two"], ["ops", "data", "heads"])
    text, payload = _check_report(tmp_path / "out", ["ops-plot", "data-plot"])
    assert list(payload["sections"]) == ["ops", "data"] and payload["skipped"] == {"heads": "does not exist yet"}
    assert (tmp_path / "out" / "ops-plot.png").read_bytes() == (tmp_path / "one" / "ops-plot.png").read_bytes()
    assert text.count("| merged from the run of") == 2 and "![a parabola](data-plot.png)" in text


def test_skipped_sections_link_their_scripts_last_standalone_results(tmp_path):
    (tmp_path / "ops.md").write_text("# ops\n")
    env = environment(torch.device("cpu"))
    write_report(tmp_path, env, [], quick=False, skipped=[("ops", "time budget used up"), ("data", "failed")])
    text = (tmp_path / "REPORT.md").read_text()
    assert "- `ops`: not in this report: time budget used up; the last standalone run of its script: [ops.md](ops.md)" in text
    assert "- `data`: not in this report: failed\n" in text


def test_robustness_section_scores_against_an_independent_zero_filled_reference():
    pytest.importorskip("pydicom")
    from benchmarks import robustness
    from recon.data.simulate import SimulationConfig, simulate_multicoil
    from recon.masks import create_mask_for_mask_type
    from recon.metrics import ssim

    ct, margin = robustness.load_image("ct_small"), robustness.load_image("ct_small_margin")
    assert ct.min() == 0 and margin.shape == (ct.shape[0] + 32, ct.shape[1] + 32) and margin[:16].max() == 0
    assert robustness.load_image("dipy_t1").ndim == 2 and robustness.load_image("mr_small").shape == (64, 64)
    image = robustness.load_image("mr_small")
    changes = {"snr": 30.0, "num_coils": 4}  # a row's changes may replace the default 8 coils
    columns = robustness.score(image, changes, False, ["zero_filled"], torch.device("cpu"))
    rows = robustness.score(image, changes, True, ["zero_filled"], torch.device("cpu"))
    sim = simulate_multicoil(image, SimulationConfig(num_coils=4, snr=30.0), seed=1)
    for acceleration, fraction in robustness.SETTINGS.items():
        mask = create_mask_for_mask_type("equispaced_fraction", [fraction], [acceleration])(
            (1, 1, sim.kspace.shape[-1], 1), seed=0)[0].numpy().reshape(-1)
        coil = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(sim.kspace[0] * mask, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
        reference = float(ssim(sim.target.astype(np.float64), np.sqrt((np.abs(coil) ** 2).sum(0))[None]))
        key = f"{acceleration}x"
        assert columns[key]["zero_filled"] == pytest.approx(reference, abs=1e-4)
        assert rows[key]["zero_filled"] == pytest.approx(reference, abs=1e-4)  # the turned acquisition, turned back
    assert columns["8x"]["zero_filled"] < columns["4x"]["zero_filled"]
    assert "robustness" in bench_run.SECTIONS and "robustness" in bench_run.GPU_ORDER
