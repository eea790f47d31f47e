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

__all__ = ["check_section", "write_report", "render_markdown", "json_safe", "merge_reports"]

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
    if Path(path).exists() and isinstance(figure, _SavedFigure) and Path(path).read_bytes() == buffer.getvalue():
        return
    write_atomic(path, buffer.getvalue())
    try:  # pyplot figures stay registered until closed
        import matplotlib.pyplot as plt

        plt.close(figure)
    except Exception:  # pragma: no cover - figure made without pyplot
        pass


def render_markdown(environment: Mapping, sections: Sequence[tuple[str, dict]], *, quick: bool,
                    headline: Sequence[str] = (), skipped: Sequence[tuple[str, str]] = (),
                    standalone: Mapping[str, Sequence[str]] | None = None) -> str:
    """The markdown text of ``REPORT.md`` (figures referenced as ``<name>.png``).

    ``standalone``: section name -> result files of its script's own last run in the same
    folder (``<name>.md`` ...), linked from the list of sections not in this report.
    """
    standalone = standalone or {}
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
        f"| wall time of this report | {env.get('wall_s') or 0.0:.0f} s |",
    ]
    for run in env.get("merged_runs", []):
        lines.append(f"| merged from the run of {run.get('date')} | sections {', '.join(run.get('sections', []))}; "
                     f"commit `{str(run.get('commit'))[:12]}`; load average at its start {run.get('load_average')}; "
                     f"{run.get('wall_s') or 0.0:.0f} s |")
    lines += [
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
                     f"{section.get('wall_s') or 0.0:.0f} s)")
    for name, why in skipped:
        older = [f"[{f}]({f})" for f in standalone.get(name, [])]
        tail = f"; the last standalone run of its script: {', '.join(older)}" if older else ""
        lines.append(f"- `{name}`: not in this report: {why}{tail}")
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
            "figure_captions": {f"{fig['name']}.png": fig.get("caption", fig["name"]) for fig in section.get("figures", [])},
            "results": section.get("results", {}),
        }
    standalone = {name: sorted(p.name for p in out.glob(f"{name}*.md") if p.name != "REPORT.md") for name, _ in skipped}
    text = render_markdown(environment, sections, quick=quick, headline=headline, skipped=skipped,
                           standalone={k: v for k, v in standalone.items() if v})
    write_atomic(out / "results.json", json.dumps(json_safe(payload), indent=1, allow_nan=False) + "\n")
    report = out / "REPORT.md"
    write_atomic(report, text)
    return report


class _SavedFigure:
    """A PNG already on disk, saved again by copying its bytes (see :func:`merge_reports`)."""

    def __init__(self, path: Path):
        self.data = Path(path).read_bytes()

    def savefig(self, buffer, **kwargs) -> None:
        buffer.write(self.data)


def merge_reports(out_dir: str | Path, sources: Sequence[str | Path], order: Sequence[str]) -> Path:
    """One report from several runs' folders (e.g. sections run in two processes at once).

    Each section (in ``order``) is taken from the first source that has it, with its PNGs;
    the headline is rebuilt from the merged results; the header keeps the first run's
    environment and lists every run (date, commit, load, sections, wall time).
    """
    from benchmarks.headline import build

    payloads = [(Path(src), json.loads((Path(src) / "results.json").read_text())) for src in sources]
    sections, runs, skipped = [], [], {}
    for src, payload in payloads:
        runs.append({**payload["environment"], "sections": list(payload["sections"])})
    for name in order:
        source = next(((src, p) for src, p in payloads if name in p["sections"]), None)
        if source is None:
            reasons = [p["skipped"][name] for _, p in payloads if name in p.get("skipped", {})]
            if reasons:
                skipped[name] = next((r for r in reasons if not r.startswith("not run: the report was written")), reasons[0])
            continue
        src, payload = source
        section = dict(payload["sections"][name])
        captions = section.get("figure_captions", {})
        section["figures"] = [{"name": Path(f).stem, "figure": _SavedFigure(src / f), "caption": captions.get(f, Path(f).stem)}
                              for f in section.get("figures", [])]
        sections.append((name, section))
    env = dict(payloads[0][1]["environment"])
    env["wall_s"] = sum(r.get("wall_s") or 0.0 for r in runs)
    env["merged_runs"] = [{k: r.get(k) for k in ("date", "commit", "load_average", "sections", "wall_s")} for r in runs]
    headline, figures = build(dict(sections))
    quick = any(p.get("quick") for _, p in payloads)
    return write_report(out_dir, env, sections, quick=quick, headline=headline, headline_figures=figures,
                        skipped=list(skipped.items()))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.report OUT SRC [SRC ...]``: merge report folders into OUT."""
    import argparse

    from benchmarks.run import SECTIONS

    parser = argparse.ArgumentParser(description=merge_reports.__doc__)
    parser.add_argument("out", help="folder of the merged report")
    parser.add_argument("sources", nargs="+", help="report folders (results.json + PNGs), earlier ones win")
    args = parser.parse_args(argv)
    print(merge_reports(args.out, args.sources, list(SECTIONS)))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
