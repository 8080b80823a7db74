"""The Slurm executor: job arrays through submitit, requeued on preemption or timeout.

Several small runs can be packed into one job; a requeued job's runs resume from their own
`checkpoint.pt`. Submitting returns once the jobs are queued.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Sequence
from typing import Any, TextIO

from cc_bench.errors import UserError
from cc_bench.launch.jobs import LaunchOptions
from cc_bench.launch.plan import RUNNABLE, Step

MAX_REQUEUES = 20


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
