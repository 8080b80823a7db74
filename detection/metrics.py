"""Detection scores: mean IoU (two ways), precision and recall at IoU 0.5, COCO mAP.

- `rpn_mean_iou` is the official code's measure (`mean_argmax_nms_iou` in the released
  region-proposal network, the paper's "mean IoU of the proposals after NMS"): the RPN's
  `top` highest-scoring proposals after NMS (official: 10, NMS at IoU 0.8: the benchmark's
  `evaluate` filters them so), each scored by its IoU with the
  true digit it overlaps most (0 on an empty canvas), averaged over every proposal of the
  test set. A proposal on nothing scores 0, so false positives count against it.
- `mean_iou`: for each true digit, the IoU of the final detection that overlaps it most
  among those scoring at least the threshold (0 when there is none), averaged over every
  true digit. A recall-like measure: it does not see false positives, so read it beside
  `precision_50` and `detections_per_image`.
- `recall_50`: the share of true digits whose best IoU (as for `mean_iou`) is at least 0.5.
- `precision_50`: the share of detections scoring at least the threshold that match a true
  digit at IoU >= 0.5, one detection per digit (greedy in score order, as COCO matches), so
  a duplicate is a false positive; 0 when there is no detection.
- `detections_per_image`: detections scoring at least the threshold, per test canvas.
- `map` and `map_50`: COCO's mean average precision (IoU 0.5:0.95, and 0.5) over all
  detections, by torchmetrics' `MeanAveragePrecision` with the pycocotools backend
  (offline); with 10 classes they are averaged over classes.

All but mAP ignore classes, as the paper's class-agnostic task does.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics.detection import MeanAveragePrecision


def pairwise_iou(a: Tensor, b: Tensor) -> Tensor:
    """IoU of every box of `a` (N, 4) with every box of `b` (M, 4), xyxy: (N, M)."""
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])  # (N, M, 2)
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])  # (N, M, 2)
    inter = (bottom_right - top_left).clamp(min=0).prod(-1)  # (N, M)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(-1)  # (N,)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(-1)  # (M,)
    union = area_a[:, None] + area_b[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def best_iou(truth: Tensor, boxes: Tensor, scores: Tensor, threshold: float) -> Tensor:
    """For each true box (N, 4), its highest IoU with a box scoring >= threshold: (N,), 0 if none."""
    kept = boxes[scores >= threshold]
    if len(truth) == 0 or len(kept) == 0:
        return torch.zeros(len(truth))
    return pairwise_iou(truth.float(), kept.float()).max(dim=1).values


def matched_at(truth: Tensor, boxes: Tensor, scores: Tensor, iou: float = 0.5) -> int:
    """Detections (M, 4) that match a distinct true box (N, 4) at IoU >= `iou`, greedy by score.

    Each detection, from the highest score down, takes the unmatched true box it overlaps
    most, if that overlap is at least `iou`; a second detection of a digit is unmatched.
    """
    if len(truth) == 0 or len(boxes) == 0:
        return 0
    overlaps = pairwise_iou(boxes[scores.argsort(descending=True)].float(), truth.float())
    taken = torch.zeros(len(truth), dtype=torch.bool)
    matched = 0
    for row in overlaps:  # (N,) for one detection
        row = row.masked_fill(taken, -1.0)
        best = int(row.argmax())
        if row[best] >= iou:
            taken[best] = True
            matched += 1
    return matched


def proposal_iou(truth: Tensor, proposals: Tensor, top: int) -> Tensor:
    """Each of the first `top` proposals (M, 4), its highest IoU with a true box (N, 4): (min(M, top),).

    0 for every proposal when there is no true box. The proposals come in the RPN's order
    (highest objectness first after NMS), so the first `top` are its best guesses.
    """
    kept = proposals[:top]
    if len(truth) == 0 or len(kept) == 0:
        return torch.zeros(len(kept))
    return pairwise_iou(kept.float(), truth.float()).max(dim=1).values


class DetectionScores:
    """Accumulates predictions against the truth over a test set; `compute()` gives the scores.

    Args:
        score_threshold: detections scoring below it do not count for mean_iou, recall_50,
            precision_50 and detections_per_image.
        rpn_top: proposals per image that rpn_mean_iou scores (official: 10).
    """

    def __init__(self, score_threshold: float = 0.5, rpn_top: int = 10) -> None:
        self.score_threshold = score_threshold
        self.rpn_top = rpn_top
        self._best: list[Tensor] = []
        self._proposal_iou: list[Tensor] = []
        self._images = 0
        self._detections = 0
        self._matched = 0
        self._map = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", backend="pycocotools")

    def update(
        self,
        preds: list[dict[str, Tensor]],
        targets: list[dict[str, Tensor]],
        proposals: list[Tensor] | None = None,
    ) -> None:
        """Add a batch: per image, predicted boxes/scores/labels, true boxes/labels, and the
        RPN's post-NMS proposals (M, 4) in its order (without them rpn_mean_iou is not scored)."""
        preds = [{k: v.detach().cpu() for k, v in p.items()} for p in preds]
        targets = [{k: v.detach().cpu() for k, v in t.items()} for t in targets]
        for p, t in zip(preds, targets, strict=True):
            self._best.append(best_iou(t["boxes"], p["boxes"], p["scores"], self.score_threshold))
            kept = p["scores"] >= self.score_threshold
            self._detections += int(kept.sum())
            self._matched += matched_at(t["boxes"], p["boxes"][kept], p["scores"][kept])
        self._images += len(preds)
        if proposals is not None:
            for box, t in zip(proposals, targets, strict=True):
                self._proposal_iou.append(
                    proposal_iou(t["boxes"], box.detach().cpu(), self.rpn_top)
                )
        self._map.update(preds, targets)

    def compute(self) -> dict[str, float]:
        """The scores over everything added (rpn_mean_iou only if proposals were given)."""
        best = torch.cat(self._best) if self._best else torch.zeros(0)
        coco: dict[str, Any] = self._map.compute()
        out = {}
        if self._proposal_iou:
            ious = torch.cat(self._proposal_iou)
            out["rpn_mean_iou"] = float(ious.mean()) if len(ious) else 0.0
        return {
            **out,
            "mean_iou": float(best.mean()) if len(best) else 0.0,
            "recall_50": float((best >= 0.5).float().mean()) if len(best) else 0.0,
            "precision_50": self._matched / self._detections if self._detections else 0.0,
            "detections_per_image": self._detections / max(self._images, 1),
            # COCO gives -1 when there is nothing to score; call that 0.
            "map": max(float(coco["map"]), 0.0),
            "map_50": max(float(coco["map_50"]), 0.0),
        }
