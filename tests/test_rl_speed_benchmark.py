"""The A2C speed benchmark (benchmarks/rl.py) runs and prints a consistent table.

Speeds are not asserted (they are the script's output); the ratios must be those of the
speeds it prints, the shares of time must add up, and bad input is one line and exit code 2.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import printed_ratio_tolerance

from cc_bench.rl.configs import A2CConfig

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "rl.py"
TINY = ["--env-id", "ALE/Breakout-v5", "--n-envs", "2", "--repeats", "1", "--chunk", "80"]
TINY += ["--device", "cpu"]  # the header's device, on a CUDA machine too


def test_table_has_every_extractor_and_consistent_ratios() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *TINY, "--threads", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("A2C on ALE/Breakout-v5, 2 envs, cpu")
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[4:]]
    assert [r[0] for r in rows] == ["conv", "coordconv-first", "coordconv-all"]
    conv = float(rows[0][2])
    for name, vec, frames, steps, ratio, _, envs, update, rest in rows:
        assert vec == "dummy"
        assert float(steps) == pytest.approx(float(frames) / 4, abs=1)
        tolerance = printed_ratio_tolerance(float(frames), conv, step=1)  # frames/s to 1
        assert float(ratio) == pytest.approx(float(frames) / conv, abs=tolerance)
        shares = [float(x.rstrip("%")) for x in (envs, update, rest)]
        assert sum(shares) == pytest.approx(100, abs=2) and min(shares) >= 0, name


def test_a_bad_vec_env_is_one_line() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--vec-env", "threads"], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "--vec-env takes dummy, subproc" in proc.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--env-id", "Pong"], "unknown Atari game env_id='Pong'; close names: ALE/Pong-v5"),
        (["--repeats", "0"], "--repeats must be >= 1, not 0"),
        (["--chunk", "-8"], "--chunk must be >= 1, not -8"),
        (["--chunk", "2"], "--chunk must be >= 4 (one agent step), not 2"),
        (["--n-envs", "0"], "invalid n_envs=0: must be >= 1"),
        (["--device", "cuda:0"], "CUDA is not available here"),
    ],
)
def test_bad_input_exits_2_before_anything_runs(args: list[str], expected: str) -> None:
    if args[0] == "--device" and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and not proc.stdout
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("rl.py: error: ") and expected in last, proc.stderr


def test_the_rate_counts_the_frames_sb3_trained_not_those_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = importlib.util.spec_from_file_location("rl_speed", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "rl_speed", bench)  # for its dataclasses
    spec.loader.exec_module(bench)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    cfg = A2CConfig(env_id="ALE/Breakout-v5", n_envs=2, vec_env="dummy", seed=0)
    variant = bench.build("conv", cfg, torch.device("cpu"))
    try:
        # 2 envs x 5 steps x 4 frames = 40 frames a rollout: 100 asked for is 3 rollouts
        variant.run(100)
    finally:
        variant.env.close()
        torch.set_num_threads(before)
    assert variant.frames == 120 and variant.model.num_timesteps == 30
    assert variant.rates[0] * variant.total_s == pytest.approx(120)
