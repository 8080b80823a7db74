"""The statistics tables: per group, and the aggregate across tasks."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cc_bench import stats
from cc_bench.report.document import Table
from cc_bench.report.groups import Group
from cc_bench.report.runs import SIDES


@dataclass(frozen=True)
class AggregateRow:
    """One metric across tasks: each side's IQM of normalised scores and the verdict counts."""

    metric: str
    higher: bool
    tasks: int
    iqm: dict[str, stats.Interval]
    counts: dict[str, int]


def aggregate(groups: Sequence[Group]) -> list[AggregateRow]:
    """Per metric with a direction, across the groups (tasks) where both sides have values.

    Within a task, scores are min-max normalised over both sides' runs (0: the task's
    lowest run, 1: its highest), so tasks on different scales can be pooled; the IQM and its
    stratified bootstrap interval are taken over all tasks' runs, the rliable way.
    """
    rows = []
    metrics = sorted({m for g in groups for m in g.metrics()})
    for metric in metrics:
        higher = stats.higher_is_better(metric)
        if higher is None:
            continue
        tasks = [
            g for g in groups if all(len(stats.sample(g.values(side, metric))) for side in SIDES)
        ]
        if not tasks:
            continue
        pooled = [
            stats.sample(g.values("conv", metric) + g.values("coordconv", metric)) for g in tasks
        ]
        bounds = [(float(p.min()), float(p.max())) for p in pooled]
        iqm = {
            side: stats.iqm_ci([g.values(side, metric) for g in tasks], bounds=bounds)
            for side in SIDES
        }
        verdicts = [stats.verdict(g.compare(metric).diff, higher) for g in tasks]
        rows.append(AggregateRow(metric, higher, len(tasks), iqm, stats.count_verdicts(verdicts)))
    return rows


def _num(x: float) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.4g}"


def _interval(ci: stats.Interval) -> str:
    if not ci.defined:
        return _num(ci.estimate)
    return f"{_num(ci.estimate)} [{_num(ci.low)}, {_num(ci.high)}]"


def _p(p: float) -> str:
    if not math.isfinite(p):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _direction(higher: bool | None) -> str:
    return {True: "higher", False: "lower", None: "—"}[higher]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _group_table(comparisons: dict[str, stats.Comparison]) -> Table:
    header = [
        "metric",
        "better",
        "conv mean [95% CI]",
        "n",
        "CoordConv mean [95% CI]",
        "n",
        "Δ CoordConv − conv [95% CI]",
        "p (Welch)",
        "CoordConv is",
    ]
    rows = []
    for metric, cmp in comparisons.items():
        higher = stats.higher_is_better(metric)
        rows.append(
            [
                metric,
                _direction(higher),
                _interval(cmp.b),
                str(cmp.n_b),
                _interval(cmp.a),
                str(cmp.n_a),
                _interval(cmp.diff),
                _p(cmp.p_value),
                stats.verdict(cmp.diff, higher) or "—",
            ]
        )
    return Table(header, rows)
