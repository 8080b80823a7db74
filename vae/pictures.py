"""Pictures of a VAE run: reconstructions beside inputs, prior samples, interpolation strips
and a GIF, as uint8 arrays for `Tracker.log_image` (tiled by `envs.sort_of_clevr.image_grid`).
Images come in as floats in [-1, 1], (..., 3, H, W)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from cc_bench.envs.sort_of_clevr import image_grid, write_interpolation_gif


def recon_picture(inputs: Tensor, recons: Tensor, n: int = 8) -> np.ndarray:
    """`n` inputs on a row, their reconstructions on the row under it; twice when there are 2n."""
    n = min(n, len(inputs))
    parts = 2 if len(inputs) >= 2 * n else 1
    rows = [x[k * n : (k + 1) * n] for k in range(parts) for x in (inputs, recons)]
    return image_grid(torch.cat(rows), cols=n, scale=2)


def sample_picture(samples: Tensor, cols: int = 8) -> np.ndarray:
    """Up to 4 rows of `cols` prior samples."""
    return image_grid(samples[: 4 * cols], cols=cols, scale=2)


def strip_picture(frames: Tensor, k: int = 6) -> np.ndarray:
    """The first `k` interpolations (K, T, 3, H, W), one a row, their frames along it."""
    shown = frames[:k]
    return image_grid(shown.flatten(0, 1), cols=shown.shape[1], scale=2)


def save_gif(frames: Tensor, path: Path, k: int = 8) -> Path:
    """A GIF of the first `k` interpolations (K, T, 3, H, W) side by side, there and back."""
    return write_interpolation_gif(path, frames[:k])
