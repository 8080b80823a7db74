"""The shared GAN/VAE bodies: shapes, the paper's parameter counts by hand, the tiled first
layer against the naive tiling, gradients, and the conv class reaching the right layers."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from torch import nn

from cc_bench.layers import CoordConv2d, CoordConvTranspose2d
from cc_bench.nets import (
    ConvEncoder,
    DeconvGenerator,
    TiledGenerator,
    TiledInput,
    build_discriminator,
    build_generator,
    count_params,
    latent_lines,
    scaled,
)


def test_latent_lines_run_evenly_from_start_to_end():
    start = torch.tensor([[0.0, 1.0], [2.0, -2.0]])
    end = torch.tensor([[4.0, 1.0], [2.0, 2.0]])
    z = latent_lines(start, end, 5).view(2, 5, 2)  # line-major
    assert torch.equal(z[:, 0], start) and torch.equal(z[:, -1], end)
    expected = torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0], [-2.0, -1.0, 0.0, 1.0, 2.0]])
    torch.testing.assert_close(z[0, :, 0], expected[0])
    torch.testing.assert_close(z[1, :, 1], expected[1])
    assert torch.equal(z[0, :, 1], torch.ones(5)) and torch.equal(z[1, :, 0], torch.full((5,), 2.0))


def _conv(c_in: int, c_out: int, k: int) -> int:
    return c_in * c_out * k * k + c_out


def test_paper_parameter_counts():
    bn = 2  # scale and shift per channel
    g_conv = (
        (256 * 512 * 16 + 512 * 16)
        + bn * 512
        + _conv(512, 256, 5)
        + bn * 256
        + _conv(256, 128, 5)
        + bn * 128
        + _conv(128, 64, 5)
        + bn * 64
        + _conv(64, 3, 5)
    )
    g_coord = (
        _conv(256 + 2, 512, 1)
        + sum(_conv(a, b, 1) for a, b in [(512, 256), (256, 256), (256, 128), (128, 64)])
        + bn * (512 + 256 + 256 + 128 + 64 + 64 + 64)
        + 2 * _conv(64, 64, 3)
        + _conv(64, 3, 1)
    )
    d_conv = (
        _conv(3, 64, 5)
        + _conv(64, 128, 5)
        + _conv(128, 256, 5)
        + _conv(256, 512, 5)
        + bn * (128 + 256 + 512)
        + (512 * 4 * 4 + 1)
    )
    assert count_params(build_generator("conv")) == g_conv
    assert count_params(build_generator("coordconv")) == g_coord
    assert count_params(build_discriminator("conv")) == d_conv
    assert count_params(build_discriminator("coordconv")) == d_conv + 2 * 64 * 25
    assert count_params(build_discriminator("coordconv", with_r=True)) == d_conv + 3 * 64 * 25


@pytest.mark.parametrize("kind", ["conv", "coordconv"])
@pytest.mark.parametrize("width", [1 / 16, 0.25])
def test_shapes_range_and_gradients(kind, width):
    g = build_generator(kind, z_dim=32, width=width)
    d = build_discriminator(kind, width=width)
    z = (torch.rand(4, 32) * 2 - 1).requires_grad_()
    x = g(z)
    assert x.shape == (4, 3, 64, 64)
    assert x.abs().max() <= 1
    logit = d(x)
    assert logit.shape == (4, 1) and torch.isfinite(logit).all()
    logit.sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert all(p.grad is not None for p in g.parameters())


def test_width_multiplier_scales_channels():
    assert scaled((512, 256, 3), 0.125) == (64, 32, 1)
    g = DeconvGenerator(16, width=0.125)
    assert g.dense.out_features == 64 * 16
    t = TiledGenerator(16, width=0.5)
    assert t.input.conv.out_channels == 256


def test_conv_class_reaches_the_input_layer_only():
    d = build_discriminator("coordconv", width=0.125)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert isinstance(convs[0], CoordConv2d)
    assert not any(isinstance(m, CoordConv2d) for m in convs[1:])
    g = build_generator("coordconv", width=0.125)
    assert isinstance(g.input.conv, CoordConv2d)
    assert not any(isinstance(m, CoordConv2d) for m in g.body.modules())
    plain = TiledGenerator(8, width=0.125, conv_layer=nn.Conv2d)
    assert type(plain.input.conv) is nn.Conv2d


@pytest.mark.parametrize(
    "layer", [CoordConv2d, partial(CoordConv2d, with_r=True), nn.Conv2d], ids=["cc", "cc_r", "conv"]
)
def test_tiled_input_equals_naive_tiling(layer):
    torch.manual_seed(0)
    tiled = TiledInput(layer, z_dim=7, out_channels=5, size=9)
    assert tiled._fast
    z = torch.randn(3, 7, dtype=torch.float64)
    tiled.double()
    naive = tiled.conv(z[:, :, None, None].expand(3, 7, 9, 9).contiguous())
    fast = tiled(z)
    assert fast.shape == (3, 5, 9, 9)
    torch.testing.assert_close(fast, naive)
    # the gradients too
    w_fast = torch.autograd.grad(fast.square().sum(), tiled.conv.weight)[0]
    w_naive = torch.autograd.grad(
        tiled.conv(z[:, :, None, None].expand(3, 7, 9, 9).contiguous()).square().sum(),
        tiled.conv.weight,
    )[0]
    torch.testing.assert_close(w_fast, w_naive)


def test_tiled_input_falls_back_for_other_layers():
    # not a 1x1 layer: the tiled tensor is convolved as written
    tiled = TiledInput(lambda a, b, kernel_size: nn.Conv2d(a, b, 3, padding=1), 4, 2, 6)
    assert not tiled._fast
    assert tiled(torch.randn(2, 4)).shape == (2, 2, 6, 6)


def test_deconv_generator_other_layers_and_kernels():
    g = DeconvGenerator(
        8, width=1 / 32, kernel_size=4, transpose_layer=CoordConvTranspose2d, out_activation=None
    )
    assert g(torch.randn(2, 8)).shape == (2, 3, 64, 64)
    assert any(isinstance(m, CoordConvTranspose2d) for m in g.modules())


def test_encoder_as_vae_encoder():
    enc = ConvEncoder(2 * 10, width=1 / 16, size=32, conv_layer=CoordConv2d, norm_layer=None)
    assert enc(torch.randn(3, 3, 32, 32)).shape == (3, 20)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in enc.modules())


def test_a_new_encoder_s_batch_norm_has_seen_no_data():
    enc = ConvEncoder(1, width=1 / 16, size=32)
    norms = [m for m in enc.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and enc.training
    for bn in norms:  # as nn.BatchNorm2d starts: the size probe left no trace
        assert int(bn.num_batches_tracked) == 0
        assert torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
        assert torch.equal(bn.running_var, torch.ones_like(bn.running_var))


def test_bad_kind():
    with pytest.raises(ValueError, match="'conv' or 'coordconv'"):
        build_generator("deconv")  # type: ignore[arg-type]
