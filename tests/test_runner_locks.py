"""Two processes on one run folder: the run lock, read under it, never lets both train.

Threads stand in for processes: `flock` locks belong to an open file, so two threads that
each open `.lock` exclude each other as two processes do.
"""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from cc_bench import runner
from cc_bench.errors import UserError
from cc_bench.runner import execute, run_dir_for
from cc_bench.toy import classification
from cc_bench.toy.configs import ClassificationConfig

BENCH = "toy.classification"
CFG = ClassificationConfig(device="cpu")


@pytest.fixture
def slow_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The benchmark made a 0.4 s run of 4 logged steps; the list names who trained. A
    process waits for a run's lock until the other is done (not the 1 s it waits for real),
    so what it then finds does not hang on this machine's speed."""
    trained: list[str] = []
    monkeypatch.setattr(runner, "LOCK_WAIT_S", 60.0)

    def run(cfg: ClassificationConfig, tracker: Any) -> dict[str, Any]:
        trained.append(threading.current_thread().name)
        for step in range(1, 5):
            time.sleep(0.1)
            tracker.log({"test/acc": step / 4}, step)
        return {"test_acc": 1.0}

    monkeypatch.setattr(classification, "run", run)
    return trained


def _both(a: Any, b: Any, delay: float) -> dict[str, Any]:
    """Run `a`, then `b` `delay` seconds later, in two threads; their results or errors."""
    results: dict[str, Any] = {}

    def call(name: str, fn: Any, wait: float) -> None:
        time.sleep(wait)
        try:
            results[name] = fn()
        except UserError as exc:
            results[name] = exc

    threads = [
        threading.Thread(target=call, args=("A", a, 0.0), name="A"),
        threading.Thread(target=call, args=("B", b, delay), name="B"),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _execute(runs_dir: Path, **kwargs: Any) -> Any:
    return lambda: execute(
        BENCH, CFG, runs_dir=runs_dir, no_wandb=True, log=io.StringIO(), **kwargs
    )


def _steps(run_dir: Path) -> list[int]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["step"] for line in lines]


def test_a_run_finished_while_waiting_for_its_lock_is_skipped(
    tmp_path: Path, slow_runs: list[str]
) -> None:
    # A retries a failed run; B, started meanwhile, waits for the lock and then finds it
    # finished: it must not retry it again from its stale reading.
    run_dir = run_dir_for(tmp_path, "adhoc", BENCH, CFG)
    run_dir.mkdir(parents=True)
    (run_dir / "summary.json").write_text(json.dumps({"status": "failed", "error": "boom"}))
    results = _both(_execute(tmp_path), _execute(tmp_path), delay=0.2)
    assert results["A"].status == "finished"
    assert results["B"].status == "skipped"
    assert slow_runs == ["A"]
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "finished"
    assert _steps(run_dir) == [1, 2, 3, 4]


@pytest.mark.parametrize("gap", [0.0, 0.1])  # a pause between the move and the new lock
def test_fresh_locks_the_new_folder_before_letting_the_old_one_go(
    tmp_path: Path, slow_runs: list[str], monkeypatch: pytest.MonkeyPatch, gap: float
) -> None:
    # A moves an unfinished run aside (slowly); B, waiting on the old folder's lock, must not
    # then train in the new folder beside A. (Before the fix both trained, steps twice.)
    run_dir = run_dir_for(tmp_path, "adhoc", BENCH, CFG)
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text("{}")
    move = runner._move_aside

    def slow_move(path: Path, log: Any) -> None:
        time.sleep(0.4)
        move(path, log)
        time.sleep(gap)  # B, retrying, may make the new folder first: it then runs the run

    monkeypatch.setattr(runner, "_move_aside", slow_move)
    results = _both(_execute(tmp_path, fresh=True), _execute(tmp_path), delay=0.2)
    # One trains, the other then finds the run finished: A as a rule (it locks the new folder
    # before it lets the old go); B if it made the new folder in the instant between.
    assert len(slow_runs) == 1
    assert {results["A"].status, results["B"].status} == {"finished", "skipped"}
    assert results[slow_runs[0]].status == "finished"
    assert _steps(run_dir) == [1, 2, 3, 4]
    (aside,) = (run_dir.parent / runner.SUPERSEDED).iterdir()
    assert json.loads((aside / "config.json").read_text()) == {}


def test_a_run_path_that_cannot_be_a_folder_is_one_error_not_a_hang(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "LOCK_WAIT_S", 0.3)
    run_dir = run_dir_for(tmp_path, "adhoc", BENCH, CFG)
    run_dir.parent.mkdir(parents=True)
    run_dir.symlink_to(tmp_path / "nowhere")  # a dangling link where the folder should be
    start = time.monotonic()
    with pytest.raises(UserError, match="cannot make the run folder"):
        _execute(tmp_path)()
    assert time.monotonic() - start < 10


@pytest.mark.parametrize("fresh", [False, True])
def test_a_file_where_the_run_folder_goes_is_one_error_and_kept(
    tmp_path: Path, fresh: bool
) -> None:
    run_dir = run_dir_for(tmp_path, "adhoc", BENCH, CFG)
    run_dir.parent.mkdir(parents=True)
    run_dir.write_text("precious")
    with pytest.raises(UserError, match=r"is a file, not a folder: move it away"):
        _execute(tmp_path, fresh=fresh)()
    assert run_dir.read_text() == "precious"
