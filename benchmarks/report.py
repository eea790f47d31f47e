"""The benchmark report writer: sections -> ``REPORT.md``, ``results.json`` and PNG figures.

A *section* is the dict a benchmark module's ``run(quick, device)`` returns::

    {"title": str,
     "tables": [{"caption": str, "headers": [str, ...], "rows": [[...], ...]}   # or {"caption", "text"}
                , ...],
     "figures": [{"name": str, "figure": matplotlib.figure.Figure, "caption": str}, ...],
     "notes": [str, ...],          # markdown paragraphs
     "results": {...}}             # JSON-serialisable numbers

:func:`write_report` saves every figure as ``OUT/<name>.png`` and writes ``REPORT.md`` (header
with the environment, then one chapter per section) and ``results.json``, each atomically.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Mapping, Sequence

from benchmarks.common import markdown_table, write_atomic

__all__ = ["check_section", "write_report", "render_markdown", "json_safe"]

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")


def check_section(name: str, section: object) -> dict:
    """Validate a section dict; raise ``TypeError``/``ValueError`` naming what is wrong."""
    if not isinstance(section, Mapping):
        raise TypeError(f"section {name!r}: run() must return a dict, got {type(section).__name__}")
    if not isinstance(section.get("title"), str):
        raise ValueError(f"section {name!r}: 'title' must be a string, got {section.get('title')!r}")
    for table in section.get("tables", []):
        if not isinstance(table, Mapping) or ("text" not in table and not {"headers", "rows"} <= set(table)):
            raise ValueError(f"section {name!r}: each table needs 'headers' and 'rows' (or 'text'), got {table!r}")
        if "headers" in table:
            for row in table["rows"]:
                if len(row) != len(table["headers"]):
                    raise ValueError(
                        f"section {name!r}: table {table.get('caption', '')!r} has {len(table['headers'])} headers "
                        f"but a row of {len(row)} cells: {row!r}")
    for fig in section.get("figures", []):
        if not isinstance(fig, Mapping) or "figure" not in fig or not isinstance(fig.get("name"), str):
            raise ValueError(f"section {name!r}: each figure needs 'name' and 'figure', got {fig!r}")
        if not fig["name"] or set(fig["name"]) - _NAME_CHARS:
            raise ValueError(f"section {name!r}: figure name must be lower-case letters, digits, '-' or '_', "
                             f"got {fig['name']!r}")
    return dict(section)


def json_safe(value: object) -> object:
    """Plain JSON types: tuples -> lists, NaN/Inf -> None, tensors/arrays -> lists, others -> str."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "tolist"):  # numpy / torch scalars and arrays
        return json_safe(value.tolist())
    return str(value)


def _save_figure(figure, path: Path) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    write_atomic(path, buffer.getvalue())
    try:  # pyplot figures stay registered until closed
        import matplotlib.pyplot as plt

        plt.close(figure)
    except Exception:  # pragma: no cover - figure made without pyplot
        pass


def render_markdown(environment: Mapping, sections: Sequence[tuple[str, dict]], *, quick: bool,
                    headline: Sequence[str] = (), skipped: Sequence[tuple[str, str]] = ()) -> str:
    """The markdown text of ``REPORT.md`` (figures referenced as ``<name>.png``)."""
    env = environment
    device = env.get("gpu") or env.get("processor")
    lines = [f"# recon benchmark report ({env.get('device')}{', QUICK MODE' if quick else ''})", ""]
    if quick:
        lines += ["> **Quick mode**: small sizes and few repeats, a smoke run of the whole report. The "
                  "figures below are NOT the knee/brain-size results; run without `--quick` for those.", ""]
    lines += [
        "| | |", "|---|---|",
        f"| date | {env.get('date')} |",
        f"| commit | `{env.get('commit')}`{' (with uncommitted changes)' if env.get('commit_dirty') else ''} |",
        f"| device | {env.get('device')}: {device} |",
        f"| torch | {env.get('torch')} (CUDA runtime {env.get('cuda_runtime')}) |",
        f"| python | {env.get('python')} on {env.get('machine')} |",
        f"| CPU threads (torch) / cores | {env.get('threads')} / {env.get('cpu_count')} |",
        f"| load average at start | {env.get('load_average')} |",
        f"| wall time of this report | {env.get('wall_s', 0.0):.0f} s |",
        "",
        "Timing: each implementation is warmed up, then timed in interleaved rounds (one call of each "
        "per round, so machine noise falls on all alike); tables give the median, and the spread "
        "(interquartile range or min) where stated. On CUDA the time is measured with CUDA events "
        "after a synchronisation and memory with `torch.cuda.max_memory_allocated`; on CPU memory is "
        "the peak resident set size above the resident size before the call.",
        "",
    ]
    if headline:
        lines += ["## Headline", "", *headline, ""]
    lines += ["## Contents", ""]
    for name, section in sections:
        lines.append(f"- [{section['title']}](#{_anchor(section['title'])}) (`benchmarks/{name}.py`, "
                     f"{section.get('wall_s', 0.0):.0f} s)")
    for name, why in skipped:
        lines.append(f"- `{name}`: not in this report: {why}")
    lines.append("")
    for name, section in sections:
        lines += [f"## {section['title']}", ""]
        for note in section.get("notes", []):
            lines += [str(note), ""]
        for table in section.get("tables", []):
            if table.get("caption"):
                lines += [f"**{table['caption']}**", ""]
            if "text" in table:
                lines += [str(table["text"]), ""]
            else:
                lines += [markdown_table(table["headers"], table["rows"]), ""]
        for fig in section.get("figures", []):
            caption = fig.get("caption", fig["name"])
            lines += [f"![{caption}]({fig['name']}.png)", "", f"*{caption}*", ""]
    return "\n".join(lines).rstrip() + "\n"


def _anchor(title: str) -> str:
    keep = "".join(c for c in title.lower() if c.isalnum() or c in " -_")
    return keep.replace(" ", "-")


def write_report(out_dir: str | Path, environment: Mapping, sections: Sequence[tuple[str, dict]], *,
                 quick: bool, headline: Sequence[str] = (), headline_figures: Sequence[dict] = (),
                 skipped: Sequence[tuple[str, str]] = ()) -> Path:
    """Write ``REPORT.md``, ``results.json`` and ``<figure>.png`` into ``out_dir``; return ``REPORT.md``.

    Args:
        out_dir: folder (created if missing).
        environment: :func:`benchmarks.common.environment` (plus ``wall_s``).
        sections: ``(module name, section dict)`` in report order; figures are saved and removed
            from the dicts' JSON.
        quick: label the report as a quick (smoke) run.
        headline: markdown lines put under "Headline".
        headline_figures: figure dicts the headline lines refer to (saved as ``<name>.png``).
        skipped: ``(module name, reason)`` of sections not in the report.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = [fig["name"] for _, section in sections for fig in section.get("figures", [])]
    names += [fig["name"] for fig in headline_figures]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"figure names must be unique across sections, got duplicates {duplicates}")
    payload = {"environment": dict(environment), "quick": quick, "sections": {}, "skipped": dict(skipped),
               "headline": list(headline)}
    for fig in headline_figures:
        _save_figure(fig["figure"], out / f"{fig['name']}.png")
    for name, section in sections:
        for fig in section.get("figures", []):
            _save_figure(fig["figure"], out / f"{fig['name']}.png")
        payload["sections"][name] = {
            "title": section["title"],
            "wall_s": section.get("wall_s"),
            "notes": section.get("notes", []),
            "tables": section.get("tables", []),
            "figures": [f"{fig['name']}.png" for fig in section.get("figures", [])],
            "results": section.get("results", {}),
        }
    text = render_markdown(environment, sections, quick=quick, headline=headline, skipped=skipped)
    write_atomic(out / "results.json", json.dumps(json_safe(payload), indent=1, allow_nan=False) + "\n")
    report = out / "REPORT.md"
    write_atomic(report, text)
    return report
