"""Command-line plumbing: a user's mistake is one line on stderr and exit status 2, not a traceback."""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vl.errors import InputError, VLError

DEFAULT_MODEL = "demo/run/model"  # what `make demo` trains


def default_model() -> str:
    """--model's default for commands that run a trained model: $VL_MODEL, else demo/run/model."""
    return os.environ.get("VL_MODEL", DEFAULT_MODEL)


def cpu_cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS says, else the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def require_model_folder(model: str | Path) -> None:
    """A missing model folder is an InputError that names the fix."""
    if not Path(model).is_dir():
        raise InputError(f"model folder not found: {model}; pass --model DIR (a folder written by training; `make demo` writes {DEFAULT_MODEL})")


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


def training_args(
    argv: list[str] | None, prog: str, doc: str, example: str, extra: Callable[[argparse.ArgumentParser], Any] | None = None
) -> argparse.Namespace:
    """--config FILE [--resume latest|DIR] [key=value ...]: what every training entry point takes
    (`extra` adds an entry point's own arguments)."""
    p = argparse.ArgumentParser(prog=prog, description=doc.split("\n")[0])
    if extra:
        extra(p)
    p.add_argument("--config", type=Path, required=True, help=f"experiment YAML (e.g. {example})")
    p.add_argument("--resume", default=None, help="'latest' or a checkpoints/step_* folder")
    p.add_argument("overrides", nargs="*", help="config overrides, key=value (train.steps=500)")
    return p.parse_args(argv)
