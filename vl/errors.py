"""The suite's error types: each message is one line that says what is wrong and how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class VLError(Exception):
    """Base class for errors a user can fix (bad config, bad data file, bad argument)."""


class ConfigError(VLError, ValueError):
    """A config key or value is wrong."""


class DataFormatError(VLError, ValueError):
    """A data file does not follow its format (COCO, Karpathy, VQA v2) or an image is missing."""


def did_you_mean(name: str, choices: Iterable[str], prefix: str = "") -> str:
    """Return '; did you mean 'x'?' for the nearest choice, else '; valid: a, b, c' (each shown after `prefix`)."""
    choices = sorted(str(c) for c in choices)
    close = difflib.get_close_matches(str(name), choices, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{prefix}{close[0]}'?"
    return "; valid: " + ", ".join(prefix + c for c in choices) if choices else ""


class InputError(VLError, ValueError):
    """An input given at inference (an image, a question, a URL) cannot be used as it is."""
