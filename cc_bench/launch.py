"""`cc-bench launch` and `cc-bench status`: run a suite's grid through submitit, here or on Slurm.

`cc-bench launch SUITE` expands the suite into runs (`cc_bench.suites.expand`), looks at each
run's folder, and executes what is not finished yet through submitit:

- local executor (default): at most K runs at a time on this machine, each in its own process
  (a submitit `LocalExecutor` job), with a live overview; a failed run never stops the others.
- Slurm executor: job arrays, several small runs packed into one job if asked; a job that is
  preempted or times out is requeued through submitit's checkpoint protocol and its runs
  resume from their own `checkpoint.pt`. The command returns once the jobs are submitted.

The run folders are the truth about what is done (`summary.json`), failed, running (someone
holds the flock on `.lock`) or unfinished; `cc-bench status` reads only them, so it works for
both executors and needs no Slurm accounting.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from cc_bench.cli import ArgumentParser
from cc_bench.config import BenchConfig
from cc_bench.errors import UserError
from cc_bench.rundir import (
    FAILED,
    FINISHED,
    RUNNING,
    UNFINISHED,
    last_logged_step,
    read_json,
    run_folders,
    run_state,
)
from cc_bench.runner import RunResult, run_dir_for
from cc_bench.suites import PlannedRun, Suite, expand, get_suite, list_suites, parse_sets

SUBMITIT_DIR = ".submitit"
# Local jobs must never hit submitit's own time limit (its default is 2 minutes).
LOCAL_TIMEOUT_MIN = 7 * 24 * 60
POLL_S = 0.5
MAX_REQUEUES = 20

# -- run folders: the truth ----------------------------------------------------------------


# -- the plan ------------------------------------------------------------------------------

RUN, RESUME, RETRY, SKIP, ELSEWHERE = "run", "resume", "retry", "skip", "running elsewhere"
RUNNABLE = (RUN, RESUME, RETRY)


@dataclass(frozen=True)
class Step:
    """A planned run and what launching does with it: run, resume, retry, skip, or leave it."""

    run: PlannedRun
    action: str


def action_for(run_dir: Path) -> str:
    """What launching does with a run, from its folder."""
    state = run_state(run_dir)
    if state == FINISHED:
        return SKIP
    if state == FAILED:
        return RETRY
    if state == RUNNING:
        return ELSEWHERE
    if state == UNFINISHED and (run_dir / "checkpoint.pt").exists():
        return RESUME
    return RUN


def make_plan(runs: Sequence[PlannedRun]) -> list[Step]:
    """Each run with its action."""
    return [Step(run, action_for(run.run_dir)) for run in runs]


_ACTION_TEXT = {
    RUN: "run",
    RESUME: "resume (from its checkpoint)",
    RETRY: "retry (it failed; from its last checkpoint)",
    SKIP: "skip (finished)",
    ELSEWHERE: "skip (running in another process)",
}


def print_plan(steps: Sequence[Step], out: TextIO) -> None:
    """One line per run: benchmark, run id, what launching would do."""
    width = max(len(s.run.benchmark) for s in steps)
    id_width = max(len(s.run.run_id) for s in steps)
    for step in steps:
        print(
            f"{step.run.benchmark:<{width}}  {step.run.run_id:<{id_width}}  "
            f"{_ACTION_TEXT[step.action]}",
            file=out,
        )


def plan_counts(steps: Sequence[Step]) -> str:
    """`12 runs: 8 to run, 2 to resume, 2 finished`."""
    counts = Counter(s.action for s in steps)
    parts = [
        f"{counts[a]} {text}"
        for a, text in (
            (RUN, "to run"),
            (RESUME, "to resume"),
            (RETRY, "to retry"),
            (SKIP, "finished"),
            (ELSEWHERE, "running elsewhere"),
        )
        if counts[a]
    ]
    return f"{len(steps)} runs: {', '.join(parts)}"


def warn_other_versions(suite_dir: Path, log: TextIO) -> None:
    """Say on `log` when the folder holds runs made by another version or commit of cc_bench."""
    from cc_bench import __version__
    from cc_bench.runner import git_commit

    commit = git_commit()
    others: Counter[str] = Counter()
    for run_dir in run_folders(suite_dir) if suite_dir.is_dir() else ():
        meta = read_json(run_dir / "config.json") or {}
        theirs = (meta.get("version"), meta.get("git_commit"))
        if theirs[0] != __version__ or (commit and theirs[1] and theirs[1] != commit):
            others[f"{theirs[0]} at {theirs[1] or 'unknown commit'}"] += 1
    if others:
        made_by = ", ".join(f"{n} by {what}" for what, n in others.most_common())
        print(
            f"cc-bench: warning: {suite_dir} holds runs of another code version ({made_by}); "
            f"this is {__version__} at {commit or 'unknown commit'}. Finished runs are kept "
            "as they are, unfinished ones resume with this code.",
            file=log,
        )


# -- the job -------------------------------------------------------------------------------


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


@dataclass
class RunBatch:
    """A submitit job: one or more runs executed one after the other in one process.

    It follows submitit's checkpoint protocol (what `submitit.helpers.Checkpointable` offers):
    on preemption or timeout submitit calls `checkpoint()` and requeues what it returns, the
    same runs; the runner then skips the finished ones and resumes the interrupted one from
    its `checkpoint.pt`, so nothing here needs saving.
    """

    runs: list[tuple[str, BenchConfig]]
    runs_dir: str
    suite: str
    no_wandb: bool = False
    wandb_project: str | None = None
    threads: int | None = None
    """CPU threads for torch in this job (local runs share the cores); None: torch's default."""

    def __call__(self) -> list[RunResult]:
        from cc_bench.runner import execute

        if self.threads:
            import torch

            torch.set_num_threads(self.threads)

        results = []
        for benchmark, cfg in self.runs:
            try:
                result = execute(
                    benchmark,
                    cfg,
                    runs_dir=self.runs_dir,
                    suite=self.suite,
                    no_wandb=self.no_wandb,
                    wandb_project=self.wandb_project,
                )
            except Exception as exc:  # one run's trouble must not stop the others of the job
                run_dir = run_dir_for(Path(self.runs_dir), self.suite, benchmark, cfg)
                result = RunResult(run_dir, FAILED, {}, _first_line(exc))
                print(f"{run_dir.name}: {result.error}", file=sys.stderr, flush=True)
            results.append(result)
        return results

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Requeue the same runs: finished ones are skipped, the interrupted one resumes."""
        from submitit.helpers import DelayedSubmission

        print(
            "cc-bench: preempted or timed out; requeuing (the runs resume from their checkpoints)",
            file=sys.stderr,
            flush=True,
        )
        return DelayedSubmission(self, *args, **kwargs)


# -- local executor ------------------------------------------------------------------------


def visible_gpus() -> list[int]:
    """The GPU indices jobs may use: CUDA_VISIBLE_DEVICES if it lists indices, else all."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None and all(x.strip().isdigit() for x in env.split(",") if x.strip()):
        return [int(x) for x in env.split(",") if x.strip()]
    import torch

    return list(range(torch.cuda.device_count()))


def default_workers(gpus: Sequence[int]) -> int:
    """One run per GPU; without GPUs, one per two CPU cores (a run uses a core or two)."""
    return len(gpus) if gpus else max(1, (os.cpu_count() or 2) // 2)


class Overview:
    """The live count of done / running / failed runs.

    On a terminal, one status line redrawn in place with events printed above it; elsewhere
    (a log file, CI), one plain line per event.
    """

    def __init__(self, total: int, out: TextIO) -> None:
        self.total, self.out = total, out
        self.counts = Counter({"done": 0, "running": 0, "failed": 0})
        self.tty = out.isatty()
        self.start = time.monotonic()

    def line(self) -> str:
        """`done 3/12 · running 2 · failed 0 · waiting 7 · 1:05`."""
        c = self.counts
        waiting = self.total - c["done"] - c["running"] - c["failed"]
        mins, secs = divmod(int(time.monotonic() - self.start), 60)
        return (
            f"done {c['done']}/{self.total} · running {c['running']} · failed {c['failed']}"
            f" · waiting {waiting} · {mins}:{secs:02d}"
        )

    def event(self, text: str) -> None:
        """Print one event with the counts after it."""
        if self.tty:
            self.out.write(f"\r\033[K{text}\n")
            self.refresh()
        else:
            print(f"[{self.line()}] {text}", file=self.out, flush=True)

    def started(self, step: Step) -> None:
        """A run's job has started."""
        self.counts["running"] += 1
        verb = "start" if step.action == RUN else step.action
        self.event(f"{verb:<8} {step.run.benchmark} {step.run.run_id}")

    def ended(self, step: Step, result: RunResult) -> None:
        """A run's job has ended with `result`."""
        self.counts["running"] -= 1
        self.counts["failed" if result.status == FAILED else "done"] += 1
        text = f"{result.status:<8} {step.run.benchmark} {step.run.run_id}"
        self.event(text + (f": {result.error}" if result.error else ""))

    def refresh(self) -> None:
        """Redraw the status line (on a terminal only)."""
        if self.tty:
            self.out.write(f"\r\033[K{self.line()}")
            self.out.flush()

    def close(self) -> None:
        """End the status line."""
        if self.tty:
            self.out.write("\n")
            self.out.flush()


def _job_result(job: Any, run: PlannedRun) -> RunResult:
    """The job's RunResult, or a failed one when the job itself died."""
    try:
        return job.result()[0]
    except Exception as exc:  # the job process died or raised outside the runner
        return RunResult(run.run_dir, FAILED, {}, f"the job died: {_first_line(exc)}")


@dataclass(frozen=True)
class LaunchOptions:
    """What every job of a launch gets: where runs live, the suite, and the W&B choice."""

    runs_dir: Path
    suite: str
    no_wandb: bool = False
    wandb_project: str | None = None

    def job(self, runs: Sequence[PlannedRun], threads: int | None = None) -> RunBatch:
        """The submitit job that executes `runs` (with `threads` CPU threads, if given)."""
        return RunBatch(
            [(r.benchmark, r.cfg) for r in runs],
            str(self.runs_dir.resolve()),  # jobs may start in another folder
            self.suite,
            self.no_wandb,
            self.wandb_project,
            threads,
        )

    @property
    def submitit_dir(self) -> Path:
        """Where submitit keeps its pickles and the jobs' logs."""
        return self.runs_dir / self.suite / SUBMITIT_DIR


class LocalPool:
    """At most `workers` submitit LocalExecutor jobs alive at once, one per slot.

    submitit's LocalExecutor starts every job it is given at once, so the bound is kept here:
    a job is submitted only into a free slot. On a GPU machine each slot is pinned to one GPU
    (submitit's `visible_gpus` sets the job's CUDA_VISIBLE_DEVICES).
    """

    def __init__(self, folder: Path, workers: int, gpus: Sequence[int]) -> None:
        import submitit

        self.executor = submitit.LocalExecutor(folder=folder)
        self.executor.update_parameters(timeout_min=LOCAL_TIMEOUT_MIN)
        self.gpus = list(gpus)
        self.free_slots = list(range(workers))
        self.live: list[tuple[Any, Step, int]] = []

    def submit(self, job_fn: RunBatch, step: Step) -> None:
        """Start `job_fn` in a free slot (there must be one)."""
        slot = self.free_slots.pop(0)
        gpu = [self.gpus[slot % len(self.gpus)]] if self.gpus else []
        self.executor.update_parameters(gpus_per_node=len(gpu), visible_gpus=gpu)
        self.live.append((self.executor.submit(job_fn), step, slot))

    def collect(self) -> list[tuple[Step, RunResult, Path]]:
        """The jobs that ended since the last call: their step, result and log file."""
        ended = [entry for entry in self.live if entry[0].done()]
        for entry in ended:
            self.live.remove(entry)
            self.free_slots.append(entry[2])
        return [(step, _job_result(job, step.run), job.paths.stderr) for job, step, _ in ended]

    def cancel(self) -> None:
        """Interrupt every live job (each run stays resumable)."""
        for job, _, _ in self.live:
            job.cancel()


def run_local(steps: Sequence[Step], opts: LaunchOptions, workers: int | None, out: TextIO) -> int:
    """Run the runnable steps, at most `workers` at a time; 1 if any failed, else 0."""
    todo = deque(s for s in steps if s.action in RUNNABLE)
    if not todo:
        print("nothing to run: every run is finished or running", file=out)
        return 0
    gpus = visible_gpus()
    workers = workers or default_workers(gpus)
    print(f"running {len(todo)} runs, {workers} at a time; logs in {opts.submitit_dir}", file=out)
    # Runs at once share the cores: more threads than cores stalls every one of them.
    threads = None if gpus else max(1, (os.cpu_count() or 1) // workers)
    pool = LocalPool(opts.submitit_dir, workers, gpus)
    overview = Overview(len(todo), out)
    failed: list[tuple[RunResult, Path]] = []
    try:
        while todo or pool.live:
            while todo and pool.free_slots:
                step = todo.popleft()
                pool.submit(opts.job([step.run], threads), step)
                overview.started(step)
            for step, result, log in pool.collect():
                overview.ended(step, result)
                if result.status == FAILED:
                    failed.append((result, log))
            overview.refresh()
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        pool.cancel()
        raise
    finally:
        overview.close()
    return _report_local(overview, failed, out)


def _report_local(overview: Overview, failed: list[tuple[RunResult, Path]], out: TextIO) -> int:
    print(f"{overview.counts['done']} done, {len(failed)} failed", file=out)
    if not failed:
        return 0
    print(f"cc-bench: {len(failed)} runs failed:", file=sys.stderr)
    for result, log in failed:
        print(f"  {result.run_dir}: {result.error} (job log: {log})", file=sys.stderr)
    return 1


# -- Slurm executor ------------------------------------------------------------------------


def parse_sbatch_line(line: str) -> tuple[str, Any]:
    """`--reservation=x`, `#SBATCH --reservation x` or `exclusive` as an sbatch (key, value)."""
    text = line.strip().removeprefix("#SBATCH").strip().lstrip("-")
    key, _, value = text.replace(" ", "=", 1).partition("=")
    if not key:
        raise UserError(
            f"--sbatch-line takes an sbatch option such as --reservation=NAME, got {line!r}"
        )
    return key.replace("-", "_"), value.strip() or True


def slurm_parameters(args: argparse.Namespace) -> dict[str, Any]:
    """submitit's AutoExecutor parameters from the launch options (unset ones left out)."""
    params: dict[str, Any] = {
        "name": f"cc-bench-{args.suite}",
        "timeout_min": args.time_min,
        # submitit asks for USR2 this long before the time limit, to checkpoint and requeue
        "slurm_signal_delay_s": min(90, max(10, args.time_min * 6)),
        "slurm_partition": args.partition,
        "gpus_per_node": args.gpus_per_job or None,
        "cpus_per_task": args.cpus_per_job,
        "mem_gb": args.mem_gb,
        "slurm_array_parallelism": args.array_parallelism,
        "slurm_account": args.account,
        "slurm_qos": args.qos,
        "slurm_constraint": args.constraint,
        "slurm_additional_parameters": dict(parse_sbatch_line(x) for x in args.sbatch_line) or None,
        "slurm_setup": list(args.setup) or None,
    }
    return {k: v for k, v in params.items() if v is not None}


def submit_slurm(
    steps: Sequence[Step], opts: LaunchOptions, args: argparse.Namespace, out: TextIO
) -> int:
    """Submit the runnable steps as one Slurm job array, `--runs-per-job` runs to a job."""
    todo = [s.run for s in steps if s.action in RUNNABLE]
    if not todo:
        print("nothing to submit: every run is finished or running", file=out)
        return 0
    if shutil.which("sbatch") is None or shutil.which("srun") is None:
        raise UserError("--executor slurm needs Slurm's sbatch and srun on PATH (a login node)")
    import submitit

    # Each requeue after a time limit resumes from checkpoints, so allow many of them.
    executor = submitit.AutoExecutor(
        folder=opts.submitit_dir, cluster="slurm", slurm_max_num_timeout=MAX_REQUEUES
    )
    executor.update_parameters(**slurm_parameters(args))
    per_job = args.runs_per_job
    chunks = [todo[i : i + per_job] for i in range(0, len(todo), per_job)]
    try:
        with executor.batch():
            jobs = [executor.submit(opts.job(chunk)) for chunk in chunks]
    except (submitit.core.utils.FailedJobError, submitit.core.utils.FailedSubmissionError) as e:
        lines = [x for x in str(e).strip().splitlines() if x.strip()] or ["no output"]
        raise UserError(f"sbatch failed: {lines[-1].strip()}") from None
    print(f"submitted {len(jobs)} Slurm jobs for {len(todo)} runs:", file=out)
    for job, chunk in zip(jobs, chunks, strict=True):
        print(f"  {job.job_id}  {', '.join(r.run_id for r in chunk)}", file=out)
    print(f"logs: {opts.submitit_dir}", file=out)
    print(f"progress: cc-bench status {opts.runs_dir / opts.suite}", file=out)
    return 0


# -- the command line ----------------------------------------------------------------------


def _int_at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer >= `low`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} must be >= {low}")
        return value

    return parse


_positive_int = _int_at_least(1)


def launch_parser() -> argparse.ArgumentParser:
    """The options of `cc-bench launch`."""
    parser = ArgumentParser(
        prog="cc-bench launch",
        description="Run a suite's runs (benchmarks x config grid x conv variants x seeds) through "
        "submitit, on this machine or on Slurm. Launching again skips finished runs and resumes "
        "unfinished ones.",
        allow_abbrev=False,
    )
    parser.add_argument("suite", nargs="?", metavar="SUITE", help="the suite (see --list)")
    parser.add_argument("--list", action="store_true", help="list the suites and exit")
    parser.add_argument(
        "--seeds", type=_positive_int, metavar="N", help="seeds 0..N-1 (default: the suite's)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="set a config field of every run that has it (repeatable; tuples as 4,4)",
    )
    parser.add_argument(
        "--runs-dir", default="runs", type=Path, metavar="DIR", help="where runs live (./runs)"
    )
    parser.add_argument(
        "--executor",
        choices=("local", "slurm"),
        default="local",
        help="local: this machine, K runs at a time (default); slurm: submit job arrays",
    )
    parser.add_argument(
        "--workers",
        type=_positive_int,
        metavar="K",
        help="local: runs at a time (default: one per GPU, else CPUs / 2)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    parser.add_argument("--no-wandb", action="store_true", help="do not mirror runs to W&B")
    parser.add_argument(
        "--wandb-project", metavar="NAME", help="W&B project ($WANDB_PROJECT, else cc-bench)"
    )
    slurm = parser.add_argument_group("Slurm (--executor slurm)")
    slurm.add_argument("--partition", help="the partition to submit to")
    slurm.add_argument(
        "--gpus-per-job", type=_int_at_least(0), default=0, metavar="N", help="default: 0"
    )
    slurm.add_argument("--cpus-per-job", type=_positive_int, metavar="N", help="default: Slurm's")
    slurm.add_argument("--mem-gb", type=float, metavar="GB", help="default: Slurm's")
    slurm.add_argument(
        "--time-min",
        type=_positive_int,
        default=60,
        metavar="MIN",
        help="time limit of a job; a job that reaches it is requeued and resumes (default: 60)",
    )
    slurm.add_argument(
        "--array-parallelism",
        type=_positive_int,
        default=256,
        metavar="N",
        help="jobs of the array running at once (default: 256)",
    )
    slurm.add_argument("--account", help="sbatch --account")
    slurm.add_argument("--qos", help="sbatch --qos")
    slurm.add_argument("--constraint", help="sbatch --constraint, e.g. a100")
    slurm.add_argument(
        "--sbatch-line",
        action="append",
        default=[],
        metavar="LINE",
        help="an extra sbatch option, e.g. --sbatch-line=--reservation=NAME (repeatable)",
    )
    slurm.add_argument(
        "--setup",
        action="append",
        default=[],
        metavar="CMD",
        help="a shell line run in the job before the runs, e.g. 'module load cuda' (repeatable)",
    )
    slurm.add_argument(
        "--runs-per-job",
        type=_positive_int,
        default=1,
        metavar="N",
        help="pack N runs into one job, run one after the other (default: 1)",
    )
    return parser


def _print_suites(suites: Sequence[Suite]) -> None:
    width = max((len(s.name) for s in suites), default=0)
    for suite in suites:
        benches = ", ".join(dict.fromkeys(e.benchmark for e in suite.entries))
        print(f"{suite.name:<{width}}  {suite.description} [{benches}]")


def main_launch(argv: Sequence[str]) -> int:
    """`cc-bench launch`: returns the exit code (bad input raises UserError)."""
    args = launch_parser().parse_args(list(argv))
    if args.list:
        _print_suites(list_suites())
        return 0
    if not args.suite:
        raise UserError("launch needs a SUITE (see `cc-bench launch --list`)")
    suite = get_suite(args.suite)
    runs = expand(suite, args.seeds, parse_sets(suite, args.set), runs_dir=args.runs_dir)
    if not runs:
        raise UserError(f"suite {suite.name!r} expands to no runs")
    steps = make_plan(runs)
    out = sys.stdout
    print(f"suite {suite.name}: {plan_counts(steps)} in {args.runs_dir / suite.name}", file=out)
    warn_other_versions(args.runs_dir / suite.name, sys.stderr)
    if args.dry_run:
        print_plan(steps, out)
        return 0
    opts = LaunchOptions(args.runs_dir, suite.name, args.no_wandb, args.wandb_project)
    if args.executor == "slurm":
        return submit_slurm(steps, opts, args, out)
    code = run_local(steps, opts, args.workers, out)
    if suite.finish:
        module, _, function = suite.finish.partition(":")
        text = getattr(importlib.import_module(module), function)(args.runs_dir / suite.name)
        print(text, file=out)
    return code


# -- status --------------------------------------------------------------------------------


def _group_of(run_dir: Path) -> str:
    meta = read_json(run_dir / "config.json") or {}
    suite = meta.get("suite") or run_dir.parent.parent.name
    return f"{suite}/{meta.get('benchmark') or run_dir.parent.name}"


def _status_line(run_dir: Path, state: str) -> str:
    if state == FAILED:
        summary = read_json(run_dir / "summary.json") or {}
        return f"  {run_dir}: {summary.get('error')}"
    step = last_logged_step(run_dir)
    return f"  {run_dir}" + (f" (last logged step {step})" if step is not None else "")


def main_status(argv: Sequence[str]) -> int:
    """`cc-bench status RUNS_DIR`: done / running / failed / unfinished, from the run folders."""
    parser = ArgumentParser(
        prog="cc-bench status",
        description="Show which runs under RUNS_DIR are done, running, failed or unfinished, "
        "read from the run folders (summary.json, and the lock a live run holds).",
    )
    parser.add_argument("runs_dir", type=Path, metavar="RUNS_DIR")
    parser.add_argument("--all", action="store_true", help="list every run, done ones too")
    args = parser.parse_args(list(argv))
    if not args.runs_dir.is_dir():
        raise UserError(f"runs folder {args.runs_dir} does not exist")
    states = {run_dir: run_state(run_dir) for run_dir in run_folders(args.runs_dir)}
    if not states:
        raise UserError(f"{args.runs_dir} holds no runs")
    names = {FINISHED: "done", RUNNING: "running", FAILED: "failed", UNFINISHED: "unfinished"}
    table: dict[str, Counter[str]] = {}
    for run_dir, state in states.items():
        table.setdefault(_group_of(run_dir), Counter())[state] += 1
    width = max(len("suite/benchmark"), *(len(g) for g in table))
    print(f"{'suite/benchmark':<{width}}  " + "  ".join(f"{n:>10}" for n in names.values()))
    for group, counts in sorted(table.items()):
        print(f"{group:<{width}}  " + "  ".join(f"{counts[s]:>10}" for s in names))
    total = Counter(states.values())
    print(f"{len(states)} runs: " + ", ".join(f"{total[s]} {n}" for s, n in names.items()))
    for state, name in names.items():
        listed = [d for d, s in states.items() if s == state]
        if listed and (state != FINISHED or args.all):
            print(f"{name}:")
            for run_dir in sorted(listed):
                print(_status_line(run_dir, state))
    return 0
