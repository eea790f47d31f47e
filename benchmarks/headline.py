"""The report's headline: every method's speed (``methods`` section) next to its error
(``accuracy`` section) in one table and one plot.  Also what the README shows."""

from __future__ import annotations

from typing import Mapping

from benchmarks.common import markdown_table

__all__ = ["build"]


def build(sections: Mapping[str, dict]) -> tuple[list[str], list[dict]]:
    """(markdown lines, figures) of the headline; empty when either section is missing."""
    methods, accuracy = sections.get("methods"), sections.get("accuracy")
    if methods is None or accuracy is None:
        return [], []
    rows = methods["results"]["rows"]
    size = rows[0]["size"]
    single = {r["method"]: r for r in rows if r["size"] == size and r["batch"] == 1}
    largest = max(r["batch"] for r in rows if r["size"] == size)
    batched = {r["method"]: r for r in rows if r["size"] == size and r["batch"] == largest}
    mean = accuracy["results"]["mean"]
    table = []
    for method, r in single.items():
        table.append([
            method, r["latency_median_s"],
            batched[method]["slices_per_s"] if method in batched else None,
            r["peak_mb"],
            mean.get("4x", {}).get(method, {}).get("SSIM"), mean.get("8x", {}).get(method, {}).get("SSIM"),
            mean.get("4x", {}).get(method, {}).get("PSNR"), mean.get("8x", {}).get(method, {}).get("PSNR"),
        ])
    shape = rows[0]["shape"]
    lines = [
        f"Speed at {size} size ({shape[1]} coils, {shape[2]} x {shape[3]}), error on the held-out split "
        f"({', '.join(accuracy['results']['files'])}) with fastMRI random masks:",
        "",
        markdown_table(["method", "s / slice (1 per call)", f"slices / s ({largest} per call)", "peak MB",
                        "SSIM 4x", "SSIM 8x", "PSNR 4x (dB)", "PSNR 8x (dB)"], table),
        "",
        "![speed against error](headline-tradeoff.png)",
    ]
    from benchmarks.plots import tradeoff

    points = {m: (single[m]["s_per_slice"], mean["4x"][m]["SSIM"]) for m in single if m in mean.get("4x", {})}
    figure = tradeoff(points, xlabel=f"seconds per slice at {size} size (log)", ylabel="SSIM at 4x (held-out)",
                      title="Speed against error, every method")
    return lines, [{"name": "headline-tradeoff", "figure": figure, "caption": "speed against error"}]
