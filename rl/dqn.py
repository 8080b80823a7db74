"""DQN on an Atari game with NatureCNN or CoordConvNatureCNN: the Q-learning side of section 6.

The paper tried CoordConv in Ape-X (distributed prioritised replay, double and dueling
Q-learning, n-step returns, 360 actors) and saw no gain. This is SB3's plain DQN with
rl-baselines3-zoo's Atari settings (one actor, uniform replay, one-step targets, no double
or dueling heads), so it asks the same question of a much simpler Q-learner.
"""

from __future__ import annotations

from typing import Any

import torch
from stable_baselines3 import DQN

from cc_bench.rl.configs import DQNConfig
from cc_bench.rl.training import extractor_kwargs, train_agent
from cc_bench.tracking import Tracker


def build_agent(cfg: DQNConfig, env: Any, device: torch.device) -> DQN:
    """SB3's DQN with the zoo's Atari settings and the config's extractor."""
    return DQN(
        "CnnPolicy",
        env,
        learning_rate=cfg.learning_rate,
        buffer_size=cfg.buffer_size,
        learning_starts=cfg.learning_starts,
        batch_size=cfg.batch_size,
        gamma=cfg.gamma,
        train_freq=cfg.train_freq,
        gradient_steps=1,
        target_update_interval=cfg.target_update_interval,
        exploration_fraction=cfg.exploration_fraction,
        exploration_final_eps=cfg.exploration_final_eps,
        optimize_memory_usage=cfg.optimize_memory_usage,
        # SB3 cannot tell a time limit from a game's end when it stores each frame once.
        replay_buffer_kwargs={"handle_timeout_termination": not cfg.optimize_memory_usage},
        policy_kwargs=extractor_kwargs(cfg),
        seed=cfg.seed,
        device=device,
        verbose=0,
    )


def run(cfg: DQNConfig, tracker: Tracker) -> dict[str, Any]:
    """Train DQN for `total_steps` frames, evaluate it, save the curve, frames and a GIF."""
    cfg = cfg.resolve()
    return train_agent(cfg, tracker, DQN, lambda env, dev: build_agent(cfg, env, dev), "rl.dqn")
