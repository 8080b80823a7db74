"""Reading run folders: their state, and finding them under a runs folder.

The run folders are the truth about runs, for `cc-bench status`, launching and reports alike:
a live run holds `.lock` (fcntl), a finished or failed one has `summary.json`, an unfinished
one only `config.json` (and perhaps `checkpoint.pt`). Old runs moved aside by `--fresh` lie in
hidden `.superseded/` folders and are never listed.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FINISHED, FAILED, RUNNING, UNFINISHED, NEW = "finished", "failed", "running", "unfinished", "new"


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object file's content (`config.json`, `summary.json`), or None if it is
    missing, unreadable, or holds something other than an object."""
    try:
        content = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return content if isinstance(content, dict) else None


def is_locked(run_dir: Path) -> bool:
    """Whether a live process holds the run's `.lock` (the runner does while the run runs).

    Opened for writing where allowed, since NFS emulates `flock` with write locks; a file
    system that cannot lock at all reads as "not running".
    """
    path = Path(run_dir) / ".lock"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    except OSError:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing drops the lock if we got it
    return False


def run_state(run_dir: Path) -> str:
    """`running` (locked), `finished` or `failed` (summary.json), `unfinished`, or `new`."""
    if is_locked(run_dir):
        return RUNNING  # checked first: a failed run being retried still has its old summary
    summary = read_json(Path(run_dir) / "summary.json")
    if isinstance(summary, dict) and summary.get("status") in (FINISHED, FAILED):
        return summary["status"]
    return UNFINISHED if (Path(run_dir) / "config.json").exists() else NEW


def run_folders(root: Path) -> Iterator[Path]:
    """Every run folder (one holding `config.json`) under `root`, skipping hidden folders."""
    for here, dirs, files in os.walk(root):
        if "config.json" in files:
            dirs.clear()  # a run's own subfolders (media/, wandb/) hold no runs
            yield Path(here)
        else:
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))


def run_meta(run_dir: Path) -> dict[str, Any] | None:
    """A run folder's `config.json`, or None if it is unreadable or not a cc-bench run's."""
    meta = read_json(Path(run_dir) / "config.json")
    if meta is None or "benchmark" not in meta or not isinstance(meta.get("config"), dict):
        return None
    return meta


def left_out_note(folders: list[Path]) -> str:
    """One line naming run folders left out for an unreadable `config.json` (a few of them)."""
    named = ", ".join(str(d) for d in folders[:3]) + (", ..." if len(folders) > 3 else "")
    n = len(folders)
    return (
        f"warning: {n} run folder{'s' if n > 1 else ''} left out: config.json unreadable or "
        f"not a cc-bench run's ({named})"
    )


def last_logged_step(run_dir: Path) -> int | None:
    """The step of the last line of `metrics.jsonl`, if any."""
    try:
        lines = (Path(run_dir) / "metrics.jsonl").read_text().split("\n")
        last = next(line for line in reversed(lines) if line.strip())
        return int(json.loads(last)["step"])
    except (OSError, StopIteration, ValueError, KeyError):
        return None
