"""gan.image_folder through the command line: trained end to end on a folder the test writes,
resumed after a kill, and every bad folder one line and exit code 2."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import cc_bench, kill_after_checkpoint, last_json, run_folder
from PIL import Image

from cc_bench.registry import get_benchmark

BENCH = "gan.image_folder"
TINY = [
    "--width", "0.0625", "--n-train", "48", "--epochs", "2", "--batch-size", "16",
    "--n-samples", "16", "--n-pairs", "2", "--interp-steps", "4", "--diversity-images", "16",
]  # fmt: skip


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 pictures of a coloured rectangle on a background, of several sizes, in two classes."""
    root = tmp_path_factory.mktemp("pictures")
    rng = np.random.default_rng(0)
    for k in range(48):
        h, w = rng.integers(60, 120, size=2)
        image = np.empty((h, w, 3), dtype=np.uint8)
        image[:] = rng.integers(0, 256, size=3)
        top, left = rng.integers(0, h // 2), rng.integers(0, w // 2)
        image[top : top + h // 3, left : left + w // 3] = rng.integers(0, 256, size=3)
        path = root / ("indoor" if k % 2 else "outdoor") / f"{k:03d}.{'png' if k % 3 else 'jpg'}"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(image).save(path)
    return root


@pytest.mark.parametrize("conv", ["conv", "coordconv"])
def test_trains_end_to_end_on_a_folder(folder: Path, conv: str, runs_dir: Path) -> None:
    proc = cc_bench(
        "run", BENCH, "--conv", conv, "--data-dir", str(folder), *TINY, "--runs-dir", str(runs_dir)
    )
    assert proc.returncode == 0, proc.stderr
    metrics = last_json(proc.stdout)
    assert set(get_benchmark(BENCH).metrics) <= set(metrics)
    assert metrics["interp_max_step"] >= metrics["interp_mean_step"] > 0
    assert metrics["data_pairwise_dist"] > 0
    run = run_folder(proc.stdout)
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("test/diversity_ratio" in x for x in lines)
    media = {p.name.rsplit("_", 1)[0] for p in (run / "media").glob("*.png")}
    assert {"data_grid", "samples_grid", "samples_interpolations"} <= media
    assert list((run / "media").glob("*.gif"))


def test_a_killed_run_resumes_and_ends_as_if_never_stopped(folder: Path, tmp_path: Path) -> None:
    args = ["run", BENCH, "--conv", "conv", "--data-dir", str(folder), *TINY, "--epochs", "4"]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    reference = cc_bench(*args, "--runs-dir", str(tmp_path / "reference"))
    assert reference.returncode == 0, reference.stderr
    runs = tmp_path / "killed"
    kill_after_checkpoint([*args, "--runs-dir", str(runs)], runs, BENCH, env)
    resumed = cc_bench(*args, "--runs-dir", str(runs))
    assert resumed.returncode == 0, resumed.stderr
    ours, theirs = last_json(resumed.stdout), last_json(reference.stdout)
    for key in ("interp_mean_step", "interp_max_step", "diversity_ratio", "d_loss", "g_loss"):
        assert ours[key] == pytest.approx(theirs[key], rel=1e-5), key


def test_bad_folders_are_one_line_and_exit_code_2(tmp_path: Path, runs_dir: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no pictures")
    cases = [
        ([], "data_dir is required (--data-dir DIR"),
        (["--data-dir", str(tmp_path / "absent")], f"{tmp_path / 'absent'}: no such folder"),
        (["--data-dir", str(empty)], f"{empty}: holds no images"),
        (["--data-dir", "synthetic:lsun"], "unknown synthetic source"),
    ]
    for args, message in cases:
        proc = cc_bench("run", BENCH, *args, *TINY, "--runs-dir", str(runs_dir))
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], proc.stderr
