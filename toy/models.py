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

import functools
import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from cc_bench.envs.not_so_clevr import SQUARE_SIZE
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


CLASSIFIER_INITS = ("offset", "torch")


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
        init: ``"offset"`` (the default) starts the first layer's weights on the centre's
            i, j as the negatives of its (PyTorch-default) weights on the pixel's own i, j,
            so every first unit starts as a function of the offset pixel - centre, the same
            everywhere on the canvas; training is free to change them. ``"torch"`` keeps
            PyTorch's default: the learned peak then drifts by a pixel deep in the held-out
            quadrant on about a third of the seeds. Ignored when the first layer does not
            see the pixel's coordinates (``nn.Conv2d``).
    """

    def __init__(
        self,
        conv_layer: Callable[..., nn.Module] = CoordConv2d,
        widths: Sequence[int] = (32, 32, 64, 64),
        init: str = "offset",
    ) -> None:
        super().__init__()
        if len(widths) == 0 or any(w < 1 for w in widths):
            raise ValueError(
                f"CoordConvClassifier widths must be one or more positive ints, got {widths!r}"
            )
        if init not in CLASSIFIER_INITS:
            raise ValueError(
                f"CoordConvClassifier init must be one of {CLASSIFIER_INITS}, got {init!r}"
            )
        layers: list[nn.Module] = [conv_layer(2, widths[0], 1), nn.ReLU(inplace=True)]
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Conv2d(c_in, c_out, 1), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(widths[-1], 1, 1))
        self.net = nn.Sequential(*layers)
        first = self.net[0]
        if init == "offset" and first.weight.shape[1] >= 4:  # a first layer that sees i, j
            with torch.no_grad():
                # Weight channels: centre i, centre j, pixel i, pixel j (then r, untouched).
                first.weight[:, :2] = -first.weight[:, 2:4]

    def forward(self, coords: Tensor) -> Tensor:
        """Map centres (B, 2) in pixel units to logits (B, 1, 64, 64)."""
        _check_coords(coords, type(self).__name__)
        b = coords.shape[0]
        x = normalize_coords(coords)[:, :, None, None]  # (B, 2, 1, 1)
        x = x.expand(b, 2, CANVAS_SIZE, CANVAS_SIZE)  # (B, 2, 64, 64), no copy
        return self.net(x)  # (B, 1, 64, 64)


# -- rendering (paper section 4, "coordinate rendering") ----------------------------------

RENDER_LINKS = ("teacher", "onehot", "softmax")
PAINTER_INITS = ("prior", "torch")


class CoordConvRenderer(nn.Module):
    """The paper's CoordConv renderer: the classification stage, a softmax, then a painter.

    The classifier puts a softmax over the 64x64 pixels (where the square's centre is); five
    `painter_kernel`-sized convs (8m, 8m, 16m, 16m, 1 channels, ReLU between) paint the square
    around it. How the stages are linked is `link`:
    `softmax`: the painter reads the softmax itself (the paper's end-to-end model);
    `onehot`: the painter reads the hard one-hot of the argmax in the forward pass and the
    softmax's gradient in the backward pass (straight-through), so it paints from exactly the
    kind of input it was trained on, also where the softmax is less peaked (held-out positions);
    `teacher`: the stages are trained separately, at once: in training the painter reads the
    true centre's one-hot (the input coordinates) and the classifier learns from its own
    cross-entropy only; in evaluation the painter reads the one-hot of the classifier's argmax.

    `forward` returns (square logits (B, 1, 64, 64), centre logits (B, 1, 64, 64)); the run
    adds the centre's cross-entropy as an auxiliary loss when asked.

    `init` is the classification stage's (see `CoordConvClassifier`). `painter_init="prior"`
    (the default) starts the painter with He-normal weights (the paper's initialiser), zero
    biases and the last bias at the log-odds of a pixel being in the square (81 / 4096), so
    its first steps do not drive every output to "no square"; `"torch"` keeps PyTorch's
    default, with which some seeds settle on painting nothing or on a square without corners.
    """

    def __init__(
        self,
        conv_layer: Callable[..., nn.Module] = CoordConv2d,
        widths: Sequence[int] = (32, 32, 64, 64),
        painter_width: int = 1,
        painter_kernel: int = 3,
        link: str = "teacher",
        init: str = "offset",
        painter_init: str = "prior",
    ) -> None:
        super().__init__()
        if link not in RENDER_LINKS:
            raise ValueError(f"link must be one of {', '.join(RENDER_LINKS)}, got {link!r}")
        if painter_init not in PAINTER_INITS:
            raise ValueError(
                f"painter_init must be one of {', '.join(PAINTER_INITS)}, got {painter_init!r}"
            )
        self.link = link
        self.classifier = CoordConvClassifier(conv_layer=conv_layer, widths=widths, init=init)
        channels = [1, 8 * painter_width, 8 * painter_width, 16 * painter_width]
        channels += [16 * painter_width, 1]
        layers: list[nn.Module] = []
        for k, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:], strict=True)):
            layers.append(nn.Conv2d(c_in, c_out, painter_kernel, padding="same"))
            if k < len(channels) - 2:
                layers.append(nn.ReLU(inplace=True))
        self.painter = nn.Sequential(*layers)
        if painter_init == "prior":
            self._prior_init(SQUARE_SIZE**2 / CANVAS_SIZE**2)

    @torch.no_grad()
    def _prior_init(self, prior: float) -> None:
        convs = [m for m in self.painter if isinstance(m, nn.Conv2d)]
        for conv in convs:
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")  # the paper's he_normal
            conv.bias.zero_()
        convs[-1].bias.fill_(math.log(prior / (1 - prior)))  # sigmoid(bias) = prior

    def forward(self, coords: Tensor) -> tuple[Tensor, Tensor]:
        """Centres (B, 2) in pixels -> (square logits, centre logits), each (B, 1, 64, 64)."""
        centre = self.classifier(coords)  # (B, 1, 64, 64)
        b = centre.shape[0]
        prob = centre.flatten(1).softmax(1)  # (B, 4096)
        if self.link == "teacher" and self.training:
            true = (coords[:, 0] * CANVAS_SIZE + coords[:, 1]).round().long()[:, None]  # (B, 1)
            prob = torch.zeros_like(prob).scatter_(1, true, 1.0)
        elif self.link in ("onehot", "teacher"):
            hard = torch.zeros_like(prob).scatter_(1, prob.argmax(1, keepdim=True), 1.0)
            prob = hard + prob - prob.detach()  # straight-through: one-hot forward
        heat = prob.view(b, 1, CANVAS_SIZE, CANVAS_SIZE)
        return self.painter(heat), centre


# -- regression (paper section 4, "coordinate regression") --------------------------------


def _check_image(image: Tensor, model: str) -> None:
    if image.dim() != 4 or image.shape[1] != 1:
        raise ValueError(
            f"{model} expects one-hot images of shape (B, 1, H, W), got {tuple(image.shape)}"
        )


class ConvRegressor(nn.Module):
    """The paper's conv baseline on the uniform split: four 3x3 convs of 16, three 2x2
    max-pools, then dense 64 and dense 2. Returns (i, j) / 64, (B, 2)."""

    def __init__(self, width: int = 16, conv_layer: Callable[..., nn.Module] = nn.Conv2d) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for k in range(4):
            layers += [conv_layer(c_in, width, 3, padding=1), nn.ReLU(inplace=True)]
            if k < 3:
                layers.append(nn.MaxPool2d(2))
            c_in = width
        self.features = nn.Sequential(*layers)  # (B, width, 8, 8)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(width * 8 * 8, 64), nn.ReLU(inplace=True), nn.Linear(64, 2)
        )

    def forward(self, image: Tensor) -> Tensor:
        """One-hot images (B, 1, 64, 64) -> coordinates / 64 (B, 2)."""
        _check_image(image, type(self).__name__)
        return self.head(self.features(image))


class GapConvRegressor(nn.Module):
    """The conv baseline the paper used on the quadrant split: nine convs and a global
    average pool, as in the released code (``big_conv2`` in its ``model_builders.py``).

    All ``width`` channels wide: 5x5 stride 2, 1x1, batch norm, 3x3, 3x3 stride 2,
    3x3 stride 2 with batch norm, 3x3 stride 2, 1x1, 3x3 stride 2, then a 3x3 conv to
    the 2 outputs; ReLU after every conv, the last included; then the mean over the
    remaining 2x2 map.
    """

    def __init__(self, width: int = 16, conv_layer: Callable[..., nn.Module] = nn.Conv2d) -> None:
        super().__init__()
        w = width

        def conv(c_in: int, c_out: int, k: int, stride: int = 1) -> nn.Module:
            return conv_layer(c_in, c_out, k, stride=stride, padding=k // 2)

        relu = functools.partial(nn.ReLU, inplace=True)
        self.net = nn.Sequential(
            conv(1, w, 5, 2), relu(),  # 64 -> 32
            conv(w, w, 1), relu(),
            nn.BatchNorm2d(w),
            conv(w, w, 3), relu(),
            conv(w, w, 3, 2), relu(),  # 32 -> 16
            conv(w, w, 3, 2), nn.BatchNorm2d(w), relu(),  # 16 -> 8
            conv(w, w, 3, 2), relu(),  # 8 -> 4
            conv(w, w, 1), relu(),
            conv(w, w, 3, 2), relu(),  # 4 -> 2
            conv(w, 2, 3), relu(),
        )  # fmt: skip

    def forward(self, image: Tensor) -> Tensor:
        """One-hot images (B, 1, 64, 64) -> coordinates / 64 (B, 2)."""
        _check_image(image, type(self).__name__)
        return self.net(image).mean((2, 3))  # global average pool: (B, 2)


REGRESSOR_INITS = ("identity", "torch")


class CoordConvRegressor(nn.Module):
    """The paper's CoordConv regressor: AddCoords, 1x1 convs 8, 8, 8, 3x3 8, 3x3 2, no
    activations at all, then a global max-pool over the 64x64 map (906 parameters).

    The first layer is `conv_layer(1, 8, 1)` (CoordConv2d: it also sees i, j). The net is
    linear, so each output channel is the one-hot's response (a peak around the hot
    pixel) plus a function of the coordinates (a ramp over the canvas); the max-pool
    returns the right coordinate only if the peak stands higher than the ramp everywhere,
    and its gradient reaches only the pixel where the max fell.

    Args:
        conv_layer: the first layer's class or factory, called as ``conv_layer(1, width, 1)``.
        width: channels of the hidden convs (8 in the paper).
        init: ``"identity"`` (the default) starts the net at "output = the one-hot peak":
            the layers after the first are identity maps (``nn.init.dirac_``, plus
            N(0, 0.01) noise), the first layer passes the one-hot at height 2 with zero
            coordinate weights, every bias is 0 except the last layer's, which starts at
            0.5 - 2 (the mean target). The max then sits on the hot pixel from the first
            step and training only has to grow the coordinate ramp. ``"torch"`` keeps
            PyTorch's default initialisation (the paper used He-normal): there the ramp
            starts higher than the peak, the max falls in a corner of the canvas for every
            example, and training usually settles on the mean coordinate.
    Returns (i, j) / 64, (B, 2).
    """

    def __init__(
        self,
        conv_layer: Callable[..., nn.Module] = CoordConv2d,
        width: int = 8,
        init: str = "identity",
    ) -> None:
        super().__init__()
        if init not in REGRESSOR_INITS:
            raise ValueError(
                f"CoordConvRegressor init must be one of {REGRESSOR_INITS}, got {init!r}"
            )
        self.net = nn.Sequential(
            conv_layer(1, width, 1),
            nn.Conv2d(width, width, 1),
            nn.Conv2d(width, width, 1),
            nn.Conv2d(width, width, 3, padding=1),
            nn.Conv2d(width, 2, 3, padding=1),
        )
        if init == "identity":
            self._identity_init(peak=2.0, mean_target=0.5)

    @torch.no_grad()
    def _identity_init(self, peak: float, mean_target: float) -> None:
        first, *rest = self.net
        first.weight.zero_()
        first.weight[:, 0] = peak  # the one-hot channel; the coordinate weights stay 0
        for conv in self.net:
            conv.bias.zero_()
        for conv in rest:
            nn.init.dirac_(conv.weight)  # channel k -> channel k (centre tap of 3x3)
            conv.weight.add_(torch.randn_like(conv.weight), alpha=0.01)
        rest[-1].bias.fill_(mean_target - peak)

    def forward(self, image: Tensor) -> Tensor:
        """One-hot images (B, 1, 64, 64) -> coordinates / 64 (B, 2)."""
        _check_image(image, type(self).__name__)
        return self.net(image).amax((2, 3))  # global max-pool: (B, 2)
