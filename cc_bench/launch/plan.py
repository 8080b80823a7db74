"""The plan of a launch: each run of a suite with what launching does with it.

The run folders are the truth: a finished run (`summary.json`) is skipped, a failed one
retried, an unfinished one with a checkpoint resumed, one held by a live process left alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from cc_bench.config import config_from_dict, config_to_dict, given_values, run_id
from cc_bench.errors import UserError
from cc_bench.registry import get_benchmark
from cc_bench.rundir import FAILED, FINISHED, RUNNING, UNFINISHED, read_json, run_folders, run_state
from cc_bench.suites import PlannedRun
from cc_bench.words import count

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


def _what_differs(steps: Sequence[Step]) -> dict[int, str]:
    """Per step, the config values that tell its run apart from the other runs of its
    benchmark in the plan, beyond conv and seed (`split=quadrant`, `env_id=ALE/Pong-v5`)."""
    configs = {id(s): config_to_dict(s.run.cfg) for s in steps}
    values: dict[tuple[str, str], set[str]] = {}  # (benchmark, field) -> the values seen
    for s in steps:
        for key, value in configs[id(s)].items():
            if key not in ("conv", "seed"):  # in the run id already
                values.setdefault((s.run.benchmark, key), set()).add(repr(value))
    varying = {field for field, seen in values.items() if len(seen) > 1}
    return {
        id(s): " ".join(
            f"{k}={v}" for k, v in configs[id(s)].items() if (s.run.benchmark, k) in varying
        )
        for s in steps
    }


def print_plan(steps: Sequence[Step], out: TextIO) -> None:
    """One line per run: benchmark, run id, what launching would do, and what sets the run
    apart from the others of its benchmark."""
    width = max(len(s.run.benchmark) for s in steps)
    id_width = max(len(s.run.run_id) for s in steps)
    action_width = max(len(_ACTION_TEXT[s.action]) for s in steps)
    differs = _what_differs(steps)
    for step in steps:
        line = (
            f"{step.run.benchmark:<{width}}  {step.run.run_id:<{id_width}}  "
            f"{_ACTION_TEXT[step.action]:<{action_width}}  {differs[id(step)]}"
        )
        print(line.rstrip(), file=out)


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
    return f"{count(len(steps), 'run')}: {', '.join(parts)}"


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


@dataclass(frozen=True)
class OlderRecipe:
    """A finished run that the current code would not find for its own config: a default or
    an `auto` rule changed since it ran, so launching that config plans a new run.

    Args:
        run_dir: the finished run's folder.
        current_id: the id the current code gives its config (None: the config no longer
            builds, e.g. a field was removed).
    """

    run_dir: Path
    current_id: str | None


def older_recipes(root: Path) -> list[OlderRecipe]:
    """The finished runs under `root` whose config (as given) the current code trains with
    another recipe: their run id is not the one the same config gets now. Runs of
    benchmarks not registered here are left out (nothing to compare with)."""
    found = []
    for run_dir in run_folders(root) if Path(root).is_dir() else ():
        meta = read_json(run_dir / "config.json") or {}
        if run_state(run_dir) != FINISHED or not isinstance(meta.get("config"), dict):
            continue
        try:
            bench = get_benchmark(str(meta.get("benchmark")))
        except UserError:
            continue
        try:
            fields = meta.get("given") if isinstance(meta.get("given"), list) else None
            given = given_values(meta["config"], fields)
            now = run_id(bench.name, config_from_dict(bench.config_cls, given))
        except (UserError, TypeError, ValueError):
            now = None
        if now != meta.get("run_id", run_dir.name):
            found.append(OlderRecipe(run_dir, now))
    return sorted(found, key=lambda o: o.run_dir)


def print_older_recipes(steps: Sequence[Step], suite_dir: Path, out: TextIO, *, full: bool) -> None:
    """Say which finished runs in the suite's folder are older recipes of planned configs:
    the plan runs those configs anew and leaves these runs where they are. `full` lists
    each one; else one line with the count."""
    planned = {s.run.run_id for s in steps}
    older = [
        o
        for o in older_recipes(suite_dir)
        if o.current_id in planned and o.run_dir.name not in planned
    ]
    if not older:
        return
    print(
        f"{count(len(older), 'finished run')} of older recipes, not in this plan (the current code "
        "trains their configs differently, so the plan runs those configs anew; reports show "
        "them as superseded; move them out of the runs folder to drop them)"
        + (
            ":"
            if full
            else f"; `cc-bench launch ... --dry-run` or `cc-bench status {suite_dir}` lists them"
        ),
        file=out,
    )
    if full:
        for o in older:
            print(f"  {o.run_dir}  (now {o.current_id})", file=out)
