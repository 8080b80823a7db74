"""Configs of the toy coordinate tasks (paper sections 3 and 4). No torch here: `--help` is fast."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from cc_bench.config import BenchConfig, bounded
from cc_bench.errors import UserError


@dataclass(frozen=True)
class ToyConfig(BenchConfig):
    """What every toy task has: the Not-so-CLEVR split and the training budget."""

    split: Literal["uniform", "quadrant"] = "uniform"
    """`uniform`: a seeded random split; `quadrant`: the bottom-right quadrant (i, j > 32) is held out."""
    test_fraction: float = bounded(0.2, gt=0.0, lt=1.0)
    """Share of the examples held out by the uniform split (the paper's text: 0.2; its code: 0.25)."""
    epochs: int = bounded(0, ge=0)
    """Training epochs; 0 picks the model's default budget (the defaults are in --help's header)."""
    batch_size: int = bounded(0, ge=0)
    """Minibatch size; 0 picks the model's default."""
    lr: float = bounded(0.0, ge=0.0)
    """Adam learning rate; 0 picks the model's default."""
    weight_decay: float = bounded(0.0, ge=0.0)
    """L2 penalty (Adam's weight_decay)."""
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    """`cosine`: anneal the learning rate to 0 over the run, step by step; `constant`: keep it."""
    max_train_examples: int = bounded(0, ge=0)
    """Train on only the first N examples of the training split (0: all); for quick smoke runs."""


@dataclass(frozen=True)
class _CoordinateToImage(ToyConfig):
    """The models that map coordinates to an image: the deconv baseline and CoordConv's 1x1 convs."""

    deconv_width: int = bounded(1, ge=1)
    """Channel multiplier m of the deconv baseline: 64m, 64m, 64m, 32m, 32m, 1 channels."""
    deconv_kernel: int = bounded(3, ge=2, le=4)
    """Kernel size fs of the deconv baseline's transposed convs (the paper sweeps 2..4)."""
    widths: tuple[int, ...] = (32, 32, 64, 64)
    """Hidden 1x1 conv widths of the CoordConv model (the paper: 32, 32, 64, 64 -> 7,553 parameters)."""
    init: Literal["offset", "torch"] = "offset"
    """CoordConv model's first layer at the start: `offset` (its weights on the centre are the
    negatives of those on the pixel's own i, j, so it starts reading pixel - centre) or
    `torch` (PyTorch's default; on the quadrant split a third of the seeds end a pixel off)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.widths or min(self.widths) < 1:
            raise UserError(
                f"invalid widths={self.widths!r}: must be one or more positive integers"
            )


@dataclass(frozen=True)
class ClassificationConfig(_CoordinateToImage):
    """Supervised coordinate classification: (i, j) in, a softmax over the 64x64 pixels out.

    Defaults when left at 0: coordconv 1 epoch, batch 16, lr 0.005; conv 12 epochs, batch 32,
    lr 0.01 (both with the cosine schedule).
    """

    conv_defaults = {
        "coordconv": {"epochs": 1, "batch_size": 16, "lr": 0.005},
        "conv": {"epochs": 12, "batch_size": 32, "lr": 0.01},
    }


@dataclass(frozen=True)
class RenderingConfig(_CoordinateToImage):
    """Coordinate rendering: (i, j) in, the 9x9 square out, per-pixel sigmoid cross-entropy.

    Defaults when left at 0: coordconv 2 epochs, batch 16, lr 0.005; conv 12 epochs, batch 32,
    lr 0.01 (both with the cosine schedule).
    """

    link: Literal["teacher", "onehot", "softmax"] = "teacher"
    """How the CoordConv model's painter reads the classification stage: `teacher` (trained on
    the true centre's one-hot, evaluated on the argmax's: the stages trained separately),
    `onehot` (the argmax, straight-through gradient) or `softmax` (the paper's end-to-end model)."""
    aux_weight: float = bounded(1.0, ge=0.0)
    """Weight of the classification stage's own cross-entropy (the centre pixel) in the loss."""
    painter_width: int = bounded(1, ge=1)
    """Channel multiplier m of the CoordConv painter: 8m, 8m, 16m, 16m, 1 channels."""
    painter_kernel: int = bounded(3, ge=1)
    """Kernel size fs of the painter's five convs."""
    painter_init: Literal["prior", "torch"] = "prior"
    """The painter at the start: `prior` (He-normal weights as in the paper's code, zero biases,
    the last bias at the log-odds of a pixel being in the square, 81/4096) or `torch`
    (PyTorch's default: on some seeds it settles on painting nothing, or misses the corners)."""

    conv_defaults = {
        "coordconv": {"epochs": 2, "batch_size": 16, "lr": 0.005},
        "conv": {"epochs": 12, "batch_size": 32, "lr": 0.01},
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.conv == "coordconv" and self.link == "teacher" and self.aux_weight == 0:
            raise UserError(
                "invalid aux_weight=0 with link='teacher': the classification stage learns "
                "only from its own cross-entropy there; give aux_weight > 0"
            )


@dataclass(frozen=True)
class RegressionConfig(ToyConfig):
    """Coordinate regression: the one-hot image in, (i, j) / 64 out, mean squared error.

    Defaults when left at 0: coordconv 3 epochs, batch 32, lr 0.01 (the paper's), width 8;
    conv 8 epochs, batch 32, lr 0.001, width 16 (both with the cosine schedule).
    """

    baseline: Literal["auto", "dense", "gap"] = "auto"
    """The conv baseline: `dense` (4 convs, 3 max-pools, dense 64, 2: the paper's uniform-split
    network), `gap` (nine convs, global average pool: its quadrant-split network), `auto`
    (the one the paper used on this split)."""
    width: int = bounded(0, ge=0)
    """Conv width of the model (0: the paper's: 16 for the baselines, 8 for CoordConv)."""
    init: Literal["identity", "torch"] = "identity"
    """CoordConv regressor's initialisation: `identity` starts it as "output = the one-hot
    peak" (identity layers, zero coordinate weights) so the max-pool's gradient reaches the
    hot pixel; `torch` is PyTorch's default, with which it usually learns only the mean."""

    conv_defaults = {
        "coordconv": {"epochs": 3, "batch_size": 32, "lr": 0.01, "width": 8},
        "conv": {"epochs": 8, "batch_size": 32, "lr": 0.001, "width": 16},
    }

    def resolve_auto(self) -> dict[str, Any]:
        """`baseline="auto"`: the network the paper used on this split (`gap` on the quadrant
        split, `dense` on the uniform one)."""
        if self.baseline != "auto":
            return {}
        return {"baseline": "gap" if self.split == "quadrant" else "dense"}
