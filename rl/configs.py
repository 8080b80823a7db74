"""Configs of the Atari benchmarks (paper section 6). No torch or SB3 here: `--help` is fast.

Budgets count emulator frames: one agent step is 4 frames (the AtariWrapper's frame skip),
so `total_steps=10_000_000` is 2.5M agent steps, rl-baselines3-zoo's "1e7 timesteps" being
agent steps (40M frames). SB3's own hyper-parameters (`n_steps`, `buffer_size`,
`learning_starts`, `target_update_interval`) keep SB3's unit, agent steps, and the zoo's values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, TypeVar

from cc_bench.config import MAX_SEED, BenchConfig, bounded
from cc_bench.errors import UserError

A = TypeVar("A", bound="AtariConfig")


@dataclass(frozen=True)
class AtariConfig(BenchConfig):
    """What every Atari run has: the game, the budget, the extractor, evaluation, checkpoints."""

    env_id: str = "ALE/MsPacman-v5"
    """Gymnasium ALE id (v5: sticky actions 0.25; made with frameskip=1 under SB3's
    AtariWrapper, as rl-baselines3-zoo does), e.g. ALE/Breakout-v5; or the zoo's own
    BreakoutNoFrameskip-v4 (no sticky actions), for numbers comparable with its tables."""
    total_steps: int = bounded(10_000_000, ge=1)
    """Training budget in emulator frames, frame skip included (4 frames per agent step);
    the run stops at the first whole update at or past it."""
    where: Literal["first", "all"] = "first"
    """With --conv coordconv: CoordConv in the first conv of NatureCNN (the paper's actor) or
    in all three. With --conv conv it does nothing, and the run trains with "first" (its id
    too: conv runs do not multiply with it; likewise --with-r)."""
    n_envs: int = bounded(16, ge=1)
    """Parallel environments; in an attempt that starts at frame f, env i of seed s is
    seeded with `env_seed(s, f) + i` (rl/training.py): no seed shared between runs, new
    games in a resumed attempt."""
    vec_env: Literal["auto", "dummy", "subproc"] = "auto"
    """`dummy`: the games stepped in this process; `subproc`: one process each; `auto`:
    `subproc` where the network leaves the run 4 or more CPUs, else `dummy` (docs/rl.md).
    Not part of the run's id: the games and their frames are the same either way."""
    eval_episodes: int = bounded(10, ge=1)
    """Games played at the end with the trained agent (its stochastic policy), episode i on
    a fresh environment seeded eval_seed + i, the same for every run."""
    eval_seed: int = bounded(1_000_000, ge=0, le=MAX_SEED)
    """Seed of the evaluation games (and of the agent's action sampling there)."""
    eval_max_steps: int = bounded(0, ge=0)
    """Cap on the agent steps of one evaluation game (0: the game's own cap, 108,000
    frames); a capped game counts with its score so far."""
    gif_steps: int = bounded(400, ge=0)
    """Agent steps of the first evaluation game kept for the GIF in media/ (every 2nd)."""
    log_every: int = bounded(20_000, ge=1)
    """Frames between two logs of losses/* and perf/steps_per_s (episodes are logged as they end)."""
    checkpoint_every: int = bounded(0, ge=0)
    """Also checkpoint every this many frames (0: only every 60 s of wall time). Not part of
    the run's id: when checkpoints are taken changes nothing an uninterrupted run trains."""
    torch_threads: int = bounded(0, ge=0)
    """CPU threads for torch (0: as the process has them; `cc-bench launch` gives each local
    worker its share of the cores). On a busy 2-core CPU, 2 threads ran A2C 7x slower than 1."""

    def check_inputs(self) -> None:
        """An unknown game is one line before anything runs (and before `launch` plans it);
        checked here, not when a config is built, so a report reads runs back without ale-py
        (or with an ale-py that no longer has the game)."""
        from cc_bench.envs.atari import check_env_id

        check_env_id(self.env_id)

    # A conv run resolves `where` to its default (`resolve`; `with_r` the core resolves), so
    # it differs between the two sides of a CoordConv `where="all"` comparison: reports pair
    # on the rest.
    conv_dependent: ClassVar[frozenset[str]] = frozenset({"where"})
    run_time_fields: ClassVar[frozenset[str]] = frozenset({"checkpoint_every"})

    def resolve(self: A) -> A:
        """The core's resolution (a conv run's `with_r` False), and a conv run's `where` at
        its default.

        NatureCNN has no CoordConv for it to place, so `--conv conv --where all` trains
        what `--conv conv` does and gets the same run id (the id hashes this resolved config).
        """
        out = super().resolve()
        if out.conv == "conv":
            object.__setattr__(out, "where", "first")
        return out


@dataclass(frozen=True)
class A2CConfig(AtariConfig):
    """A2C (Mnih et al. 2016) with rl-baselines3-zoo's Atari hyper-parameters.

    16 environments, 5 steps each per update, RMSpropTFLike (eps 1e-5, alpha 0.99),
    learning rate 7e-4 constant, entropy 0.01, value 0.25, gradient norm 0.5, gamma 0.99.
    """

    n_steps: int = bounded(5, ge=1)
    """Agent steps per environment per update."""
    learning_rate: float = bounded(7e-4, gt=0.0)
    """RMSpropTFLike learning rate (constant)."""
    ent_coef: float = bounded(0.01, ge=0.0)
    """Weight of the entropy bonus."""
    vf_coef: float = bounded(0.25, ge=0.0)
    """Weight of the value loss."""
    max_grad_norm: float = bounded(0.5, gt=0.0)
    """Gradient norm clip."""
    gamma: float = bounded(0.99, gt=0.0, le=1.0)
    """Discount."""
    rms_eps: float = bounded(1e-5, gt=0.0)
    """RMSpropTFLike's epsilon (added inside the square root, as TensorFlow does)."""


@dataclass(frozen=True)
class DQNConfig(AtariConfig):
    """DQN (Mnih et al. 2015) with rl-baselines3-zoo's Atari hyper-parameters.

    One environment, a 100,000-step replay buffer (each observation and next observation
    stored: 5.6 GB), Adam at 1e-4, batch 32, learning from agent step 100,000, a gradient
    step every 4 agent steps, the target network copied every 1,000 agent steps, epsilon
    1 -> 0.01 over the first 10%.
    """

    n_envs: int = bounded(1, ge=1)
    """Parallel environments (the zoo: 1)."""
    buffer_size: int = bounded(100_000, ge=1)
    """Replay buffer size in agent steps (kept in every checkpoint taken while training:
    about 56 KB per step, 28 KB with --optimize-memory-usage; the one taken when training
    ends leaves it out)."""
    optimize_memory_usage: bool = False
    """Store each observation once, a transition's next observation being the next slot's
    (half the memory; SB3 then cannot tell time limits from game ends). The zoo: off."""
    learning_rate: float = bounded(1e-4, gt=0.0)
    """Adam learning rate."""
    batch_size: int = bounded(32, ge=1)
    """Minibatch size."""
    learning_starts: int = bounded(100_000, ge=0)
    """Agent steps of random play before learning starts."""
    train_freq: int = bounded(4, ge=1)
    """Agent steps between two gradient steps."""
    target_update_interval: int = bounded(1_000, ge=1)
    """Agent steps between two copies into the target network."""
    exploration_fraction: float = bounded(0.1, ge=0.0, le=1.0)
    """Share of the run over which epsilon falls from 1 to its final value."""
    exploration_final_eps: float = bounded(0.01, ge=0.0, le=1.0)
    """Final epsilon (also used in evaluation)."""
    gamma: float = bounded(0.99, gt=0.0, le=1.0)
    """Discount."""

    def check_inputs(self) -> None:
        """The game, and a replay buffer SB3 can sample from: it keeps `buffer_size //
        n_envs` steps per environment, and with `optimize_memory_usage` never samples the
        newest (its next observation is not stored yet), so it needs 2 there."""
        super().check_inputs()
        need = self.n_envs * (2 if self.optimize_memory_usage else 1)
        if self.buffer_size < need:
            raise UserError(
                f"invalid buffer_size={self.buffer_size}: must be >= {need} (n_envs="
                f"{self.n_envs}, {need // self.n_envs} agent steps per environment"
                + (" with optimize_memory_usage)" if self.optimize_memory_usage else ")")
            )
