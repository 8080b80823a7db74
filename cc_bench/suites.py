"""Suites: named grids of runs (benchmarks x config grid x conv variants x seeds), as data.

A suite is what `cc-bench launch SUITE` runs. Each entry names a benchmark, the config values
it fixes, a grid of values to sweep (expanded as a cartesian product), the conv variants and
the number of seeds. Domains register their suites in their package `__init__`, beside their
benchmarks, with `register_suite` (or `extend_suite` for a suite that spans domains, such as
`smoke`). Expanding a suite gives one `PlannedRun` per distinct run id, and the ids come from
`cc_bench.config.run_id`, so the same suite expands to the same runs in every process.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cc_bench.config import BenchConfig, config_from_dict, run_id
from cc_bench.errors import UserError
from cc_bench.registry import get_benchmark, load_domains, lookup

DEFAULT_CONVS = ("conv", "coordconv")


@dataclass(frozen=True)
class SuiteEntry:
    """One benchmark of a suite and the runs it contributes."""

    benchmark: str
    """The registered benchmark name, e.g. `toy.classification`."""
    grid: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    """Config field -> values to sweep; every combination becomes a run."""
    convs: tuple[str, ...] = DEFAULT_CONVS
    """The conv variants compared (`conv`, `coordconv`)."""
    seeds: int = 3
    """Seeds 0 .. seeds-1, unless `cc-bench launch --seeds N` says otherwise."""
    fixed: Mapping[str, Any] = field(default_factory=dict)
    """Config values every run of this entry gets (a budget, a dataset option)."""


@dataclass(frozen=True)
class Suite:
    """A named set of runs: `cc-bench launch NAME` runs them all."""

    name: str
    description: str
    entries: tuple[SuiteEntry, ...]
    finish: str | None = None
    """"module:function" called as `function(suite_dir) -> str` after a local launch: a summary
    of the suite (the toy suite's table beside the paper's), printed at the end."""


@dataclass(frozen=True)
class PlannedRun:
    """One run a suite expands to: its benchmark, config, id and folder, and the fields the
    suite and `--set` gave (the rest are the code's defaults)."""

    benchmark: str
    cfg: BenchConfig
    run_id: str
    run_dir: Path
    given: tuple[str, ...] = ()


_SUITES: dict[str, Suite] = {}


def register_suite(suite: Suite) -> Suite:
    """Register a suite; a duplicate name raises ValueError."""
    if suite.name in _SUITES:
        raise ValueError(f"suite {suite.name!r} is already registered")
    _SUITES[suite.name] = suite
    return suite


def extend_suite(name: str, *entries: SuiteEntry, description: str = "") -> Suite:
    """Add entries to the suite `name` (creating it), for suites that span domains (`smoke`).

    A benchmark already in the suite raises ValueError, as a duplicate registration would.
    """
    suite = _SUITES.get(name) or Suite(name, description, ())
    present = {e.benchmark for e in suite.entries}
    for entry in entries:
        if entry.benchmark in present:
            raise ValueError(f"suite {name!r} already has an entry for {entry.benchmark!r}")
        present.add(entry.benchmark)
    suite = dataclasses.replace(
        suite,
        description=suite.description or description,
        entries=(*suite.entries, *entries),
    )
    _SUITES[name] = suite
    return suite


def list_suites() -> list[Suite]:
    """Every registered suite, sorted by name."""
    load_domains()
    return [_SUITES[name] for name in sorted(_SUITES)]


def get_suite(name: str) -> Suite:
    """The suite called `name`; an unknown name raises a UserError listing what exists."""
    return lookup(_SUITES, name, "suite")


# -- --set FIELD=VALUE --------------------------------------------------------------------

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _parse_as(text: str, tp: Any) -> Any:
    """`text` as a value of type `tp`, or `text` itself when it does not parse.

    An unparsable value is passed on unchanged, so the config rejects it with its own message
    (which names the field and what it allows).
    """
    origin = typing.get_origin(tp)
    if origin is Literal:
        return text
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if type(None) in args and text.lower() in ("none", "null"):
            return None
        for arg in args:
            value = _parse_as(text, arg)
            if value is not text:
                return value
        return text
    if origin is tuple:
        item = (typing.get_args(tp) or (str,))[0]
        return tuple(_parse_as(part, item) for part in text.replace(",", " ").split())
    if tp is bool:
        low = text.lower()
        return True if low in _TRUE else False if low in _FALSE else text
    if tp in (int, float):
        try:
            return tp(text)
        except ValueError:
            return text
    return text


def parse_sets(suite: Suite, sets: Sequence[str]) -> dict[str, str]:
    """`FIELD=VALUE` strings as a dict; a malformed one or a field no entry has is a UserError."""
    parsed: dict[str, str] = {}
    for item in sets:
        name, sep, value = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise UserError(f"--set takes FIELD=VALUE, got {item!r}")
        parsed[name] = value
    _check_set_fields(suite, parsed)
    return parsed


def _config_fields(cls: type[BenchConfig]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _check_set_fields(suite: Suite, sets: Mapping[str, str]) -> None:
    known: set[str] = set()
    for entry in suite.entries:
        known |= set(_config_fields(get_benchmark(entry.benchmark).config_cls))
    unknown = sorted(set(sets) - known)
    if unknown:
        close = difflib.get_close_matches(unknown[0], known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UserError(
            f"--set {unknown[0]}: no benchmark of suite {suite.name!r} has that field; "
            f"{hint}fields: {', '.join(sorted(known))}"
        )


# -- expansion -----------------------------------------------------------------------------


def _entry_points(entry: SuiteEntry, seeds: int | None) -> list[dict[str, Any]]:
    """The config values of every run of an entry, before `--set`."""
    axes = {
        **{name: list(values) for name, values in entry.grid.items()},
        "conv": list(entry.convs),
        "seed": list(range(entry.seeds if seeds is None else seeds)),
    }
    names = list(axes)
    return [
        {**entry.fixed, **dict(zip(names, combo, strict=True))}
        for combo in itertools.product(*axes.values())
    ]


def expand(
    suite: Suite,
    seeds: int | None = None,
    sets: Mapping[str, str] | None = None,
    *,
    runs_dir: Path | str = "runs",
) -> list[PlannedRun]:
    """The runs of `suite`, in a stable order, one per distinct run id.

    Args:
        suite: the suite to expand.
        seeds: seeds 0 .. seeds-1 for every entry (None: each entry's own count).
        sets: `FIELD -> VALUE` text from `--set`, parsed by the field's type and applied to
            every entry whose config has the field (a sweep over that field collapses to it).
        runs_dir: the runs folder; a run's folder is `runs_dir/<suite>/<benchmark>/<run id>`.
    """
    if seeds is not None and seeds < 1:
        raise UserError(f"invalid --seeds {seeds}: must be >= 1")
    sets = dict(sets or {})
    _check_set_fields(suite, sets)
    planned: dict[tuple[str, str], PlannedRun] = {}
    for entry in suite.entries:
        bench = get_benchmark(entry.benchmark)
        field_types = _config_fields(bench.config_cls)
        overrides = {k: _parse_as(v, field_types[k]) for k, v in sets.items() if k in field_types}
        for values in _entry_points(entry, seeds):
            cfg = config_from_dict(bench.config_cls, {**values, **overrides})
            cfg.check_inputs()
            rid = run_id(bench.name, cfg)
            run_dir = Path(runs_dir) / suite.name / bench.name / rid
            given = tuple(sorted({*values, *overrides}))
            planned.setdefault((bench.name, rid), PlannedRun(bench.name, cfg, rid, run_dir, given))
    return list(planned.values())


# -- the toy suites (for the lead to move into toy/__init__.py) -----------------------------


SMOKE_DESCRIPTION = "every benchmark on a tiny budget, conv and CoordConv, one seed (for tests)"
PAPER_DESCRIPTION = (
    "every domain at the paper's budgets (gen-paper, vae-paper, det-paper, atari9, atari9-dqn "
    "together; image-folder-paper, which needs your images, is launched on its own): for a "
    "Slurm GPU cluster"
)
