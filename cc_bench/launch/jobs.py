"""The submitit job of a launch: one or more runs executed one after the other in one process."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cc_bench.config import BenchConfig
from cc_bench.errors import RunBusyError
from cc_bench.launch.plan import ELSEWHERE
from cc_bench.machine import CPUS_ENV
from cc_bench.rundir import FAILED
from cc_bench.runner import RunResult, run_dir_for
from cc_bench.suites import PlannedRun

SUBMITIT_DIR = ".submitit"


def first_line(exc: BaseException) -> str:
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

    runs: list[tuple[str, BenchConfig, tuple[str, ...]]]  # benchmark, config, fields given
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
            # This job's share of the cores, for choices made by CPU count (RL's vec_env).
            os.environ[CPUS_ENV] = str(self.threads)

        results = []
        for benchmark, cfg, *rest in self.runs:  # (a job pickled before `given`: 2 items)
            given = rest[0] if rest else None
            try:
                result = execute(
                    benchmark,
                    cfg,
                    given=given,
                    runs_dir=self.runs_dir,
                    suite=self.suite,
                    no_wandb=self.no_wandb,
                    wandb_project=self.wandb_project,
                )
            except Exception as exc:  # one run's trouble must not stop the others of the job
                run_dir = run_dir_for(Path(self.runs_dir), self.suite, benchmark, cfg)
                # A run another process started since the plan is not a failure.
                status = ELSEWHERE if isinstance(exc, RunBusyError) else FAILED
                result = RunResult(run_dir, status, {}, first_line(exc))
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
            [(r.benchmark, r.cfg, r.given) for r in runs],
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
