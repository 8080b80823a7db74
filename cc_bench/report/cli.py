"""`cc-bench report`: its options and the command."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cc_bench.arguments import ArgumentParser
from cc_bench.errors import UserError
from cc_bench.report.runs import load_runs, load_wandb_runs, split_project
from cc_bench.report.sections import DEFAULT_TITLE, build_report
from cc_bench.report.wandb_reports import save_wandb_report, wandb_report, wandb_reports_module


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="cc-bench report",
        description="Compare conv with CoordConv: tables with 95% bootstrap intervals, "
        "learning curves and pictures, as report.md and a self-contained report.html.",
    )
    parser.add_argument("runs_dir", nargs="?", metavar="RUNS_DIR", help="a folder of runs")
    parser.add_argument(
        "--wandb", metavar="ENTITY/PROJECT", help="read the runs from W&B instead (online)"
    )
    parser.add_argument(
        "--filters",
        metavar="JSON",
        help='W&B runs filter (with --wandb), e.g. \'{"config.benchmark": "toy.classification"}\'',
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="report folder (default: RUNS_DIR/report; ./report for --wandb or a single run)",
    )
    parser.add_argument(
        "--wandb-report",
        metavar="ENTITY/PROJECT",
        help="also build a W&B Report there (wandb-workspaces; saved when online)",
    )
    parser.add_argument("--title", default=DEFAULT_TITLE, help="the report's title")
    return parser


def _parse_filters(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        filters = json.loads(text)
    except ValueError as exc:
        raise UserError(f"--filters is not JSON: {exc}") from None
    if not isinstance(filters, dict):
        raise UserError('--filters must be a JSON object, e.g. {"config.conv": "coordconv"}')
    return filters


def _run(argv: Sequence[str]) -> int:
    opts = _parser().parse_args(list(argv))
    if (opts.runs_dir is None) == (opts.wandb is None):
        raise UserError("give either RUNS_DIR or --wandb ENTITY/PROJECT (one of them)")
    filters = _parse_filters(opts.filters)
    if filters is not None and opts.wandb is None:
        raise UserError("--filters works with --wandb only")
    if opts.wandb_report:
        split_project(opts.wandb_report)
        wandb_reports_module()  # fail before the work if the package is missing
    if opts.wandb:
        out = Path(opts.out or "report")
        records = load_wandb_runs(opts.wandb, filters, media_dir=out / "wandb-media")
        source = f"wandb:{opts.wandb}"
    else:
        one_run = (Path(opts.runs_dir) / "config.json").exists()  # not into the run's folder
        default = Path("report") if one_run else Path(opts.runs_dir) / "report"
        out = Path(opts.out) if opts.out else default
        records = load_runs(opts.runs_dir)
        source = str(opts.runs_dir)
    try:
        path = build_report(records, out, title=opts.title, source=source)
    except OSError as exc:  # a file where a folder goes, no space, no permission
        where = f" ({exc.filename})" if exc.filename else ""
        raise UserError(f"cannot write the report in {out}: {exc.strerror or exc}{where}") from None
    print(f"report: {path}")
    print(f"report: {path.with_name('report.html')}")
    if opts.wandb_report:
        report = wandb_report(records, opts.wandb_report, title=opts.title, source=source)
        url = save_wandb_report(report)
        print(f"W&B Report: {url}" if url else "W&B Report built, not saved: W&B is offline")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`cc-bench report`: returns the exit code (2 with one line on bad input)."""
    try:
        return _run(sys.argv[1:] if argv is None else argv)
    except UserError as exc:
        print(f"cc-bench: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
