"""The argument parser every `cc-bench` command uses: bad input is one line and exit code 2.

Its own module, so that the commands (`cli`, `launch`, `report`) share it without importing
each other.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from cc_bench.errors import UserError


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises UserError (one line, exit 2) instead of printing usage."""

    def error(self, message: str) -> NoReturn:
        raise UserError(message)
