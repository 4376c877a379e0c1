"""Command-line plumbing: a user's mistake is one line on stderr and exit status 2, not a traceback."""
from __future__ import annotations

import functools
import sys
from collections.abc import Callable

from vl.errors import VLError


def cli(fn: Callable[[list[str] | None], int | None]) -> Callable[[list[str] | None], int]:
    """Wrap a task's main(argv): VLError -> 'error: <message>' on stderr and return code 2."""

    @functools.wraps(fn)
    def main(argv: list[str] | None = None) -> int:
        try:
            return fn(argv) or 0
        except VLError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2

    return main
