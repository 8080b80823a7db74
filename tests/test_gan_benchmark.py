"""The GAN speed benchmark (benchmarks/gan.py) runs and prints one consistent row per pair.

Times are not asserted (speed is the script's output, not a test's); the images/s it prints
must be the batch over the ms/step it prints, and the parameter counts the networks'.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import cc_bench.gan.training
from cc_bench.nets import build_discriminator, build_generator, count_params

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gan.py"


def test_table_has_every_pair_and_consistent_rates(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CC_BENCH_CACHE", str(tmp_path))
    args = ["--width", "0.0625", "--batch-size", "4", "--steps", "1", "--repeats", "1"]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--threads", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("device: ") and "width 0.0625, batch 4" in lines[0]
    rows = [[c.strip() for c in x.strip("|").split("|")] for x in lines if x.startswith("| ")]
    assert rows[0] == ["G", "D", "params G", "params D", "images/s", "ms/step"]
    pairs = {(r[0], r[1]): r for r in rows[2:]}
    assert set(pairs) == {(g, d) for g in ("conv", "coordconv") for d in ("conv", "coordconv")}
    for (g, d), row in pairs.items():
        assert int(row[2].replace(",", "")) == count_params(build_generator(g, width=0.0625))
        assert int(row[3].replace(",", "")) == count_params(build_discriminator(d, width=0.0625))
        rate, ms = float(row[4].replace(",", "")), float(row[5])
        assert rate == pytest.approx(4 / (ms / 1000), rel=0.05, abs=1)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--repeats", "0"),
        ("--steps", "-1"),
        ("--batch-size", "0"),
        ("--width", "0"),
        ("--threads", "x"),
        ("--device", "foo"),
        pytest.param(
            "--device",
            "cuda",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is here"),
        ),
    ],
)
def test_bad_values_are_one_line_and_exit_2(option: str, value: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), option, value],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert option in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""  # nothing ran


@pytest.mark.parametrize(
    ("flags", "fmt"),
    [([], torch.channels_last), (["--no-channels-last"], torch.contiguous_format)],
    ids=["channels-last", "contiguous"],
)
def test_the_timed_batch_is_in_the_networks_memory_format(
    flags: list[str], fmt: torch.memory_format, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("CC_BENCH_CACHE", str(tmp_path))
    args = ["--width", "0.0625", "--batch-size", "2", "--steps", "1", "--repeats", "1"]
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *args, "--threads", "1", *flags])
    seen = []
    train_step = cc_bench.gan.training.train_step

    def recording(g, d, opt_g, opt_d, real, z):
        seen.append(real.is_contiguous(memory_format=fmt))
        return train_step(g, d, opt_g, opt_d, real, z)

    monkeypatch.setattr(cc_bench.gan.training, "train_step", recording)
    spec = importlib.util.spec_from_file_location("gan_benchmark", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.main()
    assert seen == [True] * 8  # 4 pairs, a warm-up and a timed repeat each
