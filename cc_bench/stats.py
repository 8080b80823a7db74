"""The statistics of a comparison between conv and CoordConv runs.

Over seeds: the mean with a 95% bootstrap confidence interval, the difference of two means
with a bootstrap interval that resamples each side on its own, and Welch's t-test. Across
tasks: the interquartile mean (IQM) with a stratified bootstrap interval, as rliable does
(Agarwal et al. 2021), and counts of tasks where CoordConv is better, similar or worse, as in
the paper's Atari figure (Liu et al. 2018, section 6).

Every bootstrap draws from a generator seeded with `SEED`, so a report is reproducible.
Fewer than two values give no interval (`low` and `high` are NaN), since one seed says
nothing about the spread; identical values give the zero-width interval (mean, mean), which
is what the bootstrap of a constant sample is.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
N_RESAMPLES = 10_000
SEED = 0
IQM_CUT = 0.25

Method = Literal["percentile", "BCa"]
Verdict = Literal["better", "similar", "worse"]
VERDICTS: tuple[Verdict, ...] = ("better", "similar", "worse")


@dataclass(frozen=True)
class Interval:
    """A point estimate and its confidence interval; `low` and `high` are NaN if there is none."""

    estimate: float
    low: float = math.nan
    high: float = math.nan

    @property
    def defined(self) -> bool:
        """Whether there is an interval (enough values to resample)."""
        return math.isfinite(self.low) and math.isfinite(self.high)

    def contains(self, value: float) -> bool:
        """Whether `value` lies in the closed interval (False when there is none)."""
        return self.defined and self.low <= value <= self.high


@dataclass(frozen=True)
class Comparison:
    """Two samples compared: each mean with its interval, their difference (a - b), Welch's p.

    `missing` counts the values left out as undefined (None, NaN: a run that never reached
    what the metric times, say): the means are of the rest, but no verdict is given, since
    judging only the runs that got there would favour the side that failed more often.
    """

    a: Interval
    b: Interval
    diff: Interval
    p_value: float
    n_a: int
    n_b: int
    missing: int = 0

    def verdict(self, higher: bool | None) -> Verdict | None:
        """`a` against `b`: better or worse when the difference's interval excludes 0 and
        p < 0.05, else similar; None without a direction or an interval (`verdict`), or
        with values missing."""
        return None if self.missing else verdict(self.diff, higher, self.p_value)


def sample(values: Iterable[float | None]) -> np.ndarray:
    """The finite values as a 1-D float array: None, NaN and infinities are left out."""
    x = np.array([math.nan if v is None else float(v) for v in values], dtype=float)
    return x[np.isfinite(x)]


def _is_constant(x: np.ndarray) -> bool:
    return bool(np.all(x == x[0]))


def _bootstrap(
    samples: tuple[np.ndarray, ...],
    statistic: Callable[..., np.ndarray],
    *,
    confidence: float,
    method: Method,
    n_resamples: int,
    seed: int,
) -> Interval:
    """The bootstrap interval of `statistic(*samples)`, each sample resampled independently.

    Every sample needs two or more values (else there is no interval); if every sample is
    constant, so is every resample, and the interval is the estimate itself.
    """
    estimate = float(statistic(*samples, axis=-1))
    if min(len(x) for x in samples) < 2:
        return Interval(estimate)
    if all(_is_constant(x) for x in samples):
        return Interval(estimate, estimate, estimate)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # BCa warns on degenerate jackknife values
        res = stats.bootstrap(
            samples,
            statistic,
            n_resamples=n_resamples,
            vectorized=True,
            confidence_level=confidence,
            method=method,
            rng=np.random.default_rng(seed),
        )
    ci = res.confidence_interval
    return Interval(estimate, float(ci.low), float(ci.high))


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def _mean_diff(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def mean_ci(
    values: Iterable[float | None],
    *,
    confidence: float = CONFIDENCE,
    method: Method = "percentile",
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> Interval:
    """The mean of `values` over seeds and its bootstrap confidence interval.

    Args:
        values: one final metric per seed; None and non-finite values are left out.
        confidence: the interval's level (0.95: a 95% interval).
        method: "percentile" (the default: robust with few seeds) or "BCa".
        n_resamples: bootstrap resamples.
        seed: the bootstrap generator's seed.

    Returns NaN as the estimate when no value is left, and no interval for a single value.
    """
    x = sample(values)
    if len(x) == 0:
        return Interval(math.nan)
    return _bootstrap(
        (x,), _mean, confidence=confidence, method=method, n_resamples=n_resamples, seed=seed
    )


def diff_ci(
    a: Iterable[float | None],
    b: Iterable[float | None],
    *,
    confidence: float = CONFIDENCE,
    method: Method = "percentile",
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> Interval:
    """mean(a) - mean(b) and its bootstrap interval, resampling `a` and `b` independently.

    Both sides need two or more values for an interval: with one value on a side, the
    interval would pretend that side had no spread.
    """
    xa, xb = sample(a), sample(b)
    if len(xa) == 0 or len(xb) == 0:
        return Interval(math.nan)
    return _bootstrap(
        (xa, xb),
        _mean_diff,
        confidence=confidence,
        method=method,
        n_resamples=n_resamples,
        seed=seed,
    )


def welch_p(a: Iterable[float | None], b: Iterable[float | None]) -> float:
    """The two-sided p-value of Welch's t-test (unequal variances) of mean(a) = mean(b).

    NaN when the test is undefined: fewer than two values on a side, or no spread on either
    side (the t statistic would divide by zero).
    """
    xa, xb = sample(a), sample(b)
    if len(xa) < 2 or len(xb) < 2 or (_is_constant(xa) and _is_constant(xb)):
        return math.nan
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return float(stats.ttest_ind(xa, xb, equal_var=False).pvalue)


def compare(
    a: Iterable[float | None],
    b: Iterable[float | None],
    *,
    confidence: float = CONFIDENCE,
    method: Method = "percentile",
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> Comparison:
    """Compare sample `a` (CoordConv, say) with sample `b` (conv): means, difference a - b, p;
    values that are None or not finite are counted as `missing`."""
    a, b = list(a), list(b)
    xa, xb = sample(a), sample(b)
    kw = {"confidence": confidence, "method": method, "n_resamples": n_resamples, "seed": seed}
    return Comparison(
        a=mean_ci(xa, **kw),
        b=mean_ci(xb, **kw),
        diff=diff_ci(xa, xb, **kw),
        p_value=welch_p(xa, xb),
        n_a=len(xa),
        n_b=len(xb),
        missing=len(a) + len(b) - len(xa) - len(xb),
    )


def iqm(values: Iterable[float | None]) -> float:
    """The interquartile mean: the mean of the middle 50% of the values (NaN if none)."""
    x = sample(values)
    return float(stats.trim_mean(x, IQM_CUT)) if len(x) else math.nan


def normalize(values: Iterable[float | None], low: float, high: float) -> np.ndarray:
    """Scores scaled so that `low` maps to 0 and `high` to 1 (all 0 when low == high)."""
    x = sample(values)
    span = high - low
    return (x - low) / span if span else np.zeros_like(x)


def iqm_ci(
    tasks: Sequence[Iterable[float | None]],
    *,
    bounds: Sequence[tuple[float, float]] | None = None,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> Interval:
    """The IQM of all runs of all tasks with a stratified percentile bootstrap interval.

    The rliable way: each resample draws, within every task, as many runs as that task has
    (with replacement), pools them, and takes the IQM; tasks may have different numbers of
    runs. Without any task of two or more runs there is no interval.

    Args:
        tasks: per task, one score per run (seed).
        bounds: per task, the (low, high) scores that normalise it to [0, 1] (for example
            a random and a reference score); None keeps the raw scores.
    """
    samples = [sample(t) for t in tasks]
    if bounds is not None:
        if len(bounds) != len(samples):
            raise ValueError(f"got {len(bounds)} bounds for {len(samples)} tasks")
        samples = [normalize(x, lo, hi) for x, (lo, hi) in zip(samples, bounds, strict=True)]
    samples = [x for x in samples if len(x)]
    if not samples:
        return Interval(math.nan)
    estimate = float(stats.trim_mean(np.concatenate(samples), IQM_CUT))
    if max(len(x) for x in samples) < 2:
        return Interval(estimate)
    rng = np.random.default_rng(seed)
    # (n_resamples, total runs): every task resampled within itself, then pooled
    pooled = np.concatenate(
        [x[rng.integers(0, len(x), size=(n_resamples, len(x)))] for x in samples], axis=1
    )
    boot = stats.trim_mean(pooled, IQM_CUT, axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(boot, [alpha, 1 - alpha])
    return Interval(estimate, float(low), float(high))


def verdict(diff: Interval, higher: bool | None, p_value: float | None = None) -> Verdict | None:
    """Whether the side whose difference this is (a - b) is better, similar or worse than b.

    Better or worse only when the difference's interval excludes 0 and, where a p-value is
    given, Welch's test agrees (p < 1 - CONFIDENCE; an undefined p, as when neither side
    varies, leaves the interval to decide); "similar" otherwise. None (undecided) when the
    metric has no direction (`higher` None: the benchmark declares none) or there is no
    interval.
    """
    if higher is None or not diff.defined:
        return None
    if diff.contains(0.0) or (p_value is not None and p_value >= round(1 - CONFIDENCE, 9)):
        return "similar"
    return "better" if (diff.low > 0) == higher else "worse"


def count_verdicts(verdicts: Iterable[Verdict | None]) -> dict[str, int]:
    """How many are better, similar, worse, and undecided (None)."""
    counts = Counter("undecided" if v is None else v for v in verdicts)
    return {key: counts.get(key, 0) for key in (*VERDICTS, "undecided")}
