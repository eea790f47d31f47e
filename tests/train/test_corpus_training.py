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
        if name != "varnet_ssdu":
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
    assert (run / "cards" / "varnet_ssdu.md").read_text().count("self-supervised SSDU") == 1
    assert "dipy_b0_axial" in (run / "REPORT.md").read_text()
    assert not (script.WEIGHTS_DIR / "varnet_ssdu.pt").exists()  # nothing exported without --export
