"""Shared helpers: run the real `cc-bench` command in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# The smallest real run of toy.classification: a few examples, tiny widths.
TINY = ["--epochs", "2", "--max-train-examples", "32", "--widths", "4", "4"]


def cc_bench(*args: str, env: dict[str, str] | None = None, timeout: float = 300):
    """Run `python -m cc_bench ARGS` and return the completed process (text mode)."""
    # CoordConv2d's strategy is fixed (no timing) so that a resumed run and its uninterrupted
    # reference compute bit for bit alike on a busy machine; tests/test_layers.py covers timing.
    full_env = {
        **os.environ,
        "WANDB_MODE": "disabled",
        "WANDB_SILENT": "true",
        "CC_BENCH_COORDCONV_AUTOTUNE": "0",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "cc_bench", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )


def last_json(stdout: str) -> dict:
    """The JSON object on the last line of standard output."""
    return json.loads(stdout.strip().splitlines()[-1])


def run_folder(stdout: str) -> Path:
    """The run folder the command printed."""
    line = next(x for x in stdout.splitlines() if x.startswith("run folder: "))
    return Path(line.removeprefix("run folder: "))


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"
