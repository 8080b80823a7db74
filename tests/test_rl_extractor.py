"""CoordConvNatureCNN against SB3's own NatureCNN, and inside real SB3 agents on a real ALE game."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.torch_layers import NatureCNN
from stable_baselines3.common.vec_env import DummyVecEnv

from cc_bench.envs.atari import make_atari
from cc_bench.errors import UserError
from cc_bench.layers import CoordConv2d
from cc_bench.rl import (
    CoordConvNatureCNN,
    ObservationSpaceError,
    WhereError,
    coordconv_policy_kwargs,
)

IMAGE = spaces.Box(0, 255, (4, 84, 84), np.uint8)  # 4 stacked 84x84 frames, channel first
CONVS = (0, 2, 4)  # positions of the convs in NatureCNN's `cnn` Sequential


def test_import_loads_neither_torch_nor_sb3() -> None:
    code = (
        "import sys, cc_bench.rl; "
        "print(any(m in sys.modules for m in ('torch', 'stable_baselines3')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _copy_nature_weights(nature: NatureCNN, ours: CoordConvNatureCNN) -> None:
    """Ours gets NatureCNN's weights and zero coordinate weights."""
    with torch.no_grad():
        for i in CONVS:
            a, b = nature.cnn[i], ours.cnn[i]
            c = a.in_channels
            b.weight[:, :c].copy_(a.weight)  # (out, c, k, k)
            b.weight[:, c:].zero_()  # (out, n_coords, k, k)
            b.bias.copy_(a.bias)
        ours.linear.load_state_dict(nature.linear.state_dict())


@pytest.mark.parametrize("where", ["first", "all"])
@pytest.mark.parametrize("with_r", [False, True])
def test_zero_coordinate_weights_compute_exactly_what_nature_cnn_computes(
    where: str, with_r: bool
) -> None:
    torch.manual_seed(0)
    nature = NatureCNN(IMAGE, features_dim=256)
    ours = CoordConvNatureCNN(IMAGE, features_dim=256, where=where, with_r=with_r)
    _copy_nature_weights(nature, ours)
    obs = torch.randint(0, 256, (5, 4, 84, 84)).float() / 255.0  # as the policy normalises
    with torch.no_grad():
        expected, got = nature(obs), ours(obs)
    assert got.shape == (5, 256)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    # and the coordinates do reach the output once their weights are not zero
    with torch.no_grad():
        ours.cnn[0].weight[:, 4:].fill_(0.01)
        assert not torch.allclose(ours(obs), expected)


@pytest.mark.parametrize(
    ("where", "with_r", "extra"),
    [
        ("first", False, 32 * 2 * 8 * 8),
        ("first", True, 32 * 3 * 8 * 8),
        ("all", False, 32 * 2 * 8 * 8 + 64 * 2 * 4 * 4 + 64 * 2 * 3 * 3),
        ("all", True, 32 * 3 * 8 * 8 + 64 * 3 * 4 * 4 + 64 * 3 * 3 * 3),
    ],
)
def test_parameter_count_is_nature_cnns_plus_the_coordinate_weights(
    where: str, with_r: bool, extra: int
) -> None:
    nature = sum(p.numel() for p in NatureCNN(IMAGE).parameters())
    ours = CoordConvNatureCNN(IMAGE, where=where, with_r=with_r)
    assert sum(p.numel() for p in ours.parameters()) == nature + extra
    assert set(ours.state_dict()) == set(NatureCNN(IMAGE).state_dict())
    kinds = [type(ours.cnn[i]) for i in CONVS]
    expected = (
        [CoordConv2d] * 3 if where == "all" else [CoordConv2d, torch.nn.Conv2d, torch.nn.Conv2d]
    )
    assert kinds == expected


def test_other_image_sizes_and_normalized_images() -> None:
    space = spaces.Box(0.0, 1.0, (3, 64, 96), np.float32)
    ours = CoordConvNatureCNN(space, features_dim=32, normalized_image=True, where="all")
    assert ours(torch.rand(2, 3, 64, 96)).shape == (2, 32)


# name -> (space, what the message says); NatureCNN rejects each one too (an assertion, or
# torch's RuntimeError for frames too small for its kernels).
BAD_SPACES = {
    "not a box": (spaces.Discrete(4), "MlpPolicy"),
    "not an image": (spaces.Box(0, 255, (84, 84), np.uint8), "MlpPolicy"),
    "float without normalized_image": (
        spaces.Box(0.0, 1.0, (4, 84, 84), np.float32),
        "MlpPolicy",
    ),
    # By hand: 8/4 takes 36 to (36 - 8) // 4 + 1 = 8, 4/2 takes 8 to 3, 3/1 takes 3 to 1;
    # 35 gives 7, then 2, then 0.
    "30x30 frames": (spaces.Box(0, 255, (4, 30, 30), np.uint8), "at least 36x36"),
    "35 high": (spaces.Box(0, 255, (4, 35, 84), np.uint8), "at least 36x36"),
    "35 wide": (spaces.Box(0, 255, (4, 84, 35), np.uint8), "at least 36x36"),
}


@pytest.mark.parametrize("name", sorted(BAD_SPACES))
@pytest.mark.parametrize("where", ["first", "all"])
def test_spaces_nature_cnn_rejects_are_rejected_in_one_line(name: str, where: str) -> None:
    space, expected = BAD_SPACES[name]
    with pytest.raises((AssertionError, RuntimeError)):
        NatureCNN(space)
    with pytest.raises(AssertionError) as caught:  # what code written for NatureCNN catches
        CoordConvNatureCNN(space, where=where)  # type: ignore[arg-type]
    assert isinstance(caught.value, ObservationSpaceError)
    assert isinstance(caught.value, UserError)  # one line and exit 2 on the command line
    message = str(caught.value)
    assert "CoordConvNatureCNN" in message and "\n" not in message
    assert expected in message, message


def test_the_smallest_frames_the_kernels_take_work_like_nature_cnns() -> None:
    space = spaces.Box(0, 255, (4, 36, 36), np.uint8)
    obs = torch.rand(2, 4, 36, 36)
    assert NatureCNN(space, features_dim=8)(obs).shape == (2, 8)
    assert CoordConvNatureCNN(space, features_dim=8, where="all")(obs).shape == (2, 8)


def test_channel_last_images_are_rejected_with_how_to_fix_it() -> None:
    with pytest.raises(
        ObservationSpaceError, match=r"channel-first.*\(84, 84, 4\).*VecTransposeImage"
    ):
        CoordConvNatureCNN(spaces.Box(0, 255, (84, 84, 4), np.uint8))


def test_channel_last_float_images_in_an_agent_say_sb3_does_not_transpose_them() -> None:
    """SB3 transposes only uint8 image spaces: a float channel-last space reaches the
    extractor as it is, inside a real A2C agent, and the message says what to do."""
    from stable_baselines3 import A2C
    from stable_baselines3.common.vec_env import DummyVecEnv

    class FloatFrames(gym.Env):
        observation_space = spaces.Box(0.0, 1.0, (36, 36, 2), np.float32)
        action_space = spaces.Discrete(2)

        def reset(self, *, seed=None, options=None):  # noqa: ANN001, ANN202
            return self.observation_space.sample(), {}

        def step(self, action):  # noqa: ANN001, ANN202
            return self.observation_space.sample(), 0.0, True, False, {}

    env = DummyVecEnv([FloatFrames])
    kwargs = coordconv_policy_kwargs(normalize_images=False)
    with pytest.raises(ObservationSpaceError, match="SB3 does not transpose float") as info:
        A2C("CnnPolicy", env, policy_kwargs=kwargs, device="cpu")
    assert "(36, 36, 2)" in str(info.value) and "\n" not in str(info.value)


def test_a_bad_where_is_a_clear_error() -> None:
    for bad in ("last", "First", ""):
        with pytest.raises(WhereError, match=r"invalid where=.*'first', 'all'"):
            CoordConvNatureCNN(IMAGE, where=bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="invalid where"):
            coordconv_policy_kwargs(where=bad)  # type: ignore[arg-type]


def test_policy_kwargs_helper() -> None:
    assert coordconv_policy_kwargs()["net_arch"] == []  # NatureCNN's heads: no hidden layers
    kwargs = coordconv_policy_kwargs(where="all", with_r=True, features_dim=256, net_arch=[64])
    assert kwargs == {
        "net_arch": [64],
        "features_extractor_class": CoordConvNatureCNN,
        "features_extractor_kwargs": {
            "features_dim": 256,
            "normalized_image": False,
            "where": "all",
            "with_r": True,
        },
    }


def test_policy_kwargs_helper_keeps_the_users_extractor_kwargs() -> None:
    # Kept, not silently dropped: a wrong one then fails loudly when SB3 builds the extractor.
    kwargs = coordconv_policy_kwargs(features_extractor_kwargs={"scale": 2})
    assert kwargs["features_extractor_kwargs"]["scale"] == 2
    with pytest.raises(TypeError, match="scale"):
        CoordConvNatureCNN(IMAGE, **kwargs["features_extractor_kwargs"])
    with pytest.raises(TypeError, match="got where twice: pass where=... to it"):
        coordconv_policy_kwargs(features_extractor_kwargs={"where": "all"})


class FloatFrames(gym.Env):
    """Already normalised channel-first frames in [0, 1], as a custom pipeline may give."""

    observation_space = spaces.Box(0.0, 1.0, (2, 36, 36), np.float32)
    action_space = spaces.Discrete(3)

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple:
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action: int) -> tuple:
        return self.observation_space.sample(), 0.0, False, False, {}


def test_normalize_images_false_works_as_with_sb3s_own_nature_cnn(one_thread: None) -> None:
    # SB3 sets normalized_image=True itself only for NatureCNN and CombinedExtractor.
    env = DummyVecEnv([FloatFrames])
    A2C("CnnPolicy", env, policy_kwargs={"normalize_images": False}, n_steps=2).learn(4)
    kwargs = coordconv_policy_kwargs(normalize_images=False, features_dim=16)
    assert kwargs["features_extractor_kwargs"]["normalized_image"] is True
    model = A2C("CnnPolicy", env, policy_kwargs=kwargs, n_steps=2, device="cpu")
    assert isinstance(model.policy.features_extractor, CoordConvNatureCNN)
    assert model.policy.normalize_images is False
    model.learn(4)
    # and said otherwise, the uint8 checks stay on and reject the float frames
    with pytest.raises(ObservationSpaceError, match="normalized_image=True"):
        A2C(
            "CnnPolicy",
            env,
            policy_kwargs=coordconv_policy_kwargs(normalize_images=False, normalized_image=False),
        )


AGENTS = {
    "A2C": (A2C, {"n_steps": 8}),
    "PPO": (PPO, {"n_steps": 32, "batch_size": 32, "n_epochs": 1}),
    "DQN": (DQN, {"learning_starts": 16, "buffer_size": 200, "train_freq": 4}),
}


@pytest.fixture
def one_thread():
    """One torch thread: two stall each other on a busy 2-core CPU (7x slower measured)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_sb3_agents_learn_with_it_and_reload_acting_identically(
    name: str, tmp_path: Path, one_thread: None
) -> None:
    algo, kwargs = AGENTS[name]
    env = make_atari("ALE/Breakout-v5", n_envs=1 if algo is DQN else 2, seed=3)
    try:
        model = algo(
            "CnnPolicy",
            env,
            policy_kwargs=coordconv_policy_kwargs(features_dim=64),
            seed=0,
            device="cpu",
            **kwargs,
        )
        extractor = (
            model.policy.features_extractor if algo is not DQN else model.q_net.features_extractor
        )
        # The same network as the NatureCNN agent's but for the coordinate weights: SB3 gives
        # custom extractors two 64-unit layers per head unless net_arch=[] says otherwise.
        small = {"features_extractor_kwargs": {"features_dim": 64}}  # NatureCNN, features 64
        plain = algo("CnnPolicy", env, policy_kwargs=small, seed=0, device="cpu", **kwargs)
        net, plain_net = (model.q_net, plain.q_net) if algo is DQN else (model.policy, plain.policy)
        assert (
            sum(p.numel() for p in net.parameters())
            == sum(p.numel() for p in plain_net.parameters()) + 32 * 2 * 8 * 8
        )
        assert isinstance(extractor, CoordConvNatureCNN)
        before = extractor.cnn[0].weight.detach().clone()
        model.learn(256)
        assert not torch.equal(extractor.cnn[0].weight, before)  # it trained, coordinates too
        assert not torch.equal(extractor.cnn[0].weight[:, 4:], before[:, 4:])
        model.save(tmp_path / "agent.zip")
        loaded = algo.load(tmp_path / "agent.zip", env=env, device="cpu")
        obs = np.stack([env.reset() for _ in range(3)]).reshape(-1, 84, 84, 4)
        obs[1:] = np.random.default_rng(0).integers(0, 256, obs[1:].shape, dtype=np.uint8)
        for a, b in zip(
            model.policy.state_dict().values(), loaded.policy.state_dict().values(), strict=True
        ):
            assert torch.equal(a, b)
        actions, _ = model.predict(obs, deterministic=True)
        again, _ = loaded.predict(obs, deterministic=True)
        np.testing.assert_array_equal(actions, again)
        with torch.no_grad():  # the networks' outputs, not only their argmax
            tensor = model.policy.obs_to_tensor(obs)[0]
            if algo is DQN:
                ours, theirs = model.q_net(tensor), loaded.q_net(tensor)
            else:
                ours = model.policy.get_distribution(tensor).distribution.logits
                theirs = loaded.policy.get_distribution(tensor).distribution.logits
        assert torch.equal(ours, theirs)
    finally:
        env.close()
