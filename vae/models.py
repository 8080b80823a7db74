"""The VAE: the shared GAN bodies (`cc_bench.nets`) as encoder and decoder (paper section 5).

The encoder is the discriminator's body with a head of 2 * latent numbers (the posterior's
mean and log-variance), conv or with CoordConv at its input; the decoder is the conv
generator (dense to 4x4, stride-2 transposed convs) or the CoordConv generator (z tiled over
the canvas with the coordinates, 1x1 convs), ending in raw logits instead of tanh.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from cc_bench.nets import build_discriminator, build_generator, count_params
from cc_bench.vae.configs import SIGMA_FLOOR, VAEConfig
from cc_bench.vae.elbo import elbo_terms, reparameterize

LOGVAR_LIMIT = 12.0
"""The posterior's log-variance is squashed into (-LIMIT, LIMIT): a bad step cannot overflow exp."""
LOG_SIGMA_FLOOR = math.log(SIGMA_FLOOR)
"""A learned log scale is clamped here (`VAE.log_sigma`): the Gaussian ELBO stays bounded."""


class VAE(nn.Module):
    """Encoder, decoder and the Gaussian likelihood's log standard deviation.

    Args:
        encoder: images (B, 3, H, W) -> (B, 2 * latent).
        decoder: z (B, latent) -> (B, 3, H, W) output (logits, or the pre-sigmoid mean).
        latent: size of z.
        likelihood: `bernoulli` or `gaussian`.
        sigma: the Gaussian's standard deviation (its start when `learn_scale`).
        learn_scale: train the Gaussian's log standard deviation (one scalar), used clamped
            at `LOG_SIGMA_FLOOR`.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        latent: int,
        likelihood: str = "bernoulli",
        sigma: float = 0.1,
        learn_scale: bool = False,
    ) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.latent = latent
        self.likelihood = likelihood
        self.learn_scale = learn_scale
        log_sigma = torch.tensor(math.log(sigma))
        if learn_scale:
            self.log_scale = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_scale", log_sigma)

    def log_sigma(self) -> Tensor:
        """The Gaussian's log standard deviation, a scalar: a learned one clamped at the floor.

        At the floor itself the clamp still passes the gradient, so a scale that
        `clamp_scale_` put back there can rise again."""
        if self.learn_scale:
            return self.log_scale.clamp(min=LOG_SIGMA_FLOOR)
        return self.log_scale

    @torch.no_grad()
    def clamp_scale_(self) -> None:
        """Put a learned log scale that an optimizer step took below the floor back on it."""
        if self.learn_scale:
            self.log_scale.clamp_(min=LOG_SIGMA_FLOOR)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Images in [0, 1], (B, 3, H, W) -> the posterior's mean and log-variance, each (B, Z).

        The encoder sees the images in [-1, 1], as the discriminator does."""
        h = self.encoder(x * 2 - 1)  # (B, 2Z)
        mu, raw = h[:, : self.latent], h[:, self.latent :]
        return mu, LOGVAR_LIMIT * torch.tanh(raw / LOGVAR_LIMIT)

    def decode(self, z: Tensor) -> Tensor:
        """z (B, Z) -> the decoder's output (B, 3, H, W): logits; the mean is its sigmoid."""
        return self.decoder(z)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """One-sample ELBO terms per image (`recon`, `kl`, `elbo`, each (B,)) and `out`."""
        mu, logvar = self.encode(x)
        out = self.decode(reparameterize(mu, logvar))
        terms = elbo_terms(out, x, mu, logvar, self.likelihood, self.log_sigma())
        return {**terms, "out": out}


def build_vae(cfg: VAEConfig) -> VAE:
    """The VAE `cfg` asks for: each side conv or CoordConv, the paper's bodies at `cfg.width`."""
    encoder = build_discriminator(
        cfg.encoder_conv, out_features=2 * cfg.latent, width=cfg.width, with_r=cfg.with_r
    )
    decoder = build_generator(
        cfg.decoder_conv, cfg.latent, width=cfg.width, with_r=cfg.with_r, out_activation=None
    )
    return VAE(
        encoder,
        decoder,
        cfg.latent,
        likelihood=cfg.likelihood,
        sigma=cfg.sigma,
        learn_scale=cfg.likelihood == "gaussian" and cfg.gaussian_scale == "learned",
    )


@torch.no_grad()
def init_output_bias(vae: VAE, pixel_mean: Tensor) -> None:
    """Start the decoder's last layer at the data's mean image: its bias at the logit of each
    channel's mean pixel value (3,), so neither decoder spends its first epochs learning the
    white background (DCGAN's N(0, 0.02) weights start every pixel at a grey 0.5)."""
    last = [m for m in vae.decoder.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)][-1]
    p = pixel_mean.clamp(1e-3, 1 - 1e-3).to(last.bias)
    last.bias.copy_(torch.log(p) - torch.log1p(-p))


def param_counts(vae: VAE) -> dict[str, int]:
    """Trainable parameters of the encoder and the decoder."""
    return {"params_enc": count_params(vae.encoder), "params_dec": count_params(vae.decoder)}
