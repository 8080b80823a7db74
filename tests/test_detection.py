"""detection.mnist_scatter: the IoU measure, mAP, the model's parts, and the benchmark end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import cc_bench, kill_after_checkpoint, last_json, run_folder
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.ops import box_iou

from cc_bench.detection.configs import DetectionConfig
from cc_bench.detection.metrics import DetectionScores, best_iou, pairwise_iou
from cc_bench.detection.mnist_scatter import build_model
from cc_bench.errors import UserError
from cc_bench.layers import CoordConv2d

BENCH = "detection.mnist_scatter"
TINY = ["--n-train", "16", "--n-test", "8", "--epochs", "1", "--batch-size", "8"]


def boxes(*rows: list[float]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 4)


# -- the IoU measure -------------------------------------------------------------------------


def test_pairwise_iou_matches_torchvision_on_hand_made_boxes() -> None:
    a = boxes([0, 0, 10, 10], [5, 5, 15, 15], [20, 20, 30, 40], [0, 0, 1, 1])
    b = boxes([0, 0, 10, 10], [5, 0, 15, 10], [100, 100, 110, 110], [25, 30, 35, 40], [0, 0, 0, 0])
    assert torch.allclose(pairwise_iou(a, b), box_iou(a, b).nan_to_num(0.0), atol=1e-6)
    # By hand: half-overlapping squares 50 / 150; identical 1; disjoint 0.
    assert pairwise_iou(a[:1], b[:3])[0].tolist() == pytest.approx([1.0, 1 / 3, 0.0])
    g = torch.Generator().manual_seed(0)
    corners = torch.rand(40, 2, generator=g) * 50
    c = torch.cat([corners, corners + 1 + torch.rand(40, 2, generator=g) * 20], dim=1)
    assert torch.allclose(pairwise_iou(c[:15], c[15:]), box_iou(c[:15], c[15:]), atol=1e-6)


def test_best_iou_takes_the_best_detection_above_the_threshold() -> None:
    truth = boxes([0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60])
    found = boxes([0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30])
    scores = torch.tensor([0.4, 0.9, 0.8])
    # The exact box for digit 0 scores 0.4 < 0.5: its best is the shifted one (1/3).
    assert best_iou(truth, found, scores, 0.5).tolist() == pytest.approx([1 / 3, 1.0, 0.0])
    assert best_iou(truth, found, scores, 0.0).tolist() == pytest.approx([1.0, 1.0, 0.0])
    assert best_iou(truth, found, scores, 0.95).tolist() == [0.0, 0.0, 0.0]
    assert best_iou(boxes(), found, scores, 0.5).shape == (0,)


def scored(preds: list[dict], targets: list[dict]) -> dict[str, float]:
    scores = DetectionScores(score_threshold=0.5)
    scores.update(preds, targets)
    return scores.compute()


def test_map_on_hand_made_cases_with_known_answers() -> None:
    one = torch.tensor([1])
    # One of two digits found exactly: precision 1 up to recall 0.5, nothing beyond; COCO's
    # 101-point interpolation gives 51 / 101 at every IoU threshold.
    out = scored(
        [{"boxes": boxes([0, 0, 10, 10]), "scores": torch.tensor([0.9]), "labels": one}],
        [{"boxes": boxes([0, 0, 10, 10], [20, 20, 30, 30]), "labels": torch.tensor([1, 1])}],
    )
    assert out["map"] == pytest.approx(51 / 101, abs=1e-6)
    assert out["map_50"] == pytest.approx(51 / 101, abs=1e-6)
    assert out["mean_iou"] == pytest.approx(0.5) and out["recall_50"] == pytest.approx(0.5)
    # A false positive scored above the true detection: precision 1/2 at recall 1 -> AP 0.5.
    out = scored(
        [
            {
                "boxes": boxes([40, 40, 50, 50], [0, 0, 10, 10]),
                "scores": torch.tensor([0.9, 0.8]),
                "labels": torch.tensor([1, 1]),
            }
        ],
        [{"boxes": boxes([0, 0, 10, 10]), "labels": one}],
    )
    assert out["map"] == pytest.approx(0.5, abs=1e-6)
    assert out["mean_iou"] == pytest.approx(1.0)
    # A detection of IoU 0.57 (the top 57% of the digit's box): a match at the IoU thresholds
    # 0.5 and 0.55, a miss at 0.6 .. 0.95, so mAP@[.5:.95] = 2 / 10.
    out = scored(
        [{"boxes": boxes([0, 0, 10, 5.7]), "scores": torch.tensor([0.9]), "labels": one}],
        [{"boxes": boxes([0, 0, 10, 10]), "labels": one}],
    )
    assert out["mean_iou"] == pytest.approx(0.57)
    assert out["map_50"] == pytest.approx(1.0) and out["map"] == pytest.approx(0.2, abs=1e-6)


# -- the model -------------------------------------------------------------------------------


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_coordconv_adds_exactly_the_coordinate_weights_at_each_place() -> None:
    conv = build_model(DetectionConfig(conv="conv"), 0.0, 1.0)
    assert isinstance(conv, FasterRCNN)
    assert conv.backbone.out_channels == 64
    assert not any(isinstance(m, CoordConv2d) for m in conv.modules())
    # 2 coordinate channels x out channels x kernel area, at each place.
    extra = {"backbone_conv": 2 * 32 * 25, "rpn_conv": 2 * 64 * 9, "box_conv": 2 * 32 * 9}
    for place, added in extra.items():
        one = build_model(DetectionConfig(conv="conv", **{place: "coordconv"}), 0.0, 1.0)
        assert count(one) - count(conv) == added, place
        assert sum(isinstance(m, CoordConv2d) for m in one.modules()) == 1
    every = build_model(DetectionConfig(conv="coordconv"), 0.0, 1.0)
    assert count(every) - count(conv) == sum(extra.values())
    assert isinstance(every.backbone[0], CoordConv2d)
    assert isinstance(every.rpn.head.conv[0][0], CoordConv2d)
    assert isinstance(every.roi_heads.box_head.conv, CoordConv2d)
    with_r = build_model(DetectionConfig(conv="coordconv", with_r=True), 0.0, 1.0)
    assert count(with_r) - count(conv) == sum(extra.values()) * 3 // 2
    # Overriding one place: CoordConv everywhere but the box head.
    mixed = build_model(DetectionConfig(conv="coordconv", box_conv="conv"), 0.0, 1.0)
    assert count(mixed) - count(conv) == extra["backbone_conv"] + extra["rpn_conv"]


@pytest.mark.parametrize("num_classes", [1, 10])
def test_model_trains_and_predicts_on_64px_canvases(num_classes: int) -> None:
    torch.manual_seed(0)
    model = build_model(DetectionConfig(num_classes=num_classes), 0.03, 0.15)
    assert model.roi_heads.box_predictor.cls_score.out_features == num_classes + 1
    images = [torch.rand(1, 64, 64) for _ in range(2)]
    targets = [
        {"boxes": boxes([3, 4, 20, 25]), "labels": torch.tensor([num_classes])},
        {"boxes": boxes(), "labels": torch.zeros(0, dtype=torch.int64)},  # an empty canvas
    ]
    model.train()
    losses = model(images, targets)
    assert set(losses) == {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}
    sum(losses.values()).backward()
    assert model.backbone[0].weight.grad.abs().sum() > 0  # gradients reach the input conv
    model.eval()
    with torch.no_grad():
        out = model(images)
    assert len(out) == 2 and out[0]["boxes"].shape[1] == 4
    assert (out[0]["boxes"] >= 0).all() and (out[0]["boxes"] <= 64).all()


def test_config_rejects_bad_values() -> None:
    with pytest.raises(UserError, match="num_classes"):
        DetectionConfig(num_classes=3)
    with pytest.raises(UserError, match="data-root"):
        DetectionConfig(source="mnist")
    with pytest.raises(UserError, match="lr_drops"):
        DetectionConfig(lr_drops=(1.5,))


# -- end to end through the command line -------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"CC_BENCH_CACHE": str(tmp_path / "cache")}


def test_benchmark_end_to_end_on_a_tiny_budget(runs_dir: Path, env: dict[str, str]) -> None:
    proc = cc_bench(
        "run", BENCH, "--conv", "coordconv", *TINY, "--runs-dir", str(runs_dir), env=env
    )
    assert proc.returncode == 0, proc.stderr
    folder = run_folder(proc.stdout)
    metrics = last_json(proc.stdout)
    expected = {"mean_iou", "recall_50", "map", "map_50", "train_loss", "params", "wall_s"}
    assert expected | {"images_per_s"} <= set(metrics)
    assert 0 <= metrics["mean_iou"] <= 1 and 0 <= metrics["map_50"] <= 1
    assert metrics["params"] == count(build_model(DetectionConfig(), 0.0, 1.0))
    lines = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1]
    assert {"test/mean_iou", "test/map", "test/map_50", "test/recall_50", "train/loss"} <= set(
        lines[0]
    )
    assert list((folder / "media").glob("test_detections_*.png"))


def test_a_killed_run_resumes_and_ends_as_if_never_stopped(
    tmp_path: Path, env: dict[str, str]
) -> None:
    args = ["run", BENCH, "--conv", "coordconv", "--n-train", "16", "--n-test", "8"]
    args += ["--epochs", "3", "--batch-size", "8", "--warmup-steps", "2"]
    reference = cc_bench(*args, "--runs-dir", str(tmp_path / "reference"), env=env)
    assert reference.returncode == 0, reference.stderr

    runs = tmp_path / "killed"
    checkpoint = kill_after_checkpoint([*args, "--runs-dir", str(runs)], runs, BENCH, env)

    resumed = cc_bench(*args, "--runs-dir", str(runs), env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {checkpoint.parent.name} from step" in resumed.stderr
    lines = [json.loads(x) for x in (checkpoint.parent / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2, 3]
    ours, theirs = last_json(resumed.stdout), last_json(reference.stdout)
    for key in ("mean_iou", "recall_50", "map", "map_50", "train_loss"):
        assert ours[key] == pytest.approx(theirs[key], rel=1e-5, abs=1e-6), key


@pytest.mark.parametrize(
    "extra, fragment",
    [
        ([], "--data-root"),
        (["--data-root", "{missing}"], "{missing}"),
    ],
)
def test_mnist_without_its_files_is_one_line_and_exit_2(
    extra: list[str], fragment: str, tmp_path: Path, runs_dir: Path, env: dict[str, str]
) -> None:
    missing = str(tmp_path / "no-mnist-here")
    extra = [x.format(missing=missing) for x in extra]
    proc = cc_bench(
        "run", BENCH, "--source", "mnist", *extra, *TINY, "--runs-dir", str(runs_dir), env=env
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment.format(missing=missing) in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not Path(missing).exists()  # nothing downloaded unless asked
