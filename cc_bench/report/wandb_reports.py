"""The W&B Report: the same text and tables, with W&B's own panels (`wandb-workspaces`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cc_bench.errors import UserError
from cc_bench.report.document import Table, Text, markdown_table
from cc_bench.report.groups import Group
from cc_bench.report.runs import SIDES, RunRecord, first_line, split_project
from cc_bench.report.sections import DEFAULT_TITLE, report_sections


def wandb_reports_module() -> Any:
    """`wandb_workspaces.reports.v2`, or a UserError that says how to install it."""
    try:
        import wandb_workspaces.reports.v2 as wr
    except ImportError:
        raise UserError(
            "--wandb-report needs wandb-workspaces: pip install wandb-workspaces"
        ) from None
    return wr


def wandb_report(
    records: Sequence[RunRecord], path: str, *, title: str = DEFAULT_TITLE, source: str = ""
) -> Any:
    """A W&B Report (`wandb_workspaces.reports.v2.Report`) of the runs, not saved.

    The same text and tables as the local report; per group, a panel grid whose runset holds
    the group's finished W&B runs (by their run ids) grouped by conv, with line plots of the mean over seeds
    and a standard-deviation band for every logged metric.
    """
    wr = wandb_reports_module()
    from wandb_workspaces import expr

    entity, project = split_project(path)
    sections = report_sections(records, None, source)  # no local plots in a W&B Report
    blocks: list[Any] = []
    for section in sections:
        blocks.append(wr.H2(section.title))
        for block in section.blocks:
            if isinstance(block, Text):
                blocks.append(wr.MarkdownBlock(text=block.text))
            elif isinstance(block, Table):
                blocks.append(wr.MarkdownBlock(text=markdown_table(block)))
        if section.group is not None:
            blocks.append(_panel_grid(wr, expr, section.group, entity, project))
    return wr.Report(
        entity=entity, project=project, title=title[:128], description=source, blocks=blocks
    )


def _panel_grid(wr: Any, expr: Any, group: Group, entity: str, project: str) -> Any:
    # The group's own finished runs by their run ids: a W&B group holds one command line's
    # runs of every recipe, and a comparison may pair runs of two W&B groups.
    run_ids = sorted(r.run_id for side in SIDES for r in group.finished(side))
    runset = wr.Runset(
        entity=entity,
        project=project,
        name=group.title or group.name,
        filters=expr.And(expr.Config("run_id").isin(run_ids), expr.Metric("State") == "finished"),
        groupby=["config.conv"],
    )
    panels = [
        wr.LinePlot(
            title=metric,
            x="_runtime" if group.curve_x == "time" else group.curve_x,
            y=[metric],
            groupby=wr.Config("conv"),
            groupby_aggfunc="mean",
            groupby_rangefunc="stddev",
        )
        for metric in group.curve_metrics()
    ]
    return wr.PanelGrid(runsets=[runset], panels=panels)


def save_wandb_report(report: Any) -> str | None:
    """Save a W&B Report when W&B is online; returns its URL (None when offline)."""
    from cc_bench.tracking import wandb_mode

    if wandb_mode() != "online":
        return None
    try:
        report.save()
        return str(report.url)
    except Exception as exc:
        raise UserError(f"could not save the W&B Report: {first_line(exc)}") from None
