"""Coordinate regression on Not-so-CLEVR (Liu et al. 2018, section 4).

The one-hot image goes in; the centre's coordinates (i, j) / 64 come out, trained with mean
squared error. `conv` is one of the paper's conv baselines (`RegressionConfig.baseline`),
`coordconv` the paper's CoordConv regressor (no activations, a global max-pool). Accuracy
counts an example right when both rounded coordinates are exactly right.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cc_bench.envs.not_so_clevr import CANVAS_SIZE, load_not_so_clevr
from cc_bench.runtime import conv_layer, resolve_device, seed_everything
from cc_bench.toy.configs import RegressionConfig
from cc_bench.toy.models import ConvRegressor, CoordConvRegressor, GapConvRegressor
from cc_bench.toy.pictures import regression_figure
from cc_bench.toy.training import summarize, train_toy
from cc_bench.tracking import Tracker


def baseline_for(cfg: RegressionConfig) -> str:
    """`dense` or `gap`: `auto` is the network the paper used on the config's split
    (`RegressionConfig.resolve_auto`)."""
    return cfg.resolve().baseline


def build_model(cfg: RegressionConfig) -> nn.Module:
    """A conv baseline for `conv`, the paper's CoordConv regressor for `coordconv`."""
    if cfg.conv == "coordconv":
        return CoordConvRegressor(conv_layer=conv_layer(cfg), width=cfg.width, init=cfg.init)
    cls = GapConvRegressor if baseline_for(cfg) == "gap" else ConvRegressor
    return cls(width=cfg.width)


def loss_fn(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared error on coordinate / 64."""
    return F.mse_loss(pred, target)


def score_fn(pred: Tensor, target: Tensor) -> dict[str, Tensor]:
    """Exact accuracy of the rounded coordinates, squared error, and mean absolute pixel error."""
    px_pred, px_true = pred * CANVAS_SIZE, target * CANVAS_SIZE  # (B, 2) in pixels
    return {
        "acc": (px_pred.round() == px_true.round()).all(1).float(),
        "mse": (pred - target).square().mean(1),
        "mean_abs_err_px": (px_pred - px_true).abs().mean(1),
    }


@torch.no_grad()
def _predict(model: nn.Module, images: Tensor, batch_size: int = 256) -> Tensor:
    model.eval()
    parts = [model(images[k : k + batch_size]) for k in range(0, len(images), batch_size)]
    return torch.cat(parts) * CANVAS_SIZE  # (N, 2) in pixels


def run(cfg: RegressionConfig, tracker: Tracker) -> dict[str, Any]:
    """Train, evaluating every epoch; save the predicted points over the canvas; final metrics."""
    cfg = cfg.resolve()  # per-conv defaults for the fields left at 0
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    data = load_not_so_clevr()
    images = data.pixel.to(device)  # (N, 1, 64, 64)
    model = build_model(cfg).to(device)
    result, train_idx, test_idx = train_toy(
        cfg,
        tracker,
        model,
        images,
        (data.coords.float() / CANVAS_SIZE).to(device),  # (N, 2)
        loss_fn=loss_fn,
        score_fn=score_fn,
        perfect=lambda m: m["acc"] == 1.0,
        name="toy.regression",
    )
    pred = _predict(model, images).cpu().numpy()
    true = data.coords.numpy()
    title = f"toy.regression {cfg.conv} {cfg.split} seed {cfg.seed}"
    figure = regression_figure(
        (true[train_idx], pred[train_idx]), (true[test_idx], pred[test_idx]), title
    )
    tracker.log_image("test/points", figure, step=cfg.epochs)
    summary = summarize(result, model, tracker, ("acc",))
    m = result.metrics
    summary.update(test_mse=m["test/mse"], test_mean_abs_err_px=m["test/mean_abs_err_px"])
    return summary
