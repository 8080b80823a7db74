"""What a benchmark's training loop needs from torch: device, seeding, RNG state, conv class."""

from __future__ import annotations

import contextlib
import random
from typing import Any

import numpy as np
import torch
from torch import nn

from cc_bench.config import BenchConfig
from cc_bench.errors import UserError


def resolve_device(name: str) -> torch.device:
    """`auto` is CUDA when present, else CPU; asking for an absent CUDA is a UserError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device={name!r} asked for, but CUDA is not available here")
    if device.type == "cuda" and device.index is not None:
        count = torch.cuda.device_count()
        if device.index >= count:
            raise UserError(
                f"device={name!r} asked for, but this machine has {count} CUDA "
                f"device{'s' if count != 1 else ''} (cuda:0 to cuda:{count - 1})"
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"device={name!r} asked for, but MPS is not available here")
    return device


def warm_up_vector_math() -> None:
    """One small `torch.tanh` on one thread before a run computes anything, so that its first
    parallel vector-math call (MKL's, on the CPU) computes as every later one does.

    Without it, on an Intel Xeon (family 6 model 167) with torch 2.14.1, 5 of 80 fresh
    processes computed their first `torch.tanh` of the same (16, 3, 64, 64) input differently
    in the last bits (never a later call), and a GAN grew that into a 0.5% different
    `interp_mean_step`: two runs of one seed, or a resumed run and its uninterrupted twin,
    disagreed (tests/test_image_folder.py failed 2 times in 33, once in CI). With this call
    first (or a first `torch.exp`, or a large one) none of 220 processes differed.
    `MKL_CBWR=COMPATIBLE` ends it too, but turns off MKL's fast paths for every product.
    """
    torch.tanh(torch.zeros(64))


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """The state of every random generator, for a checkpoint."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Put back what `rng_state` saved, so a resumed run draws the same numbers."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def conv_layer(cfg: BenchConfig) -> Any:
    """The 2-D conv class a config asks for: `nn.Conv2d`, or `CoordConv2d` (with r if asked)."""
    if cfg.conv == "conv":
        return nn.Conv2d
    from functools import partial

    from cc_bench.layers import CoordConv2d

    return partial(CoordConv2d, with_r=cfg.with_r) if cfg.with_r else CoordConv2d


def preload_lazy_imports() -> None:
    """Import what torch imports lazily on first use, so a run's clock does not count it.

    The first ``torch.optim`` optimizer imports ``torch._dynamo`` (about 2 s here): a cost
    of Python's start-up, paid once per process, not of the benchmark.
    """
    with contextlib.suppress(ImportError):  # a torch build without it: nothing to preload
        import torch._dynamo  # noqa: F401
