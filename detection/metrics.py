"""Detection scores: the paper's mean IoU, recall at IoU 0.5, and COCO mAP (torchmetrics).

`mean_iou` is the paper's measure (section 5): for each true digit, the IoU of the detection
that overlaps it most among those scoring at least the threshold (0 when there is none),
averaged over every true digit of the test set. It ignores classes, as the paper's
class-agnostic task does. `recall_50` is the share of true digits whose best IoU is at least
0.5. `map` and `map_50` are COCO's mean average precision (IoU 0.5:0.95, and 0.5) over all
detections, computed by torchmetrics' `MeanAveragePrecision` with the pycocotools backend
(offline); with 10 classes they are averaged over classes.
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


class DetectionScores:
    """Accumulates predictions against the truth over a test set; `compute()` gives the scores.

    Args:
        score_threshold: detections scoring below it do not count for mean_iou and recall_50.
    """

    def __init__(self, score_threshold: float = 0.5) -> None:
        self.score_threshold = score_threshold
        self._best: list[Tensor] = []
        self._map = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", backend="pycocotools")

    def update(self, preds: list[dict[str, Tensor]], targets: list[dict[str, Tensor]]) -> None:
        """Add a batch: per image, predicted boxes/scores/labels and true boxes/labels."""
        preds = [{k: v.detach().cpu() for k, v in p.items()} for p in preds]
        targets = [{k: v.detach().cpu() for k, v in t.items()} for t in targets]
        for p, t in zip(preds, targets, strict=True):
            self._best.append(best_iou(t["boxes"], p["boxes"], p["scores"], self.score_threshold))
        self._map.update(preds, targets)

    def compute(self) -> dict[str, float]:
        """mean_iou, recall_50, map, map_50 over everything added."""
        best = torch.cat(self._best) if self._best else torch.zeros(0)
        coco: dict[str, Any] = self._map.compute()
        return {
            "mean_iou": float(best.mean()) if len(best) else 0.0,
            "recall_50": float((best >= 0.5).float().mean()) if len(best) else 0.0,
            # COCO gives -1 when there is nothing to score; call that 0.
            "map": max(float(coco["map"]), 0.0),
            "map_50": max(float(coco["map_50"]), 0.0),
        }
