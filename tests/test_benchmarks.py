"""Every registered benchmark end to end through the command line, on its `smoke` budget."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import cc_bench, last_json, run_folder
from PIL import Image

from cc_bench.registry import list_benchmarks
from cc_bench.suites import get_suite
from cc_bench.toy.rendering import iou, square_centre

SMOKE = {entry.benchmark: entry for entry in get_suite("smoke").entries}
BENCHMARKS = {b.name: b for b in list_benchmarks()}


def as_args(values: dict) -> list[str]:
    args = []
    for key, value in values.items():
        args.append("--" + key.replace("_", "-"))
        args.extend(str(v) for v in (value if isinstance(value, tuple) else (value,)))
    return args


def _not_json(name: str) -> None:
    raise AssertionError(f"summary.json holds {name}, which is not standard JSON")


def test_every_benchmark_is_in_the_smoke_suite() -> None:
    assert set(BENCHMARKS) == set(SMOKE)


def test_every_benchmark_declares_its_metrics() -> None:
    for bench in BENCHMARKS.values():
        assert bench.headline and set(bench.headline) <= set(bench.metrics), bench.name
        assert set(bench.metrics.values()) <= {"higher", "lower", "neither"}, bench.name


@pytest.mark.parametrize("bench", sorted(BENCHMARKS))
@pytest.mark.parametrize("conv", ["conv", "coordconv"])
def test_benchmark_runs_end_to_end(bench: str, conv: str, runs_dir: Path) -> None:
    """The smoke entry's budget through the real command line: folder, summary, curves, media."""
    entry = SMOKE[bench]
    grid = {k: v[0] for k, v in entry.grid.items()}  # the first value of each swept field
    args = as_args({**grid, **dict(entry.fixed)})
    proc = cc_bench("run", bench, "--conv", conv, *args, "--runs-dir", str(runs_dir))
    assert proc.returncode == 0, proc.stderr
    folder = run_folder(proc.stdout)
    summary = json.loads((folder / "summary.json").read_text(), parse_constant=_not_json)
    assert summary["status"] == "finished"
    metrics = last_json(proc.stdout)
    assert metrics == summary["metrics"]
    declared = BENCHMARKS[bench].metrics
    assert set(BENCHMARKS[bench].headline) | {"wall_s"} <= set(metrics)
    # A headline may be undefined on a smoke budget (null: the GAN's teleport rule has no
    # valid frames to score); never NaN or infinite, and at least one is a number.
    headline = [metrics[k] for k in BENCHMARKS[bench].headline]
    assert all(v is None or np.isfinite(v) for v in headline), headline
    assert any(v is not None for v in headline), headline
    lines = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    assert lines and all(a["step"] <= b["step"] for a, b in zip(lines, lines[1:], strict=False))
    assert BENCHMARKS[bench].curve_x in lines[-1]
    # Declared keys only some configs report: a toy run that is never perfect, the VAE's
    # learned Gaussian sigma.
    assert set(declared) <= set(metrics) | {"time_to_perfect_s", "sigma"}
    pictures = list((folder / "media").glob("*.png"))
    assert pictures
    width, height = Image.open(pictures[0]).size
    assert width > 100 and height > 100


TOY_SCORES = {
    "toy.classification": {"train_acc", "test_acc"},
    "toy.rendering": {"train_iou", "test_iou"},
    "toy.regression": {"train_acc", "test_acc", "test_mse", "test_mean_abs_err_px"},
}


@pytest.mark.parametrize("bench", sorted(TOY_SCORES))
def test_toy_benchmark_logs_every_epoch_and_one_picture(bench: str, runs_dir: Path) -> None:
    args = as_args(dict(SMOKE[bench].fixed))
    proc = cc_bench("run", bench, "--split", "quadrant", *args, "--runs-dir", str(runs_dir))
    assert proc.returncode == 0, proc.stderr
    folder = run_folder(proc.stdout)
    metrics = last_json(proc.stdout)
    assert TOY_SCORES[bench] | {"params", "wall_s", "time_to_perfect_s"} <= set(metrics)
    assert all(np.isfinite(v) for k, v in metrics.items() if k != "time_to_perfect_s")
    lines = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == list(range(1, SMOKE[bench].fixed["epochs"] + 1))
    pictures = list((folder / "media").glob("*.png"))
    assert len(pictures) == 1
    width, height = Image.open(pictures[0]).size
    assert width > 300 and height > 300


def test_iou_against_a_hand_computed_case() -> None:
    # true: a 2x2 block at rows 0-1, cols 0-1 (4 px); predicted: rows 1-2, cols 0-2 (6 px).
    # intersection: row 1, cols 0-1 = 2 px; union: 4 + 6 - 2 = 8 px -> IoU 0.25.
    square = torch.zeros(1, 1, 64, 64)
    square[0, 0, 0:2, 0:2] = 1
    logits = torch.full((1, 1, 64, 64), -5.0)
    logits[0, 0, 1:3, 0:3] = 5.0
    assert iou(logits, square).tolist() == [0.25]
    assert iou(square * 10 - 5, square).tolist() == [1.0]


def test_square_centre_finds_every_centre() -> None:
    from cc_bench.envs.not_so_clevr import load_not_so_clevr

    data = load_not_so_clevr()
    assert torch.equal(square_centre(data.square), data.target)


def test_the_paper_suite_holds_every_domains_paper_budget() -> None:
    from cc_bench.suites import list_suites

    paper = get_suite("paper").entries
    for suite in list_suites():
        if suite.name == "image-folder-paper":  # needs the user's images: launched on its own
            assert not any(entry in paper for entry in suite.entries)
        elif suite.name.endswith("-paper") or suite.name.startswith("atari9"):
            assert all(entry in paper for entry in suite.entries), suite.name
    assert {e.benchmark for e in paper} >= {
        "gan.sort_of_clevr",
        "vae.sort_of_clevr",
        "detection.mnist_scatter",
        "rl.a2c",
        "rl.dqn",
    }
