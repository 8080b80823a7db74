"""The paper's toy-task results next to ours (Liu et al. 2018, section 4 and its appendix).

After `cc-bench launch toy`, `write_table(RUNS_DIR/toy)` writes `toy_table.md` there: for each
task, split and conv, our mean over seeds with its min..max beside the published figure, from
the runs of the recipe the current code trains (older recipes are counted, not pooled).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from cc_bench.errors import UserError
from cc_bench.rundir import FINISHED

if TYPE_CHECKING:
    from cc_bench.report.groups import Recipe

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


def _label(recipe: Recipe, others: list[Recipe]) -> str:
    """What sets a recipe apart from the other current recipes of its row: `batch_size=32`."""
    keys = [
        k
        for k in recipe.resolved
        if k not in ("seed", "device", "torch_threads")
        and len({json.dumps(o.resolved.get(k), sort_keys=True) for o in others}) > 1
    ]
    return ", ".join(f"{k}={json.dumps(recipe.resolved.get(k))}" for k in keys)


def toy_table(suite_dir: Path) -> str:
    """The Markdown table of the toy suite's finished runs beside the published figures.

    One row per task, split and model, from the runs of the recipe the current code trains
    (`cc_bench.report.groups.recipes`: resolved configs): finished runs of older recipes (a
    default changed since) are counted below the table, never pooled into a row. Where a
    task, split and model has several current recipes (launched with different `--set`
    values), each gets its own row, labelled by what differs.
    """
    from cc_bench.report.groups import recipes
    from cc_bench.report.runs import load_runs

    try:
        records = [r for r in load_runs(suite_dir) if r.benchmark in METRIC]
    except UserError:  # no runs yet
        records = []
    rows: dict[tuple[str, str, str], list[Recipe]] = defaultdict(list)
    older = 0
    for recipe in recipes(records):
        if recipe.current:
            rows[recipe.benchmark, recipe.resolved.get("split"), recipe.side].append(recipe)
        else:
            older += sum(r.status == FINISHED for r in recipe.runs)
    lines = [
        "| task | split | model | metric | ours: mean (min..max) | seeds | wall s (mean) | published |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for bench, split, conv in PUBLISHED:
        key = (bench, split, conv)
        metric = METRIC[bench]
        model = "CoordConv" if conv == "coordconv" else "conv baseline"
        for recipe in sorted(rows.get(key, []), key=lambda r: r.key) or [None]:
            runs = recipe.runs if recipe else []
            done = [r for r in runs if r.status == FINISHED]
            got = [float(r.summary[metric]) for r in done if r.summary.get(metric) is not None]
            times = [float(r.summary.get("wall_s") or 0.0) for r in done]
            if got:
                ours = f"{_fmt(metric, sum(got) / len(got))} ({_fmt(metric, min(got))}..{_fmt(metric, max(got))})"
                wall = f"{sum(times) / len(times):.0f}"
            else:
                ours, wall = "no finished run", "-"
            rest = len(runs) - len(done)
            seeds = f"{len(got)}" + (f" (+{rest} not finished)" if rest else "")
            label = _label(recipe, rows[key]) if recipe and len(rows[key]) > 1 else ""
            lines.append(
                f"| {bench.removeprefix('toy.')} | {split} | {model}{f' ({label})' if label else ''} "
                f"| {metric} | {ours} | {seeds} | {wall} | {PUBLISHED[key]} |"
            )
    if older:
        lines.append(
            f"\n{older} finished runs of older recipes (a default changed since they ran) are "
            "not in the table; `cc-bench status` lists them."
        )
    return "\n".join(lines) + "\n"


def write_table(suite_dir: Path) -> str:
    """Write `toy_table.md` into the suite's folder; returns what to print."""
    text = toy_table(suite_dir)
    path = Path(suite_dir) / "toy_table.md"
    path.write_text("# The toy tasks: ours beside the paper's\n\n" + text)
    return f"\n{text}\nwritten to {path}"
