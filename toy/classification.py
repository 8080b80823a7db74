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

from cc_bench.envs.not_so_clevr import load_not_so_clevr
from cc_bench.runtime import conv_layer, resolve_device, seed_everything
from cc_bench.toy.configs import ClassificationConfig
from cc_bench.toy.models import CoordConvClassifier, DeconvClassifier
from cc_bench.toy.pictures import classification_figure
from cc_bench.toy.training import pick_examples, summarize, train_toy
from cc_bench.tracking import Tracker


def build_model(cfg: ClassificationConfig) -> nn.Module:
    """The deconv baseline for `conv`, the paper's CoordConv model for `coordconv`."""
    if cfg.conv == "conv":
        return DeconvClassifier(width=cfg.deconv_width, kernel_size=cfg.deconv_kernel)
    return CoordConvClassifier(conv_layer=conv_layer(cfg), widths=cfg.widths, init=cfg.init)


def loss_fn(logits: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy of the softmax over the 4,096 pixels."""
    return F.cross_entropy(logits.flatten(1), target)  # (B, 4096) vs (B,)


def score_fn(logits: Tensor, target: Tensor) -> dict[str, Tensor]:
    """Accuracy: the argmax pixel is the target pixel."""
    return {"acc": (logits.flatten(1).argmax(1) == target).float()}


def run(cfg: ClassificationConfig, tracker: Tracker) -> dict[str, Any]:
    """Train, evaluating every epoch; save a picture of test predictions; the final metrics."""
    cfg = cfg.resolve()  # per-conv defaults for the fields left at 0
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    data = load_not_so_clevr()
    coords = data.coords.float().to(device)  # (N, 2) centres in pixels
    model = build_model(cfg).to(device)
    result, _, test_idx = train_toy(
        cfg,
        tracker,
        model,
        coords,
        data.target.to(device),  # (N,) flat pixel index
        loss_fn=loss_fn,
        score_fn=score_fn,
        perfect=lambda m: m["acc"] == 1.0,
        name="toy.classification",
    )
    shown = pick_examples(test_idx)
    model.eval()
    with torch.no_grad():
        logits = model(coords[shown.to(device)])[:, 0].float().cpu().numpy()  # (K, 64, 64)
    title = f"toy.classification {cfg.conv} {cfg.split} seed {cfg.seed}: test examples"
    figure = classification_figure(data.coords[shown].numpy(), logits, title)
    tracker.log_image("test/predictions", figure, step=cfg.epochs)
    return summarize(result, model, tracker, ("acc",))
