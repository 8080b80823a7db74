"""The supervised training loop the toy tasks share (paper sections 3 and 4).

Minibatch Adam over the training split, the whole test split evaluated after every epoch,
a checkpoint after every epoch and every 60 s inside one (with the batch order, so a resumed
run draws exactly the batches the killed one would have), and metrics logged through the
Tracker: `train/<score>` are running means over the epoch's minibatches, `test/<score>` are
computed on the whole test split in eval mode.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from cc_bench.envs.not_so_clevr import split_indices
from cc_bench.runtime import restore_rng_state, rng_state
from cc_bench.tracking import Tracker

LossFn = Callable[[Tensor, Tensor], Tensor]
"""(model output, target) -> the mean loss of the batch."""
ScoreFn = Callable[[Tensor, Tensor], dict[str, Tensor]]
"""(model output, target) -> per-example scores, each (B,), e.g. {"acc": correct.float()}."""


@dataclass
class Fit:
    """What the loop ends with: the last epoch's metrics, and when the test set was first perfect."""

    metrics: dict[str, float]
    time_to_perfect_s: float | None


@torch.no_grad()
def evaluate(
    model: nn.Module,
    inputs: Tensor,
    targets: Tensor,
    loss_fn: LossFn,
    score_fn: ScoreFn,
    batch_size: int = 256,
) -> dict[str, float]:
    """Mean loss and mean scores over a whole split, in eval mode."""
    model.eval()
    totals: dict[str, float] = {}
    for start in range(0, len(targets), batch_size):
        out = model(inputs[start : start + batch_size])
        y = targets[start : start + batch_size]
        batch = {
            "loss": loss_fn(out, y) * len(y),
            **{k: v.sum() for k, v in score_fn(out, y).items()},
        }
        for name, value in batch.items():
            totals[name] = totals.get(name, 0.0) + float(value)
    return {name: value / len(targets) for name, value in totals.items()}


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    tracker: Tracker,
    *,
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    loss_fn: LossFn,
    score_fn: ScoreFn,
    perfect: Callable[[dict[str, float]], bool],
    epochs: int,
    batch_size: int,
    desc: str,
    cosine: bool = False,
) -> Fit:
    """Train `model` for `epochs`, resuming from `tracker.resume_state` if there is one.

    Args:
        train, test: (inputs, targets) on the model's device.
        perfect: whether a test evaluation counts as perfect, for `time_to_perfect_s`.
        cosine: anneal the learning rate to 0 over the run with a cosine, step by step.
    """
    x_train, y_train = train
    n_train = len(y_train)
    n_batches = (n_train + batch_size - 1) // batch_size
    epoch, batch, order = 0, 0, None
    running: dict[str, float] = {}
    time_to_perfect: float | None = None
    total = max(1, epochs * n_batches)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        (lambda k: 0.5 * (1 + math.cos(math.pi * min(k, total) / total)))
        if cosine
        else (lambda k: 1.0),
    )
    state = tracker.resume_state
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        restore_rng_state(state["rng"])
        epoch, batch, order = state["epoch"], state["batch"], state["order"]
        running, time_to_perfect = state["running"], state["time_to_perfect_s"]
    # The last epoch's metrics: restored too, so a run killed after its final checkpoint
    # (while it draws or closes) resumes straight to its summary.
    metrics: dict[str, float] = state.get("metrics", {}) if state is not None else {}

    def checkpoint() -> None:
        tracker.save_checkpoint(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                "rng": rng_state(),
                "epoch": epoch,
                "batch": batch,
                "order": order,
                "running": running,
                "time_to_perfect_s": time_to_perfect,
                "metrics": metrics,
            },
            step=epoch,  # the unit `metrics.jsonl` counts in: whole epochs logged
        )

    bar = tracker.progress(epochs, desc=desc, initial=epoch)
    while epoch < epochs:
        if order is None:
            order = torch.randperm(n_train)
        model.train()
        while batch < n_batches:
            idx = order[batch * batch_size : (batch + 1) * batch_size].to(y_train.device)
            out = model(x_train[idx])
            loss = loss_fn(out, y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            with torch.no_grad():
                scores = {k: v.sum() for k, v in score_fn(out, y_train[idx]).items()}
            for name, value in {"loss": loss.detach() * len(idx), **scores, "n": len(idx)}.items():
                running[name] = running.get(name, 0.0) + float(value)
            batch += 1
            if tracker.checkpoint_due() and batch < n_batches:
                checkpoint()
        test_metrics = evaluate(model, *test, loss_fn, score_fn)
        epoch, batch, order = epoch + 1, 0, None
        if time_to_perfect is None and perfect(test_metrics):
            time_to_perfect = round(tracker.elapsed_s, 3)
        seen = running.pop("n")
        metrics = {f"train/{k}": v / seen for k, v in running.items()}
        metrics.update({f"test/{k}": v for k, v in test_metrics.items()})
        tracker.log(metrics, step=epoch)
        running = {}
        checkpoint()
        bar.update(1)
        bar.set_postfix({k: f"{v:.3f}" for k, v in metrics.items() if k.startswith("test/")})
    bar.close()
    return Fit(metrics, time_to_perfect)


def train_toy(
    cfg: Any,
    tracker: Tracker,
    model: nn.Module,
    inputs: Tensor,
    targets: Tensor,
    *,
    loss_fn: LossFn,
    score_fn: ScoreFn,
    perfect: Callable[[dict[str, float]], bool],
    name: str,
) -> tuple[Fit, Tensor, Tensor]:
    """Split the Not-so-CLEVR `inputs`/`targets` as `cfg` says and train `model` with Adam.

    Returns the fit and the (train, test) indices. `model`, `inputs` and `targets` must
    already be on the device.
    """
    train_idx, test_idx = split_indices(cfg.split, cfg.seed, cfg.test_fraction)
    if cfg.max_train_examples:
        train_idx = train_idx[: cfg.max_train_examples]
    # Channels-last 1x1 and 3x3 convs run 1.2-1.6x faster on CPU here (measured), same math.
    model.to(memory_format=torch.channels_last)
    # Denormal numbers (softmax tails, tiny gradients) made CPU steps 5-8x slower (measured on
    # toy.rendering); flushing them to zero changes nothing measurable in the results.
    torch.set_flush_denormal(True)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    device = targets.device
    result = fit(
        model,
        optimizer,
        tracker,
        train=(inputs[train_idx.to(device)], targets[train_idx.to(device)]),
        test=(inputs[test_idx.to(device)], targets[test_idx.to(device)]),
        loss_fn=loss_fn,
        score_fn=score_fn,
        perfect=perfect,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        desc=f"{name} {cfg.conv} {cfg.split}",
        cosine=cfg.lr_schedule == "cosine",
    )
    return result, train_idx, test_idx


def summarize(
    fit_result: Fit, model: nn.Module, tracker: Tracker, scores: tuple[str, ...]
) -> dict[str, Any]:
    """The flat summary: train_/test_ scores and losses, params, wall_s, time_to_perfect_s."""
    m = fit_result.metrics
    out: dict[str, Any] = {}
    for score in (*scores, "loss"):
        out[f"train_{score}"] = m[f"train/{score}"]
        out[f"test_{score}"] = m[f"test/{score}"]
    out["params"] = sum(p.numel() for p in model.parameters())
    out["wall_s"] = round(tracker.elapsed_s, 3)
    out["time_to_perfect_s"] = fit_result.time_to_perfect_s
    return out


def pick_examples(test_idx: Tensor, k: int = 6) -> Tensor:
    """`k` test examples spread over the test split, the same for every run of a split."""
    positions = torch.linspace(0, len(test_idx) - 1, k).round().long()
    return test_idx[positions]
