"""Figures of the analysis scripts (heatmaps, per-layer lines, IMP curves), drawn headless with matplotlib's Agg.

Every function takes plain lists/arrays and a path, writes one PNG atomically and closes its figure, so callers
never touch pyplot state and a long run of plots does not accumulate memory.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")  # no display on servers and in tests
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from utils.infra.io import atomic_write  # noqa: E402

_DPI = 130


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    with warnings.catch_warnings():  # a legend below the axes defeats tight_layout; bbox_inches="tight" fits it
        warnings.simplefilter("ignore", UserWarning)
        fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=_DPI, format="png", bbox_inches="tight"))
    plt.close(fig)
    return path


def _colors(n: int) -> list:
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def heatmap(
    values: Sequence[Sequence[Optional[float]]],
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    path: str | Path,
    title: str,
    *,
    fmt: str = "{:.3f}",
    subtext: Optional[Sequence[Sequence[Optional[str]]]] = None,
    cmap: str = "viridis",
    center: Optional[float] = None,
    xlabel: str = "",
    ylabel: str = "",
    colorbar_label: str = "",
) -> Path:
    """One annotated heatmap; missing cells (None/NaN) stay blank. `center` makes a diverging scale around it."""
    return heatmaps([(values, title, fmt, subtext, cmap, center, colorbar_label)], row_labels, col_labels, path,
                    xlabel=xlabel, ylabel=ylabel)


def heatmaps(
    panels: Sequence[tuple],
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    path: str | Path,
    *,
    xlabel: str = "",
    ylabel: str = "",
    suptitle: str = "",
) -> Path:
    """Side-by-side annotated heatmaps over the same rows and columns.

    Each panel is (values, title, fmt, subtext, cmap, center, colorbar_label); `subtext` adds a smaller second
    line in each cell (e.g. the random baseline under a Jaccard value).
    """
    rows, cols = len(row_labels), len(col_labels)
    cell = 0.62 if subtext_any(panels) else 0.5
    width = max(4.8, 1.6 + cell * cols + 1.2) * len(panels)
    height = max(3.4, 1.4 + cell * rows + (0.3 if suptitle else 0))
    fig, axes = plt.subplots(1, len(panels), figsize=(width, height), squeeze=False)
    font = 9 if max(rows, cols) <= 8 else 7 if max(rows, cols) <= 14 else 5.5
    for ax, (values, title, fmt, subtext, cmap, center, cbar_label) in zip(axes[0], panels):
        data = np.array([[np.nan if v is None else float(v) for v in row] for row in values], dtype=float)
        vmin, vmax = color_limits(data[np.isfinite(data)], center)
        image = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
        bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        if cbar_label:
            bar.set_label(cbar_label, fontsize=8)
        bar.ax.tick_params(labelsize=7)
        norm = image.norm
        colormap = image.get_cmap()
        for i in range(rows):
            for j in range(cols):
                value = data[i, j]
                if not np.isfinite(value):
                    continue
                r, g, b, _ = colormap(norm(value))
                color = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else "white"
                text = fmt.format(value)
                extra = subtext[i][j] if subtext is not None else None
                if extra:
                    ax.text(j, i - 0.12, text, ha="center", va="center", fontsize=font, color=color)
                    ax.text(j, i + 0.22, extra, ha="center", va="center", fontsize=font * 0.78, color=color)
                else:
                    ax.text(j, i, text, ha="center", va="center", fontsize=font, color=color)
        ax.set_xticks(range(cols))
        ax.set_xticklabels(col_labels, rotation=40 if cols > 3 else 0, ha="right" if cols > 3 else "center",
                           fontsize=8)
        ax.set_yticks(range(rows))
        ax.set_yticklabels(row_labels, fontsize=8)
        ax.set_title(title, fontsize=10)
        if xlabel:
            ax.set_xlabel(xlabel, fontsize=9)
        if ylabel:
            ax.set_ylabel(ylabel, fontsize=9)
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    return _save(fig, path)


def color_limits(finite: np.ndarray, center: Optional[float] = None) -> tuple[float, float]:
    """The colour scale spans the data's real range: symmetric about `center` for differences; when every value is
    the same, a small span around it (never a 1e-12 scale for all-zero differences), kept inside [0, 1] when the
    data is a fraction (F1, accuracy, Jaccard), so a colour bar never runs past 1.0 that the data does not reach."""
    if not finite.size:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    if center is not None:
        spread = float(np.max(np.abs(finite - center)))
        spread = spread if spread > 1e-9 * max(1.0, abs(center)) else 0.05 * max(1.0, abs(center))  # float noise
        return center - spread, center + spread
    if low < high:
        return low, high
    pad = 0.05 * max(abs(low), 1.0)
    if 0.0 <= low <= 1.0:
        return max(low - pad, 0.0), min(high + pad, 1.0)
    return low - pad, high + pad


def subtext_any(panels: Sequence[tuple]) -> bool:
    return any(panel[3] is not None for panel in panels)


def per_layer_lines(
    layers: Sequence[str],
    series: Sequence[tuple[str, Sequence[Optional[float]], Sequence[Optional[float]]]],
    path: str | Path,
    title: str,
    ylabel: str = "Jaccard similarity",
    baseline_label: str = "random baseline",
    xlabel: str = "layer",
) -> Path:
    """One solid line per (label, values, baseline) over the layers, its random baseline dashed in the same colour.

    With many pairs the per-pair baselines crowd the plot; when they agree within 0.02 one grey dashed line shows
    their mean instead, and the legend moves outside the axes.
    """
    x = np.arange(len(layers))
    entries = len(series) + 1
    ncol = 1 if entries <= 8 else 2 if entries <= 24 else 3
    fig, ax = plt.subplots(figsize=(max(7.5, 0.55 * len(layers) + 3.0), 4.6))
    colors = _colors(len(series))
    baselines = np.array([[np.nan if v is None else v for v in base] for _, _, base in series], dtype=float)
    finite = baselines[np.isfinite(baselines)]
    shared_baseline = finite.size and float(finite.max() - finite.min()) <= 0.02
    for (label, values, baseline), color in zip(series, colors):
        y = np.array([np.nan if v is None else v for v in values], dtype=float)
        ax.plot(x, y, marker="o", markersize=3.5, linewidth=1.4, color=color, label=label)
        if not shared_baseline:
            b = np.array([np.nan if v is None else v for v in baseline], dtype=float)
            ax.plot(x, b, linestyle="--", linewidth=1.0, color=color, alpha=0.8)
    if shared_baseline:
        ax.plot(x, np.nanmean(baselines, axis=0), linestyle="--", color="grey", linewidth=1.3,
                label=baseline_label)
    else:
        ax.plot([], [], linestyle="--", color="grey", label=f"{baseline_label} (dashed, same colour)")
    ax.set_xticks(x)
    ax.set_xticklabels(layers, rotation=45 if len(layers) > 6 else 0, ha="right" if len(layers) > 6 else "center",
                       fontsize=8)
    ax.set_ylabel(ylabel)
    observed = [np.nan if v is None else v for _, values, _ in series for v in values]
    top = np.nanmax(np.concatenate([baselines.ravel(), observed]))
    ax.set_ylim(0.0, min(1.0, float(top) + 0.05) if np.isfinite(top) else 1.0)  # from 0: no zoomed-in chance gaps
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if entries <= 8:
        ax.legend(fontsize=8, loc="best")
    else:  # below the axes, so the plot keeps its width; bbox_inches="tight" grows the figure to fit it
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=ncol, frameon=False)
    return _save(fig, path)


def curves(
    lines: Sequence[dict],
    path: str | Path,
    title: str,
    xlabel: str,
    ylabel: str,
    percent_x: bool = False,
    marker_label: str = "winning ticket",
    xticks: Optional[Sequence[float]] = None,
    ylim: Optional[tuple[float, float]] = None,
    baseline: Optional[tuple[str, float]] = None,
) -> Path:
    """Lines with optional ±std bands and markers: each dict has label, x, y, and optionally std and marker_x/y;
    `baseline` (label, value) is drawn as a dashed horizontal line (e.g. chance accuracy)."""
    fig, ax = plt.subplots(figsize=(7.0, 4.6))
    for line, color in zip(lines, _colors(len(lines))):
        x = np.asarray(line["x"], dtype=float) * (100 if percent_x else 1)
        y = np.array([np.nan if v is None else v for v in line["y"]], dtype=float)
        ax.plot(x, y, marker="o", markersize=3.5, linewidth=1.5, color=color, label=line["label"])
        if line.get("std") is not None:
            std = np.array([0.0 if v is None else v for v in line["std"]], dtype=float)
            ax.fill_between(x, y - std, y + std, color=color, alpha=0.18, linewidth=0)
        if line.get("marker_x") is not None:
            ax.plot([line["marker_x"] * (100 if percent_x else 1)], [line["marker_y"]], marker="*", markersize=13,
                    color=color, markeredgecolor="black", linestyle="none")
    if any(line.get("marker_x") is not None for line in lines):
        ax.plot([], [], marker="*", markersize=10, color="grey", markeredgecolor="black", linestyle="none",
                label=marker_label)
    if baseline is not None:
        ax.axhline(baseline[1], color="grey", linestyle="--", linewidth=1.2, label=baseline[0])
    if xticks is not None:
        ax.set_xticks(list(xticks))
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path)
