"""A domain's own report sections: registered by benchmark, built when a report is.

A domain adds a section the generic report does not have (RL's aggregate learning curve
across games, say) by registering a function in its package `__init__`, next to its
benchmarks; only the path is stored, so registering imports nothing heavy:

    from cc_bench.report.extras import register_report_section

    register_report_section(("rl.a2c", "rl.dqn"), "cc_bench.rl.report:aggregate_curves")

The function is called once per report with every group of those benchmarks and returns
sections (`cc_bench.report.document`: Text, Table, Figure, FigureRow blocks); they come right
after "Across tasks". Figures must be PNGs under `out_dir` (its `plots/` folder, say); with
`out_dir` None (a W&B Report) the function returns text and tables only.

    def aggregate_curves(groups: Sequence[Group], out_dir: Path | None) -> list[Section]: ...
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cc_bench.report.document import Section
    from cc_bench.report.groups import Group

_EXTRAS: dict[str, tuple[str, ...]] = {}  # "module:function" -> its benchmarks


def register_report_section(benchmarks: str | Sequence[str], path: str) -> None:
    """Have the report call `path` ("module:function") with the groups of `benchmarks`."""
    names = (benchmarks,) if isinstance(benchmarks, str) else tuple(benchmarks)
    if ":" not in path or not names:
        raise ValueError(f"expected benchmarks and 'module:function', got {names}, {path!r}")
    _EXTRAS[path] = names


def extra_sections(groups: Sequence[Group], out_dir: Path | None) -> list[Section]:
    """The registered sections of the benchmarks among `groups`, in registration order."""
    sections: list[Section] = []
    for path, names in _EXTRAS.items():
        mine = [g for g in groups if g.benchmark in names]
        if mine:
            module, _, function = path.partition(":")
            sections.extend(getattr(importlib.import_module(module), function)(mine, out_dir))
    return sections
