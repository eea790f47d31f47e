"""Bad input to the benchmark report and to the sharding of folders across processes (issue 15):
the exception type, and a message that names the argument (or the file)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from recon.train.distributed import DistributedContext, map_sharded, shard_indices
from reliability_helpers import raises_naming

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.run import run_report  # noqa: E402
from benchmarks.report import check_section  # noqa: E402


@pytest.mark.parametrize("kwargs, exc, names", [
    ({"sections": ["nope"]}, ValueError, ["sections", "nope"]),
    ({"budget": 0}, ValueError, ["budget", "0"]),
    ({"budget": -3.5}, ValueError, ["budget", "-3.5"]),
    ({"device": "mps"}, ValueError, ["device", "mps"]),
] + ([] if torch.cuda.is_available() else [({"device": "cuda"}, ValueError, ["cuda", "is_available"])]))
def test_run_report_bad_arguments(tmp_path, kwargs, exc, names):
    with raises_naming(exc, *names):
        run_report(out=tmp_path, **kwargs)


@pytest.mark.parametrize("section, exc, names", [
    ("text", TypeError, ["sec", "dict", "str"]),
    ({"title": 3}, ValueError, ["sec", "title", "3"]),
    ({"title": "t", "tables": [{"headers": ["a", "b"], "rows": [[1, 2, 3]]}]}, ValueError, ["sec", "2 headers", "3 cells"]),
    ({"title": "t", "figures": [{"name": "a b", "figure": None}]}, ValueError, ["sec", "figure name", "a b"]),
])
def test_check_section_bad_sections(section, exc, names):
    with raises_naming(exc, *names):
        check_section("sec", section)


@pytest.mark.parametrize("sizes, world_size, names", [
    ([1, 2], 0, ["world_size", "0"]),
    ([1, 2], 2.0, ["world_size", "2.0"]),
    ([1, 2], None, ["world_size", "None"]),
    ([1, -2], 2, ["sizes", "-2"]),
])
def test_shard_indices_bad_arguments(sizes, world_size, names):
    with raises_naming(ValueError, *names):
        shard_indices(sizes, world_size)


def test_map_sharded_names_the_failing_file(tmp_path):
    def work(path):
        raise OSError(f"cannot read {path.name}")

    _, failures = map_sharded(DistributedContext(), [tmp_path / "a.h5"], work)
    assert str(failures[0]) == "a.h5 (rank 0): cannot read a.h5" and failures[0].kind == "OSError"
