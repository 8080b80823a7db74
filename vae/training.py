"""The VAE's training loop: minibatch Adam on the negative (beta-weighted) ELBO, resumable.

Every epoch logs the ELBO, its reconstruction term and its KL (beta = 1, nats per image) as
running means over the epoch's minibatches (`train/`) and on the whole held-out set in eval
mode with a fixed noise draw (`test/`), plus whatever `evaluate_fn` returns on its epochs.
Logged steps count optimizer steps, as the checkpoints do, so a resumed run drops exactly
the lines the killed one logged after its last checkpoint. A checkpoint is written after
every epoch and every `Tracker` interval inside one, with the batch order, so a resumed run
draws exactly the batches the killed one would have.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from cc_bench.errors import check_batch_loss
from cc_bench.runtime import restore_rng_state, rng_state
from cc_bench.tracking import Tracker
from cc_bench.vae.elbo import elbo_terms
from cc_bench.vae.models import VAE

EvaluateFn = Callable[[int, bool, int], dict[str, float]]
"""(epoch, last, step) -> metrics to log at that epoch ({} on epochs without an evaluation);
`step` is the optimizer steps so far, what the values and pictures are logged at."""
TERMS = ("elbo", "recon", "kl")


def to_unit(images: Tensor) -> Tensor:
    """uint8 (B, H, W, 3) -> float (B, 3, H, W) in [0, 1], on the images' device."""
    return images.permute(0, 3, 1, 2).float().div_(255.0)


@torch.no_grad()
def held_out_elbo(
    vae: VAE, images: Tensor, seed: int = 0, batch_size: int = 256
) -> dict[str, float]:
    """Mean ELBO terms over `images` (uint8, on the device) in eval mode, one fixed z draw each."""
    vae.eval()
    gen = torch.Generator(device=images.device).manual_seed(seed)
    totals = dict.fromkeys(TERMS, 0.0)
    for start in range(0, len(images), batch_size):
        x = to_unit(images[start : start + batch_size])
        mu, logvar = vae.encode(x)
        eps = torch.randn(mu.shape, generator=gen, device=mu.device, dtype=mu.dtype)
        out = vae.decode(mu + eps * (0.5 * logvar).exp())
        terms = elbo_terms(out, x, mu, logvar, vae.likelihood, vae.log_sigma())
        for name in TERMS:
            totals[name] += float(terms[name].sum())
    return {name: value / len(images) for name, value in totals.items()}


@dataclass
class Fit:
    """The last epoch's logged metrics (train/, test/ and the evaluation's)."""

    metrics: dict[str, float]


def train_vae(
    vae: VAE,
    tracker: Tracker,
    *,
    train: Tensor,
    test: Tensor,
    epochs: int,
    batch_size: int,
    lr: float,
    beta: float,
    evaluate_fn: EvaluateFn,
    desc: str,
) -> Fit:
    """Train `vae` on uint8 `train` images (N, H, W, 3) on its device; resume if checkpointed."""
    optimizer = torch.optim.Adam(vae.parameters(), lr=lr)
    n_train = len(train)
    n_batches = (n_train + batch_size - 1) // batch_size
    epoch, batch, order = 0, 0, None
    running: dict[str, float] = {}
    metrics: dict[str, float] = {}
    state = tracker.resume_state
    if state is not None:
        vae.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        restore_rng_state(state["rng"])
        epoch, batch, order = state["epoch"], state["batch"], state["order"]
        running, metrics = state["running"], state["metrics"]

    def checkpoint() -> None:
        tracker.save_checkpoint(
            {
                "model": vae.state_dict(),
                "optimizer": optimizer.state_dict(),
                "rng": rng_state(),
                "epoch": epoch,
                "batch": batch,
                "order": order,
                "running": running,
                "metrics": metrics,
            },
            step=epoch * n_batches + batch,
        )

    bar = tracker.progress(epochs, desc=desc, initial=epoch)
    while epoch < epochs:
        if order is None:
            order = torch.randperm(n_train)
        vae.train()
        while batch < n_batches:
            idx = order[batch * batch_size : (batch + 1) * batch_size].to(train.device)
            terms = vae(to_unit(train[idx]))
            loss = -(terms["recon"] - beta * terms["kl"]).mean()
            loss_value = float(loss.detach())
            check_batch_loss(loss_value, epoch, batch, n_batches)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            vae.clamp_scale_()  # projected: the scale's floor holds for the parameter too
            sums = {name: float(terms[name].detach().sum()) for name in TERMS}
            for name, value in {
                **sums,
                "loss": loss_value * len(idx),
                "n": len(idx),
            }.items():
                running[name] = running.get(name, 0.0) + value
            batch += 1
            if tracker.checkpoint_due() and batch < n_batches:
                checkpoint()
        epoch, batch, order = epoch + 1, 0, None
        seen = running.pop("n")
        metrics = {"epoch": epoch, **{f"train/{k}": v / seen for k, v in running.items()}}
        metrics.update({f"test/{k}": v for k, v in held_out_elbo(vae, test).items()})
        if vae.likelihood == "gaussian":
            metrics["train/sigma"] = float(vae.log_sigma().detach().exp())
        metrics.update(evaluate_fn(epoch, epoch == epochs, epoch * n_batches))
        tracker.log(metrics, step=epoch * n_batches)
        running = {}
        checkpoint()
        bar.update(1)
        bar.set_postfix({"test/elbo": f"{metrics['test/elbo']:.1f}"})
    bar.close()
    return Fit(metrics)
