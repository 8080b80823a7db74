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

Modules: `plan` (each run and what launching does with it), `jobs` (the submitit job),
`local` and `slurm` (the executors), `cli` (`cc-bench launch`), `status` (`cc-bench status`).
"""

from cc_bench.launch.cli import launch_parser, main_launch
from cc_bench.launch.jobs import LaunchOptions, RunBatch
from cc_bench.launch.local import run_local
from cc_bench.launch.plan import Step, make_plan, plan_counts, print_plan
from cc_bench.launch.slurm import parse_sbatch_line, slurm_parameters, submit_slurm
from cc_bench.launch.status import main_status

__all__ = [
    "LaunchOptions",
    "RunBatch",
    "Step",
    "launch_parser",
    "main_launch",
    "main_status",
    "make_plan",
    "parse_sbatch_line",
    "plan_counts",
    "print_plan",
    "run_local",
    "slurm_parameters",
    "submit_slurm",
]
