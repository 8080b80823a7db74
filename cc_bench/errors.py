"""The one exception type for mistakes a user can fix."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user: the command line prints it as one line and exits with code 2."""


class RunBusyError(UserError):
    """The run's folder is locked: another process is running that run right now."""


class NonFiniteLossError(RuntimeError):
    """A logged loss became NaN or infinite: the run ends as failed at that step."""

    def __init__(self, name: str, value: float, step: int) -> None:
        super().__init__(f"{name} became {value} at step {step}")
        self.name = name
        self.value = value
        self.step = step
