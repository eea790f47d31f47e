"""The layering rules of ARCHITECTURE.md, read off the import statements.

k-space -> operators -> reconstruction -> image -> heads -> reports: each layer imports only the
layers below it.  ``ops`` imports nothing of recon, ``models`` never imports ``data``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "recon"

# What each part of recon may import from recon (besides itself).
ALLOWED: dict[str, set[str]] = {
    "ops": set(),
    "masks": {"ops"},
    "metrics": {"ops"},
    "data": {"ops", "masks", "metrics", "preprocess"},
    "classical": {"ops", "masks"},
    "models": {"ops"},
    "heads": {"ops", "models", "preprocess"},
    "preprocess": {"ops"},
    "viz": {"ops"},
    "train": {"ops", "masks", "metrics", "data", "classical", "models", "heads", "preprocess", "viz"},
    "api": {"ops", "masks", "metrics", "data", "classical", "models", "heads", "preprocess", "train", "viz"},
    "cli": {"ops", "masks", "metrics", "data", "classical", "models", "heads", "preprocess", "train", "viz", "api"},
}


def _part(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def _recon_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module == "recon":
                names = [f"recon.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "recon" and len(parts) > 1:
                found.add(parts[1])
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_go_down(path):
    part = _part(path)
    if part not in ALLOWED:
        pytest.fail(f"{path.relative_to(PACKAGE)} is not in a known layer; add it to ARCHITECTURE.md and ALLOWED")
    upward = _recon_imports(path) - ALLOWED[part] - {part, "__version__"}
    assert not upward, f"recon/{path.relative_to(PACKAGE)} ({part}) imports {sorted(upward)} from above its layer"
