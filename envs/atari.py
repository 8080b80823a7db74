"""The Atari environment factory every RL run uses (Liu et al. 2018, section 6: A2C on Atari).

Gymnasium's ALE v5 ids (`ALE/MsPacman-v5`; the ROMs ship with ale-py, so this works
offline) made with `frameskip=1`, so that SB3's `AtariWrapper` does the skipping with its
defaults, as rl-baselines3-zoo's Atari settings have it: 30 random no-ops at reset, a
frame skip of 4 with the max of the last two frames, FIRE on reset where the game needs
it, a life loss ends the training episode, rewards clipped to their sign, 84x84 grayscale;
then 4 stacked frames (`VecFrameStack`). The v5 ids keep their sticky actions
(`repeat_action_probability=0.25`, Machado et al. 2018), which the zoo's older
`NoFrameskip-v4` ids did not have. `Monitor` wraps the raw game, under the `AtariWrapper`,
so the episode returns it reports (`info["episode"]`) are whole games, unclipped.

One agent step is `FRAME_SKIP` (4) emulator frames: budgets here count frames.
"""

from __future__ import annotations

import difflib
import functools
from typing import TYPE_CHECKING, Any, Literal

from cc_bench.errors import UserError
from cc_bench.machine import run_cpus

if TYPE_CHECKING:
    import torch
    from stable_baselines3.common.vec_env import VecEnv

FRAME_SKIP = 4
"""Emulator frames per agent step (AtariWrapper's default)."""
FRAME_STACK = 4
"""Frames stacked into one observation."""

VecEnvKind = Literal["auto", "dummy", "subproc"]
SUBPROC_MIN_CPUS = 4
"""`auto` runs the games in subprocesses when the network leaves this run this many CPUs."""


@functools.cache
def ale_ids() -> tuple[str, ...]:
    """Every ALE environment id gymnasium knows once ale-py has registered its games."""
    import ale_py
    import gymnasium as gym

    gym.register_envs(ale_py)
    return tuple(sorted(k for k in gym.registry if k.startswith("ALE/")))


@functools.cache
def zoo_ids() -> tuple[str, ...]:
    """The `<Game>NoFrameskip-v4` ids rl-baselines3-zoo trained on (no sticky actions)."""
    import ale_py
    import gymnasium as gym

    gym.register_envs(ale_py)
    return tuple(sorted(k for k in gym.registry if k.endswith("NoFrameskip-v4")))


def resolve_vec_env(
    kind: VecEnvKind, n_envs: int, *, network_cpus: int = 0
) -> Literal["dummy", "subproc"]:
    """What `auto` stands for here: `subproc` when there are several games and this run has
    at least `SUBPROC_MIN_CPUS` CPUs that its network's training leaves free, else `dummy`.

    A run's CPUs: its share of the cores under `cc-bench launch` (`CC_BENCH_CPUS`: the cores
    over `--workers`), else the CPUs this process may run on (a Slurm job's
    `--cpus-per-job`). `network_cpus`: the CPUs the network keeps busy, torch's threads when
    it trains on the CPU, 0 on a GPU. On 2 cores the 16 game processes and the frames sent
    between them cost more than they give; on a 16-core GPU node they step the games 2.6
    times faster than one process does, while beside torch's 16 CPU threads they made A2C
    slower (docs/rl.md). One game is always `dummy`, whatever is asked: there is nothing to
    run beside it."""
    if n_envs == 1:
        return "dummy"
    if kind != "auto":
        return kind
    return "subproc" if run_cpus() - network_cpus >= SUBPROC_MIN_CPUS else "dummy"


def network_cpus(device: torch.device) -> int:
    """The CPUs a network on `device` keeps busy while it trains: torch's threads on the CPU,
    none on an accelerator (for `resolve_vec_env`)."""
    import torch

    return torch.get_num_threads() if device.type == "cpu" else 0


def check_env_id(env_id: str) -> str:
    """`env_id` if gymnasium has it as an ALE v5 game or a zoo `NoFrameskip-v4` one; else a
    UserError naming close v5 ids."""
    ids = ale_ids()
    if env_id in ids or env_id in zoo_ids():
        return env_id
    # Also match on the bare game name, so "MsPacman" or "mspacman-v5" find ALE/MsPacman-v5.
    by_name = {i.removeprefix("ALE/").lower(): i for i in ids}
    key = env_id.removeprefix("ALE/").lower()
    close = difflib.get_close_matches(key, by_name, n=4, cutoff=0.5)
    close += [n for n in by_name if n.startswith(key.split("-")[0]) and n not in close]
    hint = ", ".join(by_name[n] for n in close[:4])
    raise UserError(
        f"unknown Atari game env_id={env_id!r}; "
        + (f"close names: {hint}" if hint else f"e.g. {', '.join(ids[:4])}")
        + " (or the zoo's <Game>NoFrameskip-v4)"
        + f' ({len(ids)} ALE ids in all: python -c "import gymnasium as gym, ale_py; '
        "gym.register_envs(ale_py); print([k for k in gym.registry if k.startswith('ALE/')])\")"
    )


def _make_game(env_id: str, **kwargs: Any) -> Any:
    """`gymnasium.make(env_id)` after registering ale-py's games (also in a subprocess)."""
    import ale_py
    import gymnasium as gym

    gym.register_envs(ale_py)
    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)  # no banner per environment
    return gym.make(env_id, **kwargs)


def make_atari(
    env_id: str,
    n_envs: int = 1,
    seed: int = 0,
    *,
    vec_env: VecEnvKind = "auto",
    frame_stack: int = FRAME_STACK,
    terminal_on_life_loss: bool = True,
    clip_reward: bool = True,
    render: bool = False,
    env_kwargs: dict[str, Any] | None = None,
) -> VecEnv:
    """`n_envs` seeded copies of an ALE game with the AtariWrapper defaults and stacked frames.

    Args:
        env_id: a gymnasium ALE id such as `ALE/MsPacman-v5`, or rl-baselines3-zoo's
            `MsPacmanNoFrameskip-v4` (the same game without sticky actions).
        n_envs: parallel environments; environment i is seeded with `seed + i`.
        seed: the seed of the first environment.
        vec_env: `dummy` steps them one after the other in this process, `subproc` each in
            its own process (faster only when stepping the games costs more than sending
            their frames between processes; see docs/rl.md), `auto` as `resolve_vec_env`
            says. The games and their frames are the same either way.
        frame_stack: frames stacked into one observation (channels last; SB3's policies
            transpose it to (C, H, W) themselves).
        terminal_on_life_loss, clip_reward: the AtariWrapper's; evaluation keeps the
            first and turns clipping off (the game score comes from the Monitor, unclipped,
            over whole games, either way).
        render: make the games render RGB frames (`env.render()`), for GIFs.
        env_kwargs: more keyword arguments for `gymnasium.make`.
    """
    if n_envs < 1:
        raise UserError(f"invalid n_envs={n_envs}: must be >= 1")
    check_env_id(env_id)
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecFrameStack

    kwargs = {"frameskip": 1, **(env_kwargs or {})}  # the AtariWrapper skips frames
    if render:
        kwargs["render_mode"] = "rgb_array"
    venv = make_atari_env(
        functools.partial(_make_game, env_id),
        n_envs=n_envs,
        seed=seed,
        env_kwargs=kwargs,
        wrapper_kwargs={
            "frame_skip": FRAME_SKIP,
            "terminal_on_life_loss": terminal_on_life_loss,
            "clip_reward": clip_reward,
        },
        vec_env_cls=SubprocVecEnv if resolve_vec_env(vec_env, n_envs) == "subproc" else DummyVecEnv,
    )
    return VecFrameStack(venv, n_stack=frame_stack)
