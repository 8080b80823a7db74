"""Network bodies the Sort-of-CLEVR GANs and VAEs share (Liu et al. 2018, section 5).

The official architectures (Liu et al. 2018's released code; the tiled generator with batch
norm after each hidden layer, which the released one lacks: docs/gan.md), each with a width
multiplier
so the same network trains on a laptop CPU, and each taking its conv class so conv and
CoordConv are one network (STYLE rule 2):

- `DeconvGenerator`: z -> dense to 4x4x512 -> 5x5 stride-2 transposed convs 256, 128, 64, 3
  (64x64). The conv generator, or a VAE's conv decoder.
- `TiledGenerator`: z tiled over the 64x64 canvas with the coordinates i, j (the first layer
  is `conv_layer`, CoordConv2d by default), then 1x1 convs 512, 256, 256, 128, 64, then 3x3
  64, 3x3 64, 1x1 3, batch norm after each hidden layer (`norm_layer=None`: none, as
  released). The CoordConv generator, or a VAE's CoordConv decoder.
- `ConvEncoder`: 5x5 stride-2 convs 64, 128, 256, 512 with batch norm and leaky ReLU 0.2,
  then dense. Its first conv is `conv_layer` (CoordConv2d: "CoordConv at its input"). A
  discriminator with `out_features=1`, a VAE encoder with `out_features=2 * z_dim`.

`build_generator(kind, ...)` and `build_discriminator(kind, ...)` pick them by name, "conv" or
"coordconv". Every body ends in raw numbers or `out_activation` (tanh for images in [-1, 1]).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cc_bench.layers import CoordConv2d, coord_grid

ConvLayer = Callable[..., nn.Module]
"""A 2-D conv class or factory: `nn.Conv2d`, `CoordConv2d`, `partial(CoordConv2d, with_r=True)`."""
NormLayer = Callable[[int], nn.Module] | None
"""A norm class taking the channel count (`nn.BatchNorm2d`), or None for no norm."""

G_CHANNELS = (512, 256, 128, 64)
"""The conv generator's channels: the dense layer's 4x4 map, then the transposed convs."""
TILED_CHANNELS = (512, 256, 256, 128, 64)
"""The CoordConv generator's 1x1 convs."""
TILED_TAIL = (64, 64)
"""The CoordConv generator's 3x3 convs, before its last 1x1 conv."""
D_CHANNELS = (64, 128, 256, 512)
"""The discriminator's 5x5 stride-2 convs."""


def scaled(channels: Sequence[int], width: float) -> tuple[int, ...]:
    """Channel counts times the width multiplier, rounded, at least 1."""
    return tuple(max(1, round(c * width)) for c in channels)


def _norm(norm_layer: NormLayer, channels: int) -> nn.Module:
    return norm_layer(channels) if norm_layer is not None else nn.Identity()


def _activation(out_activation: Callable[[], nn.Module] | None) -> nn.Module:
    return out_activation() if out_activation is not None else nn.Identity()


def dcgan_init(module: nn.Module) -> None:
    """DCGAN's initialisation: conv and dense weights N(0, 0.02), norm scales N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DeconvGenerator(nn.Module):
    """The conv generator: z -> dense to a 4x4 map -> stride-2 transposed convs -> image.

    (B, z_dim) -> (B, out_channels, size, size), size = 4 * 2^len(channels); with the paper's
    channels: 4x4x512 -> 8x8x256 -> 16x16x128 -> 32x32x64 -> 64x64x3.

    Args:
        z_dim: latent size.
        width: channel multiplier (1: the paper's 512, 256, 128, 64).
        out_channels: image channels.
        kernel_size: of the transposed convs (the paper: 5).
        transpose_layer: the transposed conv class (`nn.ConvTranspose2d` or
            `CoordConvTranspose2d`), used for every upsampling layer.
        norm_layer: after the dense layer and every hidden transposed conv (DCGAN: batch norm).
        out_activation: applied to the output (`nn.Tanh` for images in [-1, 1]; None: raw).
        channels: the 4x4 map's channels then each hidden transposed conv's, before `width`.
    """

    def __init__(
        self,
        z_dim: int = 256,
        *,
        width: float = 1.0,
        out_channels: int = 3,
        kernel_size: int = 5,
        transpose_layer: ConvLayer = nn.ConvTranspose2d,
        norm_layer: NormLayer = nn.BatchNorm2d,
        out_activation: Callable[[], nn.Module] | None = nn.Tanh,
        channels: Sequence[int] = G_CHANNELS,
    ) -> None:
        super().__init__()
        ch = scaled(channels, width)
        self.z_dim = z_dim
        self.base = ch[0]
        self.size = 4 * 2 ** len(ch)
        self.dense = nn.Linear(z_dim, ch[0] * 16)
        self.dense_norm = _norm(norm_layer, ch[0])
        pad = (kernel_size - 1) // 2
        up = partial(
            transpose_layer,
            kernel_size=kernel_size,
            stride=2,
            padding=pad,
            output_padding=1 + 2 * pad - kernel_size + 1,  # exactly doubles H and W
        )
        layers: list[nn.Module] = []
        for c_in, c_out in zip(ch[:-1], ch[1:], strict=True):
            layers += [up(c_in, c_out), _norm(norm_layer, c_out), nn.ReLU(inplace=True)]
        layers += [up(ch[-1], out_channels), _activation(out_activation)]
        self.body = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        """(B, z_dim) -> (B, out_channels, size, size)."""
        h = self.dense(z).view(z.shape[0], self.base, 4, 4)  # (B, C0, 4, 4)
        return self.body(F.relu(self.dense_norm(h)))


class TiledInput(nn.Module):
    """The first layer of the CoordConv generator: a 1x1 conv over z tiled on the canvas.

    (B, z_dim) -> (B, out, size, size), equal to `conv(z tiled to (B, z_dim, size, size))`.
    Since z is the same at every pixel, its part of a 1x1 conv is one dense product per image,
    broadcast; only the coordinate channels (a CoordConv's) vary over the canvas. So the
    tiled tensor is never built and the layer costs (B, out) + (1, out, size, size), not
    B * size^2 * z_dim * out: the same numbers, several times faster.
    """

    def __init__(self, conv_layer: ConvLayer, z_dim: int, out_channels: int, size: int) -> None:
        super().__init__()
        self.conv = conv_layer(z_dim, out_channels, kernel_size=1)
        self.size = size
        self.z_dim = z_dim
        conv = self.conv
        self._fast = (
            isinstance(conv, nn.Conv2d)
            and conv.kernel_size == (1, 1)
            and conv.groups == 1
            and conv.padding in ((0, 0), "valid")
            and conv.padding_mode == "zeros"
        )

    def forward(self, z: Tensor) -> Tensor:
        """(B, z_dim) -> (B, out, size, size)."""
        b = z.shape[0]
        if not self._fast:  # an unfamiliar layer: convolve the tiled tensor as written
            tiled = z[:, :, None, None].expand(b, self.z_dim, self.size, self.size)
            return self.conv(tiled)
        w = self.conv.weight[:, :, 0, 0]  # (out, z_dim [+ n_coords])
        n_coords = getattr(self.conv, "n_coords", 0)
        out = F.linear(z, w[:, : self.z_dim], self.conv.bias)[:, :, None, None]  # (B, out, 1, 1)
        if n_coords == 0:
            return out.expand(b, -1, self.size, self.size)
        grid = coord_grid((self.size, self.size), self.conv.with_r, z.device, z.dtype)
        coords = torch.einsum("oc,bchw->bohw", w[:, self.z_dim :], grid)  # (1, out, H, W)
        return out + coords  # (B, out, H, W)


class TiledGenerator(nn.Module):
    """The CoordConv generator: z tiled over the canvas with i, j, 1x1 convs, then 3x3 convs.

    (B, z_dim) -> (B, out_channels, size, size). The paper's: 1x1 convs 512, 256, 256, 128,
    64 (the first one reading z and the coordinates), 3x3 64, 3x3 64, 1x1 out.

    Args:
        z_dim: latent size.
        width: channel multiplier on every hidden layer.
        out_channels: image channels.
        size: canvas side.
        conv_layer: the first 1x1 conv, the one that sees the tiled z: `CoordConv2d` adds the
            coordinates (the paper's); `nn.Conv2d` is the ablation without them.
        norm_layer: after every hidden conv (DCGAN: batch norm).
        out_activation: applied to the output (`nn.Tanh` for images in [-1, 1]; None: raw).
        channels, tail: the 1x1 and 3x3 hidden widths, before `width`.
    """

    def __init__(
        self,
        z_dim: int = 256,
        *,
        width: float = 1.0,
        out_channels: int = 3,
        size: int = 64,
        conv_layer: ConvLayer = CoordConv2d,
        norm_layer: NormLayer = nn.BatchNorm2d,
        out_activation: Callable[[], nn.Module] | None = nn.Tanh,
        channels: Sequence[int] = TILED_CHANNELS,
        tail: Sequence[int] = TILED_TAIL,
    ) -> None:
        super().__init__()
        ch, tl = scaled(channels, width), scaled(tail, width)
        self.z_dim = z_dim
        self.size = size
        self.input = TiledInput(conv_layer, z_dim, ch[0], size)
        layers: list[nn.Module] = [_norm(norm_layer, ch[0]), nn.ReLU(inplace=True)]
        for c_in, c_out in zip(ch[:-1], ch[1:], strict=True):
            layers += [nn.Conv2d(c_in, c_out, 1), _norm(norm_layer, c_out), nn.ReLU(inplace=True)]
        prev = ch[-1]
        for c in tl:
            layers += [
                nn.Conv2d(prev, c, 3, padding=1),
                _norm(norm_layer, c),
                nn.ReLU(inplace=True),
            ]
            prev = c
        layers += [nn.Conv2d(prev, out_channels, 1), _activation(out_activation)]
        self.body = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        """(B, z_dim) -> (B, out_channels, size, size)."""
        return self.body(self.input(z))


class ConvEncoder(nn.Module):
    """The discriminator (or a VAE's encoder): stride-2 convs, then dense.

    (B, in_channels, size, size) -> (B, out_features). The paper's: 5x5 stride-2 convs 64,
    128, 256, 512, each but the first followed by batch norm, all by leaky ReLU 0.2, then
    dense to one logit.

    Args:
        out_features: 1 for a discriminator's logit, 2 * z_dim for a VAE's mean and log-variance.
        width: channel multiplier.
        in_channels, size: the images'.
        kernel_size: of the convs (the paper: 5).
        conv_layer: the first conv, the one that sees the image: `nn.Conv2d`, or `CoordConv2d`
            for the CoordConv discriminator ("CoordConv at its input").
        norm_layer: after every conv but the first (DCGAN: batch norm).
        channels: the convs' widths, before `width`.
    """

    def __init__(
        self,
        out_features: int = 1,
        *,
        width: float = 1.0,
        in_channels: int = 3,
        size: int = 64,
        kernel_size: int = 5,
        conv_layer: ConvLayer = nn.Conv2d,
        norm_layer: NormLayer = nn.BatchNorm2d,
        channels: Sequence[int] = D_CHANNELS,
    ) -> None:
        super().__init__()
        ch = scaled(channels, width)
        pad = (kernel_size - 1) // 2
        layers: list[nn.Module] = []
        prev = in_channels
        for k, c in enumerate(ch):
            make = conv_layer if k == 0 else nn.Conv2d
            layers.append(make(prev, c, kernel_size, stride=2, padding=pad))
            if k > 0:
                layers.append(_norm(norm_layer, c))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            prev = c
        self.features = nn.Sequential(*layers)
        # The flattened size, from one sample (as SB3's NatureCNN does), in eval mode: batch
        # norm's running statistics must not start from a probe of zeros.
        self.features.eval()
        with torch.no_grad():
            n_flat = self.features(torch.zeros(1, in_channels, size, size)).numel()
        self.features.train()
        self.head = nn.Linear(n_flat, out_features)

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_channels, size, size) -> (B, out_features)."""
        return self.head(self.features(x).flatten(1))


def _coordconv(with_r: bool) -> ConvLayer:
    return partial(CoordConv2d, with_r=True) if with_r else CoordConv2d


def build_generator(
    kind: Literal["conv", "coordconv"],
    z_dim: int = 256,
    *,
    width: float = 1.0,
    with_r: bool = False,
    **kwargs: Any,
) -> nn.Module:
    """The paper's conv (`DeconvGenerator`) or CoordConv (`TiledGenerator`) generator/decoder,
    DCGAN-initialised. `kwargs` go to the class (out_channels, norm_layer, out_activation...)."""
    if kind == "conv":
        model: nn.Module = DeconvGenerator(z_dim, width=width, **kwargs)
    elif kind == "coordconv":
        model = TiledGenerator(z_dim, width=width, conv_layer=_coordconv(with_r), **kwargs)
    else:
        raise ValueError(f"invalid generator kind {kind!r}: must be 'conv' or 'coordconv'")
    dcgan_init(model)
    return model


def build_discriminator(
    kind: Literal["conv", "coordconv"],
    out_features: int = 1,
    *,
    width: float = 1.0,
    with_r: bool = False,
    **kwargs: Any,
) -> nn.Module:
    """The paper's discriminator (or an encoder, with `out_features`): `ConvEncoder` with a plain
    conv (`conv`) or a CoordConv (`coordconv`) at its input, DCGAN-initialised."""
    if kind not in ("conv", "coordconv"):
        raise ValueError(f"invalid discriminator kind {kind!r}: must be 'conv' or 'coordconv'")
    first = nn.Conv2d if kind == "conv" else _coordconv(with_r)
    model = ConvEncoder(out_features, width=width, conv_layer=first, **kwargs)
    dcgan_init(model)
    return model


def count_params(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def latent_lines(start: Tensor, end: Tensor, steps: int) -> Tensor:
    """Straight lines in latent space, `steps` points each, both ends included.

    (K, Z) and (K, Z) -> (K * steps, Z), line-major: the GAN's interpolations between pairs
    of z and the VAE's between pairs of posterior means.
    """
    t = torch.linspace(0, 1, steps, device=start.device, dtype=start.dtype)[None, :, None]
    return ((1 - t) * start[:, None] + t * end[:, None]).reshape(-1, start.shape[-1])


__all__ = [
    "ConvEncoder",
    "DeconvGenerator",
    "TiledGenerator",
    "TiledInput",
    "build_discriminator",
    "build_generator",
    "count_params",
    "dcgan_init",
    "latent_lines",
    "scaled",
]
