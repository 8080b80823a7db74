"""Config of the Sort-of-CLEVR VAE (paper section 5). No torch here: `--help` is fast."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

from cc_bench.config import MAX_SEED, BenchConfig, bounded
from cc_bench.errors import UserError

ConvChoice = Literal["same", "conv", "coordconv"]

SIGMA_FLOOR = 1 / 255
"""The smallest standard deviation a learned Gaussian scale takes: one step of the 8-bit
pixels. On these exactly-0-or-1 values the Gaussian ELBO grows without bound as sigma -> 0;
with the floor it is at most -log(SIGMA_FLOOR) - log(2 pi) / 2 = 4.62 nats a value
(docs/vae.md)."""


@dataclass(frozen=True)
class VAEConfig(BenchConfig):
    """A VAE on Sort-of-CLEVR scenes: conv or CoordConv encoder and decoder, trained on the ELBO.

    `conv` sets both sides; `enc_conv` / `dec_conv` override one side (the mixed pairs stay
    possible, the comparison of record is conv/conv against coordconv/coordconv).
    """

    enc_conv: ConvChoice = "same"
    """Encoder: `conv` (the conv discriminator's body), `coordconv` (the same body with CoordConv at its input), or `same` (as `conv` says)."""
    dec_conv: ConvChoice = "same"
    """Decoder: `conv` (the conv generator: dense to 4x4, stride-2 transposed convs), `coordconv` (the CoordConv generator: z tiled over the canvas plus coordinates, 1x1 convs), or `same` (as `conv` says)."""
    latent: int = bounded(16, ge=1)
    """Size of the latent code z (a diagonal Gaussian posterior, a standard normal prior)."""
    beta: float = bounded(1.0, ge=0.0)
    """Weight of the KL term in the training loss (1: the ELBO; the logged ELBO always uses 1)."""
    likelihood: Literal["bernoulli", "gaussian"] = "bernoulli"
    """p(x | z) per pixel and channel, on pixel values in [0, 1]: `bernoulli` (the scenes' channels are exactly 0 or 1, so this is a true discrete likelihood) or `gaussian`."""
    gaussian_scale: Literal["fixed", "learned"] = "learned"
    """The Gaussian's standard deviation: `fixed` at `sigma`, or one `learned` scalar that starts at `sigma` and is kept at or above 1/255 (one 8-bit step: below it the ELBO on 0/1 pixels has no bound)."""
    sigma: float = bounded(0.1, gt=0.0)
    """The Gaussian likelihood's standard deviation (fixed), or its starting value (learned: at least 1/255)."""
    width: float = bounded(0.25, gt=0.0)
    """Channel multiplier of the encoder and decoder (1: the paper's GAN widths)."""
    epochs: int = bounded(20, ge=1)
    """Training epochs over the `n_train` scenes."""
    batch_size: int = bounded(64, ge=1)
    """Minibatch size."""
    lr: float = bounded(1e-3, gt=0.0)
    """Adam learning rate (both networks and the learned scale)."""
    n_train: int = bounded(10_000, ge=1)
    """Training scenes (generated with the data seed, the same for every run)."""
    n_test: int = bounded(1_000, ge=2)
    """Held-out scenes: the test ELBO, the reconstructions and the interpolation pairs."""
    data_seed: int = bounded(0, ge=0, le=MAX_SEED)
    """Seed of the generated scenes (not the run's seed: every run sees the same data)."""
    eval_every: int = bounded(5, ge=1)
    """Run the scene measures every this many epochs (and always after the last)."""
    n_samples: int = bounded(256, ge=1)
    """Prior samples (and held-out reconstructions) the scene measures parse."""
    n_pairs: int = bounded(16, ge=1)
    """Held-out pairs whose posterior means are interpolated."""
    n_frames: int = bounded(16, ge=2)
    """Frames of each interpolation, endpoints included."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_pairs * 2 > self.n_test:
            raise UserError(
                f"invalid n_pairs={self.n_pairs}: needs 2 * n_pairs <= n_test={self.n_test}"
            )
        learned = self.likelihood == "gaussian" and self.gaussian_scale == "learned"
        if learned and self.sigma < SIGMA_FLOOR:
            raise UserError(
                f"invalid sigma={self.sigma}: a learned scale starts at or above its floor "
                f"1/255 = {SIGMA_FLOOR:.5f} (or use --gaussian-scale fixed)"
            )

    # A network left at `same` takes `conv`'s kind (`BenchConfig.follows_conv`).
    follows_conv: ClassVar[Mapping[str, str]] = {"enc_conv": "same", "dec_conv": "same"}

    @property
    def encoder_conv(self) -> str:
        """The encoder's conv kind, `same` resolved."""
        return self.conv_at("enc_conv")

    @property
    def decoder_conv(self) -> str:
        """The decoder's conv kind, `same` resolved."""
        return self.conv_at("dec_conv")
