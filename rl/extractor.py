"""The CoordConv features extractor for stable-baselines3 (Liu et al. 2018, section 6: Atari).

`CoordConvNatureCNN` is SB3's `NatureCNN` (Mnih et al. 2015: three convs 32/8/4, 64/4/2,
64/3/1, flatten, linear to `features_dim`, ReLU) with its first conv (`where="first"`) or
every conv (`where="all"`) a `CoordConv2d`. It goes into any SB3 agent that takes
`CnnPolicy` the documented way, through `policy_kwargs`, and is saved and loaded with it:

    from cc_bench.rl import coordconv_policy_kwargs
    model = A2C("CnnPolicy", env, policy_kwargs=coordconv_policy_kwargs(where="first"))
"""

from __future__ import annotations

from typing import Any, Literal

import gymnasium as gym
import torch
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space, is_image_space_channels_first
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from cc_bench.errors import UserError
from cc_bench.layers import CoordConv2d

WHERE = ("first", "all")


class WhereError(UserError, ValueError):
    """A `where` other than "first" or "all" (a ValueError; one line on the command line)."""


class ObservationSpaceError(UserError, AssertionError):
    """An observation space the extractor cannot take.

    It is an `AssertionError` too, since `NatureCNN` asserts, so code written to catch
    `NatureCNN`'s error catches this one; the command line prints it as one line (exit 2).
    """


def check_image_space(
    observation_space: gym.Space, normalized_image: bool, name: str = "CoordConvNatureCNN"
) -> None:
    """Raise ObservationSpaceError unless `observation_space` is a channel-first image space.

    The checks are `NatureCNN`'s (a `Box`; with `normalized_image=False` also uint8 in
    [0, 255]), plus the channel order, which `NatureCNN` does not check: a channel-last space
    would be read as one with H channels and silently give wrong coordinates.
    """
    if not isinstance(observation_space, spaces.Box):
        raise ObservationSpaceError(
            f"{name} must be used with a gym.spaces.Box observation space, not "
            f"{observation_space} (you are probably using `CnnPolicy` instead of `MlpPolicy` "
            "or `MultiInputPolicy`)"
        )
    if not is_image_space(
        observation_space, check_channels=False, normalized_image=normalized_image
    ):
        raise ObservationSpaceError(
            f"You should use {name} only with images, not with {observation_space} (you are "
            "probably using `CnnPolicy` instead of `MlpPolicy` or `MultiInputPolicy`; images "
            "must be uint8 in [0, 255] of shape (C, H, W); for a custom environment check it "
            "with stable_baselines3.common.env_checker.check_env; for already normalized "
            "channel-first images pass normalize_images=False to the policy and "
            "normalized_image=True to the extractor)"
        )
    if not is_image_space_channels_first(observation_space):
        if is_image_space(observation_space, check_channels=False):  # uint8 in [0, 255]
            how = (
                "SB3's agents transpose channel-last uint8 image spaces themselves "
                "(VecTransposeImage); when you build the extractor by hand, transpose the "
                "space first"
            )
        else:  # SB3 transposes only uint8 [0, 255] images
            how = (
                "SB3 does not transpose float (already normalized) images: make the "
                "environment emit (C, H, W) frames, or wrap it in VecTransposeImage"
            )
        raise ObservationSpaceError(
            f"{name} needs channel-first images (C, H, W), got shape "
            f"{observation_space.shape}: {how}"
        )


def min_image_size(convs: nn.Sequential) -> int:
    """The smallest height (and width) for which `convs` leaves at least one pixel.

    A conv maps a size `n` to `(n + 2 * padding - kernel) // stride + 1`; going back from one
    output pixel, the smallest input that gives `m` outputs is `(m - 1) * stride + kernel -
    2 * padding`: 36 for NatureCNN's 8/4, 4/2, 3/1 (36 -> 8 -> 3 -> 1).
    """
    size = 1
    for conv in reversed([m for m in convs if isinstance(m, nn.Conv2d)]):  # CoordConv2d too
        size = (size - 1) * conv.stride[0] + conv.kernel_size[0] - 2 * conv.padding[0]
    return size


def check_image_size(
    observation_space: gym.Space, convs: nn.Sequential, name: str = "CoordConvNatureCNN"
) -> None:
    """Raise ObservationSpaceError if the images are too small for `convs` (`NatureCNN` fails
    there inside torch, with a RuntimeError about the kernel size)."""
    size = min_image_size(convs)
    if min(observation_space.shape[1:]) < size:
        geometry = ", ".join(
            f"{m.kernel_size[0]}/{m.stride[0]}" for m in convs if isinstance(m, nn.Conv2d)
        )
        raise ObservationSpaceError(
            f"{name} needs images of at least {size}x{size} for its convs (kernel/stride "
            f"{geometry}), got shape {observation_space.shape}: give it larger frames (84x84 "
            "is AtariWrapper's screen_size)"
        )


class CoordConvNatureCNN(BaseFeaturesExtractor):
    """`NatureCNN` with CoordConv: the first conv (`where="first"`) or every conv (`"all"`).

    With its coordinate weights at zero it computes exactly what `NatureCNN` computes with
    the same other weights; its state dict has `NatureCNN`'s keys (`cnn.0.weight`, ...),
    the CoordConv weights `n_coords` input channels wider (the coordinate slices last).

    Args:
        observation_space: a channel-first image space (C, H, W), e.g. 4 stacked 84x84 frames.
        features_dim: output features (the linear layer's width), 512 as in `NatureCNN`.
        normalized_image: the images are already normalized floats (disables the dtype and
            bounds checks, as in `NatureCNN`).
        where: "first": only the input conv sees the coordinates (the paper's Atari setup);
            "all": every conv does.
        with_r: also give the CoordConv layers the distance-from-centre channel.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        features_dim: int = 512,
        normalized_image: bool = False,
        where: Literal["first", "all"] = "first",
        with_r: bool = False,
    ) -> None:
        if where not in WHERE:
            raise WhereError(
                f"invalid where={where!r} for CoordConvNatureCNN: must be one of {WHERE}"
            )
        check_image_space(observation_space, normalized_image)
        super().__init__(observation_space, features_dim)
        self.where = where
        self.with_r = with_r

        def conv(index: int, *args: Any, **kwargs: Any) -> nn.Module:
            if index == 0 or where == "all":
                return CoordConv2d(*args, with_r=with_r, **kwargs)
            return nn.Conv2d(*args, **kwargs)

        n_input_channels = observation_space.shape[0]
        self.cnn = nn.Sequential(
            conv(0, n_input_channels, 32, kernel_size=8, stride=4, padding=0),
            nn.ReLU(),
            conv(1, 32, 64, kernel_size=4, stride=2, padding=0),
            nn.ReLU(),
            conv(2, 64, 64, kernel_size=3, stride=1, padding=0),
            nn.ReLU(),
            nn.Flatten(),
        )
        check_image_size(observation_space, self.cnn)
        # The flattened size from one sample, as NatureCNN does: no hard-coded input size.
        with torch.no_grad():
            sample = torch.as_tensor(observation_space.sample()[None]).float()  # (1, C, H, W)
            n_flatten = self.cnn(sample).shape[1]
        self.linear = nn.Sequential(nn.Linear(n_flatten, features_dim), nn.ReLU())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.linear(self.cnn(observations))  # (B, C, H, W) -> (B, features_dim)


def coordconv_policy_kwargs(
    where: Literal["first", "all"] = "first",
    with_r: bool = False,
    features_dim: int = 512,
    normalized_image: bool | None = None,
    **policy_kwargs: Any,
) -> dict[str, Any]:
    """`policy_kwargs` for any SB3 `CnnPolicy` agent with `CoordConvNatureCNN` as its extractor.

    It also sets `net_arch=[]` (unless given): in A2C, PPO and DQN (and QR-DQN) SB3 puts no
    hidden layers between `NatureCNN` and the action, value or Q heads, but gives any other
    extractor two 64-unit layers per head by default, so without it the CoordConv agent
    would have a different, larger network. SAC, TD3 and DDPG give every extractor, their
    own `NatureCNN` included, `[256, 256]`: pass `net_arch=[256, 256]` there to match.
    Extra keyword arguments (`optimizer_class`, `net_arch`, `normalize_images`,
    ...) are passed on; entries of a `features_extractor_kwargs` among them are kept.

    Args:
        normalized_image: the extractor's (skip the uint8 checks); None: True exactly when
            `normalize_images=False` is passed, as SB3 sets it for its own `NatureCNN` (but
            not for other extractors, where the float images would be rejected).
    """
    if where not in WHERE:
        raise WhereError(f"invalid where={where!r} for CoordConvNatureCNN: must be one of {WHERE}")
    if normalized_image is None:
        normalized_image = policy_kwargs.get("normalize_images") is False
    ours = {
        "features_dim": features_dim,
        "normalized_image": normalized_image,
        "where": where,
        "with_r": with_r,
    }
    theirs = dict(policy_kwargs.pop("features_extractor_kwargs", None) or {})
    both = sorted(set(ours) & set(theirs))
    if both:
        raise TypeError(
            f"coordconv_policy_kwargs got {both[0]} twice: pass {both[0]}=... to it, not in "
            "features_extractor_kwargs"
        )
    return {
        "net_arch": [],
        **policy_kwargs,
        "features_extractor_class": CoordConvNatureCNN,
        "features_extractor_kwargs": {**theirs, **ours},
    }
