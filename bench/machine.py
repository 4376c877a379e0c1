"""What machine a benchmark ran on, in words (platform.processor() is empty on most Linux machines)."""

from __future__ import annotations

import platform
from pathlib import Path

import torch


def cpu_name() -> str:
    """The CPU's model name and the matrix features that decide bf16 speed, e.g. 'AMD EPYC (avx512_bf16, no AMX)'."""
    info = Path("/proc/cpuinfo")
    if not info.is_file():
        return platform.processor() or platform.machine()
    text = info.read_text()
    name = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), platform.machine())
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))
    features = [f for f in ("avx512_bf16",) if f in flags] + (["AMX"] if "amx_bf16" in flags else ["no AMX"])
    return f"{name} ({', '.join(features)})"


def machine() -> str:
    """The CPU and the threads torch uses."""
    return f"{cpu_name()}, {torch.get_num_threads()} threads"
