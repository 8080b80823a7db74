"""Shared helpers: run the real `cc-bench` command in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

# The smallest real run of toy.classification: a few examples, tiny widths.
TINY = ["--epochs", "2", "--max-train-examples", "32", "--widths", "4", "4"]


def cli_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the tests run `cc-bench` in: W&B off, and CoordConv2d's strategy fixed
    (no timing) so that a resumed run and its uninterrupted reference compute bit for bit
    alike on a busy machine; tests/test_layers.py covers the timing."""
    return {
        # SB3_LOGDIR (below) is the tests' own: `cc-bench` must leave no SB3 folder without it
        **{k: v for k, v in os.environ.items() if k != "SB3_LOGDIR"},
        "WANDB_MODE": "disabled",
        "WANDB_SILENT": "true",
        "CC_BENCH_COORDCONV_AUTOTUNE": "0",
        **(env or {}),
    }


def cc_bench(*args: str, env: dict[str, str] | None = None, timeout: float = 300):
    """Run `python -m cc_bench ARGS` and return the completed process (text mode)."""
    return subprocess.run(
        [sys.executable, "-m", "cc_bench", *args],
        capture_output=True,
        text=True,
        env=cli_env(env),
        timeout=timeout,
    )


def kill_after_checkpoint(
    args: list[str], runs: Path, benchmark: str, env: dict[str, str] | None = None
) -> Path:
    """Start `cc-bench ARGS`, SIGKILL it once its run has a checkpoint; the checkpoint.

    Fails if no checkpoint appears within 240 s or the run finished before the kill.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "cc_bench", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=cli_env(env),
    )
    checkpoint = None
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        found = list(runs.glob(f"adhoc/{benchmark}/*/checkpoint.pt"))
        if found:
            checkpoint = found[0]
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert checkpoint is not None, "no checkpoint appeared"
    assert not (checkpoint.parent / "summary.json").exists(), "the run ended before the kill"
    return checkpoint


class Killed(Exception):
    """What `dying_tracker` raises right after its last checkpoint: a kill, in process."""


def dying_tracker(run_dir: Path, after: int) -> tuple[Any, list[tuple[int, int, int]]]:
    """A Tracker that checkpoints after every batch and raises `Killed` right after its
    `after`-th checkpoint, and the (step, epoch, batch) of each checkpoint it saved."""
    from cc_bench.tracking import Tracker

    tracker = Tracker(run_dir, checkpoint_interval_s=0.0)
    save, saved = tracker.save_checkpoint, []

    def save_then_die(state: dict, step: int) -> None:
        save(state, step)
        saved.append((step, state["epoch"], state["batch"]))
        if len(saved) == after:
            raise Killed

    tracker.save_checkpoint = save_then_die  # type: ignore[method-assign]
    return tracker, saved


def printed_ratio_tolerance(a: float, b: float, step: float) -> float:
    """How far a ratio printed to 0.001 from unrounded values may lie from ``a / b``
    rebuilt from ``a`` and ``b`` as printed to ``step`` (each off by at most ``step / 2``)."""
    half = step / 2
    return (a / b * (half / a + half / b) + 0.0005) * 1.01


def last_json(stdout: str) -> dict:
    """The JSON object on the last line of standard output."""
    return json.loads(stdout.strip().splitlines()[-1])


def run_folder(stdout: str) -> Path:
    """The run folder the command printed."""
    line = next(x for x in stdout.splitlines() if x.startswith("run folder: "))
    return Path(line.removeprefix("run folder: "))


@pytest.fixture(autouse=True, scope="session")
def _sb3_logs_in_pytest_s_temporary_folder(tmp_path_factory: pytest.TempPathFactory):
    """SB3's default logger makes a folder at every `learn` in the system's temporary
    directory: the agents the tests train directly keep theirs in pytest's."""
    before = os.environ.get("SB3_LOGDIR")
    os.environ["SB3_LOGDIR"] = str(tmp_path_factory.mktemp("sb3"))
    yield
    if before is None:
        os.environ.pop("SB3_LOGDIR", None)
    else:
        os.environ["SB3_LOGDIR"] = before


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"
