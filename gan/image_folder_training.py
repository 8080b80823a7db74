"""The training loop of `gan.image_folder`: `gan.sort_of_clevr`'s step over a folder's images.

The step (`train_step`: D on real and fake, then G with the non-saturating loss), the
networks (`cc_bench.nets`), the latents and the optimizers are `gan.sort_of_clevr`'s; this
loop only feeds it another data tensor and calls another evaluation. Losses and D's outputs
are logged as means over windows of `log_every` iterations (and at each epoch's end); the
checkpoint (after every epoch and every `Tracker`
interval inside one) holds both networks, both optimizers, the RNG state, the fixed latents
and the place in the epoch, so a killed run ends where an uninterrupted one ends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from cc_bench.gan.configs import GanConfig
from cc_bench.gan.sort_of_clevr import sides, to_model_input, train_step, uniform_z
from cc_bench.nets import build_discriminator, build_generator, count_params
from cc_bench.runtime import restore_rng_state, rng_state
from cc_bench.tracking import Tracker

EvaluateFn = Callable[[nn.Module, Tensor, Tensor, int], dict[str, float]]
"""(generator, fixed z (N, z_dim), latent pairs (2, K, z_dim), step) -> metrics; it logs and
draws what it wants itself."""
_STATS = ("d_loss", "g_loss", "d_real", "d_fake")


def train_gan(
    cfg: GanConfig, tracker: Tracker, data: Tensor, evaluate: EvaluateFn, title: str
) -> dict[str, Any]:
    """Train G and D on uint8 `data` (N, H, W, 3) on the device; the last evaluation's metrics,
    the last log window's losses and D outputs, parameter counts, images per second and wall time."""
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
    stream = torch.Generator().manual_seed(1_000_003 + cfg.seed)  # as gan.sort_of_clevr's
    fixed_z = uniform_z(cfg.n_samples, cfg.z_dim, torch.device("cpu"), stream).to(device)
    pairs = uniform_z(2 * cfg.n_pairs, cfg.z_dim, torch.device("cpu"), stream).to(device)
    pairs = pairs.view(2, cfg.n_pairs, cfg.z_dim)

    n = len(data)
    batch_size = min(cfg.batch_size, n)
    n_batches = n // batch_size
    epoch, batch, order = 0, 0, None
    # the log window's sums, on the device (no sync a step), and its iterations
    acc, window = torch.zeros(len(_STATS), device=device), 0
    last: dict[str, float] = {}
    evaluation: dict[str, float] = {}
    state = tracker.resume_state
    if state is not None:
        for module, key in ((g, "g"), (d, "d"), (opt_g, "opt_g"), (opt_d, "opt_d")):
            module.load_state_dict(state[key])
        fixed_z, pairs = state["fixed_z"].to(device), state["pairs"].to(device)
        epoch, batch, order, acc = state["epoch"], state["batch"], state["order"], state["acc"]
        acc, window, last = acc.to(device), state["window"], state["last"]
        evaluation = state["evaluation"]
        restore_rng_state(state["rng"])

    def checkpoint() -> None:
        tracker.save_checkpoint(
            {
                **{"g": g.state_dict(), "d": d.state_dict()},
                **{"opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict()},
                **{"fixed_z": fixed_z.cpu(), "pairs": pairs.cpu(), "rng": rng_state()},
                **{"epoch": epoch, "batch": batch, "order": order},
                **{"acc": acc.cpu(), "window": window},
                **{"last": last, "evaluation": evaluation},
            },
            step=epoch * n_batches + batch,
        )

    def flush(step: int) -> None:
        nonlocal acc, window, last
        if window == 0:
            return
        last = dict(zip(_STATS, (acc / window).tolist(), strict=True))
        acc, window = torch.zeros_like(acc), 0
        logged = {f"losses/{k}" if "loss" in k else f"train/{k}": v for k, v in last.items()}
        tracker.log({**logged, "train/epoch": step / n_batches}, step=step)

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
            window += 1
            batch += 1
            if (epoch * n_batches + batch) % cfg.log_every == 0:
                flush(epoch * n_batches + batch)
            if tracker.checkpoint_due() and batch < n_batches:
                checkpoint()
        epoch, batch, order = epoch + 1, 0, None
        step = epoch * n_batches
        flush(step)
        if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
            evaluation = evaluate(g, fixed_z, pairs, step)
        checkpoint()
        bar.update(1)
    bar.close()
    seconds = max(tracker.elapsed_s, 1e-9)
    return {
        **evaluation,
        **last,
        "params_g": count_params(g),
        "params_d": count_params(d),
        "images_per_s": cfg.epochs * n_batches * batch_size / seconds,
        "wall_s": round(tracker.elapsed_s, 3),
    }
