"""The statistics of a comparison against hand-computed values and textbook formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import t as student_t

from cc_bench import stats
from cc_bench.stats import Interval


def test_mean_ci_contains_the_mean_and_stays_in_the_data_range() -> None:
    ci = stats.mean_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    assert ci.estimate == 3.0
    assert ci.defined and 1.0 <= ci.low < 3.0 < ci.high <= 5.0


@pytest.mark.parametrize("method", ["percentile", "BCa"])
def test_mean_ci_shrinks_with_n(method: str) -> None:
    rng = np.random.default_rng(1)
    widths = []
    for n in (5, 50, 500):
        ci = stats.mean_ci(rng.normal(10.0, 2.0, size=n), method=method)
        assert ci.contains(ci.estimate)
        widths.append(ci.high - ci.low)
    assert widths[0] > widths[1] > widths[2]


def test_mean_ci_matches_the_normal_interval_for_large_n() -> None:
    x = np.random.default_rng(2).normal(0.0, 1.0, size=400)
    half = 1.96 * x.std(ddof=1) / math.sqrt(len(x))  # the textbook 95% interval
    ci = stats.mean_ci(x)
    assert ci.estimate == pytest.approx(x.mean())
    assert ci.high - ci.low == pytest.approx(2 * half, rel=0.1)
    assert (ci.low + ci.high) / 2 == pytest.approx(x.mean(), abs=0.1 * half)


def test_mean_ci_is_reproducible() -> None:
    x = [0.1, 0.5, 0.2, 0.9]
    assert stats.mean_ci(x) == stats.mean_ci(x)


@pytest.mark.parametrize("method", ["percentile", "BCa"])
def test_one_value_has_no_interval_and_identical_values_a_zero_width_one(method: str) -> None:
    one = stats.mean_ci([0.7], method=method)
    assert one.estimate == 0.7 and not one.defined and math.isnan(one.low)
    same = stats.mean_ci([0.25, 0.25, 0.25], method=method)
    assert same == Interval(0.25, 0.25, 0.25)
    assert math.isnan(stats.mean_ci([]).estimate)


def test_missing_values_are_left_out() -> None:
    assert stats.sample([1.0, None, float("nan"), float("inf"), 3.0]).tolist() == [1.0, 3.0]
    assert stats.mean_ci([1.0, None, 3.0]).estimate == 2.0


def test_diff_ci_of_means() -> None:
    a, b = [10.0, 11.0, 12.0, 13.0], [1.0, 2.0, 3.0]
    ci = stats.diff_ci(a, b)
    assert ci.estimate == pytest.approx(11.5 - 2.0)
    # every resample's difference lies between min(a) - max(b) and max(a) - min(b)
    assert 10.0 - 3.0 <= ci.low < ci.estimate < ci.high <= 13.0 - 1.0
    assert not stats.diff_ci(a, [2.0]).defined  # one value on a side: no interval
    assert stats.diff_ci([2.0, 2.0], [1.0, 1.0]) == Interval(1.0, 1.0, 1.0)


def test_welch_p_matches_the_textbook_formula() -> None:
    a = [1.0, 2.0, 3.0, 4.0, 5.0]  # mean 3, variance 2.5
    b = [2.0, 4.0, 6.0, 8.0, 10.0, 12.0]  # mean 7, variance 14
    se2 = 2.5 / 5 + 14.0 / 6
    t = (3.0 - 7.0) / math.sqrt(se2)
    df = se2**2 / ((2.5 / 5) ** 2 / 4 + (14.0 / 6) ** 2 / 5)  # Welch-Satterthwaite
    assert t == pytest.approx(-2.37635, rel=1e-5)
    assert df == pytest.approx(6.9722, rel=1e-4)
    assert stats.welch_p(a, b) == pytest.approx(2 * student_t.sf(abs(t), df), rel=1e-10)


def test_welch_p_is_nan_when_undefined() -> None:
    assert math.isnan(stats.welch_p([1.0], [1.0, 2.0]))
    assert math.isnan(stats.welch_p([1.0, 1.0], [2.0, 2.0]))
    assert 0.0 < stats.welch_p([1.0, 1.0], [2.0, 2.5]) < 1.0  # one side without spread


def test_compare_puts_it_together() -> None:
    cmp = stats.compare([2.0, 4.0], [1.0, 1.0, 1.0])
    assert (cmp.n_a, cmp.n_b) == (2, 3)
    assert cmp.a.estimate == 3.0 and cmp.b == Interval(1.0, 1.0, 1.0)
    assert cmp.diff.estimate == 2.0
    assert cmp.p_value == pytest.approx(stats.welch_p([2.0, 4.0], [1.0, 1.0, 1.0]))


def test_a_side_with_undefined_values_gets_no_verdict() -> None:
    # The survivors of a side that failed on a seed must not out-rank one that never failed:
    # conv reached "perfect" in 50 and 52 s and never on its third seed; CoordConv in 60-62.
    cmp = stats.compare([60.0, 61.0, 62.0], [50.0, 52.0, None])
    assert (cmp.n_a, cmp.n_b, cmp.missing) == (3, 2, 1)
    assert cmp.b.estimate == 51.0 and cmp.p_value < 0.05  # the means and test of the rest
    assert cmp.verdict(higher=False) is None
    complete = stats.compare([60.0, 61.0, 62.0], [50.0, 52.0, 51.0])
    assert complete.missing == 0 and complete.verdict(higher=False) == "worse"


def test_iqm_of_known_lists() -> None:
    # 8 values: the lowest 2 and highest 2 are cut, the mean of 3, 4, 5, 6 remains
    assert stats.iqm([10.0, 1.0, 2.0, 3.0, 100.0, 4.0, 5.0, 6.0]) == 4.5
    assert stats.iqm([1.0, 2.0, 3.0]) == 2.0  # int(0.75) = 0 cut from each end
    assert math.isnan(stats.iqm([]))


def test_iqm_ci_resamples_within_each_task() -> None:
    # Task A always brings four zeros, task B two draws from {1, 2}; cutting one value
    # from each end of the six leaves 0, 0, 0 and min(B draws): the IQM is 0.25 or 0.5.
    # A bootstrap that ignored the tasks could draw no zeros at all.
    ci = stats.iqm_ci([[0.0, 0.0, 0.0, 0.0], [1.0, 2.0]])
    assert ci.estimate == pytest.approx(0.25)
    assert ci.defined and 0.25 <= ci.low <= ci.high <= 0.5


def test_iqm_ci_estimate_interval_and_bounds() -> None:
    ci = stats.iqm_ci([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]])
    assert ci.estimate == pytest.approx(4.0)  # 7 values: one cut from each end, mean of 2..6
    assert ci.low < 4.0 < ci.high
    assert ci == stats.iqm_ci([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]])  # reproducible
    scaled = stats.iqm_ci([[0.0, 10.0], [100.0, 200.0]], bounds=[(0.0, 10.0), (100.0, 200.0)])
    assert scaled.estimate == pytest.approx(0.5)
    assert not stats.iqm_ci([[1.0], [2.0]]).defined  # no task with two runs


def test_verdicts_and_counts() -> None:
    up = Interval(1.0, 0.5, 1.5)
    assert stats.verdict(up, higher=True) == "better"
    assert stats.verdict(up, higher=False) == "worse"
    assert stats.verdict(Interval(0.1, -0.1, 0.3), higher=True) == "similar"
    assert stats.verdict(Interval(0.0, 0.0, 0.0), higher=True) == "similar"
    assert stats.verdict(Interval(1.0), higher=True) is None  # no interval: undecided
    assert stats.verdict(up, higher=None) is None
    counts = stats.count_verdicts(["better", "better", "similar", None])
    assert counts == {"better": 2, "similar": 1, "worse": 0, "undecided": 1}
