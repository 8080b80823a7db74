"""gan.image_folder through the command line: trained end to end on a folder the test writes,
resumed after a kill, and every bad folder one line and exit code 2."""

from __future__ import annotations

import json
import os
import shutil
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
    assert metrics["data_pairwise_dist"] > 0
    run = run_folder(proc.stdout)
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    last = [x for x in lines if "test/diversity_ratio" in x][-1]  # the summary: the last eval
    for key in ("interp_mean_step", "interp_max_step", "diversity_ratio"):
        assert metrics[key] == last[f"test/{key}"] and np.isfinite(metrics[key]), key
    media = {p.name.rsplit("_", 1)[0] for p in (run / "media").glob("*.png")}
    assert {"data_grid", "samples_grid", "samples_interpolations"} <= media
    assert list((run / "media").glob("*.gif"))


def test_a_killed_run_resumes_and_ends_as_if_never_stopped(folder: Path, tmp_path: Path) -> None:
    args = ["run", BENCH, "--conv", "conv", "--data-dir", str(folder), *TINY, "--epochs", "4"]
    # On the CPU: CUDA runs need not repeat bit for bit (README, "Resuming on a GPU").
    args += ["--device", "cpu"]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    reference = cc_bench(*args, "--runs-dir", str(tmp_path / "reference"))
    assert reference.returncode == 0, reference.stderr
    runs = tmp_path / "killed"
    kill_after_checkpoint([*args, "--runs-dir", str(runs)], runs, BENCH, env)
    resumed = cc_bench(*args, "--runs-dir", str(runs))
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    # The lines logged after the checkpoint were dropped: each step once, as uninterrupted.
    ours_lines = (run_folder(resumed.stdout) / "metrics.jsonl").read_text().splitlines()
    theirs_lines = (run_folder(reference.stdout) / "metrics.jsonl").read_text().splitlines()
    steps = [json.loads(x)["step"] for x in ours_lines]
    assert steps == [json.loads(x)["step"] for x in theirs_lines]
    ours, theirs = last_json(resumed.stdout), last_json(reference.stdout)
    for key in ("interp_mean_step", "interp_max_step", "diversity_ratio", "d_loss", "g_loss"):
        assert ours[key] == pytest.approx(theirs[key], rel=1e-5), key


def test_bad_folders_are_one_line_and_exit_code_2(tmp_path: Path, runs_dir: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no pictures")
    corrupt = _corrupt_folder(tmp_path / "corrupt")
    cases = [
        ([], "data_dir is required (--data-dir DIR"),
        (["--data-dir", str(tmp_path / "absent")], f"{tmp_path / 'absent'}: no such folder"),
        (["--data-dir", str(empty)], f"{empty}: holds no images"),
        (["--data-dir", str(corrupt)], f"{corrupt}: none of its 3 image files could be read"),
        (["--data-dir", "synthetic:lsun"], "unknown synthetic source"),
    ]
    for args, message in cases:
        proc = cc_bench("run", BENCH, *args, *TINY, "--runs-dir", str(runs_dir))
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not list(runs_dir.rglob("config.json"))  # rejected before a run folder was made


def test_an_unreadable_folder_is_one_line_and_exit_code_2(
    folder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`cc-bench run` and `cc-bench launch` name a folder they may not read, before a run
    folder is made. In process: the tests run as root, which reads any folder whatever its
    mode, so the kernel's answer to another user is given by `os.access`, as
    tests/test_image_folder_data.py's unit test does where it cannot switch users."""
    from cc_bench.cli import main

    locked = tmp_path / "locked"
    shutil.copytree(folder, locked)
    locked.chmod(0)  # what denies any other user (root still reads it)
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode, **kw: Path(p) != locked and real_access(p, mode, **kw)
    )
    runs = tmp_path / "runs"
    message = f"--data-dir {os.path.realpath(locked)}: cannot be read (permission denied)"
    try:
        for args in (
            ["run", BENCH, "--data-dir", str(locked), *TINY],
            ["launch", "image-folder-laptop", "--set", f"data_dir={locked}", "--dry-run"],
        ):
            code = main([*args, "--runs-dir", str(runs)])
            out, err = capsys.readouterr()
            assert code == 2, (args, out, err)
            lines = err.strip().splitlines()
            assert len(lines) == 1 and message in lines[0], err
            assert not runs.exists(), args  # rejected before a run folder was made
    finally:
        locked.chmod(0o755)


def _corrupt_folder(root: Path) -> Path:
    """A folder of 3 files named as images that do not decode (a truncated JPEG, text)."""
    root.mkdir()
    (root / "a.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (root / "b.png").write_bytes(b"not a png")
    (root / "c.webp").write_bytes(b"")
    return root


def test_launch_rejects_a_folder_of_undecodable_images_before_any_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cc_bench.cli import main

    corrupt = _corrupt_folder(tmp_path / "corrupt")
    runs = tmp_path / "runs"
    args = ["launch", "image-folder-laptop", "--set", f"data_dir={corrupt}", "--seeds", "1"]
    for dry_run in (["--dry-run"], []):
        code = main([*args, "--runs-dir", str(runs), *dry_run])
        out, err = capsys.readouterr()
        assert code == 2, (dry_run, out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert f"{corrupt}: none of its 3 image files could be read" in lines[0]
        assert "it must hold images" in lines[0]
        assert not runs.exists()


def test_fewer_than_two_images_fails_before_training(tmp_path: Path, runs_dir: Path) -> None:
    one = tmp_path / "one"
    one.mkdir()
    Image.fromarray(np.zeros((70, 90, 3), dtype=np.uint8)).save(one / "only.png")
    cases = [
        (["--data-dir", str(one)], f"{one}: only 1 of its 1 image files could be read"),
        (["--data-dir", str(one), "--n-samples", "1"], "invalid n_samples=1: must be >= 2"),
    ]
    for args, message in cases:
        proc = cc_bench("run", BENCH, *TINY, *args, "--runs-dir", str(runs_dir))
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], proc.stderr
        assert not list(runs_dir.rglob("metrics.jsonl")), "trained before failing"


def test_launch_rejects_a_bad_data_dir_before_planning_anything(
    tmp_path: Path, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cc_bench.cli import main

    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("no pictures")
    runs = tmp_path / "runs"
    cases = [
        (["image-folder-laptop", "--set", f"data_dir={tmp_path / 'absent'}"], "no such folder"),
        (["image-folder-laptop", "--set", f"data_dir={not_a_folder}"], "not a folder"),
        (["image-folder-laptop", "--set", "data_dir=synthetic:lsun"], "unknown synthetic"),
        (["image-folder-paper"], "data_dir is required"),
    ]
    for args, message in cases:
        code = main(["launch", *args, "--runs-dir", str(runs), "--dry-run"])
        out, err = capsys.readouterr()
        assert code == 2, (args, out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], err
        assert "runs" not in out and not runs.exists()
    # With a folder, the paper setting plans conv and CoordConv at width 2, 3 seeds each.
    code = main(["launch", "image-folder-paper", "--set", f"data_dir={folder}", "--dry-run"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "6 runs" in out and out.count("gan.image_folder  ") == 6


def test_image_folder_suites() -> None:
    from cc_bench.suites import get_suite

    (smoke,) = get_suite("image-folder-smoke").entries
    assert smoke in get_suite("smoke").entries
    assert smoke.fixed["data_dir"] == "synthetic:sort_of_clevr"
    (paper,) = get_suite("image-folder-paper").entries
    assert paper.fixed["width"] == 2.0
    # `paper` plans without any data of the user's: the LSUN setting is launched on its own.
    assert paper not in get_suite("paper").entries
    assert "data_dir" not in paper.fixed  # the user names the folder
    bench = get_benchmark(BENCH)
    assert bench.headline == ("diversity_gap",)
    assert bench.metrics["interp_mean_step"] == "neither"
