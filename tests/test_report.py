"""`cc-bench report` on a small real suite: toy.classification runs through the runner.

The suite: a group with 2 seeds of conv and of CoordConv, a failed CoordConv run
(its test loss turns NaN) and an interrupted conv run (config.json, no summary.json); and a
group with `test_fraction=0.02` with one seed a side. Every finished run logs one picture.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from cc_bench import report, runner
from cc_bench.config import group_name
from cc_bench.runner import execute
from cc_bench.toy import classification, training
from cc_bench.toy.configs import ClassificationConfig

BENCH = "toy.classification"
SUITE = "t"
TINY = {"epochs": 2, "max_train_examples": 32, "widths": (4, 4), "deconv_width": 1}


def _cfg(conv: str, seed: int, test_fraction: float = 0.01) -> ClassificationConfig:
    # built afresh (not dataclasses.replace): per-conv defaults resolve at construction
    return ClassificationConfig(conv=conv, seed=seed, test_fraction=test_fraction, **TINY)


def _run(runs_dir: Path, cfg: ClassificationConfig) -> Path:
    given = ("conv", "seed", "test_fraction", *TINY)  # what `_cfg` sets, as a suite would
    result = execute(
        BENCH, cfg, runs_dir=runs_dir, suite=SUITE, no_wandb=True, log=io.StringIO(), given=given
    )
    return result.run_dir


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    runs_dir = tmp_path_factory.mktemp("runs")
    original_run, original_eval = classification.run, training.evaluate

    def run_with_picture(cfg: ClassificationConfig, tracker: Any) -> dict[str, Any]:
        metrics = original_run(cfg, tracker)
        picture = np.full((8, 8, 3), 40 * cfg.seed, dtype=np.uint8)
        tracker.log_image("samples", picture, step=cfg.epochs)
        return metrics

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(classification, "run", run_with_picture)
        finished = [
            _run(runs_dir, _cfg(conv, seed)) for conv in ("conv", "coordconv") for seed in (0, 1)
        ]
        finished += [_run(runs_dir, _cfg(conv, 0, 0.02)) for conv in ("conv", "coordconv")]
        mp.setattr(training, "evaluate", lambda *a, **k: {"loss": float("nan"), "acc": 0.0})
        failed = _run(runs_dir, _cfg("coordconv", 2))

        def interrupt(*args: Any, **kwargs: Any) -> None:
            raise KeyboardInterrupt

        mp.setattr(training, "evaluate", interrupt)
        with pytest.raises(KeyboardInterrupt):
            _run(runs_dir, _cfg("conv", 2))
    mp.setattr(training, "evaluate", original_eval)
    unfinished = next((runs_dir / SUITE / BENCH).glob("conv_seed2_*"))

    out = runs_dir / "report"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = report.main([str(runs_dir)])
    return {
        "runs_dir": runs_dir,
        "finished": finished,
        "failed": failed,
        "unfinished": unfinished,
        "out": out,
        "code": code,
        "stdout": stdout.getvalue(),
        "md": (out / "report.md").read_text(),
        "html": (out / "report.html").read_text(),
    }


def _meta(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "config.json").read_text())


def _summary_metric(run_dir: Path, name: str) -> float:
    return json.loads((run_dir / "summary.json").read_text())["metrics"][name]


def _section(md: str, title: str) -> str:
    """The Markdown of one `## title` section."""
    return md.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _row(section: str, metric: str) -> list[str]:
    line = next(x for x in section.splitlines() if x.startswith(f"| {metric} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def _value(cell: str) -> float:
    """The estimate of a table cell such as `103,585 [103,000 to 104,000]`."""
    return float(cell.split(" ")[0].replace(",", ""))


TITLE = f"{BENCH} · test_fraction=0.01"  # what sets the groups apart
TITLE_2 = f"{BENCH} · test_fraction=0.02"


# -- reading runs --------------------------------------------------------------------------


def test_load_runs_reads_every_status(suite: dict[str, Any]) -> None:
    records = {r.source: r for r in report.load_runs(suite["runs_dir"])}
    assert len(records) == 8
    assert {records[str(d)].status for d in suite["finished"]} == {"finished"}
    failed = records[str(suite["failed"])]
    assert failed.status == "failed" and "nan" in failed.error and failed.summary == {}
    unfinished = records[str(suite["unfinished"])]
    assert unfinished.status == "unfinished" and unfinished.summary == {}
    run = records[str(suite["finished"][0])]
    assert run.summary["test_acc"] == _summary_metric(suite["finished"][0], "test_acc")
    assert [row["step"] for row in run.history] == [1, 2]
    assert sorted(p.name for p in run.media) == ["samples_2.png", "test_predictions_2.png"]


def test_a_held_lock_means_running(suite: dict[str, Any]) -> None:
    run_dir = suite["unfinished"]
    assert report.read_run_folder(run_dir).status == "unfinished"
    with (run_dir / ".lock").open("a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert report.read_run_folder(run_dir).status == "running"
    assert report.read_run_folder(run_dir).status == "unfinished"


def test_superseded_runs_are_skipped(tmp_path: Path, suite: dict[str, Any]) -> None:
    import shutil

    bench_dir = tmp_path / SUITE / BENCH
    shutil.copytree(suite["finished"][0], bench_dir / suite["finished"][0].name)
    shutil.copytree(suite["finished"][1], bench_dir / ".superseded" / "old-run")
    assert len(report.load_runs(tmp_path)) == 1


def test_groups_follow_group_name_and_never_mix(suite: dict[str, Any]) -> None:
    groups = report.group_runs(report.load_runs(suite["runs_dir"]))
    expected = {
        group_name(BENCH, _cfg("conv", 0)): 6,  # 4 finished, 1 failed, 1 unfinished
        group_name(BENCH, _cfg("conv", 0, 0.02)): 2,
    }
    assert {g.name: len(g.runs) for g in groups} == expected
    assert [g.title for g in groups] == [TITLE, TITLE_2]
    # (notes may name code versions: other commits can land while the fixture runs)
    assert all(g.exact and not g.superseded for g in groups)
    assert not any("Superseded" in n for g in groups for n in g.notes)
    for group in groups:
        assert len({r.config["test_fraction"] for r in group.runs}) == 1


def test_unknown_benchmark_falls_back_to_a_config_hash(suite: dict[str, Any]) -> None:
    record = report.load_runs(suite["runs_dir"])[0]
    name, exact = report.group_key("gone.benchmark", record.config)
    assert name.startswith("gone.benchmark-") and not exact
    twin = {**record.config, "seed": 99, "conv": "conv", "device": "cuda"}
    assert report.group_key("gone.benchmark", twin) == (name, False)


def _copy_runs(suite: dict[str, Any], dest: Path, edit: dict[int, Any]) -> Path:
    """The finished runs of the first group copied under `dest`, `edit[i]` applied to run i's
    config.json (i: conv seeds 0, 1, CoordConv seeds 0, 1)."""
    import shutil

    for i, run_dir in enumerate(suite["finished"][:4]):
        target = dest / SUITE / BENCH / run_dir.name
        shutil.copytree(run_dir, target)
        if i in edit:
            meta = _meta(target)
            edit[i](meta)
            (target / "config.json").write_text(json.dumps(meta))
    return dest


def _md(records: list[report.RunRecord]) -> str:
    return report.to_markdown(report.report_sections(records, None, "x"), "t", Path("."))


def test_runs_of_different_recipes_are_never_pooled(tmp_path: Path, suite: dict[str, Any]) -> None:
    def old_recipe(meta: dict[str, Any]) -> None:  # conv seed 1 ran when the default was 3
        meta["resolved"]["epochs"] = 3
        meta["created"] = "2000-01-01T00:00:00+0000"

    records = report.load_runs(_copy_runs(suite, tmp_path, {1: old_recipe}))
    groups = report.group_runs(records)
    current_title = BENCH  # the only current comparison
    old_title = f"{BENCH} · epochs: conv 3, CoordConv 2 · superseded"
    assert [(g.title, g.superseded) for g in groups] == [
        (current_title, False),
        (old_title, True),
    ]
    newest, oldest = groups
    assert {(r.conv, r.seed) for r in newest.runs} == {
        ("conv", 0),
        ("coordconv", 0),
        ("coordconv", 1),
    }
    # the older conv recipe beside the CoordConv runs of its day (the same command line)
    assert [(r.conv, r.seed, r.resolved["epochs"]) for r in oldest.runs] == [
        ("conv", 1, 3),
        ("coordconv", 0, 2),
        ("coordconv", 1, 2),
    ]
    assert "Superseded" in oldest.notes[0]
    assert not any("Superseded" in n for n in newest.notes)
    md = _md(records)
    assert "Superseded" in _section(md, old_title)
    assert _row(_section(md, current_title), "test_acc")[3] == "1"  # conv n=1, not 2
    # only the current recipe is a task across tasks
    assert {r.tasks for r in report.aggregate(groups)} == {1}


def test_other_code_versions_are_named(tmp_path: Path, suite: dict[str, Any]) -> None:
    def other_commit(meta: dict[str, Any]) -> None:
        meta["git_commit"] = "0123456789abcdef0123"

    records = report.load_runs(_copy_runs(suite, tmp_path, {3: other_commit}))
    (group,) = report.group_runs(records)
    section = _section(_md(records), group.title)
    assert "different code versions" in section
    assert "at 0123456789ab: CoordConv seed 1" in section


def test_directions_come_only_from_the_registry(tmp_path: Path, suite: dict[str, Any]) -> None:
    def unknown(meta: dict[str, Any]) -> None:
        meta["benchmark"] = "gone.benchmark"

    summary = suite["finished"][0] / "summary.json"
    records = report.load_runs(_copy_runs(suite, tmp_path, dict.fromkeys(range(4), unknown)))
    md = _md(records)
    (group,) = report.group_runs(records)
    section = _section(md, "gone.benchmark")
    assert "not registered here" in section
    for metric in ("test_acc", "test_loss", "wall_s"):  # names say nothing any more
        row = _row(section, metric)
        assert row[1] == "not declared" and row[8] == "—"
    assert "No task has finished conv and CoordConv runs" in _section(md, "Across tasks")
    # an undeclared metric of a registered benchmark: shown, no verdict, not aggregated
    records = report.load_runs(suite["runs_dir"])
    for r in records:
        if r.summary:
            r.summary["accuracy_gain"] = r.summary["test_acc"] + r.seed
    md = _md(records)
    assert _row(_section(md, TITLE), "accuracy_gain")[1::7] == ["not declared", "—"]
    assert "| accuracy_gain |" not in _section(md, "Across tasks")
    assert json.loads(summary.read_text())["status"] == "finished"


def human_bounds(metric: str, resolved: dict[str, Any]) -> tuple[float, float] | None:
    """A normaliser for the test: test_acc against a chance of 0.5 and a human at 1.5."""
    assert resolved["test_fraction"] in (0.01, 0.02)
    return (0.5, 1.5) if metric == "test_acc" else None


def test_a_declared_normaliser_is_used(
    suite: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from cc_bench.registry import get_benchmark
    from cc_bench.report import groups as groups_module

    bench = dataclasses.replace(get_benchmark(BENCH), normalizer="test_report:human_bounds")
    monkeypatch.setattr(groups_module, "registered", lambda name: bench)
    rows = {
        r.metric: r
        for r in report.aggregate(report.group_runs(report.load_runs(suite["runs_dir"])))
    }
    assert rows["test_acc"].scores == "declared (human_bounds)"
    assert rows["test_loss"].scores == "min-max"  # the normaliser gives no bounds for it
    coord = [_summary_metric(suite["finished"][i], "test_acc") for i in (2, 3, 5)]
    # 3 runs: the IQM trims none of them (a quarter of 3 rounds down to 0)
    expected = np.mean([(x - 0.5) / (1.5 - 0.5) for x in coord])
    assert rows["test_acc"].iqm["coordconv"].estimate == pytest.approx(expected)


def extra_section(groups: list[report.Group], out_dir: Path | None) -> list[report.Section]:
    """A domain's own section for the test: one line per group."""
    return [
        report.Section("Per task", [report.Text(f"{g.title}: {len(g.runs)} runs") for g in groups])
    ]


def test_a_domain_adds_its_own_section(
    suite: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from cc_bench.report import extras

    monkeypatch.setattr(extras, "_EXTRAS", {})
    extras.register_report_section(BENCH, "test_report:extra_section")
    md = _md(report.load_runs(suite["runs_dir"]))
    titles = re.findall(r"^## (.*)$", md, flags=re.M)
    assert titles[:3] == ["Overview", "Across tasks", "Per task"]
    assert f"{TITLE}: 6 runs" in _section(md, "Per task")


# -- the report ----------------------------------------------------------------------------


def test_main_prints_where_the_report_is(suite: dict[str, Any]) -> None:
    assert suite["code"] == 0
    assert f"report: {suite['out'] / 'report.md'}" in suite["stdout"]
    assert f"report: {suite['out'] / 'report.html'}" in suite["stdout"]


def test_group_table_has_means_n_and_the_status_line(suite: dict[str, Any]) -> None:
    section = _section(suite["md"], TITLE)
    assert "4 finished (conv seeds 0, 1; CoordConv seeds 0, 1)" in section
    assert "1 unfinished (conv seed 2)" in section
    assert re.search(r"1 failed \(CoordConv seed 2: test/loss became nan at step 1\)", section)
    row = _row(section, "test_loss")
    conv_dirs, coord_dirs = suite["finished"][:2], suite["finished"][2:4]
    conv_mean = np.mean([_summary_metric(d, "test_loss") for d in conv_dirs])
    coord_mean = np.mean([_summary_metric(d, "test_loss") for d in coord_dirs])
    # metric | better | conv [CI] | n | CoordConv [CI] | n | diff [CI] | p | verdict
    assert row[1] == "lower"  # as toy.classification declares it
    assert _value(row[2]) == pytest.approx(conv_mean, rel=1e-3) and row[3] == "2"
    assert _value(row[4]) == pytest.approx(coord_mean, rel=1e-3) and row[5] == "2"
    assert _value(row[6]) == pytest.approx(coord_mean - conv_mean, rel=1e-3, abs=1e-4)
    assert row[8] in ("better", "similar", "worse")
    params = _row(section, "params")  # `neither`: compared, no verdict; all seeds equal
    assert params[1] == "neither" and params[8] == "—" and "(no spread)" in params[2]
    assert re.fullmatch(r"\d{1,3}(,\d{3})+ \(no spread\)", params[2])  # 103,585, not 1.036e+05


def test_config_line_shows_what_each_side_trained_with(suite: dict[str, Any]) -> None:
    section = _section(suite["md"], TITLE)
    conv, coord = (_meta(suite["finished"][i])["resolved"] for i in (0, 2))  # seed 0 a side
    assert "test_fraction=0.01" in section.split("Trained with: ", 1)[1].split("\n")[0]
    per_side = section.split("Per side: ", 1)[1].split("\n")[0]
    assert conv["lr"] != coord["lr"]
    assert f"lr: conv {conv['lr']}, CoordConv {coord['lr']}" in per_side
    assert "epochs=0" not in section and "lr=0.0" not in section


def test_headline_metrics_lead(suite: dict[str, Any]) -> None:
    overview = _section(suite["md"], "Overview")
    # 2 tasks x 2 headline metrics; the second task has 1 seed a side: undecided
    assert "On the 4 directed headline metrics" in overview and "undecided on 2" in overview
    assert overview.index(f"| {TITLE} | test_acc |") < overview.index(f"| {TITLE} | train_acc |")
    lines = _section(suite["md"], TITLE).splitlines()
    rows = [x.split("|")[1].strip() for x in lines if x.startswith("| ")]
    metrics = [m for m in rows if m != "metric"]
    assert metrics[:2] == ["test_acc", "train_acc"]  # the declared headline, in order
    across = _section(suite["md"], "Across tasks")
    assert across.index("Headline metrics:") < across.index("| test_acc |")
    assert across.index("| test_acc |") < across.index("Other metrics:")
    assert across.index("Other metrics:") < across.index("| test_loss |")


def test_metrics_with_a_direction_come_before_those_declared_neither(
    suite: dict[str, Any],
) -> None:
    from dataclasses import replace

    group = report.group_runs(report.load_runs(suite["runs_dir"]))[0]
    spec = group.spec
    declared = {**spec.metrics, "a_share": "neither", "z_gain": "higher"}
    group.__dict__["spec"] = replace(spec, metrics=declared)  # the cached registry entry
    for r in group.runs:
        if r.summary:
            r.summary.update(a_share=0.5, z_gain=1.0, b_extra=2.0)
    order = group.metrics()
    assert order[: len(spec.headline)] == list(spec.headline)
    assert order.index("z_gain") < order.index("a_share") < order.index("b_extra")
    assert order[-1] == "b_extra"  # undeclared last


def test_one_seed_a_side_has_no_interval(suite: dict[str, Any]) -> None:
    section = _section(suite["md"], TITLE_2)
    row = _row(section, "test_loss")
    assert "[" not in row[2] and row[3] == "1" and row[7] == "—" and row[8] == "—"


def test_aggregate_counts_tasks(suite: dict[str, Any]) -> None:
    section = _section(suite["md"], "Across tasks")
    row = _row(section, "test_acc")
    # metric | better | tasks | scores | IQM conv | IQM CoordConv | better | similar | worse |
    # undecided
    assert row[1] == "higher" and row[2] == "2" and row[3] == "min-max"
    assert sum(int(x) for x in row[6:10]) == 2
    assert row[9] == "1"  # the second task has one seed a side: undecided
    assert "| params |" not in section  # no direction, no aggregate


def test_pngs_exist_and_open(suite: dict[str, Any]) -> None:
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", suite["md"])
    assert any(x.startswith("plots/") and x.endswith("_curves.png") for x in links)
    assert any(x.endswith("_final.png") for x in links)
    assert "plots/aggregate_iqm.png" in links
    assert any(x.startswith("media/") and x.endswith("samples_2.png") for x in links)
    for link in links:
        with Image.open(suite["out"] / link) as image:
            image.verify()


def test_html_is_self_contained(suite: dict[str, Any]) -> None:
    page = suite["html"]
    assert "<th>CoordConv mean [95% CI]</th>" in page
    images = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert len(images) == len(re.findall(r"!\[", suite["md"]))
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert 'src="http' not in page and "<link" not in page and "<script" not in page


# -- bad input -------------------------------------------------------------------------------


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert report.main(["--help"]) == 0
    assert "--wandb-report" in capsys.readouterr().out


def test_report_cli_imports_neither_the_main_cli_nor_private_names() -> None:
    import ast
    import subprocess

    code = "import sys, cc_bench.report.cli; print('cc_bench.cli' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # no import circle through the main command
    from cc_bench.report import cli

    tree = ast.parse(Path(cli.__file__).read_text())
    imported = [
        (n.module, a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names
    ]
    assert ("cc_bench.arguments", "ArgumentParser") in imported
    assert not [(m, a) for m, a in imported if m == "cc_bench.cli" or a.startswith("_")]


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert report.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("cc-bench: error: ") and err.count("\n") == 1, err
    return err


def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "does not exist" in _one_line_error(capsys, [str(tmp_path / "nowhere")])
    assert "no runs in" in _one_line_error(capsys, [str(tmp_path)])
    assert "RUNS_DIR or --wandb" in _one_line_error(capsys, [])
    assert "ENTITY/PROJECT" in _one_line_error(capsys, ["--wandb", "just-a-project"])
    assert "--filters" in _one_line_error(capsys, ["--wandb", "e/p", "--filters", "{"])
    assert "unrecognized" in _one_line_error(capsys, [str(tmp_path), "--bogus"])


def test_a_report_it_cannot_write_is_one_line_and_a_single_run_s_goes_elsewhere(
    tmp_path: Path,
    suite: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "out"
    (out / "report.md").mkdir(parents=True)  # a folder where the report goes
    err = _one_line_error(capsys, [str(suite["runs_dir"]), "--out", str(out)])
    assert f"cannot write the report in {out}: Is a directory" in err
    (tmp_path / "blocked").write_text("mine")  # a file where the folder goes
    err = _one_line_error(capsys, [str(suite["runs_dir"]), "--out", str(tmp_path / "blocked")])
    assert f"cannot create report folder {tmp_path / 'blocked'}: File exists" in err
    assert (tmp_path / "blocked").read_text() == "mine"
    run = suite["finished"][0]
    monkeypatch.chdir(tmp_path)
    assert report.main([str(run)]) == 0
    assert (tmp_path / "report" / "report.html").exists() and not (run / "report").exists()


def test_unreachable_wandb_project_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc: no API key
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    err = _one_line_error(capsys, ["--wandb", "someone/somewhere", "--out", str(tmp_path)])
    assert "cannot read W&B project someone/somewhere" in err


def test_missing_wandb_workspaces_says_pip_install(
    suite: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "wandb_workspaces.reports.v2", None)  # import fails
    argv = [str(suite["runs_dir"]), "--wandb-report", "e/p"]
    assert "pip install wandb-workspaces" in _one_line_error(capsys, argv)


# -- W&B: reading runs and the W&B Report --------------------------------------------------


class FakeWandbRun:
    """A W&B public-API run as the Tracker leaves it, made from a local run folder."""

    def __init__(self, run_dir: Path) -> None:
        meta = json.loads((run_dir / "config.json").read_text())
        summary = json.loads((run_dir / "summary.json").read_text())
        history = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
        self.id = meta["wandb_id"]
        self.url = f"https://wandb.ai/e/p/runs/{self.id}"
        self.state = "finished" if summary["status"] == "finished" else "failed"
        self.config = {**runner.wandb_config(meta), "_wandb": {}}  # as the Tracker sends it
        self.created_at = meta["created"]
        last = {k: v for k, v in history[-1].items() if k not in ("step", "time")}
        self.summary_metrics = {
            **summary["metrics"],
            **last,
            "epoch": 2,  # a logged key without a `/` (VAE logs one): W&B keeps its last value
            "status": summary["status"],
            "final_metrics": sorted(summary["metrics"]),
            "_runtime": 3.0,
        }
        self._history = [
            {"_step": i, "_timestamp": row["time"], **{k: v for k, v in row.items() if k != "time"}}
            for i, row in enumerate(history)
        ]

    def scan_history(self) -> list[dict[str, Any]]:
        return self._history

    def files(self, pattern: str = "") -> list[Any]:
        return []


class FakeApi:
    def __init__(self, runs: list[FakeWandbRun]) -> None:
        self._runs = runs

    def runs(self, path: str, filters: dict[str, Any]) -> list[FakeWandbRun]:
        return self._runs


def test_wandb_runs_read_as_the_local_ones(suite: dict[str, Any]) -> None:
    dirs = suite["finished"] + [suite["failed"]]
    records = report.load_wandb_runs("e/p", api=FakeApi([FakeWandbRun(d) for d in dirs]))
    local = {r.run_id: r for r in report.load_runs(suite["runs_dir"])}
    for record in records:
        twin = local[record.run_id]
        assert record.status == twin.status
        assert record.summary == twin.summary
        assert record.config == twin.config and record.resolved == twin.resolved
        assert record.code == twin.code and record.machines == twin.machines
        assert record.given == twin.given and record.given is not None
        assert [(r["step"], r["time"], r["test/acc"]) for r in record.history] == [
            (r["step"], r["time"], r["test/acc"]) for r in twin.history
        ]
    local_groups = {g.name for g in report.group_runs(local[r.run_id] for r in records)}
    assert {g.name for g in report.group_runs(records)} == local_groups


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # wandb-workspaces' pydantic v1 style
def test_wandb_report_object_is_built_offline(suite: dict[str, Any]) -> None:
    pytest.importorskip("wandb_workspaces", reason="pip install wandb-workspaces to test this")
    import wandb_workspaces.reports.v2 as wr

    records = report.load_runs(suite["runs_dir"])
    built = report.wandb_report(records, "ent/proj", title="t")
    assert (built.entity, built.project, built.title) == ("ent", "proj", "t")
    grids = [b for b in built.blocks if isinstance(b, wr.PanelGrid)]
    groups = report.group_runs(records)
    assert len(grids) == len(groups)
    for grid, group in zip(grids, groups, strict=True):
        (runset,) = grid.runsets
        assert runset.name == group.title and runset.groupby == ["config.conv"]
        # the group's own finished runs, by id: no other recipe of its W&B group
        mine = sorted(r.run_id for r in group.runs if r.status == "finished")
        assert f'Config("run_id") in {mine!r}' in runset.filters
        others = {r.run_id for r in records} - set(mine)
        assert others and not any(rid in runset.filters for rid in others)
        assert [p.y for p in grid.panels] == [
            ["train/loss"],
            ["train/acc"],
            ["test/loss"],
            ["test/acc"],
        ]
        assert {(p.groupby_aggfunc, p.groupby_rangefunc) for p in grid.panels} == {
            ("mean", "stddev")
        }
    tables = [b.text for b in built.blocks if isinstance(b, wr.MarkdownBlock)]
    assert any("| test_acc | higher |" in t for t in tables)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_wandb_report_offline_is_built_not_saved(
    suite: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("wandb_workspaces", reason="pip install wandb-workspaces to test this")
    monkeypatch.setenv("WANDB_MODE", "offline")
    argv = [str(suite["runs_dir"]), "--out", str(tmp_path), "--wandb-report", "e/p"]
    assert report.main(argv) == 0
    assert "W&B Report built, not saved: W&B is offline" in capsys.readouterr().out


def test_a_report_file_it_did_not_write_is_kept(
    tmp_path: Path, suite: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """`--out` into a folder holding someone's own report.md (or .html): one line, the file
    untouched; a report cc-bench wrote there is rewritten."""
    out = tmp_path / "mine"
    out.mkdir()
    for name in ("report.md", "report.html"):
        (out / name).write_text("my own notes")
        err = _one_line_error(capsys, [str(suite["runs_dir"]), "--out", str(out)])
        assert f"{out / name} is not a report cc-bench wrote: give another --out" in err
        assert (out / name).read_text() == "my own notes"
        (out / name).unlink()
    args = [str(suite["runs_dir"]), "--out", str(out)]
    assert report.main(args) == 0
    first = (out / "report.md").read_text()
    assert first.startswith("<!-- written by `cc-bench report`")
    assert report.main(args) == 0  # its own files: rewritten
    assert (out / "report.md").read_text() == first
