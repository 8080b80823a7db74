"""`gan.image_folder`: the Sort-of-CLEVR GAN at 64x64 on any folder of images (section 5).

The paper trained a larger GAN on LSUN bedrooms and showed, in pictures, smoother geometric
transformations along latent interpolations with CoordConv. This benchmark trains the same
networks and loop as `gan.sort_of_clevr` (`cc_bench.nets`, `gan/training.py`) on
the images of `--data-dir` (`gan/image_folder_data.py`) and measures, with no labels and no
pretrained network (`gan/image_folder_measures.py`): how evenly the pixels change along
latent lines (a jump shows) and how diverse the samples are against the data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from cc_bench.envs.sort_of_clevr import image_grid, to_uint8_images
from cc_bench.gan.evaluation import (
    GRID_SAMPLES,
    generate_float,
    interpolate,
    log_interpolations,
)
from cc_bench.gan.image_folder_config import ImageFolderConfig
from cc_bench.gan.image_folder_data import load_data
from cc_bench.gan.image_folder_measures import interpolation_smoothness, sample_diversity
from cc_bench.gan.training import EvaluateFn, sides, to_model_input, train_gan
from cc_bench.runtime import resolve_device, seed_everything
from cc_bench.tracking import Tracker


def make_evaluate(cfg: ImageFolderConfig, data: np.ndarray, tracker: Tracker) -> EvaluateFn:
    """The evaluation `train_gan` calls: the label-free measures, a sample grid, the strips."""
    shown = np.random.default_rng(0).choice(len(data), min(cfg.diversity_images, len(data)), False)
    data_ref = to_model_input(torch.from_numpy(data[np.sort(shown)]))  # (M, 3, H, W)

    def evaluate(g: nn.Module, fixed_z: Tensor, pairs: Tensor, step: int) -> dict[str, float]:
        samples = generate_float(g, fixed_z)  # (N, 3, H, W) in [-1, 1]
        frames = generate_float(g, interpolate(pairs, cfg.interp_steps))
        frames = frames.reshape(pairs.shape[1], cfg.interp_steps, *frames.shape[1:])
        # measured before rounding to uint8, so that small changes are not lost
        metrics = interpolation_smoothness(frames)
        metrics.update(sample_diversity(samples, data_ref))
        metrics["diversity_gap"] = abs(1.0 - metrics["diversity_ratio"])
        tracker.log({f"test/{k}": v for k, v in metrics.items()}, step=step)
        tracker.log_image("samples/grid", image_grid(samples[:GRID_SAMPLES], cols=8), step)
        pictures = to_uint8_images(frames.flatten(0, 1))  # (K * T, H, W, 3)
        log_interpolations(tracker, pictures.reshape(*frames.shape[:2], *pictures.shape[1:]), step)
        return metrics

    return evaluate


def run(cfg: ImageFolderConfig, tracker: Tracker) -> dict[str, Any]:
    """Read the folder, train the GAN, evaluate every `eval_every` epochs; the final metrics."""
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    # uint8 (N, 64, 64, 3); a progress bar on a terminal while a large folder decodes
    images = load_data(cfg.data_dir, cfg.n_train, seed=cfg.data_seed, progress=tracker.progress)
    g_kind, d_kind = sides(cfg)
    title = f"gan.image_folder G {g_kind} / D {d_kind} seed {cfg.seed}"
    if tracker.resume_state is None:
        tracker.log_image("data/grid", image_grid(images[:GRID_SAMPLES], cols=8), 0)
    data = torch.from_numpy(images).to(device)
    evaluate = make_evaluate(cfg, images, tracker)
    return train_gan(cfg, tracker, data, evaluate, title)
