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
from cc_bench.runtime import (
    conv_layer,
    resolve_device,
    restore_rng_state,
    rng_state,
    seed_everything,
)
from cc_bench.toy.configs import ClassificationConfig
from cc_bench.toy.models import CoordConvClassifier, DeconvClassifier
from cc_bench.tracking import Tracker


def build_model(cfg: ClassificationConfig) -> nn.Module:
    """The deconv baseline for `conv`, the paper's CoordConv model for `coordconv`."""
    if cfg.conv == "conv":
        return DeconvClassifier(width=cfg.deconv_width, kernel_size=cfg.deconv_kernel)
    return CoordConvClassifier(conv_layer=conv_layer(cfg), widths=cfg.widths)


@torch.no_grad()
def evaluate(
    model: nn.Module, coords: Tensor, target: Tensor, batch_size: int = 512
) -> tuple[float, float]:
    """Accuracy (argmax pixel == target) and mean cross-entropy over a whole split."""
    model.eval()
    correct, loss = 0, 0.0
    for start in range(0, len(target), batch_size):
        logits = model(coords[start : start + batch_size]).flatten(1)  # (B, 4096)
        y = target[start : start + batch_size]
        loss += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
    return correct / len(target), loss / len(target)


def run(cfg: ClassificationConfig, tracker: Tracker) -> dict[str, Any]:
    """Train, evaluate every epoch, checkpoint every epoch and every 60 s; the final metrics."""
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
    n_train = len(train_idx)
    n_batches = (n_train + cfg.batch_size - 1) // cfg.batch_size

    epoch, batch, order = 0, 0, None
    running = {"loss": 0.0, "correct": 0, "seen": 0}
    time_to_perfect: float | None = None
    state = tracker.resume_state
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        restore_rng_state(state["rng"])
        epoch, batch, order = state["epoch"], state["batch"], state["order"]
        running, time_to_perfect = state["running"], state["time_to_perfect_s"]

    def checkpoint() -> None:
        tracker.save_checkpoint(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "rng": rng_state(),
                "epoch": epoch,
                "batch": batch,
                "order": order,
                "running": running,
                "time_to_perfect_s": time_to_perfect,
            },
            step=epoch * n_batches + batch,
        )

    metrics: dict[str, float] = {}
    bar = tracker.progress(cfg.epochs, desc=f"toy.classification {cfg.conv}", initial=epoch)
    while epoch < cfg.epochs:
        if order is None:
            order = train_idx[torch.randperm(n_train)]
        model.train()
        while batch < n_batches:
            idx = order[batch * cfg.batch_size : (batch + 1) * cfg.batch_size].to(device)
            logits = model(coords[idx]).flatten(1)  # (B, 4096)
            loss = F.cross_entropy(logits, target[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            running["loss"] += loss.item() * len(idx)
            running["correct"] += (logits.argmax(1) == target[idx]).sum().item()
            running["seen"] += len(idx)
            batch += 1
            if tracker.checkpoint_due() and batch < n_batches:
                checkpoint()
        test_acc, test_loss = evaluate(
            model, coords[test_idx.to(device)], target[test_idx.to(device)]
        )
        epoch, batch, order = epoch + 1, 0, None
        if test_acc == 1.0 and time_to_perfect is None:
            time_to_perfect = round(tracker.elapsed_s, 3)
        metrics = {
            "train/loss": running["loss"] / running["seen"],
            "train/acc": running["correct"] / running["seen"],
            "test/loss": test_loss,
            "test/acc": test_acc,
        }
        tracker.log(metrics, step=epoch)
        running = {"loss": 0.0, "correct": 0, "seen": 0}
        checkpoint()
        bar.update(1)
        bar.set_postfix(test_acc=f"{test_acc:.3f}")
    bar.close()

    return {
        "train_acc": metrics["train/acc"],
        "test_acc": metrics["test/acc"],
        "train_loss": metrics["train/loss"],
        "test_loss": metrics["test/loss"],
        "params": sum(p.numel() for p in model.parameters()),
        "wall_s": round(tracker.elapsed_s, 3),
        "time_to_perfect_s": time_to_perfect,
    }
