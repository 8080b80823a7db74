"""The layer speed benchmark (benchmarks/layers.py) runs and prints a consistent table.

Times are not asserted (speed is the script's output, not a test's); the ratios it
prints must be the ratios of the times it prints, and its bad input one line.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from cc_bench.layers import STRATEGIES

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "layers.py"


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    "options",
    [[], ["--channels-last", "--clock", "cpu", "--threads", "1"], ["--no-autotune"]],
    ids=["contiguous", "channels-last-cpu-clock", "fixed-rule"],
)
def test_table_ratios_match_times(options: list[str]) -> None:
    args = ["--device", "cpu", "--repeats", "2", "--shapes", "atari,toy-1x1", *options]
    proc = run_script(*args)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("cpu: ") and "family" in lines[0]
    assert ("channels last" in lines[0]) == ("--channels-last" in options)
    assert lines[0].endswith("CPU time") == ("cpu" in options)
    header = [c.strip() for c in lines[1].strip("|").split("|")]
    assert header == [
        "shape",
        "conv ms",
        "naive ms",
        "coordconv ms",
        "conv-sumbias ms",
        "coordconv/conv",
        "naive/coordconv",
        "coordconv/conv-sumbias",
        "strategy",
    ]
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[3:5]]
    assert [r[0].split()[0] for r in rows] == ["toy-1x1", "atari"]
    fixed = "--no-autotune" in options
    assert all(r[-1] == "fixed rule" if fixed else r[-1] in STRATEGIES for r in rows)
    ratios: dict[str, list[float]] = {h: [] for h in header[5:-1]}
    for row in rows:
        t = dict(zip(header[1:-1], map(float, row[1:-1]), strict=True))
        assert all(v > 0 for v in t.values())
        for name in ratios:
            top, bottom = name.split("/")
            expected = t[f"{top} ms"] / t[f"{bottom} ms"]
            assert math.isclose(t[name], expected, rel_tol=0.01, abs_tol=2e-3)
            ratios[name].append(t[name])
    means = dict(
        part.split(" = ") for part in lines[5].removeprefix("geometric mean: ").split(", ")
    )
    assert set(means) == set(ratios)
    for name, xs in ratios.items():
        assert math.isclose(float(means[name]), math.sqrt(xs[0] * xs[1]), abs_tol=2e-3)


def test_unknown_shape_is_rejected() -> None:
    proc = run_script("--shapes", "toy,nope")
    assert proc.returncode == 2
    assert "--shapes: unknown nope; choose from atari, clevr, mid, toy, toy-1x1" in proc.stderr
    assert "Traceback" not in proc.stderr
