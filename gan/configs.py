"""Configs of the Sort-of-CLEVR GANs (paper section 5). No torch here: `--help` is fast."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

from cc_bench.config import MAX_SEED, BenchConfig, bounded


@dataclass(frozen=True)
class GanConfig(BenchConfig):
    """A DCGAN-like GAN on Sort-of-CLEVR, conv or CoordConv on each side (paper section 5).

    `conv` sets both networks unless `g_conv` or `d_conv` says otherwise: the comparison of
    record is conv/conv against coordconv/coordconv. The defaults are the paper's (50,000
    images, batch 16, 50 epochs, full width): a GPU job; the `gen-laptop` suite shrinks them.
    """

    g_conv: Literal["same", "conv", "coordconv"] = "same"
    """The generator: `conv` (dense to 4x4x512, 5x5 stride-2 transposed convs), `coordconv` (z tiled over the canvas with i, j, 1x1 convs, then 3x3), or `same` (as `conv` says)."""
    d_conv: Literal["same", "conv", "coordconv"] = "same"
    """The discriminator: `conv` (5x5 stride-2 convs), `coordconv` (the same with a CoordConv at its input), or `same` (as `conv` says)."""
    width: float = bounded(1.0, gt=0.0)
    """Channel multiplier of both networks (1: the paper's; 0.125 trains on a laptop CPU)."""
    z_dim: int = bounded(256, ge=1)
    """Latent size; z is uniform in [-1, 1]."""
    n_train: int = bounded(50_000, ge=1)
    """Training images (generated with `data_seed`, the same for every run)."""
    data_seed: int = bounded(0, ge=0, le=MAX_SEED)
    """Seed of the generated training images."""
    epochs: int = bounded(50, ge=1)
    """Passes over the training images."""
    batch_size: int = bounded(16, ge=1)
    """Minibatch size (the paper: 16)."""
    lr_d: float = bounded(1e-4, gt=0.0)
    """Adam learning rate of the discriminator (the paper: 1e-4)."""
    lr_g: float = bounded(5e-4, gt=0.0)
    """Adam learning rate of the generator (the paper: 5e-4)."""
    beta1: float = bounded(0.5, ge=0.0, lt=1.0)
    """Adam's beta1 (not given in the paper; DCGAN's 0.5)."""
    beta2: float = bounded(0.999, ge=0.0, lt=1.0)
    """Adam's beta2."""
    log_every: int = bounded(50, ge=1)
    """Log the running losses and D outputs every this many iterations."""
    eval_every: int = bounded(5, ge=1)
    """Evaluate (measures and pictures) every this many epochs, and after the last one."""
    n_samples: int = bounded(512, ge=1)
    """N: samples from a fixed z scored at each evaluation (valid_frac, frequencies, coverage)."""
    n_pairs: int = bounded(16, ge=1)
    """K: fixed latent pairs interpolated at each evaluation."""
    interp_steps: int = bounded(16, ge=2)
    """T: frames per interpolation, ends included."""
    jump_px: float = bounded(4.0, gt=0.0)
    """Plain rule (`teleport_frac`): an object whose centre moves more than this between two frames teleports. Robust rule (`teleport_frac_valid`): the least step that can be a jump."""
    jump_ratio: float = bounded(3.0, gt=1.0)
    """Robust rule (`teleport_frac_valid`): a step over this many times the object's median step along its interpolation (and over `jump_px`) is a jump."""
    channels_last: bool = True
    """Run the networks channels-last (faster convs on CPU; the same numbers)."""

    # A network left at `same` takes `conv`'s kind (`BenchConfig.follows_conv`).
    follows_conv: ClassVar[Mapping[str, str]] = {"g_conv": "same", "d_conv": "same"}
