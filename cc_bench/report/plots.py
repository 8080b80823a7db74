"""The report's plots, with matplotlib's object API (no pyplot state, no backend switch)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cc_bench import stats
from cc_bench.report.groups import Group
from cc_bench.report.runs import LABELS, SIDES, RunRecord, is_number
from cc_bench.report.tables import AggregateRow

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


# A curve with this many points or fewer gets markers: one logged epoch must not vanish.
MARKERS_UP_TO = 25
# Panels per figure: the first logged metrics (curves), headline metrics first (bars).
MAX_PANELS = 12
TIME_KEY = "time"


def x_label(curve_x: str) -> str:
    """The x axis's label for a benchmark's declared curve key."""
    return "wall seconds since the run started" if curve_x == TIME_KEY else curve_x


def run_curve(run: RunRecord, metric: str, curve_x: str) -> tuple[list[float], list[float]]:
    """One run's (x, value) points of `metric` against the declared x key.

    `time` (the absolute time each metrics line carries) becomes wall seconds since the run
    started: the last line sits at the run's `wall_s` when the run has one (so a run that
    logged once is a point at the time it took, not at 0), the others before it by their
    time stamps. Rows without the x key or the metric are left out.
    """
    rows = [r for r in run.history if is_number(r.get(metric)) and is_number(r.get(curve_x))]
    xs = [float(r[curve_x]) for r in rows]
    if curve_x == TIME_KEY and xs:
        span = xs[-1] - xs[0]
        offset = max(0.0, run.wall_s - span) if run.wall_s is not None else 0.0
        xs = [x - xs[0] + offset for x in xs]
    return xs, [float(r[metric]) for r in rows]


def _band(curves: Sequence[tuple[list[float], list[float]]]) -> tuple[Any, Any, Any, Any] | None:
    """x and the median, 25th and 75th percentiles over runs when they share their x values."""
    import numpy as np

    if not curves or any(xs != curves[0][0] for xs, _ in curves) or not curves[0][0]:
        return None
    grid = np.array([ys for _, ys in curves])  # (runs, points)
    q25, median, q75 = np.percentile(grid, [25, 50, 75], axis=0)
    return np.array(curves[0][0]), median, q25, q75


def plot_curves(group: Group, path: Path) -> Path | None:
    """Learning curves of every logged metric against the benchmark's declared x axis.

    Where a side's runs share their x values (steps, examples), the median over seeds with
    the interquartile band; where they do not (wall seconds), one line per seed.
    """
    metrics = group.curve_metrics()[:MAX_PANELS]
    if not metrics:
        return None
    fig, axes = _figure(len(metrics))
    drawn = False
    for ax, metric in zip(axes, metrics, strict=True):
        for side in SIDES:
            runs = group.finished(side)
            curves = [c for c in (run_curve(r, metric, group.curve_x) for r in runs) if c[0]]
            if not curves:
                continue
            drawn = True
            few = max(len(xs) for xs, _ in curves) <= MARKERS_UP_TO
            style = {"color": COLORS[side], "marker": "o" if few else None, "markersize": 4}
            label = f"{LABELS[side]} (n={len(curves)})"
            band = _band(curves) if len(curves) > 1 else None
            if band is not None:
                xs, median, q25, q75 = band
                ax.plot(xs, median, label=label, **style)
                ax.fill_between(xs, q25, q75, color=COLORS[side], alpha=0.25, linewidth=0)
            else:
                for i, (xs, ys) in enumerate(curves):
                    ax.plot(xs, ys, label=None if i else label, alpha=0.8, linewidth=1, **style)
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel(x_label(group.curve_x), fontsize=8)
        ax.grid(alpha=0.3)
    if not drawn:
        return None
    axes[0].legend(fontsize=8)
    return _save(fig, path)


def plot_bars(group: Group, comparisons: dict[str, stats.Comparison], path: Path) -> Path | None:
    """Final metrics: each side's mean with its 95% interval, and every seed as a dot."""
    metrics = [m for m, c in comparisons.items() if c.n_a or c.n_b][:MAX_PANELS]
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
    fig, (ax,) = _figure(1, width=7.5, height=0.8 + 0.55 * len(rows))
    for offset, side in ((-0.15, "conv"), (0.15, "coordconv")):
        ys = [i + offset for i in range(len(rows))]
        est = [r.iqm[side].estimate for r in rows]
        err = [
            [r.iqm[side].estimate - r.iqm[side].low if r.iqm[side].defined else 0 for r in rows],
            [r.iqm[side].high - r.iqm[side].estimate if r.iqm[side].defined else 0 for r in rows],
        ]
        ax.errorbar(est, ys, xerr=err, fmt="o", color=COLORS[side], capsize=3, label=LABELS[side])
    labels = [f"{r.metric} ({'higher' if r.higher else 'lower'} is better)" for r in rows]
    ax.set_yticks(range(len(rows)), labels)
    ax.invert_yaxis()
    minmax = all(r.scores == "min-max" for r in rows)
    ax.set_xlabel(
        "IQM of normalised score (0: a task's lowest run, 1: its highest)"
        if minmax
        else "IQM of normalised score (see the table's `scores`)"
    )
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)
