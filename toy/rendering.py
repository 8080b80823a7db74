"""Coordinate rendering on Not-so-CLEVR (Liu et al. 2018, section 4).

The centre (i, j) goes in; the 9x9 square around it comes out, one sigmoid per pixel,
trained with per-pixel cross-entropy and scored by the IoU of the prediction thresholded at
0.5 with the true square. `conv` is the deconv baseline with one output channel per pixel;
`coordconv` is the paper's two-stage model: the classification stage puts a softmax over the
pixels, a painter of five small convs paints the square (see `RenderingConfig.link`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cc_bench.envs.not_so_clevr import CANVAS_SIZE, load_not_so_clevr
from cc_bench.runtime import conv_layer, resolve_device, seed_everything
from cc_bench.toy.configs import RenderingConfig
from cc_bench.toy.models import CoordConvRenderer, DeconvClassifier
from cc_bench.toy.pictures import rendering_figure
from cc_bench.toy.training import pick_examples, summarize, train_toy
from cc_bench.tracking import Tracker


def build_model(cfg: RenderingConfig) -> nn.Module:
    """The deconv baseline for `conv`, the paper's CoordConv renderer for `coordconv`."""
    if cfg.conv == "conv":
        return DeconvClassifier(width=cfg.deconv_width, kernel_size=cfg.deconv_kernel)
    return CoordConvRenderer(
        conv_layer=conv_layer(cfg),
        widths=cfg.widths,
        painter_width=cfg.painter_width,
        painter_kernel=cfg.painter_kernel,
        link=cfg.link,
        init=cfg.init,
        painter_init=cfg.painter_init,
    )


def square_centre(square: Tensor) -> Tensor:
    """The flat index i * 64 + j of each square's centre: (B, 1, 64, 64) -> (B,)."""
    pos = torch.arange(CANVAS_SIZE, device=square.device, dtype=square.dtype)
    area = square.sum((1, 2, 3))  # (B,)
    i = (square.sum((1, 3)) * pos).sum(1) / area  # mean row of the square's pixels
    j = (square.sum((1, 2)) * pos).sum(1) / area
    return (i.round() * CANVAS_SIZE + j.round()).long()


def iou(logits: Tensor, square: Tensor) -> Tensor:
    """IoU of (sigmoid > 0.5) with the true square, per example: (B,)."""
    pred, true = logits > 0, square > 0.5  # (B, 1, 64, 64) each
    inter = (pred & true).sum((1, 2, 3)).float()
    union = (pred | true).sum((1, 2, 3)).float()
    return inter / union.clamp_min(1)


def make_loss(aux_weight: float) -> Any:
    """Per-pixel sigmoid cross-entropy, plus the centre's cross-entropy for two-stage models."""

    def loss_fn(out: Tensor | tuple[Tensor, Tensor], square: Tensor) -> Tensor:
        if isinstance(out, tuple):
            logits, centre = out
            loss = F.binary_cross_entropy_with_logits(logits, square)
            if aux_weight:
                loss = loss + aux_weight * F.cross_entropy(centre.flatten(1), square_centre(square))
            return loss
        return F.binary_cross_entropy_with_logits(out, square)

    return loss_fn


def score_fn(out: Tensor | tuple[Tensor, Tensor], square: Tensor) -> dict[str, Tensor]:
    """IoU of the thresholded prediction with the true square."""
    logits = out[0] if isinstance(out, tuple) else out
    return {"iou": iou(logits, square)}


def run(cfg: RenderingConfig, tracker: Tracker) -> dict[str, Any]:
    """Train, evaluating every epoch; save a picture of test renderings; the final metrics."""
    cfg = cfg.resolve()  # per-conv defaults for the fields left at 0
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    data = load_not_so_clevr()
    coords = data.coords.float().to(device)  # (N, 2)
    model = build_model(cfg).to(device)
    result, _, test_idx = train_toy(
        cfg,
        tracker,
        model,
        coords,
        data.square.to(device),  # (N, 1, 64, 64)
        loss_fn=make_loss(cfg.aux_weight),
        score_fn=score_fn,
        perfect=lambda m: m["iou"] >= 0.99,
        name="toy.rendering",
    )
    shown = pick_examples(test_idx)
    model.eval()
    with torch.no_grad():
        out = model(coords[shown.to(device)])
        logits = out[0] if isinstance(out, tuple) else out
    probs = logits[:, 0].sigmoid().float().cpu().numpy()
    title = f"toy.rendering {cfg.conv} {cfg.split} seed {cfg.seed}: test examples"
    targets = data.square[shown, 0].numpy()
    figure = rendering_figure(data.coords[shown].numpy(), targets, probs, title)
    tracker.log_image("test/renderings", figure, step=cfg.epochs)
    return summarize(result, model, tracker, ("iou",))
