"""Not-so-CLEVR: the toy data of the coordinate tasks (Liu et al. 2018, section 3).

A 64x64 canvas holds one object centred at pixel (i, j), i the row and j the
column, both in 4..59: 56 x 56 = 3,136 examples, one per centre. Each example
has two pictures: a one-hot image (1 at the centre, for coordinate
classification and regression) and a 9x9 square (rows i-4..i+4, columns
j-4..j+4, for rendering). The paper splits the examples two ways: uniformly at
random, and by quadrant (a centre is in test when i > 32 and j > 32, the
bottom-right quadrant, so the test positions are never seen in training).

Everything is built at once with tensor operations, well under a second.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

CANVAS_SIZE = 64
"""Height and width of the canvas in pixels."""

SQUARE_SIZE = 9
"""Side of the rendered square in pixels."""

COORD_MIN = 4
"""Smallest centre row or column (the square stays inside the canvas)."""

COORD_MAX = 59
"""Largest centre row or column."""

QUADRANT_THRESHOLD = 32
"""Quadrant split: a centre is in test when i > 32 and j > 32."""

SPLITS = ("uniform", "quadrant")
"""The split names `split_indices` accepts."""


@dataclass(frozen=True, eq=False)
class NotSoClevr:
    """All 3,136 Not-so-CLEVR examples, row k describing the centre `coords[k]`.

    The tensors are shared by every caller of `load_not_so_clevr` (it is
    cached): index them, never modify them in place.
    """

    coords: Tensor
    """(N, 2) int64 centres (i, j): i the row, j the column, each in 4..59."""
    pixel: Tensor
    """(N, 1, 64, 64) float32 one-hot images: 1 at (i, j), 0 elsewhere."""
    square: Tensor
    """(N, 1, 64, 64) float32 images of the 9x9 square: 1 in rows i-4..i+4, columns j-4..j+4."""
    target: Tensor
    """(N,) int64 flat pixel index of the centre, i * 64 + j (the classification target)."""

    def __len__(self) -> int:
        return self.coords.shape[0]


def _centres() -> Tensor:
    """All centres in row-major order: (N, 2) int64, i slow and j fast."""
    axis = torch.arange(COORD_MIN, COORD_MAX + 1)  # (56,)
    ii, jj = torch.meshgrid(axis, axis, indexing="ij")  # (56, 56) each
    return torch.stack([ii.reshape(-1), jj.reshape(-1)], dim=1)  # (N, 2)


@functools.lru_cache(maxsize=1)
def load_not_so_clevr() -> NotSoClevr:
    """Build (once, then from the cache) every Not-so-CLEVR example."""
    coords = _centres()  # (N, 2)
    n = coords.shape[0]
    i, j = coords[:, 0], coords[:, 1]  # (N,) each
    target = i * CANVAS_SIZE + j  # (N,)

    pixel = torch.zeros(n, CANVAS_SIZE * CANVAS_SIZE)
    pixel[torch.arange(n), target] = 1.0
    pixel = pixel.view(n, 1, CANVAS_SIZE, CANVAS_SIZE)

    # The square is the outer product of a row band and a column band.
    half = SQUARE_SIZE // 2
    pos = torch.arange(CANVAS_SIZE)  # (64,)
    rows = ((pos >= i[:, None] - half) & (pos <= i[:, None] + half)).float()  # (N, 64)
    cols = ((pos >= j[:, None] - half) & (pos <= j[:, None] + half)).float()  # (N, 64)
    square = (rows[:, :, None] * cols[:, None, :]).unsqueeze(1)  # (N, 1, 64, 64)

    return NotSoClevr(coords=coords, pixel=pixel, square=square, target=target)


def split_indices(split: str, seed: int = 0, test_fraction: float = 0.2) -> tuple[Tensor, Tensor]:
    """Indices (train, test) into `load_not_so_clevr()` for one of the paper's splits.

    Args:
        split: "uniform" (a random permutation from `numpy.random.default_rng(seed)`,
            the first round(N * test_fraction) examples to test: 627 of 3,136 at
            0.2, the paper's text; 784 at 0.25, the official code) or "quadrant"
            (test when i > 32 and j > 32: 729 test, 2,407 train; `seed` and
            `test_fraction` are ignored).
        seed: seed of the uniform split.
        test_fraction: share of the examples held out by the uniform split, in (0, 1).

    Returns:
        Two sorted int64 tensors that are disjoint and together cover every example.

    Raises:
        ValueError: an unknown split, or a test fraction outside (0, 1) or so
            small or large that one side would be empty.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
    data = load_not_so_clevr()
    n = len(data)
    if split == "quadrant":
        is_test = (data.coords[:, 0] > QUADRANT_THRESHOLD) & (
            data.coords[:, 1] > QUADRANT_THRESHOLD
        )  # (N,)
        return torch.nonzero(~is_test).flatten(), torch.nonzero(is_test).flatten()

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    n_test = round(n * test_fraction)
    if not 0 < n_test < n:
        raise ValueError(
            f"test_fraction={test_fraction!r} leaves {n_test} of {n} examples for test; "
            f"use a fraction between {1 / n:.2g} and {1 - 1 / n:.4g}"
        )
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(n))
    test_idx, _ = torch.sort(perm[:n_test])
    train_idx, _ = torch.sort(perm[n_test:])
    return train_idx, test_idx
