"""A2C and DQN on Atari with a CoordConv features extractor for stable-baselines3 (paper section 6).

`CoordConvNatureCNN` (and `coordconv_policy_kwargs`) drop CoordConv into any SB3 agent with
a `CnnPolicy`; they are imported on first use, so `import cc_bench.rl` loads neither torch
nor SB3. The benchmarks: `rl.a2c` (the paper's A2C on Atari) and `rl.dqn` (the Q-learning
side, where the paper's Ape-X saw no gain), on the ALE games through `cc_bench.envs.atari`.
Budgets count emulator frames (4 per agent step).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cc_bench.registry import register_benchmark
from cc_bench.report.extras import register_report_section
from cc_bench.rl.configs import A2CConfig, DQNConfig
from cc_bench.suites import (
    PAPER_DESCRIPTION,
    SMOKE_DESCRIPTION,
    Suite,
    SuiteEntry,
    extend_suite,
    register_suite,
)

if TYPE_CHECKING:
    from cc_bench.rl.extractor import (  # noqa: F401
        CoordConvNatureCNN,
        ObservationSpaceError,
        WhereError,
        coordconv_policy_kwargs,
    )

_LAZY = ("CoordConvNatureCNN", "coordconv_policy_kwargs", "ObservationSpaceError", "WhereError")
__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module("cc_bench.rl.extractor"), name)
    raise AttributeError(f"module 'cc_bench.rl' has no attribute {name!r}")


# Which way each summary metric is better: the report judges only what is declared here.
_METRICS = {
    "final_return": "higher",
    "auc_return": "higher",
    "eval_return_mean": "higher",
    "eval_return_std": "neither",
    "eval_episodes": "neither",
    "train_episodes": "neither",
    "frames": "neither",
    "steps_per_s": "higher",
    "params": "neither",
    "wall_s": "lower",
}
_COMMON = {
    "metrics": _METRICS,
    "headline": ("final_return", "auc_return"),
    "normalizer": "cc_bench.rl.scores:human_bounds",
    "curve_x": "step",
    "curve_x_label": "env frames",
    "curves": ("charts/episodic_return", "charts/episodic_length"),
}
register_benchmark(
    "rl.a2c",
    A2CConfig,
    run="cc_bench.rl.a2c:run",
    description="A2C on an Atari game, NatureCNN or CoordConv (the first conv, or all of them: "
    "--where) (section 6)",
    **_COMMON,
)
register_benchmark(
    "rl.dqn",
    DQNConfig,
    run="cc_bench.rl.dqn:run",
    description="DQN on an Atari game, NatureCNN or CoordConv (section 6's Q-learning side)",
    **_COMMON,
)

MS_PACMAN = "ALE/MsPacman-v5"
# Nine games of varied kinds: the seven of the first DQN paper (Mnih et al. 2013), which
# most A2C/PPO baselines (and rl-baselines3-zoo's benchmark) report, so scores compare with
# published ones: paddles (Pong, Breakout), shooters with fixed or lane movement (Space
# Invaders, Beam Rider), free movement under water (Seaquest), a pyramid of cubes (Q*bert),
# racing (Enduro); plus Ms. Pac-Man (the paper's large gain: a maze where position is
# everything) and Asteroids (free movement on a wrapping screen). The paper's nine are unknown.
ATARI9 = (
    MS_PACMAN,
    "ALE/Asteroids-v5",
    "ALE/BeamRider-v5",
    "ALE/Breakout-v5",
    "ALE/Enduro-v5",
    "ALE/Pong-v5",
    "ALE/Qbert-v5",
    "ALE/Seaquest-v5",
    "ALE/SpaceInvaders-v5",
)
SMOKE_GAMES = ("ALE/Breakout-v5", MS_PACMAN)

# Seconds a run: two environments, 2,000 frames (a Breakout game of random play is about
# 1,000, so a game finishes and the headline scores exist), one evaluation game of 100 steps.
_TINY = {
    "total_steps": 2_000,
    "n_envs": 2,
    "vec_env": "dummy",  # the same path on every machine, and the fastest for two games
    "eval_episodes": 1,
    "eval_max_steps": 100,
    "gif_steps": 40,
    "log_every": 100,
    "torch_threads": 1,
}
_TINY_DQN = {
    **_TINY,
    "n_envs": 1,
    "buffer_size": 500,
    "learning_starts": 25,
    "target_update_interval": 50,
}
# The laptop budget: 1,000,000 frames a run (10% of atari9's), 12 runs, two at a time with
# one torch thread each (`--workers 2`): 47 minutes on an idle 2-core Zen 5 EPYC, 73 on a
# Zen 3 one (docs/rl.md has both runs). The agents learn in that budget (at 100,000 frames
# they still play at random), but it is far too short to rank conv and CoordConv on final
# scores.
LAPTOP = {
    "total_steps": 1_000_000,
    "eval_episodes": 5,
    "eval_max_steps": 4_500,
    "torch_threads": 1,
}

register_suite(
    Suite(
        "atari-smoke",
        "A2C and DQN on Breakout and Ms. Pac-Man, conv vs CoordConv, 2,000 frames: "
        "seconds a run, for tests",
        (
            SuiteEntry("rl.a2c", grid={"env_id": SMOKE_GAMES}, seeds=1, fixed=_TINY),
            SuiteEntry("rl.dqn", grid={"env_id": SMOKE_GAMES}, seeds=1, fixed=_TINY_DQN),
        ),
    )
)
register_suite(
    Suite(
        "atari-laptop",
        "A2C on Ms. Pac-Man and Breakout, conv vs CoordConv (first conv), 3 seeds, 1M "
        "frames a run: 47 to 73 minutes on an idle 2-core CPU with --workers 2 (47 on a "
        "Zen 5 EPYC, 73 on a Zen 3; laptop budget: first learning, not the paper's)",
        (SuiteEntry("rl.a2c", grid={"env_id": (MS_PACMAN, "ALE/Breakout-v5")}, fixed=LAPTOP),),
    )
)
_ATARI9 = register_suite(
    Suite(
        "atari9",
        "A2C on nine Atari games, conv vs CoordConv (first conv), 10M frames, 5 seeds: "
        "for a GPU cluster (cc-bench launch atari9 --executor slurm)",
        (SuiteEntry("rl.a2c", grid={"env_id": ATARI9}, seeds=5),),
    )
)
_ATARI9_DQN = register_suite(
    Suite(
        "atari9-dqn",
        "DQN on the same nine games, conv vs CoordConv, 10M frames, 5 seeds: for a GPU cluster",
        (SuiteEntry("rl.dqn", grid={"env_id": ATARI9}, seeds=5),),
    )
)
extend_suite(
    "smoke",
    SuiteEntry("rl.a2c", seeds=1, fixed={"env_id": SMOKE_GAMES[0], **_TINY}),
    SuiteEntry("rl.dqn", seeds=1, fixed={"env_id": SMOKE_GAMES[0], **_TINY_DQN}),
    description=SMOKE_DESCRIPTION,
)
extend_suite("paper", *_ATARI9.entries, *_ATARI9_DQN.entries, description=PAPER_DESCRIPTION)
# The report: human-normalised learning curves aggregated across games (rl/report.py).
register_report_section(("rl.a2c", "rl.dqn"), "cc_bench.rl.report:aggregate_curves")
