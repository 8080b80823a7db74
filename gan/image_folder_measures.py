"""Measures of a generator that need no labels and no pretrained network (`gan.image_folder`).

- `interpolation_smoothness`: along K latent lines of T frames, each frame-to-frame change
  (L2 distance in pixel space) divided by the even share of the endpoints' distance,
  ||x_T - x_1|| / (T - 1). A path that changes evenly scores 1 on every step; a path that
  does all its changing in one frame scores T - 1 there. `interp_mean_step` is the mean of
  these normalised steps (the path's length over the endpoints' distance: 1 for a straight
  path in pixel space, larger for a detour), `interp_max_step` the mean over lines of each
  line's largest one (a jump, a "teleport").
- `sample_diversity`: the mean pairwise L2 distance between samples against the same between
  data images; a ratio well under 1 is mode collapse.

What these can and cannot say (docs/vae.md): a jump shows in `interp_max_step` whatever the
images are; but in pixel space a cross-fade is the shortest path, so these numbers cannot tell
an object that moves from one that fades out and back in elsewhere, which is the paper's
claim. On Sort-of-CLEVR the scene parser's `teleport_frac_valid` can, and is used there.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _flat(x: Tensor) -> Tensor:
    return x.detach().double().flatten(1)


def interpolation_smoothness(frames: Tensor, eps: float = 1e-6) -> dict[str, float]:
    """Normalised frame-to-frame change along K interpolations of T frames, (K, T, C, H, W).

    Lines whose endpoints are (almost) the same image, distance under `eps` per pixel, are
    left out, since nothing normalises them; when that leaves none (a generator that ignores
    z), both scores are 1 and `interp_lines` 0: nothing jumps, and `sample_diversity` shows
    the collapse.

    Returns:
        interp_mean_step: mean normalised step (1: even change; larger: a detour);
        interp_max_step: mean over lines of the largest normalised step (1: even; T - 1: all
            the change in one frame);
        interp_lines: how many lines were measured.
    """
    if frames.ndim != 5 or frames.shape[1] < 2:
        raise ValueError(f"frames must be (K, T >= 2, C, H, W), got {tuple(frames.shape)}")
    k, t = frames.shape[:2]
    x = frames.detach().double().reshape(k, t, -1)  # (K, T, D)
    steps = (x[:, 1:] - x[:, :-1]).norm(dim=2)  # (K, T - 1)
    span = (x[:, -1] - x[:, 0]).norm(dim=1)  # (K,)
    keep = span > eps * x.shape[2] ** 0.5
    if not keep.any():
        # No line changes from end to end (a generator that ignores z): nothing jumps.
        return {"interp_mean_step": 1.0, "interp_max_step": 1.0, "interp_lines": 0}
    ratio = steps[keep] * (t - 1) / span[keep, None]  # (K', T - 1)
    return {
        "interp_mean_step": float(ratio.mean()),
        "interp_max_step": float(ratio.max(dim=1).values.mean()),
        "interp_lines": int(keep.sum()),
    }


def mean_pairwise_distance(x: Tensor) -> float:
    """Mean L2 distance between the distinct pairs of rows of x, (N, ...) with N >= 2."""
    flat = _flat(x)
    n = flat.shape[0]
    if n < 2:
        raise ValueError("mean_pairwise_distance needs at least 2 images")
    d = torch.cdist(flat, flat)  # (N, N)
    return float(d.sum() / (n * (n - 1)))


def sample_diversity(samples: Tensor, data: Tensor) -> dict[str, float]:
    """Mean pairwise pixel distance of `samples` and of `data` (same scale, e.g. [-1, 1]).

    Returns:
        sample_pairwise_dist, data_pairwise_dist: the two means;
        diversity_ratio: their ratio (1: as spread as the data; near 0: collapse).
    """
    ours, theirs = mean_pairwise_distance(samples), mean_pairwise_distance(data)
    return {
        "sample_pairwise_dist": ours,
        "data_pairwise_dist": theirs,
        "diversity_ratio": ours / theirs if theirs > 0 else float("nan"),
    }
