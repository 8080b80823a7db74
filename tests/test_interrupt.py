"""Ctrl-C in a run: the run stays resumable, and the message says what the same command does."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from cc_bench.cli import main
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
