"""Choosing among exact implementations of a layer by timing them once (autotuning).

The CoordConv layers (``cc_bench.layers``) can compute the same function in several ways
(split-and-add or concatenation, the bias gradient fused into the convolution's or summed,
in the input's memory layout or the other one). Which is fastest depends on the kernels
oneDNN, cuDNN or MKL pick for a shape, and those differ from one processor to the next. So,
as ``torch.backends.cudnn.benchmark`` does for cuDNN's algorithms, the layer times its
candidates on the first training step of each new configuration and keeps the fastest for
the rest of the process.

The choice is cached process-wide under a key the layer builds (shapes, geometry, device,
dtype, layout, which inputs need gradients, thread count). The candidates compute one
function to float tolerance but not bit for bit, so a timed choice can differ between two
runs of the same seed; ``set_autotune(False)`` (or ``CC_BENCH_COORDCONV_AUTOTUNE=0`` in the
environment) makes the layer use a fixed rule instead.
"""

from __future__ import annotations

import dataclasses
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence

__all__ = [
    "Choice",
    "autotune_choices",
    "autotune_enabled",
    "choose",
    "clear_autotune_cache",
    "load_autotune_choices",
    "set_autotune",
]

ENV_VAR = "CC_BENCH_COORDCONV_AUTOTUNE"

# After the first timed round only the candidates within this factor of the fastest (at
# most _KEEP of them) are timed again: one this much slower once is not the fastest, and
# dropping it keeps the measurement short.
_KEEP_WITHIN = 1.3
_KEEP = 3
# Rounds of visits (an untimed then a timed step of each candidate still in). The leaders
# are often within 10% of each other and the first rounds of a process run slower than
# its steady state: with 2 rounds `toy`'s first layer (two threads, Intel Xeon) kept the
# wrong one of its two concatenations in 7 of 10 trials, with 5 in none (docs/layers.md).
_ROUNDS = 5
_CACHE_SIZE = 1024


def _env_enabled() -> bool:
    value = os.environ.get(ENV_VAR, "1").strip().lower()
    return value not in ("0", "false", "no", "off")


@dataclasses.dataclass(frozen=True)
class Choice:
    """The outcome of one measurement: the strategy kept and every candidate's best time.

    Args:
        strategy: the name of the fastest candidate.
        times_ms: each candidate's best milliseconds for one step (those dropped after a
            round keep the times they had; inf where only one candidate was given).
        cost_ms: wall milliseconds the whole measurement took, warm-up included.
        clock: what was timed, e.g. "wall" or "CPU, 1 thread".
    """

    strategy: str
    times_ms: dict[str, float]
    cost_ms: float
    clock: str = "wall"


_enabled = _env_enabled()
_choices: OrderedDict[Hashable, Choice] = OrderedDict()
_lock = threading.Lock()


def set_autotune(enabled: bool) -> None:
    """Turn timing on (the default) or off; off, layers use their fixed rule (deterministic).

    The environment variable ``CC_BENCH_COORDCONV_AUTOTUNE=0`` sets the initial value.
    Choices already cached are kept but not used while off.
    """
    global _enabled
    _enabled = bool(enabled)


def autotune_enabled() -> bool:
    """Whether layers time their strategies (see ``set_autotune``)."""
    return _enabled


def clear_autotune_cache() -> None:
    """Forget every cached choice; the next training step of each configuration re-times."""
    with _lock:
        _choices.clear()


def autotune_choices() -> dict[Hashable, Choice]:
    """A copy of the cache: key -> Choice, oldest first."""
    with _lock:
        return dict(_choices)


def load_autotune_choices(choices: Mapping[Hashable, Choice]) -> None:
    """Put earlier choices (``autotune_choices()`` of another process) in the cache.

    A resumed run loads those its checkpoint saved, so it computes with the strategies the
    interrupted attempt timed, and ends as an uninterrupted run would, bit for bit.
    """
    with _lock:
        _choices.update(choices)
        while len(_choices) > _CACHE_SIZE:
            _choices.popitem(last=False)


def cached_choice(key: Hashable) -> Choice | None:
    """The cached choice for ``key``, or None."""
    with _lock:
        choice = _choices.get(key)
        if choice is not None:
            _choices.move_to_end(key)
        return choice


def choose(
    key: Hashable,
    candidates: Sequence[str],
    step: Callable[[str], None],
    sync: Callable[[], None] = lambda: None,
    clock: Callable[[], float] = time.perf_counter,
    clock_name: str = "wall",
) -> str:
    """The fastest of ``candidates`` for ``key``: cached, or timed now and cached.

    Args:
        key: what the choice depends on; equal keys share one choice process-wide.
        candidates: strategy names, the preferred one first (it wins ties).
        step: runs one forward and backward pass of the named strategy.
        sync: waits for the device to finish queued work (CUDA); a no-op on the CPU.
        clock: seconds; wall time by default (``time.thread_time`` suits one CPU thread:
            it does not count the time other processes hold the core).
        clock_name: how ``Choice.clock`` names it.
    """
    if (choice := cached_choice(key)) is not None:
        return choice.strategy
    choice = dataclasses.replace(measure(candidates, step, sync, clock), clock=clock_name)
    with _lock:
        _choices[key] = choice
        while len(_choices) > _CACHE_SIZE:
            _choices.popitem(last=False)
    return choice.strategy


def measure(
    candidates: Sequence[str],
    step: Callable[[str], None],
    sync: Callable[[], None] = lambda: None,
    clock: Callable[[], float] = time.perf_counter,
) -> Choice:
    """Time ``candidates`` interleaved, up to ``_ROUNDS`` rounds; the best time each.

    One untimed step of every candidate first: one-time costs (kernel creation, cached
    grids and patches, the heap growing to its buffers: the first candidates timed
    without it ran up to twice as slow). Then each visit to a candidate runs it twice and
    times the second step: the first absorbs the cost of switching from another
    candidate's memory layout and buffers. After a round only the candidates within
    ``_KEEP_WITHIN`` of the fastest (at most ``_KEEP``) go on. Each keeps its best
    (minimum) time, the figure least affected by other processes on a shared machine; the
    order rotates between rounds. At most ``3 * len(candidates) + 2 * _KEEP * (_ROUNDS -
    1)`` steps.
    """
    if not candidates:
        raise ValueError("choose needs at least one candidate")
    start = time.perf_counter()
    best = {c: math.inf for c in candidates}
    if len(candidates) > 1:
        for c in candidates:  # first steps: kernel creation, the heap growing to each one's needs
            step(c)
        alive = list(candidates)
        for r in range(_ROUNDS):
            shift = r % len(alive)
            for c in alive[shift:] + alive[:shift]:
                step(c)
                sync()
                t0 = clock()
                step(c)
                sync()
                best[c] = min(best[c], (clock() - t0) * 1e3)
            fastest = min(best[c] for c in alive)
            alive = sorted((c for c in alive if best[c] <= fastest * _KEEP_WITHIN), key=best.get)
            alive = alive[:_KEEP]
            if len(alive) == 1:
                break
    fastest = min(best.values())
    # Ties (to the microsecond) go to the earlier candidate, the layer's preferred one.
    winner = next(c for c in candidates if best[c] <= fastest + 1e-3)
    cost = (time.perf_counter() - start) * 1e3
    return Choice(winner, best, cost)
