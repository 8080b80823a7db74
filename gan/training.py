"""The GAN training loop both GAN benchmarks share: the paper's DCGAN-like step (section 5).

`train_gan` trains the generator and discriminator of `cc_bench.nets` on uint8 images held on
the device (converted per batch there), logs the losses and D's outputs as means over windows
of `log_every` iterations, calls the benchmark's `evaluate` every `eval_every` epochs, and
checkpoints both networks, both optimizers, the RNG state, the fixed latents and the place in
the epoch, so a killed run ends where an uninterrupted one ends. `gan.sort_of_clevr` and
`gan.image_folder` differ only in their data and their `evaluate`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cc_bench.errors import NonFiniteLossError
from cc_bench.gan.configs import GanConfig
from cc_bench.nets import build_discriminator, build_generator, count_params
from cc_bench.runtime import restore_rng_state, rng_state
from cc_bench.tracking import Tracker

EvaluateFn = Callable[[nn.Module, Tensor, Tensor, int], dict[str, float]]
"""(generator, fixed z (N, z_dim), latent pairs (2, K, z_dim), step) -> the summary's
metrics; it logs and draws what it wants itself."""
_STATS = ("losses/d_loss", "losses/g_loss", "train/d_real", "train/d_fake")


def sides(cfg: GanConfig) -> tuple[str, str]:
    """The generator's and the discriminator's kind, `same` resolved to `conv`."""
    return cfg.conv_at("g_conv"), cfg.conv_at("d_conv")


def to_model_input(batch: Tensor) -> Tensor:
    """uint8 (B, H, W, 3) -> float (B, 3, H, W) in [-1, 1], channels-last in memory."""
    return batch.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def uniform_z(n: int, z_dim: int, device: torch.device, generator: Any = None) -> Tensor:
    """z uniform in [-1, 1]: (n, z_dim)."""
    return torch.rand(n, z_dim, device=device, generator=generator) * 2 - 1


def train_step(
    g: nn.Module,
    d: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    real: Tensor,
    z: Tensor,
) -> Tensor:
    """One DCGAN step: D on real and fake, then G with the non-saturating loss.

    Returns (4,) detached: D's loss, G's loss, mean D(x) and mean D(G(z)).
    """
    fake = g(z)  # (B, 3, H, W)
    d_real, d_fake = d(real), d(fake.detach())  # (B, 1) logits each
    loss_d = F.binary_cross_entropy_with_logits(
        d_real, torch.ones_like(d_real)
    ) + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    d_out = d(fake)
    loss_g = F.binary_cross_entropy_with_logits(d_out, torch.ones_like(d_out))
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    with torch.no_grad():
        return torch.stack([loss_d, loss_g, d_real.sigmoid().mean(), d_fake.sigmoid().mean()])


def train_gan(
    cfg: GanConfig, tracker: Tracker, data: Tensor, evaluate: EvaluateFn, title: str
) -> dict[str, Any]:
    """Train G and D on uint8 `data` (N, H, W, 3) on the device.

    Returns the last evaluation's metrics, the last log window's losses and D outputs,
    parameter counts, training images per second (evaluations excluded) and wall seconds.
    """
    device = data.device
    g_kind, d_kind = sides(cfg)
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    g = build_generator(g_kind, cfg.z_dim, width=cfg.width, with_r=cfg.with_r)
    d = build_discriminator(d_kind, width=cfg.width, with_r=cfg.with_r)
    g.to(device, memory_format=fmt)
    d.to(device, memory_format=fmt)
    betas = (cfg.beta1, cfg.beta2)
    opt_g = torch.optim.Adam(g.parameters(), lr=cfg.lr_g, betas=betas)
    opt_d = torch.optim.Adam(d.parameters(), lr=cfg.lr_d, betas=betas)
    # The fixed latents come from their own seeded stream: the same for conv and CoordConv.
    stream = torch.Generator().manual_seed(1_000_003 + cfg.seed)
    fixed_z = uniform_z(cfg.n_samples, cfg.z_dim, torch.device("cpu"), stream).to(device)
    pairs = uniform_z(2 * cfg.n_pairs, cfg.z_dim, torch.device("cpu"), stream).to(device)
    pairs = pairs.view(2, cfg.n_pairs, cfg.z_dim)

    n = len(data)
    batch_size = min(cfg.batch_size, n)
    n_batches = n // batch_size
    epoch, batch, order = 0, 0, None
    # The running sums of the log window stay on the device (no sync per step): (4,) in
    # _STATS order, and the window's iterations and seconds.
    acc = torch.zeros(len(_STATS), device=device)
    window = {"n": 0, "seconds": 0.0}
    totals = {"images": 0.0, "seconds": 0.0}
    last: dict[str, float] = {}
    evaluation: dict[str, float] = {}
    state = tracker.resume_state
    if state is not None:
        for module, key in ((g, "g"), (d, "d"), (opt_g, "opt_g"), (opt_d, "opt_d")):
            module.load_state_dict(state[key])
        fixed_z, pairs = state["fixed_z"].to(device), state["pairs"].to(device)
        epoch, batch, order = state["epoch"], state["batch"], state["order"]
        acc, window, totals = state["acc"].to(device), state["window"], state["totals"]
        last, evaluation = state["last"], state["evaluation"]
        restore_rng_state(state["rng"])
    tick = time.perf_counter()

    def checkpoint() -> None:
        nonlocal tick
        window["seconds"] += time.perf_counter() - tick
        tracker.save_checkpoint(
            {
                **{"g": g.state_dict(), "d": d.state_dict()},
                **{"opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict()},
                **{"fixed_z": fixed_z.cpu(), "pairs": pairs.cpu(), "rng": rng_state()},
                **{"epoch": epoch, "batch": batch, "order": order},
                **{"acc": acc.cpu(), "window": window, "totals": totals},
                **{"last": last, "evaluation": evaluation},
            },
            step=epoch * n_batches + batch,
        )
        tick = time.perf_counter()

    def flush(step: int) -> None:
        nonlocal acc, window, last, tick
        if window["n"] == 0:
            return
        stats = (acc / window["n"]).tolist()  # the one sync of the window
        seconds = window["seconds"] + time.perf_counter() - tick
        last = dict(zip(_STATS, stats, strict=True))
        last["perf/images_per_s"] = window["n"] * batch_size / max(seconds, 1e-9)
        totals["images"] += window["n"] * batch_size
        totals["seconds"] += seconds
        tracker.log({**last, "train/epoch": step / n_batches}, step=step)
        acc = torch.zeros_like(acc)
        window = {"n": 0, "seconds": 0.0}
        tick = time.perf_counter()

    def finite_or_fail(step: int) -> None:
        """End the run if a loss of the window so far is NaN or infinite (one sync; the
        window's log line checks the rest)."""
        if window["n"] and not bool(torch.isfinite(acc[:2]).all()):
            sums = zip(_STATS[:2], acc[:2].tolist(), strict=True)
            name, value = next((k, v) for k, v in sums if not math.isfinite(v))
            first = step - window["n"] + 1
            raise NonFiniteLossError(f"{name} (in iterations {first} to {step})", value, step)

    bar = tracker.progress(cfg.epochs, desc=title, initial=epoch)
    while epoch < cfg.epochs:
        if order is None:
            order = torch.randperm(n)
        g.train()
        d.train()
        while batch < n_batches:
            idx = order[batch * batch_size : (batch + 1) * batch_size].to(device)
            real = to_model_input(data[idx]).contiguous(memory_format=fmt)  # (B, 3, H, W)
            acc += train_step(g, d, opt_g, opt_d, real, uniform_z(batch_size, cfg.z_dim, device))
            window["n"] += 1
            batch += 1
            step = epoch * n_batches + batch
            if step % cfg.log_every == 0:
                flush(step)
            if tracker.checkpoint_due() and batch < n_batches:
                finite_or_fail(step)  # no checkpoint of diverged weights to resume from
                checkpoint()
        epoch, batch, order = epoch + 1, 0, None
        step = epoch * n_batches
        flush(step)
        if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
            evaluation = evaluate(g, fixed_z, pairs, step)
        tick = time.perf_counter()  # the evaluation is not training time
        checkpoint()
        bar.update(1)
        bar.set_postfix({k: f"{v:.3f}" for k, v in evaluation.items() if k.endswith("_frac")})
    bar.close()

    return {
        **evaluation,
        "d_loss": last.get("losses/d_loss", float("nan")),
        "g_loss": last.get("losses/g_loss", float("nan")),
        "d_real": last.get("train/d_real", float("nan")),
        "d_fake": last.get("train/d_fake", float("nan")),
        "params_g": count_params(g),
        "params_d": count_params(d),
        "images_per_s": totals["images"] / max(totals["seconds"], 1e-9),
        "wall_s": round(tracker.elapsed_s, 3),
    }
