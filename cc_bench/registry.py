"""The benchmark registry: names mapped to a config class and a lazily imported run function.

Domains register their benchmarks in their package `__init__` with `register_benchmark`,
naming the run function as "module:function" so that listing benchmarks or printing
`--help` never imports torch. The core reaches the domains only through `_DOMAINS`.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from cc_bench.config import BenchConfig
from cc_bench.errors import UserError

if TYPE_CHECKING:
    from cc_bench.tracking import Tracker

T = TypeVar("T")
RunFn = Callable[[Any, "Tracker"], dict[str, Any]]

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

    def load_run(self) -> RunFn:
        """Import and return the run function `run(cfg, tracker) -> metrics`."""
        module, _, attr = self.run_path.partition(":")
        return getattr(importlib.import_module(module), attr)


def register_benchmark(
    name: str, config_cls: type[BenchConfig], run: str, description: str
) -> Benchmark:
    """Register a benchmark; `run` is "package.module:function". A duplicate name raises."""
    if name in _REGISTRY:
        raise ValueError(f"benchmark {name!r} is already registered")
    if not issubclass(config_cls, BenchConfig):
        raise TypeError(f"{config_cls.__name__} must derive from cc_bench.config.BenchConfig")
    if ":" not in run:
        raise ValueError(f"run must be 'module:function', got {run!r}")
    bench = Benchmark(name, config_cls, run, description)
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
