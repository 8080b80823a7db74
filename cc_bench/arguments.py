"""The argument parser every `cc-bench` command uses: bad input is one line and exit code 2.

Its own module, so that the commands (`cli`, `launch`, `report`) share it without importing
each other.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import NoReturn

from cc_bench.errors import UserError


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises UserError (one line, exit 2) instead of printing usage."""

    def error(self, message: str) -> NoReturn:
        raise UserError(message)


def int_at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer >= `low` (argparse turns its error into one line, exit 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} must be >= {low}")
        return value

    return parse
