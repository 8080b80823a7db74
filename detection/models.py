"""The Faster R-CNN of the MNIST-scatter benchmark, built from torchvision's parts (section 5).

torchvision's `FasterRCNN` wires everything; this module only makes the parts where CoordConv
can go, each taking a `conv_layer` (`nn.Conv2d` or `CoordConv2d`):

- the backbone, the official one: 5x5 conv 32, 2x2 max-pool, 5x5 conv 64, 2x2 max-pool (a
  stride-4 feature map with `out_channels`); CoordConv at its input sees the image's
  coordinates;
- the RPN head: torchvision's `RPNHead` with its 3x3 conv built by `conv_layer`, from the
  backbone's channels to `hidden` (official: 32; torchvision keeps the backbone's width), and
  its 1x1 box-regression conv built by `box_layer` (the official code's third CoordConv: it
  sees the feature map's coordinates on the canvas);
- the box head: a 3x3 conv on the 7x7 RoI-aligned features, then a fully connected layer;
  CoordConv there sees coordinates *within the RoI* (the pooled grid), not on the canvas.

The official code released only the region-proposal part, with CoordConv at the paper's
three places: the input, before the RPN's 3x3 conv and before its box regression; the rest
is torchvision's Faster R-CNN, and the box head is a fourth place (issue 12's).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.rpn import RPNHead
from torchvision.ops import MultiScaleRoIAlign

ConvLayer = Callable[..., nn.Conv2d]


class PairAnchors(AnchorGenerator):
    """The official code's anchors: every (height, width) pair of `sizes` at each location
    (15, 20, 25: 9 anchors from 15x15 to 25x25, aspect ratios 0.6 to 1.67), where
    torchvision's own are every size (sqrt of the area) with every aspect ratio."""

    def __init__(self, sizes: Sequence[int]) -> None:
        super().__init__(sizes=((1,),), aspect_ratios=((1.0,),))
        hw = torch.tensor([(h, w) for h in sizes for w in sizes], dtype=torch.float32)
        half = hw.flip(1) / 2  # (w/2, h/2)
        self.cell_anchors = [torch.cat([-half, half], dim=1)]  # xyxy about 0, not rounded

    def num_anchors_per_location(self) -> list[int]:
        return [len(c) for c in self.cell_anchors]


def anchor_generator(
    shapes: str, sizes: Sequence[int], aspect_ratios: Sequence[float]
) -> AnchorGenerator:
    """The RPN's anchors for one feature map: `pairs` (the official code's: every (height,
    width) pair of `sizes`) or `ratios` (torchvision's: every size with every aspect ratio)."""
    if shapes == "pairs":
        return PairAnchors(sizes)
    return AnchorGenerator(sizes=(tuple(sizes),), aspect_ratios=(tuple(aspect_ratios),))


class Backbone(nn.Sequential):
    """The official small backbone: two 5x5 convs with ReLU, each followed by a 2x2 max-pool.

    (B, C, H, W) -> (B, out_channels, H / 4, W / 4). `out_channels` is what FasterRCNN reads.
    """

    def __init__(
        self,
        in_channels: int = 1,
        widths: Sequence[int] = (32, 64),
        conv_layer: ConvLayer = nn.Conv2d,
    ) -> None:
        first, second = widths
        super().__init__(
            conv_layer(in_channels, first, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(first, second, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.out_channels = second


class ConvBoxHead(nn.Module):
    """The box head: a 3x3 conv on the pooled RoI, then a fully connected layer.

    (R, C, S, S) RoI features -> (R, representation), the input of `FastRCNNPredictor`.
    """

    def __init__(
        self,
        in_channels: int,
        roi_size: int,
        channels: int = 64,
        representation: int = 128,
        conv_layer: ConvLayer = nn.Conv2d,
    ) -> None:
        super().__init__()
        self.conv = conv_layer(in_channels, channels, kernel_size=3, padding=1)
        self.fc = nn.Linear(channels * roi_size * roi_size, representation)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.relu(self.conv(x))  # (R, channels, S, S)
        return torch.relu(self.fc(x.flatten(1)))  # (R, representation)


def rpn_head(
    in_channels: int,
    num_anchors: int,
    conv_layer: ConvLayer = nn.Conv2d,
    hidden: int = 32,
    box_layer: ConvLayer = nn.Conv2d,
) -> nn.Module:
    """torchvision's `RPNHead` whose 3x3 conv, `in_channels` -> `hidden`, is built by
    `conv_layer` and whose 1x1 box-regression conv, `hidden` -> 4 per anchor, by `box_layer`
    (torchvision's init for both: N(0, 0.01), zero bias); its 1x1 objectness conv reads
    `hidden`."""
    head = RPNHead(hidden, num_anchors)  # (B, hidden, H, W) -> scores and box deltas
    conv = conv_layer(in_channels, hidden, kernel_size=3, padding=1)
    box = box_layer(hidden, 4 * num_anchors, kernel_size=1)
    for layer in (conv, box):
        nn.init.normal_(layer.weight, std=0.01)
        nn.init.zeros_(layer.bias)
    head.conv[0][0] = conv  # the conv of its one Conv2dNormActivation (conv, ReLU)
    head.bbox_pred = box
    return head


def faster_rcnn(
    *,
    num_classes: int = 1,
    image_size: int = 64,
    image_mean: float = 0.0,
    image_std: float = 1.0,
    backbone_conv: ConvLayer = nn.Conv2d,
    rpn_conv: ConvLayer = nn.Conv2d,
    rpn_box_conv: ConvLayer = nn.Conv2d,
    box_conv: ConvLayer = nn.Conv2d,
    widths: Sequence[int] = (32, 64),
    anchor_sizes: Sequence[int] = (15, 20, 25),
    anchor_shapes: str = "pairs",
    aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
    rpn_hidden: int = 32,
    box_channels: int = 32,
    representation: int = 128,
    roi_size: int = 7,
    roi_sampling_ratio: int = 1,
    **kwargs: object,
) -> nn.Module:
    """torchvision's `FasterRCNN` from the parts above, for 1-channel images of `image_size`.

    Args:
        num_classes: object classes, without the background (1: class-agnostic).
        image_size: the images' side; FasterRCNN's min_size and max_size, so nothing is resized.
        image_mean, image_std: the data's pixel mean and std (FasterRCNN normalises with them).
        backbone_conv, rpn_conv, rpn_box_conv, box_conv: the conv class at each place
            CoordConv can go.
        rpn_hidden: channels of the RPN head's 3x3 conv (official: 32).
        kwargs: passed on to `FasterRCNN` (proposal counts, sampling, thresholds; the
            benchmark's come from its config: `cc_bench.detection.mnist_scatter.build_model`).
    """
    backbone = Backbone(1, widths, backbone_conv)
    # One feature map, 9 anchors at each location with the defaults (`anchor_generator`).
    anchors = anchor_generator(anchor_shapes, anchor_sizes, aspect_ratios)
    num_anchors = anchors.num_anchors_per_location()[0]
    return FasterRCNN(
        backbone,
        min_size=image_size,
        max_size=image_size,
        image_mean=[image_mean],
        image_std=[image_std],
        size_divisible=4,  # the backbone's stride: a batch is padded only to that
        rpn_anchor_generator=anchors,
        rpn_head=rpn_head(backbone.out_channels, num_anchors, rpn_conv, rpn_hidden, rpn_box_conv),
        box_roi_pool=MultiScaleRoIAlign(
            ["0"], output_size=roi_size, sampling_ratio=roi_sampling_ratio
        ),
        box_head=ConvBoxHead(
            backbone.out_channels, roi_size, box_channels, representation, box_conv
        ),
        box_predictor=FastRCNNPredictor(representation, num_classes + 1),
        **kwargs,
    )
