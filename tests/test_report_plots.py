"""Learning curves in the report: median and interquartile band over seeds, panel order.

Runs are written by hand with known curves (lines y = x + c, alternating noise around a
constant), so the medians and bands are known without running the code's own formulas.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cc_bench.registry import Benchmark, get_benchmark, register_benchmark
from cc_bench.report import curves, plots
from cc_bench.report.document import Figure
from cc_bench.report.groups import Group
from cc_bench.report.runs import RunRecord
from cc_bench.toy.configs import ClassificationConfig


def run(conv: str, seed: int, rows: list[dict[str, float]]) -> RunRecord:
    record = RunRecord("x.unknown", f"{conv}_{seed}", {"conv": conv, "seed": seed}, "finished")
    record.history = rows
    return record


def line_runs(conv: str, offsets: list[float], starts: list[float]) -> list[RunRecord]:
    """Runs of y = x + offset, logged at x = start, start + 1, ..., start + 10."""
    return [
        run(conv, i, [{"step": s + k, "m": s + k + c} for k in range(11)])
        for i, (c, s) in enumerate(zip(offsets, starts, strict=True))
    ]


@pytest.fixture
def saved(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The matplotlib figures plot functions would save (nothing is written)."""
    figures: list[Any] = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or path)
    return figures


def panel(fig: Any, title: str) -> Any:
    return next(ax for ax in fig.axes if ax.get_title() == title)


# -- the running mean and the band ---------------------------------------------------------


def test_running_mean_is_the_trailing_mean() -> None:
    values = [4.0, 0.0, 2.0, 6.0, 1.0]
    naive = [np.mean(values[max(0, i - 2) : i + 1]) for i in range(len(values))]
    assert curves.running_mean(values, 3) == pytest.approx(naive)
    assert curves.running_mean(values, 1) == pytest.approx(values)
    assert curves.running_mean(values, 99) == pytest.approx(np.cumsum(values) / np.arange(1, 6))
    with pytest.raises(ValueError, match="window"):
        curves.running_mean(values, 0)


def test_runs_that_share_x_are_pooled_point_by_point() -> None:
    xs = [0.0, 10.0, 20.0]
    found = [(xs, [1.0, 2.0, 3.0]), (xs, [5.0, 6.0, 7.0]), (xs, [3.0, 4.0, 11.0])]
    band = curves.band(found)
    assert band is not None and not band.resampled
    assert band.xs.tolist() == xs
    assert band.median.tolist() == [3.0, 4.0, 7.0]
    assert band.q25.tolist() == [2.0, 3.0, 5.0]  # halfway between the lowest and the median
    assert band.q75.tolist() == [4.0, 5.0, 9.0]


def test_runs_at_different_x_are_resampled_onto_the_range_they_all_cover() -> None:
    # y = x + c for c = 0, 4, 8, 20, logged from x = 0, 0.3, 1.5 and 2 to 10 more.
    found = [
        ([s + k for k in range(11)], [s + k + c for k in range(11)])
        for c, s in ((0, 0.0), (4, 0.3), (8, 1.5), (20, 2.0))
    ]
    band = curves.band(found)
    assert band is not None and band.resampled and band.window == 1
    assert band.xs[0] == 2.0 and band.xs[-1] == 10.0  # the latest start, the earliest end
    assert len(band.xs) == 11  # no more points than the longest run logged
    assert band.median == pytest.approx(band.xs + 6.0)  # the median of 0, 4, 8, 20
    assert band.q25 == pytest.approx(band.xs + 3.0)
    assert band.q75 == pytest.approx(band.xs + 11.0)


def test_noisy_episode_scores_are_averaged_before_they_are_pooled() -> None:
    # Three seeds' episodes end at different frames; each score alternates c - 5, c + 5.
    # 40 points: the trailing mean spans 2 of them (5%), which cancels the noise exactly.
    found = []
    for c, shift in ((100.0, 0.0), (200.0, 3.0), (400.0, 7.0)):
        xs = [shift + 10.0 * k for k in range(40)]
        found.append((xs, [c + (5.0 if k % 2 else -5.0) for k in range(40)]))
    band = curves.band(found)
    assert band is not None and band.window == 2
    assert band.xs[0] == 7.0 and band.xs[-1] == 390.0
    # From the second logged point of the latest-starting run on (its first is averaged alone).
    after = band.xs >= 17.0
    assert band.median[after] == pytest.approx(200.0)
    assert band.q25[after] == pytest.approx(150.0) and band.q75[after] == pytest.approx(300.0)


def test_episodes_ending_at_the_same_frame_count_once_each() -> None:
    # Two environments end a game at frame 20: the curve there is the mean of both.
    grid = np.array([10.0, 20.0, 30.0])
    out = curves.resample([10.0, 20.0, 20.0, 30.0], [0.0, 2.0, 4.0, 6.0], grid, window=2)
    assert out.tolist() == [0.0, 3.0, 5.0]


def test_runs_that_share_no_x_range_are_not_pooled() -> None:
    assert curves.band([([0.0, 1.0], [1.0, 1.0]), ([2.0, 3.0], [1.0, 1.0])]) is None
    assert curves.band([([0.0, 1.0], [1.0, 1.0]), ([], [])]) is None
    one = curves.band([([4.0], [1.0]), ([4.0], [3.0])])  # a point each, at the same x
    assert one is not None and one.median.tolist() == [2.0]


# -- the figure ----------------------------------------------------------------------------


def test_the_figure_draws_each_sides_median_and_band(saved: list[Any], tmp_path: Path) -> None:
    runs = line_runs("conv", [0, 4, 8], [0.0, 0.5, 1.0]) + line_runs(
        "coordconv", [1, 2, 30], [0.0, 0.0, 0.0]
    )
    group = Group("g", "x.unknown", runs)
    figure = plots.plot_curves(group, tmp_path / "curves.png")
    assert isinstance(figure, Figure)
    ax = panel(saved[0], "m")
    lines = {line.get_color(): line for line in ax.get_lines()}
    conv, coord = lines[plots.COLORS["conv"]], lines[plots.COLORS["coordconv"]]
    assert len(ax.get_lines()) == 2  # one median per side, not one line per seed
    assert conv.get_xdata()[0] == 1.0 and conv.get_xdata()[-1] == 10.0
    assert conv.get_ydata() == pytest.approx(np.asarray(conv.get_xdata()) + 4.0)
    assert list(coord.get_xdata()) == list(range(11))  # shared x: the logged points
    assert coord.get_ydata() == pytest.approx(np.arange(11) + 2.0)
    # The bands: conv's offsets 0, 4, 8 give x + 2 to x + 6 over x 1..10; CoordConv's
    # 1, 2, 30 give x + 1.5 to x + 16 over x 0..10.
    spans = sorted(
        bound
        for band in ax.collections
        for v in (band.get_paths()[0].vertices[:, 1],)
        for bound in (float(v.min()), float(v.max()))
    )
    assert spans == pytest.approx([1.5, 3.0, 16.0, 26.0])
    assert "`m` log at different x values" in figure.caption
    assert "one line per seed" not in figure.caption.lower()


def test_the_figure_falls_back_to_a_line_per_seed_and_says_so(
    saved: list[Any], tmp_path: Path
) -> None:
    runs = line_runs("conv", [0, 1], [0.0, 50.0])  # 0..10 and 50..60: nothing shared
    figure = plots.plot_curves(Group("g", "x.unknown", runs), tmp_path / "curves.png")
    assert figure is not None and "One line per seed for `m`" in figure.caption
    assert len(panel(saved[0], "m").get_lines()) == 2


# -- the panels' order ---------------------------------------------------------------------


def test_declared_curves_lead_then_test_and_charts_before_losses_and_perf(
    saved: list[Any], tmp_path: Path
) -> None:
    keys = [
        "charts/learning_rate",
        "losses/value_loss",
        "perf/steps_per_s",
        "gan/score",
        "train/loss",
        "charts/episodic_return",
        "test/acc",
        "eval/return",
    ]
    runs = [
        run(conv, 0, [{"step": 1, **dict.fromkeys(keys, 1.0)}]) for conv in ("conv", "coordconv")
    ]
    group = Group("g", "x.unknown", runs)
    assert plots.curve_order(group) == [
        "test/acc",
        "eval/return",
        "charts/learning_rate",
        "charts/episodic_return",
        "train/loss",
        "gan/score",
        "losses/value_loss",
        "perf/steps_per_s",
    ]
    declared = Benchmark(
        "x.unknown",
        ClassificationConfig,
        "m:f",
        "",
        curves=("charts/episodic_return", "not/logged", "losses/value_loss"),
        curve_x_label="env frames",
    )
    group.spec = declared  # as if registered
    order = plots.curve_order(group)
    assert order[:3] == ["charts/episodic_return", "losses/value_loss", "test/acc"]
    assert "not/logged" not in order and len(order) == len(keys)
    plots.plot_curves(group, tmp_path / "curves.png")
    titles = [ax.get_title() for ax in saved[0].axes if ax.get_visible()]
    assert titles == order
    assert saved[0].axes[0].get_xlabel() == "env frames"


@pytest.mark.parametrize(
    ("curves_arg", "message"),
    [
        ("charts/episodic_return", "tuple of logged metric names"),
        (("a", ""), "tuple of logged metric names"),
        (("a", "a"), "distinct"),
        (("step",), "not the x axis"),
    ],
)
def test_declared_curves_are_validated(curves_arg: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        register_benchmark(
            "x.bad_curves",
            ClassificationConfig,
            "m:f",
            "",
            metrics={"acc": "higher"},
            headline=("acc",),
            curves=curves_arg,
        )


def test_toy_curves_are_per_epoch_and_wall_time_gets_no_verdict() -> None:
    for name in ("toy.classification", "toy.rendering", "toy.regression"):
        bench = get_benchmark(name)
        assert bench.curve_x == "step" and bench.curve_x_label.startswith("epochs")
        assert bench.direction("wall_s") == "neither"
        assert bench.curves and bench.curves[0].startswith("test/")


def test_rl_curves_lead_with_the_episodic_return() -> None:
    for name in ("rl.a2c", "rl.dqn"):
        bench = get_benchmark(name)
        assert bench.curves[0] == "charts/episodic_return"
        assert bench.curve_x_label == "env frames"
