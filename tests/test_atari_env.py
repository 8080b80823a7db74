"""The Atari environment factory: shapes, seeding, whole-game scores, and its errors."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from cc_bench.config import run_id
from cc_bench.envs.atari import (
    FRAME_SKIP,
    ale_ids,
    check_env_id,
    make_atari,
    network_cpus,
    resolve_vec_env,
)
from cc_bench.errors import UserError
from cc_bench.rl.configs import A2CConfig, DQNConfig


def _play(env, steps: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    obs = [env.reset()]
    for _ in range(steps):
        actions = rng.integers(0, env.action_space.n, env.num_envs)
        obs.append(env.step(actions)[0])
    return obs


def test_observations_are_four_stacked_84x84_frames_and_seeded() -> None:
    a, b, c = (make_atari("ALE/Breakout-v5", 2, seed) for seed in (5, 5, 6))
    try:
        first = _play(a, 40)
        assert first[0].shape == (2, 84, 84, 4) and first[0].dtype == np.uint8
        assert all(np.array_equal(x, y) for x, y in zip(first, _play(b, 40), strict=True))
        assert not all(np.array_equal(x, y) for x, y in zip(first, _play(c, 40), strict=True))
    finally:
        for env in (a, b, c):
            env.close()


def test_the_monitor_reports_whole_games_in_frames_and_unclipped() -> None:
    # Breakout: 5 lives; the agent's episodes end at each life lost, the Monitor's at game over.
    env = make_atari("ALE/Breakout-v5", 1, 0)
    try:
        env.reset()
        dones, steps = 0, 0
        while True:
            _, _, done, infos = env.step(np.array([1]))  # FIRE, then the ball is missed
            steps += 1
            dones += int(done[0])
            if "episode" in infos[0]:
                break
        assert dones == 5  # one agent episode per life
        assert infos[0]["episode"]["l"] >= steps * FRAME_SKIP - 3 * FRAME_SKIP  # frames
    finally:
        env.close()


def test_the_agent_sees_clipped_rewards_and_the_monitor_the_game_score() -> None:
    # Ms. Pac-Man's pellets are worth 10: clipped to 1 for the agent (the AtariWrapper), the
    # whole game's score from the Monitor underneath.
    env = make_atari("ALE/MsPacman-v5", 1, 0)
    rng = np.random.default_rng(0)
    try:
        env.reset()
        clipped = []
        while True:
            _, reward, _, infos = env.step(rng.integers(0, 9, size=1))
            clipped.append(float(reward[0]))
            if "episode" in infos[0]:
                break
        assert set(clipped) <= {0.0, 1.0} and sum(clipped) > 0
        score = infos[0]["episode"]["r"]
        assert score % 10 == 0 and score >= 10 * sum(clipped)
    finally:
        env.close()


def test_subprocess_environments_step_the_same_games() -> None:
    a = make_atari("ALE/Pong-v5", 2, 1, vec_env="dummy")
    b = make_atari("ALE/Pong-v5", 2, 1, vec_env="subproc")
    try:
        assert all(np.array_equal(x, y) for x, y in zip(_play(a, 10), _play(b, 10), strict=True))
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize(
    ("bad", "suggested"),
    [
        ("ALE/MsPacmn-v5", "ALE/MsPacman-v5"),
        ("MsPacman", "ALE/MsPacman-v5"),
        ("ALE/Breakout-v4", "ALE/Breakout-v5"),
        ("breakout", "ALE/Breakout-v5"),
    ],
)
def test_an_unknown_game_names_close_ids(bad: str, suggested: str) -> None:
    with pytest.raises(UserError, match="unknown Atari game") as caught:
        check_env_id(bad)
    message = str(caught.value)
    assert suggested in message and "\n" not in message


def test_known_ids_and_bad_counts() -> None:
    assert "ALE/MsPacman-v5" in ale_ids() and len(ale_ids()) > 50
    assert check_env_id("ALE/Pong-v5") == "ALE/Pong-v5"
    # The zoo's ids: the same game, no sticky actions.
    assert check_env_id("BreakoutNoFrameskip-v4") == "BreakoutNoFrameskip-v4"
    zoo = make_atari("BreakoutNoFrameskip-v4", 1, 0)
    try:
        game = zoo.unwrapped.envs[0].unwrapped
        assert game.spec.id == "BreakoutNoFrameskip-v4"
        assert game.spec.kwargs["repeat_action_probability"] == 0.0
        assert zoo.reset().shape == (1, 84, 84, 4)
    finally:
        zoo.close()
    with pytest.raises(UserError, match="n_envs=0"):
        make_atari("ALE/Pong-v5", 0)


def test_auto_vec_env_follows_the_cpus_this_process_may_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert resolve_vec_env("dummy", 16) == "dummy" and resolve_vec_env("subproc", 16) == "subproc"
    monkeypatch.delenv("CC_BENCH_CPUS", raising=False)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1})
    assert resolve_vec_env("auto", 16) == "dummy"
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)))
    assert resolve_vec_env("auto", 16) == "subproc"
    assert resolve_vec_env("auto", 1) == "dummy"
    assert resolve_vec_env("subproc", 1) == "dummy"  # one game: nothing to run beside it
    # Under `cc-bench launch --workers 8` on those 16 cores, a run's share is 2.
    monkeypatch.setenv("CC_BENCH_CPUS", "2")
    assert resolve_vec_env("auto", 16) == "dummy"
    monkeypatch.setenv("CC_BENCH_CPUS", "4")
    assert resolve_vec_env("auto", 16) == "subproc"
    # The CPUs a network training on the CPU keeps busy are not free for the games: on a
    # 16-core node, subprocesses beside torch's 16 threads made A2C slower (docs/rl.md).
    monkeypatch.setenv("CC_BENCH_CPUS", "16")
    assert resolve_vec_env("auto", 16, network_cpus=16) == "dummy"
    assert resolve_vec_env("auto", 16, network_cpus=12) == "subproc"
    assert resolve_vec_env("auto", 16, network_cpus=13) == "dummy"
    assert resolve_vec_env("subproc", 16, network_cpus=16) == "subproc"  # asked for: kept
    assert network_cpus(torch.device("meta")) == 0
    assert network_cpus(torch.device("cpu")) == torch.get_num_threads()
    # Not part of a run's id: the same games either way (the test above).
    assert run_id("rl.a2c", A2CConfig(vec_env="subproc")) == run_id("rl.a2c", A2CConfig())
    # Nor is when checkpoints are taken (every 60 s of wall time anyway).
    assert run_id("rl.dqn", DQNConfig(checkpoint_every=4_000)) == run_id("rl.dqn", DQNConfig())
    assert run_id("rl.dqn", DQNConfig(seed=1)) != run_id("rl.dqn", DQNConfig())


def test_a_local_job_tells_its_runs_their_share_of_the_cores(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    import torch

    from cc_bench.launch.jobs import RunBatch
    from cc_bench.machine import CPUS_ENV

    monkeypatch.delenv(CPUS_ENV, raising=False)
    threads = torch.get_num_threads()
    try:
        assert RunBatch([], str(tmp_path), "s", threads=1)() == []
        assert os.environ[CPUS_ENV] == "1"
        monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)))
        assert resolve_vec_env("auto", 16) == "dummy"
    finally:
        torch.set_num_threads(threads)
        os.environ.pop(CPUS_ENV, None)
