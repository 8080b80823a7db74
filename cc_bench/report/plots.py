"""The report's plots, with matplotlib's object API (no pyplot state, no backend switch)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cc_bench import stats
from cc_bench.report.curves import GRID_POINTS, TIME_KEY, band, run_curve
from cc_bench.report.document import Figure
from cc_bench.report.groups import Group
from cc_bench.report.runs import LABELS, SIDES
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
# After a benchmark's declared lead curves, panels go by prefix in this order (stable within
# one prefix: the order first logged); an unlisted prefix goes where "" is.
PREFIX_ORDER = ("test/", "eval/", "charts/", "train/", "", "losses/", "perf/")


def x_label(curve_x: str, label: str = "") -> str:
    """The x axis's label: the benchmark's words for it, else its key (`time`: wall seconds)."""
    return label or ("wall seconds since the run started" if curve_x == TIME_KEY else curve_x)


def group_x_label(group: Group) -> str:
    """A group's curve x axis in words, as its benchmark declares it."""
    return x_label(group.curve_x, group.spec.curve_x_label if group.spec else "")


def _prefix_rank(metric: str) -> int:
    prefix = metric.split("/", 1)[0] + "/" if "/" in metric else ""
    return PREFIX_ORDER.index(prefix if prefix in PREFIX_ORDER else "")


def curve_order(group: Group) -> list[str]:
    """The group's logged metrics in panel order: the benchmark's declared lead curves
    (`register_benchmark(curves=...)`) first, then by prefix (`PREFIX_ORDER`)."""
    logged = group.curve_metrics()
    lead = [m for m in (group.spec.curves if group.spec else ()) if m in logged]
    return lead + sorted((m for m in logged if m not in lead), key=_prefix_rank)


def _names(metrics: Sequence[str]) -> str:
    return ", ".join(f"`{m}`" for m in metrics)


def plot_curves(group: Group, path: Path) -> Figure | None:
    """Learning curves of the logged metrics against the benchmark's declared x axis.

    Per side, the median over seeds with the interquartile band (`curves.band`): point by
    point where the seeds log at the same x, else on a common grid each run is resampled
    onto; one line per seed only where a side's runs share no x range. The caption says
    which metrics were resampled or left as single seeds.
    """
    logged = curve_order(group)
    metrics = logged[:MAX_PANELS]
    if not metrics:
        return None
    fig, axes = _figure(len(metrics))
    drawn = False
    resampled: dict[str, int] = {}  # metric -> the widest trailing mean, in points
    per_seed: list[str] = []
    for ax, metric in zip(axes, metrics, strict=True):
        for side in SIDES:
            runs = group.finished(side)
            found = [c for c in (run_curve(r, metric, group.curve_x) for r in runs) if c[0]]
            if not found:
                continue
            drawn = True
            label = f"{LABELS[side]} (n={len(found)})"
            pooled = band(found)
            if pooled is None:
                per_seed.append(metric)
                few = max(len(xs) for xs, _ in found) <= MARKERS_UP_TO
                style = {"color": COLORS[side], "marker": "o" if few else None, "markersize": 4}
                for i, (xs, ys) in enumerate(found):
                    ax.plot(xs, ys, label=None if i else label, alpha=0.8, linewidth=1, **style)
                continue
            if pooled.resampled:
                resampled[metric] = max(resampled.get(metric, 0), pooled.window)
            # Markers where the points are data, or a single point that must not vanish.
            few = len(pooled.xs) == 1 or (not pooled.resampled and len(pooled.xs) <= MARKERS_UP_TO)
            style = {"color": COLORS[side], "marker": "o" if few else None, "markersize": 4}
            ax.plot(pooled.xs, pooled.median, label=label, **style)
            if len(found) > 1:
                ax.fill_between(
                    pooled.xs, pooled.q25, pooled.q75, color=COLORS[side], alpha=0.25, linewidth=0
                )
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel(group_x_label(group), fontsize=8)
        ax.grid(alpha=0.3)
    if not drawn:
        return None
    axes[0].legend(fontsize=8)
    some = f" (the first {MAX_PANELS} of {len(logged)} logged)" if len(logged) > MAX_PANELS else ""
    caption = (
        f"Learning curves{some} against {group_x_label(group)}: per side, the median over seeds (line) and "
        "the 25th to 75th percentile (band)."
    )
    if resampled:
        widest = max(resampled.values())
        caption += (
            f" The seeds of {_names(list(resampled))} log at different x values, so each run "
            f"was resampled onto up to {GRID_POINTS} points over the x range every run of its "
            f"side covers: a trailing mean over {'up to ' if widest > 1 else ''}{widest} "
            f"logged point{'s' if widest > 1 else ''}, then linear interpolation."
        )
    if per_seed:
        caption += (
            f" One line per seed for {_names(list(dict.fromkeys(per_seed)))}: the runs of a "
            "side share no x range."
        )
    return Figure(_save(fig, path), caption)


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
