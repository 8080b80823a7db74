"""The benchmark registry: names mapped to a config class and a lazily imported run function.

Domains register their benchmarks in their package `__init__` with `register_benchmark`,
naming the run function as "module:function" so that listing benchmarks or printing
`--help` never imports torch. The core reaches the domains only through `_DOMAINS`.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from cc_bench.config import BenchConfig
from cc_bench.errors import UserError

if TYPE_CHECKING:
    from cc_bench.tracking import Tracker

T = TypeVar("T")
RunFn = Callable[[Any, "Tracker"], dict[str, Any]]
Direction = Literal["higher", "lower", "neither"]
DIRECTIONS = ("higher", "lower", "neither")
# Bounds for the across-task aggregate: `normalizer(metric, resolved_config) -> (low, high)`
# maps a run's score to (score - low) / (high - low); None falls back to min-max.
Normalizer = Callable[[str, Mapping[str, Any]], "tuple[float, float] | None"]

_DOMAINS = (
    "cc_bench.toy",
    "cc_bench.gan",
    "cc_bench.vae",
    "cc_bench.rl",
    "cc_bench.detection",
)
_REGISTRY: dict[str, Benchmark] = {}


@dataclass(frozen=True)
class Benchmark:
    """A registered benchmark: its name, config class, run function and one-line description."""

    name: str
    config_cls: type[BenchConfig]
    run_path: str
    description: str
    metrics: Mapping[str, Direction] = field(default_factory=dict)
    """Summary metric -> which way it is better; the report gives a verdict only on these."""
    headline: tuple[str, ...] = ()
    """The metrics the report's overview and "Across tasks" table lead with, in order."""
    normalizer: str | None = None
    """"module:function", a `Normalizer` for the across-task aggregate; None: min-max."""
    curve_x: str = "step"
    """The logged key learning curves are drawn against, one both sides have (examples seen,
    env steps, wall seconds: `time`); `step` when each logged step is comparable."""
    curve_x_label: str = ""
    """`curve_x` in words for the axis (`epoch`, `env frames`); empty: the key itself."""
    curves: tuple[str, ...] = ()
    """The logged metrics whose learning curves come first, in order; the others follow by
    prefix (test/, eval/, charts/, train/, others, losses/, perf/)."""

    def load_run(self) -> RunFn:
        """Import and return the run function `run(cfg, tracker) -> metrics`."""
        return _import_path(self.run_path)

    def direction(self, metric: str) -> Direction | None:
        """Which way `metric` is better as declared, or None when it is not declared."""
        return self.metrics.get(metric)

    def load_normalizer(self) -> Normalizer | None:
        """The declared normaliser, imported; None for min-max."""
        return _import_path(self.normalizer) if self.normalizer else None


def _import_path(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def register_benchmark(
    name: str,
    config_cls: type[BenchConfig],
    run: str,
    description: str,
    *,
    metrics: Mapping[str, Direction],
    headline: tuple[str, ...],
    normalizer: str | None = None,
    curve_x: str = "step",
    curve_x_label: str = "",
    curves: tuple[str, ...] = (),
) -> Benchmark:
    """Register a benchmark; `run` is "package.module:function". A duplicate name raises.

    Args:
        metrics: each summary metric the report should judge -> "higher", "lower" or
            "neither" (compared, but no verdict). Undeclared metrics are shown without one.
        headline: the declared metrics the report leads with (overview, "Across tasks").
        normalizer: "module:function" giving (low, high) per metric and resolved config for
            the across-task aggregate (Atari: random and human scores); default min-max.
        curve_x: the logged key the learning curves use as their x axis.
        curve_x_label: `curve_x` in words for the axis (`epoch`, `env frames`).
        curves: logged metrics (`charts/episodic_return`) whose curves the report shows
            first, in this order.
    """
    if name in _REGISTRY:
        raise ValueError(f"benchmark {name!r} is already registered")
    if not issubclass(config_cls, BenchConfig):
        raise TypeError(f"{config_cls.__name__} must derive from cc_bench.config.BenchConfig")
    for path in (run, normalizer or "m:f"):
        if ":" not in path:
            raise ValueError(f"run and normalizer must be 'module:function', got {path!r}")
    bad = {m: d for m, d in metrics.items() if d not in DIRECTIONS}
    if bad:
        raise ValueError(f"{name}: metric directions must be one of {DIRECTIONS}, got {bad}")
    if not headline or not set(headline) <= set(metrics):
        raise ValueError(f"{name}: headline {headline} must be one or more declared metrics")
    if isinstance(curves, str) or not all(isinstance(c, str) and c for c in curves):
        raise ValueError(f"{name}: curves must be a tuple of logged metric names, got {curves!r}")
    if len(set(curves)) != len(curves) or curve_x in curves:
        raise ValueError(f"{name}: curves {curves} must be distinct and not the x axis {curve_x!r}")
    bench = Benchmark(
        name,
        config_cls,
        run,
        description,
        dict(metrics),
        tuple(headline),
        normalizer=normalizer,
        curve_x=curve_x,
        curve_x_label=curve_x_label,
        curves=tuple(curves),
    )
    _REGISTRY[name] = bench
    return bench


def load_domains() -> None:
    """Import every domain package, so their benchmarks and suites are registered."""
    for module in _DOMAINS:
        importlib.import_module(module)


def list_benchmarks() -> list[Benchmark]:
    """Every registered benchmark, sorted by name."""
    load_domains()
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


def lookup(table: Mapping[str, T], name: str, kind: str) -> T:
    """`table[name]`; an unknown name raises a UserError listing what exists, closest first."""
    load_domains()
    if name in table:
        return table[name]
    close = difflib.get_close_matches(name, table, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    known = ", ".join(sorted(table)) or "none registered"
    raise UserError(f"unknown {kind} {name!r}; {hint}available: {known}")


def get_benchmark(name: str) -> Benchmark:
    """The benchmark called `name`; an unknown name raises a UserError listing what exists."""
    return lookup(_REGISTRY, name, "benchmark")
