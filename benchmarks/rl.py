"""A2C's training speed with NatureCNN and CoordConvNatureCNN (first conv, all convs), in one run.

Section 6 of Liu et al. 2018 puts a CoordConv layer in A2C's network on Atari. This times
SB3's A2C with rl-baselines3-zoo's Atari settings (16 environments, 5 steps, RMSpropTFLike)
on one game for three extractors: `conv` (SB3's NatureCNN), `coordconv-first` and
`coordconv-all` (CoordConvNatureCNN, where="first" / "all"). Each variant has its own
environments and agent; they train in turns, `--chunk` frames at a time, round-robin over
`--repeats` rounds, so load from other processes hits all alike. Each round's env frames per
second (4 frames per agent step) is recorded; the table gives the medians, their ratio to
conv, and where the time went: stepping the games (the VecEnv), the update (`A2C.train`:
forward and backward over the rollout) and the rest (the policy's forward pass to act,
SB3's rollout bookkeeping).

    python benchmarks/rl.py [--env-id ALE/MsPacman-v5] [--repeats 5] [--chunk 8000]
                            [--threads N] [--n-envs 16] [--vec-env dummy|subproc|dummy,subproc]
                            [--device auto|cpu|cuda]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from stable_baselines3 import A2C
from stable_baselines3.common.vec_env import VecEnvWrapper

from cc_bench.allocator import keep_freed_memory
from cc_bench.envs.atari import FRAME_SKIP, make_atari, network_cpus, resolve_vec_env
from cc_bench.errors import UserError
from cc_bench.machine import cpu_name
from cc_bench.rl.a2c import build_agent
from cc_bench.rl.configs import A2CConfig
from cc_bench.rl.training import quiet_logger
from cc_bench.runtime import resolve_device

# Each variant is rl.a2c's own agent (`build_agent`, the zoo's settings from `A2CConfig`).
VARIANTS = {
    "conv": {"conv": "conv"},
    "coordconv-first": {"conv": "coordconv", "where": "first"},
    "coordconv-all": {"conv": "coordconv", "where": "all"},
}


class TimedVecEnv(VecEnvWrapper):
    """A VecEnv that adds the seconds its games take to step to `seconds`."""

    def __init__(self, venv: Any) -> None:
        super().__init__(venv)
        self.seconds = 0.0

    def reset(self) -> Any:
        return self.venv.reset()

    def step_wait(self) -> Any:
        start = time.perf_counter()
        out = self.venv.step_wait()
        self.seconds += time.perf_counter() - start
        return out

    def step_async(self, actions: Any) -> None:
        start = time.perf_counter()
        self.venv.step_async(actions)
        self.seconds += time.perf_counter() - start


@dataclass
class Variant:
    """One extractor's agent, its timed environments and its measurements."""

    name: str
    vec_env: str
    model: A2C
    env: TimedVecEnv
    train_s: float = 0.0
    rates: list[float] = field(default_factory=list)
    total_s: float = 0.0
    env_s: float = 0.0
    frames: int = 0
    """Env frames of the last `run` (whole rollouts: possibly more than asked for)."""

    def run(self, frames: int) -> None:
        """Train on `frames` more env frames; record the rate and where the time went.

        SB3 trains whole rollouts (16 x 5 agent steps), past `frames` when it is not a
        multiple of one: the rate counts the frames the agent did step, from its step count.
        """
        model, env = self.model, self.env
        train = model.train
        spent = [0.0]

        def timed_train() -> None:
            start = time.perf_counter()
            train()
            spent[0] += time.perf_counter() - start

        model.train = timed_train  # type: ignore[method-assign]
        env_before, steps_before = env.seconds, model.num_timesteps
        start = time.perf_counter()
        model.learn(frames // FRAME_SKIP, reset_num_timesteps=False)
        elapsed = time.perf_counter() - start
        model.train = train  # type: ignore[method-assign]
        self.frames = (model.num_timesteps - steps_before) * FRAME_SKIP
        self.rates.append(self.frames / elapsed)
        self.total_s += elapsed
        self.env_s += env.seconds - env_before
        self.train_s += spent[0]


def build(name: str, cfg: A2CConfig, device: torch.device) -> Variant:
    """rl.a2c's agent for the variant `name` on `cfg`'s game, on timed environments."""
    cfg = dataclasses.replace(cfg, **VARIANTS[name])
    # What runs: `auto` as a run would resolve it; one game is always dummy.
    kind = resolve_vec_env(cfg.vec_env, cfg.n_envs, network_cpus=network_cpus(device))
    env = TimedVecEnv(make_atari(cfg.env_id, cfg.n_envs, seed=0, vec_env=kind))
    return Variant(name, kind, quiet_logger(build_agent(cfg, env, device)), env)


def parse_args() -> tuple[argparse.Namespace, list[A2CConfig], torch.device]:
    """The arguments, one config per VecEnv and the device; bad input exits 2 in one line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env-id", default="ALE/MsPacman-v5")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per variant")
    parser.add_argument("--chunk", type=int, default=8000, help="env frames per variant a round")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch's default)")
    parser.add_argument("--n-envs", type=int, default=16)
    parser.add_argument(
        "--vec-env",
        default="dummy",
        help="dummy, subproc, or both comma-separated (each extractor then runs with each)",
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda")
    args = parser.parse_args()
    for name in ("repeats", "chunk", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be >= 1, not {value}")
    if args.chunk < FRAME_SKIP:  # SB3 would train 0 agent steps: no rate to measure
        parser.error(f"--chunk must be >= {FRAME_SKIP} (one agent step), not {args.chunk}")
    vec_envs = args.vec_env.split(",")
    if not set(vec_envs) <= {"dummy", "subproc"}:
        parser.error(f"--vec-env takes dummy, subproc or dummy,subproc, not {args.vec_env!r}")
    try:
        device = resolve_device(args.device)
        cfgs = [
            A2CConfig(env_id=args.env_id, n_envs=args.n_envs, vec_env=vec, seed=0)
            for vec in vec_envs
        ]
        for cfg in cfgs:
            cfg.check_inputs()  # an unknown game
    except (UserError, RuntimeError) as exc:  # torch.device("gpu") is a RuntimeError
        parser.error(str(exc).splitlines()[0])
    return args, cfgs, device


def main() -> None:
    keep_freed_memory()
    args, cfgs, device = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    vec_envs = [cfg.vec_env for cfg in cfgs]
    variants = [build(name, cfg, device) for cfg in cfgs for name in VARIANTS]
    for v in variants:  # warm-up: first allocations, the layers' first-step choices
        v.run(args.n_envs * 5 * FRAME_SKIP * 4)
        v.rates.clear()
        v.total_s = v.env_s = v.train_s = 0.0
    for _ in range(args.repeats):
        for v in variants:
            v.run(args.chunk)
    for v in variants:
        v.env.close()

    cpu = cpu_name()
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu
    print(
        f"A2C on {args.env_id}, {args.n_envs} envs, {device.type} ({where}), "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{args.repeats} rounds of {args.chunk} frames, median frames/s\n"
    )
    conv = {v.vec_env: statistics.median(v.rates) for v in variants if v.name == "conv"}
    first = conv[vec_envs[0]]
    print(
        "| extractor | VecEnv | frames/s | agent steps/s | / conv | / conv, "
        f"{vec_envs[0]} | envs | update | act + SB3 |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for v in variants:
        rate = statistics.median(v.rates)
        env, train = v.env_s / v.total_s, v.train_s / v.total_s
        print(
            f"| {v.name} | {v.vec_env} | {rate:.0f} | {rate / FRAME_SKIP:.0f} | "
            f"{rate / conv[v.vec_env]:.3f} | {rate / first:.3f} | "
            f"{env:.0%} | {train:.0%} | {1 - env - train:.0%} |"
        )


if __name__ == "__main__":
    main()
