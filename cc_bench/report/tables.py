"""The statistics tables: per group, and the aggregate across tasks; numbers as people read them.

Directions (which way a metric is better) come only from what the benchmark declares
(`cc_bench.registry.register_benchmark(metrics=...)`): an undeclared metric, or any metric
of a benchmark unknown here, is shown without a verdict.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cc_bench import stats
from cc_bench.report.document import Table
from cc_bench.report.groups import Group
from cc_bench.report.runs import SIDES
from cc_bench.words import count

VERDICT_KEYS = ("better", "similar", "worse", "undecided")
# Below this a number is written with an exponent (above it, in decimals).
SMALLEST_DECIMAL = 1e-6


# -- numbers ---------------------------------------------------------------------------------


def fmt_num(x: float | None, *, sign: bool = False, digits: int = 4) -> str:
    """A number as a reader reads it: `103,585`, `0.9875`, `12.35`, `0.0002286`; — for none.

    `digits` significant digits (trailing zeros dropped), thousands separated by commas;
    decimals, never an exponent, from 10^-6 up to 10^15 (an exponent outside); integers
    stay integers. `sign` puts + before a positive number (differences).
    """
    if x is None or not math.isfinite(x):
        return "—"
    plus = "+" if sign and x > 0 else ""
    size = abs(x)
    if size == 0:
        return "0"
    if size < SMALLEST_DECIMAL or size >= 1e15:
        return f"{x:{plus}.{digits - 1}e}"
    if size >= 10 ** (digits - 1) or float(x).is_integer():
        return f"{x:{plus},.0f}"
    decimals = digits - 1 - math.floor(math.log10(size))
    text = f"{x:{plus},.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def fmt_interval(ci: stats.Interval, *, sign: bool = False) -> str:
    """`0.9875 [0.98 to 0.995]`; the estimate alone when there is no interval, and
    `103,585 (no spread)` when every seed gave the same value."""
    estimate = fmt_num(ci.estimate, sign=sign)
    if not ci.defined:
        return estimate
    if ci.low == ci.high == ci.estimate:
        return f"{estimate} (no spread)"
    values = (ci.estimate, ci.low, ci.high)
    for digits in range(4, 8):  # more digits until values that differ read differently
        estimate, low, high = (fmt_num(v, sign=sign, digits=digits) for v in values)
        if len({estimate, low, high}) == len(set(values)):
            break
    return f"{estimate} [{low} to {high}]"


def fmt_p(p: float) -> str:
    """A p-value: `0.032`, `<0.001`, or — when the test is undefined; never rounded across
    0.05, the verdicts' threshold (0.04993 is `0.0499`, not `0.050`)."""
    if not math.isfinite(p):
        return "—"
    if p < 0.001:
        return "<0.001"
    for digits in range(3, 9):
        text = f"{p:.{digits}f}"
        if (float(text) < 0.05) == (p < 0.05):
            break
    return text


def verdict_text(cmp: stats.Comparison, higher: bool | None) -> str:
    """The verdict column: better / similar / worse, `—` without one, and why where values
    are missing."""
    if cmp.missing and higher is not None:
        return f"— ({count(cmp.missing, 'run')} without a value)"
    return cmp.verdict(higher) or "—"


def slug(name: str, limit: int = 80) -> str:
    """A file name made from `name`: its safe characters, cut at `limit` with a short hash of
    the whole (so long group titles stay distinct and within a file system's 255 bytes)."""
    safe = re.sub(r"[^A-Za-z0-9_.=-]+", "_", name).strip("_")
    if len(safe) <= limit:
        return safe
    return f"{safe[:limit].rstrip('_')}_{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def direction_text(direction: str | None) -> str:
    """The `better` column: higher, lower, neither, or `not declared`."""
    return direction or "not declared"


# -- a group ---------------------------------------------------------------------------------


GROUP_HEADER = [
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


def group_table(group: Group, comparisons: dict[str, stats.Comparison]) -> Table:
    """A group's final metrics, in `comparisons`' order: means, n, difference, p, verdict."""
    rows = []
    for metric, cmp in comparisons.items():
        rows.append(
            [
                metric,
                direction_text(group.direction(metric)),
                fmt_interval(cmp.b),
                str(cmp.n_b),
                fmt_interval(cmp.a),
                str(cmp.n_a),
                fmt_interval(cmp.diff, sign=True),
                fmt_p(cmp.p_value),
                verdict_text(cmp, group.higher(metric)),
            ]
        )
    return Table(GROUP_HEADER, rows)


# -- across tasks ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AggregateRow:
    """One metric across tasks: each side's IQM of normalised scores and the verdict counts.

    Args:
        metric: the summary metric.
        higher: whether higher is better (as the tasks' benchmarks declare it).
        tasks: how many tasks (groups) have finished runs of both sides with this metric.
        iqm: per side, the IQM of normalised scores with its 95% stratified bootstrap interval.
        counts: tasks where CoordConv is better, similar, worse, undecided.
        headline: whether some task's benchmark lists it as a headline metric.
        scores: how scores were normalised: `min-max`, the declared normaliser, or both.
    """

    metric: str
    higher: bool
    tasks: int
    iqm: dict[str, stats.Interval]
    counts: dict[str, int]
    headline: bool = False
    scores: str = "min-max"


def _bounds(group: Group, metric: str) -> tuple[tuple[float, float], bool]:
    """The task's (low, high) for normalising `metric`, and whether they were declared."""
    normalizer = group.spec.load_normalizer() if group.spec else None
    if normalizer is not None:
        runs = group.finished("conv") + group.finished("coordconv")
        bounds = normalizer(metric, dict(runs[0].resolved))
        if bounds is not None:
            return (float(bounds[0]), float(bounds[1])), True
    pooled = stats.sample(group.values("conv", metric) + group.values("coordconv", metric))
    return (float(pooled.min()), float(pooled.max())), False


def current(groups: Sequence[Group]) -> list[Group]:
    """The groups of the recipes the current code trains: superseded ones left out."""
    return [g for g in groups if not g.superseded]


def aggregate(groups: Sequence[Group]) -> list[AggregateRow]:
    """Per declared higher- or lower-is-better metric, across the current groups (tasks)
    where both sides have values; headline metrics first. Superseded groups (an older
    recipe of a config) are left out: a task counts once, with the recipe trained now.

    Within a task, scores are normalised by the benchmark's declared normaliser where it
    gives bounds for the metric (Atari: (score - random) / (human - random)), else min-max
    over both sides' runs (0: the task's lowest run, 1: its highest); the IQM and its
    stratified bootstrap interval are taken over all tasks' runs, the rliable way.
    """
    groups = current(groups)
    keys: dict[tuple[str, bool], bool] = {}  # (metric, higher) -> headline somewhere
    for g in groups:
        for metric in g.metrics():
            higher = g.higher(metric)
            if higher is not None:
                key = (metric, higher)
                keys[key] = keys.get(key, False) or metric in g.headline
    rows = []
    for (metric, higher), headline in keys.items():
        tasks = [
            g
            for g in groups
            if g.higher(metric) is higher
            and all(len(stats.sample(g.values(side, metric))) for side in SIDES)
            and not g.compare(metric).missing  # a verdict and a score from every run
        ]
        if not tasks:
            continue
        bounds, declared = zip(*(_bounds(g, metric) for g in tasks), strict=True)
        iqm = {
            side: stats.iqm_ci([g.values(side, metric) for g in tasks], bounds=list(bounds))
            for side in SIDES
        }
        verdicts = [g.compare(metric).verdict(higher) for g in tasks]
        n_declared = sum(declared)
        names = sorted(
            {g.spec.normalizer.rpartition(":")[2] for g in tasks if g.spec and g.spec.normalizer}
        )
        by = f"declared ({', '.join(names)})"
        scores = (
            "min-max"
            if not n_declared
            else by
            if n_declared == len(tasks)
            else f"{by} in {n_declared} tasks, min-max in {len(tasks) - n_declared}"
        )
        rows.append(
            AggregateRow(
                metric,
                higher,
                len(tasks),
                iqm,
                stats.count_verdicts(verdicts),
                headline,
                scores,
            )
        )
    # headline metrics first (in the order met), then the rest by name
    return sorted(rows, key=lambda r: (not r.headline, "" if r.headline else r.metric))


AGGREGATE_HEADER = [
    "metric",
    "better",
    "tasks",
    "scores",
    "IQM conv [95% CI]",
    "IQM CoordConv [95% CI]",
    "CoordConv better",
    "similar",
    "worse",
    "undecided",
]


def aggregate_table(rows: Sequence[AggregateRow]) -> Table:
    """The across-task rows as a table."""
    return Table(
        AGGREGATE_HEADER,
        [
            [
                r.metric,
                "higher" if r.higher else "lower",
                str(r.tasks),
                r.scores,
                fmt_interval(r.iqm["conv"]),
                fmt_interval(r.iqm["coordconv"]),
                *(str(r.counts[k]) for k in VERDICT_KEYS),
            ]
            for r in rows
        ],
    )
