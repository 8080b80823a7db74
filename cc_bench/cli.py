"""The `cc-bench` command: list benchmarks and run one.

Bad input (an unknown benchmark or option, a wrong value, an unwritable folder) prints one
line on standard error and exits with code 2; a run that fails exits with code 1.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import io
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from cc_bench.arguments import ArgumentParser
from cc_bench.errors import Terminated, UserError

_USAGE = """\
usage: cc-bench [-h] [--version] COMMAND ...

CoordConv against plain convolution, domain by domain.

commands:
  list                 list the benchmarks, one line each
  run BENCH [OPTIONS]  run one benchmark (`cc-bench run BENCH --help` lists its fields)
  launch SUITE         run a suite of runs here or on Slurm (`cc-bench launch --list`)
  status RUNS_DIR      what is done, running, failed or unfinished in a runs folder
  report RUNS_DIR      compare conv with CoordConv over a folder of runs
                       (or --wandb ENTITY/PROJECT)
"""

_RUN_USAGE = """\
usage: cc-bench run BENCH [--FIELD VALUE ...] [--runs-dir DIR] [--no-wandb] [--fresh]
                          [--wandb-project NAME]

Run one benchmark with one config. The same command again skips a finished run and
resumes an unfinished one from its checkpoint.

run options:
  --runs-dir DIR         where runs live (default: ./runs); the run's folder is
                         DIR/adhoc/BENCH/RUN_ID
  --no-wandb             do not mirror the run to W&B (same as WANDB_MODE=disabled)
  --fresh                start over: the old run folder is moved aside, never deleted
  --wandb-project NAME   W&B project (default: $WANDB_PROJECT, else cc-bench)
"""


COMMANDS = ("list", "run", "launch", "status", "report")


def _run_options() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="cc-bench run", add_help=False, allow_abbrev=False)
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--no-wandb", action="store_true")
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--wandb-project", default=None)
    parser.add_argument("--suite", default="adhoc", help=argparse.SUPPRESS)
    return parser


def _one_line_tyro_error(text: str, bench: str) -> str:
    """Condense tyro's error panel (boxed on a terminal, ruled with dashes elsewhere) to one line."""
    sections: list[list[str]] = [[]]
    for raw in text.splitlines():
        line = raw.strip().strip("│╭╮╰╯").strip()
        if raw.strip().startswith("╭"):  # the box's top edge holds the title
            sections = [[line.strip("─ ")], []]
        elif line and set(line) <= set("─-"):
            sections.append([])
        elif line:
            sections[-1].append(line)
    sections = [s for s in sections if s]
    body = sections[1] if len(sections) > 1 else sections[0] if sections else []
    message = " ".join(body) or "invalid arguments"
    for section in sections[2:]:
        if section[0].startswith("Perhaps you meant"):
            options = [x.split()[0] for x in section[1:] if x.startswith("--")]
            message += f" (did you mean {', '.join(dict.fromkeys(options))}?)"
    return f"{message} (see `cc-bench run {bench} --help`)"


def _per_conv_defaults(config_cls: type) -> str:
    """`Left at 0, a field takes its conv's value: conv: epochs=12, ...` from the class's
    `conv_defaults` (the values runs train with), or '' when it has none."""
    defaults = getattr(config_cls, "conv_defaults", {})
    if not defaults:
        return ""
    sides = "; ".join(
        f"{conv}: " + ", ".join(f"{k}={v}" for k, v in values.items())
        for conv, values in defaults.items()
    )
    return f"Left at 0, a field takes its conv's value. {sides}."


def parse_config(bench_name: str, args: Sequence[str]) -> object:
    """Build the benchmark's config from `--FIELD VALUE` arguments (tyro), one line on error."""
    import tyro

    from cc_bench.registry import get_benchmark

    bench = get_benchmark(bench_name)
    prog = f"cc-bench run {bench.name}"
    description = "\n\n".join(
        part
        for part in (
            bench.description,
            inspect.cleandoc(bench.config_cls.__doc__ or ""),
            _per_conv_defaults(bench.config_cls),
            "run options:" + _RUN_USAGE.split("run options:", 1)[1],
        )
        if part
    )
    if "-h" in args or "--help" in args:
        tyro.cli(bench.config_cls, args=list(args), prog=prog, description=description)
    captured = io.StringIO()
    old_columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "400"  # keep tyro's messages on one line each
    try:
        with contextlib.redirect_stderr(captured), contextlib.redirect_stdout(captured):
            return tyro.cli(bench.config_cls, args=list(args), prog=prog)
    except SystemExit:
        raise UserError(_one_line_tyro_error(captured.getvalue(), bench.name)) from None
    finally:
        if old_columns is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old_columns


def given_fields(config_cls: type, args: Sequence[str]) -> set[str]:
    """The config fields `--FIELD ...` arguments set (`--no-FIELD` for a flag), as tyro
    reads them: the rest of a run's config took the code's defaults."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(config_cls)}
    given = set()
    for arg in args:
        if not arg.startswith("--"):
            continue
        name = arg[2:].split("=", 1)[0].replace("-", "_")
        if name in names:
            given.add(name)
        elif name.startswith("no_") and name[3:] in names:
            given.add(name[3:])
    return given


def _cmd_list() -> int:
    from cc_bench.registry import list_benchmarks

    benches = list_benchmarks()
    width = max(len(b.name) for b in benches)
    for bench in benches:
        print(f"{bench.name:<{width}}  {bench.description}")
    return 0


def _cmd_run(args: list[str]) -> int:
    if not args:  # a command without its benchmark: the usage, as an error
        print(_RUN_USAGE, end="", file=sys.stderr)
        return 2
    if args[0] in ("-h", "--help"):
        print(_RUN_USAGE, end="")
        return 0
    if args[0].startswith("-"):
        raise UserError(f"expected a benchmark name first, got {args[0]!r} (see `cc-bench list`)")
    from cc_bench.registry import get_benchmark
    from cc_bench.runner import execute

    bench = get_benchmark(args[0])
    opts, rest = _run_options().parse_known_args(args[1:])
    cfg = parse_config(bench.name, rest)
    result = execute(
        bench,
        cfg,
        given=given_fields(bench.config_cls, rest),
        runs_dir=opts.runs_dir,
        suite=opts.suite,
        fresh=opts.fresh,
        no_wandb=opts.no_wandb,
        wandb_project=opts.wandb_project,
        announce=sys.stdout,
    )
    print(json.dumps(result.metrics), flush=True)
    if result.status == "failed":
        print(f"cc-bench: run failed: {result.error} (see {result.run_dir})", file=sys.stderr)
        return 1
    return 0


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While a command runs, SIGTERM raises `Terminated` (a KeyboardInterrupt) where it would
    kill the process on the spot: a run then closes as after Ctrl-C, and a launch stops its
    runs instead of leaving them training with nobody watching. A handler already set, or
    an ignored SIGTERM, is left alone; only the main thread may set one. A second SIGTERM
    during the clean-up kills as usual."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def terminate(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise Terminated

    signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `cc-bench` command; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    with _sigterm_as_interrupt():
        return _main(args)


def _main(args: list[str]) -> int:
    try:
        if not args:  # no command: the usage, as an error (scripts see a non-zero exit)
            print(_USAGE, end="", file=sys.stderr)
            return 2
        if args[0] in ("-h", "--help"):
            print(_USAGE, end="")
            return 0
        if args[0] == "--version":
            from cc_bench import __version__

            print(f"cc-bench {__version__}")
            return 0
        command, rest = args[0], args[1:]
        if command == "list":
            if rest:
                raise UserError(f"list takes no arguments, got {' '.join(rest)}")
            return _cmd_list()
        if command == "run":
            return _cmd_run(rest)
        if command == "launch":
            from cc_bench.launch import main_launch

            return main_launch(rest)
        if command == "status":
            from cc_bench.launch import main_status

            return main_status(rest)
        if command == "report":
            from cc_bench.report import main as report_main

            return report_main(rest)
        raise UserError(f"unknown command {command!r}; commands: {', '.join(COMMANDS)}")
    except UserError as exc:
        print(f"cc-bench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, Terminated)
        print(f"cc-bench: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return 143 if terminated else 130
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
