"""The VAE's ELBO terms against torch.distributions (an independent implementation)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

from cc_bench.vae.elbo import (
    bernoulli_log_lik,
    elbo_terms,
    gaussian_kl,
    gaussian_log_lik,
    reparameterize,
)


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def test_kl_matches_torch_distributions(gen: torch.Generator) -> None:
    mu = torch.randn(5, 7, generator=gen, dtype=torch.float64)
    logvar = torch.randn(5, 7, generator=gen, dtype=torch.float64)
    q = Independent(Normal(mu, (0.5 * logvar).exp()), 1)
    p = Independent(Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1)
    torch.testing.assert_close(gaussian_kl(mu, logvar), kl_divergence(q, p))


def test_kl_is_zero_at_the_prior() -> None:
    assert gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 4)).tolist() == [0.0, 0.0, 0.0]


def test_bernoulli_log_lik_matches_torch_distributions(gen: torch.Generator) -> None:
    logits = torch.randn(4, 3, 8, 8, generator=gen, dtype=torch.float64) * 3
    x = (torch.rand(4, 3, 8, 8, generator=gen, dtype=torch.float64) > 0.5).double()
    expected = Independent(Bernoulli(logits=logits), 3).log_prob(x)
    torch.testing.assert_close(bernoulli_log_lik(logits, x), expected)


def test_bernoulli_log_lik_by_hand() -> None:
    # one pixel, p = sigmoid(0) = 0.5: log 0.5 whatever x is; two pixels: 2 log 0.5
    assert bernoulli_log_lik(torch.zeros(1, 2), torch.tensor([[0.0, 1.0]])).item() == (
        pytest.approx(2 * math.log(0.5))
    )


@pytest.mark.parametrize("shared", [True, False])
def test_gaussian_log_lik_matches_torch_distributions(gen: torch.Generator, shared: bool) -> None:
    mean = torch.rand(4, 3, 8, 8, generator=gen, dtype=torch.float64)
    x = torch.rand(4, 3, 8, 8, generator=gen, dtype=torch.float64)
    if shared:
        log_scale = torch.tensor(-1.7, dtype=torch.float64)
    else:
        log_scale = torch.randn(1, 3, 1, 1, generator=gen, dtype=torch.float64)
    expected = Independent(Normal(mean, log_scale.exp().expand_as(mean)), 3).log_prob(x)
    torch.testing.assert_close(gaussian_log_lik(mean, log_scale, x), expected)


def test_elbo_terms_put_the_pieces_together(gen: torch.Generator) -> None:
    out = torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64)
    x = (torch.rand(2, 3, 4, 4, generator=gen, dtype=torch.float64) > 0.5).double()
    mu = torch.randn(2, 5, generator=gen, dtype=torch.float64)
    logvar = torch.randn(2, 5, generator=gen, dtype=torch.float64)
    q = Independent(Normal(mu, (0.5 * logvar).exp()), 1)
    prior = Independent(Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1)
    kl = kl_divergence(q, prior)

    terms = elbo_terms(out, x, mu, logvar, "bernoulli")
    recon = Independent(Bernoulli(logits=out), 3).log_prob(x)
    torch.testing.assert_close(terms["elbo"], recon - kl)

    log_scale = torch.tensor(-2.0, dtype=torch.float64)
    terms = elbo_terms(out, x, mu, logvar, "gaussian", log_scale)
    normal = Independent(Normal(torch.sigmoid(out), torch.full_like(out, math.exp(-2.0))), 3)
    torch.testing.assert_close(terms["recon"], normal.log_prob(x))
    torch.testing.assert_close(terms["elbo"], normal.log_prob(x) - kl)

    with pytest.raises(ValueError, match="log_scale"):
        elbo_terms(out, x, mu, logvar, "gaussian")


def test_reparameterize_has_the_posterior_moments_and_gradients() -> None:
    torch.manual_seed(0)
    mu = torch.full((200_000, 1), 1.5, requires_grad=True)
    logvar = torch.full((200_000, 1), math.log(0.25), requires_grad=True)
    z = reparameterize(mu, logvar)
    assert z.mean().item() == pytest.approx(1.5, abs=0.01)
    assert z.std().item() == pytest.approx(0.5, abs=0.01)
    z.sum().backward()
    assert mu.grad is not None and logvar.grad is not None
