"""The report's plots, with matplotlib's object API (no pyplot state, no backend switch)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cc_bench import stats
from cc_bench.report.groups import Group
from cc_bench.report.runs import LABELS, SIDES, RunRecord, is_number
from cc_bench.report.tables import AggregateRow, _direction

# One colour per side, the same in every plot of a report.
COLORS = {"conv": "#4c72b0", "coordconv": "#dd8452"}


def _figure(n_panels: int, width: float = 3.8, height: float = 2.9) -> tuple[Any, list[Any]]:
    from matplotlib.figure import Figure as MplFigure

    cols = min(3, n_panels)
    rows = math.ceil(n_panels / cols)
    fig = MplFigure(figsize=(width * cols, height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def _curve(runs: Sequence[RunRecord], metric: str) -> tuple[Any, Any, Any, Any] | None:
    """Steps and the median, 25th and 75th percentiles over runs (missing steps ignored)."""
    import numpy as np

    steps = sorted({row["step"] for r in runs for row in r.history if metric in row})
    if not steps:
        return None
    where = {s: i for i, s in enumerate(steps)}
    grid = np.full((len(runs), len(steps)), np.nan)  # (runs, steps)
    for i, run in enumerate(runs):
        for row in run.history:
            if metric in row and is_number(row[metric]):
                grid[i, where[row["step"]]] = row[metric]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a step no run reached is all-NaN
        q25, median, q75 = np.nanpercentile(grid, [25, 50, 75], axis=0)
    return np.array(steps), median, q25, q75


def plot_curves(group: Group, path: Path) -> Path | None:
    """Learning curves of every logged metric: median over seeds and the interquartile band."""
    metrics = group.curve_metrics()
    if not metrics:
        return None
    fig, axes = _figure(len(metrics))
    for ax, metric in zip(axes, metrics, strict=True):
        for side in SIDES:
            runs = group.finished(side)
            curve = _curve(runs, metric)
            if curve is None:
                continue
            steps, median, q25, q75 = curve
            label = f"{LABELS[side]} (n={len(runs)})"
            ax.plot(steps, median, color=COLORS[side], label=label)
            ax.fill_between(steps, q25, q75, color=COLORS[side], alpha=0.25, linewidth=0)
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return _save(fig, path)


def plot_bars(group: Group, comparisons: dict[str, stats.Comparison], path: Path) -> Path | None:
    """Final metrics: each side's mean with its 95% interval, and every seed as a dot."""
    metrics = [m for m, c in comparisons.items() if c.n_a or c.n_b]
    if not metrics:
        return None
    fig, axes = _figure(len(metrics), width=2.6)
    for ax, metric in zip(axes, metrics, strict=True):
        cmp = comparisons[metric]
        for x, (side, ci) in enumerate((("conv", cmp.b), ("coordconv", cmp.a))):
            if math.isnan(ci.estimate):
                continue
            err = [[ci.estimate - ci.low], [ci.high - ci.estimate]] if ci.defined else None
            ax.bar(x, ci.estimate, color=COLORS[side], alpha=0.8, yerr=err, capsize=4)
            seeds = stats.sample(group.values(side, metric))
            ax.scatter([x] * len(seeds), seeds, color="black", s=10, zorder=3)
        ax.set_xticks([0, 1], [LABELS[s] for s in SIDES])
        ax.set_title(metric, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_aggregate(rows: Sequence[AggregateRow], path: Path) -> Path | None:
    """Each side's IQM of normalised scores with its 95% interval, one row per metric."""
    if not rows:
        return None
    fig, (ax,) = _figure(1, width=6.0, height=0.5 + 0.55 * len(rows))
    for offset, side in ((-0.15, "conv"), (0.15, "coordconv")):
        ys = [i + offset for i in range(len(rows))]
        est = [r.iqm[side].estimate for r in rows]
        err = [
            [r.iqm[side].estimate - r.iqm[side].low if r.iqm[side].defined else 0 for r in rows],
            [r.iqm[side].high - r.iqm[side].estimate if r.iqm[side].defined else 0 for r in rows],
        ]
        ax.errorbar(est, ys, xerr=err, fmt="o", color=COLORS[side], capsize=3, label=LABELS[side])
    ax.set_yticks(range(len(rows)), [f"{r.metric} ({_direction(r.higher)})" for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel("IQM of normalised score (0: task's lowest run, 1: highest)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)
