"""The detection baselines script (benchmarks/detection_baselines.py): chance boxes scored
on a hand-made test set against torchvision's IoU, and bad arguments."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from torchvision.ops import box_iou

from cc_bench.detection.configs import DetectionConfig
from cc_bench.envs.mnist_scatter import MnistScatter

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "detection_baselines.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("detection_baselines", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    assert spec is not None and spec.loader is not None
    spec.loader.exec_module(module)
    return module


def canvases(boxes: list[list[list[float]]]) -> MnistScatter:
    n = len(boxes)
    return MnistScatter(
        images=torch.zeros(n, 1, 64, 64),
        boxes=[torch.tensor(b, dtype=torch.float32).reshape(-1, 4) for b in boxes],
        labels=[torch.zeros(len(b), dtype=torch.int64) for b in boxes],
    )


def test_chance_boxes_come_from_the_other_canvas() -> None:
    a, b = [10.0, 10.0, 30.0, 30.0], [20.0, 15.0, 40.0, 35.0]
    test = canvases([[a], [b]])
    scores = load_script().chance(test, DetectionConfig(), n_boxes=3)
    iou = float(box_iou(torch.tensor([a]), torch.tensor([b]))[0, 0])
    # Each canvas gets 3 copies of the other's box: every proposal and detection has IoU iou.
    assert scores["rpn_mean_iou"] == pytest.approx(iou)
    assert scores["mean_iou"] == pytest.approx(iou)
    assert scores["detections_per_image"] == 3.0
    assert scores["recall_50"] == float(iou >= 0.5)


def test_chance_needs_boxes_on_two_canvases() -> None:
    test = canvases([[[1.0, 1.0, 9.0, 9.0]], []])
    with pytest.raises(ValueError, match="true boxes on at least two canvases"):
        load_script().chance(test, DetectionConfig(), n_boxes=1)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--seeds", "0"], "--seeds: 0 must be >= 1"),
        (["--boxes", "0"], "--boxes: 0 must be >= 1"),
        (["--threads", "x"], "--threads: 'x' is not an integer"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(args: list[str], fragment: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert fragment in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
