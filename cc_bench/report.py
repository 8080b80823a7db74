"""Comparison reports: CoordConv against plain convolution, from run folders or a W&B project.

Runs that differ only in conv and seed form a group (`cc_bench.config.group_name`); each
group compares conv with CoordConv on every final metric (mean and 95% bootstrap interval
over seeds, the difference with its interval, Welch's p), and an aggregate across tasks
gives the interquartile mean and counts of tasks where CoordConv is better, similar or
worse, as the paper's Atari figure does (Liu et al. 2018, section 6). Only finished runs
enter the statistics; running, unfinished and failed runs are listed per group.

The report is `report.md` (Markdown tables, PNGs in `plots/` and `media/`) and
`report.html`, one self-contained file with every image embedded; `--wandb-report` also
builds a W&B Report with `wandb-workspaces`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import math
import re
import shutil
import sys
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cc_bench import stats
from cc_bench.config import NON_IDENTITY_FIELDS, config_from_dict, group_name
from cc_bench.errors import UserError
from cc_bench.rundir import is_locked, read_json, run_folders

SIDES = ("conv", "coordconv")
LABELS = {"conv": "conv", "coordconv": "CoordConv"}
# One colour per side, the same in every plot of a report.
COLORS = {"conv": "#4c72b0", "coordconv": "#dd8452"}
STATUS_ORDER = ("finished", "running", "unfinished", "failed")
PICTURES_PER_SIDE = 2
HISTORY_SKIP = frozenset({"step", "time"})
# Keys the Tracker adds to a W&B run's config besides the benchmark's config fields.
_WANDB_META_KEYS = frozenset(
    {"benchmark", "run_id", "suite", "version", "git_commit", "wandb_id", "created", "resolved"}
)
_WANDB_STATES = {"running": "running", "failed": "failed", "crashed": "failed"}


# -- runs ------------------------------------------------------------------------------------


@dataclass
class RunRecord:
    """One run as a report sees it, read from its folder or from W&B.

    Args:
        benchmark: the benchmark's registered name.
        run_id: the run's id (its folder name).
        config: the benchmark's config fields (conv and seed included).
        status: finished, failed, running (a process holds it now) or unfinished.
        history: the logged metrics, one dict per step (`step` included).
        summary: the final metrics of a finished run (None where a metric has no value).
        media: the run's pictures (PNG files).
        error: why a failed run failed.
        source: the run folder or the W&B run's URL.
    """

    benchmark: str
    run_id: str
    config: dict[str, Any]
    status: str
    history: list[dict[str, float]] = field(default_factory=list)
    summary: dict[str, float | None] = field(default_factory=dict)
    media: list[Path] = field(default_factory=list)
    error: str | None = None
    source: str = ""

    @property
    def conv(self) -> str:
        """`conv` or `coordconv`."""
        return str(self.config.get("conv", "?"))

    @property
    def seed(self) -> Any:
        """The run's seed."""
        return self.config.get("seed")


def _read_history(path: Path) -> list[dict[str, float]]:
    """The rows of `metrics.jsonl`; a line cut short by a live writer is skipped."""
    rows = []
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return rows
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and "step" in row:
            rows.append(row)
    return rows


def read_run_folder(run_dir: Path) -> RunRecord | None:
    """A run folder as a record; None if its `config.json` is not a cc-bench run's."""
    meta = read_json(run_dir / "config.json")
    if not isinstance(meta, dict) or "benchmark" not in meta or "config" not in meta:
        return None
    summary = read_json(run_dir / "summary.json")
    if is_locked(run_dir):
        status = "running"  # a failed run being retried has a stale summary
    elif isinstance(summary, dict):
        status = str(summary.get("status", "unfinished"))
    else:
        status = "unfinished"
    summary = summary if isinstance(summary, dict) else {}
    return RunRecord(
        benchmark=str(meta["benchmark"]),
        run_id=str(meta.get("run_id", run_dir.name)),
        config=dict(meta["config"]),
        status=status,
        history=_read_history(run_dir / "metrics.jsonl"),
        summary=dict(summary.get("metrics") or {}) if status == "finished" else {},
        media=sorted((run_dir / "media").glob("*.png")),
        error=summary.get("error") if status == "failed" else None,
        source=str(run_dir),
    )


def load_runs(runs_dir: Path | str) -> list[RunRecord]:
    """Every run under `runs_dir` (a runs folder, a suite's or a benchmark's folder, or a run).

    Raises UserError if the folder does not exist or holds no runs.
    """
    root = Path(runs_dir)
    if not root.exists():
        raise UserError(f"runs folder {root} does not exist")
    if not root.is_dir():
        raise UserError(f"{root} is not a folder; give the runs folder (for example ./runs)")
    records = [r for r in map(read_run_folder, run_folders(root)) if r is not None]
    if not records:
        raise UserError(
            f"no runs in {root}: a run folder holds a config.json (start runs with `cc-bench run`)"
        )
    return records


# -- W&B runs --------------------------------------------------------------------------------


def _split_project(path: str) -> tuple[str, str]:
    entity, _, project = path.partition("/")
    if not entity or not project or "/" in project:
        raise UserError(f"expected ENTITY/PROJECT, got {path!r}")
    return entity, project


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _wandb_media(run: Any, media_dir: Path | None) -> list[Path]:
    """Download a W&B run's PNG files into `media_dir/<run id>/` (none without a folder)."""
    if media_dir is None:
        return []
    paths = []
    try:
        for file in run.files(pattern="%.png"):
            file.download(root=str(media_dir / run.id), replace=True)
            paths.append(media_dir / run.id / file.name)
    except Exception as exc:  # pictures are a nicety: the report goes on without them
        print(f"warning: no pictures of W&B run {run.id}: {_first_line(exc)}", file=sys.stderr)
    return sorted(paths)


def wandb_record(run: Any, media_dir: Path | None = None) -> RunRecord | None:
    """A W&B public-API run as a record; None if it is not a cc-bench run.

    The Tracker stores the config with a few extra keys (benchmark, run id, suite, version),
    the final metrics and `status` in the summary, and the history with a `step` metric.
    Summary keys with a `/` are W&B's last logged values, not final metrics, and are left out.
    """
    raw = dict(run.config)
    if "benchmark" not in raw:
        return None
    config = {k: v for k, v in raw.items() if k not in _WANDB_META_KEYS and not k.startswith("_")}
    summary = dict(run.summary_metrics)
    status = summary.get("status") or _WANDB_STATES.get(run.state, "unfinished")
    if run.state == "running":
        status = "running"
    history = []
    for row in run.scan_history():
        values = {
            k: float(v)
            for k, v in row.items()
            if _is_number(v) and not k.startswith("_") and k not in HISTORY_SKIP
        }
        step = row.get("step", row.get("_step"))
        if values and _is_number(step):
            history.append({"step": step, **values})
    metrics = {
        k: v
        for k, v in summary.items()
        if "/" not in k and not k.startswith("_") and k not in ("status", "step")
        if v is None or _is_number(v)
    }
    return RunRecord(
        benchmark=str(raw["benchmark"]),
        run_id=str(raw.get("run_id") or run.id),
        config=config,
        status=str(status),
        history=history,
        summary=metrics if status == "finished" else {},
        media=_wandb_media(run, media_dir),
        source=str(getattr(run, "url", run.id)),
    )


def load_wandb_runs(
    path: str,
    filters: dict[str, Any] | None = None,
    *,
    media_dir: Path | None = None,
    api: Any = None,
) -> list[RunRecord]:
    """The cc-bench runs of the W&B project `ENTITY/PROJECT`, through W&B's public API.

    Args:
        path: "ENTITY/PROJECT".
        filters: a W&B (MongoDB-style) runs filter, e.g. {"config.benchmark": "toy.classification"}.
        media_dir: where to download the runs' pictures (none are downloaded without it).
        api: a `wandb.Api()` to use (by default a new one).

    Raises UserError if the project cannot be reached (offline, no API key) or holds no runs.
    """
    _split_project(path)
    try:
        if api is None:
            import wandb

            api = wandb.Api(timeout=30)
        runs = api.runs(path, filters=filters or {})
        records = [r for r in (wandb_record(run, media_dir) for run in runs) if r is not None]
    except Exception as exc:
        raise UserError(f"cannot read W&B project {path}: {_first_line(exc)}") from None
    if not records:
        which = f" matching {json.dumps(filters)}" if filters else ""
        raise UserError(f"no cc-bench runs in W&B project {path}{which}")
    return records


# -- groups ----------------------------------------------------------------------------------


def _config_cls(benchmark: str) -> type | None:
    from cc_bench.registry import get_benchmark

    try:
        return get_benchmark(benchmark).config_cls
    except UserError:
        return None


def group_key(benchmark: str, config: dict[str, Any]) -> tuple[str, bool]:
    """The group of a run and whether it is exact.

    Exact: `group_name` of the config rebuilt with the benchmark's config class, so per-conv
    defaults count as "default". If the benchmark is unknown here or its config no longer
    builds, a hash of the config without conv, seed and device (per-conv defaults then split
    conv from CoordConv when they differ).
    """
    cls = _config_cls(benchmark)
    if cls is not None:
        try:
            return group_name(benchmark, config_from_dict(cls, config)), True
        except (UserError, TypeError, ValueError):
            pass
    values = {k: v for k, v in config.items() if k not in NON_IDENTITY_FIELDS | {"conv", "seed"}}
    text = json.dumps({"benchmark": benchmark, "config": values}, sort_keys=True, default=str)
    return f"{benchmark}-{hashlib.sha1(text.encode()).hexdigest()[:8]}", False


@dataclass
class Group:
    """Runs of one benchmark whose configs differ only in conv and seed."""

    name: str
    benchmark: str
    runs: list[RunRecord]
    exact: bool = True

    def finished(self, side: str) -> list[RunRecord]:
        """The finished runs of one side (`conv` or `coordconv`), by seed."""
        return [r for r in self.runs if r.conv == side and r.status == "finished"]

    def values(self, side: str, metric: str) -> list[float | None]:
        """One side's final values of `metric`, one per finished run."""
        return [r.summary.get(metric) for r in self.finished(side)]

    def metrics(self) -> list[str]:
        """The final metrics with a number in some finished run, sorted."""
        names = {
            k
            for side in SIDES
            for r in self.finished(side)
            for k, v in r.summary.items()
            if _is_number(v)
        }
        return sorted(names)

    def curve_metrics(self) -> list[str]:
        """The logged metrics of the finished runs, in the order first logged."""
        names: dict[str, None] = {}
        for side in SIDES:
            for r in self.finished(side):
                for row in r.history:
                    names.update((k, None) for k in row if k not in HISTORY_SKIP)
        return list(names)

    def compare(self, metric: str) -> stats.Comparison:
        """CoordConv against conv on `metric` (the difference is CoordConv - conv)."""
        return stats.compare(self.values("coordconv", metric), self.values("conv", metric))

    def shared_config(self) -> str:
        """The config fields apart from conv, seed and device; per-side values where they differ."""
        skip = NON_IDENTITY_FIELDS | {"conv", "seed"}
        keys = dict.fromkeys(k for r in self.runs for k in r.config if k not in skip)
        parts = []
        for key in keys:
            per_side = {
                side: {json.dumps(r.config.get(key)) for r in self.runs if r.conv == side}
                for side in SIDES
            }
            every = set().union(*per_side.values())
            if len(every) == 1:
                parts.append(f"{key}={every.pop()}")
            else:
                shown = " / ".join(
                    f"{LABELS[s]}: {', '.join(sorted(v))}" for s, v in per_side.items() if v
                )
                parts.append(f"{key}=({shown})")
        return ", ".join(parts)

    def status_line(self) -> str:
        """How many runs are finished, running, unfinished and failed, with their seeds."""
        parts = []
        for status in sorted({r.status for r in self.runs}, key=_status_rank):
            runs = [r for r in self.runs if r.status == status]
            parts.append(f"{len(runs)} {status} ({_describe(runs)})")
        return ", ".join(parts)


def _describe(runs: Sequence[RunRecord]) -> str:
    """`conv seeds 0, 1; CoordConv seed 0`, or per run with its error where there is one."""
    if any(r.error for r in runs):
        return "; ".join(
            f"{LABELS.get(r.conv, r.conv)} seed {r.seed}" + (f": {r.error}" if r.error else "")
            for r in runs
        )
    seeds: dict[str, list[str]] = {}
    for r in runs:
        seeds.setdefault(LABELS.get(r.conv, r.conv), []).append(str(r.seed))
    return "; ".join(
        f"{side} seed{'s' if len(s) > 1 else ''} {', '.join(s)}" for side, s in seeds.items()
    )


def _status_rank(status: str) -> int:
    return STATUS_ORDER.index(status) if status in STATUS_ORDER else len(STATUS_ORDER)


def group_runs(records: Iterable[RunRecord]) -> list[Group]:
    """Records grouped by benchmark and config apart from conv and seed, sorted by name."""
    groups: dict[str, Group] = {}
    for record in records:
        name, exact = group_key(record.benchmark, record.config)
        group = groups.setdefault(name, Group(name, record.benchmark, [], exact))
        group.runs.append(record)
    for group in groups.values():
        group.runs.sort(key=lambda r: (r.conv, str(r.seed), r.run_id))
    return [groups[name] for name in sorted(groups)]


# -- the aggregate across tasks --------------------------------------------------------------


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


# -- plots (matplotlib's object API: no pyplot state, no backend switch) -------------------


def _figure(n_panels: int, width: float = 3.8, height: float = 2.9) -> tuple[Any, list[Any]]:
    from matplotlib.figure import Figure as MplFigure

    cols = min(3, n_panels)
    rows = math.ceil(n_panels / cols)
    fig = MplFigure(figsize=(width * cols, height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def _curve(runs: Sequence[RunRecord], metric: str) -> tuple[Any, Any, Any, Any] | None:
    """Steps and the median, 25th and 75th percentiles over runs (missing steps ignored)."""
    import numpy as np

    steps = sorted({row["step"] for r in runs for row in r.history if metric in row})
    if not steps:
        return None
    where = {s: i for i, s in enumerate(steps)}
    grid = np.full((len(runs), len(steps)), np.nan)  # (runs, steps)
    for i, run in enumerate(runs):
        for row in run.history:
            if metric in row and _is_number(row[metric]):
                grid[i, where[row["step"]]] = row[metric]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a step no run reached is all-NaN
        q25, median, q75 = np.nanpercentile(grid, [25, 50, 75], axis=0)
    return np.array(steps), median, q25, q75


def plot_curves(group: Group, path: Path) -> Path | None:
    """Learning curves of every logged metric: median over seeds and the interquartile band."""
    metrics = group.curve_metrics()
    if not metrics:
        return None
    fig, axes = _figure(len(metrics))
    for ax, metric in zip(axes, metrics, strict=True):
        for side in SIDES:
            runs = group.finished(side)
            curve = _curve(runs, metric)
            if curve is None:
                continue
            steps, median, q25, q75 = curve
            label = f"{LABELS[side]} (n={len(runs)})"
            ax.plot(steps, median, color=COLORS[side], label=label)
            ax.fill_between(steps, q25, q75, color=COLORS[side], alpha=0.25, linewidth=0)
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return _save(fig, path)


def plot_bars(group: Group, comparisons: dict[str, stats.Comparison], path: Path) -> Path | None:
    """Final metrics: each side's mean with its 95% interval, and every seed as a dot."""
    metrics = [m for m, c in comparisons.items() if c.n_a or c.n_b]
    if not metrics:
        return None
    fig, axes = _figure(len(metrics), width=2.6)
    for ax, metric in zip(axes, metrics, strict=True):
        cmp = comparisons[metric]
        for x, (side, ci) in enumerate((("conv", cmp.b), ("coordconv", cmp.a))):
            if math.isnan(ci.estimate):
                continue
            err = [[ci.estimate - ci.low], [ci.high - ci.estimate]] if ci.defined else None
            ax.bar(x, ci.estimate, color=COLORS[side], alpha=0.8, yerr=err, capsize=4)
            seeds = stats.sample(group.values(side, metric))
            ax.scatter([x] * len(seeds), seeds, color="black", s=10, zorder=3)
        ax.set_xticks([0, 1], [LABELS[s] for s in SIDES])
        ax.set_title(metric, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_aggregate(rows: Sequence[AggregateRow], path: Path) -> Path | None:
    """Each side's IQM of normalised scores with its 95% interval, one row per metric."""
    if not rows:
        return None
    fig, (ax,) = _figure(1, width=6.0, height=0.5 + 0.55 * len(rows))
    for offset, side in ((-0.15, "conv"), (0.15, "coordconv")):
        ys = [i + offset for i in range(len(rows))]
        est = [r.iqm[side].estimate for r in rows]
        err = [
            [r.iqm[side].estimate - r.iqm[side].low if r.iqm[side].defined else 0 for r in rows],
            [r.iqm[side].high - r.iqm[side].estimate if r.iqm[side].defined else 0 for r in rows],
        ]
        ax.errorbar(est, ys, xerr=err, fmt="o", color=COLORS[side], capsize=3, label=LABELS[side])
    ax.set_yticks(range(len(rows)), [f"{r.metric} ({_direction(r.higher)})" for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel("IQM of normalised score (0: task's lowest run, 1: highest)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


# -- the document: sections of blocks, rendered to Markdown, HTML and a W&B Report ---------


@dataclass(frozen=True)
class Text:
    """A paragraph; `backticks` mark code."""

    text: str


@dataclass(frozen=True)
class Table:
    """A table of strings."""

    header: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Figure:
    """A PNG in the report folder."""

    path: Path
    caption: str


Block = Text | Table | Figure


@dataclass
class Section:
    """A titled part of the report; a group's section also carries the group (for W&B panels)."""

    title: str
    blocks: list[Block]
    group: Group | None = None


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


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table(table: Table) -> str:
    """A table in Markdown (GitHub's pipe tables)."""
    lines = [
        "| " + " | ".join(map(_md_cell, table.header)) + " |",
        "|" + "---|" * len(table.header),
        *("| " + " | ".join(map(_md_cell, row)) + " |" for row in table.rows),
    ]
    return "\n".join(lines)


def to_markdown(sections: Sequence[Section], title: str, out_dir: Path) -> str:
    """The report as Markdown, images linked relative to `out_dir`."""
    parts = [f"# {title}"]
    for section in sections:
        parts.append(f"## {section.title}")
        for block in section.blocks:
            if isinstance(block, Text):
                parts.append(block.text)
            elif isinstance(block, Table):
                parts.append(markdown_table(block))
            else:
                link = block.path.relative_to(out_dir).as_posix()
                parts.append(f"![{block.caption}]({link})")
    return "\n\n".join(parts) + "\n"


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em;
       color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }
th { background: #f3f3f3; }
code { background: #f3f3f3; padding: 0 0.2em; }
figure { margin: 1em 0; } img { max-width: 100%; }
figcaption { font-size: 0.85em; color: #555; }
"""


def _html_text(text: str) -> str:
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(text))


def _html_block(block: Block) -> str:
    if isinstance(block, Text):
        return f"<p>{_html_text(block.text)}</p>"
    if isinstance(block, Table):
        head = "".join(f"<th>{html.escape(h)}</th>" for h in block.header)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
            for row in block.rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    data = base64.b64encode(block.path.read_bytes()).decode("ascii")
    caption = html.escape(block.caption)
    return (
        f'<figure><img alt="{caption}" src="data:image/png;base64,{data}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def to_html(sections: Sequence[Section], title: str) -> str:
    """The report as one self-contained HTML page: inline CSS, images as data URIs."""
    body = [f"<h1>{html.escape(title)}</h1>"]
    for section in sections:
        body.append(f"<h2>{html.escape(section.title)}</h2>")
        body.extend(_html_block(b) for b in section.blocks)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


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


# -- the W&B Report --------------------------------------------------------------------------


def _wandb_reports() -> Any:
    try:
        import wandb_workspaces.reports.v2 as wr
    except ImportError:
        raise UserError(
            "--wandb-report needs wandb-workspaces: pip install wandb-workspaces"
        ) from None
    return wr


def wandb_report(
    records: Sequence[RunRecord], path: str, *, title: str = DEFAULT_TITLE, source: str = ""
) -> Any:
    """A W&B Report (`wandb_workspaces.reports.v2.Report`) of the runs, not saved.

    The same text and tables as the local report; per group, a panel grid whose runset holds
    the group's finished W&B runs grouped by conv, with line plots of the mean over seeds
    and a standard-deviation band for every logged metric.
    """
    wr = _wandb_reports()
    from wandb_workspaces import expr

    entity, project = _split_project(path)
    sections = report_sections(records, None, source)  # no local plots in a W&B Report
    blocks: list[Any] = []
    for section in sections:
        blocks.append(wr.H2(section.title))
        for block in section.blocks:
            if isinstance(block, Text):
                blocks.append(wr.MarkdownBlock(text=block.text))
            elif isinstance(block, Table):
                blocks.append(wr.MarkdownBlock(text=markdown_table(block)))
        if section.group is not None:
            blocks.append(_panel_grid(wr, expr, section.group, entity, project))
    return wr.Report(
        entity=entity, project=project, title=title[:128], description=source, blocks=blocks
    )


def _panel_grid(wr: Any, expr: Any, group: Group, entity: str, project: str) -> Any:
    runset = wr.Runset(
        entity=entity,
        project=project,
        name=group.name,
        filters=expr.And(expr.Metric("Group") == group.name, expr.Metric("State") == "finished"),
        groupby=["config.conv"],
    )
    panels = [
        wr.LinePlot(
            title=metric,
            x="step",
            y=[metric],
            groupby=wr.Config("conv"),
            groupby_aggfunc="mean",
            groupby_rangefunc="stddev",
        )
        for metric in group.curve_metrics()
    ]
    return wr.PanelGrid(runsets=[runset], panels=panels)


def save_wandb_report(report: Any) -> str | None:
    """Save a W&B Report when W&B is online; returns its URL (None when offline)."""
    from cc_bench.tracking import wandb_mode

    if wandb_mode() != "online":
        return None
    try:
        report.save()
        return str(report.url)
    except Exception as exc:
        raise UserError(f"could not save the W&B Report: {_first_line(exc)}") from None


# -- the command line ------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    from cc_bench.cli import ArgumentParser

    parser = ArgumentParser(
        prog="cc-bench report",
        description="Compare conv with CoordConv: tables with 95% bootstrap intervals, "
        "learning curves and pictures, as report.md and a self-contained report.html.",
    )
    parser.add_argument("runs_dir", nargs="?", metavar="RUNS_DIR", help="a folder of runs")
    parser.add_argument(
        "--wandb", metavar="ENTITY/PROJECT", help="read the runs from W&B instead (online)"
    )
    parser.add_argument(
        "--filters",
        metavar="JSON",
        help='W&B runs filter (with --wandb), e.g. \'{"config.benchmark": "toy.classification"}\'',
    )
    parser.add_argument(
        "--out", metavar="DIR", help="report folder (default: RUNS_DIR/report, or ./report)"
    )
    parser.add_argument(
        "--wandb-report",
        metavar="ENTITY/PROJECT",
        help="also build a W&B Report there (wandb-workspaces; saved when online)",
    )
    parser.add_argument("--title", default=DEFAULT_TITLE, help="the report's title")
    return parser


def _parse_filters(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        filters = json.loads(text)
    except ValueError as exc:
        raise UserError(f"--filters is not JSON: {exc}") from None
    if not isinstance(filters, dict):
        raise UserError('--filters must be a JSON object, e.g. {"config.conv": "coordconv"}')
    return filters


def _run(argv: Sequence[str]) -> int:
    opts = _parser().parse_args(list(argv))
    if (opts.runs_dir is None) == (opts.wandb is None):
        raise UserError("give either RUNS_DIR or --wandb ENTITY/PROJECT (one of them)")
    filters = _parse_filters(opts.filters)
    if filters is not None and opts.wandb is None:
        raise UserError("--filters works with --wandb only")
    if opts.wandb_report:
        _split_project(opts.wandb_report)
        _wandb_reports()  # fail before the work if the package is missing
    if opts.wandb:
        out = Path(opts.out or "report")
        records = load_wandb_runs(opts.wandb, filters, media_dir=out / "wandb-media")
        source = f"wandb:{opts.wandb}"
    else:
        out = Path(opts.out) if opts.out else Path(opts.runs_dir) / "report"
        records = load_runs(opts.runs_dir)
        source = str(opts.runs_dir)
    path = build_report(records, out, title=opts.title, source=source)
    print(f"report: {path}")
    print(f"report: {path.with_name('report.html')}")
    if opts.wandb_report:
        report = wandb_report(records, opts.wandb_report, title=opts.title, source=source)
        url = save_wandb_report(report)
        print(f"W&B Report: {url}" if url else "W&B Report built, not saved: W&B is offline")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`cc-bench report`: returns the exit code (2 with one line on bad input)."""
    try:
        return _run(sys.argv[1:] if argv is None else argv)
    except UserError as exc:
        print(f"cc-bench: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
