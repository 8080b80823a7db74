"""How well the RPN's anchors fit the true boxes: the share of digits an anchor can match.

Faster R-CNN's RPN learns from anchors: one whose IoU with a true box is at least 0.7 is a
positive, below 0.3 a negative. A digit whose best anchor overlaps it by less than 0.5 has
no good starting box (torchvision still gives it its best anchor as a low-quality match).
`anchor_match` measures both shares for a set of anchor sizes on the data's true boxes, with
the anchors torchvision's `AnchorGenerator` makes for the model's feature map.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def anchors_for(
    sizes: Sequence[int],
    aspect_ratios: Sequence[float],
    image_size: int,
    stride: int,
    shapes: str = "pairs",
) -> Tensor:
    """Every anchor (A, 4) xyxy of a square image, from the generator the model uses."""
    from torchvision.models.detection.image_list import ImageList

    from cc_bench.detection.models import anchor_generator

    generator = anchor_generator(shapes, sizes, aspect_ratios)
    side = image_size // stride
    images = ImageList(torch.zeros(1, 1, image_size, image_size), [(image_size, image_size)])
    return generator(images, [torch.zeros(1, 1, side, side)])[0]  # (side * side * k, 4)


def anchor_match(
    boxes: Tensor,
    sizes: Sequence[int],
    aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
    image_size: int = 64,
    stride: int = 4,
    shapes: str = "pairs",
) -> dict[str, float]:
    """For true boxes (N, 4) xyxy: the share with an anchor at IoU >= 0.7 (`at_70`), and the
    share with none at IoU >= 0.5 (`none_50`).

    Args:
        boxes: the true boxes of any number of images of side `image_size`, concatenated.
        sizes, aspect_ratios, shapes: the anchors, as `models.anchor_generator` takes them.
        stride: the feature map's stride (4 for the official backbone's two 2x2 pools).
    """
    from cc_bench.detection.metrics import pairwise_iou

    if len(boxes) == 0:
        return {"at_70": 0.0, "none_50": 0.0}
    best = pairwise_iou(
        boxes.float(), anchors_for(sizes, aspect_ratios, image_size, stride, shapes)
    )
    best = best.max(dim=1).values  # (N,)
    return {
        "at_70": float((best >= 0.7).float().mean()),
        "none_50": float((best < 0.5).float().mean()),
    }


def box_statistics(boxes: Tensor) -> dict[str, float]:
    """Mean width and height, and quartiles of sqrt(area), of true boxes (N, 4) xyxy."""
    sides = boxes[:, 2:] - boxes[:, :2]  # (N, 2) width, height
    root = sides.prod(dim=1).sqrt()
    return {
        "mean_width": float(sides[:, 0].mean()),
        "mean_height": float(sides[:, 1].mean()),
        **{f"sqrt_area_{int(q * 100)}": float(root.quantile(q)) for q in (0.25, 0.5, 0.75, 0.9)},
    }
