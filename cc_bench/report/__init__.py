"""Comparison reports: CoordConv against plain convolution, from run folders or a W&B project.

Runs that differ only in conv and seed form a group (`cc_bench.config.group_name`); each
group compares conv with CoordConv on every final metric (mean and 95% bootstrap interval
over seeds, the difference with its interval, Welch's p), and an aggregate across tasks
gives the interquartile mean and counts of tasks where CoordConv is better, similar or
worse, as the paper's Atari figure does (Liu et al. 2018, section 6). Only finished runs
enter the statistics; running, unfinished and failed runs are listed per group.

The report is `report.md` (Markdown tables, PNGs in `plots/` and `media/`) and
`report.html`, one self-contained file with every image embedded; `--wandb-report` also
builds a W&B Report with `wandb-workspaces`.

Modules, one concern each: `runs` (reading run folders and W&B runs), `groups` (which runs
compare), `tables` (the statistics tables), `plots`, `sections` (what the report says),
`document` (Markdown and HTML), `wandb_reports` (the W&B Report), `cli` (`cc-bench report`),
`extras` (a domain's own sections). The names below load on first use, so a domain can
import `cc_bench.report.extras` at registration without importing numpy or scipy.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "main": "cli",
    "FigureRow": "document",
    "Figure": "document",
    "Section": "document",
    "Table": "document",
    "Text": "document",
    "to_html": "document",
    "to_markdown": "document",
    "Group": "groups",
    "group_key": "groups",
    "group_runs": "groups",
    "RunRecord": "runs",
    "load_runs": "runs",
    "load_wandb_runs": "runs",
    "read_run_folder": "runs",
    "wandb_record": "runs",
    "DEFAULT_TITLE": "sections",
    "build_report": "sections",
    "report_sections": "sections",
    "AggregateRow": "tables",
    "aggregate": "tables",
    "save_wandb_report": "wandb_reports",
    "wandb_report": "wandb_reports",
    "register_report_section": "extras",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"cc_bench.report.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'cc_bench.report' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))
