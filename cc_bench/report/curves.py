"""Learning curves over seeds: a run's curve, its running mean, and a side's median and band.

A side's runs log at the same x values when they log every few steps or epochs; then the
median and the interquartile band are taken point by point. Runs that log where something
happens (an RL episode ends at different frames in every seed) or against wall seconds
never share their x values, so each run's curve is first resampled onto one grid over the x
range that every run covers: a trailing mean over 5% of the run's points, and at least as
many as fall between two grid points (so a noisy per-episode score is averaged, not
sampled), then linear interpolation. numpy only: `cc_bench.rl.report` uses `resample` for its
aggregate too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from cc_bench.report.runs import is_number

if TYPE_CHECKING:
    from cc_bench.report.runs import RunRecord

TIME_KEY = "time"
# Points of the common grid a side's runs are resampled onto (fewer if the runs log fewer).
GRID_POINTS = 50
# A resampled run's trailing mean spans at least this fraction of its logged points.
SMOOTH_FRACTION = 0.05

Curve = tuple[list[float], list[float]]


def run_curve(run: RunRecord, metric: str, curve_x: str) -> Curve:
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


def running_mean(values: Sequence[float] | np.ndarray, window: int) -> np.ndarray:
    """The trailing mean of each value and the `window - 1` before it (fewer at the start)."""
    v = np.asarray(values, dtype=float)
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    sums = np.cumsum(np.concatenate([[0.0], v]))  # (n + 1,)
    ends = np.arange(1, len(v) + 1)
    starts = np.maximum(0, ends - window)
    return (sums[ends] - sums[starts]) / (ends - starts)


def resample(xs: Sequence[float], ys: Sequence[float], grid: np.ndarray, window: int) -> np.ndarray:
    """A curve at the x values of `grid`: the trailing mean over `window` points (in logging
    order), then linear interpolation; of points logged at the same x, the last counts."""
    x = np.asarray(xs, dtype=float)
    smooth = running_mean(ys, window)
    order = np.argsort(x, kind="stable")
    x, smooth = x[order], smooth[order]
    last = np.append(x[1:] != x[:-1], True)  # the last point of each run of equal x
    return np.interp(grid, x[last], smooth[last])


@dataclass(frozen=True)
class Band:
    """A side's median over runs with the 25th and 75th percentiles, at `xs`.

    `window` is 0 where the runs shared their x values (no resampling), else the trailing
    mean's width in points of the longest run.
    """

    xs: np.ndarray
    median: np.ndarray
    q25: np.ndarray
    q75: np.ndarray
    window: int = 0

    @property
    def resampled(self) -> bool:
        return self.window > 0


def band(curves: Sequence[Curve], grid_points: int = GRID_POINTS) -> Band | None:
    """Median and interquartile band over runs' curves, or None when they cannot be pooled.

    Runs that share their x values are pooled point by point. Otherwise each is resampled
    (`resample`: a trailing mean over `SMOOTH_FRACTION` of its points or over the points
    between two grid points, whichever is more) onto `min(grid_points, longest run's
    points)` evenly spaced x values from the largest first x to the smallest last x of the
    runs. None when those ranges do not overlap, or a run is empty.
    """
    if not curves or any(not xs for xs, _ in curves):
        return None
    if all(xs == curves[0][0] for xs, _ in curves):
        values = np.array([ys for _, ys in curves])  # (runs, points)
        q25, median, q75 = np.percentile(values, [25, 50, 75], axis=0)
        return Band(np.array(curves[0][0], dtype=float), median, q25, q75)
    lo = max(min(xs) for xs, _ in curves)
    hi = min(max(xs) for xs, _ in curves)
    if lo > hi:
        return None
    longest = max(len(xs) for xs, _ in curves)
    n = min(grid_points, longest) if hi > lo else 1
    grid = np.linspace(lo, hi, n)
    # At least the points that fall between two grid points, so none is skipped.
    windows = [max(1, round(len(xs) / n), round(len(xs) * SMOOTH_FRACTION)) for xs, _ in curves]
    values = np.array(
        [resample(xs, ys, grid, w) for (xs, ys), w in zip(curves, windows, strict=True)]
    )  # (runs, n)
    q25, median, q75 = np.percentile(values, [25, 50, 75], axis=0)
    return Band(grid, median, q25, q75, window=max(windows))
