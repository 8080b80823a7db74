"""Running one benchmark config as a run: its folder, skip / resume / fresh, and its summary.

A run's folder is `RUNS_DIR/<suite>/<benchmark>/<run id>/`; the id comes from the benchmark
and its config, so the same command finds the same folder: a finished run is skipped, an
unfinished (or failed) one resumes from its last checkpoint, and `fresh=True` moves the
old folder aside into `.superseded/` (never deleting it) and starts over.
"""

from __future__ import annotations

import fcntl
import math
import os
import shutil
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from cc_bench.allocator import keep_freed_memory
from cc_bench.config import BenchConfig, config_to_dict, group_name, run_id
from cc_bench.errors import NonFiniteLossError, RunBusyError, UserError
from cc_bench.registry import Benchmark, get_benchmark
from cc_bench.rundir import read_json
from cc_bench.tracking import Tracker, wandb_mode, write_json_atomic

DEFAULT_PROJECT = "cc-bench"
SUPERSEDED = ".superseded"


@dataclass
class RunResult:
    """What became of a run: `finished`, `failed` or `skipped` (already finished before)."""

    run_dir: Path
    status: str
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def run_dir_for(runs_dir: Path, suite: str, benchmark: str, cfg: BenchConfig) -> Path:
    """The folder a run of `benchmark` with `cfg` owns."""
    return Path(runs_dir) / suite / benchmark / run_id(benchmark, cfg)


def git_commit() -> str | None:
    """The commit of the cc_bench source tree (with `-dirty` if it has local changes), if any."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def _package_version() -> str:
    from cc_bench import __version__

    return __version__


def make_writable_dir(path: Path) -> None:
    """Create the runs folder `path` (and its parents) or raise a UserError saying why."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create runs folder {path}: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"runs folder {path} is not writable")


def _move_aside(run_dir: Path, log: TextIO) -> None:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = run_dir.parent / SUPERSEDED / f"{run_dir.name}-{stamp}"
    target.parent.mkdir(exist_ok=True)
    n = 1
    while target.exists():
        n += 1
        target = target.with_name(f"{run_dir.name}-{stamp}-{n}")
    shutil.move(str(run_dir), str(target))
    print(f"--fresh: moved the old run aside to {target}", file=log)


LOCK_WAIT_S = 1.0
"""How long a run waits for its folder's lock before saying another process runs it."""


class _RunLock:
    """An exclusive lock on a run folder, so two processes never run the same run at once.

    The lock is the folder's `.lock`, made with the folder if there is none. A process that
    waited for it checks, once it holds it, that the file is still the one at the folder's
    path: meanwhile the holder may have moved the folder aside (`--fresh`) or removed one it
    had just made (a rejected input), and a lock on a file that has left the path guards
    nothing; it then locks what is at the path now. `created`: this process made the folder.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.path = run_dir / ".lock"
        self.created = False
        self._file: Any = None

    def __enter__(self) -> _RunLock:
        # A reader (`cc-bench status`, a report) may hold the lock for an instant: retry briefly.
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            made = False  # this pass made the folder (mkdir is atomic: one process wins)
            try:
                self.run_dir.mkdir()
                made = True
            except FileExistsError:
                pass
            except FileNotFoundError:
                raise UserError(f"the runs folder {self.run_dir.parent} went away") from None
            file = None
            try:
                file = self.path.open("a+")
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except NotADirectoryError:
                raise UserError(
                    f"the run folder {self.run_dir} is a file, not a folder: "
                    "move it away (it is left as it is)"
                ) from None
            except (BlockingIOError, FileNotFoundError) as exc:
                # Held by another process, or the folder went between the two calls.
                if file is not None:
                    file.close()
                if time.monotonic() > deadline:
                    if isinstance(exc, FileNotFoundError):
                        raise UserError(f"cannot make the run folder {self.run_dir}") from None
                    raise RunBusyError(
                        f"run {self.run_dir} is being run by another process right now"
                    ) from None
                time.sleep(0.05)
                continue
            if _same_file(file, self.path):
                self._file, self.created = file, made
                return self
            fcntl.flock(file, fcntl.LOCK_UN)  # moved aside or removed while this waited
            file.close()

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()


def _same_file(file: Any, path: Path) -> bool:
    """Whether the open `file` is the file at `path` now (not one moved away or removed)."""
    try:
        here, held = path.stat(), os.fstat(file.fileno())
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (held.st_dev, held.st_ino)


def execute(
    benchmark: str | Benchmark,
    cfg: BenchConfig,
    *,
    runs_dir: Path | str = "runs",
    suite: str = "adhoc",
    fresh: bool = False,
    no_wandb: bool = False,
    wandb_project: str | None = None,
    tags: tuple[str, ...] = (),
    log: TextIO | None = None,
    announce: TextIO | None = None,
    given: Iterable[str] | None = None,
) -> RunResult:
    """Run `benchmark` with `cfg` in its run folder: skip it if finished, else (re)start or resume.

    Raises UserError for bad input (unknown benchmark, wrong config type, unwritable folder).
    A run that fails records `failed` with the error in `summary.json` (and the traceback in
    `error.log`) and returns that status rather than raising; Ctrl-C leaves it resumable.
    `announce` gets `run folder: DIR` as soon as the folder is known (the command line's
    standard output, so a user can watch the run's files while it trains). `given`: the
    fields the command line or suite set (the rest took the code's defaults), recorded in
    `config.json` so that a later default tells an older recipe (`config.given_values`).
    """
    log = log or sys.stderr
    bench = get_benchmark(benchmark) if isinstance(benchmark, str) else benchmark
    if type(cfg) is not bench.config_cls:
        raise UserError(
            f"{bench.name} takes a {bench.config_cls.__name__}, not a {type(cfg).__name__}"
        )
    check_runnable_here(cfg)
    run_dir = run_dir_for(Path(runs_dir), suite, bench.name, cfg)
    make_writable_dir(run_dir.parent)
    if announce is not None:
        print(f"run folder: {run_dir}", file=announce, flush=True)

    opts = (no_wandb, wandb_project, tags)

    def in_folder(lock: _RunLock) -> RunResult:
        # Read under the lock: a process that held it a moment ago may have finished the run.
        summary = read_json(run_dir / "summary.json")
        if summary and summary.get("status") == "finished":
            print(f"{run_dir.name}: already finished, skipping (--fresh runs it again)", file=log)
            return RunResult(run_dir, "skipped", summary.get("metrics") or {})
        return _start(bench, cfg, run_dir, summary, lock.created, suite, given, log, opts)

    with _RunLock(run_dir) as lock:
        if fresh and not lock.created:
            _move_aside(run_dir, log)  # under its lock: never a folder a run is training in
            # The new folder is locked before the old lock goes: a process waiting on that
            # one then finds the new one held, not free. (One that made the new folder in the
            # moment between runs the run there: this one then finds it as any run's.)
            with _RunLock(run_dir) as new_lock:
                return in_folder(new_lock)
        return in_folder(lock)


def _start(
    bench: Benchmark,
    cfg: BenchConfig,
    run_dir: Path,
    summary: dict[str, Any] | None,
    new: bool,
    suite: str,
    given: Iterable[str] | None,
    log: TextIO,
    opts: tuple[bool, str | None, tuple[str, ...]],
) -> RunResult:
    """Start (or resume, or retry) the run in `run_dir`, whose lock the caller holds.
    `summary`: the run's `summary.json` (a failed run), `new`: this attempt made the folder;
    `opts`: no_wandb, wandb_project, tags."""
    try:
        if summary is not None:  # a failed run: try again from its last checkpoint
            print(f"{run_dir.name}: it failed before ({summary.get('error')}); retrying", file=log)
            (run_dir / "summary.json").unlink()
        meta = _run_meta(read_json(run_dir / "config.json") or {}, bench, cfg, run_dir, suite)
        if given is not None:
            meta.setdefault("given", sorted(given))
        write_json_atomic(run_dir / "config.json", meta)
        return _run_in_folder(bench, cfg, run_dir, meta, *opts, log)
    except UserError:
        # Input the benchmark rejected once it looked (data it could not read): a folder this
        # attempt made, and holds the lock of, with nothing of a run in it is not left behind
        # as "unfinished". (A lock held elsewhere raises before this; a process waiting for
        # this one's lock finds the folder gone and makes its own.)
        if new and _holds_no_run(run_dir):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def check_runnable_here(cfg: BenchConfig) -> None:
    """Bad input this machine can tell before a run folder changes: the config's own checks
    (`check_inputs`) and its device (CUDA or MPS asked for where there is none)."""
    from cc_bench.runtime import resolve_device

    cfg.check_inputs()
    resolve_device(cfg.device)


def _holds_no_run(run_dir: Path) -> bool:
    """No checkpoint, no logged step, no picture: nothing a resumed run would continue."""
    metrics = run_dir / "metrics.jsonl"
    media = run_dir / "media"
    return (
        not (run_dir / "checkpoint.pt").exists()
        and (not metrics.exists() or metrics.stat().st_size == 0)
        and (not media.exists() or not any(media.iterdir()))
    )


def _run_meta(
    meta: dict[str, Any], bench: Benchmark, cfg: BenchConfig, run_dir: Path, suite: str
) -> dict[str, Any]:
    """`config.json` for a (re)start: the first start's config, version and commit stay; a
    restart by other code adds its version and commit to `resumed_with`, so a report can
    tell a run trained by two versions of the code from one trained by one. Every attempt
    adds where it computes to `machines` (`cc_bench.machine.machine_record`)."""
    from cc_bench.machine import machine_record

    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    machine = {"at": now, **machine_record(cfg.device, getattr(cfg, "torch_threads", None))}
    code = {"version": _package_version(), "git_commit": git_commit()}
    meta = dict(meta)
    if "version" in meta:
        last = (meta.get("resumed_with") or [meta])[-1]
        if {k: last.get(k) for k in code} != code:
            meta.setdefault("resumed_with", []).append({**code, "at": now})
    meta.update(benchmark=bench.name, run_id=run_dir.name, suite=suite)
    meta.setdefault("config", config_to_dict(cfg))
    meta.setdefault("resolved", config_to_dict(cfg.resolve()))
    for key, value in code.items():
        meta.setdefault(key, value)
    meta.setdefault("wandb_id", f"{run_dir.name}-{uuid.uuid4().hex[:6]}")
    meta.setdefault("created", now)
    meta["machines"] = [*meta.get("machines", []), machine]
    return meta


def _wandb_init_kwargs(
    bench: Benchmark,
    cfg: BenchConfig,
    meta: dict[str, Any],
    project: str | None,
    tags: tuple[str, ...],
) -> dict[str, Any]:
    return {
        "project": project or os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT,
        "group": group_name(bench.name, cfg),
        "name": f"{bench.name}-{cfg.conv}{'_r' if meta['resolved'].get('with_r') else ''}"
        f"-seed{cfg.seed}",
        "id": meta["wandb_id"],
        "config": wandb_config(meta),
        "tags": [bench.name, bench.name.split(".")[0], cfg.conv, meta["suite"], *tags],
    }


def wandb_config(meta: Mapping[str, Any]) -> dict[str, Any]:
    """A run's W&B config from its `config.json`: the config as given, and beside it what
    the report reads back (`cc_bench.report.runs.wandb_record`): the resolved values, the
    benchmark, run id, suite, code, machines and the fields the command line gave."""
    extra = {"given": meta["given"]} if "given" in meta else {}
    return {
        **meta["config"],
        "resolved": meta["resolved"],  # the values trained with (per-conv defaults applied)
        "benchmark": meta["benchmark"],
        "run_id": meta["run_id"],
        "suite": meta["suite"],
        "version": meta["version"],
        "git_commit": meta["git_commit"],
        "resumed_with": meta.get("resumed_with", []),
        "machines": meta["machines"],
        **extra,
    }


def _json_safe(metrics: dict[str, Any]) -> dict[str, Any]:
    """NaN and infinities become null (undefined, e.g. an error over no objects found), so
    `summary.json` and the printed summary are standard JSON."""
    return {
        k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in metrics.items()
    }


def _run_in_folder(
    bench: Benchmark,
    cfg: BenchConfig,
    run_dir: Path,
    meta: dict[str, Any],
    no_wandb: bool,
    wandb_project: str | None,
    tags: tuple[str, ...],
    log: TextIO,
) -> RunResult:
    keep_freed_memory()  # CPU training steps reuse memory instead of faulting it in again
    tracker = Tracker(
        run_dir,
        wandb_mode=wandb_mode(no_wandb),
        wandb_init=_wandb_init_kwargs(bench, cfg, meta, wandb_project, tags),
    )
    base = {"benchmark": bench.name, "run_id": run_dir.name}
    try:
        step = tracker.restore()
        if step is not None:
            print(f"resuming {run_dir.name} from step {step}", file=log)
        run_fn = bench.load_run()
        from cc_bench.runtime import preload_lazy_imports, warm_up_vector_math

        preload_lazy_imports()
        warm_up_vector_math()
        # wall_s and time_to_perfect_s count the benchmark's own work, from here: not the
        # imports (torch and all) nor W&B's start-up (seconds when online).
        tracker.start_clock()
        metrics = _json_safe(run_fn(cfg, tracker))
    except (KeyboardInterrupt, UserError) as exc:
        tracker.close()  # unfinished: the same command resumes it
        if isinstance(exc, KeyboardInterrupt):
            at = tracker.checkpoint_step
            print(
                f"interrupted: the same command resumes {run_dir.name} from its checkpoint "
                f"at step {at}"
                if at is not None
                else f"interrupted before its first checkpoint: the same command starts "
                f"{run_dir.name} again",
                file=log,
            )
        raise
    except NonFiniteLossError as exc:
        error = str(exc)
        tracker.finish(
            {**base, "status": "failed", "error": error, "step": exc.step, "metrics": {}}
        )
        return RunResult(run_dir, "failed", {}, error)
    except Exception as exc:
        (run_dir / "error.log").write_text(traceback.format_exc())
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        tracker.finish({**base, "status": "failed", "error": error, "metrics": {}})
        return RunResult(run_dir, "failed", {}, error)
    tracker.finish(
        {**base, "status": "finished", "metrics": metrics, "wall_s": round(tracker.elapsed_s, 3)}
    )
    return RunResult(run_dir, "finished", metrics)
