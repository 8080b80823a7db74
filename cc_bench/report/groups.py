"""Grouping runs: those that differ only in conv and seed compare conv with CoordConv."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cc_bench import stats
from cc_bench.config import NON_IDENTITY_FIELDS, config_from_dict, group_name
from cc_bench.errors import UserError
from cc_bench.report.runs import HISTORY_SKIP, LABELS, SIDES, STATUS_ORDER, RunRecord, is_number


def _config_cls(benchmark: str) -> type | None:
    from cc_bench.registry import get_benchmark

    try:
        return get_benchmark(benchmark).config_cls
    except UserError:
        return None


def group_key(benchmark: str, config: dict[str, Any]) -> tuple[str, bool]:
    """The group of a run and whether it is exact.

    Exact: `group_name` of the config rebuilt with the benchmark's config class, so per-conv
    defaults count as "default". If the benchmark is unknown here or its config no longer
    builds, a hash of the config without conv, seed and device (per-conv defaults then split
    conv from CoordConv when they differ).
    """
    cls = _config_cls(benchmark)
    if cls is not None:
        try:
            return group_name(benchmark, config_from_dict(cls, config)), True
        except (UserError, TypeError, ValueError):
            pass
    values = {k: v for k, v in config.items() if k not in NON_IDENTITY_FIELDS | {"conv", "seed"}}
    text = json.dumps({"benchmark": benchmark, "config": values}, sort_keys=True, default=str)
    return f"{benchmark}-{hashlib.sha1(text.encode()).hexdigest()[:8]}", False


@dataclass
class Group:
    """Runs of one benchmark whose configs differ only in conv and seed."""

    name: str
    benchmark: str
    runs: list[RunRecord]
    exact: bool = True

    def finished(self, side: str) -> list[RunRecord]:
        """The finished runs of one side (`conv` or `coordconv`), by seed."""
        return [r for r in self.runs if r.conv == side and r.status == "finished"]

    def values(self, side: str, metric: str) -> list[float | None]:
        """One side's final values of `metric`, one per finished run."""
        return [r.summary.get(metric) for r in self.finished(side)]

    def metrics(self) -> list[str]:
        """The final metrics with a number in some finished run, sorted."""
        names = {
            k
            for side in SIDES
            for r in self.finished(side)
            for k, v in r.summary.items()
            if is_number(v)
        }
        return sorted(names)

    def curve_metrics(self) -> list[str]:
        """The logged metrics of the finished runs, in the order first logged."""
        names: dict[str, None] = {}
        for side in SIDES:
            for r in self.finished(side):
                for row in r.history:
                    names.update((k, None) for k in row if k not in HISTORY_SKIP)
        return list(names)

    def compare(self, metric: str) -> stats.Comparison:
        """CoordConv against conv on `metric` (the difference is CoordConv - conv)."""
        return stats.compare(self.values("coordconv", metric), self.values("conv", metric))

    def shared_config(self) -> str:
        """The config fields apart from conv, seed and device; per-side values where they differ."""
        skip = NON_IDENTITY_FIELDS | {"conv", "seed"}
        keys = dict.fromkeys(k for r in self.runs for k in r.config if k not in skip)
        parts = []
        for key in keys:
            per_side = {
                side: {json.dumps(r.config.get(key)) for r in self.runs if r.conv == side}
                for side in SIDES
            }
            every = set().union(*per_side.values())
            if len(every) == 1:
                parts.append(f"{key}={every.pop()}")
            else:
                shown = " / ".join(
                    f"{LABELS[s]}: {', '.join(sorted(v))}" for s, v in per_side.items() if v
                )
                parts.append(f"{key}=({shown})")
        return ", ".join(parts)

    def status_line(self) -> str:
        """How many runs are finished, running, unfinished and failed, with their seeds."""
        parts = []
        for status in sorted({r.status for r in self.runs}, key=_status_rank):
            runs = [r for r in self.runs if r.status == status]
            parts.append(f"{len(runs)} {status} ({_describe(runs)})")
        return ", ".join(parts)


def _describe(runs: Sequence[RunRecord]) -> str:
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


def _status_rank(status: str) -> int:
    return STATUS_ORDER.index(status) if status in STATUS_ORDER else len(STATUS_ORDER)


def group_runs(records: Iterable[RunRecord]) -> list[Group]:
    """Records grouped by benchmark and config apart from conv and seed, sorted by name."""
    groups: dict[str, Group] = {}
    for record in records:
        name, exact = group_key(record.benchmark, record.config)
        group = groups.setdefault(name, Group(name, record.benchmark, [], exact))
        group.runs.append(record)
    for group in groups.values():
        group.runs.sort(key=lambda r: (r.conv, str(r.seed), r.run_id))
    return [groups[name] for name in sorted(groups)]
