"""detection.mnist_scatter: the IoU measure, mAP, the model's parts, and the benchmark end to end."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch
from conftest import cc_bench, kill_after_checkpoint, last_json, run_folder
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.ops import box_iou

from cc_bench.detection import mnist_scatter as bench
from cc_bench.detection.anchors import anchor_match, anchors_for
from cc_bench.detection.configs import PLACES, DetectionConfig
from cc_bench.detection.metrics import (
    DetectionScores,
    best_iou,
    matched_at,
    pairwise_iou,
    proposal_iou,
)
from cc_bench.detection.mnist_scatter import build_model, evaluate
from cc_bench.envs.mnist_scatter import make_mnist_scatter
from cc_bench.errors import NonFiniteLossError, UserError
from cc_bench.layers import CoordConv2d
from cc_bench.tracking import Tracker

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


def test_precision_and_detections_per_image_count_false_positives() -> None:
    truth = boxes([0, 0, 10, 10], [20, 20, 30, 30])
    found = boxes([0, 0, 10, 10], [0, 0, 10, 9], [40, 40, 50, 50], [20, 20, 30, 30])
    # The exact box of digit 0, a duplicate of it, a box on nothing, and digit 1's exact box
    # scoring below the threshold: 3 detections count, 1 of them a match.
    scores = torch.tensor([0.9, 0.8, 0.7, 0.3])
    out = scored(
        [{"boxes": found, "scores": scores, "labels": torch.ones(4, dtype=torch.int64)}],
        [{"boxes": truth, "labels": torch.tensor([1, 1])}],
    )
    assert out["detections_per_image"] == pytest.approx(3.0)
    assert out["precision_50"] == pytest.approx(1 / 3)
    assert out["mean_iou"] == pytest.approx(0.5)  # 1 for digit 0, 0 for digit 1
    # Two images, one without detections: detections per image halves, precision does not.
    two = DetectionScores(0.5)
    empty = {
        "boxes": boxes(),
        "scores": torch.zeros(0),
        "labels": torch.zeros(0, dtype=torch.int64),
    }
    two.update(
        [{"boxes": found, "scores": scores, "labels": torch.ones(4, dtype=torch.int64)}, empty],
        [{"boxes": truth, "labels": torch.tensor([1, 1])}] * 2,
    )
    assert two.compute()["detections_per_image"] == pytest.approx(1.5)
    assert two.compute()["precision_50"] == pytest.approx(1 / 3)


def test_matching_is_one_detection_per_digit_in_score_order() -> None:
    truth = boxes([0, 0, 10, 10], [6, 0, 16, 10])  # two digits overlapping by 4 px
    # The top detection lies between them (IoU 0.6 with the first); the second detection is
    # the first digit exactly, but that digit is taken: it may match only the second (0.25).
    found = boxes([0, 0, 10, 10], [1, 0, 11, 10])
    assert pairwise_iou(found[1:], truth).tolist()[0] == pytest.approx([9 / 11, 5 / 15])
    assert matched_at(truth, found, torch.tensor([0.5, 0.9])) == 1
    assert matched_at(truth, found[:1], torch.tensor([0.9])) == 1
    assert matched_at(truth, boxes([0, 0, 10, 10], [6, 0, 16, 10]), torch.ones(2)) == 2
    assert matched_at(boxes(), found, torch.ones(2)) == 0


def test_proposal_iou_scores_the_top_proposals_against_torchvision() -> None:
    truth = boxes([0, 0, 10, 10], [20, 20, 30, 30])
    proposals = boxes([0, 0, 10, 10], [40, 40, 50, 50], [20, 20, 30, 25], [0, 0, 10, 10])
    expected = box_iou(proposals, truth).max(dim=1).values
    assert torch.allclose(proposal_iou(truth, proposals, 10), expected)
    assert proposal_iou(truth, proposals, 3).tolist() == pytest.approx([1.0, 0.0, 0.5])
    assert proposal_iou(boxes(), proposals, 2).tolist() == [0.0, 0.0]  # an empty canvas
    scores = DetectionScores(0.5, rpn_top=3)
    no_detections = {"boxes": boxes(), "scores": torch.zeros(0), "labels": torch.zeros(0)}
    scores.update([no_detections], [{"boxes": truth, "labels": torch.tensor([1, 1])}], [proposals])
    assert scores.compute()["rpn_mean_iou"] == pytest.approx(0.5)  # (1 + 0 + 0.5) / 3


def test_rpn_mean_iou_scores_the_official_nms_of_the_rpn_s_candidates() -> None:
    """evaluate()'s proposals against a copy of torchvision's RPN set to the official NMS
    (0.8, the top 4 kept) and called on its own, box_iou, and a mean; the detections are
    those of the RPN's own NMS (0.7), untouched."""
    torch.manual_seed(0)
    cfg = DetectionConfig(conv="coordconv", n_test=6, rpn_iou_top=4, eval_batch_size=4)
    data = make_mnist_scatter(6, 0, split="test", cache=False)
    model = build_model(cfg, 0.03, 0.15).eval()
    with torch.no_grad():
        before = model(list(data.images))
    scores, shown = evaluate(model, data, cfg, torch.device("cpu"))
    assert "filter_proposals" not in vars(model.rpn)  # undone
    for a, b in zip(before, shown, strict=True):
        assert torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["scores"], b["scores"])
    official = copy.deepcopy(model.rpn)
    official.nms_thresh, official._post_nms_top_n = 0.8, {"training": 4, "testing": 4}
    assert model.rpn.nms_thresh == 0.7
    ious = []
    with torch.no_grad():
        images, _ = model.transform(list(data.images))
        proposals, _ = official(images, {"0": model.backbone(images.tensors)})
    for found, truth in zip(proposals, data.boxes, strict=True):
        assert len(found) == 4
        top = box_iou(found, truth).max(dim=1).values if len(truth) else torch.zeros(4)
        ious.append(top)
    assert scores["rpn_mean_iou"] == pytest.approx(float(torch.cat(ious).mean()), rel=1e-6)


# -- the anchors -----------------------------------------------------------------------------


def test_targets_label_digits_after_the_background_and_score_perfect_as_predictions() -> None:
    data = make_mnist_scatter(6, 0, split="test", cache=False)
    idx = list(range(len(data)))
    cpu = torch.device("cpu")
    agnostic, digits = (bench.targets_for(data, idx, n, cpu) for n in (1, 10))
    for k, one, ten in zip(idx, agnostic, digits, strict=True):
        assert torch.equal(one["boxes"], data.boxes[k]) and torch.equal(ten["boxes"], data.boxes[k])
        assert (one["labels"] == 1).all()  # "digit"; 0 is torchvision's background
        assert torch.equal(ten["labels"], data.labels[k] + 1)  # digit d is class d + 1
    for targets in (agnostic, digits):
        scores = DetectionScores(0.5)
        preds = [dict(t, scores=torch.ones(len(t["labels"]))) for t in targets]
        scores.update(preds, targets)
        got = scores.compute()
        assert got["map"] == pytest.approx(1.0) and got["mean_iou"] == pytest.approx(1.0)


def test_anchor_match_on_hand_made_boxes() -> None:
    # Size-8 square anchors every 4 px: [4k - 4, 4k + 4] on each axis.
    on_grid, off_grid = boxes([4, 4, 12, 12]), boxes([6, 6, 14, 14])
    assert anchor_match(on_grid, (8,)) == {"at_70": 1.0, "none_50": 0.0}  # the 8x8 pair
    # Off the grid by 2 px each way: the best anchor overlaps 6 x 6 of 8 x 8, IoU 36 / 92.
    assert anchor_match(off_grid, (8,)) == {"at_70": 0.0, "none_50": 1.0}
    both = anchor_match(torch.cat([on_grid, off_grid]), (8,), shapes="ratios")
    assert both == {"at_70": 0.5, "none_50": 0.5}
    # An 8 x 16 box centred on the grid: the ratio-2 anchor of size 8 * sqrt(2) is that box
    # (torchvision: ratio = height / width, size = sqrt(area)); the size-8 square overlaps
    # it by 64 / 128 = 0.5, not 0.7.
    tall = boxes([8, 4, 16, 20])
    assert anchor_match(tall, (8 * 2**0.5,), (2.0,), shapes="ratios") == {
        "at_70": 1.0,
        "none_50": 0.0,
    }
    assert anchor_match(tall, (8,), (1.0,), shapes="ratios") == {"at_70": 0.0, "none_50": 0.0}
    # The default, the official pairs: heights and widths 8 and 16 include the 16 x 8 box.
    assert anchor_match(tall, (8, 16)) == {"at_70": 1.0, "none_50": 0.0}


def test_default_anchors_are_the_official_pairs_and_fit_the_official_digits() -> None:
    """The official recipe draws each digit's ink 15-25 px a side; the default anchors are the
    official code's 9 (height, width) pairs of 15, 20, 25 at every feature-map cell, and fit
    those digits better than small ones would."""
    cfg = DetectionConfig()
    assert (cfg.anchor_sizes, cfg.anchor_shapes) == ((15, 20, 25), "pairs")
    cell = anchors_for(cfg.anchor_sizes, cfg.aspect_ratios, 64, 4, "pairs")[:9]
    sides = {(float(b[3] - b[1]), float(b[2] - b[0])) for b in cell}  # (height, width)
    assert sides == {(float(h), float(w)) for h in (15, 20, 25) for w in (15, 20, 25)}
    centres = (cell[:, :2] + cell[:, 2:]) / 2
    assert centres.abs().max() < 1e-6  # all centred on the first cell's point, (0, 0)
    uncut = make_mnist_scatter(100, 0, canvas=64, crop=64, cache=False)  # nothing cut
    sides = torch.cat([b[:, 2:] - b[:, :2] for b in uncut.boxes])
    assert sides.min() >= 12 and sides.max() <= 25  # the ink, less its faintest edge
    assert 18 < float(sides.mean()) < 21
    truth = torch.cat(make_mnist_scatter(300, 0, cache=False).boxes)
    default = anchor_match(truth, cfg.anchor_sizes)  # the pairs, as the model's
    small = anchor_match(truth, (8, 12, 16), (0.5, 1.0, 2.0), shapes="ratios")
    assert default["at_70"] > small["at_70"] + 0.05


# -- the model -------------------------------------------------------------------------------


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_coordconv_adds_exactly_the_coordinate_weights_at_each_place() -> None:
    conv = build_model(DetectionConfig(conv="conv"), 0.0, 1.0)
    assert isinstance(conv, FasterRCNN)
    assert conv.backbone.out_channels == 64
    assert not any(isinstance(m, CoordConv2d) for m in conv.modules())
    # 2 coordinate channels x out channels x kernel area, at each place (RPN hidden: 32; its
    # box regression: 4 deltas x 9 anchors, 1x1).
    extra = {
        "backbone_conv": 2 * 32 * 25,
        "rpn_conv": 2 * 32 * 9,
        "rpn_box_conv": 2 * 36,
        "box_conv": 2 * 32 * 9,
    }
    for place, added in extra.items():
        one = build_model(DetectionConfig(conv="conv", **{place: "coordconv"}), 0.0, 1.0)
        assert count(one) - count(conv) == added, place
        assert sum(isinstance(m, CoordConv2d) for m in one.modules()) == 1
    every = build_model(DetectionConfig(conv="coordconv"), 0.0, 1.0)
    assert count(every) - count(conv) == sum(extra.values())
    assert isinstance(every.backbone[0], CoordConv2d)
    assert isinstance(every.rpn.head.conv[0][0], CoordConv2d)
    assert isinstance(every.rpn.head.bbox_pred, CoordConv2d)
    assert isinstance(every.roi_heads.box_head.conv, CoordConv2d)
    with_r = build_model(DetectionConfig(conv="coordconv", with_r=True), 0.0, 1.0)
    assert count(with_r) - count(conv) == sum(extra.values()) * 3 // 2
    # Overriding one place: CoordConv everywhere but the box head.
    mixed = build_model(DetectionConfig(conv="coordconv", box_conv="conv"), 0.0, 1.0)
    assert count(mixed) - count(conv) == sum(extra.values()) - extra["box_conv"]


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


def test_rpn_hidden_width_is_the_official_32_and_a_field() -> None:
    head = build_model(DetectionConfig(conv="conv"), 0.0, 1.0).rpn.head
    assert head.conv[0][0].in_channels == 64 and head.conv[0][0].out_channels == 32
    assert head.cls_logits.in_channels == 32 and head.cls_logits.out_channels == 9
    assert head.bbox_pred.in_channels == 32 and head.bbox_pred.out_channels == 36
    # By hand: 3x3 conv 64 -> 32, 1x1 convs 32 -> 9 and 32 -> 36, with biases.
    assert count(head) == (64 * 32 * 9 + 32) + (32 * 9 + 9) + (32 * 36 + 36)
    wide = build_model(DetectionConfig(conv="conv", rpn_hidden=64), 0.0, 1.0).rpn.head
    assert wide.conv[0][0].out_channels == 64 and wide.cls_logits.in_channels == 64


def test_auto_placements_resolve_to_the_run_s_conv() -> None:
    cfg = DetectionConfig(conv="coordconv", box_conv="conv").resolve()
    places = (cfg.backbone_conv, cfg.rpn_conv, cfg.rpn_box_conv, cfg.box_conv)
    assert places == ("coordconv", "coordconv", "coordconv", "conv")
    assert cfg.resolve() == cfg
    plain = DetectionConfig(conv="conv").resolve()
    assert {plain.backbone_conv, plain.rpn_conv, plain.rpn_box_conv, plain.box_conv} == {"conv"}
    # The resolved config builds the same network as the given one.
    assert count(build_model(cfg, 0.0, 1.0)) == count(
        build_model(DetectionConfig(conv="coordconv", box_conv="conv"), 0.0, 1.0)
    )
    assert DetectionConfig.per_conv_fields() >= set(PLACES)


def test_config_rejects_bad_values() -> None:
    with pytest.raises(UserError, match="num_classes"):
        DetectionConfig(num_classes=3)
    with pytest.raises(UserError, match="data-root"):
        DetectionConfig(source="mnist")
    with pytest.raises(UserError, match="lr_drops"):
        DetectionConfig(lr_drops=(1.5,))
    with pytest.raises(UserError, match=r"invalid rpn_iou_nms=0\.0: must be > 0\.0"):
        DetectionConfig(rpn_iou_nms=0.0)


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
    expected |= {"rpn_mean_iou", "precision_50", "detections_per_image"}
    assert expected | {"images_per_s"} <= set(metrics)
    assert 0 <= metrics["mean_iou"] <= 1 and 0 <= metrics["map_50"] <= 1
    assert metrics["params"] == count(build_model(DetectionConfig(), 0.0, 1.0))
    lines = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1]
    assert {"test/mean_iou", "test/map", "test/map_50", "test/recall_50", "train/loss"} <= set(
        lines[0]
    )
    assert {"test/rpn_mean_iou", "test/precision_50", "test/detections_per_image"} <= set(lines[0])
    # Two batches of 8: both count as seen; the first, CoordConv's autotune, is not timed.
    assert lines[0]["train/images_seen"] == 16
    assert metrics["images_per_s"] > 0 and lines[0]["perf/images_per_s"] == metrics["images_per_s"]
    state = torch.load(folder / "checkpoint.pt", weights_only=False)["state"]
    assert (state["images_seen"], state["timed_images"]) == (16, 8)
    assert list((folder / "media").glob("test_detections_*.png"))
    assert (folder / "media" / "data_canvases_0.png").exists()


def test_a_killed_run_resumes_and_ends_as_if_never_stopped(
    tmp_path: Path, env: dict[str, str]
) -> None:
    args = ["run", BENCH, "--conv", "coordconv", "--n-train", "16", "--n-test", "8"]
    args += ["--epochs", "3", "--batch-size", "8", "--warmup-steps", "2", "--device", "cpu"]
    # On the CPU: CUDA runs need not repeat bit for bit (README, "Resuming on a GPU").
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
    assert not list(runs_dir.rglob("config.json"))  # and no run folder made for it


def test_data_root_and_download_apply_to_mnist_only(tmp_path: Path) -> None:
    for kw in ({"data_root": str(tmp_path)}, {"download": True}):
        with pytest.raises(UserError, match="apply to source='mnist' only"):
            DetectionConfig(source="mnist5k", **kw)
    cfg = DetectionConfig(source="mnist", data_root=str(tmp_path))  # builds: read back later
    with pytest.raises(UserError, match="MNIST not found under data_root"):
        cfg.check_inputs()
    DetectionConfig(source="mnist", data_root=str(tmp_path), download=True).check_inputs()


def tiny(**kw: object) -> DetectionConfig:
    """32 training canvases in 4 batches of 8, 8 test canvases, one torch thread."""
    values = {"conv": "coordconv", "n_train": 32, "n_test": 8, "epochs": 2, "batch_size": 8}
    return DetectionConfig(**{**values, "warmup_steps": 2, "torch_threads": 1, **kw})


def test_a_nan_loss_ends_the_run_at_its_step_not_at_the_epoch_s_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    monkeypatch.setenv("CC_BENCH_CACHE", env["CC_BENCH_CACHE"])
    real = bench.build_model

    def poisoned(cfg: DetectionConfig, mean: float, std: float) -> nn.Module:
        model = real(cfg, mean, std)
        forward, calls = model.forward, []

        def third_loss_is_nan(images, targets=None):  # noqa: ANN001, ANN202
            out = forward(images, targets)
            if model.training:
                calls.append(1)
                if len(calls) == 3:
                    out["loss_objectness"] = out["loss_objectness"] * float("nan")
            return out

        model.forward = third_loss_is_nan
        return model

    monkeypatch.setattr(bench, "build_model", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"epoch 1, batch 3 of 4\) became nan at step 3"):
        bench.run(tiny(), Tracker(tmp_path))
    assert not (tmp_path / "metrics.jsonl").exists() or not (tmp_path / "metrics.jsonl").read_text()


def test_a_run_killed_inside_an_epoch_resumes_as_if_never_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    monkeypatch.setenv("CC_BENCH_CACHE", env["CC_BENCH_CACHE"])
    # On the CPU: CUDA runs need not repeat bit for bit (README, "Resuming on a GPU").
    cfg = tiny(device="cpu")
    (tmp_path / "reference").mkdir()
    reference = bench.run(cfg, Tracker(tmp_path / "reference"))

    class Killed(Exception):
        pass

    class KilledAfterBatch2(Tracker):
        def save_checkpoint(self, state: dict, step: int) -> None:  # type: ignore[override]
            super().save_checkpoint(state, step)
            if state["epoch"] == 1 and state["batch"] == 2:  # inside the second epoch
                raise Killed

    folder = tmp_path / "killed"
    folder.mkdir()
    with pytest.raises(Killed):
        bench.run(cfg, KilledAfterBatch2(folder, checkpoint_interval_s=0.0))
    tracker = Tracker(folder)
    assert tracker.restore() == 1  # one epoch done (the unit of the logged steps) ...
    assert tracker.resume_state is not None
    assert (tracker.resume_state["epoch"], tracker.resume_state["batch"]) == (
        1,
        2,
    )  # ... and 2 batches
    resumed = bench.run(cfg, tracker)
    for key in ("rpn_mean_iou", "mean_iou", "precision_50", "map", "map_50", "train_loss"):
        assert resumed[key] == pytest.approx(reference[key], rel=1e-5, abs=1e-6), key
    lines = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2]


def test_suites_compare_conv_with_coordconv_at_their_budgets() -> None:
    from cc_bench.suites import expand, get_suite

    def grid(suite: str) -> tuple[set[tuple[str, int]], set[tuple[int, int, int]]]:
        runs = expand(get_suite(suite))
        assert {r.benchmark for r in runs} == {"detection.mnist_scatter"}
        pairs = {(r.cfg.conv, r.cfg.seed) for r in runs}
        return pairs, {(r.cfg.n_train, r.cfg.n_test, r.cfg.epochs) for r in runs}

    laptop, budget = grid("det-laptop")
    assert laptop == {(c, s) for c in ("conv", "coordconv") for s in range(3)}
    assert budget == {(2400, 500, 8)}
    paper, budget = grid("det-paper")
    assert {c for c, _ in paper} == {"conv", "coordconv"} and len(paper) >= 2 * 3
    assert budget == {(9000, 1000, 24)}  # the official canvases
    smoke, _ = grid("det-smoke")
    assert smoke == {("conv", 0), ("coordconv", 0)}


def test_the_run_s_model_does_not_resize_and_normalises_with_the_training_canvases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    monkeypatch.setenv("CC_BENCH_CACHE", env["CC_BENCH_CACHE"])
    real, built = bench.build_model, []

    class Built(Exception):
        """Raised once the run has built its model: the test needs nothing after that."""

    def capture(cfg: DetectionConfig, mean: float, std: float) -> nn.Module:
        built.append(real(cfg, mean, std))
        raise Built  # the model the run builds is all this test needs: no training

    monkeypatch.setattr(bench, "build_model", capture)
    cfg = tiny(device="cpu")
    with pytest.raises(Built):
        bench.run(cfg, Tracker(tmp_path))
    (model,) = built
    assert cfg.crop == 64
    assert tuple(model.transform.min_size) == (cfg.crop,) and model.transform.max_size == cfg.crop
    # The statistics of the run's training canvases, computed again here (float64, NumPy);
    # the canvases are the run's own, from the cache it filled (no third file appears).
    train = make_mnist_scatter(cfg.n_train, cfg.data_seed, split="train")
    pixels = train.images.numpy().astype("float64")
    mean, std = pixels.mean(), pixels.std(ddof=1)
    assert model.transform.image_mean == pytest.approx([mean], rel=1e-5)
    assert model.transform.image_std == pytest.approx([std], rel=1e-5)
    test = make_mnist_scatter(cfg.n_test, cfg.data_seed, split="test")
    assert abs(float(test.images.double().mean()) - mean) > 1e-4  # the test set's would differ
    assert len(list(Path(env["CC_BENCH_CACHE"]).rglob("*.pt"))) == 2
    # A canvas goes through the transform at its own size, only normalised.
    canvas = train.images[0]
    out, _ = model.transform([canvas])
    assert out.image_sizes == [(cfg.crop, cfg.crop)]
    assert out.tensors.shape == (1, 1, cfg.crop, cfg.crop)
    assert torch.allclose(out.tensors[0], (canvas - mean) / std, atol=1e-5)


def test_a_ten_class_adam_run_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    from PIL import Image

    monkeypatch.setenv("CC_BENCH_CACHE", env["CC_BENCH_CACHE"])
    cfg = tiny(optimizer="adam", lr=1e-3, num_classes=10, epochs=1, device="cpu")
    summary = bench.run(cfg, Tracker(tmp_path))
    expected = {"mean_iou", "recall_50", "map", "map_50", "rpn_mean_iou", "precision_50"}
    expected |= {"detections_per_image", "train_loss", "params", "wall_s", "images_per_s"}
    assert expected <= set(summary)
    for key in expected:
        assert math.isfinite(summary[key]), key
    for key in ("mean_iou", "recall_50", "map", "map_50", "rpn_mean_iou"):
        assert 0 <= summary[key] <= 1, key
    assert summary["images_per_s"] > 0 and summary["wall_s"] > 0
    assert summary["params"] == count(build_model(cfg, 0.0, 1.0))  # 11 classes' heads
    pictures = list((tmp_path / "media").glob("test_detections_*.png"))
    assert [p.name for p in pictures] == ["test_detections_1.png"]
    with Image.open(pictures[0]) as picture:
        picture.verify()
    with Image.open(pictures[0]) as picture:
        assert picture.width > 300 and picture.height > 200
    # The optimizer was Adam at lr 1e-3: its state in the run's checkpoint.
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)["state"]["optimizer"]
    (group,) = state["param_groups"]
    assert "betas" in group and "momentum" not in group
    assert group["initial_lr"] == pytest.approx(1e-3)
    moments = next(iter(state["state"].values()))
    assert {"exp_avg", "exp_avg_sq"} <= set(moments) and "momentum_buffer" not in moments
