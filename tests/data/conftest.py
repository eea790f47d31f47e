"""tests/data: make the file-writing helper importable and keep generated data out of ~."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def split_cache(tmp_path_factory) -> Path:
    """A cache root shared by the tests that generate split files (each split is built once)."""
    return tmp_path_factory.mktemp("recon-cache")
