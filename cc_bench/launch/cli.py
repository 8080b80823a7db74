"""`cc-bench launch`: its options and the command."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from cc_bench.arguments import ArgumentParser, int_at_least
from cc_bench.errors import UserError
from cc_bench.launch.jobs import LaunchOptions
from cc_bench.launch.local import run_local
from cc_bench.launch.plan import (
    RUNNABLE,
    make_plan,
    plan_counts,
    print_older_recipes,
    print_plan,
    warn_other_versions,
)
from cc_bench.launch.slurm import submit_slurm
from cc_bench.runner import make_writable_dir
from cc_bench.suites import Suite, expand, get_suite, list_suites, parse_sets

_positive_int = int_at_least(1)


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
        help="local: runs at a time (default: one per GPU, else CPUs / 2, or one per CPU "
        "when every run pins one torch thread)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    parser.add_argument("--no-wandb", action="store_true", help="do not mirror runs to W&B")
    parser.add_argument(
        "--wandb-project", metavar="NAME", help="W&B project ($WANDB_PROJECT, else cc-bench)"
    )
    slurm = parser.add_argument_group("Slurm (--executor slurm)")
    slurm.add_argument("--partition", help="the partition to submit to")
    slurm.add_argument(
        "--gpus-per-job", type=int_at_least(0), default=0, metavar="N", help="default: 0"
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
    if args.runs_dir.exists() and not args.runs_dir.is_dir():
        raise UserError(f"runs folder {args.runs_dir} is a file, not a folder")
    runs = expand(suite, args.seeds, parse_sets(suite, args.set), runs_dir=args.runs_dir)
    if not runs:
        raise UserError(f"suite {suite.name!r} expands to no runs")
    steps = make_plan(runs)
    out = sys.stdout
    print(f"suite {suite.name}: {plan_counts(steps)} in {args.runs_dir / suite.name}", file=out)
    warn_other_versions(args.runs_dir / suite.name, sys.stderr)
    if args.dry_run:
        print_plan(steps, out)
        print_older_recipes(steps, args.runs_dir / suite.name, out, full=True)
        return 0
    print_older_recipes(steps, args.runs_dir / suite.name, out, full=False)
    if args.executor == "local":  # Slurm: the nodes' devices, not this machine's
        from cc_bench.runtime import resolve_device

        for device in {s.run.cfg.device for s in steps if s.action in RUNNABLE}:
            resolve_device(device)  # CUDA asked for where there is none: one line, no jobs
    opts = LaunchOptions(args.runs_dir, suite.name, args.no_wandb, args.wandb_project)
    make_writable_dir(opts.submitit_dir)  # the jobs' folder, under the suite's runs folder
    if args.executor == "slurm":
        return submit_slurm(steps, opts, args, out)
    code = run_local(steps, opts, args.workers, out)
    if suite.finish:
        module, _, function = suite.finish.partition(":")
        text = getattr(importlib.import_module(module), function)(args.runs_dir / suite.name)
        print(text, file=out)
    return code
