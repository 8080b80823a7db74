"""What a GAN evaluation measures and draws: the paper's pictures of section 5 as numbers.

On N samples from a fixed z: the share of well-formed scenes, the shape and colour shares
against the data's, how the objects' centres cover the canvas. On K fixed latent pairs x T
steps: how far objects move per frame and overall, how often one teleports (by the plain
rule, and by the robust one: between valid frames, relative to the object's own speed),
appears or vanishes, and the shares of steps over 4 and 8 px.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from cc_bench.envs.sort_of_clevr import (
    ParsedScene,
    SceneObject,
    attribute_frequencies,
    findings_figure,
    image_grid,
    interpolation_measures,
    parse_scenes,
    sample_measures,
    to_uint8_images,
    write_interpolation_gif,
)
from cc_bench.nets import latent_lines
from cc_bench.tracking import Tracker

GRID_SAMPLES = 64  # samples in the picture of the fixed z
SHOWN_PAIRS = 8  # interpolations in the strips and the GIF
PARSED_SHOWN = 16  # samples drawn with the parser's findings


@dataclass
class Reference:
    """What the samples are compared with: the training scenes and their attribute shares."""

    scenes: list[list[SceneObject]]
    freqs: dict[str, float]

    @classmethod
    def of(cls, scenes: list[list[SceneObject]]) -> Reference:
        return cls(scenes, attribute_frequencies(scenes))


@torch.no_grad()
def generate_float(generator: nn.Module, z: Tensor, batch_size: int = 128) -> Tensor:
    """Images of `z` (B, z_dim) in eval mode (batch norm's running statistics, so a sample does
    not depend on its batch): float (B, 3, H, W) in [-1, 1], on the CPU."""
    was_training = generator.training
    generator.eval()
    try:
        out = [generator(z[k : k + batch_size]).float().cpu() for k in range(0, len(z), batch_size)]
    finally:
        generator.train(was_training)
    return torch.cat(out)


def generate(generator: nn.Module, z: Tensor, batch_size: int = 128) -> np.ndarray:
    """`generate_float`'s images as uint8 (B, H, W, 3)."""
    return to_uint8_images(generate_float(generator, z, batch_size))


def interpolate(pairs: Tensor, steps: int) -> Tensor:
    """Straight lines between latent pairs: (2, K, z_dim) -> (K * T, z_dim), pair-major."""
    return latent_lines(pairs[0], pairs[1], steps)


@dataclass
class Evaluation:
    """One evaluation: the metrics and what the pictures are drawn from."""

    metrics: dict[str, float]
    samples: np.ndarray  # (N, H, W, 3) uint8
    parsed: list[ParsedScene]
    frames: np.ndarray  # (K, T, H, W, 3) uint8


def evaluate(
    generator: nn.Module,
    fixed_z: Tensor,
    pairs: Tensor,
    reference: Reference,
    *,
    interp_steps: int,
    jump_px: float,
    jump_ratio: float = 3.0,
) -> Evaluation:
    """Score the generator on the fixed z and the fixed interpolations."""
    samples = generate(generator, fixed_z)
    parsed = parse_scenes(samples)
    metrics = sample_measures(parsed, reference.scenes, reference.freqs)
    freqs = attribute_frequencies(parsed)  # logged one by one below
    frames = generate(generator, interpolate(pairs, interp_steps))
    parsed_frames = parse_scenes(frames)
    frames = frames.reshape(pairs.shape[1], interp_steps, *frames.shape[1:])  # (K, T, H, W, 3)
    sequences = [
        parsed_frames[k * interp_steps : (k + 1) * interp_steps] for k in range(len(frames))
    ]
    # A generator that draws one scene whatever z is never teleports by the plain rule: the
    # robust one leaves it unscored; read both with interp_valid_frac (among these),
    # endpoint_px and the coverage.
    metrics.update(interpolation_measures(sequences, jump_px=jump_px, jump_ratio=jump_ratio))
    metrics.update({f"freq_{k.replace('/', '_')}": v for k, v in freqs.items()})
    return Evaluation(metrics, samples, parsed, frames)


def log_interpolations(tracker: Tracker, frames: np.ndarray, step: int) -> Path:
    """The first `SHOWN_PAIRS` interpolations (K, T, H, W, 3) uint8 as strips (one a row) and
    as one GIF; the GIF's path."""
    shown = frames[:SHOWN_PAIRS]  # (k, T, H, W, 3)
    k, t = shown.shape[:2]
    strips = image_grid(shown.reshape(k * t, *shown.shape[2:]), cols=t, scale=2 if k < 4 else 1)
    tracker.log_image("samples/interpolations", strips, step)
    gif = tracker.media_dir / f"samples_interpolation_{int(step)}.gif"
    return tracker.log_animation("samples/interpolation", write_interpolation_gif(gif, shown), step)


def log_pictures(tracker: Tracker, ev: Evaluation, step: int, title: str) -> Path:
    """The sample grid, the interpolation strips, the parsed samples and one GIF; the GIF's path."""
    tracker.log_image("samples/grid", image_grid(ev.samples[:GRID_SAMPLES], cols=8), step)
    figure = findings_figure(
        ev.samples[:PARSED_SHOWN],
        ev.parsed[:PARSED_SHOWN],
        title=f"{title}: what the parser found (valid {ev.metrics['valid_frac']:.2f} of all)",
    )
    tracker.log_image("samples/parsed", figure, step)
    import matplotlib.pyplot as plt

    plt.close(figure)
    return log_interpolations(tracker, ev.frames, step)


def log_data_pictures(tracker: Tracker, images: np.ndarray, title: str) -> None:
    """The training data, once: a grid and the parser's findings on it."""
    tracker.log_image("data/grid", image_grid(images[:GRID_SAMPLES], cols=8), 0)
    figure = findings_figure(
        images[:PARSED_SHOWN], parse_scenes(images[:PARSED_SHOWN]), title=f"{title}: the data"
    )
    tracker.log_image("data/parsed", figure, 0)
    import matplotlib.pyplot as plt

    plt.close(figure)


def summary_metrics(ev: Evaluation) -> dict[str, Any]:
    """The evaluation's metrics for the run's summary: all of them, the shape and colour
    shares (`freq_shape_circle`, `freq_color_red`, ...) included."""
    return dict(ev.metrics)
