"""`cc-bench status RUNS_DIR`: what is done, running, failed or unfinished, from the run folders,
and which finished runs are of older recipes (the current code trains their configs anew)."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from cc_bench.arguments import ArgumentParser
from cc_bench.errors import UserError
from cc_bench.launch.plan import older_recipes
from cc_bench.rundir import (
    FAILED,
    FINISHED,
    RUNNING,
    UNFINISHED,
    last_logged_step,
    left_out_note,
    read_json,
    run_folders,
    run_state,
)
from cc_bench.words import count


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
    if not args.runs_dir.exists():
        raise UserError(f"runs folder {args.runs_dir} does not exist")
    if not args.runs_dir.is_dir():
        raise UserError(f"runs folder {args.runs_dir} is a file, not a folder")
    folders = list(run_folders(args.runs_dir))
    left_out = [run_dir for run_dir in folders if read_json(run_dir / "config.json") is None]
    if left_out:
        print(left_out_note(left_out), file=sys.stderr)
    states = {run_dir: run_state(run_dir) for run_dir in set(folders) - set(left_out)}
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
    print(f"{count(len(states), 'run')}: " + ", ".join(f"{total[s]} {n}" for s, n in names.items()))
    for state, name in names.items():
        listed = [d for d, s in states.items() if s == state]
        if listed and (state != FINISHED or args.all):
            print(f"{name}:")
            for run_dir in sorted(listed):
                print(_status_line(run_dir, state))
    older = older_recipes(args.runs_dir)
    if older:
        print(
            f"{count(len(older), 'finished run')} of older recipes (the current code trains their "
            "configs differently: launching them runs them anew; reports show these as "
            "superseded; move them out of the runs folder to drop them):"
        )
        for o in older:
            now = f"now {o.current_id}" if o.current_id else "its config no longer builds"
            print(f"  {o.run_dir}  ({now})")
    return 0
