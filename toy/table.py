"""The paper's toy-task results next to ours (Liu et al. 2018, section 4; ../shared/PAPER.md).

After `cc-bench launch toy`, `write_table(RUNS_DIR/toy)` writes `toy_table.md` there: for each
task, split and conv, our mean over seeds with its min..max beside the published figure.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from cc_bench.rundir import FINISHED, read_json, run_folders, run_state

# (benchmark, split, conv) -> what was published, as text.
PUBLISHED = {
    ("toy.classification", "uniform", "conv"): "< 86% (paper, > 1 h); 85.8% (re-impl.)",
    ("toy.classification", "quadrant", "conv"): "0% (re-impl.)",
    ("toy.classification", "uniform", "coordconv"): "100% (paper)",
    ("toy.classification", "quadrant", "coordconv"): "100% (paper)",
    ("toy.rendering", "uniform", "conv"): "IoU <= 0.83 (paper)",
    ("toy.rendering", "quadrant", "conv"): "IoU <= 0.36 (paper)",
    ("toy.rendering", "uniform", "coordconv"): "IoU 1.0, perfect (paper)",
    ("toy.rendering", "quadrant", "coordconv"): "IoU 1.0, perfect (paper)",
    ("toy.regression", "uniform", "conv"): "47.7% (re-impl.)",
    ("toy.regression", "quadrant", "conv"): "7.1% (re-impl.)",
    ("toy.regression", "uniform", "coordconv"): "100% (paper)",
    ("toy.regression", "quadrant", "coordconv"): "100% (paper)",
}
METRIC = {
    "toy.classification": "test_acc",
    "toy.rendering": "test_iou",
    "toy.regression": "test_acc",
}
_PERCENT = {"test_acc"}


def _fmt(metric: str, value: float) -> str:
    return f"{100 * value:.1f}%" if metric in _PERCENT else f"{value:.3f}"


def toy_table(suite_dir: Path) -> str:
    """The Markdown table of the toy suite's finished runs beside the published figures."""
    values: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    times: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    other: dict[tuple[str, str, str], int] = defaultdict(int)
    for run_dir in run_folders(suite_dir):
        meta = read_json(run_dir / "config.json") or {}
        bench, config = meta.get("benchmark"), meta.get("config") or {}
        key = (bench, config.get("split"), config.get("conv"))
        if bench not in METRIC:
            continue
        if run_state(run_dir) != FINISHED:
            other[key] += 1
            continue
        metrics = (read_json(run_dir / "summary.json") or {}).get("metrics") or {}
        values[key].append(float(metrics[METRIC[bench]]))
        times[key].append(float(metrics.get("wall_s") or 0.0))
    lines = [
        "| task | split | model | metric | ours: mean (min..max) | seeds | wall s (mean) | published |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for bench, split, conv in PUBLISHED:
        key = (bench, split, conv)
        metric = METRIC[bench]
        got = values.get(key, [])
        if got:
            ours = f"{_fmt(metric, sum(got) / len(got))} ({_fmt(metric, min(got))}..{_fmt(metric, max(got))})"
            wall = f"{sum(times[key]) / len(times[key]):.0f}"
        else:
            ours, wall = "no finished run", "-"
        seeds = f"{len(got)}" + (f" (+{other[key]} not finished)" if other.get(key) else "")
        model = "CoordConv" if conv == "coordconv" else "conv baseline"
        lines.append(
            f"| {bench.removeprefix('toy.')} | {split} | {model} | {metric} | {ours} | {seeds} "
            f"| {wall} | {PUBLISHED[key]} |"
        )
    return "\n".join(lines) + "\n"


def write_table(suite_dir: Path) -> str:
    """Write `toy_table.md` into the suite's folder; returns what to print."""
    text = toy_table(suite_dir)
    path = Path(suite_dir) / "toy_table.md"
    path.write_text("# The toy tasks: ours beside the paper's\n\n" + text)
    return f"\n{text}\nwritten to {path}"
