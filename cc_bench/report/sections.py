"""What the report says: the overview, the aggregate across tasks, a section per group."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from cc_bench import stats
from cc_bench.errors import UserError
from cc_bench.report.document import Block, Figure, Section, Table, Text, to_html, to_markdown
from cc_bench.report.groups import Group, _status_rank, group_runs
from cc_bench.report.plots import plot_aggregate, plot_bars, plot_curves
from cc_bench.report.runs import LABELS, SIDES, RunRecord
from cc_bench.report.tables import (
    AggregateRow,
    _direction,
    _group_table,
    _interval,
    _slug,
    aggregate,
)

PICTURES_PER_SIDE = 2


def _pictures(group: Group, out_dir: Path) -> list[Figure]:
    """A few of the runs' own pictures: per side, the latest of each kind from one run."""
    figures = []
    for side in SIDES:
        runs = group.finished(side) or [r for r in group.runs if r.conv == side]
        run = next((r for r in runs if r.media), None)
        if run is None:
            continue
        latest: dict[str, tuple[int, Path]] = {}
        for path in run.media:
            kind, _, step = path.stem.rpartition("_")
            kind, step_n = (kind, int(step)) if step.isdigit() and kind else (path.stem, 0)
            if kind not in latest or step_n >= latest[kind][0]:
                latest[kind] = (step_n, path)
        for kind in sorted(latest)[:PICTURES_PER_SIDE]:
            src = latest[kind][1]
            if not src.is_file():
                continue
            dest = out_dir / "media" / _slug(group.name) / f"{side}_seed{run.seed}_{src.name}"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            figures.append(Figure(dest, f"{LABELS[side]}, seed {run.seed}: {kind}"))
    return figures


def group_section(group: Group, out_dir: Path | None) -> Section:
    """A group's section: its config, its runs' status, the table, curves, bars, pictures.

    Without `out_dir`, no plots or pictures (a W&B Report draws its own).
    """
    comparisons = {m: group.compare(m) for m in group.metrics()}
    blocks: list[Block] = [
        Text(f"Benchmark `{group.benchmark}`; config: `{group.shared_config() or '(defaults)'}`."),
        Text(f"Runs: {group.status_line()}. Only finished runs enter the statistics."),
    ]
    if not group.exact:
        blocks.append(
            Text(
                "This group is a hash of the stored config (its benchmark is unknown here or its "
                "config no longer builds), so per-conv defaults are not recognised."
            )
        )
    missing = [LABELS[s] for s in SIDES if not group.finished(s)]
    if missing:
        blocks.append(Text(f"No finished {' or '.join(missing)} runs: nothing to compare yet."))
    if comparisons:
        blocks.append(_group_table(comparisons))
    if out_dir is not None:
        blocks.extend(_group_figures(group, comparisons, out_dir))
    return Section(group.name, blocks, group)


def _group_figures(
    group: Group, comparisons: dict[str, stats.Comparison], out_dir: Path
) -> list[Figure]:
    slug = _slug(group.name)
    figures = []
    curves = plot_curves(group, out_dir / "plots" / f"{slug}_curves.png")
    if curves:
        figures.append(Figure(curves, "learning curves: median over seeds, interquartile band"))
    bars = plot_bars(group, comparisons, out_dir / "plots" / f"{slug}_final.png")
    if bars:
        figures.append(Figure(bars, "final metrics: mean and 95% bootstrap CI; dots are seeds"))
    return figures + _pictures(group, out_dir)


def aggregate_section(rows: Sequence[AggregateRow], out_dir: Path | None) -> Section:
    """The section across tasks: IQM with intervals and better / similar / worse counts."""
    blocks: list[Block] = [
        Text(
            "Each group is a task. Within a task, scores are min-max normalised over both sides' "
            "finished runs (0: its lowest run, 1: its highest); the interquartile mean (IQM) "
            "pools all tasks' runs, with a 95% stratified bootstrap interval (seeds resampled "
            "within each task). CoordConv is better or worse in a task when the 95% interval "
            "of its difference from conv excludes 0, similar when it contains 0, undecided "
            "without an interval (fewer than 2 seeds a side)."
        )
    ]
    if not rows:
        blocks.append(Text("No task has finished conv and CoordConv runs with a directed metric."))
        return Section("Across tasks", blocks)
    header = ["metric", "better", "tasks", "IQM conv [95% CI]", "IQM CoordConv [95% CI]"]
    header += ["CoordConv better", "similar", "worse", "undecided"]
    table_rows = [
        [r.metric, _direction(r.higher), str(r.tasks), _interval(r.iqm["conv"])]
        + [_interval(r.iqm["coordconv"])]
        + [str(r.counts[k]) for k in ("better", "similar", "worse", "undecided")]
        for r in rows
    ]
    blocks.append(Table(header, table_rows))
    plot = out_dir and plot_aggregate(rows, out_dir / "plots" / "aggregate_iqm.png")
    if plot:
        blocks.append(Figure(plot, "IQM of normalised scores across tasks, 95% CI"))
    return Section("Across tasks", blocks)


def _overview(records: Sequence[RunRecord], groups: Sequence[Group], source: str) -> Section:
    counts = {s: sum(r.status == s for r in records) for s in {r.status for r in records}}
    status = ", ".join(f"{counts[s]} {s}" for s in sorted(counts, key=_status_rank))
    method = (
        f"Per group: each side's mean over seeds with a 95% percentile bootstrap interval "
        f"({stats.N_RESAMPLES} resamples, seed {stats.SEED}); Δ = CoordConv − conv with a "
        "bootstrap interval resampling each side independently; the two-sided p-value of "
        "Welch's t-test. No interval or p-value (—) with fewer than 2 seeds a side; with "
        "few seeds the bootstrap interval is too narrow, so read it with the p-value and n. "
        "`better` says which way a metric is better (by its name; — if neither)."
    )
    return Section(
        "Overview",
        [
            Text(f"{len(records)} runs in {len(groups)} groups from `{source}`: {status}."),
            Text(method),
        ],
    )


def report_sections(
    records: Sequence[RunRecord], out_dir: Path | None, source: str = ""
) -> list[Section]:
    """The report's sections, writing their plots under `out_dir` (none without it)."""
    groups = group_runs(records)
    return [
        _overview(records, groups, source),
        aggregate_section(aggregate(groups), out_dir),
        *(group_section(g, out_dir) for g in groups),
    ]


DEFAULT_TITLE = "CoordConv against convolution"


def build_report(
    records: Sequence[RunRecord],
    out_dir: Path | str,
    *,
    title: str = DEFAULT_TITLE,
    source: str = "",
) -> Path:
    """Write `report.md`, `report.html` and their PNGs into `out_dir`; returns `report.md`'s path."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create report folder {out}: {exc.strerror or exc}") from None
    sections = report_sections(records, out, source)
    (out / "report.md").write_text(to_markdown(sections, title, out))
    (out / "report.html").write_text(to_html(sections, title))
    return out / "report.md"
