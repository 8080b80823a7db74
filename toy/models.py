"""Models of the coordinate classification task (Liu et al. 2018, sections 3 and 4).

Supervised coordinate classification: the centre (i, j) of a Not-so-CLEVR
example goes in, one logit per pixel of the 64x64 canvas comes out, and the
softmax over the 4,096 pixels is trained with cross-entropy against the flat
index i * 64 + j.

Input convention of every model here: a float (B, 2) tensor of centres (i, j)
in pixel units (row, column; the integer values of
`cc_bench.envs.not_so_clevr.NotSoClevr.coords`). The models scale them
themselves, with `normalize_coords`, to [-1, 1] exactly as CoordConv scales its
coordinate channels (index / 63 * 2 - 1), so a centre and the CoordConv channel
value of the pixel it names are the same number.

Output convention: logits of shape (B, C, 64, 64), C = 1 for classification.
The caller flattens them, ``logits.flatten(1)`` -> (B, 4096), before
``F.cross_entropy(logits, target)`` and before taking the argmax.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor, nn

from cc_bench.layers import CoordConv2d

CANVAS_SIZE = 64
"""Height and width of the output map in pixels."""


def normalize_coords(coords: Tensor, size: int = CANVAS_SIZE) -> Tensor:
    """Scale pixel coordinates in 0..size-1 to [-1, 1], as CoordConv scales its grid."""
    return coords / (size - 1) * 2.0 - 1.0


def _check_coords(coords: Tensor, model: str) -> None:
    if coords.dim() != 2 or coords.shape[1] != 2:
        raise ValueError(
            f"{model} expects centres (i, j) as a float tensor of shape (B, 2), "
            f"got shape {tuple(coords.shape)}"
        )


class DeconvClassifier(nn.Module):
    """The deconvolution baseline: the 2 coordinates as a 1x1 map, upsampled to 64x64.

    Six stride-2 transposed convolutions double the map from 1x1 to 64x64, with
    64m, 64m, 64m, 32m, 32m and `out_channels` channels, each but the last
    followed by batch norm and ReLU. Padding and output padding are chosen so that
    every layer exactly doubles its input for any kernel size: padding
    (fs - 1) // 2 and output padding 2 - fs + 2 * padding (0 or 1).

    Args:
        width: the channel multiplier m (the paper sweeps 1..3).
        kernel_size: the kernel size fs of every layer (the paper sweeps 2..4).
        out_channels: channels of the output map (1 for classification logits).
        conv_layer: the transposed convolution class or factory, called like
            ``nn.ConvTranspose2d(in, out, kernel_size, stride=2, padding=p, output_padding=op)``.
    """

    def __init__(
        self,
        width: int = 1,
        kernel_size: int = 3,
        out_channels: int = 1,
        conv_layer: Callable[..., nn.Module] = nn.ConvTranspose2d,
    ) -> None:
        super().__init__()
        if width < 1:
            raise ValueError(f"DeconvClassifier width must be at least 1, got {width!r}")
        if kernel_size < 1:
            raise ValueError(
                f"DeconvClassifier kernel_size must be at least 1, got {kernel_size!r}"
            )
        padding = (kernel_size - 1) // 2
        output_padding = 2 - kernel_size + 2 * padding  # makes every layer double: 0 or 1
        channels = [2, 64 * width, 64 * width, 64 * width, 32 * width, 32 * width, out_channels]
        layers: list[nn.Module] = []
        for k, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:], strict=True)):
            layers.append(
                conv_layer(
                    c_in,
                    c_out,
                    kernel_size,
                    stride=2,
                    padding=padding,
                    output_padding=output_padding,
                )
            )
            if k < len(channels) - 2:
                layers += [nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        self.net = nn.Sequential(*layers)

    def forward(self, coords: Tensor) -> Tensor:
        """Map centres (B, 2) in pixel units to logits (B, out_channels, 64, 64)."""
        _check_coords(coords, type(self).__name__)
        x = normalize_coords(coords)[:, :, None, None]  # (B, 2, 1, 1)
        return self.net(x)  # (B, out_channels, 64, 64)


class CoordConvClassifier(nn.Module):
    """The paper's CoordConv classifier: the coordinates tiled to 64x64, then 1x1 convs.

    The centre (B, 2) is broadcast to a (B, 2, 64, 64) map; `conv_layer(2,
    widths[0], 1)` reads it (with `CoordConv2d` it also sees the pixel's own i, j:
    4 input channels), then 1x1 convs through `widths[1:]` and a last 1x1 conv to
    one channel, ReLU between. Every pixel therefore compares its own position
    with the centre through the same small MLP. With the defaults and
    `CoordConv2d` it has the paper's 7,553 parameters; with ``nn.Conv2d`` it is the
    same network without coordinates (7,489 parameters), which cannot tell the
    pixels apart.

    Args:
        conv_layer: the first layer's class or factory, called as
            ``conv_layer(2, widths[0], 1)``: `CoordConv2d` (or a partial of it
            with ``with_r=True``) or ``nn.Conv2d``. The later layers are plain 1x1
            ``nn.Conv2d``, as in the paper.
        widths: output channels of the hidden 1x1 convs.
    """

    def __init__(
        self,
        conv_layer: Callable[..., nn.Module] = CoordConv2d,
        widths: Sequence[int] = (32, 32, 64, 64),
    ) -> None:
        super().__init__()
        if len(widths) == 0 or any(w < 1 for w in widths):
            raise ValueError(
                f"CoordConvClassifier widths must be one or more positive ints, got {widths!r}"
            )
        layers: list[nn.Module] = [conv_layer(2, widths[0], 1), nn.ReLU(inplace=True)]
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Conv2d(c_in, c_out, 1), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(widths[-1], 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, coords: Tensor) -> Tensor:
        """Map centres (B, 2) in pixel units to logits (B, 1, 64, 64)."""
        _check_coords(coords, type(self).__name__)
        b = coords.shape[0]
        x = normalize_coords(coords)[:, :, None, None]  # (B, 2, 1, 1)
        x = x.expand(b, 2, CANVAS_SIZE, CANVAS_SIZE)  # (B, 2, 64, 64), no copy
        return self.net(x)  # (B, 1, 64, 64)
