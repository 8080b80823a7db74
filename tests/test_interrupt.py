"""Ctrl-C or SIGTERM in a run or a launch: the runs stay resumable, and the message says what the
same command does."""

from __future__ import annotations

import io
import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import start_cc_bench, wait_for_checkpoint

from cc_bench.cli import main
from cc_bench.rundir import RUNNING, UNFINISHED, run_state
from cc_bench.runner import execute
from cc_bench.toy import classification
from cc_bench.toy.configs import ClassificationConfig

BENCH = "toy.classification"


def interrupted_run(monkeypatch: pytest.MonkeyPatch, checkpoint_at: int | None) -> None:
    """The benchmark logs a step, saves a checkpoint at `checkpoint_at` (none if None), then
    gets Ctrl-C."""

    def run(cfg: ClassificationConfig, tracker: Any) -> dict[str, Any]:
        tracker.log({"train/loss": 1.0}, 1)
        if checkpoint_at is not None:
            tracker.save_checkpoint({"weights": [1.0]}, checkpoint_at)
        raise KeyboardInterrupt

    monkeypatch.setattr(classification, "run", run)


@pytest.mark.parametrize("checkpoint_at", [None, 7])
def test_the_interrupt_message_says_resume_or_start_again(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    checkpoint_at: int | None,
) -> None:
    interrupted_run(monkeypatch, checkpoint_at)
    args = ["run", BENCH, "--device", "cpu", "--no-wandb", "--runs-dir", str(tmp_path)]
    assert main(args) == 130
    err = capsys.readouterr().err
    if checkpoint_at is None:
        assert "interrupted before its first checkpoint: the same command starts" in err
    else:
        assert "the same command resumes coordconv_seed0_" in err
        assert f"from its checkpoint at step {checkpoint_at}" in err
    assert err.rstrip().endswith("cc-bench: interrupted")
    (run_dir,) = (tmp_path / "adhoc" / BENCH).iterdir()
    assert not (run_dir / "summary.json").exists()  # unfinished: resumable, not failed
    assert json.loads((run_dir / "metrics.jsonl").read_text())["step"] == 1


def test_the_next_attempt_resumes_from_the_checkpoint_it_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    interrupted_run(monkeypatch, 7)
    cfg = ClassificationConfig(device="cpu")
    with pytest.raises(KeyboardInterrupt):
        execute(BENCH, cfg, runs_dir=tmp_path, no_wandb=True, log=io.StringIO())
    log = io.StringIO()
    with pytest.raises(KeyboardInterrupt):
        execute(BENCH, cfg, runs_dir=tmp_path, no_wandb=True, log=log)
    assert "resuming coordconv_seed0_" in log.getvalue()
    assert "from step 7" in log.getvalue()


def test_sigterm_stops_a_run_as_ctrl_c_does(tmp_path: Path) -> None:
    """`kill PID` (SIGTERM) on `cc-bench run`: the run closes resumable, says so, and the
    command exits 143 (128 + 15), not killed on the spot."""
    args = ["run", "gan.sort_of_clevr", "--runs-dir", str(tmp_path), "--device", "cpu"]
    args += ["--width", "0.0625", "--n-train", "64", "--batch-size", "16", "--epochs", "500"]
    args += ["--n-samples", "16", "--n-pairs", "2", "--interp-steps", "4", "--eval-every", "500"]
    proc = start_cc_bench(args, tmp_path / "out.txt", new_session=True)
    run_dir = wait_for_checkpoint(proc, tmp_path).parent
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    out = (tmp_path / "out.txt").read_text()
    assert f"the same command resumes {run_dir.name} from its checkpoint at step" in out
    assert out.rstrip().endswith("cc-bench: terminated")
    assert run_state(run_dir) == UNFINISHED  # not failed, not locked: resumable


def test_sigterm_on_a_launch_stops_its_runs_too(tmp_path: Path) -> None:
    """SIGTERM to the launcher alone (`kill PID`, not the process group): its runs stop with
    it, resumable, instead of training on with nobody watching them."""
    runs = tmp_path / "runs"
    args = ["launch", "gen-smoke", "--runs-dir", str(runs), "--seeds", "1", "--workers", "2"]
    args += ["--set", "epochs=500", "--set", "eval_every=500", "--set", "device=cpu"]
    proc = start_cc_bench(args, tmp_path / "out.txt", new_session=True)
    wait_for_checkpoint(proc, runs)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    out = (tmp_path / "out.txt").read_text()
    assert "interrupted: the same command goes on" in out
    assert out.rstrip().endswith("cc-bench: terminated")
    folders = [p.parent for p in runs.glob("gen-smoke/*/*/config.json")]
    assert len(folders) == 2
    deadline = time.monotonic() + 60  # the jobs get SIGINT, then SIGKILL from submitit
    while any(run_state(f) == RUNNING for f in folders) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [run_state(f) for f in folders] == [UNFINISHED, UNFINISHED]


def test_the_runner_warms_up_vector_math_before_the_benchmark_computes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """MKL's first parallel vector-math call of a process could compute differently in the
    last bits (cc_bench.runtime.warm_up_vector_math): the runner makes one small call before
    the benchmark's own code, in every run, resumed ones too."""
    from cc_bench import runtime

    calls: list[str] = []
    real = runtime.warm_up_vector_math
    monkeypatch.setattr(runtime, "warm_up_vector_math", lambda: calls.append("warm-up") or real())

    def run(cfg: ClassificationConfig, tracker: Any) -> dict[str, Any]:
        calls.append("benchmark")
        return {"test_acc": 1.0}

    monkeypatch.setattr(classification, "run", run)
    cfg = ClassificationConfig(device="cpu")
    execute(BENCH, cfg, runs_dir=tmp_path, no_wandb=True, log=io.StringIO())
    assert calls == ["warm-up", "benchmark"]
