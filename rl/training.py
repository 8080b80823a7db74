"""What A2C and DQN runs share: the Tracker callback, checkpoints, resume, evaluation, summary.

SB3 trains; an SB3 callback logs through the Tracker against env frames (`step`, 4 per agent
step): `charts/episodic_return` and `charts/episodic_length` (frames) of every finished
game, from the Monitor (whole games, unclipped scores), and every `log_every` frames the
losses the SB3 logger holds (`losses/*`), `charts/*` (learning rate, exploration) and
`perf/steps_per_s` (frames per second of training). After every update it checks the
logger's losses and the trained network's weights, and before every checkpoint the
network's outputs: a NaN or infinite one raises the core's `NonFiniteLossError` at that
frame count (the run ends as failed, its step in summary.json), before the agent acts with
the weights or a checkpoint saves them; so does a rollout that fails on overflowing outputs.

Checkpoints (every 60 s, or ten times as long as the last one took to save, whichever is
longer, but never more than `MAX_CHECKPOINT_GAP_S` after the last one ended; or every
`checkpoint_every` frames) are taken between two updates: the
agent as SB3's own zip (`model.save`), DQN's replay buffer (SB3's pickle), the games
finished so far and the frame count. The checkpoint written when training ends leaves the
replay buffer out: nothing trains after it. A resumed run loads them, restarts its
environments (the games in progress when it was killed are lost) and trains on to the same
total: the curve goes on from the checkpoint's step.

Every attempt seeds its environments and generators from the run's seed and the frame count
it starts at (`env_seed`), after SB3 has built or loaded the agent: SB3 seeds the VecEnv with
the agent's `seed` (`seed + i`), which would give seeds 0 and 1 fifteen of sixteen
environment seeds in common and replay the first attempt's games in every resumed one.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from cc_bench.envs.atari import FRAME_SKIP, make_atari, network_cpus, resolve_vec_env
from cc_bench.errors import NonFiniteLossError, UserError
from cc_bench.rl.configs import AtariConfig
from cc_bench.rl.extractor import coordconv_policy_kwargs
from cc_bench.runtime import resolve_device, seed_everything
from cc_bench.tracking import Tracker
from cc_bench.words import count

# The longest a slow checkpoint (DQN's replay buffer) may put off the next one, in seconds.
MAX_CHECKPOINT_GAP_S = 300.0


def checkpoint_wait_s(last_save_s: float) -> float:
    """Seconds after a checkpoint that took `last_save_s` to save before the next may start.

    Ten times its duration, so that saving costs about a tenth of the run (DQN's replay
    buffer: 5.6 GB at the zoo's size), but never more than `MAX_CHECKPOINT_GAP_S`, so that a
    kill loses at most that and a save (a 60 s save then costs about a sixth of the run).
    """
    return min(10 * last_save_s, MAX_CHECKPOINT_GAP_S)


def env_seed(seed: int, frames: int) -> int:
    """The first environment seed of an attempt: distinct per run seed and resume step."""
    return int(np.random.SeedSequence([seed, frames]).generate_state(1)[0])


def seed_attempt(model: BaseAlgorithm, seed: int, frames: int) -> int:
    """Seed an attempt's environments (`s + i`), generators and action space; returns `s`.

    `s = env_seed(seed, frames)`. Called after SB3 builds or loads the agent, since both
    reseed the VecEnv with the agent's own `seed`; the environments take it at their next
    reset, the one `learn` starts with.
    """
    first = env_seed(seed, frames)
    model.set_random_seed(first)
    return first


def extractor_kwargs(cfg: AtariConfig) -> dict[str, Any]:
    """`policy_kwargs` entries for the config's conv: SB3's NatureCNN or CoordConvNatureCNN."""
    if cfg.conv == "conv":
        return {}  # CnnPolicy's default extractor is NatureCNN, with no hidden layers after it
    return coordconv_policy_kwargs(where=cfg.where, with_r=cfg.with_r)  # and net_arch=[]


@dataclass
class Progress:
    """What a run has done so far; it goes into every checkpoint."""

    returns: list[float] = field(default_factory=list)
    """Scores of the finished training games, in order."""
    lengths: list[int] = field(default_factory=list)
    """Their lengths in frames."""
    ends: list[int] = field(default_factory=list)
    """The run's frame count (`step`) when each ended."""
    train_s: float = 0.0
    """Wall seconds of training up to the last checkpoint (all attempts): with the frames
    done by then, the run's `steps_per_s` however often it was resumed."""


class TrackerCallback(BaseCallback):
    """Logs SB3 training through the Tracker, shows progress and checkpoints between updates."""

    def __init__(
        self,
        cfg: AtariConfig,
        tracker: Tracker,
        progress: Progress,
        checkpoint: Callable[[], None],
        total_frames: int,
    ) -> None:
        super().__init__(verbose=0)
        self.cfg = cfg
        self.tracker = tracker
        self.progress = progress
        self.checkpoint = checkpoint
        self.total_frames = total_frames
        self.bar: Any = None

    @property
    def frames(self) -> int:
        return int(self.model.num_timesteps) * FRAME_SKIP

    def _on_training_start(self) -> None:
        self.start_frames = self.last_log = self.last_checkpoint = self.frames
        self.start_time = self.checkpoint_end = self.banked = time.perf_counter()
        self.checkpoint_s = 0.0
        desc = f"{self.cfg.env_id.split('/')[-1]} {self.cfg.conv} frames"
        self.bar = self.tracker.progress(self.total_frames, desc=desc, initial=self.frames)

    def _on_step(self) -> bool:
        step = self.frames
        for info in self.locals["infos"]:
            episode = info.get("episode")  # set by the Monitor at the end of a whole game
            if episode is None:
                continue
            score, length = float(episode["r"]), int(episode["l"])
            self.progress.returns.append(score)
            self.progress.lengths.append(length)
            self.progress.ends.append(step)
            self.tracker.log(
                {"charts/episodic_return": score, "charts/episodic_length": length}, step=step
            )
            self.bar.set_postfix({"return": f"{score:.0f}"})
        self.bar.update(step - self.bar.n)
        return True

    def _on_rollout_start(self) -> None:
        # Between two updates: the last update's losses are in the logger, and the agent's
        # parameters match its step count, so this is where to log and to checkpoint.
        step = self.frames
        if step == self.start_frames:
            return
        self.check_finite(step)
        if step - self.last_log >= self.cfg.log_every:
            self.log_training(step)
        every = self.cfg.checkpoint_every
        slow = time.perf_counter() - self.checkpoint_end < checkpoint_wait_s(self.checkpoint_s)
        if (self.tracker.checkpoint_due() and not slow) or (
            every and step - self.last_checkpoint >= every
        ):
            check_outputs(self.model, step)  # finite weights may still overflow: not saved
            start = time.perf_counter()
            self.bank_time()
            self.checkpoint()
            self.checkpoint_end = time.perf_counter()
            self.checkpoint_s = self.checkpoint_end - start
            self.last_checkpoint = step

    def _on_training_end(self) -> None:
        if self.frames > self.start_frames:  # before the final checkpoint saves the weights
            self.check_finite(self.frames)
            check_outputs(self.model, self.frames)
        if self.frames > self.last_log:
            self.log_training(self.frames)
        self.bank_time()
        self.bar.close()

    def check_finite(self, step: int) -> None:
        """Raise NonFiniteLossError if the last update left a NaN or infinite loss or weight.

        Called after every update, before the agent acts with its new weights (A2C's
        `Categorical` would raise a ValueError on NaN logits first) and before a checkpoint
        could save them; the Tracker alone would see a NaN loss only every `log_every` frames.
        (Weights can also be finite but so large that the forward pass overflows:
        `check_outputs` runs before each checkpoint and when SB3's rollout fails.)
        """
        for key, value in self.model.logger.name_to_value.items():
            if key.startswith("train/") and "loss" in key and not math.isfinite(value):
                self.log_training(step)  # the line goes to metrics.jsonl; the Tracker raises
                raise NonFiniteLossError(f"losses/{key.split('/')[-1]}", float(value), step)
        bad = first_non_finite(trained_net(self.model))
        if bad is not None:
            raise NonFiniteLossError(f"weight {bad[0]}", bad[1], step)

    def bank_time(self) -> None:
        """Add the training time since the last call to `progress.train_s` (before a
        checkpoint saves it: a resumed run then divides its frames by all of its time)."""
        now = time.perf_counter()
        self.progress.train_s += now - self.banked
        self.banked = now

    def log_training(self, step: int) -> None:
        """losses/* and charts/* from SB3's logger, and perf/steps_per_s, at `step` frames."""
        metrics: dict[str, float] = {}
        for key, value in self.model.logger.name_to_value.items():
            name = key.split("/")[-1]
            if key.startswith("train/") and name != "n_updates":
                prefix = "charts" if name == "learning_rate" else "losses"
                metrics[f"{prefix}/{name}"] = float(value)
        if isinstance(self.model, OffPolicyAlgorithm):
            metrics["charts/exploration_rate"] = float(self.model.exploration_rate)
        elapsed = time.perf_counter() - self.start_time
        metrics["perf/steps_per_s"] = (step - self.start_frames) / max(elapsed, 1e-9)
        self.tracker.log(metrics, step=step)
        self.last_log = step


def save_agent(model: BaseAlgorithm, buffer_dir: Path | None = None) -> dict[str, Any]:
    """The agent as SB3's zip and, with `buffer_dir`, an off-policy agent's replay buffer in
    a file of its own there, `replay_buffer-<agent steps>.pkl` (SB3's pickle, streamed to
    disk: a buffer of gigabytes is never copied in memory, where inside the checkpoint it
    would be, several times over); the state names the file."""
    state: dict[str, Any] = {}
    with io.BytesIO() as buf:
        model.save(buf)
        state["model_zip"] = buf.getvalue()
    if buffer_dir is not None and isinstance(model, OffPolicyAlgorithm):
        name = f"replay_buffer-{model.num_timesteps}.pkl"
        tmp = buffer_dir / f".{name}.tmp"
        with tmp.open("wb") as f:  # what SB3's save_replay_buffer writes, written atomically
            pickle.dump(model.replay_buffer, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, buffer_dir / name)
        state["replay_buffer_file"] = name
    return state


def drop_replay_buffers(buffer_dir: Path, keep: str | None = None) -> None:
    """Remove the replay-buffer files (and unfinished ones) but `keep`, the file the last
    checkpoint names: called once that checkpoint is saved, so a kill at any moment leaves
    the buffer the checkpoint on disk needs."""
    for path in [*buffer_dir.glob("replay_buffer-*.pkl"), *buffer_dir.glob(".replay_buffer-*")]:
        if path.name != keep:
            path.unlink(missing_ok=True)


def load_agent(
    algo: type[BaseAlgorithm],
    state: dict[str, Any],
    env: Any,
    device: Any,
    buffer_dir: Path | None = None,
) -> Any:
    """The agent `save_agent` saved (its replay buffer from `buffer_dir`), on fresh
    environments that the next `learn` resets."""
    model = algo.load(io.BytesIO(state["model_zip"]), env=env, device=device)
    if name := state.get("replay_buffer_file"):
        path = Path(buffer_dir or ".") / name
        if not path.exists():
            raise UserError(
                f"the checkpoint's replay buffer {path} is missing; --fresh starts the run over"
            )
        model.load_replay_buffer(path)
        end_last_transition(model.replay_buffer)
    elif "replay_buffer" in state:  # a checkpoint from before 2026-12-03: inside the state
        model.load_replay_buffer(io.BytesIO(state["replay_buffer"]))
        end_last_transition(model.replay_buffer)
    model._last_obs = None  # the checkpoint's observations belong to the killed run's games
    return model


def quiet_logger(model: BaseAlgorithm) -> BaseAlgorithm:
    """Give `model` an SB3 logger without outputs: the callback reads its values and logs them
    through the Tracker, where SB3's default one would make an empty `SB3-<date>` folder in
    the temporary directory at every `learn`."""
    from stable_baselines3.common.logger import Logger

    model.set_logger(Logger(folder=None, output_formats=[]))
    return model


def end_last_transition(buffer: Any) -> None:
    """Mark a loaded replay buffer's last transition as the end of its game (no bootstrap).

    With `optimize_memory_usage` a transition's next observation is the next slot's
    observation, and the first transition of a resumed attempt writes its new game's first
    frame there: the last transition stored before the kill would otherwise bootstrap from
    another game. Its game is cut there, so it is stored as ended, as a time limit would be
    without `handle_timeout_termination` (which SB3 does not allow with that option).
    """
    if not getattr(buffer, "optimize_memory_usage", False) or (buffer.pos == 0 and not buffer.full):
        return
    buffer.dones[(buffer.pos - 1) % buffer.buffer_size] = 1.0  # (n_envs,)


def trained_net(model: BaseAlgorithm) -> torch.nn.Module:
    """The network the optimiser updates: the actor-critic, or DQN's Q-network (its target
    is a copy of it)."""
    return getattr(model.policy, "q_net", model.policy)


def count_params(model: BaseAlgorithm) -> int:
    """Trained parameters: the actor-critic, or DQN's Q-network (not its target copy)."""
    return sum(p.numel() for p in trained_net(model).parameters())


@torch.no_grad()
def first_non_finite(net: torch.nn.Module) -> tuple[str, float] | None:
    """The first parameter of `net` with a NaN or infinite entry, and that entry; or None."""
    params = list(net.named_parameters())
    # One sum per tensor, one sync: ~40x faster than `isfinite` on the CPU (0.2 against 8 ms
    # for NatureCNN). A NaN or infinite entry makes its sum non-finite; a finite tensor's sum
    # can overflow, so a non-finite sum is checked entry by entry.
    if torch.isfinite(torch.stack([p.sum() for _, p in params])).all():
        return None
    for name, p in params:
        bad = ~torch.isfinite(p)
        if bad.any():
            return name, float(p[bad][0])
    return None


@torch.no_grad()
def first_non_finite_output(model: BaseAlgorithm) -> tuple[str, float] | None:
    """The first module of the trained network whose output on the agent's last
    observations has a NaN or infinite entry, and that entry; or None.

    It computes the actor's action distribution (the Q-values for DQN) without sampling
    from it: a check must not move the generators the run trains with.
    """
    if model._last_obs is None:
        return None
    net = trained_net(model)
    forward = getattr(net, "get_distribution", net)  # the actor-critic's, or the Q-network
    found: list[tuple[str, float]] = []

    def hook(name: str) -> Callable[..., None]:
        def check(module: torch.nn.Module, args: Any, out: Any) -> None:
            if not found and isinstance(out, torch.Tensor) and not torch.isfinite(out).all():
                found.append((name, float(out[~torch.isfinite(out)][0])))

        return check

    # Hooks run as each module finishes, inner ones first: the first hit is where it began.
    handles = [m.register_forward_hook(hook(n)) for n, m in net.named_modules() if n]
    try:
        forward(model.policy.obs_to_tensor(model._last_obs)[0])  # (n_envs, C, H, W)
    except ValueError:
        pass  # the same distribution error, after the hooks have seen the outputs
    finally:
        for handle in handles:
            handle.remove()
    return found[0] if found else None


def check_outputs(model: BaseAlgorithm, step: int) -> None:
    """Raise NonFiniteLossError if the network's output on the last observations is NaN or
    infinite (`first_non_finite_output`), at `step` frames."""
    bad = first_non_finite_output(model)
    if bad is not None:
        raise NonFiniteLossError(f"output of {bad[0]}", bad[1], step)


def train_agent(
    cfg: AtariConfig,
    tracker: Tracker,
    algo: type[BaseAlgorithm],
    build: Callable[[Any, torch.device], BaseAlgorithm],
    name: str,
) -> dict[str, Any]:
    """Train (or resume) an SB3 agent on `cfg.env_id`, evaluate it, save pictures; the summary.

    Args:
        algo: the SB3 class, to load a checkpoint with.
        build: `build(env, device)` -> a new agent (the first attempt).
        name: the benchmark's name, for the logs.
    """
    device = resolve_device(cfg.device)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    seed_everything(cfg.seed)
    total_agent_steps = math.ceil(cfg.total_steps / FRAME_SKIP)
    state = tracker.resume_state
    frames = tracker.resume_step or 0
    vec_env = resolve_vec_env(cfg.vec_env, cfg.n_envs, network_cpus=network_cpus(device))
    tracker.record_machine(vec_env=vec_env)  # an `auto` resolved here, not in the run id
    print(
        f"{name}: {cfg.env_id}, {cfg.total_steps:,} env frames: {total_agent_steps:,} agent "
        f"steps of {FRAME_SKIP} frames (frame skip), rounded up; `step` in the logs counts "
        "frames; "
        f"{count(cfg.n_envs, 'game')} at once ({vec_env})",
        file=sys.stderr,
    )
    env = make_atari(cfg.env_id, cfg.n_envs, env_seed(cfg.seed, frames), vec_env=vec_env)
    try:
        model, progress = start_agent(cfg, algo, build, env, device, state, frames, tracker.run_dir)

        def checkpoint(final: bool = False) -> None:
            # The last one needs no replay buffer: nothing trains after it (5.6 GB at the
            # zoo's size would stay in every finished DQN run's folder).
            agent = save_agent(model, None if final else tracker.run_dir)
            tracker.save_checkpoint(
                {**agent, "progress": vars(progress)}, step=int(model.num_timesteps) * FRAME_SKIP
            )
            drop_replay_buffers(tracker.run_dir, keep=agent.get("replay_buffer_file"))

        remaining = total_agent_steps - int(model.num_timesteps)
        if remaining > 0:
            callback = TrackerCallback(cfg, tracker, progress, checkpoint, cfg.total_steps)
            try:
                model.learn(
                    remaining,
                    callback=callback,
                    log_interval=None,  # SB3 prints nothing; the callback logs
                    reset_num_timesteps=False,
                )
            except ValueError:
                # Weights finite but so large that the forward pass overflows: A2C's
                # Categorical rejects the NaN logits inside SB3's rollout, before any
                # callback sees them. Then the run failed at this step; else re-raise.
                check_outputs(model, int(model.num_timesteps) * FRAME_SKIP)
                raise
            checkpoint(final=True)  # a run killed while it evaluates resumes here
    finally:
        env.close()
    frames = int(model.num_timesteps) * FRAME_SKIP

    scores, gif = evaluate(model, cfg)
    _pictures(cfg, tracker, progress, gif, frames, name)
    returns = progress.returns
    # No training game finished: no training score (NaN, null in summary.json), not the
    # evaluation's, which measures something else.
    return {
        "final_return": float(np.mean(returns[-100:])) if returns else math.nan,
        "auc_return": float(np.mean(returns)) if returns else math.nan,
        "eval_return_mean": float(np.mean(scores)),
        "eval_return_std": float(np.std(scores)),
        "eval_episodes": len(scores),
        "train_episodes": len(returns),
        "frames": frames,
        "steps_per_s": frames / max(progress.train_s, 1e-9),
        "params": count_params(model),
        "wall_s": round(tracker.elapsed_s, 3),
    }


def start_agent(
    cfg: AtariConfig,
    algo: type[BaseAlgorithm],
    build: Callable[[Any, torch.device], BaseAlgorithm],
    env: Any,
    device: torch.device,
    state: dict[str, Any] | None,
    frames: int,
    run_dir: Path,
) -> tuple[BaseAlgorithm, Progress]:
    """A new agent (`state` None) or the checkpoint's (its replay buffer in `run_dir`), on
    `env` seeded for this attempt."""
    if state is None:
        model, progress = build(env, device), Progress()
    else:
        model = load_agent(algo, state, env, device, run_dir)
        progress = Progress(**state["progress"])
        # Buffers a kill left beside the checkpoint (one written after it; or, once training
        # has ended, the one the final checkpoint no longer names).
        drop_replay_buffers(run_dir, keep=state.get("replay_buffer_file"))
    quiet_logger(model)
    seed_attempt(model, cfg.seed, frames)
    return model, progress


@torch.no_grad()
def evaluate(model: BaseAlgorithm, cfg: AtariConfig) -> tuple[list[float], list[np.ndarray]]:
    """Play `cfg.eval_episodes` whole games; their scores and the first game's RGB frames.

    Game i runs on a fresh environment seeded `eval_seed + i` with the training wrappers
    (a life loss ends the agent's episode, the game goes on) but unclipped rewards, summed
    over the whole game; the agent samples its actions (DQN: epsilon-greedy at its final
    epsilon) with the generators seeded from `eval_seed`.
    """
    seed_everything(cfg.eval_seed)
    # DQN's epsilon-greedy draws its random actions from the agent's action space, which has
    # a generator of its own.
    model.action_space.seed(cfg.eval_seed)
    scores: list[float] = []
    frames: list[np.ndarray] = []
    for i in range(cfg.eval_episodes):
        env = make_atari(cfg.env_id, 1, cfg.eval_seed + i, clip_reward=False, render=i == 0)
        try:
            obs, score, steps = env.reset(), 0.0, 0
            while True:
                action, _ = model.predict(obs, deterministic=False)
                obs, reward, _, infos = env.step(action)
                score += float(reward[0])
                steps += 1
                if i == 0 and steps <= cfg.gif_steps and steps % 2 == 1:
                    frames.append(env.get_images()[0])  # (210, 160, 3) uint8
                if "episode" in infos[0]:  # the Monitor's end of the whole game
                    score = float(infos[0]["episode"]["r"])
                    break
                if cfg.eval_max_steps and steps >= cfg.eval_max_steps:
                    break
        finally:
            env.close()
        scores.append(score)
    return scores, frames


def _pictures(
    cfg: AtariConfig,
    tracker: Tracker,
    progress: Progress,
    gif: list[np.ndarray],
    step: int,
    name: str,
) -> None:
    """The learning curve and evaluation frames as PNGs, the first evaluation game as a GIF."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    title = f"{name} {cfg.env_id} {cfg.conv} seed {cfg.seed}"
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if progress.returns:
        x = np.asarray(progress.ends)
        ax.plot(x, progress.returns, ".", alpha=0.3, label="game")
        k = min(100, len(progress.returns))
        smooth = np.convolve(progress.returns, np.ones(k) / k, mode="valid")
        ax.plot(x[k - 1 :], smooth, label=f"mean of last {k}")
        ax.legend(loc="upper left")
    else:
        ax.text(0.5, 0.5, "no training game finished", ha="center", transform=ax.transAxes)
    ax.set(xlabel="env frames", ylabel="game score", title=title)
    tracker.log_image("charts/learning_curve", fig, step=step)
    plt.close(fig)
    if not gif:
        return
    shown = [gif[int(j)] for j in np.linspace(0, len(gif) - 1, min(4, len(gif)))]
    tracker.log_image("eval/frames", np.concatenate(shown, axis=1), step=step)
    path = tracker.media_dir / f"eval_game_{step}.gif"
    _write_gif(path, gif)
    tracker.log_animation("eval/game", path, step=step)


def _write_gif(path: Path, frames: list[np.ndarray], fps: int = 15) -> None:
    from PIL import Image

    path.parent.mkdir(exist_ok=True)
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
