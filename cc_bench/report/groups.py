"""Grouping runs: those that differ only in conv and seed compare conv with CoordConv.

A group is one benchmark with one config as given (`cc_bench.config.group_name`), conv and
seed aside. Within it, runs are pooled only when they trained with the same resolved config
(`config.json`'s `resolved`, seed and device aside): when a default changed in the code
between runs, a side holds several recipes, and the group is split into one group per
recipe, never pooled. Each group's title says what sets it apart from the other groups of
its benchmark (`toy.classification · split=quadrant`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from cc_bench import stats
from cc_bench.config import NON_IDENTITY_FIELDS, config_from_dict, group_name
from cc_bench.errors import UserError
from cc_bench.report.runs import HISTORY_SKIP, LABELS, SIDES, STATUS_ORDER, RunRecord, is_number

if TYPE_CHECKING:
    from cc_bench.registry import Benchmark

# Config fields that never split a group or a recipe.
IGNORED = NON_IDENTITY_FIELDS | {"conv", "seed"}


def registered(benchmark: str) -> Benchmark | None:
    """The registered benchmark of that name, or None (runs of a benchmark unknown here)."""
    from cc_bench.registry import get_benchmark

    try:
        return get_benchmark(benchmark)
    except UserError:
        return None


def group_key(benchmark: str, config: dict[str, Any]) -> tuple[str, bool]:
    """The group of a run and whether it is exact.

    Exact: `group_name` of the config rebuilt with the benchmark's config class. If the
    benchmark is unknown here or its config no longer builds, a hash of the config without
    conv, seed and device.
    """
    bench = registered(benchmark)
    if bench is not None:
        try:
            return group_name(benchmark, config_from_dict(bench.config_cls, config)), True
        except (UserError, TypeError, ValueError):
            pass
    values = {k: v for k, v in config.items() if k not in IGNORED}
    text = json.dumps({"benchmark": benchmark, "config": values}, sort_keys=True, default=str)
    return f"{benchmark}-{hashlib.sha1(text.encode()).hexdigest()[:8]}", False


def format_value(value: Any) -> str:
    """A config value as a reader types it: strings bare, the rest as JSON (`[32, 32]`)."""
    return value if isinstance(value, str) else json.dumps(value)


@dataclass
class Group:
    """Runs of one benchmark whose configs differ only in conv and seed.

    Args:
        name: the group's key: the benchmark and a hash of its config (the W&B group).
        benchmark: the benchmark's name.
        runs: the runs, every status.
        exact: False when the key is a hash of the stored config (benchmark unknown here).
        title: what sets the group apart from the other groups of its benchmark.
        recipe: which of the config's recipes (1: the newest) when it has several, else 0.
        notes: what a reader must know about the group (split recipes, code versions).
    """

    name: str
    benchmark: str
    runs: list[RunRecord]
    exact: bool = True
    title: str = ""
    recipe: int = 0
    notes: list[str] = field(default_factory=list)

    @cached_property
    def spec(self) -> Benchmark | None:
        """The registered benchmark (its declared metrics), or None when unknown here."""
        return registered(self.benchmark)

    def direction(self, metric: str) -> str | None:
        """`higher`, `lower` or `neither` as the benchmark declares it; None if undeclared."""
        return self.spec.direction(metric) if self.spec else None

    def higher(self, metric: str) -> bool | None:
        """Whether higher is better (None: no direction, so no verdict)."""
        return {"higher": True, "lower": False}.get(self.direction(metric) or "")

    @property
    def headline(self) -> tuple[str, ...]:
        """The benchmark's headline metrics (none when it is unknown here)."""
        return tuple(self.spec.headline) if self.spec else ()

    @property
    def curve_x(self) -> str:
        """The logged key the benchmark's learning curves use as x (`step` when unknown)."""
        return self.spec.curve_x if self.spec else "step"

    def finished(self, side: str) -> list[RunRecord]:
        """The finished runs of one side (`conv` or `coordconv`), by seed."""
        return [r for r in self.runs if r.conv == side and r.status == "finished"]

    def values(self, side: str, metric: str) -> list[float | None]:
        """One side's final values of `metric`, one per finished run."""
        return [r.summary.get(metric) for r in self.finished(side)]

    def metrics(self) -> list[str]:
        """The final metrics with a number in some finished run: headline metrics first (in
        the declared order), then the other declared ones, then undeclared ones."""
        names = {
            k
            for side in SIDES
            for r in self.finished(side)
            for k, v in r.summary.items()
            if is_number(v)
        }
        head = [m for m in self.headline if m in names]
        declared = sorted(m for m in names - set(head) if self.direction(m))
        return head + declared + sorted(names - set(head) - set(declared))

    def curve_metrics(self) -> list[str]:
        """The logged metrics of the finished runs, in the order first logged."""
        skip = HISTORY_SKIP | {self.curve_x}
        names: dict[str, None] = {}
        for side in SIDES:
            for r in self.finished(side):
                for row in r.history:
                    names.update((k, None) for k in row if k not in skip)
        return list(names)

    def compare(self, metric: str) -> stats.Comparison:
        """CoordConv against conv on `metric` (the difference is CoordConv - conv)."""
        return stats.compare(self.values("coordconv", metric), self.values("conv", metric))

    def trained_with(self) -> tuple[list[str], list[str]]:
        """The resolved config: `key=value` shared by both sides, and per-side values.

        Returns (shared, per_side): `epochs=12` where every run trained with it, and
        `epochs: conv 12, CoordConv 1` where the sides differ (seed and device aside).
        """
        keys = dict.fromkeys(k for r in self.runs for k in r.resolved if k not in IGNORED)
        shared, per_side = [], []
        for key in keys:
            seen = {
                side: list(dict.fromkeys(format_value(r.resolved.get(key)) for r in runs))
                for side in SIDES
                if (runs := [r for r in self.runs if r.conv == side])
            }
            every = {v for values in seen.values() for v in values}
            if len(every) == 1:
                shared.append(f"{key}={every.pop()}")
            else:
                sides = ", ".join(f"{LABELS[s]} {' / '.join(v)}" for s, v in seen.items())
                per_side.append(f"{key}: {sides}")
        return shared, per_side

    def code_versions(self) -> dict[str, list[RunRecord]]:
        """The runs by the code that made them (`0.1.0 at 1a2b3c4d5e6f`)."""
        versions: dict[str, list[RunRecord]] = {}
        for r in self.runs:
            versions.setdefault(r.code, []).append(r)
        return versions

    def status_line(self) -> str:
        """How many runs are finished, running, unfinished and failed, with their seeds."""
        parts = []
        for status in sorted({r.status for r in self.runs}, key=status_rank):
            runs = [r for r in self.runs if r.status == status]
            parts.append(f"{len(runs)} {status} ({describe(runs)})")
        return ", ".join(parts)


def describe(runs: Sequence[RunRecord]) -> str:
    """`conv seeds 0, 1; CoordConv seed 0`, or per run with its error where there is one."""
    if any(r.error for r in runs):
        return "; ".join(
            f"{LABELS.get(r.conv, r.conv)} seed {r.seed}" + (f": {r.error}" if r.error else "")
            for r in runs
        )
    seeds: dict[str, list[str]] = {}
    for r in runs:
        seeds.setdefault(LABELS.get(r.conv, r.conv), []).append(str(r.seed))
    return "; ".join(
        f"{side} seed{'s' if len(s) > 1 else ''} {', '.join(s)}" for side, s in seeds.items()
    )


def status_rank(status: str) -> int:
    """Where a status goes in lists: finished, running, unfinished, failed, anything else."""
    return STATUS_ORDER.index(status) if status in STATUS_ORDER else len(STATUS_ORDER)


def _recipe_key(run: RunRecord) -> str:
    values = {k: v for k, v in run.resolved.items() if k not in NON_IDENTITY_FIELDS | {"seed"}}
    return json.dumps(values, sort_keys=True, default=str)


def split_recipes(group: Group) -> list[Group]:
    """The group, or one group per recipe when a side's runs trained with different configs.

    A side's recipes are ordered newest first (by when their runs were created); recipe i
    pairs the i-th newest conv recipe with the i-th newest CoordConv one. Runs of different
    recipes are never pooled.
    """
    recipes: dict[str, list[list[RunRecord]]] = {}
    for side in SIDES:
        by_key: dict[str, list[RunRecord]] = {}
        for run in group.runs:
            if run.conv == side:
                by_key.setdefault(_recipe_key(run), []).append(run)
        recipes[side] = sorted(by_key.values(), key=lambda rs: max(r.created for r in rs))[::-1]
    others = [r for r in group.runs if r.conv not in SIDES]
    n = max(len(v) for v in recipes.values())
    if n <= 1:
        return [group]
    differ = sorted(
        {
            k
            for side in SIDES
            for runs in recipes[side]
            for k in runs[0].resolved
            if k not in IGNORED
            and len({json.dumps(rs[0].resolved.get(k), default=str) for rs in recipes[side]}) > 1
        }
    )
    note = (
        f"The runs of this config trained with {n} different recipes (their resolved configs "
        f"differ in {', '.join(differ) or 'seed-independent fields'}: a default changed in "
        "the code between them), so each recipe is shown on its own, never pooled. Recipe 1 "
        "is the newest; recipe i pairs the i-th newest conv recipe with the i-th newest "
        "CoordConv one."
    )
    return [
        Group(
            group.name,
            group.benchmark,
            [r for side in SIDES if i < len(recipes[side]) for r in recipes[side][i]]
            + (others if i == 0 else []),
            group.exact,
            recipe=i + 1,
            notes=[note],
        )
        for i in range(n)
    ]


def _title_groups(groups: Sequence[Group]) -> None:
    """Title each group by what sets its config apart from the other groups of its benchmark."""
    by_bench: dict[str, dict[str, dict[str, Any]]] = {}
    for g in groups:
        config = {k: v for k, v in g.runs[0].config.items() if k not in IGNORED}
        by_bench.setdefault(g.benchmark, {})[g.name] = config
    for g in groups:
        configs = by_bench[g.benchmark]
        keys = dict.fromkeys(k for c in configs.values() for k in c)
        differ = [
            k
            for k in keys
            if len({json.dumps(c.get(k), sort_keys=True, default=str) for c in configs.values()})
            > 1
        ]
        mine = configs[g.name]
        parts = [g.benchmark, *(f"{k}={format_value(mine.get(k))}" for k in differ)]
        if g.recipe:
            parts.append(f"recipe {g.recipe}")
        g.title = " · ".join(parts)


def _note_versions(group: Group) -> None:
    versions = group.code_versions()
    if len(versions) > 1:
        made = "; ".join(f"{code}: {describe(runs)}" for code, runs in versions.items())
        group.notes.append(f"Runs of this group were made by different code versions: {made}.")


def group_runs(records: Iterable[RunRecord]) -> list[Group]:
    """Records grouped by benchmark and config apart from conv and seed, split by recipe,
    titled, and sorted by benchmark and title."""
    by_name: dict[str, Group] = {}
    for record in records:
        name, exact = group_key(record.benchmark, record.config)
        by_name.setdefault(name, Group(name, record.benchmark, [], exact)).runs.append(record)
    groups = [part for g in by_name.values() for part in split_recipes(g)]
    _title_groups(groups)
    for group in groups:
        group.runs.sort(key=lambda r: (r.conv, str(r.seed), r.run_id))
        _note_versions(group)
    return sorted(groups, key=lambda g: (g.benchmark, g.title))
