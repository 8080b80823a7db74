"""A2C on an Atari game with NatureCNN or CoordConvNatureCNN (Liu et al. 2018, section 6).

The paper put a CoordConv layer in the A2C actor on nine Atari games and found it better
or faster on 6, similar on 2 and slightly worse on 1, with a large gain on Ms. Pac-Man.
Here SB3's A2C trains with rl-baselines3-zoo's Atari hyper-parameters; `--conv` picks the
features extractor the actor and critic share (SB3's `CnnPolicy` has one network body).
"""

from __future__ import annotations

from typing import Any

import torch
from stable_baselines3 import A2C
from stable_baselines3.common.sb2_compat.rmsprop_tf_like import RMSpropTFLike

from cc_bench.rl.configs import A2CConfig
from cc_bench.rl.training import extractor_kwargs, train_agent
from cc_bench.tracking import Tracker


def build_agent(cfg: A2CConfig, env: Any, device: torch.device) -> A2C:
    """SB3's A2C with the zoo's Atari settings and the config's extractor."""
    return A2C(
        "CnnPolicy",
        env,
        learning_rate=cfg.learning_rate,
        n_steps=cfg.n_steps,
        gamma=cfg.gamma,
        ent_coef=cfg.ent_coef,
        vf_coef=cfg.vf_coef,
        max_grad_norm=cfg.max_grad_norm,
        policy_kwargs={
            "optimizer_class": RMSpropTFLike,
            "optimizer_kwargs": {"eps": cfg.rms_eps},
            **extractor_kwargs(cfg),
        },
        seed=cfg.seed,
        device=device,
        verbose=0,
    )


def run(cfg: A2CConfig, tracker: Tracker) -> dict[str, Any]:
    """Train A2C for `total_steps` frames, evaluate it, save the curve, frames and a GIF."""
    cfg = cfg.resolve()
    return train_agent(cfg, tracker, A2C, lambda env, dev: build_agent(cfg, env, dev), "rl.a2c")
