"""The detector's speed benchmark (benchmarks/detection.py): its table, and bad arguments.

Speeds are not asserted (they are the script's output); the table must name the CPU, hold
both models, and its images/s and ratio must be those of the milliseconds it prints.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import printed_ratio_tolerance

from cc_bench.machine import cpu_name

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "detection.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300
    )


def test_table_names_the_cpu_and_its_figures_agree() -> None:
    proc = run("--batch-size", "2", "--repeats", "2", "--threads", "1")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith(f"{cpu_name()} (cpu, torch threads: 1), torch ")
    assert lines[0].endswith(", batch 2, 2 repeats")
    assert lines[2] == "| model | ms per step (median) | images/s | vs conv |"
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[4:]]
    assert [r[0] for r in rows] == ["conv", "coordconv"]
    conv_ms = float(rows[0][1])
    for _, ms, images, ratio in rows:
        assert float(images) == pytest.approx(2 / float(ms) * 1000, rel=0.01)
        tolerance = printed_ratio_tolerance(float(ms), conv_ms, step=0.1)  # ms to 0.1
        assert float(ratio) == pytest.approx(float(ms) / conv_ms, abs=tolerance)
    assert rows[0][3] == "1.000"


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--repeats", "0"], "--repeats: 0 must be >= 1"),
        (["--batch-size", "0"], "--batch-size: 0 must be >= 1"),
        (["--threads", "-1"], "--threads: -1 must be >= 0"),
        (["--repeats", "two"], "--repeats: 'two' is not an integer"),
        (["--device", "cuda"], "--device cuda: no CUDA device is available"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(args: list[str], fragment: str) -> None:
    if args == ["--device", "cuda"]:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    proc = run(*args)
    assert proc.returncode == 2
    assert fragment in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
