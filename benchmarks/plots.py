"""Figures of the benchmark report (matplotlib ``Figure`` objects; no pyplot state, no display).

Each function returns a :class:`matplotlib.figure.Figure`; :mod:`benchmarks.report` saves it.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

__all__ = ["fit_exponent", "loglog_scaling", "image_grid", "bar_chart", "tradeoff"]


def fit_exponent(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Least-squares fit of ``y = c * x**k`` on log-log axes; returns ``(k, c)``.

    Raises:
        ValueError: fewer than two points, or a non-positive value.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.size < 2:
        raise ValueError(f"fit_exponent needs two or more (x, y) pairs, got {x.size} x and {y.size} y values")
    if (x <= 0).any() or (y <= 0).any():
        raise ValueError("fit_exponent needs positive x and y values")
    k, log_c = np.polyfit(np.log(x), np.log(y), 1)
    return float(k), float(np.exp(log_c))


def loglog_scaling(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], *, xlabel: str,
                   ylabel: str = "time (s)", title: str = "") -> Figure:
    """Points and fitted power laws on log-log axes, the exponent in the legend.

    Args:
        series: label -> (x values, y values).
    """
    fig = Figure(figsize=(5, 3.6))
    ax = fig.add_subplot()
    for i, (label, (x, y)) in enumerate(series.items()):
        color = f"C{i}"
        ax.loglog(x, y, "o", color=color)
        if len(x) >= 2:
            k, c = fit_exponent(x, y)
            xs = np.geomspace(min(x), max(x), 50)
            ax.loglog(xs, c * xs**k, "-", color=color, label=f"{label}: ~ x^{k:.2f}")
        else:
            ax.plot([], [], "o", color=color, label=label)
    xs_all = sorted({float(v) for x, _ in series.values() for v in x})
    ax.xaxis.set_major_locator(FixedLocator(xs_all))  # ticks at the measured points
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def image_grid(target: np.ndarray, recons: Mapping[str, np.ndarray], *, title: str = "",
               error_gain: float = 5.0, scores: Mapping[str, str] | None = None) -> Figure:
    """Target and each reconstruction (top row) and ``error_gain * |recon - target|`` (bottom row).

    All images share one grey scale (0 .. the target's 99.5th percentile).
    """
    names = list(recons)
    cols = 1 + len(names)
    fig = Figure(figsize=(1.9 * cols, 4.1))
    vmax = float(np.percentile(target, 99.5)) or 1.0
    axes = fig.subplots(2, cols, squeeze=False)
    axes[0, 0].imshow(target, cmap="gray", vmin=0, vmax=vmax)
    axes[0, 0].set_title("target", fontsize=8)
    for j, name in enumerate(names, start=1):
        image = np.asarray(recons[name])
        axes[0, j].imshow(image, cmap="gray", vmin=0, vmax=vmax)
        label = name if not scores or name not in scores else f"{name}\n{scores[name]}"
        axes[0, j].set_title(label, fontsize=8)
        axes[1, j].imshow(error_gain * np.abs(image - target), cmap="gray", vmin=0, vmax=vmax)
    axes[1, 0].text(0.5, 0.5, f"error maps\n|recon - target|\nx {error_gain:g}", ha="center", va="center",
                    fontsize=8, transform=axes[1, 0].transAxes)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        for side in ax.spines.values():
            side.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def bar_chart(values: Mapping[str, float], *, xlabel: str, title: str = "", log: bool = False) -> Figure:
    """Horizontal bars, one per label."""
    fig = Figure(figsize=(5, 0.4 * len(values) + 1.2))
    ax = fig.add_subplot()
    labels = list(values)
    ax.barh(labels, [values[k] for k in labels], color="C0")
    ax.invert_yaxis()
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def tradeoff(points: Mapping[str, tuple[float, float]], *, xlabel: str, ylabel: str, title: str = "") -> Figure:
    """One labelled point per method: (x, y), x on a log axis (e.g. seconds per slice vs SSIM)."""
    fig = Figure(figsize=(5.2, 3.8))
    ax = fig.add_subplot()
    for i, (label, (x, y)) in enumerate(points.items()):
        ax.scatter([x], [y], color=f"C{i}", s=40)
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig
