"""Grouping runs: which conv runs compare with which CoordConv runs.

Runs are pooled only when they trained with the same resolved config (`config.json`'s
`resolved`: per-conv defaults and `auto` values filled in), seed and device aside: one
recipe of one side (a benchmark's `run_time_fields`, such as whether data may be downloaded,
never split one either). A comparison (a group) pairs a conv recipe with a CoordConv recipe that
share their resolved config apart from the fields resolved per conv (`BenchConfig.
per_conv_fields`, shown per side), when the current code trains one command line with both,
whatever that command line said. A recipe the current code no longer trains for its given
config (a default changed since) is older: its comparison is shown, labelled superseded, and
left out of the overview and the aggregate. Each group's title says what sets it apart from
the other groups of its benchmark (`toy.classification · split=quadrant`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from cc_bench import stats
from cc_bench.config import (
    NON_IDENTITY_FIELDS,
    config_from_dict,
    config_to_dict,
    given_values,
    group_name,
    run_id,
)
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
        name: the W&B group(s) of its runs (the benchmark and a hash of the given config).
        benchmark: the benchmark's name.
        runs: the runs, every status.
        exact: False when its runs' configs could not be rebuilt here (benchmark unknown,
            or its config no longer builds), so they were paired by the stored config.
        title: what sets the group apart from the other groups of its benchmark.
        superseded: whether a side trained with an older recipe than the current code uses
            for its config (shown, but left out of the overview and the aggregate).
        notes: what a reader must know about the group (older recipes, code versions).
    """

    name: str
    benchmark: str
    runs: list[RunRecord]
    exact: bool = True
    title: str = ""
    superseded: bool = False
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
        the declared order), then the other metrics with a direction, then those declared
        `neither` (shares, step sizes: read, not judged), then undeclared ones."""
        names = {
            k
            for side in SIDES
            for r in self.finished(side)
            for k, v in r.summary.items()
            if is_number(v)
        }
        rest = names - {m for m in self.headline}
        head = [m for m in self.headline if m in names]
        directed = sorted(m for m in rest if self.direction(m) in ("higher", "lower"))
        neither = sorted(m for m in rest if self.direction(m) == "neither")
        return head + directed + neither + sorted(rest - set(directed) - set(neither))

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
        skip = ignored(self.benchmark)
        keys = dict.fromkeys(k for r in self.runs for k in r.resolved if k not in skip)
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


# -- recipes and comparisons -----------------------------------------------------------------


def _values(config: dict[str, Any], drop: frozenset[str] | set[str]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in drop}


def _text(values: dict[str, Any]) -> str:
    return json.dumps(values, sort_keys=True, default=str)


def ignored(benchmark: str) -> frozenset[str]:
    """The fields that never split a group: `IGNORED` and the benchmark's run-time fields
    (`BenchConfig.run_time_fields`; none for a benchmark unknown here). Without conv, they
    never split a recipe either."""
    bench = registered(benchmark)
    return IGNORED | (bench.config_cls.run_time_fields if bench is not None else frozenset())


def per_conv_fields(benchmark: str) -> frozenset[str]:
    """The fields a benchmark resolves per conv (shown per side, never grouped on)."""
    bench = registered(benchmark)
    return bench.config_cls.per_conv_fields() if bench is not None else frozenset()


def resolve_given(benchmark: str, given: dict[str, Any], conv: str | None = None) -> str | None:
    """What the current code trains a given config with (conv set to `conv` if given), as
    the text of its resolved values without seed and device; None when the benchmark is
    unknown here or the config no longer builds."""
    bench = registered(benchmark)
    if bench is None:
        return None
    values = dict(given) if conv is None else {**given, "conv": conv}
    try:
        resolved = config_from_dict(bench.config_cls, values).resolve()
    except (UserError, TypeError, ValueError):
        return None
    return _text(_values(config_to_dict(resolved), ignored(benchmark) - {"conv"}))


@dataclass
class Recipe:
    """The runs of one side that trained with one resolved config (seed aside).

    Args:
        benchmark: the benchmark's name.
        side: `conv`, `coordconv` (or whatever a foreign run says).
        key: the resolved config without seed and device, as text (conv included).
        shared: what both sides of a comparison share: `key` without conv and the fields
            resolved per conv (as text); for a benchmark unknown here, the given config's.
        runs: the runs, every status.
        commands: the given configs the runs came from (without conv, seed and device).
        current: whether the current code trains some of those given configs with exactly
            this recipe (what `cc-bench launch` would find); False: an older recipe.
    """

    benchmark: str
    side: str
    key: str
    shared: str
    runs: list[RunRecord]
    commands: set[str]
    current: bool = True
    _trains: dict[str, set[str]] = field(default_factory=dict, repr=False)

    @property
    def created(self) -> str:
        """When its first run started (ISO 8601)."""
        return min(r.created for r in self.runs)

    @property
    def resolved(self) -> dict[str, Any]:
        """The resolved config (of its first run)."""
        return self.runs[0].resolved

    def given_configs(self) -> list[dict[str, Any]]:
        """The distinct configs as given that its runs were started with: the values their
        command lines or suites set (`config.given_values`), the rest to take today's
        defaults."""
        configs = (given_values(r.config, r.given) for r in self.runs)
        return list({_text(c): c for c in configs}.values())

    def trains(self, conv: str) -> set[str]:
        """The recipes (keys) the current code trains this recipe's command lines with, for
        `conv`: its partner on the other side, where the same command line made both."""
        if conv not in self._trains:
            out = {resolve_given(self.benchmark, c, conv) for c in self.given_configs()}
            self._trains[conv] = {k for k in out if k is not None}
        return self._trains[conv]


def recipes(records: Iterable[RunRecord]) -> list[Recipe]:
    """The runs by benchmark, side and resolved config (seed aside), each marked current or
    not: a recipe is older when the current code no longer trains any of its given configs
    with it (a default or an `auto` rule changed since). For a benchmark unknown here, the
    newest recipe of each side and given config counts as current."""
    by_key: dict[tuple[str, str, str], Recipe] = {}
    for r in records:
        skip = ignored(r.benchmark)
        key = _text(_values(r.resolved, skip - {"conv"}))
        known = registered(r.benchmark) is not None
        shared = (
            _text(_values(r.resolved, skip | per_conv_fields(r.benchmark)))
            if known
            else _text(_values(r.config, skip))
        )
        recipe = by_key.setdefault(
            (r.benchmark, r.conv, key), Recipe(r.benchmark, r.conv, key, shared, [], set())
        )
        recipe.runs.append(r)
        recipe.commands.add(_text(_values(r.config, skip)))
    out = [part for recipe in by_key.values() for part in _one_run_per_seed(recipe)]
    newest: dict[tuple[str, str, str], Recipe] = {}
    for recipe in out:
        if registered(recipe.benchmark) is not None:
            recipe.current = recipe.key in recipe.trains(recipe.side)
            continue
        for command in recipe.commands:  # unknown here: the newest of its command line
            slot = (recipe.benchmark, recipe.side, command)
            if slot not in newest or newest[slot].created < recipe.created:
                newest[slot] = recipe
    for recipe in out:
        if registered(recipe.benchmark) is None:
            recipe.current = any(
                newest[recipe.benchmark, recipe.side, c] is recipe for c in recipe.commands
            )
    return out


def _one_run_per_seed(recipe: Recipe) -> list[Recipe]:
    """The recipe with at most one run per seed, and a recipe of older ids for the others.

    Two runs of one seed in one recipe are one run twice: a run made under an older run id
    (a field has since left the identity, as `vec_env` did) and its rerun, or a folder copied
    into two runs folders. The run whose id the current code gives its config is kept, else
    the newest; the others form an older recipe (shown superseded), so a seed never counts
    twice in a comparison.
    """
    bench = registered(recipe.benchmark)
    by_seed: dict[Any, list[RunRecord]] = {}
    for r in recipe.runs:
        by_seed.setdefault(r.config.get("seed"), []).append(r)
    if bench is None or all(len(rs) == 1 for rs in by_seed.values()):
        return [recipe]

    def now_id(r: RunRecord) -> str | None:
        try:
            return run_id(r.benchmark, config_from_dict(bench.config_cls, r.config))
        except (UserError, TypeError, ValueError):
            return None

    kept, older = [], []
    for rs in by_seed.values():
        best = max(rs, key=lambda r: (now_id(r) == r.run_id, r.created))
        kept.append(best)
        older += [r for r in rs if r is not best]
    recipe.runs = kept
    old = Recipe(
        recipe.benchmark,
        recipe.side,
        recipe.key + " · older run ids",
        recipe.shared,
        older,
        {_text(_values(r.config, ignored(r.benchmark))) for r in older},
    )
    return [recipe, old]


def _pairs(rs: Sequence[Recipe]) -> list[tuple[Recipe, ...]]:
    """Which conv recipe compares with which CoordConv recipe, among recipes that share
    everything but the per-conv fields.

    Current recipes pair when they came from one command line, or when the current code
    trains one command line with both (so a conv recipe pairs with every CoordConv recipe
    whose command line differs from its own only in values the conv side resolves alike). An older recipe pairs with the other side's recipe of the same
    command line that started nearest in time to it: its partner of the day. A recipe with
    no partner stands alone, and so does a current recipe whose only partners are older.
    """
    conv = [r for r in rs if r.side == "conv"]
    coord = [r for r in rs if r.side == "coordconv"]
    pairs: dict[tuple[int, int], tuple[Recipe, Recipe]] = {}
    for c in conv:
        for x in coord:
            if not (c.current and x.current):
                continue
            if (
                c.commands & x.commands
                or c.key in x.trains("conv")
                or x.key in c.trains("coordconv")
            ):
                pairs[id(c), id(x)] = (c, x)
    for old in (r for r in rs if not r.current and r.side in SIDES):
        others = [r for r in (coord if old.side == "conv" else conv) if r.commands & old.commands]
        if not others:
            continue
        partner = min(others, key=lambda r: (_gap(r.created, old.created), r.current))
        c, x = (old, partner) if old.side == "conv" else (partner, old)
        pairs.setdefault((id(c), id(x)), (c, x))
    # A current recipe without a current partner also stands alone (current, one-sided),
    # whatever older recipe it was compared with: the superseded comparison is history, and
    # the current runs must not vanish into it.
    current = {id(r) for pair in pairs.values() if all(q.current for q in pair) for r in pair}
    paired = {id(r) for pair in pairs.values() for r in pair}
    alone = [r for r in rs if id(r) not in paired or (r.current and id(r) not in current)]
    return [*pairs.values(), *((r,) for r in alone)]


def _gap(a: str, b: str) -> float:
    """Seconds between two ISO 8601 times (infinite when either is not one)."""
    from datetime import datetime

    try:
        return abs((datetime.fromisoformat(a) - datetime.fromisoformat(b)).total_seconds())
    except (TypeError, ValueError):
        return math.inf


def _wandb_group(records: Sequence[RunRecord]) -> str:
    """The W&B group(s) of the runs (the given config's), comma-separated."""
    names = dict.fromkeys(group_key(r.benchmark, r.config)[0] for r in records)
    return ", ".join(names)


def describe_sides(group: Group) -> dict[str, dict[str, str]]:
    """A group's config as its title may show it (conv and seed aside): per field, each
    side's value."""
    source = "resolved" if group.exact else "config"
    skip = ignored(group.benchmark)
    out: dict[str, dict[str, str]] = {}
    for r in group.runs:
        for key, value in getattr(r, source).items():
            if key not in skip:
                out.setdefault(key, {}).setdefault(r.conv, format_value(value))
    return out


def _title_groups(groups: Sequence[Group]) -> None:
    """Title each group by what sets its config apart from the other groups of its benchmark
    (`lr=0.01`, or per side: `lr: conv 0.01, CoordConv 0.005`), and `superseded` for a
    comparison of an older recipe. A current group's title is set apart from the other
    current groups only."""
    described = {id(g): describe_sides(g) for g in groups}
    for g in groups:
        # a current group is told apart from the current ones (older recipes do not
        # lengthen its title); a superseded one from every group of its benchmark
        siblings = [
            described[id(o)]
            for o in groups
            if o.benchmark == g.benchmark and (g.superseded or not o.superseded)
        ]
        mine = described[id(g)]
        per_conv = per_conv_fields(g.benchmark)
        parts = [g.benchmark]
        for key, sides in mine.items():
            seen = [d.get(key, {}) for d in siblings]
            if all(len({s.get(side) for s in seen if side in s}) == 1 for side in sides):
                continue  # the same in every group of the benchmark
            values = set(sides.values())
            if len(values) == 1 and (len(sides) == 2 or key not in per_conv):
                parts.append(f"{key}={values.pop()}")
            else:
                by_side = ", ".join(f"{LABELS.get(s, s)} {v}" for s, v in sides.items())
                parts.append(f"{key}: {by_side}")
        if g.superseded:
            parts.append("superseded")
        g.title = " · ".join(parts)
    _tell_apart(groups, described)


def _tell_apart(groups: Sequence[Group], described: dict[int, dict[str, dict[str, str]]]) -> None:
    """Groups the rule above leaves with one title (a lone conv recipe and a lone CoordConv
    recipe of one benchmark that differ in a value, each the only one of its side) get the
    fields they differ in, per side; any still alike, a number. A title names one section
    and its plots' files: two alike would read as one comparison and overwrite its plots."""
    by_title: dict[str, list[Group]] = {}
    for g in groups:
        by_title.setdefault(g.title, []).append(g)
    for title, alike in by_title.items():
        if len(alike) < 2:
            continue
        # What a command line set, where the runs recorded it, goes before the per-conv
        # defaults that differ between any conv and CoordConv recipe.
        given = {k for o in alike for r in o.runs for k in (r.given or ())}
        for g in alike:
            mine = described[id(g)]
            others = [described[id(o)] for o in alike if o is not g]
            differ = [
                key
                for key, sides in mine.items()
                if any(set(sides.values()) != set(o.get(key, {}).values()) for o in others)
            ]
            differ = [k for k in differ if k in given] or differ
            parts = [
                f"{key}: " + ", ".join(f"{LABELS.get(s, s)} {v}" for s, v in mine[key].items())
                for key in differ
            ]
            if parts:
                g.title = " · ".join([title, *parts])
        titles = [g.title for g in alike]
        seen: dict[str, int] = {}
        for g, t in zip(alike, titles, strict=True):
            if titles.count(t) > 1:
                seen[t] = seen.get(t, 0) + 1
                g.title = f"{t} ({seen[t]})"


def _note_versions(group: Group) -> None:
    versions = group.code_versions()
    mixed = [r for r in group.runs if r.mixed_code]
    if len(versions) > 1:
        made = "; ".join(f"{code}: {describe(runs)}" for code, runs in versions.items())
        group.notes.append(f"Runs of this group were made by different code versions: {made}.")
    elif mixed:
        group.notes.append(
            f"Some runs were resumed by other code than started them ({describe(mixed)}): "
            f"{'; '.join(r.code for r in mixed)}."
        )


def _note_machines(group: Group) -> None:
    """Runs of one group on different machines (or thread counts): their speeds differ by
    machine as well as by layer, which a reader must know before comparing them."""
    machines: dict[str, list[RunRecord]] = {}
    for r in group.runs:
        if r.machines:
            machines.setdefault(", resumed on ".join(r.machines_used), []).append(r)
    if len(machines) > 1:
        made = ", ".join(f"{m} ({describe(runs)})" for m, runs in machines.items())
        group.notes.append(
            f"Runs of this group computed on different machines: {made}. Their speed figures "
            "(wall time, steps or images per second) compare machines as well as layers."
        )


def _note_superseded(group: Group, parts: Sequence[Recipe]) -> None:
    if not group.superseded:
        return
    old = [LABELS.get(r.side, r.side) for r in parts if not r.current]
    group.notes.append(
        f"Superseded: the current code trains this config differently ({' and '.join(old)} "
        "side: a default or an `auto` rule changed since these runs), so this comparison of "
        'an older recipe is shown but enters neither the overview nor "Across tasks". '
        "`cc-bench status` lists such runs."
    )


def group_runs(records: Iterable[RunRecord]) -> list[Group]:
    """The comparisons: conv and CoordConv recipes that share their resolved config apart
    from conv, seed and the per-conv fields, paired as `_pairs` says; titled, and sorted by
    benchmark, current before superseded, and title.

    Within a side, runs are pooled only when their resolved configs agree in everything but
    seed; a recipe that pairs with several others appears in each comparison.
    """
    buckets: dict[tuple[str, str], list[Recipe]] = {}
    for recipe in recipes(records):
        buckets.setdefault((recipe.benchmark, recipe.shared), []).append(recipe)
    groups = []
    for (benchmark, _), rs in buckets.items():
        for parts in _pairs(rs):
            runs = [r for recipe in parts for r in recipe.runs]
            group = Group(
                _wandb_group(runs),
                benchmark,
                runs,
                exact=registered(benchmark) is not None and all(r.trains(r.side) for r in parts),
                superseded=not all(r.current for r in parts),
            )
            _note_superseded(group, parts)
            groups.append(group)
    _title_groups(groups)
    for group in groups:
        group.runs.sort(key=lambda r: (r.conv, str(r.seed), r.run_id))
        _note_versions(group)
        _note_machines(group)
    return sorted(groups, key=lambda g: (g.benchmark, g.superseded, g.title))
