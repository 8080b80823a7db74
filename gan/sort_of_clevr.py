"""`gan.sort_of_clevr`: DCGAN-like GANs on Sort-of-CLEVR, conv against CoordConv (section 5).

The paper showed pictures: conv GANs whose objects stick to the canvas, fade in and out and
teleport along latent interpolations; CoordConv GANs whose objects move smoothly. This run
trains one GAN (the paper's networks, `cc_bench.nets`, at a width multiplier) with the
non-saturating loss, and every few epochs turns those pictures into numbers
(`gan/evaluation.py`): valid scenes, attribute shares, position coverage, teleports.

The loop (`gan/training.py`, shared with `gan.image_folder`) keeps the training images uint8
on the device, converts them per batch there, and checkpoints everything a killed run needs
to end where an uninterrupted one ends.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from cc_bench.envs.sort_of_clevr import generate_scenes
from cc_bench.gan.configs import GanConfig
from cc_bench.gan.evaluation import (
    Reference,
    evaluate,
    log_data_pictures,
    log_pictures,
    summary_metrics,
)
from cc_bench.gan.training import sides, train_gan
from cc_bench.runtime import resolve_device, seed_everything
from cc_bench.tracking import Tracker


def run(cfg: GanConfig, tracker: Tracker) -> dict[str, Any]:
    """Train the GAN, evaluating every `eval_every` epochs; the last evaluation's metrics."""
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    torch.set_flush_denormal(True)  # tiny gradients made CPU steps slower in the toy tasks
    g_kind, d_kind = sides(cfg)
    title = f"gan.sort_of_clevr G {g_kind} / D {d_kind} seed {cfg.seed}"

    images, scenes = generate_scenes(cfg.n_train, cfg.data_seed)
    data = torch.from_numpy(images).to(device)  # (n, 64, 64, 3) uint8
    reference = Reference.of(scenes)
    if tracker.resume_state is None:
        log_data_pictures(tracker, images, title)
    n_batches = cfg.n_train // min(cfg.batch_size, cfg.n_train)

    def scene_measures(g: nn.Module, fixed_z: Tensor, pairs: Tensor, step: int) -> dict[str, float]:
        ev = evaluate(
            g,
            fixed_z,
            pairs,
            reference,
            interp_steps=cfg.interp_steps,
            jump_px=cfg.jump_px,
            jump_ratio=cfg.jump_ratio,
        )
        tracker.log({f"test/{k}": v for k, v in ev.metrics.items()}, step=step)
        log_pictures(tracker, ev, step, f"{title}, epoch {step // n_batches}")
        return summary_metrics(ev)

    return train_gan(cfg, tracker, data, scene_measures, title)
