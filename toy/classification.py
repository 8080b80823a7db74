"""Supervised coordinate classification on Not-so-CLEVR (Liu et al. 2018, section 4).

The centre (i, j) goes in; a softmax over the 4,096 pixels of the 64x64 canvas comes out,
trained with cross-entropy against the pixel i * 64 + j. `conv` is the paper's deconv
baseline (six stride-2 transposed convs), `coordconv` the paper's CoordConv model (the
coordinates tiled over the canvas, then 1x1 convs that also see each pixel's own i, j).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cc_bench.envs.not_so_clevr import load_not_so_clevr, split_indices
from cc_bench.runtime import conv_layer, resolve_device, seed_everything
from cc_bench.toy.configs import ClassificationConfig
from cc_bench.toy.models import CoordConvClassifier, DeconvClassifier
from cc_bench.toy.training import fit
from cc_bench.tracking import Tracker


def build_model(cfg: ClassificationConfig) -> nn.Module:
    """The deconv baseline for `conv`, the paper's CoordConv model for `coordconv`."""
    if cfg.conv == "conv":
        return DeconvClassifier(width=cfg.deconv_width, kernel_size=cfg.deconv_kernel)
    return CoordConvClassifier(conv_layer=conv_layer(cfg), widths=cfg.widths)


def loss_fn(logits: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy of the softmax over the 4,096 pixels."""
    return F.cross_entropy(logits.flatten(1), target)  # (B, 4096) vs (B,)


def score_fn(logits: Tensor, target: Tensor) -> dict[str, Tensor]:
    """Accuracy: the argmax pixel is the target pixel."""
    return {"acc": (logits.flatten(1).argmax(1) == target).float()}


def run(cfg: ClassificationConfig, tracker: Tracker) -> dict[str, Any]:
    """Train and evaluate every epoch; the final metrics."""
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    data = load_not_so_clevr()
    train_idx, test_idx = split_indices(cfg.split, cfg.seed, cfg.test_fraction)
    if cfg.max_train_examples:
        train_idx = train_idx[: cfg.max_train_examples]
    coords = data.coords.float().to(device)  # (N, 2) centres in pixels
    target = data.target.to(device)  # (N,) flat pixel index
    model = build_model(cfg).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    result = fit(
        model,
        optimizer,
        tracker,
        train=(coords[train_idx], target[train_idx]),
        test=(coords[test_idx], target[test_idx]),
        loss_fn=loss_fn,
        score_fn=score_fn,
        perfect=lambda m: m["acc"] == 1.0,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        desc=f"toy.classification {cfg.conv} {cfg.split}",
    )
    m = result.metrics
    return {
        "train_acc": m["train/acc"],
        "test_acc": m["test/acc"],
        "train_loss": m["train/loss"],
        "test_loss": m["test/loss"],
        "params": sum(p.numel() for p in model.parameters()),
        "wall_s": round(tracker.elapsed_s, 3),
        "time_to_perfect_s": result.time_to_perfect_s,
    }
