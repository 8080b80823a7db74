"""What the report says: the overview, the aggregate across tasks, a section per group.

The order: the overview (headline metrics per task first), "Across tasks" (headline metrics,
then the rest), the domains' own sections (`cc_bench.report.extras`), then one section per
group: what it trained with, its runs, its table, curves, final metrics and pictures.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

from cc_bench import stats
from cc_bench.errors import UserError
from cc_bench.report.document import (
    Block,
    Figure,
    FigureRow,
    Section,
    Table,
    Text,
    to_html,
    to_markdown,
    written_by_report,
)
from cc_bench.report.extras import extra_sections
from cc_bench.report.groups import Group, group_runs, status_rank
from cc_bench.report.plots import plot_aggregate, plot_bars, plot_curves
from cc_bench.report.runs import LABELS, SIDES, RunRecord
from cc_bench.report.tables import (
    AggregateRow,
    aggregate,
    aggregate_table,
    current,
    fmt_interval,
    group_table,
    slug,
    verdict_text,
)
from cc_bench.words import count

DEFAULT_TITLE = "CoordConv against convolution"
# Picture kinds (media keys) shown per group, each as conv beside CoordConv.
PICTURE_KINDS = 6


# -- a group ---------------------------------------------------------------------------------


def _latest_media(run: RunRecord) -> dict[str, tuple[int, Path]]:
    """A run's latest picture of each kind: `samples_200.png` is kind `samples`, step 200."""
    latest: dict[str, tuple[int, Path]] = {}
    for path in run.media:
        kind, _, step = path.stem.rpartition("_")
        kind, step_n = (kind, int(step)) if step.isdigit() and kind else (path.stem, 0)
        if kind not in latest or step_n >= latest[kind][0]:
            latest[kind] = (step_n, path)
    return latest


def pictures(group: Group, out_dir: Path) -> list[FigureRow]:
    """Per picture kind, conv's beside CoordConv's: the latest of the lowest seed that has it.

    Any benchmark that logs pictures (`tracker.log_image(key, ...)`) gets its samples
    compared side by side by key: a GAN's sample grids, a detector's boxes.
    """
    per_side: dict[str, list[tuple[RunRecord, dict[str, tuple[int, Path]]]]] = {}
    for side in SIDES:
        runs = group.finished(side) or [r for r in group.runs if r.conv == side]
        per_side[side] = [(r, _latest_media(r)) for r in runs if r.media]
    kinds = sorted({k for runs in per_side.values() for _, media in runs for k in media})
    rows = []
    for kind in kinds[:PICTURE_KINDS]:
        figures = []
        for side in SIDES:
            run, media = next(((r, m) for r, m in per_side[side] if kind in m), (None, {}))
            if run is None or not media[kind][1].is_file():
                continue
            step, src = media[kind]
            dest = out_dir / "media" / slug(group.title) / f"{side}_seed{run.seed}_{src.name}"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            figures.append(Figure(dest, f"{LABELS[side]}, seed {run.seed}, step {step}"))
        if figures:
            rows.append(FigureRow(kind, figures))
    return rows


def _group_figures(
    group: Group, comparisons: dict[str, stats.Comparison], out_dir: Path
) -> list[Block]:
    name = slug(group.title)
    blocks: list[Block] = []
    curves = plot_curves(group, out_dir / "plots" / f"{name}_curves.png")
    if curves:
        blocks.append(curves)
    bars = plot_bars(group, comparisons, out_dir / "plots" / f"{name}_final.png")
    if bars:
        blocks.append(Figure(bars, "final metrics: mean and 95% bootstrap CI; dots are seeds"))
    return blocks + pictures(group, out_dir)


def group_section(group: Group, out_dir: Path | None) -> Section:
    """A group's section: what it trained with, its runs' status, the table, curves, pictures.

    Without `out_dir`, no plots or pictures (a W&B Report draws its own).
    """
    comparisons = {m: group.compare(m) for m in group.metrics()}
    shared, per_side = group.trained_with()
    blocks: list[Block] = [
        Text(f"Benchmark `{group.benchmark}`, W&B group `{group.name}`."),
        Text(f"Trained with: {', '.join(shared) or '(nothing shared)'}."),
    ]
    if per_side:
        blocks.append(Text(f"Per side: {'; '.join(per_side)}."))
    blocks.extend(Text(f"Note: {note}") for note in group.notes)
    if not group.exact:
        blocks.append(
            Text(
                "Note: this group is a hash of the stored config: its benchmark is unknown here "
                "or its config no longer builds."
            )
        )
    if group.spec is None:
        blocks.append(
            Text(
                f"Note: `{group.benchmark}` is not registered here, so no metric has a declared "
                "direction: values are compared without verdicts."
            )
        )
    blocks.append(Text(f"Runs: {group.status_line()}. Only finished runs enter the statistics."))
    missing = [LABELS[s] for s in SIDES if not group.finished(s)]
    if missing:
        blocks.append(Text(f"No finished {' or '.join(missing)} runs: nothing to compare yet."))
    if comparisons:
        blocks.append(group_table(group, comparisons))
    if out_dir is not None:
        blocks.extend(_group_figures(group, comparisons, out_dir))
    return Section(group.title, blocks, group)


# -- across tasks ----------------------------------------------------------------------------


def aggregate_section(rows: Sequence[AggregateRow], out_dir: Path | None) -> Section:
    """The section across tasks: IQM with intervals and better / similar / worse counts,
    headline metrics first, the rest below."""
    blocks: list[Block] = [
        Text(
            "Each group is a task. Within a task, a metric's scores are normalised: by the "
            "benchmark's declared normaliser where it has one (`scores`: declared; Atari: "
            "(score − random) / (human − random)), else min-max over both sides' finished runs "
            "(0: the task's lowest run, 1: its highest). The interquartile mean (IQM) pools all "
            "tasks' runs, with a 95% stratified bootstrap interval (seeds resampled within "
            "each task). CoordConv is better or worse in a task when the 95% interval of its "
            "difference from conv excludes 0 and Welch's p < 0.05, similar otherwise, "
            "undecided without an interval (fewer than 2 seeds a side). Only metrics whose "
            "direction the benchmark declares are aggregated, and only current recipes are "
            "tasks (superseded groups are not)."
        )
    ]
    if not rows:
        blocks.append(Text("No task has finished conv and CoordConv runs with a directed metric."))
        return Section("Across tasks", blocks)
    headline = [r for r in rows if r.headline]
    rest = [r for r in rows if not r.headline]
    if headline:
        blocks += [Text("Headline metrics:"), aggregate_table(headline)]
    if rest:
        blocks += [Text("Other metrics:"), aggregate_table(rest)]
    plot = out_dir and plot_aggregate(rows, out_dir / "plots" / "aggregate_iqm.png")
    if plot:
        blocks.append(Figure(plot, "IQM of normalised scores across tasks, 95% CI"))
    return Section("Across tasks", blocks)


# -- the overview ----------------------------------------------------------------------------


def _headline_comparisons(
    groups: Sequence[Group],
) -> Iterator[tuple[Group, str, stats.Comparison | None]]:
    """(group, headline metric, comparison), the comparison None where no run has a value."""
    for g in groups:
        for metric in g.headline:
            cmp = g.compare(metric)
            yield g, metric, cmp if (cmp.n_a or cmp.n_b) else None


def _headline_table(groups: Sequence[Group]) -> Table | None:
    """One row per task and headline metric: each side's mean, the difference, the verdict."""
    rows = []
    for g, metric, cmp in _headline_comparisons(groups):
        if cmp is not None:
            rows.append(
                [
                    g.title,
                    metric,
                    g.direction(metric) or "not declared",
                    fmt_interval(cmp.b),
                    fmt_interval(cmp.a),
                    fmt_interval(cmp.diff, sign=True),
                    verdict_text(cmp, g.higher(metric)),
                ]
            )
    if not rows:
        return None
    header = ["task", "metric", "better", "conv", "CoordConv", "Δ CoordConv − conv"]
    return Table([*header, "CoordConv is"], rows)


def _overview(
    records: Sequence[RunRecord],
    groups: Sequence[Group],
    source: str,
) -> Section:
    counts = {s: sum(r.status == s for r in records) for s in {r.status for r in records}}
    status = ", ".join(f"{counts[s]} {s}" for s in sorted(counts, key=status_rank))
    codes = sorted({r.code for r in records})
    made = (
        f"all made by cc_bench {codes[0]}"
        if len(codes) == 1
        else f"made by {len(codes)} code versions (groups whose runs differ say so)"
    )
    machines = sorted({name for r in records for name in r.machines_used})
    if len(machines) == 1:
        made += f"; computed on {machines[0]}"
    elif 1 < len(machines) <= 3:  # named: often one CPU at different thread counts
        made += f"; computed on {' and on '.join(machines)} (groups whose runs differ say so)"
    elif machines:  # none: runs from W&B or older code, which keep no machine record
        made += f"; computed on {len(machines)} machines or thread counts (groups whose runs differ say so)"
    blocks: list[Block] = [
        Text(
            f"{count(len(records), 'run')} in {count(len(groups), 'group')} "
            f"from `{source}`: {status}; {made}."
        )
    ]
    # Counted over the directed rows of the table below, of tasks with runs of both sides.
    verdicts, undefined, missing = [], [], []
    for g, m, cmp in _headline_comparisons(current(groups)):
        if g.higher(m) is None or not (g.finished("conv") and g.finished("coordconv")):
            continue
        if cmp is None:
            undefined.append(f"`{m}` ({g.title})")
        elif cmp.missing:
            missing.append(f"`{m}` ({g.title})")
        else:
            verdicts.append(cmp.verdict(g.higher(m)))
    if verdicts:
        c = stats.count_verdicts(verdicts)
        text = (
            f"On the {len(verdicts)} directed headline metrics of tasks with runs of both "
            f"sides, CoordConv is better on {c['better']}, similar on {c['similar']}, worse on "
            f"{c['worse']}, undecided on {c['undecided']} (fewer than 2 seeds a side)."
        )
        if undefined:
            text += (
                " Undefined in every run of its task (left out): "
                f"{', '.join(sorted(set(undefined)))}."
            )
        if missing:
            text += (
                " Without a value in some finished runs (no verdict, left out): "
                f"{', '.join(sorted(set(missing)))}."
            )
        blocks.append(Text(text))
    table = _headline_table(current(groups))
    if table is not None:
        blocks += [Text("Headline metrics per task (means over seeds, 95% CI):"), table]
    unknown = sorted({g.benchmark for g in groups if g.spec is None})
    if unknown:
        blocks.append(
            Text(
                f"Note: {', '.join(f'`{b}`' for b in unknown)} not registered here: their "
                "metrics are shown without verdicts."
            )
        )
    blocks.append(
        Text(
            f"Method. Per group: each side's mean over seeds with a 95% percentile bootstrap "
            f"interval ({stats.N_RESAMPLES:,} resamples, seed {stats.SEED}); Δ = CoordConv − "
            "conv with a bootstrap interval resampling each side independently; the two-sided "
            "p-value of Welch's t-test. No interval or p-value (—) with fewer than 2 seeds a "
            "side; with few seeds the bootstrap interval is too narrow, so read it with the "
            "p-value and n. `better` is the direction the benchmark declares for the metric; "
            "a metric it does not declare (or `neither`) gets no verdict. CoordConv is better "
            "or worse only when the 95% interval of Δ excludes 0 and p < 0.05, similar "
            "otherwise, undecided without an interval. Runs are pooled only when they trained "
            "with the same resolved config; a superseded group (an older recipe of a config "
            "that the current code trains differently) is shown, but enters neither the "
            'verdicts above nor "Across tasks".'
        )
    )
    return Section("Overview", blocks)


# -- the report ------------------------------------------------------------------------------


def report_sections(
    records: Sequence[RunRecord], out_dir: Path | None, source: str = ""
) -> list[Section]:
    """The report's sections, writing their plots under `out_dir` (none without it)."""
    groups = group_runs(records)
    rows = aggregate(groups)
    return [
        _overview(records, groups, source),
        aggregate_section(rows, out_dir),
        *extra_sections(current(groups), out_dir),
        *(group_section(g, out_dir) for g in groups),
    ]


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
    for name in ("report.md", "report.html"):
        if (out / name).is_file() and not written_by_report(out / name):
            raise UserError(
                f"{out / name} is not a report cc-bench wrote: give another --out, or move "
                "it away (it is left as it is)"
            )
    sections = report_sections(records, out, source)
    (out / "report.md").write_text(to_markdown(sections, title, out))
    (out / "report.html").write_text(to_html(sections, title))
    return out / "report.md"
