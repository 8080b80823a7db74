"""Coordinate classification models: shapes, exact parameter counts, gradients."""

import functools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cc_bench.layers import CoordConv2d
from cc_bench.toy.models import (
    CoordConvClassifier,
    CoordConvRegressor,
    CoordConvRenderer,
    DeconvClassifier,
    normalize_coords,
)

CENTRES = torch.tensor([[4.0, 4.0], [59.0, 59.0], [33.0, 12.0]])  # (B, 2), pixel units


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def deconv_params_by_hand(m: int, fs: int, out_channels: int = 1) -> int:
    channels = [2, 64 * m, 64 * m, 64 * m, 32 * m, 32 * m, out_channels]
    total = 0
    for k in range(6):
        c_in, c_out = channels[k], channels[k + 1]
        total += c_in * c_out * fs * fs + c_out  # weight and bias
        if k < 5:
            total += 2 * c_out  # batch norm scale and shift
    return total


@pytest.mark.parametrize("fs", [2, 3, 4])
@pytest.mark.parametrize("m", [1, 2, 3])
def test_deconv_shape_and_params(fs, m):
    torch.manual_seed(0)
    model = DeconvClassifier(width=m, kernel_size=fs)
    out = model(CENTRES)
    assert out.shape == (3, 1, 64, 64)
    assert torch.isfinite(out).all()
    assert n_params(model) == deconv_params_by_hand(m, fs)


def test_deconv_param_range_matches_paper():
    # The paper: "about 0.1M to 1.6M parameters" over fs 2..4 and m 1..3.
    assert n_params(DeconvClassifier(width=3, kernel_size=4)) == 1_632_001
    assert 40_000 < n_params(DeconvClassifier(width=1, kernel_size=2)) < 110_000


def test_deconv_out_channels():
    model = DeconvClassifier(width=1, kernel_size=4, out_channels=3)
    assert model(CENTRES).shape == (3, 3, 64, 64)
    assert n_params(model) == deconv_params_by_hand(1, 4, out_channels=3)


def test_coordconv_classifier_params():
    # 1x1 convs: (in + 2 coordinate channels) * out + out, then plain ones.
    by_hand = (2 + 2) * 32 + 32 + 32 * 32 + 32 + 32 * 64 + 64 + 64 * 64 + 64 + 64 * 1 + 1
    assert by_hand == 7553  # the paper's count
    assert n_params(CoordConvClassifier()) == 7553
    assert n_params(CoordConvClassifier(conv_layer=nn.Conv2d)) == by_hand - 2 * 32
    with_r = CoordConvClassifier(conv_layer=functools.partial(CoordConv2d, with_r=True))
    assert n_params(with_r) == by_hand + 32


@pytest.mark.parametrize("conv_layer", [CoordConv2d, nn.Conv2d])
def test_coordconv_classifier_shape(conv_layer):
    out = CoordConvClassifier(conv_layer=conv_layer)(CENTRES)
    assert out.shape == (3, 1, 64, 64)
    assert torch.isfinite(out).all()


def test_plain_conv_classifier_cannot_tell_pixels_apart():
    # Without coordinates every pixel sees the same input, so all logits are equal.
    out = CoordConvClassifier(conv_layer=nn.Conv2d)(CENTRES)
    assert torch.allclose(out, out[:, :, :1, :1].expand_as(out))


def test_normalize_coords_matches_coordconv_grid():
    # The grid channel i at row r is r / 63 * 2 - 1 (the layer's documented convention).
    rows = torch.arange(64.0)
    expected = rows / 63 * 2 - 1
    assert torch.allclose(normalize_coords(rows), expected)
    assert normalize_coords(torch.tensor(0.0)) == -1 and normalize_coords(torch.tensor(63.0)) == 1


@pytest.mark.parametrize(
    "make",
    [
        lambda: DeconvClassifier(width=1, kernel_size=3),
        lambda: DeconvClassifier(width=2, kernel_size=2),
        lambda: CoordConvClassifier(),
        lambda: CoordConvClassifier(conv_layer=nn.Conv2d),
    ],
    ids=["deconv-m1-fs3", "deconv-m2-fs2", "coordconv", "conv"],
)
def test_gradients_reach_every_parameter(make):
    torch.manual_seed(0)
    model = make()
    logits = model(CENTRES).flatten(1)  # (B, 4096)
    target = (CENTRES[:, 0] * 64 + CENTRES[:, 1]).long()
    # Cross-entropy gives the coordinate-blind ablation exactly zero gradient (all its
    # pixels are equal), so a random weighting of the logits checks the wiring instead.
    loss = F.cross_entropy(logits, target) + (logits * torch.randn_like(logits)).mean()
    loss.backward()
    assert torch.isfinite(loss)
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("make", [DeconvClassifier, CoordConvClassifier])
def test_rejects_wrong_input_shape(make):
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        make()(torch.zeros(3, 2, 64, 64))


def test_bad_hyperparameters():
    with pytest.raises(ValueError, match="width"):
        DeconvClassifier(width=0)
    with pytest.raises(ValueError, match="kernel_size"):
        DeconvClassifier(kernel_size=0)
    with pytest.raises(ValueError, match="widths"):
        CoordConvClassifier(widths=())


# -- the CoordConv regressor's initialisation ------------------------------------------------


def _one_hots(centres: torch.Tensor) -> torch.Tensor:
    """(N, 2) integer centres -> (N, 1, 64, 64) one-hot images, built independently."""
    images = torch.zeros(len(centres), 1, 64, 64)
    for k, (i, j) in enumerate(centres.tolist()):
        images[k, 0, i, j] = 1.0
    return images


def test_coordconv_regressor_params():
    assert sum(p.numel() for p in CoordConvRegressor().parameters()) == 906  # the paper's


def test_identity_init_puts_the_max_on_the_hot_pixel():
    torch.manual_seed(0)
    model = CoordConvRegressor(init="identity")
    centres = torch.tensor([[4, 4], [4, 59], [59, 4], [59, 59], [31, 40], [50, 12]])
    with torch.no_grad():
        maps = model.net(_one_hots(centres))  # (N, 2, 64, 64)
        pred = model(_one_hots(centres))
    flat = maps.flatten(2).argmax(-1)  # (N, 2)
    assert torch.equal(flat // 64, centres[:, :1].expand(-1, 2))
    assert torch.equal(flat % 64, centres[:, 1:].expand(-1, 2))
    # No coordinate weights yet: every example gets the same prediction, the peak (height
    # 2, give or take the N(0, 0.01) noise) plus the last bias (0.5 - 2), near the mean.
    torch.testing.assert_close(pred, pred[:1].expand_as(pred), atol=1e-6, rtol=0)
    assert (pred - 0.5).abs().max() < 0.25


def test_torch_init_is_pytorch_default():
    torch.manual_seed(3)
    model = CoordConvRegressor(init="torch")
    torch.manual_seed(3)
    reference = nn.Sequential(
        CoordConv2d(1, 8, 1),
        nn.Conv2d(8, 8, 1),
        nn.Conv2d(8, 8, 1),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.Conv2d(8, 2, 3, padding=1),
    )
    for a, b in zip(model.net.state_dict().values(), reference.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_coordconv_regressor_rejects_unknown_init():
    with pytest.raises(ValueError, match="init must be one of"):
        CoordConvRegressor(init="he")


# -- the CoordConv classifier's and renderer's initialisations ------------------------------


def test_offset_init_first_layer_reads_pixel_minus_centre():
    torch.manual_seed(0)
    model = CoordConvClassifier(init="offset")
    first = model.net[0]
    # Pre-activations of the first layer for two centres on the 64x64 canvas.
    a = first(
        torch.tensor([[10.0, 20.0]]).div(63).mul(2).sub(1)[:, :, None, None].expand(1, 2, 64, 64)
    )
    b = first(
        torch.tensor([[15.0, 23.0]]).div(63).mul(2).sub(1)[:, :, None, None].expand(1, 2, 64, 64)
    )
    # Same offset pixel - centre, same response: pixel (30, 40) for the first centre and
    # (35, 43) for the second.
    torch.testing.assert_close(a[0, :, 30, 40], b[0, :, 35, 43])
    torch.testing.assert_close(a[0, :, 5, 60], b[0, :, 10, 63])
    w = first.weight[:, :, 0, 0]
    torch.testing.assert_close(w[:, :2], -w[:, 2:4])


def test_torch_init_classifier_is_pytorch_default():
    torch.manual_seed(5)
    model = CoordConvClassifier(init="torch")
    torch.manual_seed(5)
    reference = CoordConv2d(2, 32, 1)
    torch.testing.assert_close(model.net[0].weight, reference.weight, atol=0, rtol=0)
    assert not torch.equal(model.net[0].weight[:, :2], -model.net[0].weight[:, 2:4])


def test_offset_init_leaves_a_plain_first_layer_alone():
    torch.manual_seed(1)
    model = CoordConvClassifier(conv_layer=nn.Conv2d, init="offset")
    torch.manual_seed(1)
    torch.testing.assert_close(model.net[0].weight, nn.Conv2d(2, 32, 1).weight, atol=0, rtol=0)


def test_prior_painter_init_starts_at_the_square_prior():
    torch.manual_seed(0)
    renderer = CoordConvRenderer(painter_init="prior")
    prior = 81 / 4096
    with torch.no_grad():
        blank = torch.sigmoid(renderer.painter(torch.zeros(1, 1, 64, 64)))
    # No one-hot, every ReLU input 0: the output is the last bias alone.
    torch.testing.assert_close(blank, torch.full_like(blank, prior))
    for conv in [m for m in renderer.painter if isinstance(m, nn.Conv2d)][:-1]:
        assert torch.count_nonzero(conv.bias) == 0
        fan_in = conv.weight[0].numel()
        assert 0.5 < conv.weight.std().item() / (2 / fan_in) ** 0.5 < 1.5  # He-normal scale


def test_unknown_inits_are_refused():
    with pytest.raises(ValueError, match="init must be one of"):
        CoordConvClassifier(init="he")
    with pytest.raises(ValueError, match="painter_init must be one of"):
        CoordConvRenderer(painter_init="zero")
