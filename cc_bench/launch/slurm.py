"""The Slurm executor: job arrays through submitit, requeued on preemption or timeout.

Several small runs can be packed into one job; a requeued job's runs resume from their own
`checkpoint.pt`. Submitting returns once the jobs are queued.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, TextIO

from cc_bench.errors import UserError
from cc_bench.launch.jobs import LaunchOptions
from cc_bench.launch.plan import RUNNABLE, Step
from cc_bench.words import count

MAX_REQUEUES = 20


@contextlib.contextmanager
def _fd_stderr_to(file: IO[str]) -> Iterator[None]:
    """File descriptor 2 (what subprocesses inherit) into `file` for the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        os.dup2(file.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _sbatch_reason(stderr: str, error: str) -> str:
    """The first line sbatch gave as an error (the cause; later ones are consequences),
    else the last line of submitit's error."""
    lines = [x.strip() for x in (stderr + "\n" + error).splitlines() if x.strip()]
    errors = [x for x in lines if x.startswith("sbatch: error:")]
    if errors:
        return errors[0].removeprefix("sbatch: error:").strip()
    return lines[-1] if lines else "no output"


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
    folder = Path(opts.submitit_dir)
    before = set(folder.iterdir()) if folder.is_dir() else set()
    failed = (submitit.core.utils.FailedJobError, submitit.core.utils.FailedSubmissionError)
    with tempfile.TemporaryFile(mode="w+") as said:
        try:
            with _fd_stderr_to(said):  # sbatch writes to the stderr it inherits
                with executor.batch():
                    jobs = [executor.submit(opts.job(chunk)) for chunk in chunks]
        except failed as e:
            # What this attempt wrote for the jobs (pickles, the script) goes again.
            for path in set(folder.iterdir()) - before if folder.is_dir() else ():
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
            said.seek(0)
            raise UserError(f"sbatch failed: {_sbatch_reason(said.read(), str(e))}") from None
        said.seek(0)
        sys.stderr.write(said.read())  # sbatch's warnings on success, as it printed them
    print(f"submitted {count(len(jobs), 'Slurm job')} for {count(len(todo), 'run')}:", file=out)
    for job, chunk in zip(jobs, chunks, strict=True):
        print(f"  {job.job_id}  {', '.join(r.run_id for r in chunk)}", file=out)
    print(f"logs: {opts.submitit_dir}", file=out)
    print(f"progress: cc-bench status {opts.runs_dir / opts.suite}", file=out)
    return 0
