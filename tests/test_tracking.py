"""The Tracker: local files, checkpoints, and the real W&B client in offline mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, cc_bench, cli_env, run_folder
from wandb.proto import wandb_internal_pb2

from cc_bench.errors import NonFiniteLossError
from cc_bench.tracking import Tracker, wandb_mode


def read_wandb_records(path: Path, timeout_s: float = 30.0) -> list[wandb_internal_pb2.Record]:
    """The records of a finished run's `.wandb` transaction log, once W&B has written them all.

    `run.finish()` returns before W&B's service process has flushed the file (seen in CI:
    the history records landed a few milliseconds after the test read it), so this reads it
    until it ends with the run's `exit` record, for at most `timeout_s`.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        records = _decode_wandb_log(path.read_bytes())
        if (records and records[-1].WhichOneof("record_type") == "exit") or (
            time.monotonic() > deadline
        ):
            return records
        time.sleep(0.05)


def _decode_wandb_log(data: bytes) -> list[wandb_internal_pb2.Record]:
    """Decode a `.wandb` transaction log: a 7-byte header, then LevelDB-style log records."""
    assert data[:4] == b":W&B"
    block, pos, buf, records = 32768, 7, b"", []
    while pos + 7 <= len(data):
        left = block - pos % block
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        if left < 7 or (length == 0 and kind == 0):  # block trailer or padding
            pos += left
            continue
        if pos + 7 + length > len(data):  # a record W&B is still writing
            break
        buf += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(buf)
            records.append(record)
            buf = b""
    return records


def test_offline_wandb_run_holds_config_and_metrics(runs_dir: Path) -> None:
    proc = cc_bench(
        "run",
        "toy.classification",
        *TINY,
        "--runs-dir",
        str(runs_dir),
        "--wandb-project",
        "cc-bench-tests",
        env={"WANDB_MODE": "offline"},
    )
    assert proc.returncode == 0, proc.stderr
    folder = run_folder(proc.stdout)
    config = json.loads((folder / "config.json").read_text())
    files = list((folder / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1
    records = read_wandb_records(files[0])
    runs = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert runs[0].run_id == config["wandb_id"]
    assert runs[0].project == "cc-bench-tests"
    assert runs[0].run_group.startswith("toy.classification-")
    assert runs[0].display_name == "toy.classification-coordconv-seed0"
    assert {"toy.classification", "coordconv", "adhoc"} <= set(runs[0].tags)
    wandb_config = {item.key: json.loads(item.value_json) for item in runs[0].config.update}
    assert wandb_config["epochs"] == 2 and wandb_config["benchmark"] == "toy.classification"
    assert wandb_config["run_id"] == folder.name
    history = [
        {
            item.key or "/".join(item.nested_key): json.loads(item.value_json)
            for item in r.history.item
        }
        for r in records
        if r.WhichOneof("record_type") == "history"
    ]
    logged = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history if "test/acc" in h] == [1, 2]
    for ours, theirs in zip(logged, [h for h in history if "test/acc" in h], strict=True):
        assert theirs["test/acc"] == pytest.approx(ours["test/acc"])
    # the summary: the final metrics, named as such (the report reads back only those)
    summary = {
        item.key or "/".join(item.nested_key): json.loads(item.value_json)
        for r in records
        if r.WhichOneof("record_type") == "summary"
        for item in r.summary.update
    }
    final = json.loads((folder / "summary.json").read_text())["metrics"]
    assert summary["final_metrics"] == sorted(final) and summary["status"] == "finished"
    assert all(summary[k] == pytest.approx(v) for k, v in final.items() if v is not None)


def test_wandb_that_fails_to_start_warns_once_and_the_run_goes_on(tmp_path, capsys) -> None:
    tracker = Tracker(tmp_path, wandb_mode="offline", wandb_init={"id": "bad/id"})
    tracker.log({"train/loss": 1.0}, step=1)
    tracker.finish({"status": "finished", "metrics": {"x": 1}})
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: W&B failed to start")
    assert json.loads((tmp_path / "summary.json").read_text())["metrics"] == {"x": 1}
    assert json.loads((tmp_path / "metrics.jsonl").read_text())["train/loss"] == 1.0


def test_wandb_logged_in_but_unreachable_records_offline(runs_dir: Path) -> None:
    # A compute node without internet: the online start times out (shortened here), the run
    # keeps an offline W&B record to sync later.
    env = cli_env(
        {
            "WANDB_API_KEY": "local-" + "0" * 40,  # logged in: online by default
            "WANDB_BASE_URL": "http://127.0.0.1:9",  # port 9 refuses at once
            "WANDB_INIT_TIMEOUT": "3",
        }
    )
    del env["WANDB_MODE"]
    proc = subprocess.run(
        [sys.executable, "-m", "cc_bench", "run", "toy.classification", *TINY]
        + ["--runs-dir", str(runs_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "W&B failed to start online" in proc.stderr and "recording offline" in proc.stderr
    folder = run_folder(proc.stdout)
    files = list((folder / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1
    history = [r for r in read_wandb_records(files[0]) if r.WhichOneof("record_type") == "history"]
    assert len(history) >= 2  # the epochs' metrics are in it


def test_wandb_that_fails_to_log_warns_once_and_the_run_goes_on(tmp_path, capsys) -> None:
    tracker = Tracker(
        tmp_path, wandb_mode="offline", wandb_init={"project": "cc-bench-tests", "id": "t-log"}
    )
    assert tracker.wandb_run is not None
    tracker.wandb_run.finish()  # from now on W&B refuses every log call
    for step in (1, 2, 3):
        tracker.log({"train/loss": float(step)}, step=step)
    tracker.finish({"status": "finished", "metrics": {}})
    warnings = [x for x in capsys.readouterr().err.splitlines() if x.startswith("warning: W&B")]
    assert len(warnings) == 1 and "failed to log" in warnings[0]
    steps = [json.loads(x)["step"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]


def test_a_resumed_attempt_sends_wandb_only_the_steps_after_the_interrupted_one(
    tmp_path: Path,
) -> None:
    first = Tracker(tmp_path)  # killed after logging step 5, its checkpoint at step 2
    for step in range(1, 6):
        first.log({"train/loss": float(step)}, step=step)
        if step == 2:
            first.save_checkpoint({"epoch": 2}, step=2)
    first.close()
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write('{"step": 6, "train/lo')  # the line the kill cut
    second = Tracker(tmp_path)  # resumed, killed again after logging step 3
    assert second.restore() == 2
    second.log({"train/loss": 3.0}, step=3)
    second.close()

    again = Tracker(
        tmp_path, wandb_mode="offline", wandb_init={"project": "cc-bench-tests", "id": "t-res"}
    )
    assert again.restore() == 2
    for step in range(3, 9):
        again.log({"train/loss": float(step)}, step=step)
        if step in (4, 5, 7):
            again.log_image("samples", np.zeros((4, 4, 3), np.uint8), step=step)
    again.finish({"status": "finished", "metrics": {}})

    local = [json.loads(x)["step"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert local == list(range(1, 9))  # every step once, the cut line gone
    (file,) = tmp_path.glob("wandb/offline-run-*/run-*.wandb")
    history = [
        {item.key or "/".join(item.nested_key): item.value_json for item in r.history.item}
        for r in read_wandb_records(file)
        if r.WhichOneof("record_type") == "history"
    ]
    # W&B already holds steps 1-5 from the first attempt: its curve goes on from 6.
    assert [int(h["step"]) for h in history if "train/loss" in h] == [6, 7, 8]
    # Pictures at its last step go again (a kill may have come before them), earlier not.
    assert [int(h["step"]) for h in history if "samples/_type" in h] == [5, 7]
    assert (tmp_path / "media" / "samples_4.png").exists()


@pytest.mark.parametrize(
    ("env", "no_wandb", "expected"),
    [
        ({"WANDB_MODE": "disabled"}, False, "disabled"),
        ({"WANDB_MODE": "offline", "WANDB_API_KEY": "x" * 40}, False, "offline"),
        ({"WANDB_API_KEY": "x" * 40}, False, "online"),
        ({"WANDB_API_KEY": "x" * 40}, True, "disabled"),
        ({}, False, "offline"),
    ],
)
def test_wandb_mode(monkeypatch, tmp_path, env, no_wandb, expected) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    for key in ("WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert wandb_mode(no_wandb) == expected


def test_logged_in_through_netrc_means_online(monkeypatch, tmp_path) -> None:
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password " + "k" * 40 + "\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert wandb_mode() == "online"


def test_checkpoint_round_trip_and_restore_drops_later_metrics(tmp_path) -> None:
    tracker = Tracker(tmp_path)
    for step in (1, 2, 3):
        tracker.log({"test/acc": step / 10}, step=step)
        if step == 2:
            tracker.save_checkpoint({"w": torch.arange(3.0), "epoch": 2}, step=2)
    tracker.close()
    assert not list(tmp_path.glob(".*.tmp"))

    again = Tracker(tmp_path)
    assert again.restore() == 2
    assert again.resume_step == 2 and again.resume_state["epoch"] == 2
    assert torch.equal(again.resume_state["w"], torch.arange(3.0))
    assert again.elapsed_s > 0
    steps = [json.loads(x)["step"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2]


def test_a_kill_while_restore_trims_the_history_keeps_it(tmp_path, monkeypatch) -> None:
    tracker = Tracker(tmp_path)
    for step in (1, 2, 3):
        tracker.log({"test/acc": step / 10}, step=step)
    tracker.save_checkpoint({"epoch": 2}, step=2)
    tracker.close()
    before = (tmp_path / "metrics.jsonl").read_text()

    replace = os.replace

    def killed(src: Path, dst: Path) -> None:  # the kill lands after the trimmed copy is written
        if Path(dst).name == "metrics.jsonl":
            raise KeyboardInterrupt
        replace(src, dst)

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        Tracker(tmp_path).restore()
    assert (tmp_path / "metrics.jsonl").read_text() == before  # not emptied, not cut
    monkeypatch.undo()
    assert Tracker(tmp_path).restore() == 2
    steps = [json.loads(x)["step"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2]


def test_restore_without_checkpoint_starts_clean(tmp_path) -> None:
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 1, "train/loss": 2.0}) + "\n")
    tracker = Tracker(tmp_path)
    assert tracker.restore() is None and tracker.resume_state is None
    assert (tmp_path / "metrics.jsonl").read_text() == ""


def test_nan_loss_raises_with_name_and_step_after_recording_it(tmp_path) -> None:
    tracker = Tracker(tmp_path)
    tracker.log({"train/loss": 0.5, "test/acc": float("nan")}, step=1)  # a NaN accuracy is fine
    with pytest.raises(NonFiniteLossError, match=r"train/loss became nan at step 7"):
        tracker.log({"train/loss": float("nan")}, step=7)
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 2


def test_checkpoint_due_after_interval(tmp_path) -> None:
    tracker = Tracker(tmp_path, checkpoint_interval_s=0.0)
    assert tracker.checkpoint_due()
    assert not Tracker(tmp_path, checkpoint_interval_s=60.0).checkpoint_due()


def test_log_image_writes_a_png(tmp_path) -> None:
    from PIL import Image

    tracker = Tracker(tmp_path)
    image = (np.arange(12 * 16 * 3) % 255).astype(np.uint8).reshape(12, 16, 3)
    path = tracker.log_image("test/predictions", image, step=5)
    assert path == tmp_path / "media" / "test_predictions_5.png"
    assert np.array_equal(np.asarray(Image.open(path)), image)


def test_start_clock_counts_from_now_and_keeps_earlier_attempts(tmp_path):
    import time

    (tmp_path / "run").mkdir()
    tracker = Tracker(tmp_path / "run")
    time.sleep(0.3)
    assert tracker.elapsed_s >= 0.3
    tracker.start_clock()
    assert tracker.elapsed_s < 0.2
    tracker.save_checkpoint({"x": 1}, step=1)
    tracker.close()
    again = Tracker(tmp_path / "run")
    assert again.restore() == 1
    before = again.elapsed_s
    time.sleep(0.3)
    again.start_clock()  # a resumed attempt: the first attempt's time stays counted
    assert before - 0.05 < again.elapsed_s < before + 0.2
    again.close()


def test_a_checkpoint_keeps_the_coordconv_strategies_for_the_resume(tmp_path) -> None:
    """A resumed run computes with the strategies the interrupted attempt timed."""
    from cc_bench.layer_tuning import (
        autotune_choices,
        autotune_enabled,
        clear_autotune_cache,
        set_autotune,
    )
    from cc_bench.layers import CoordConv2d

    was = autotune_enabled()
    set_autotune(True)
    try:
        clear_autotune_cache()
        layer = CoordConv2d(3, 4, kernel_size=3, padding=1)
        layer(torch.randn(2, 3, 8, 8)).sum().backward()  # a training step: timed once
        timed = {k: c.strategy for k, c in autotune_choices().items()}
        assert timed
        tracker = Tracker(tmp_path)
        tracker.save_checkpoint({"epoch": 1}, step=1)
        tracker.close()
        clear_autotune_cache()  # as in a new process

        Tracker(tmp_path).restore()
        assert {k: c.strategy for k, c in autotune_choices().items()} == timed
    finally:
        set_autotune(was)
        clear_autotune_cache()


def test_an_animation_goes_to_wandb_as_a_video(tmp_path, monkeypatch) -> None:
    from PIL import Image

    monkeypatch.setenv("WANDB_SILENT", "true")
    tracker = Tracker(tmp_path, wandb_mode="offline", wandb_init={"project": "cc-bench-tests"})
    tracker.media_dir.mkdir()
    gif = tracker.media_dir / "game_5.gif"
    frames = [Image.fromarray(np.full((8, 8, 3), v, np.uint8)) for v in (0, 128, 255)]
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert tracker.log_animation("eval/game", gif, step=5) == gif
    tracker.finish({"status": "finished", "metrics": {}})
    # W&B copies a logged video into its run's media folder at log time, under the key
    (copied,) = tmp_path.glob("wandb/offline-run-*/files/media/videos/eval/game_*.gif")
    assert copied.read_bytes() == gif.read_bytes()
