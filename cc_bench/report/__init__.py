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
`document` (Markdown and HTML), `wandb_report` (the W&B Report), `cli` (`cc-bench report`).
"""

from cc_bench.report.cli import main
from cc_bench.report.document import Figure, Section, Table, Text, to_html, to_markdown
from cc_bench.report.groups import Group, group_key, group_runs
from cc_bench.report.runs import (
    RunRecord,
    load_runs,
    load_wandb_runs,
    read_run_folder,
    wandb_record,
)
from cc_bench.report.sections import DEFAULT_TITLE, build_report, report_sections
from cc_bench.report.tables import AggregateRow, aggregate
from cc_bench.report.wandb_report import save_wandb_report, wandb_report

__all__ = [
    "DEFAULT_TITLE",
    "AggregateRow",
    "Figure",
    "Group",
    "RunRecord",
    "Section",
    "Table",
    "Text",
    "aggregate",
    "build_report",
    "group_key",
    "group_runs",
    "load_runs",
    "load_wandb_runs",
    "main",
    "read_run_folder",
    "report_sections",
    "save_wandb_report",
    "to_html",
    "to_markdown",
    "wandb_record",
    "wandb_report",
]
