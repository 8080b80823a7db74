"""The local executor: at most K runs at a time on this machine, each a submitit LocalExecutor job.

A live overview counts done, running and failed runs; a failed run never stops the others.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter, deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from cc_bench.launch.jobs import LaunchOptions, RunBatch, first_line
from cc_bench.launch.plan import ELSEWHERE, RUN, RUNNABLE, Step
from cc_bench.rundir import FAILED
from cc_bench.runner import RunResult
from cc_bench.suites import PlannedRun
from cc_bench.words import count

# Local jobs must never hit submitit's own time limit (its default is 2 minutes).
LOCAL_TIMEOUT_MIN = 7 * 24 * 60
POLL_S = 0.5


def visible_gpus() -> list[int]:
    """The GPU indices jobs may use: CUDA_VISIBLE_DEVICES if it lists indices, else all."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None and all(x.strip().isdigit() for x in env.split(",") if x.strip()):
        return [int(x) for x in env.split(",") if x.strip()]
    import torch

    return list(range(torch.cuda.device_count()))


def default_workers(gpus: Sequence[int], runs: Sequence[PlannedRun] = ()) -> int:
    """One run per GPU; without GPUs, one per two CPU cores (a run uses a core or two), or
    one per `torch_threads` cores where every run pins that many threads."""
    if gpus:
        return len(gpus)
    pinned = [getattr(run.cfg, "torch_threads", 0) or 0 for run in runs]
    per_run = max(pinned) if pinned and all(pinned) else 2
    return max(1, (os.cpu_count() or 2) // per_run)


class Overview:
    """The live count of done / running / failed runs.

    On a terminal, one status line redrawn in place with events printed above it; elsewhere
    (a log file, CI), one plain line per event.
    """

    def __init__(self, total: int, out: TextIO) -> None:
        self.total, self.out = total, out
        self.counts = Counter({"done": 0, "running": 0, "failed": 0, "elsewhere": 0})
        self.tty = out.isatty()
        self.start = time.monotonic()

    def line(self) -> str:
        """`done 3/12 · running 2 · failed 0 · waiting 7 · 1:05`."""
        c = self.counts
        waiting = self.total - c["done"] - c["running"] - c["failed"] - c["elsewhere"]
        mins, secs = divmod(int(time.monotonic() - self.start), 60)
        elsewhere = f" · running elsewhere {c['elsewhere']}" if c["elsewhere"] else ""
        return (
            f"done {c['done']}/{self.total} · running {c['running']} · failed {c['failed']}"
            f"{elsewhere} · waiting {waiting} · {mins}:{secs:02d}"
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
        kinds = {FAILED: "failed", ELSEWHERE: "elsewhere"}  # started by another process since
        self.counts[kinds.get(result.status, "done")] += 1
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
        return RunResult(run.run_dir, FAILED, {}, f"the job died: {first_line(exc)}")


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
    workers = workers or default_workers(gpus, [s.run for s in todo])
    print(
        f"running {count(len(todo), 'run')}, {workers} at a time; logs in {opts.submitit_dir}",
        file=out,
    )
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
        print(
            "interrupted: the same command goes on (finished runs are skipped, the others "
            "resume from their last checkpoints)",
            file=out,
        )
        raise
    finally:
        overview.close()
    return _report_local(overview, failed, out)


def _report_local(overview: Overview, failed: list[tuple[RunResult, Path]], out: TextIO) -> int:
    elsewhere = overview.counts["elsewhere"]
    print(
        f"{overview.counts['done']} done, {len(failed)} failed"
        + (f", {elsewhere} running in another process" if elsewhere else ""),
        file=out,
    )
    if not failed:
        return 0
    print(f"cc-bench: {count(len(failed), 'run')} failed:", file=sys.stderr)
    for result, log in failed:
        print(f"  {result.run_dir}: {result.error} (job log: {log})", file=sys.stderr)
    return 1
