"""Which runs a report compares: recipes (resolved configs), current and superseded ones.

The records are built by hand from configs (no training), as `cc-bench launch` would leave
them: `config` as given, `resolved` as `BenchConfig.resolve()` made it when the run started.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from cc_bench import report, stats
from cc_bench.config import config_to_dict, run_id
from cc_bench.errors import UserError
from cc_bench.report.runs import RunRecord
from cc_bench.report.tables import fmt_interval, fmt_num
from cc_bench.toy.configs import ClassificationConfig, RegressionConfig

BENCH = "toy.classification"
DAY1, DAY2 = "2026-01-01T10:00:00+0000", "2026-02-01T10:00:00+0000"


def record(
    cfg: Any, *, acc: float, created: str = DAY1, bench: str = BENCH, **kw: Any
) -> RunRecord:
    """A finished run of `cfg` as the runner records it with the code loaded now."""
    resolved = config_to_dict(cfg.resolve())
    return RunRecord(
        benchmark=bench,
        run_id=run_id(bench, cfg),
        config=config_to_dict(cfg),
        status="finished",
        summary={"test_acc": acc, "train_acc": acc, "test_loss": 1 - acc},
        resolved=resolved,
        **{"version": "0.1.0", "git_commit": "a" * 40, **kw},
        created=created,
    )


def launch(conv: str, seeds: int = 3, created: str = DAY1, **given: Any) -> list[RunRecord]:
    """The runs one side of `cc-bench launch` with `--set given` leaves: one per seed."""
    acc = {"conv": 0.1, "coordconv": 0.9}[conv]
    return [
        record(
            ClassificationConfig(conv=conv, seed=s, split="quadrant", **given),
            acc=acc + 0.01 * s,
            created=created,
        )
        for s in range(seeds)
    ]


def by_title(groups: list[report.Group]) -> dict[str, list[tuple[str, int, Any]]]:
    return {
        g.title: sorted((r.conv, r.seed, r.resolved["batch_size"]) for r in g.runs) for g in groups
    }


def test_a_conv_recipe_pairs_with_each_coordconv_recipe_of_its_command_lines() -> None:
    # `launch toy`, then `launch toy --set batch_size=32`: the conv runs of the second launch
    # resolve to the first's (32 is conv's default), so only CoordConv runs are new.
    conv = launch("conv")
    default = launch("coordconv")
    explicit = launch("coordconv", batch_size=32)
    for records in (conv + default + explicit, explicit + default + conv):
        groups = report.group_runs(records)
        assert by_title(groups) == {
            f"{BENCH} · batch_size: conv 32, CoordConv 16": sorted(
                [("conv", s, 32) for s in range(3)] + [("coordconv", s, 16) for s in range(3)]
            ),
            f"{BENCH} · batch_size=32": sorted(
                [("conv", s, 32) for s in range(3)] + [("coordconv", s, 32) for s in range(3)]
            ),
        }
        assert not any(g.superseded for g in groups)
        assert not any(re.search(r"=0(\.0)?\b", g.title) for g in groups)  # no placeholders
    # the same when the explicit launch came first (its conv runs hold batch_size=32 as given)
    conv_first = [
        record(ClassificationConfig(conv="conv", seed=s, split="quadrant", batch_size=32), acc=0.1)
        for s in range(3)
    ]
    groups = report.group_runs(conv_first + default + explicit)
    assert [len(g.finished("conv")) for g in groups] == [3, 3]


def test_coordconv_with_r_pairs_with_the_plain_conv_runs() -> None:
    # `launch toy --set with_r=true`: its conv runs are the plain ones (no CoordConv layer for
    # r to reach), so the r runs and the plain CoordConv runs both compare with them.
    conv = launch("conv")
    assert {r.run_id for r in conv} == {r.run_id for r in launch("conv", with_r=True)}
    groups = report.group_runs(conv + launch("coordconv") + launch("coordconv", with_r=True))
    assert sorted(len(g.finished("conv")) for g in groups) == [3, 3]
    assert len({g.title for g in groups}) == 2
    r_group = next(g for g in groups if any(r.resolved["with_r"] for r in g.runs))
    assert "with_r" in r_group.title and all(
        r.resolved["with_r"] for r in r_group.finished("coordconv")
    )


def test_lone_sides_that_differ_get_titles_that_say_how(tmp_path: Path) -> None:
    # A conv recipe and a CoordConv recipe, each alone on its side, that cannot pair: one
    # title would read as one comparison, and one plot file would hold only the last.
    records = launch("conv", lr=0.01) + launch("coordconv", lr=0.02)
    groups = report.group_runs(records)
    titles = {g.finished("conv") != []: g.title for g in groups}
    assert titles[True] != titles[False]
    assert "lr: conv 0.01" in titles[True] and "lr: CoordConv 0.02" in titles[False]
    for r in records:
        r.history = [{"step": 1, "test_acc": r.summary["test_acc"]}]
    report.build_report(records, tmp_path)
    assert len(list((tmp_path / "plots").glob("*_curves.png"))) == 2


def test_a_group_never_pools_two_recipes_of_one_side() -> None:
    # `--set lr=0.02` ran its CoordConv runs only: no conv run trained with lr 0.02 yet
    records = launch("conv") + launch("coordconv") + launch("coordconv", lr=0.02)
    groups = report.group_runs(records)
    assert sorted(len(g.runs) for g in groups) == [3, 6]
    for group in groups:
        for side in ("conv", "coordconv"):
            recipes = {
                json.dumps({k: v for k, v in r.resolved.items() if k != "seed"}, sort_keys=True)
                for r in group.finished(side)
            }
            assert len(recipes) <= 1
    alone = next(g for g in groups if len(g.runs) == 3)
    assert not alone.finished("conv") and alone.title == f"{BENCH} · lr: CoordConv 0.02"


def test_a_seed_run_under_an_older_id_and_again_counts_once() -> None:
    # A folder made when a field was still part of the id (as vec_env was) and its rerun:
    # one seed twice in one recipe. The run with the id the code gives now is kept, even
    # though the other is newer; the other is shown in a superseded comparison.
    conv, coordconv = launch("conv"), launch("coordconv")
    old = dataclasses.replace(
        conv[0], run_id="conv_seed0_0123abcd", created=DAY2, summary={"test_acc": 0.5}
    )
    groups = report.group_runs([old, *conv, *coordconv])
    assert [g.superseded for g in groups] == [False, True]
    current, superseded = groups
    assert sorted(r.seed for r in current.finished("conv")) == [0, 1, 2]
    assert old not in current.runs and conv[0] in current.runs
    assert old in superseded.runs


def _changed_default(monkeypatch: pytest.MonkeyPatch, **sides: dict[str, Any]) -> None:
    """The code's per-conv defaults after an upgrade (`sides`: conv -> changed values)."""
    defaults = {k: dict(v) for k, v in ClassificationConfig.conv_defaults.items()}
    for conv, values in sides.items():
        defaults[conv].update(values)
    monkeypatch.setattr(ClassificationConfig, "conv_defaults", defaults)


def test_a_changed_default_supersedes_the_old_recipe(monkeypatch: pytest.MonkeyPatch) -> None:
    old = launch("conv") + launch("coordconv")  # before the upgrade
    _changed_default(monkeypatch, conv={"lr": 0.02})
    new = launch("conv", created=DAY2)  # the upgrade's launch runs only conv again
    groups = report.group_runs(old + new)
    assert [(g.title, g.superseded) for g in groups] == [
        (BENCH, False),  # the only current comparison: nothing to tell it apart by
        (f"{BENCH} · lr: conv 0.01, CoordConv 0.005 · superseded", True),
    ]
    current, superseded = groups
    assert {r.resolved["lr"] for r in current.finished("conv")} == {0.02}
    # the old conv runs are compared with the CoordConv runs of their day, not pooled
    assert {r.resolved["lr"] for r in superseded.finished("conv")} == {0.01}
    assert "Superseded" in superseded.notes[0]
    # one task across tasks, one task's headline metrics in the overview
    assert {row.tasks for row in report.aggregate(groups)} == {1}
    md = report.to_markdown(report.report_sections(old + new, None, "x"), "t", Path("."))
    overview = md.split("## Overview\n", 1)[1].split("\n## ", 1)[0]
    assert "On the 2 directed headline metrics" in overview
    assert "superseded" not in overview.split("Method.")[0]
    assert f"## {BENCH} · lr: conv 0.01, CoordConv 0.005 · superseded" in md


def test_a_changed_plain_default_supersedes_runs_that_took_the_old_one() -> None:
    # Runs record the fields their command line set (`given`); the rest took the defaults
    # of their day. Old runs made when test_fraction's default was 0.25 (stored in full in
    # their config, as every config is) are an older recipe once the default is 0.2: the
    # same command line trains 0.2 now. A run that set 0.25 itself stays current.
    default = ClassificationConfig().test_fraction
    assert default != 0.25

    def runs(conv: str, given: tuple[str, ...], created: str, **values: Any) -> list[RunRecord]:
        return [
            dataclasses.replace(r, given=given) for r in launch(conv, created=created, **values)
        ]

    old = runs("conv", ("split",), DAY1, test_fraction=0.25)
    old += runs("coordconv", ("split",), DAY1, test_fraction=0.25)
    new = runs("conv", ("split",), DAY2) + runs("coordconv", ("split",), DAY2)
    groups = report.group_runs(old + new)
    assert [g.superseded for g in groups] == [False, True]
    assert {r.resolved["test_fraction"] for r in groups[1].runs} == {0.25}
    assert {row.tasks for row in report.aggregate(groups)} == {1}  # counted once
    asked = runs("conv", ("split", "test_fraction"), DAY1, test_fraction=0.25)
    asked += runs("coordconv", ("split", "test_fraction"), DAY1, test_fraction=0.25)
    assert [g.superseded for g in report.group_runs(asked + new)] == [False, False]


def test_a_metric_missing_in_some_runs_gets_no_verdict_in_the_overview() -> None:
    runs = launch("conv") + launch("coordconv")
    runs[0] = dataclasses.replace(runs[0], summary={**runs[0].summary, "test_acc": None})
    md = report.to_markdown(report.report_sections(runs, None, "x"), "t", Path("."))
    overview = md.split("## Overview\n", 1)[1].split("\n## ", 1)[0]
    assert "Without a value in some finished runs (no verdict, left out): `test_acc` (" in overview
    assert "— (1 run without a value)" in md


def test_a_metric_undefined_in_one_task_is_named_with_its_task() -> None:
    """A headline metric with no value in any run of one task, beside a task where it has
    values: the overview names the task, not the metric alone."""
    runs = launch("conv") + launch("coordconv")
    runs += launch("conv", test_fraction=0.3) + launch("coordconv", test_fraction=0.3)
    runs = [
        dataclasses.replace(r, summary={**r.summary, "test_acc": None})
        if r.resolved["test_fraction"] == 0.3
        else r
        for r in runs
    ]
    md = report.to_markdown(report.report_sections(runs, None, "x"), "t", Path("."))
    overview = md.split("## Overview\n", 1)[1].split("\n## ", 1)[0]
    assert "Undefined in every run of its task (left out): `test_acc` (" in overview
    (named,) = [g.title for g in report.group_runs(runs) if "test_fraction=0.3" in g.title]
    assert f"`test_acc` ({named})" in overview


def test_when_both_sides_changed_old_runs_pair_with_their_day(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old = launch("conv") + launch("coordconv")
    _changed_default(monkeypatch, conv={"lr": 0.02}, coordconv={"lr": 0.004})
    new = launch("conv", created=DAY2) + launch("coordconv", created=DAY2)
    groups = report.group_runs(new + old)
    assert [(g.superseded, {(r.conv, r.resolved["lr"]) for r in g.runs}) for g in groups] == [
        (False, {("conv", 0.02), ("coordconv", 0.004)}),
        (True, {("conv", 0.01), ("coordconv", 0.005)}),
    ]


def test_current_runs_whose_only_partner_is_older_still_show_as_current(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # CoordConv's default changed, and only the old CoordConv runs exist: the conv runs,
    # still current, are compared with those in a superseded group and shown as current.
    old = launch("conv") + launch("coordconv")
    _changed_default(monkeypatch, coordconv={"lr": 0.004})
    groups = report.group_runs(old)
    assert [(g.superseded, sorted({r.conv for r in g.runs})) for g in groups] == [
        (False, ["conv"]),  # one-sided, current: awaiting the new CoordConv runs
        (True, ["conv", "coordconv"]),
    ]
    assert len(groups[0].finished("conv")) == 3


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # wandb-workspaces' pydantic v1 style
def test_w_and_b_runsets_hold_each_recipe_own_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("wandb_workspaces", reason="pip install wandb-workspaces to test this")
    import wandb_workspaces.reports.v2 as wr

    old = launch("conv") + launch("coordconv")
    _changed_default(monkeypatch, conv={"lr": 0.02})
    records = old + launch("conv", created=DAY2)
    built = report.wandb_report(records, "ent/proj", title="t")
    runsets = [b.runsets[0] for b in built.blocks if isinstance(b, wr.PanelGrid)]
    groups = report.group_runs(records)
    assert len(runsets) == len(groups) == 2
    # one W&B group (one command line) holds both recipes; each runset only its own runs
    assert len({g.name for g in groups}) == 1
    for runset, group in zip(runsets, groups, strict=True):
        mine = sorted(r.run_id for r in group.runs)
        assert f'Config("run_id") in {mine!r}' in runset.filters
        assert not any(r.run_id in runset.filters for r in records if r.run_id not in mine)


def test_a_resumed_run_keeps_its_first_code_and_counts_as_mixed() -> None:
    resumed = [{"version": "0.2.0", "git_commit": "b" * 40, "at": DAY2}]
    runs = launch("conv") + launch("coordconv")
    runs[0] = record(
        ClassificationConfig(conv="conv", seed=0, split="quadrant"), acc=0.1, resumed_with=resumed
    )
    assert runs[0].code == f"0.1.0 at {'a' * 12}, resumed by 0.2.0 at {'b' * 12}"
    assert runs[0].mixed_code and not runs[1].mixed_code
    (group,) = report.group_runs(runs)
    assert "different code versions" in group.notes[0]
    assert "resumed by 0.2.0" in group.notes[0]
    # resumed by the code that started it: not mixed
    same = [{"version": "0.1.0", "git_commit": "a" * 40, "at": DAY2}]
    assert not record(ClassificationConfig(), acc=0.5, resumed_with=same).mixed_code


def test_a_run_made_outside_a_git_checkout_says_so_in_words() -> None:
    """An installed wheel or a copied tree records no commit: the code reads as a phrase, not
    as a commit cut to twelve characters ("unknown comm")."""
    cfg = ClassificationConfig()
    plain = record(cfg, acc=0.5, git_commit=None)
    assert plain.code == "0.1.0 at an unknown commit"
    dirty = record(cfg, acc=0.5, git_commit="c" * 40 + "-dirty")
    assert dirty.code == f"0.1.0 at {'c' * 12}-dirty"
    resumed = [{"version": "0.2.0", "git_commit": None, "at": DAY2}]
    assert record(cfg, acc=0.5, resumed_with=resumed).code == (
        f"0.1.0 at {'a' * 12}, resumed by 0.2.0 at an unknown commit"
    )


def test_the_regression_baseline_is_resolved_like_any_default() -> None:
    cfg = RegressionConfig(conv="conv", split="quadrant")
    runs = [
        record(RegressionConfig(conv=c, split="quadrant"), acc=0.5, bench="toy.regression")
        for c in ("conv", "coordconv")
    ]
    assert cfg.baseline == "auto" and cfg.resolve().baseline == "gap"
    assert runs[0].resolved["baseline"] == "gap"
    (group,) = report.group_runs(runs)
    assert "baseline=auto" not in report.to_markdown(
        [report.report_sections(runs, None, "x")[-1]], "t", Path(".")
    )
    assert group.title == "toy.regression"


def test_a_verdict_needs_the_interval_and_the_test() -> None:
    # 3 seeds a side: the bootstrap interval of Δ excludes 0, Welch's p is 0.35
    cmp = stats.compare([0.5, 0.6, 2.0], [0.4, 0.45, 0.5])
    assert cmp.diff.low > 0 and cmp.p_value > 0.05
    assert stats.verdict(cmp.diff, True) == "better"  # the interval alone
    assert cmp.verdict(True) == "similar"  # the report's rule
    clear = stats.compare([0.90, 0.91, 0.92], [0.10, 0.11, 0.12])
    assert clear.p_value < 0.05 and clear.verdict(True) == "better"
    assert clear.verdict(False) == "worse"
    # no spread on either side: no p-value, the interval decides
    constant = stats.compare([1.0, 1.0, 1.0], [0.0, 0.0, 0.0])
    assert constant.verdict(True) == "better"
    assert stats.compare([1.0], [0.0]).verdict(True) is None


def test_small_numbers_read_as_decimals() -> None:
    assert fmt_num(2.286e-04) == "0.0002286"
    assert fmt_num(0.01223) == "0.01223"
    assert fmt_num(-3.5e-06) == "-0.0000035"
    assert fmt_num(1.23456e-6) == "0.000001235"
    assert fmt_num(4e-9) == "4.000e-09"  # far below: an exponent
    cell = fmt_interval(stats.Interval(0.01223, 2.286e-04, 0.0458))
    assert cell == "0.01223 [0.0002286 to 0.0458]" and "e-" not in cell


def test_a_restart_by_other_code_is_recorded_not_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cc_bench import runner
    from cc_bench.registry import get_benchmark

    bench, cfg, run_dir = get_benchmark(BENCH), ClassificationConfig(), tmp_path / "t" / "r1"
    monkeypatch.setattr(runner, "git_commit", lambda: "a" * 40)
    first = runner._run_meta({}, bench, cfg, run_dir, "t")
    assert "resumed_with" not in runner._run_meta(first, bench, cfg, run_dir, "t")  # same code
    monkeypatch.setattr(runner, "git_commit", lambda: "b" * 40)
    later = runner._run_meta(first, bench, cfg, run_dir, "t")
    assert (later["git_commit"], later["created"], later["config"]) == (
        "a" * 40,
        first["created"],
        first["config"],
    )
    assert [r["git_commit"] for r in later["resumed_with"]] == ["b" * 40]
    again = runner._run_meta(later, bench, cfg, run_dir, "t")  # b again: nothing new
    assert [r["git_commit"] for r in again["resumed_with"]] == ["b" * 40]
    # the report reads it as a run of two code versions
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(again))
    read = report.read_run_folder(run_dir)
    assert read.mixed_code and read.code.endswith(f"resumed by {read.version} at {'b' * 12}")


def test_every_attempt_records_its_machine_and_the_report_names_a_mix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from cc_bench import runner
    from cc_bench.machine import cpu_name
    from cc_bench.registry import get_benchmark
    from cc_bench.report.document import to_markdown
    from cc_bench.report.sections import report_sections

    bench, run_dir = get_benchmark(BENCH), tmp_path / "t" / "r1"
    cfg = ClassificationConfig(device="cpu")  # a CPU run, on a CUDA machine too
    first = runner._run_meta({}, bench, cfg, run_dir, "t")
    (machine,) = first["machines"]
    assert machine["cpu"] == cpu_name() and machine["device"] == "cpu"
    assert machine["threads"] == torch.get_num_threads() and machine["torch"] == torch.__version__
    resumed = runner._run_meta(first, bench, cfg, run_dir, "t")  # a resume adds its own
    assert len(resumed["machines"]) == 2 and resumed["machines"][0] == machine
    if not torch.cuda.is_available():  # asking for an absent GPU: one line, before a start
        with pytest.raises(UserError, match="CUDA is not available"):
            runner._run_meta({}, bench, ClassificationConfig(device="cuda"), run_dir, "t")

    runs = launch("conv") + launch("coordconv")
    zen3 = {"cpu": "AMD EPYC (family 25 model 1, 2 logical CPUs)", "threads": 1, "device": "cpu"}
    for r in runs:
        r.machines = [dict(zen3)]
    (group,) = report.group_runs(runs)
    assert not any("machines" in n for n in group.notes)  # one machine: nothing to say
    overview = to_markdown(report_sections(runs, None), "t", None)
    assert f"computed on {zen3['cpu']}, 1 thread." in overview
    runs[-1].machines = [dict(zen3), {"device": "cuda:0", "gpu": "NVIDIA H200"}]
    (group,) = report.group_runs(runs)
    (note,) = [n for n in group.notes if "different machines" in n]
    assert f"machines: {zen3['cpu']}, 1 thread (conv seeds 0, 1, 2; CoordConv seeds 0, 1)" in note
    assert f"{zen3['cpu']}, 1 thread, resumed on cuda:0 (NVIDIA H200) (CoordConv seed 2)" in note
    two = (
        f"computed on {zen3['cpu']}, 1 thread and on cuda:0 (NVIDIA H200) (groups whose runs "
        "differ say so)"
    )
    overview = to_markdown(report_sections(runs, None), "t", None)
    assert two in overview
    # machines are counted one by one, not by the runs' histories of them
    runs[0].machines = [{"device": "cuda:0", "gpu": "NVIDIA H200"}]
    overview = to_markdown(report_sections(runs, None), "t", None)
    assert two in overview
    for k, r in enumerate(runs[:4]):  # more than three: counted, not named
        r.machines = [{**zen3, "threads": k + 2}]
    overview = to_markdown(report_sections(runs, None), "t", None)
    assert "computed on 6 machines or thread counts (groups whose runs differ say so)" in overview


def test_run_time_fields_never_split_a_group_nor_show_as_a_difference() -> None:
    """Detection runs that differ only in their test batch (a run-time field: the same
    run id) pool into one comparison, whose title and config line do not show it."""
    from cc_bench.detection.configs import DetectionConfig

    bench = "detection.mnist_scatter"
    records = [
        record(
            DetectionConfig(conv=conv, seed=s, eval_batch_size=batch),
            acc=0.5,
            bench=bench,
        )
        for conv in ("conv", "coordconv")
        for s, batch in ((0, 100), (1, 7))
    ]
    (group,) = report.group_runs(records)
    assert [len(group.finished(side)) for side in ("conv", "coordconv")] == [2, 2]
    shared, per_side = group.trained_with()
    assert not any("eval_batch_size" in line for line in shared + per_side)
    assert "eval_batch_size" not in group.title and not group.superseded
