"""Pictures of a VAE run: reconstructions beside inputs, prior samples, interpolation strips
and a GIF, as uint8 arrays for `Tracker.log_image`. Images come in as floats in [-1, 1],
(..., 3, H, W)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor


def to_uint8(images: Tensor) -> np.ndarray:
    """Floats in [-1, 1], (..., 3, H, W) -> uint8 (..., H, W, 3)."""
    x = ((images.float().clamp(-1, 1) + 1) * 127.5 + 0.5).to(torch.uint8)
    return x.movedim(-3, -1).numpy()


def grid(rows: np.ndarray, pad: int = 2, scale: int = 2) -> np.ndarray:
    """uint8 (R, C, H, W, 3) -> one uint8 picture, R rows of C images on grey, `scale` times."""
    r, c, h, w, _ = rows.shape
    out = np.full((r * (h + pad) + pad, c * (w + pad) + pad, 3), 160, dtype=np.uint8)
    for i in range(r):
        for j in range(c):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            out[y : y + h, x : x + w] = rows[i, j]
    return out.repeat(scale, 0).repeat(scale, 1)


def recon_picture(inputs: Tensor, recons: Tensor, n: int = 8) -> np.ndarray:
    """Inputs on the top row, their reconstructions under them, `n` columns, twice over."""
    n = min(n, len(inputs))
    k = 2 if len(inputs) >= 2 * n else 1
    rows = []
    for part in range(k):
        sl = slice(part * n, (part + 1) * n)
        rows += [to_uint8(inputs[sl]), to_uint8(recons[sl])]
    return grid(np.stack(rows))


def sample_picture(samples: Tensor, cols: int = 8) -> np.ndarray:
    """Up to 4 rows of `cols` prior samples."""
    rows = max(1, min(4, len(samples) // cols))
    cols = min(cols, len(samples))
    return grid(
        to_uint8(samples[: rows * cols]).reshape(rows, cols, *to_uint8(samples[:1]).shape[1:])
    )


def strip_picture(frames: Tensor, k: int = 6) -> np.ndarray:
    """The first `k` interpolations, one a row, their frames along it."""
    return grid(to_uint8(frames[:k]))


def save_gif(frames: Tensor, path: Path, k: int = 8, ms: int = 120) -> Path:
    """A GIF of the first `k` interpolations side by side, going there and back."""
    from PIL import Image

    pics = to_uint8(frames[:k])  # (k, T, H, W, 3)
    t = pics.shape[1]
    order = list(range(t)) + list(range(t - 2, 0, -1))
    images = [Image.fromarray(grid(pics[None, :, s])) for s in order]
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=ms, loop=0)
    return path
