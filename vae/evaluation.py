"""The scene measures of a Sort-of-CLEVR VAE: the paper's pictures as numbers (section 5).

- Reconstructions of held-out scenes (posterior mean, decoded mean): `recon_valid_frac`
  (well-formed scenes), `recon_found_frac` (input objects whose colour the parser finds in
  the reconstruction) and `recon_center_err_px` (the mean centre error of those objects).
- Prior samples z ~ N(0, I) (a fixed draw): `valid_frac`, `position_js`, `empty_cells_frac`
  against the training scenes, `shape_tv` and `color_tv`.
- Interpolations between the posterior means of held-out pairs: `teleport_frac_valid`
  (the robust rule, the headline: the paper's "objects move smoothly"), `interp_valid_frac`,
  `endpoint_px`, and the plain rule's `teleport_frac`, `appear_vanish_frac`, `mean_step_px`,
  `max_jump_px` (no direction: a decoder that draws one blur for every z scores 0 on them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from cc_bench.envs.sort_of_clevr import (
    SceneObject,
    interpolation_measures,
    parse_scenes,
    sample_measures,
)
from cc_bench.nets import latent_lines
from cc_bench.vae.models import VAE
from cc_bench.vae.training import to_unit


@dataclass
class EvalSet:
    """What the measures compare against, fixed for a run."""

    recon_images: Tensor
    """uint8 (N, H, W, 3) held-out scenes to reconstruct, on the device."""
    recon_scenes: list[list[SceneObject]]
    """Their objects, as drawn."""
    pair_images: tuple[Tensor, Tensor]
    """uint8 (K, H, W, 3) each: the interpolations' two ends, on the device."""
    reference: list[list[SceneObject]]
    """Training scenes' objects: the positions and shares the samples should match."""
    z_prior: Tensor
    """(N, Z) the fixed prior draw."""
    n_frames: int


@torch.no_grad()
def _decode_mean(vae: VAE, z: Tensor, batch_size: int = 256) -> Tensor:
    """(N, Z) -> the decoded mean images in [-1, 1], (N, 3, H, W), on the CPU."""
    parts = [torch.sigmoid(vae.decode(z[s : s + batch_size])) for s in range(0, len(z), batch_size)]
    return (torch.cat(parts) * 2 - 1).cpu()


def center_errors(
    inputs: Sequence[Sequence[SceneObject]], outputs: Sequence[Any]
) -> tuple[float, float]:
    """(found share, mean centre error in px) of the input objects in the parsed outputs.

    Each input object is looked for by colour (the largest blob of that colour)."""
    found, errors = 0, []
    total = 0
    for objs, parsed in zip(inputs, outputs, strict=True):
        best: dict[str, SceneObject] = {}
        for obj in parsed.objects:  # largest first
            best.setdefault(obj.color, obj)
        for obj in objs:
            total += 1
            if obj.color in best:
                found += 1
                (i0, j0), (i1, j1) = obj.center, best[obj.color].center
                errors.append(float(np.hypot(i1 - i0, j1 - j0)))
    return found / max(total, 1), float(np.mean(errors)) if errors else float("nan")


@torch.no_grad()
def evaluate_scenes(vae: VAE, data: EvalSet) -> tuple[dict[str, float], dict[str, Tensor]]:
    """The measures, and the images they were taken on (for pictures), in eval mode.

    Returns:
        metrics: the measures above;
        images: `inputs`, `recons`, `samples` (N, 3, H, W) and `interpolations`
            (K, T, 3, H, W), floats in [-1, 1] on the CPU.
    """
    vae.eval()
    mu, _ = vae.encode(to_unit(data.recon_images))
    recons = _decode_mean(vae, mu)
    parsed = parse_scenes(recons)
    found, err = center_errors(data.recon_scenes, parsed)
    out = {
        "recon_valid_frac": float(np.mean([p.valid for p in parsed])),
        "recon_found_frac": found,
        "recon_center_err_px": err,
    }

    samples = _decode_mean(vae, data.z_prior)
    out.update(sample_measures(parse_scenes(samples), data.reference))

    a, b = (vae.encode(to_unit(x))[0] for x in data.pair_images)  # (K, Z) posterior means
    z = latent_lines(a, b, data.n_frames)  # (K * T, Z)
    frames = _decode_mean(vae, z).reshape(len(a), data.n_frames, *recons.shape[1:])
    out.update(interpolation_measures(frames))  # interp_valid_frac among them
    inputs = to_unit(data.recon_images).cpu() * 2 - 1
    images = {"inputs": inputs, "recons": recons, "samples": samples, "interpolations": frames}
    return out, images
