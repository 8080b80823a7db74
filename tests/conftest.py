"""Shared helpers: run the real `cc-bench` command in a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

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


def start_cc_bench(
    args: list[str],
    output: Path | None = None,
    env: dict[str, str] | None = None,
    new_session: bool = False,
) -> subprocess.Popen:
    """Start `python -m cc_bench ARGS` without waiting: its standard output and error into
    the file `output` (none kept without it); `new_session`: in its own process group, as a
    shell job is, so a signal to it reaches it alone."""
    with output.open("w") if output is not None else contextlib.nullcontext() as sink:
        return subprocess.Popen(  # the child keeps its own copy of the file
            [sys.executable, "-m", "cc_bench", *args],
            stdout=subprocess.DEVNULL if sink is None else sink,
            stderr=subprocess.DEVNULL if sink is None else subprocess.STDOUT,
            env=cli_env(env),
            start_new_session=new_session,
        )


def wait_for_checkpoint(
    proc: subprocess.Popen, root: Path, pattern: str = "**/checkpoint.pt", timeout_s: float = 240
) -> Path:
    """The first checkpoint matching `pattern` under `root`, once one appears while `proc`
    still runs; fails if `proc` ends first or none appears within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not (found := list(root.glob(pattern))):
        assert proc.poll() is None, "the command ended before a checkpoint"
        assert time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.02)
    return found[0]


def kill_after_checkpoint(
    args: list[str], runs: Path, benchmark: str, env: dict[str, str] | None = None
) -> Path:
    """Start `cc-bench ARGS`, SIGKILL it once its run has a checkpoint; the checkpoint.

    Fails if no checkpoint appears within 240 s or the run finished before the kill.
    """
    proc = start_cc_bench(args, env=env)
    try:
        checkpoint = wait_for_checkpoint(proc, runs, f"adhoc/{benchmark}/*/checkpoint.pt")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not (checkpoint.parent / "summary.json").exists(), "the run ended before the kill"
    return checkpoint


class Killed(Exception):
    """What `killed_inside_an_epoch` raises right after its last checkpoint: a kill, in process."""


class KilledRun(NamedTuple):
    """What `killed_inside_an_epoch` returns."""

    reference: dict[str, Any]  # the uninterrupted run's summary
    resumed: dict[str, Any]  # the killed-and-resumed run's
    saved: list[tuple[int, int, int]]  # (step, epoch, batch) of each checkpoint before the kill
    reference_dir: Path
    killed_dir: Path


def killed_inside_an_epoch(run: Any, cfg: Any, tmp_path: Path, after: int) -> KilledRun:
    """`run(cfg, tracker)` uninterrupted in tmp_path/reference; then in tmp_path/killed with
    a checkpoint after every batch, killed (in process) right after its `after`-th one, and
    resumed there to the end from that checkpoint."""
    from cc_bench.tracking import Tracker

    reference_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
    reference_dir.mkdir()
    killed_dir.mkdir()
    tracker = Tracker(reference_dir, checkpoint_interval_s=1e9)
    reference = run(cfg, tracker)
    tracker.close()

    tracker = Tracker(killed_dir, checkpoint_interval_s=0.0)
    save, saved = tracker.save_checkpoint, []

    def save_then_die(state: dict, step: int) -> None:
        save(state, step)
        saved.append((step, state["epoch"], state["batch"]))
        if len(saved) == after:
            raise Killed

    tracker.save_checkpoint = save_then_die  # type: ignore[method-assign]
    with pytest.raises(Killed):
        run(cfg, tracker)
    tracker.close()

    tracker = Tracker(killed_dir, checkpoint_interval_s=0.0)
    assert tracker.restore() == saved[-1][0]
    resumed = run(cfg, tracker)
    tracker.close()
    return KilledRun(reference, resumed, saved, reference_dir, killed_dir)


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
