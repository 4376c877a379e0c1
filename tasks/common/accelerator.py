"""The Accelerator every training entry point starts from."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from accelerate.utils import DistributedType, ProjectConfiguration

from tasks.common.cli import cpu_cores
from tasks.common.trackers import trackers


def new_accelerator(output_dir: str | Path, mixed_precision: str, tracker_names: list[str], **kwargs: Any) -> Accelerator:
    """An Accelerator logging to <output_dir>/logs; CPU mode when there is no GPU (so torchrun's
    processes join over gloo); fresh process-wide state, so a run started in the same process (tests,
    the demo) does not inherit the previous run's precision or accumulation settings."""
    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()
    out = Path(output_dir)
    accelerator = Accelerator(
        cpu=not (torch.cuda.is_available() or torch.backends.mps.is_available()),
        mixed_precision=mixed_precision or None,
        log_with=trackers(tracker_names, out / "logs"),
        project_config=ProjectConfiguration(project_dir=str(out), logging_dir=str(out / "logs")),
        **kwargs,
    )
    cores = cpu_cores()
    if accelerator.device.type == "cpu" and torch.get_num_threads() * accelerator.num_processes < cores:
        # `accelerate launch` without --cpu gives a CPU-only machine's single process one thread
        accelerator.print(
            f"note: {accelerator.num_processes} process(es) x {torch.get_num_threads()} thread(s) on {cores} CPU cores; "
            f"to use them all, launch with --num_cpu_threads_per_process {max(cores // accelerator.num_processes, 1)} (or set OMP_NUM_THREADS)"
        )
    if os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true" and accelerator.distributed_type != DistributedType.FSDP:
        accelerator.print(f"note: accelerate shards with FSDP on GPUs only; this run is {accelerator.distributed_type.value} on {accelerator.device.type}")
    return accelerator
