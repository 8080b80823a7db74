"""Suites and `cc-bench launch` / `cc-bench status` with the local executor, for real.

The local tests run tiny `toy.classification` runs through submitit's LocalExecutor: several
in parallel, one that fails (a learning rate that makes the loss NaN), a relaunch that skips
what finished, and a run killed mid-way that the next launch resumes.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import cc_bench, start_cc_bench, wait_for_checkpoint

from cc_bench.errors import UserError
from cc_bench.launch import launch_parser, main_launch, main_status, make_plan, slurm_parameters
from cc_bench.report.runs import load_runs
from cc_bench.suites import Suite, SuiteEntry, expand, get_suite, parse_sets, register_suite
from cc_bench.toy.configs import ClassificationConfig

BENCH = "toy.classification"
TINY = {"epochs": 2, "max_train_examples": 32, "widths": (4, 4)}
TESTS_DIR = Path(__file__).resolve().parent


def tiny_suite(name: str) -> Suite:
    """Three tiny runs that finish and one that fails (lr=1e30 makes the loss NaN)."""
    return Suite(
        name,
        "tiny runs for the launch tests",
        (
            SuiteEntry(BENCH, convs=("coordconv",), seeds=2, fixed=TINY),
            SuiteEntry(BENCH, convs=("conv",), seeds=1, fixed=TINY),
            SuiteEntry(BENCH, convs=("conv",), seeds=1, fixed={**TINY, "lr": 1e30}),
        ),
    )


def grid_suite(name: str) -> Suite:
    """A grid of 2 splits x 2 convs x 3 seeds (no runs are executed)."""
    entry = SuiteEntry(BENCH, grid={"split": ["uniform", "quadrant"]}, seeds=3, fixed=TINY)
    return Suite(name, "a grid", (entry,))


TINY_SUITE = register_suite(tiny_suite("test-launch-tiny"))
GRID_SUITE = register_suite(grid_suite("test-launch-grid"))
LONG_SUITE = register_suite(
    Suite(
        "test-launch-long",
        "one run long enough to be killed mid-way",
        (SuiteEntry(BENCH, convs=("coordconv",), seeds=1, fixed={**TINY, "epochs": 8}),),
    )
)


@pytest.fixture(autouse=True)
def _quiet_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    # Child processes inherit these: no W&B, and one thread each on the shared CPUs.
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def launch(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`cc-bench launch ARGS` in this process: exit code, stdout, stderr."""
    code = main_launch(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def summaries(suite_dir: Path) -> dict[str, dict]:
    """Run id -> summary.json of every run of a suite that has one."""
    return {
        p.parent.name: json.loads(p.read_text()) for p in suite_dir.glob(f"{BENCH}/*/summary.json")
    }


# -- suites ----------------------------------------------------------------------------------


def test_expand_counts_the_grid() -> None:
    runs = expand(GRID_SUITE)
    assert len(runs) == 2 * 2 * 3
    combos = {(r.cfg.split, r.cfg.conv, r.cfg.seed) for r in runs}
    assert len(combos) == 12
    assert len(expand(GRID_SUITE, seeds=1)) == 4
    # every run takes the fixed values; conv runs get the deconv baseline's own defaults
    assert {r.cfg.epochs for r in runs} == {2}
    conv_lr = ClassificationConfig.conv_defaults["conv"]["lr"]
    assert {r.cfg.resolve().lr for r in runs if r.cfg.conv == "conv"} == {conv_lr}


def test_default_workers_count_the_threads_a_run_pins(monkeypatch: pytest.MonkeyPatch) -> None:
    from cc_bench.launch.local import default_workers

    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    det = get_suite("det-laptop")
    runs = expand(det)
    assert {r.cfg.torch_threads for r in runs} == {1}
    assert default_workers([], runs) == 8  # one pinned thread each: a run per core
    assert default_workers([], expand(GRID_SUITE)) == 4  # nothing pinned: a run per 2 cores
    assert default_workers([], []) == 4
    two = expand(det, sets=parse_sets(det, ["torch_threads=2"]))
    assert default_workers([], two) == 4
    assert default_workers([0, 1], runs) == 2  # one run per GPU


def _visible_devices() -> list[str | None]:
    """What a job sees: its CUDA_VISIBLE_DEVICES (a job returns a list; the pool reads [0])."""
    return [os.environ.get("CUDA_VISIBLE_DEVICES")]


def test_more_workers_than_gpus_share_them_in_turn(tmp_path: Path) -> None:
    """`--workers 3` on GPUs 4 and 7: real submitit jobs, slots pinned 4, 7, 4; a slot that
    frees up keeps its GPU."""
    from types import SimpleNamespace

    import cloudpickle

    from cc_bench.launch.local import LocalPool

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the jobs cannot import tests/
    try:
        pool = LocalPool(tmp_path, workers=3, gpus=[4, 7])
        for k in range(3):
            pool.submit(_visible_devices, SimpleNamespace(run=k))
        seen: dict[int, str | None] = {}
        deadline = time.monotonic() + 120
        while len(seen) < 3 and time.monotonic() < deadline:
            seen.update((step.run, result) for step, result, _ in pool.collect())
            time.sleep(0.1)
        assert seen == {0: "4", 1: "7", 2: "4"}
        pool.submit(_visible_devices, SimpleNamespace(run=3))  # into a freed slot, on its GPU
        while len(seen) < 4 and time.monotonic() < deadline:
            seen.update((step.run, result) for step, result, _ in pool.collect())
            time.sleep(0.1)
        assert seen[3] in ("4", "7")
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def test_the_dry_run_shows_what_sets_each_run_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main_launch([GRID_SUITE.name, "--runs-dir", str(tmp_path), "--dry-run"]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith(BENCH)]
    assert len(lines) == 12
    # the split varies in this suite; conv and seed are in the id; the fixed fields are not shown
    assert (
        sorted(x.split("  ")[-1] for x in lines) == ["split=quadrant"] * 6 + ["split=uniform"] * 6
    )
    assert all(x.split()[2] == "run" for x in lines)


def test_run_folders_follow_the_layout(tmp_path: Path) -> None:
    for run in expand(GRID_SUITE, runs_dir=tmp_path):
        assert run.run_dir == tmp_path / GRID_SUITE.name / BENCH / run.run_id
        assert run.run_id.startswith(f"{run.cfg.conv}_seed{run.cfg.seed}_")


def test_ids_are_stable_across_expansions_and_processes() -> None:
    first = [r.run_id for r in expand(GRID_SUITE)]
    assert first == [r.run_id for r in expand(GRID_SUITE)]
    assert len(set(first)) == len(first)
    code = (
        f"import sys; sys.path.insert(0, {str(TESTS_DIR)!r}); "
        "from test_launch import grid_suite; from cc_bench.suites import expand; "
        "print(' '.join(r.run_id for r in expand(grid_suite('other-name'))))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert other.stdout.split() == first


def test_set_overrides_and_collapses_axes() -> None:
    sets = parse_sets(GRID_SUITE, ["split=quadrant", "widths=8,8", "conv=coordconv", "lr=0.01"])
    runs = expand(GRID_SUITE, seeds=2, sets=sets)
    assert len(runs) == 2
    assert {(r.cfg.split, r.cfg.widths, r.cfg.conv, r.cfg.lr) for r in runs} == {
        ("quadrant", (8, 8), "coordconv", 0.01)
    }
    # `--set lr=1` and `--set lr=1.0` are the same run
    one = expand(GRID_SUITE, seeds=1, sets={"lr": "1"})
    assert [r.run_id for r in one] == [r.run_id for r in expand(GRID_SUITE, 1, {"lr": "1.0"})]


def test_set_rejects_unknown_fields_and_bad_values() -> None:
    with pytest.raises(UserError, match=r"--set epoch: no benchmark .*did you mean 'epochs'"):
        parse_sets(GRID_SUITE, ["epoch=3"])
    with pytest.raises(UserError, match="FIELD=VALUE"):
        parse_sets(GRID_SUITE, ["epochs"])
    with pytest.raises(UserError, match=r"invalid epochs='many': must be an integer"):
        expand(GRID_SUITE, sets={"epochs": "many"})
    with pytest.raises(UserError, match=r"invalid split='diagonal': must be one of"):
        expand(GRID_SUITE, sets={"split": "diagonal"})
    with pytest.raises(UserError, match=r"invalid lr=-1.0: must be >= 0"):
        expand(GRID_SUITE, sets={"lr": "-1"})


def test_registry_of_suites() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_suite(grid_suite(GRID_SUITE.name))
    with pytest.raises(UserError, match=r"unknown suite 'test-launch-grdi'; did you mean"):
        get_suite("test-launch-grdi")
    assert get_suite(GRID_SUITE.name) is GRID_SUITE


# -- bad input on the command line -----------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-suite"], "unknown suite 'no-such-suite'"),
        (["test-launch-grid", "--executor", "pbs"], "invalid choice: 'pbs'"),
        (["test-launch-grid", "--set", "colour=red"], "--set colour: no benchmark"),
        (["test-launch-grid", "--set", "epochs=x"], "invalid epochs='x'"),
        (["test-launch-grid", "--workers", "0"], "must be >= 1"),
        ([], "launch needs a SUITE"),
    ],
)
def test_launch_bad_input_is_one_user_error(args: list[str], message: str) -> None:
    with pytest.raises(UserError, match=message):
        main_launch(args)


def test_slurm_options_reach_the_sbatch_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import submitit
    from submitit.slurm.slurm import SlurmExecutor

    monkeypatch.setattr(SlurmExecutor, "affinity", classmethod(lambda cls: 2))  # no srun needed
    args = launch_parser().parse_args(
        ["toy", "--executor", "slurm", "--partition", "gpu", "--gpus-per-job", "1"]
        + ["--cpus-per-job", "4", "--mem-gb", "16", "--time-min", "90", "--account", "acc"]
        + ["--qos", "high", "--constraint", "a100", "--array-parallelism", "8"]
        + ["--sbatch-line=--reservation=week", "--sbatch-line", "#SBATCH --exclusive"]
        + ["--setup", "module load cuda"]
    )
    executor = submitit.AutoExecutor(folder=tmp_path, cluster="slurm")
    executor.update_parameters(**slurm_parameters(args))
    script = executor._executor._make_submission_file_text("python -m job", "uid")
    for line in [
        "#SBATCH --partition=gpu",
        "#SBATCH --gpus-per-node=1",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --mem=16GB",
        "#SBATCH --time=90",
        "#SBATCH --account=acc",
        "#SBATCH --qos=high",
        "#SBATCH --constraint=a100",
        "#SBATCH --reservation=week",
        "#SBATCH --exclusive",
        "#SBATCH --job-name=cc-bench-toy",
        "#SBATCH --signal=USR2@90",
        "module load cuda",
    ]:
        assert line in script.splitlines(), line
    assert executor._executor.parameters["array_parallelism"] == 8


@pytest.mark.skipif(shutil.which("sbatch") is None, reason="needs Slurm's sbatch")
def test_a_failed_sbatch_is_one_line_with_its_cause_and_leaves_no_job_files(
    tmp_path: Path,
) -> None:
    (tmp_path / "slurm.conf").write_text("")  # a cluster configured wrongly: no ClusterName
    env = {"SLURM_CONF": str(tmp_path / "slurm.conf")}
    runs = tmp_path / "runs"
    proc = cc_bench(
        "launch", "toy", "--seeds", "1", "--executor", "slurm", "--runs-dir", str(runs), env=env
    )
    assert proc.returncode == 2
    assert proc.stderr == "cc-bench: error: sbatch failed: ClusterName needs to be specified\n"
    assert not [p for p in (runs / "toy").rglob("*") if p.is_file()]


def test_launch_list_shows_suites(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = launch(capsys, "--list")
    assert code == 0
    assert any(line.startswith("test-launch-grid ") and BENCH in line for line in out.splitlines())


# -- the local executor, for real ------------------------------------------------------------


@pytest.fixture(scope="module")
def launched(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The tiny suite launched once with 2 workers (shared by the tests below)."""
    runs_dir = tmp_path_factory.mktemp("launch") / "runs"
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:  # a module fixture cannot use capsys
        mp.setenv("WANDB_MODE", "disabled")
        mp.setenv("OMP_NUM_THREADS", "1")
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main_launch([TINY_SUITE.name, "--runs-dir", str(runs_dir), "--workers", "2"])
    return {
        "runs_dir": runs_dir,
        "suite_dir": runs_dir / TINY_SUITE.name,
        "code": code,
        "stdout": out.getvalue(),
        "stderr": err.getvalue(),
    }


def test_local_runs_finish_and_one_failure_does_not_stop_them(launched: dict) -> None:
    done = summaries(launched["suite_dir"])
    assert len(done) == 4, launched["stdout"]
    statuses = sorted(s["status"] for s in done.values())
    assert statuses == ["failed", "finished", "finished", "finished"]
    failed = next(run_id for run_id, s in done.items() if s["status"] == "failed")
    assert "nan" in done[failed]["error"]
    assert launched["code"] == 1
    assert str(launched["suite_dir"] / BENCH / failed) in launched["stderr"]
    assert "1 run failed" in launched["stderr"]


def test_local_runs_in_parallel_each_in_its_own_process(launched: dict) -> None:
    overview = [line for line in launched["stdout"].splitlines() if line.startswith("[done")]
    running = [int(line.split(" · running ")[1].split(" ")[0]) for line in overview]
    assert max(running) == 2, launched["stdout"]  # two at a time, never more
    logs = list((launched["suite_dir"] / ".submitit").glob("*_0_log.err"))
    assert len(logs) == 4  # one submitit job (one process) per run


def test_status_reads_the_run_folders(launched: dict, capsys: pytest.CaptureFixture[str]) -> None:
    assert main_status([str(launched["runs_dir"])]) == 0
    out = capsys.readouterr().out
    assert "4 runs: 3 done, 0 running, 1 failed, 0 unfinished" in out
    assert f"{TINY_SUITE.name}/{BENCH}" in out
    assert "failed:" in out and "became nan" in out


def test_status_sees_a_running_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "adhoc" / BENCH / "coordconv_seed0_0000"
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text("{}")
    with (run_dir / ".lock").open("a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # what the runner holds while it runs
        main_status([str(tmp_path)])
    assert "1 run: 0 done, 1 running, 0 failed, 0 unfinished" in capsys.readouterr().out
    main_status([str(tmp_path)])
    assert "1 run: 0 done, 0 running, 0 failed, 1 unfinished" in capsys.readouterr().out


def test_status_and_report_name_a_run_folder_with_a_damaged_config(
    launched: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run folder whose config.json is cut short is left out by `status` and `report`,
    each saying so on stderr and naming the folder; the other runs are counted as before."""
    runs_dir = tmp_path / "runs"
    shutil.copytree(launched["runs_dir"], runs_dir)
    damaged = sorted((runs_dir / TINY_SUITE.name / BENCH).iterdir())[0]
    (damaged / "config.json").write_text('{"bad": ')
    assert main_status([str(runs_dir)]) == 0
    captured = capsys.readouterr()
    assert "3 runs: " in captured.out and str(damaged) not in captured.out
    note = f"warning: 1 run folder left out: config.json unreadable or not a cc-bench run's ({damaged})"
    assert note in captured.err
    assert len(load_runs(runs_dir)) == 3
    assert note in capsys.readouterr().err


def test_a_device_this_machine_lacks_is_refused_before_any_local_job(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    args = ["det-smoke", "--runs-dir", str(tmp_path), "--set", "device=cuda", "--no-wandb"]
    with pytest.raises(UserError, match="device='cuda' asked for, but CUDA is not available"):
        main_launch(args)
    assert not list(tmp_path.rglob("*"))  # no job, no run folder


def test_a_run_started_elsewhere_after_the_plan_is_not_a_failure(tmp_path: Path) -> None:
    from cc_bench.launch.jobs import RunBatch
    from cc_bench.launch.local import Overview
    from cc_bench.launch.plan import ELSEWHERE, RUN, Step
    from cc_bench.runner import run_dir_for
    from cc_bench.suites import PlannedRun

    cfg = ClassificationConfig(device="cpu")
    run_dir = run_dir_for(tmp_path, "adhoc", BENCH, cfg)
    run_dir.mkdir(parents=True)
    with (run_dir / ".lock").open("a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another launch's job runs it now
        (result,) = RunBatch([(BENCH, cfg, ("seed",))], str(tmp_path), "adhoc", no_wandb=True)()
    assert result.status == ELSEWHERE
    assert "is being run by another process right now" in (result.error or "")
    overview = Overview(1, io.StringIO())
    step = Step(PlannedRun(BENCH, cfg, run_dir.name, run_dir), RUN)
    overview.started(step)
    overview.ended(step, result)
    assert overview.counts["failed"] == 0 and overview.counts["elsewhere"] == 1
    assert "running elsewhere 1 · waiting 0" in overview.line()


def test_a_gpu_index_past_the_machines_gpus_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from cc_bench.runtime import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # two GPUs, as a node has
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(UserError, match=r"this machine has 2 CUDA devices \(cuda:0 to cuda:1\)"):
        resolve_device("cuda:2")


def test_status_bad_folders(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        main_status([str(tmp_path / "nowhere")])
    with pytest.raises(UserError, match="holds no runs"):
        main_status([str(tmp_path)])
    (tmp_path / "a-file").write_text("")
    with pytest.raises(UserError, match="is a file, not a folder"):
        main_status([str(tmp_path / "a-file")])


@pytest.mark.parametrize("dry_run", [True, False])
def test_launch_into_a_file_is_one_user_error(tmp_path: Path, dry_run: bool) -> None:
    (tmp_path / "runs").write_text("mine")
    args = ["test-launch-grid", "--runs-dir", str(tmp_path / "runs")]
    with pytest.raises(UserError, match="runs folder .*/runs is a file, not a folder"):
        main_launch(args + ["--dry-run"] * dry_run)
    assert (tmp_path / "runs").read_text() == "mine"
    if not dry_run:  # a folder under the file: cannot be made
        under = ["test-launch-grid", "--runs-dir", str(tmp_path / "runs" / "sub")]
        with pytest.raises(UserError, match="cannot create runs folder .*: Not a directory"):
            main_launch(under)


def test_relaunch_skips_finished_runs(launched: dict, capsys: pytest.CaptureFixture[str]) -> None:
    runs_dir = str(launched["runs_dir"])
    before = {
        p: p.stat().st_mtime_ns for p in launched["suite_dir"].glob(f"{BENCH}/*/summary.json")
    }
    code, out, _ = launch(capsys, TINY_SUITE.name, "--runs-dir", runs_dir, "--dry-run")
    assert code == 0
    assert "4 runs: 1 to retry, 3 finished" in out
    assert out.count("skip (finished)") == 3 and out.count("retry") == 2  # header + its line

    code, out, err = launch(capsys, TINY_SUITE.name, "--runs-dir", runs_dir, "--workers", "2")
    assert code == 1  # the NaN run fails again, alone
    assert "running 1 run," in out
    changed = [p for p, t in before.items() if p.stat().st_mtime_ns != t]
    assert len(changed) == 1 and json.loads(changed[0].read_text())["status"] == "failed"


def test_launch_warns_about_runs_of_another_version(
    launched: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = next(launched["suite_dir"].glob(f"{BENCH}/*/config.json")).parent
    meta = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps({**meta, "version": "0.0.1"}))
    try:
        args = (TINY_SUITE.name, "--runs-dir", str(launched["runs_dir"]), "--dry-run")
        code, _, err = launch(capsys, *args)
    finally:
        (run_dir / "config.json").write_text(json.dumps(meta))
    assert code == 0
    assert "warning:" in err and "another code version (" in err
    assert "1 by 0.0.1 at" in err  # (others may be by other commits of a busy checkout)


def test_runs_record_the_fields_their_suite_set(launched: dict) -> None:
    metas = [
        json.loads(p.read_text()) for p in launched["suite_dir"].glob(f"{BENCH}/*/config.json")
    ]
    assert len(metas) == 4
    for meta in metas:  # the rest took the code's defaults (a later default: an older recipe)
        extra = {"lr"} if meta["config"]["lr"] == 1e30 else set()
        assert meta["given"] == sorted({*TINY, "conv", "seed", *extra})


def test_runs_of_an_older_recipe_are_listed(
    launched: dict, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # an upgrade doubles conv's default lr: the finished conv run (lr left at 0) is now an
    # older recipe of a planned config; CoordConv's runs and the explicit-lr run are not
    (conv_run,) = [
        p.parent
        for p in launched["suite_dir"].glob(f"{BENCH}/conv_*/summary.json")
        if json.loads(p.read_text())["status"] == "finished"
    ]
    args = (TINY_SUITE.name, "--runs-dir", str(launched["runs_dir"]), "--dry-run")
    assert "older recipes" not in launch(capsys, *args)[1]
    assert main_status([str(launched["runs_dir"])]) == 0
    assert "older recipes" not in capsys.readouterr().out
    defaults = {k: dict(v) for k, v in ClassificationConfig.conv_defaults.items()}
    defaults["conv"]["lr"] *= 2
    monkeypatch.setattr(ClassificationConfig, "conv_defaults", defaults)

    code, out, _ = launch(capsys, *args)
    assert code == 0 and "4 runs: 1 to run, 1 to retry, 2 finished" in out
    assert "1 finished run of older recipes, not in this plan" in out
    (line,) = [x for x in out.splitlines() if str(conv_run) in x]
    plan = make_plan(expand(TINY_SUITE, runs_dir=launched["runs_dir"]))
    new_id = next(s.run.run_id for s in plan if s.action == "run")
    assert line.strip() == f"{conv_run}  (now {new_id})"
    assert main_status([str(launched["runs_dir"])]) == 0
    out = capsys.readouterr().out
    assert "1 finished run of older recipes" in out and f"{conv_run}  (now {new_id})" in out


def test_a_killed_run_is_resumed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs_dir = tmp_path / "runs"
    (run,) = expand(LONG_SUITE, runs_dir=runs_dir)
    # the same run started by hand (`cc-bench run`), then killed after its first checkpoint
    args = ["run", BENCH, "--suite", LONG_SUITE.name, "--runs-dir", str(runs_dir)]
    args += ["--conv", "coordconv", "--epochs", "8", "--max-train-examples", "32"]
    args += ["--widths", "4", "4"]
    proc = start_cc_bench(args)
    try:
        wait_for_checkpoint(proc, run.run_dir, "checkpoint.pt", timeout_s=120)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not (run.run_dir / "summary.json").exists()

    code, out, _ = launch(capsys, LONG_SUITE.name, "--runs-dir", str(runs_dir), "--dry-run")
    assert f"{run.run_id}  resume (from its checkpoint)" in out
    assert main_status([str(runs_dir)]) == 0
    assert "0 done, 0 running, 0 failed, 1 unfinished" in capsys.readouterr().out

    code, out, _ = launch(capsys, LONG_SUITE.name, "--runs-dir", str(runs_dir))
    assert code == 0, out
    assert f"resume   {BENCH} {run.run_id}" in out
    (log,) = (runs_dir / LONG_SUITE.name / ".submitit").glob("*_0_log.err")
    assert f"resuming {run.run_id} from step" in log.read_text()
    lines = (run.run_dir / "metrics.jsonl").read_text().splitlines()
    steps = [json.loads(line)["step"] for line in lines]
    assert steps == list(range(1, 9))  # resumed, not restarted: no step twice
    assert json.loads((run.run_dir / "summary.json").read_text())["status"] == "finished"


def test_cli_entry_point(tmp_path: Path) -> None:
    """Through the real `cc-bench` command: `launch` and `status` are routed here."""
    done = cc_bench("launch", "--list")
    assert done.returncode == 0
    bad = cc_bench("launch", "no-such-suite")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    bad = cc_bench("status", str(tmp_path / "nowhere"))
    assert bad.returncode == 2 and "does not exist" in bad.stderr
