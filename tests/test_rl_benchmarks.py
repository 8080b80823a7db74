"""rl.a2c and rl.dqn through the command line: errors, a killed run resumed, scores, suites."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import cc_bench, kill_after_checkpoint, last_json
from stable_baselines3 import A2C, DQN
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.sb2_compat.rmsprop_tf_like import RMSpropTFLike

from cc_bench.config import run_id
from cc_bench.envs.atari import FRAME_SKIP, ale_ids, make_atari
from cc_bench.errors import NonFiniteLossError, UserError
from cc_bench.registry import get_benchmark
from cc_bench.rl import ATARI9, MS_PACMAN, a2c, dqn
from cc_bench.rl.configs import A2CConfig, DQNConfig
from cc_bench.rl.dqn import build_agent
from cc_bench.rl.scores import ATARI_SCORES, game_name, human_bounds
from cc_bench.rl.training import (
    Progress,
    TrackerCallback,
    drop_replay_buffers,
    evaluate,
    first_non_finite,
    load_agent,
    quiet_logger,
    save_agent,
    start_agent,
)
from cc_bench.suites import expand, get_suite
from cc_bench.tracking import Tracker

TINY = [
    "--env-id", "ALE/Breakout-v5", "--n-envs", "2", "--vec-env", "dummy", "--eval-episodes", "1",
    "--eval-max-steps", "50", "--gif-steps", "20", "--torch-threads", "1",
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--env-id", "ALE/MsPacmn-v5"], "close names: ALE/MsPacman-v5"),
        (["--total-steps", "-5"], "invalid total_steps=-5: must be >= 1"),
        (["--n-envs", "0"], "invalid n_envs=0: must be >= 1"),
        (["--where", "middle"], "--where"),
    ],
)
@pytest.mark.parametrize("bench", ["rl.a2c", "rl.dqn"])
def test_bad_input_is_one_line_and_exit_2(
    bench: str, args: list[str], expected: str, runs_dir: Path
) -> None:
    proc = cc_bench("run", bench, *args, "--runs-dir", str(runs_dir))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], proc.stderr
    assert not runs_dir.exists() or not any(runs_dir.rglob("config.json"))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--n-envs", "1", "--buffer-size", "1", "--optimize-memory-usage"], "must be >= 2"),
        (["--buffer-size", "3", "--n-envs", "2", "--optimize-memory-usage"], "must be >= 4"),
        (["--buffer-size", "1", "--n-envs", "2"], "invalid buffer_size=1: must be >= 2"),
    ],
)
def test_a_replay_buffer_sb3_cannot_sample_from_is_one_line_and_exit_2(
    args: list[str], expected: str, runs_dir: Path
) -> None:
    # SB3 keeps buffer_size // n_envs steps per environment and, storing each frame once,
    # samples from all but the newest: with one it crashed (numpy: low >= high) after the
    # run's folder was made.
    proc = cc_bench("run", "rl.dqn", *TINY, *args, "--runs-dir", str(runs_dir))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], proc.stderr
    assert not runs_dir.exists() or not any(runs_dir.rglob("config.json"))


@pytest.mark.parametrize("buffer", [["1"], ["2", "--optimize-memory-usage"]])
def test_the_smallest_replay_buffers_allowed_train(buffer: list[str], tmp_path: Path) -> None:
    # 1 step per environment, or 2 when each frame is stored once: SB3 samples from them.
    args = ["run", "rl.dqn", *TINY, "--n-envs", "1", "--total-steps", "160"]
    args += ["--learning-starts", "5", "--runs-dir", str(tmp_path), "--buffer-size", *buffer]
    proc = cc_bench(*args)
    assert proc.returncode == 0, proc.stderr
    assert last_json(proc.stdout)["frames"] == 160


@pytest.mark.parametrize("bench", ["rl.a2c", "rl.dqn"])
def test_a_diverged_agent_fails_the_run_at_its_step(bench: str, tmp_path: Path) -> None:
    # A learning rate of 1e30. A2C's first update (2 envs x 5 steps x 4 = 40 frames) leaves
    # weights finite but so large that the next forward pass overflows (its Categorical
    # raised a ValueError); DQN's Q-values overflow, and its loss turns NaN, a few updates
    # after it starts learning at agent step 25. No loss reaches the Tracker before the end (--log-every), and a
    # checkpoint is due after every update: none may hold the diverged agent.
    args = ["run", bench, *TINY, "--total-steps", "400", "--learning-rate", "1e30"]
    args += ["--log-every", "100000", "--checkpoint-every", "1", "--runs-dir", str(tmp_path)]
    if bench == "rl.dqn":
        args += ["--n-envs", "1", "--buffer-size", "300", "--learning-starts", "25"]
    proc = cc_bench(*args)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    (folder,) = tmp_path.glob(f"adhoc/{bench}/*")
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "failed" and f"at step {summary['step']}" in summary["error"]
    if bench == "rl.a2c":
        assert summary["step"] == 40 and summary["error"].startswith("output of ")
        assert not (folder / "checkpoint.pt").exists()
    else:
        assert 100 < summary["step"] < 400  # a NaN loss, or Q-values that overflow
        assert summary["error"].startswith(("losses/loss ", "output of ")), summary
        saved = torch.load(folder / "checkpoint.pt", map_location="cpu", weights_only=False)
        assert saved["step"] < summary["step"]


def test_nan_weights_fail_at_the_step_they_appear(tmp_path: Path, one_thread: None) -> None:
    cfg = A2CConfig(env_id="ALE/Breakout-v5", n_envs=2)
    env = make_atari(cfg.env_id, 2, 0)
    try:
        model = quiet_logger(a2c.build_agent(cfg, env, torch.device("cpu")))
        model.learn(10)  # one update: losses in the logger, 40 frames
        callback = TrackerCallback(cfg, Tracker(tmp_path), Progress(), lambda: None, 400)
        callback.init_callback(model)
        callback.on_training_start({}, {})
        callback.check_finite(40)  # all finite
        with torch.no_grad():
            model.policy.action_net.weight[1, 7] = float("nan")
        with pytest.raises(NonFiniteLossError, match=r"^weight action_net.weight became nan at"):
            callback.check_finite(40)
        model.policy.action_net.weight.data.fill_(1.0)
        model.logger.record("train/value_loss", float("inf"))
        with pytest.raises(NonFiniteLossError, match=r"^losses/value_loss became inf at step 40"):
            callback.check_finite(40)
        callback.bar.close()
    finally:
        env.close()
    # the line the Tracker raised on is recorded
    assert json.loads((tmp_path / "metrics.jsonl").read_text())["losses/value_loss"] == math.inf


def test_finite_weights_whose_sum_overflows_are_not_flagged() -> None:
    net = torch.nn.Linear(2, 1)
    with torch.no_grad():
        net.weight.fill_(3e38)  # float32's largest is 3.4e38: the sum is inf, no entry is
        assert not torch.isfinite(net.weight.sum())
    assert first_non_finite(net) is None
    with torch.no_grad():
        net.bias[0] = -float("inf")
    assert first_non_finite(net) == ("bias", -math.inf)


def test_the_agents_have_the_zoos_atari_hyperparameters(one_thread: None) -> None:
    # rl-baselines3-zoo, hyperparams/a2c.yml and dqn.yml, `atari:`, written out here with
    # SB3's defaults for what the zoo leaves out; not read from the configs under test.
    cpu = torch.device("cpu")
    cfg = A2CConfig(env_id="ALE/Breakout-v5", vec_env="dummy")
    env = make_atari(cfg.env_id, cfg.n_envs, 0, vec_env="dummy")
    try:
        model = a2c.build_agent(cfg, env, cpu)
    finally:
        env.close()
    got = {k: getattr(model, k) for k in ("n_envs", "n_steps", "ent_coef", "vf_coef", "gamma")}
    assert got == {"n_envs": 16, "n_steps": 5, "ent_coef": 0.01, "vf_coef": 0.25, "gamma": 0.99}
    assert (model.gae_lambda, model.max_grad_norm, model.normalize_advantage) == (1.0, 0.5, False)
    assert model.lr_schedule(1.0) == model.lr_schedule(0.0) == 7e-4  # constant
    optimizer = model.policy.optimizer
    assert type(optimizer) is RMSpropTFLike
    group = optimizer.param_groups[0]
    assert {k: group[k] for k in ("lr", "eps", "alpha", "weight_decay", "momentum")} == {
        "lr": 7e-4,
        "eps": 1e-5,
        "alpha": 0.99,
        "weight_decay": 0,
        "momentum": 0,
    }
    assert group["centered"] is False

    cfg = DQNConfig(env_id="ALE/Breakout-v5")
    env = make_atari(cfg.env_id, cfg.n_envs, 0)
    try:
        model = dqn.build_agent(cfg, env, cpu)
    finally:
        env.close()
    keys = ("n_envs", "buffer_size", "learning_rate", "batch_size", "learning_starts")
    keys += ("target_update_interval", "gradient_steps", "exploration_fraction")
    keys += ("exploration_initial_eps", "exploration_final_eps", "optimize_memory_usage")
    keys += ("gamma", "tau", "max_grad_norm")
    assert {k: getattr(model, k) for k in keys} == {
        "n_envs": 1,
        "buffer_size": 100_000,
        "learning_rate": 1e-4,
        "batch_size": 32,
        "learning_starts": 100_000,
        "target_update_interval": 1000,
        "gradient_steps": 1,
        "exploration_fraction": 0.1,
        "exploration_initial_eps": 1.0,
        "exploration_final_eps": 0.01,
        "optimize_memory_usage": False,
        "gamma": 0.99,
        "tau": 1.0,
        "max_grad_norm": 10,
    }
    assert (model.train_freq.frequency, model.train_freq.unit.value) == (4, "step")
    assert model.replay_buffer.buffer_size == 100_000
    assert not model.replay_buffer.optimize_memory_usage
    assert model.replay_buffer.handle_timeout_termination
    assert type(model.policy.optimizer) is torch.optim.Adam
    assert model.policy.optimizer.param_groups[0]["lr"] == 1e-4


def test_an_unknown_game_is_checked_before_a_run_not_when_a_config_is_read_back() -> None:
    # A report rebuilds configs from config.json: that needs neither ale-py nor the game.
    cfg = A2CConfig(env_id="ALE/Retired-v5")
    with pytest.raises(UserError, match="unknown Atari game env_id='ALE/Retired-v5'"):
        cfg.check_inputs()
    A2CConfig(env_id=MS_PACMAN).check_inputs()


def test_a_killed_run_resumes_to_the_same_total_with_a_continuous_curve(tmp_path: Path) -> None:
    # 2 envs x 5 steps x 4 frames = 40 frames an update; 4,000 frames; a checkpoint every 400.
    args = ["run", "rl.a2c", *TINY, "--total-steps", "4000", "--checkpoint-every", "400"]
    args += ["--log-every", "200", "--runs-dir", str(tmp_path)]
    checkpoint = kill_after_checkpoint(args, tmp_path, "rl.a2c")
    folder = checkpoint.parent
    assert not (folder / "summary.json").exists()
    # the checkpoint holds the killed attempt's training time up to it
    banked = torch.load(checkpoint, weights_only=False)["state"]["progress"]["train_s"]
    assert banked > 0

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    resumed = cc_bench(*args, env={"TMPDIR": str(tmp)})
    assert resumed.returncode == 0, resumed.stderr
    assert not list(tmp.glob("SB3-*"))  # SB3 left no log folder in the temporary directory
    assert f"resuming {folder.name} from step" in resumed.stderr
    start = int(resumed.stderr.split(" from step ")[1].split()[0])
    assert 0 < start < 4000
    metrics = last_json(resumed.stdout)
    assert metrics["frames"] == 4000  # the total an uninterrupted run ends at
    # steps_per_s divides all 4,000 frames by both attempts' training time, not the last's
    assert 4000 / metrics["steps_per_s"] > banked
    lines = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    steps = [x["step"] for x in lines if "perf/steps_per_s" in x]
    assert steps == sorted(steps) and steps[-1] == 4000
    # the curve goes on from the checkpoint: one log every 200 frames, none twice
    assert steps == sorted(set(steps))
    assert all(b - a <= 240 for a, b in zip(steps, steps[1:], strict=False))
    assert {"losses/value_loss", "losses/policy_loss", "losses/entropy_loss"} <= set(lines[-1])
    # Every finished game, from the Monitor: at the env frames it ended (a multiple of
    # n_envs x 4), its whole-game length in emulator frames and its unclipped score. A Breakout
    # game of a barely trained agent ends within about 1,000 frames (500 to 900 of them here).
    games = [x for x in lines if "charts/episodic_return" in x]
    assert games, "no training game ended in 4,000 frames"
    for game in games:
        assert game["step"] % (2 * FRAME_SKIP) == 0 and 0 < game["step"] <= 4000
        length, score = game["charts/episodic_length"], game["charts/episodic_return"]
        assert length > 0 and length == int(length)
        assert score >= 0 and score == int(score)  # Breakout's points: whole, never negative
    # the killed attempt's games up to its checkpoint and the resumed attempt's, each once
    assert metrics["train_episodes"] == len(games)
    mean = np.mean([x["charts/episodic_return"] for x in games])
    assert metrics["auc_return"] == pytest.approx(mean)
    assert list((folder / "media").glob("*.gif")) and list((folder / "media").glob("*.png"))
    # each attempt records where it ran, with the games' vec_env that `auto` chose there
    machines = json.loads((folder / "config.json").read_text())["machines"]
    assert [(m["vec_env"], m["threads"]) for m in machines] == [("dummy", 1), ("dummy", 1)]


@pytest.fixture
def one_thread():
    """One torch thread, as the smoke runs have: two stall each other on a busy 2-core CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_a_dqn_checkpoint_holds_its_replay_buffer(one_thread: None, tmp_path: Path) -> None:
    cfg = DQNConfig(env_id="ALE/Breakout-v5", buffer_size=300, learning_starts=20, seed=1)
    env = make_atari(cfg.env_id, 1, 0)
    try:
        model = build_agent(cfg, env, torch.device("cpu"))
        model.learn(120)
        state = save_agent(model, tmp_path)
        assert state["replay_buffer_file"] == "replay_buffer-120.pkl"  # its own file
        with (tmp_path / "replay_buffer-120.pkl").open("rb") as f:
            buffer = pickle.load(f)
        assert isinstance(buffer, ReplayBuffer) and buffer.pos == 120  # agent steps stored
        (tmp_path / "replay_buffer-60.pkl").write_bytes(b"an older checkpoint's")
        drop_replay_buffers(tmp_path, keep=state["replay_buffer_file"])
        assert [p.name for p in tmp_path.iterdir()] == ["replay_buffer-120.pkl"]
        with pytest.raises(UserError, match="replay buffer .* is missing; --fresh"):
            load_agent(DQN, state, env, torch.device("cpu"), tmp_path / "elsewhere")
        # A checkpoint from before 2026-12-03 holds the buffer itself: it still resumes.
        legacy = {"model_zip": state["model_zip"]}
        legacy["replay_buffer"] = (tmp_path / "replay_buffer-120.pkl").read_bytes()
        assert load_agent(DQN, legacy, env, torch.device("cpu")).replay_buffer.pos == 120
        loaded = load_agent(DQN, state, env, torch.device("cpu"), tmp_path)
        assert loaded.num_timesteps == 120 and loaded.replay_buffer.pos == 120
        assert np.array_equal(loaded.replay_buffer.observations, model.replay_buffer.observations)
        for a, b in zip(model.q_net.parameters(), loaded.q_net.parameters(), strict=True):
            assert torch.equal(a, b)
        loaded.learn(40, reset_num_timesteps=False)  # goes on from the checkpoint
        assert loaded.num_timesteps == 160 and loaded.replay_buffer.pos == 160
    finally:
        env.close()


def test_summary_metrics_are_declared_with_a_human_normaliser() -> None:
    bench = get_benchmark("rl.a2c")
    assert bench.headline == ("final_return", "auc_return") and bench.curve_x == "step"
    normalise = bench.load_normalizer()
    assert normalise("final_return", {"env_id": MS_PACMAN}) == (307.3, 6951.6)
    assert normalise("eval_return_mean", {"env_id": "ALE/Pong-v5"}) == (-20.7, 14.6)
    assert normalise("wall_s", {"env_id": MS_PACMAN}) is None
    assert human_bounds("final_return", {"env_id": "ALE/Adventure-v5"}) is None


@pytest.mark.parametrize(
    ("env_id", "name"),
    [
        ("ALE/MsPacman-v5", "ms_pacman"),
        ("ALE/SpaceInvaders-v5", "space_invaders"),
        ("ALE/UpNDown-v5", "up_n_down"),
        ("ALE/KungFuMaster-v5", "kung_fu_master"),
        ("BreakoutNoFrameskip-v4", "breakout"),
        ("ALE/Qbert-v5", "qbert"),
    ],
)
def test_game_names_follow_the_score_table(env_id: str, name: str) -> None:
    assert game_name(env_id) == name and name in ATARI_SCORES


def test_atari_suites() -> None:
    assert len(set(ATARI9)) == 9 and MS_PACMAN in ATARI9
    assert set(ATARI9) <= set(ale_ids())
    assert all(game_name(g) in ATARI_SCORES for g in ATARI9)
    for name, bench in (("atari9", "rl.a2c"), ("atari9-dqn", "rl.dqn")):
        runs = expand(get_suite(name))
        assert len(runs) == 9 * 2 * 5 and {r.benchmark for r in runs} == {bench}
        assert {r.cfg.total_steps for r in runs} == {10_000_000}
    laptop = expand(get_suite("atari-laptop"))
    assert len(laptop) == 2 * 2 * 3 and MS_PACMAN in {r.cfg.env_id for r in laptop}
    smoke = expand(get_suite("atari-smoke"))
    assert {r.benchmark for r in smoke} == {"rl.a2c", "rl.dqn"}
    assert len({r.cfg.env_id for r in smoke}) == 2
    assert all(math.isfinite(r.cfg.total_steps) and r.cfg.total_steps <= 2000 for r in smoke)


def _first_seed(seed: int, frames: int) -> int:
    """What the docs promise an attempt's first environment seed is, computed here again."""
    return int(np.random.SeedSequence([seed, frames]).generate_state(1)[0])


@pytest.mark.parametrize("bench", ["a2c", "dqn"])
def test_each_attempt_seeds_its_environments_from_the_run_seed_and_step(
    bench: str, one_thread: None, tmp_path: Path
) -> None:
    # SB3 reseeds the VecEnv with the agent's own seed (seed + i) when it builds or loads an
    # agent; the seeds the environments take at their next reset must be the attempt's.
    algo, module = (A2C, a2c) if bench == "a2c" else (DQN, dqn)
    cpu = torch.device("cpu")
    first: dict[int, list[int]] = {}
    for seed in (0, 1):
        kwargs = {"buffer_size": 50} if bench == "dqn" else {}
        cfg = (A2CConfig if bench == "a2c" else DQNConfig)(
            env_id="ALE/Breakout-v5", n_envs=2, seed=seed, **kwargs
        )

        def build(env, device, cfg=cfg):
            return module.build_agent(cfg, env, device)

        env = make_atari(cfg.env_id, 2, 12345)  # the factory's seed: replaced by the attempt's
        try:
            model, _ = start_agent(cfg, algo, build, env, cpu, None, 0, tmp_path)
            first[seed] = list(env.venv._seeds)  # taken at the next reset, learn's first
            state = {**save_agent(model, tmp_path), "progress": {}}
        finally:
            env.close()
        assert first[seed] == [_first_seed(seed, 0), _first_seed(seed, 0) + 1]
        env = make_atari(cfg.env_id, 2, 12345)
        try:
            start_agent(cfg, algo, build, env, cpu, state, 4000, tmp_path)
            resumed = list(env.venv._seeds)
        finally:
            env.close()
        assert resumed == [_first_seed(seed, 4000), _first_seed(seed, 4000) + 1]
    assert not set(first[0]) & set(first[1])  # SB3's own seeding gave [0, 1] and [1, 2]


def test_a_resumed_dqn_buffer_ends_its_last_transition(one_thread: None, tmp_path: Path) -> None:
    # optimize_memory_usage stores a transition's next observation in the next slot, which
    # the resumed attempt's first step fills with its new game's first frame.
    cfg = DQNConfig(
        env_id="ALE/Breakout-v5",
        buffer_size=300,
        learning_starts=20,
        seed=1,
        optimize_memory_usage=True,
    )
    env = make_atari(cfg.env_id, 1, 0)
    try:
        model = build_agent(cfg, env, torch.device("cpu"))
        model.learn(120)
        assert model.replay_buffer.dones[119, 0] == 0  # in the middle of a game
        state = save_agent(model, tmp_path)
    finally:
        env.close()
    env = make_atari(cfg.env_id, 1, 99)
    try:
        loaded = load_agent(DQN, state, env, torch.device("cpu"), tmp_path)
        loaded.learn(1, reset_num_timesteps=False)
        reset_frame = loaded.replay_buffer.observations[120]
        assert not np.array_equal(reset_frame, model.replay_buffer.observations[120])
        batch = loaded.replay_buffer._get_samples(np.array([119]))
        # its next observation is now the new game's first frame, so it must not bootstrap
        assert torch.equal(batch.next_observations[0].cpu(), torch.as_tensor(reset_frame[0]))
        assert batch.dones.item() == 1.0
        assert loaded.replay_buffer.dones[:119].sum() == model.replay_buffer.dones[:119].sum()
    finally:
        env.close()


def test_a_dqn_evaluation_is_the_same_every_time_for_one_eval_seed(one_thread: None) -> None:
    cfg = DQNConfig(
        env_id="ALE/Breakout-v5", n_envs=1, eval_episodes=2, eval_max_steps=300, gif_steps=300
    )
    env = make_atari(cfg.env_id, 1, 0)
    try:
        model = build_agent(cfg, env, torch.device("cpu"))
    finally:
        env.close()
    model.exploration_rate = 0.5  # half the actions from the action space's own generator
    _assert_evaluation_repeats(model, cfg)


def test_an_a2c_evaluation_is_the_same_every_time_for_one_eval_seed(one_thread: None) -> None:
    # A2C samples every action from its policy's distribution, with torch's generator.
    cfg = A2CConfig(
        env_id="ALE/Breakout-v5", n_envs=1, eval_episodes=2, eval_max_steps=300, gif_steps=300
    )
    env = make_atari(cfg.env_id, 1, 0)
    try:
        model = a2c.build_agent(cfg, env, torch.device("cpu"))
        obs = env.reset()
    finally:
        env.close()
    # the untrained policy is far from greedy: the sampled actions depend on the generator
    torch.manual_seed(0)
    assert len({int(model.predict(obs, deterministic=False)[0][0]) for _ in range(50)}) > 1
    _assert_evaluation_repeats(model, cfg)


def _assert_evaluation_repeats(model: A2C | DQN, cfg: A2CConfig | DQNConfig) -> None:
    """`evaluate` twice, the generators left in other states between: the same games."""
    scores, frames = evaluate(model, cfg)
    assert len(scores) == cfg.eval_episodes and frames
    model.action_space.seed(12345)  # whatever state they were left in
    np.random.seed(7)
    torch.manual_seed(7)
    again, frames_again = evaluate(model, cfg)
    assert again == scores  # and the first game played frame for frame the same
    assert len(frames_again) == len(frames) and all(map(np.array_equal, frames, frames_again))


def test_a_killed_dqn_run_resumes_and_its_last_checkpoint_drops_the_buffer(
    tmp_path: Path,
) -> None:
    # 1 env, 16 frames a rollout (train_freq 4 agent steps): 2,000 frames; logs every 64
    # frames and a checkpoint every 128, so each checkpoint's step has its log line.
    args = ["run", "rl.dqn", *TINY, "--n-envs", "1", "--total-steps", "2000"]
    args += ["--buffer-size", "300", "--learning-starts", "25", "--target-update-interval", "50"]
    args += ["--checkpoint-every", "128", "--log-every", "64", "--runs-dir", str(tmp_path)]
    checkpoint = kill_after_checkpoint(args, tmp_path, "rl.dqn")
    killed = torch.load(checkpoint, map_location="cpu", weights_only=False)
    assert 0 < killed["step"] < 2000
    name = killed["state"]["replay_buffer_file"]
    assert [p.name for p in checkpoint.parent.glob("*replay_buffer-*")] == [name]  # no older
    with (checkpoint.parent / name).open("rb") as f:
        buffer = pickle.load(f)
    assert buffer.pos == killed["step"] // 4  # every agent step so far, in a 300-step buffer

    resumed = cc_bench(*args)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {checkpoint.parent.name} from step" in resumed.stderr
    assert last_json(resumed.stdout)["frames"] == 2000
    lines = [json.loads(x) for x in (checkpoint.parent / "metrics.jsonl").read_text().splitlines()]
    steps = [x["step"] for x in lines if "perf/steps_per_s" in x]
    assert steps == sorted(set(steps)) and steps[-1] == 2000
    assert all(b - a <= 64 for a, b in zip(steps, steps[1:], strict=False))
    final = torch.load(checkpoint, map_location="cpu", weights_only=False)
    assert final["step"] == 2000 and "model_zip" in final["state"]
    assert "replay_buffer_file" not in final["state"]  # the finished run keeps no buffer
    assert not list(checkpoint.parent.glob("*replay_buffer-*"))


def test_no_finished_training_game_means_no_training_score(tmp_path: Path) -> None:
    # 2 envs x 40 frames: no Breakout game ends; the evaluation game does (capped), but its
    # score is not a training score.
    args = ["run", "rl.a2c", *TINY, "--total-steps", "80", "--runs-dir", str(tmp_path)]
    proc = cc_bench(*args)
    assert proc.returncode == 0, proc.stderr
    metrics = last_json(proc.stdout)
    assert metrics["train_episodes"] == 0 and metrics["eval_episodes"] == 1
    assert metrics["final_return"] is None and metrics["auc_return"] is None
    assert math.isfinite(metrics["eval_return_mean"])


def test_where_and_with_r_do_not_change_a_conv_run() -> None:
    base = A2CConfig(conv="conv")
    same = A2CConfig(conv="conv", where="all", with_r=True)
    assert run_id("rl.a2c", same) == run_id("rl.a2c", base)
    assert (same.resolve().where, same.resolve().with_r) == ("first", False)
    coord = A2CConfig(conv="coordconv")
    assert run_id("rl.a2c", A2CConfig(conv="coordconv", where="all")) != run_id("rl.a2c", coord)
    assert run_id("rl.a2c", A2CConfig(conv="coordconv", with_r=True)) != run_id("rl.a2c", coord)


def test_score_table_is_dqn_zoo_s() -> None:
    """A few (random, human) pairs as DQN Zoo's `atari_data.py` has them (not Nature's human
    column: Breakout 31.8, Ms. Pac-Man 15,693 there)."""
    assert ATARI_SCORES["breakout"] == (1.7, 30.5)
    assert ATARI_SCORES["ms_pacman"] == (307.3, 6951.6)
    assert ATARI_SCORES["pong"] == (-20.7, 14.6)
    assert ATARI_SCORES["video_pinball"] == (16256.9, 17667.9)


def test_a_slow_checkpoint_puts_off_the_next_by_ten_times_its_duration_at_most_5_minutes() -> None:
    from cc_bench.rl.training import MAX_CHECKPOINT_GAP_S, checkpoint_wait_s

    assert MAX_CHECKPOINT_GAP_S == 300
    assert checkpoint_wait_s(0.0) == 0  # a quick save: the Tracker's 60 s rule alone
    assert checkpoint_wait_s(3.0) == pytest.approx(30.0)  # a 280 MB buffer
    assert checkpoint_wait_s(60.0) == 300  # the zoo's 5.6 GB buffer: 5 minutes, not 10
