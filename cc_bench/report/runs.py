"""Reading runs for a report: run folders, or a W&B project through its public API."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cc_bench.errors import UserError
from cc_bench.rundir import is_locked, left_out_note, read_json, run_folders, run_meta
from cc_bench.words import count

SIDES = ("conv", "coordconv")
LABELS = {"conv": "conv", "coordconv": "CoordConv"}
STATUS_ORDER = ("finished", "running", "unfinished", "failed")
HISTORY_SKIP = frozenset({"step", "time"})
# Keys the Tracker adds to a W&B run's config besides the benchmark's config fields.
_WANDB_META_KEYS = frozenset(
    {
        "benchmark",
        "run_id",
        "suite",
        "version",
        "git_commit",
        "wandb_id",
        "created",
        "resolved",
        "resumed_with",
        "machines",
        "given",
    }
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
        resolved: the config the run trained with (`config.json`'s `resolved`: per-conv
            defaults applied); the given config where a run has none.
        version: the cc_bench version that made the run.
        git_commit: the commit of the code that made the run (`-dirty` with local changes).
        created: when the run was first started (ISO 8601), for ordering recipes.
        wall_s: the wall seconds the run trained (finished runs).
        resumed_with: the code that resumed the run, where it was not the code that started
            it (`config.json`'s `resumed_with`: version and git commit per resume).
        machines: where each attempt computed (`config.json`'s `machines`: CPU, threads,
            device, GPU), first start first.
        given: the fields its command line or suite set (`config.json`'s `given`); None
            where not recorded (every field then counts as given).
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
    resolved: dict[str, Any] = field(default_factory=dict)
    version: str | None = None
    git_commit: str | None = None
    created: str = ""
    wall_s: float | None = None
    resumed_with: list[dict[str, Any]] = field(default_factory=list)
    machines: list[dict[str, Any]] = field(default_factory=list)
    given: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not self.resolved:
            self.resolved = dict(self.config)

    @property
    def code(self) -> str:
        """The code that made the run: `0.1.0 at 1a2b3c4d5e6f` (`0.1.0 at an unknown commit`
        outside a git checkout), and `0.1.0 at 1a2b3c4d5e6f, resumed by 0.2.0 at 0f9e8d7c6b5a`
        for a mixed-version run."""
        first = _code(self.version, self.git_commit)
        later = dict.fromkeys(
            c
            for r in self.resumed_with
            if (c := _code(r.get("version"), r.get("git_commit"))) != first
        )
        return first + (f", resumed by {', '.join(later)}" if later else "")

    @property
    def machines_used(self) -> list[str]:
        """Each machine the run computed on, as speed depends on it, first start first:
        `AMD EPYC (family 25 model 1, 2 logical CPUs), 2 threads` or `cuda:0 (NVIDIA H200)`;
        none for a run that predates the record."""
        return list(dict.fromkeys(_machine(m) for m in self.machines))

    @property
    def mixed_code(self) -> bool:
        """Whether code other than the one that started the run resumed it."""
        return self.code != _code(self.version, self.git_commit)

    @property
    def conv(self) -> str:
        """`conv` or `coordconv`."""
        return str(self.config.get("conv", "?"))

    @property
    def seed(self) -> Any:
        """The run's seed."""
        return self.config.get("seed")


def _machine(record: dict[str, Any]) -> str:
    """One attempt's machine: the GPU it trained on, else the CPU and torch's threads."""
    device = str(record.get("device", "cpu"))
    if record.get("gpu"):
        return f"{device} ({record['gpu']})"
    threads = record.get("threads", "?")
    cpu = f"{record.get('cpu', 'an unknown CPU')}, {count(threads, 'thread')}"
    return cpu if device == "cpu" else f"{device} on {cpu}"


def _code(version: str | None, commit: str | None) -> str:
    if not commit:  # not made from a git checkout (an installed wheel, a copied tree)
        return f"{version or '?'} at an unknown commit"
    short = commit[:12] + ("-dirty" if commit.endswith("-dirty") else "")
    return f"{version or '?'} at {short}"


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
    meta = run_meta(run_dir)
    if meta is None:
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
        summary=_object(summary.get("metrics")) if status == "finished" else {},
        media=sorted((run_dir / "media").glob("*.png")),
        error=summary.get("error") if status == "failed" else None,
        source=str(run_dir),
        resolved=_object(meta.get("resolved")) or dict(meta["config"]),
        version=meta.get("version"),
        git_commit=meta.get("git_commit"),
        created=str(meta.get("created") or ""),
        wall_s=_wall_s(summary),
        resumed_with=_objects(meta.get("resumed_with")),
        machines=_objects(meta.get("machines")),
        given=tuple(str(k) for k in given)
        if isinstance(given := meta.get("given"), list)
        else None,
    )


def _object(value: Any) -> dict[str, Any]:
    """A field that should hold a JSON object: a copy of it, or {} (a damaged file)."""
    return dict(value) if isinstance(value, dict) else {}


def _objects(value: Any) -> list[dict[str, Any]]:
    """A field that should hold a list of JSON objects: the objects in it (a damaged file)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _wall_s(summary: dict[str, Any]) -> float | None:
    """A summary's wall seconds: its own `wall_s`, else the metric of that name."""
    value = summary.get("wall_s", _object(summary.get("metrics")).get("wall_s"))
    return float(value) if is_number(value) else None


def load_runs(runs_dir: Path | str) -> list[RunRecord]:
    """Every run under `runs_dir` (a runs folder, a suite's or a benchmark's folder, or a run).

    Raises UserError if the folder does not exist or holds no runs.
    """
    root = Path(runs_dir)
    if not root.exists():
        raise UserError(f"runs folder {root} does not exist")
    if not root.is_dir():
        raise UserError(f"{root} is not a folder; give the runs folder (for example ./runs)")
    records: list[RunRecord] = []
    left_out: list[Path] = []
    for run_dir in run_folders(root):
        record = read_run_folder(run_dir)
        if record is None:
            left_out.append(run_dir)
        else:
            records.append(record)
    if left_out:
        print(left_out_note(left_out), file=sys.stderr)
    if not records:
        raise UserError(
            f"no runs in {root}: a run folder holds a config.json (start runs with `cc-bench run`)"
        )
    return records


# -- W&B runs --------------------------------------------------------------------------------


def split_project(path: str) -> tuple[str, str]:
    entity, _, project = path.partition("/")
    if not entity or not project or "/" in project:
        raise UserError(f"expected ENTITY/PROJECT, got {path!r}")
    return entity, project


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def is_number(value: Any) -> bool:
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
        print(f"warning: no pictures of W&B run {run.id}: {first_line(exc)}", file=sys.stderr)
    return sorted(paths)


def wandb_record(run: Any, media_dir: Path | None = None) -> RunRecord | None:
    """A W&B public-API run as a record; None if it is not a cc-bench run.

    The Tracker stores the config with a few extra keys (benchmark, run id, suite, version),
    the final metrics and `status` in the summary, and the history with a `step` metric.
    The summary's `final_metrics` names the run's final metrics; the rest of it is W&B's
    last logged values. For a run from before that key, keys without a `/` count as final.
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
            if is_number(v) and not k.startswith("_") and k not in HISTORY_SKIP
        }
        step = row.get("step", row.get("_step"))
        if values and is_number(step):
            if is_number(row.get("_timestamp")):
                values["time"] = float(row["_timestamp"])  # the local files' `time`
            history.append({"step": step, **values})
    final = summary.get("final_metrics")  # the run's own metrics, where the Tracker said
    metrics = {
        k: v
        for k, v in summary.items()
        if (k in final if isinstance(final, list) else "/" not in k and not k.startswith("_"))
        and k not in ("status", "step", "final_metrics")
        if v is None or is_number(v)
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
        resolved=dict(raw.get("resolved") or config),
        version=raw.get("version"),
        git_commit=raw.get("git_commit"),
        created=str(getattr(run, "created_at", "") or raw.get("created") or ""),
        wall_s=_wall_s(summary) if status == "finished" else None,
        resumed_with=list(raw.get("resumed_with") or []),
        machines=list(raw.get("machines") or []),
        given=tuple(str(k) for k in given) if isinstance(given := raw.get("given"), list) else None,
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
    split_project(path)
    try:
        if api is None:
            import wandb

            api = wandb.Api(timeout=30)
        runs = api.runs(path, filters=filters or {})
        records = [r for r in (wandb_record(run, media_dir) for run in runs) if r is not None]
    except Exception as exc:
        raise UserError(f"cannot read W&B project {path}: {first_line(exc)}") from None
    if not records:
        which = f" matching {json.dumps(filters)}" if filters else ""
        raise UserError(f"no cc-bench runs in W&B project {path}{which}")
    return records
