"""The one exception type for mistakes a user can fix."""

from __future__ import annotations

import math


class UserError(Exception):
    """Bad input from the user: the command line prints it as one line and exits with code 2."""


class RunBusyError(UserError):
    """The run's folder is locked: another process is running that run right now."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill PID`, a service manager stopping the command): handled as Ctrl-C is, so a
    run closes resumable and a launch stops its runs; the command exits with 143 (128 + 15)."""


class NonFiniteLossError(RuntimeError):
    """A logged loss became NaN or infinite: the run ends as failed at that step."""

    def __init__(self, name: str, value: float, step: int) -> None:
        super().__init__(f"{name} became {value} at step {step}")
        self.name = name
        self.value = value
        self.step = step


def check_batch_loss(value: float, epoch: int, batch: int, n_batches: int) -> None:
    """Raise NonFiniteLossError if a training batch's loss is NaN or infinite, naming its
    epoch and batch (0-based here, counted from 1 in the message): called before the
    optimiser step, so no update, and no checkpoint, holds the weights it would spoil."""
    if not math.isfinite(value):
        raise NonFiniteLossError(
            f"train/loss (epoch {epoch + 1}, batch {batch + 1} of {n_batches})",
            value,
            epoch * n_batches + batch + 1,
        )
