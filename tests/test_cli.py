"""The `cc-bench` command end to end: listing, help, runs, skip / resume / fresh, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY, cc_bench, kill_after_checkpoint, last_json, run_folder

BENCH = "toy.classification"


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_list_names_every_benchmark_with_its_description() -> None:
    proc = cc_bench("list")
    assert proc.returncode == 0
    line = next(x for x in proc.stdout.splitlines() if x.startswith(BENCH))
    assert "softmax over the 64x64 pixels" in line


def test_a_command_without_its_argument_is_usage_and_exit_2() -> None:
    # a script that forgets the command (or the benchmark) must not read it as success
    bare = cc_bench()
    assert bare.returncode == 2 and bare.stdout == ""
    assert bare.stderr.startswith("usage: cc-bench") and "Traceback" not in bare.stderr
    run = cc_bench("run")
    assert run.returncode == 2 and run.stderr.startswith("usage: cc-bench run BENCH")
    helped = cc_bench("--help")  # asked for: standard output, success
    assert helped.returncode == 0 and helped.stdout.startswith("usage: cc-bench")


def test_import_and_list_do_not_import_torch() -> None:
    code = (
        "import sys, cc_bench; from cc_bench.registry import list_benchmarks; "
        "list_benchmarks(); heavy = ('torch', 'wandb', 'tyro', 'stable_baselines3', 'gymnasium', "
        "'ale_py', 'torchvision', 'torchmetrics', 'matplotlib', 'scipy', 'mlxtend'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_commands_share_a_parser_module_not_each_other() -> None:
    """`report` and `launch` get ArgumentParser from cc_bench.arguments, not from the CLI, and a
    domain registering a report section imports nothing heavy."""
    code = (
        "import sys, cc_bench.report.cli, cc_bench.launch.cli; "
        "bad = [m for m in ('cc_bench.cli',) if m in sys.modules]; "
        "[sys.modules.pop(m) for m in list(sys.modules) if m.startswith(('cc_bench', 'numpy', 'scipy'))]; "
        "import cc_bench.report.extras; "
        "print(bad + sorted(m for m in ('numpy', 'scipy', 'cc_bench.report.groups') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_help_lists_every_field_with_docstring_and_default() -> None:
    proc = cc_bench("run", BENCH, "--help", env={"COLUMNS": "200"})
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    for option, doc in [
        ("--conv", "Plain convolution"),
        ("--split", "bottom-right quadrant"),
        ("--epochs", "Training epochs"),
        ("--lr", "Adam learning rate"),
        ("--deconv-kernel", "Kernel size fs"),
        ("--seed", "Random seed"),
    ]:
        assert option in text and doc in text, option
    # the values a field left at 0 takes, from the config's own conv_defaults
    from cc_bench.toy.configs import ClassificationConfig

    per_conv = ClassificationConfig.conv_defaults
    conv = ", ".join(f"{k}={v}" for k, v in per_conv["conv"].items())
    assert "Left at 0, a field takes its conv's value." in text and f"conv: {conv}." in text
    assert "run options: --runs-dir DIR" in text
    assert "(default: 0.2)" in text  # test_fraction
    assert "--runs-dir" in text and "--fresh" in text


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (
            ["run", "toy.clasification"],
            [
                "unknown benchmark 'toy.clasification'",
                "did you mean 'toy.classification'",
                "available:",
            ],
        ),
        (["run", BENCH, "--epoch", "3"], ["--epoch", "did you mean --epochs"]),
        (["run", BENCH, "--epochs", "three"], ["--epochs", "three"]),
        (["run", BENCH, "--epochs", "-1"], ["epochs=-1", "must be >= 0"]),
        (["run", BENCH, "--split", "diagonal"], ["diagonal", "uniform", "quadrant"]),
        (["run", BENCH, "--test-fraction", "1.5"], ["test_fraction=1.5", "must be < 1.0"]),
        (["run", BENCH, "--widths", "4", "0"], ["widths=(4, 0)", "positive"]),
        (["run", BENCH, "--device", "tpu"], ["device='tpu'", "cuda"]),
        (["run", BENCH, "--seed", "4294967296"], ["seed=4294967296", "<= 2147483647"]),
        (["run", "rl.dqn", "--eval-seed", "2147483648"], ["eval_seed=2147483648", "<= 2147483647"]),
        (["run", BENCH, "--runs-dir"], ["--runs-dir", "expected one argument"]),
        (["frobnicate"], ["unknown command 'frobnicate'"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], fragments: list[str]) -> None:
    assert_one_line_error(cc_bench(*args), *fragments)


def test_unwritable_runs_folder_is_one_line_and_exit_2(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("precious\n")
    proc = cc_bench("run", BENCH, *TINY, "--runs-dir", str(blocker / "runs"))
    assert_one_line_error(proc, "cannot create runs folder", str(blocker))
    assert blocker.read_text() == "precious\n"


def test_run_writes_its_folder_and_prints_the_summary_last(runs_dir: Path) -> None:
    proc = cc_bench("run", BENCH, *TINY, "--runs-dir", str(runs_dir))
    assert proc.returncode == 0, proc.stderr
    folder = run_folder(proc.stdout)
    assert folder.parent == runs_dir / "adhoc" / BENCH
    assert folder.name.startswith("coordconv_seed0_")
    metrics = last_json(proc.stdout)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "finished"
    assert summary["metrics"] == metrics
    assert set(metrics) == {
        "train_acc",
        "test_acc",
        "train_loss",
        "test_loss",
        "params",
        "wall_s",
        "time_to_perfect_s",
    }
    # widths (4, 4): 4*4+4 + 4*4+4 + 4*1+1 parameters (the first 1x1 conv sees 2 inputs + i, j)
    assert metrics["params"] == (4 * 4 + 4) + (4 * 4 + 4) + (4 + 1)
    config = json.loads((folder / "config.json").read_text())
    assert config["benchmark"] == BENCH and config["run_id"] == folder.name
    assert config["config"]["epochs"] == 2 and config["config"]["widths"] == [4, 4]
    assert config["version"] and "git_commit" in config
    lines = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2]
    assert {"train/acc", "test/acc", "train/loss", "test/loss", "time"} <= set(lines[-1])
    assert lines[-1]["test/acc"] == metrics["test_acc"]
    assert (folder / "checkpoint.pt").exists()
    assert not list(folder.glob(".*.tmp"))


def test_same_command_skips_a_finished_run_and_fresh_moves_it_aside(runs_dir: Path) -> None:
    first = cc_bench("run", BENCH, *TINY, "--runs-dir", str(runs_dir))
    folder = run_folder(first.stdout)
    again = cc_bench("run", BENCH, *TINY, "--runs-dir", str(runs_dir))
    assert again.returncode == 0
    assert "already finished" in again.stderr
    assert run_folder(again.stdout) == folder
    assert last_json(again.stdout) == last_json(first.stdout)

    old_summary = (folder / "summary.json").read_text()
    fresh = cc_bench("run", BENCH, *TINY, "--runs-dir", str(runs_dir), "--fresh")
    assert fresh.returncode == 0, fresh.stderr
    assert run_folder(fresh.stdout) == folder
    moved = list((folder.parent / ".superseded").iterdir())
    assert len(moved) == 1 and moved[0].name.startswith(folder.name)
    assert (moved[0] / "summary.json").read_text() == old_summary


def test_a_run_records_the_fields_its_command_line_set(runs_dir: Path) -> None:
    proc = cc_bench("run", BENCH, *TINY, "--no-with-r", "--lr=0.01", "--runs-dir", str(runs_dir))
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((run_folder(proc.stdout) / "config.json").read_text())
    assert meta["given"] == ["epochs", "lr", "max_train_examples", "widths", "with_r"]


def test_fresh_and_a_wrong_device_leave_the_run_as_it_was(runs_dir: Path) -> None:
    import fcntl

    first = cc_bench("run", BENCH, *TINY, "--runs-dir", str(runs_dir))
    folder = run_folder(first.stdout)
    summary = (folder / "summary.json").read_text()
    # A device this machine lacks (no CUDA here, or no 100th GPU on a CUDA machine) is refused
    # before the folder changes (device is not part of the run id: the finished run is this one).
    wrong = cc_bench(
        "run", BENCH, *TINY, "--runs-dir", str(runs_dir), "--fresh", "--device", "cuda:99"
    )
    assert_one_line_error(wrong, "device='cuda:99' asked for, but ")
    assert (folder / "summary.json").read_text() == summary
    assert not (folder.parent / ".superseded").exists()
    # --fresh never moves a folder another process is training in.
    with (folder / ".lock").open("a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # what the runner holds while it runs
        busy = cc_bench("run", BENCH, *TINY, "--runs-dir", str(runs_dir), "--fresh")
    assert_one_line_error(busy, "is being run by another process right now")
    assert (folder / "summary.json").read_text() == summary
    assert not (folder.parent / ".superseded").exists()


def test_a_killed_run_resumes_and_ends_as_if_never_stopped(tmp_path: Path) -> None:
    args = ["run", BENCH, "--epochs", "6", "--max-train-examples", "64", "--widths", "4", "4"]
    reference = cc_bench(*args, "--runs-dir", str(tmp_path / "reference"))
    assert reference.returncode == 0, reference.stderr

    runs = tmp_path / "killed"
    checkpoint = kill_after_checkpoint([*args, "--runs-dir", str(runs)], runs, BENCH)

    resumed = cc_bench(*args, "--runs-dir", str(runs))
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {checkpoint.parent.name} from step" in resumed.stderr
    steps = [
        json.loads(x)["step"]
        for x in (checkpoint.parent / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == [1, 2, 3, 4, 5, 6]
    ours, theirs = last_json(resumed.stdout), last_json(reference.stdout)
    for key in ("train_acc", "test_acc", "train_loss", "test_loss"):
        assert ours[key] == pytest.approx(theirs[key], rel=1e-6), key


def test_nan_loss_fails_the_run_with_its_step(runs_dir: Path) -> None:
    proc = cc_bench(
        "run",
        BENCH,
        "--conv",
        "conv",
        "--epochs",
        "3",
        "--max-train-examples",
        "32",
        "--lr",
        "1e30",
        "--runs-dir",
        str(runs_dir),
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    summary = json.loads((run_folder(proc.stdout) / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert "nan" in summary["error"] and summary["step"] >= 1
    assert f"at step {summary['step']}" in summary["error"]


def _rejects_its_data(cfg, tracker):  # a benchmark that finds its input bad once it looks
    from cc_bench.errors import UserError

    if cfg.epochs == 1:  # logs a step first: a run that a later attempt could resume
        tracker.log({"train/loss": 1.0}, step=1)
    raise UserError("the data folder /nowhere holds no images")


def test_input_rejected_inside_a_run_leaves_no_empty_folder(runs_dir: Path) -> None:
    from cc_bench.errors import UserError
    from cc_bench.registry import Benchmark
    from cc_bench.runner import execute
    from cc_bench.toy.configs import ClassificationConfig

    bench = Benchmark("toy.rejects", ClassificationConfig, "test_cli:_rejects_its_data", "")
    cfg = ClassificationConfig(conv="conv", epochs=1)
    with pytest.raises(UserError, match="holds no images"):
        execute(
            bench, ClassificationConfig(conv="conv", epochs=2), runs_dir=runs_dir, no_wandb=True
        )
    assert not any((runs_dir / "adhoc" / "toy.rejects").iterdir())  # nothing to resume
    # A run that logged a step before its input was rejected keeps its folder.
    with pytest.raises(UserError):
        execute(bench, cfg, runs_dir=runs_dir, no_wandb=True)
    (kept,) = (runs_dir / "adhoc" / "toy.rejects").iterdir()
    assert (kept / "metrics.jsonl").read_text().strip()
    assert (kept / "config.json").exists()


def test_a_run_killed_after_its_last_checkpoint_resumes_to_the_same_summary(
    runs_dir: Path,
) -> None:
    # Killed after the final checkpoint, before summary.json (drawing, closing W&B).
    args = ("run", BENCH, "--conv", "conv", *TINY, "--runs-dir", str(runs_dir), "--no-wandb")
    first = cc_bench(*args)
    assert first.returncode == 0, first.stderr
    folder = run_folder(first.stdout)
    (folder / "summary.json").unlink()
    # the checkpoint's step counts what metrics.jsonl counts (epochs), so a resumed run
    # drops exactly the lines logged after it
    logged = [json.loads(x)["step"] for x in (folder / "metrics.jsonl").read_text().splitlines()]
    again = cc_bench(*args)
    assert again.returncode == 0, again.stderr
    assert f"resuming {folder.name} from step {logged[-1]}\n" in again.stderr
    ours, theirs = last_json(again.stdout), last_json(first.stdout)
    for key in ("train_acc", "test_acc", "train_loss", "test_loss"):
        assert ours[key] == theirs[key], key


def test_run_files_of_the_wrong_shape_are_read_as_damaged_not_a_traceback(
    runs_dir: Path,
) -> None:
    args = ("run", BENCH, "--conv", "conv", *TINY, "--runs-dir", str(runs_dir), "--no-wandb")
    done = cc_bench(*args)
    folder = run_folder(done.stdout)
    other = runs_dir / "adhoc" / BENCH / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"benchmark": BENCH, "config": "x"}))
    (folder / "summary.json").write_text("[1]")  # valid JSON, not an object
    again = cc_bench(*args)  # read as no summary: resumed from the checkpoint, finished
    assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr
    assert json.loads((folder / "summary.json").read_text())["status"] == "finished"
    summary = json.loads((folder / "summary.json").read_text())
    summary["metrics"] = [1, 2]
    (folder / "summary.json").write_text(json.dumps(summary))
    (other / "config.json").write_text("[1, 2]")
    for command in (
        ("status", str(runs_dir)),
        ("launch", "toy", "--dry-run", "--runs-dir", str(runs_dir)),
        ("report", str(runs_dir), "--out", str(runs_dir / "report")),
    ):
        proc = cc_bench(*command)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, (command, proc.stderr)


def test_a_damaged_checkpoint_is_one_line_and_fresh_starts_over(runs_dir: Path) -> None:
    args = ("run", BENCH, "--conv", "conv", *TINY, "--runs-dir", str(runs_dir), "--no-wandb")
    folder = run_folder(cc_bench(*args).stdout)
    (folder / "summary.json").unlink()
    (folder / "checkpoint.pt").write_bytes(b"not a checkpoint")
    proc = cc_bench(*args)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"cc-bench: error: cannot read the checkpoint {folder / 'checkpoint.pt'} (UnpicklingError); "
        "--fresh starts the run over, keeping this folder aside"
    )
    assert (folder / "checkpoint.pt").read_bytes() == b"not a checkpoint"  # nothing lost
    fresh = cc_bench(*args, "--fresh")
    assert fresh.returncode == 0, fresh.stderr
    assert list((folder.parent / ".superseded").iterdir())


def test_count_says_one_run_and_two_runs() -> None:
    from cc_bench.words import count

    assert [count(n, "run") for n in (0, 1, 2)] == ["0 runs", "1 run", "2 runs"]
    assert count(1, "finished run") == "1 finished run"
    assert count(3, "match", "matches") == "3 matches"
