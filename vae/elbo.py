"""The ELBO of a VAE with a diagonal Gaussian posterior and a standard normal prior.

    ELBO(x) = E_q(z|x)[log p(x | z)] - KL(q(z | x) || N(0, I))

estimated with one reparameterised sample of z, in nats per image (summed over pixels and
channels, and over latent dimensions for the KL). Pixel values are in [0, 1]. Each function
returns one value per image, shape (B,), so callers choose how to average.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per row, summed over the latent dims: (B, Z) -> (B,)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)


def reparameterize(mu: Tensor, logvar: Tensor) -> Tensor:
    """One sample z = mu + sigma * eps, differentiable in mu and logvar: (B, Z)."""
    return mu + torch.randn_like(mu) * (0.5 * logvar).exp()


def bernoulli_log_lik(logits: Tensor, x: Tensor) -> Tensor:
    """log p(x | logits) of independent Bernoullis, summed per image: (B, ...) -> (B,)."""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def gaussian_log_lik(mean: Tensor, log_scale: Tensor, x: Tensor) -> Tensor:
    """log N(x; mean, exp(log_scale)^2) of independent pixels, summed per image: (B,).

    `log_scale` broadcasts against `mean` (a scalar for one shared standard deviation).
    """
    z = (x - mean) * torch.exp(-log_scale)
    log_p = -0.5 * z.pow(2) - log_scale - _HALF_LOG_2PI
    return log_p.flatten(1).sum(1)


def elbo_terms(
    out: Tensor,
    x: Tensor,
    mu: Tensor,
    logvar: Tensor,
    likelihood: str,
    log_scale: Tensor | None = None,
) -> dict[str, Tensor]:
    """Per-image `recon` (log p(x | z)), `kl` and `elbo` = recon - kl, each (B,).

    Args:
        out: the decoder's output, (B, C, H, W): Bernoulli logits, or for `gaussian` the
            pre-sigmoid mean (the mean is sigmoid(out), in [0, 1] like the pixels).
        x: the images, (B, C, H, W) in [0, 1].
        mu, logvar: the posterior's parameters, (B, Z).
        likelihood: `bernoulli` or `gaussian`.
        log_scale: the Gaussian's log standard deviation (needed for `gaussian`).
    """
    if likelihood == "bernoulli":
        recon = bernoulli_log_lik(out, x)
    elif likelihood == "gaussian":
        if log_scale is None:
            raise ValueError("the gaussian likelihood needs log_scale")
        recon = gaussian_log_lik(torch.sigmoid(out), log_scale, x)
    else:
        raise ValueError(f"unknown likelihood {likelihood!r}: bernoulli or gaussian")
    kl = gaussian_kl(mu, logvar)
    return {"recon": recon, "kl": kl, "elbo": recon - kl}
