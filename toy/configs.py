"""Configs of the toy coordinate tasks (paper sections 3 and 4). No torch here: `--help` is fast."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cc_bench.config import BenchConfig, bounded
from cc_bench.errors import UserError


@dataclass(frozen=True)
class ClassificationConfig(BenchConfig):
    """Supervised coordinate classification: (i, j) in, a softmax over the 64x64 pixels out."""

    split: Literal["uniform", "quadrant"] = "uniform"
    """`uniform`: a seeded random split; `quadrant`: the bottom-right quadrant (i, j > 32) is held out."""
    test_fraction: float = bounded(0.2, gt=0.0, lt=1.0)
    """Share of the examples held out by the uniform split (the paper's text: 0.2; its code: 0.25)."""
    epochs: int = bounded(0, ge=0)
    """Training epochs; 0 picks the model's default budget (coordconv: 12, conv: 40)."""
    batch_size: int = bounded(0, ge=0)
    """Minibatch size; 0 picks the model's default (coordconv: 32, conv: 32)."""
    lr: float = bounded(0.0, ge=0.0)
    """Adam learning rate; 0 picks the model's default (coordconv: 0.005, conv: 0.002)."""
    weight_decay: float = bounded(0.0, ge=0.0)
    """L2 penalty (Adam's weight_decay)."""
    deconv_width: int = bounded(1, ge=1)
    """Channel multiplier m of the deconv baseline: 64m, 64m, 64m, 32m, 32m, 1 channels."""
    deconv_kernel: int = bounded(3, ge=2, le=4)
    """Kernel size fs of the deconv baseline's transposed convs (the paper sweeps 2..4)."""
    widths: tuple[int, ...] = (32, 32, 64, 64)
    """Hidden 1x1 conv widths of the CoordConv model (the paper: 32, 32, 64, 64 -> 7,553 parameters)."""
    max_train_examples: int = bounded(0, ge=0)
    """Train on only the first N examples of the training split (0: all); for quick smoke runs."""

    conv_defaults = {
        "coordconv": {"epochs": 12, "batch_size": 32, "lr": 0.005},
        "conv": {"epochs": 40, "batch_size": 32, "lr": 0.002},
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.widths or min(self.widths) < 1:
            raise UserError(
                f"invalid widths={self.widths!r}: must be one or more positive integers"
            )
