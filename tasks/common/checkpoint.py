"""Training checkpoints: accelerate.save_state (safetensors weights, weights_only loads) written atomically."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import torch
from accelerate import Accelerator
from safetensors.torch import load_file, save_file

from vl.modeling import CheckpointError

_NAME = re.compile(r"step_(\d{7})")
STATE = "trainer_state.json"
EXTRA = "extra_state.safetensors"  # tensors a task keeps beside accelerate's state (an EMA, its own RNG)


def checkpoint_dir(output_dir: str | Path, step: int) -> Path:
    return Path(output_dir) / "checkpoints" / f"step_{step:07d}"


def save_checkpoint(
    accelerator: Accelerator,
    output_dir: str | Path,
    step: int,
    keep: int,
    extra: dict[str, torch.Tensor] | None = None,
    train_seconds: float = 0.0,
) -> Path:
    """Save model, optimizer, scheduler and RNG states (and `extra` tensors, as safetensors) under a
    temporary name, then rename: a checkpoint folder is either complete or absent, whenever the process dies.

    accelerate's register_for_checkpointing would pickle extra objects (and unpickle them on load),
    hence `extra`. `train_seconds`: the training time so far (evaluations and saves not counted), which
    a resumed run continues from."""
    final = checkpoint_dir(output_dir, step)
    tmp = final.with_name(final.name + ".tmp")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp), safe_serialization=True)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if extra:
            save_file({k: v.detach().contiguous().cpu() for k, v in extra.items()}, tmp / EXTRA)
        (tmp / STATE).write_text(json.dumps({"step": step, "train_seconds": round(train_seconds, 3)}))
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        for old in checkpoints(output_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints, oldest first (half-written *.tmp folders are ignored)."""
    root = Path(output_dir) / "checkpoints"
    found = [p for p in root.glob("step_*") if _NAME.fullmatch(p.name) and (p / STATE).is_file()] if root.is_dir() else []
    return sorted(found, key=lambda p: p.name)


def resolve(resume: str, output_dir: str | Path) -> Path:
    """`latest` -> the newest complete checkpoint of output_dir; otherwise a checkpoint folder path."""
    if resume == "latest":
        found = checkpoints(output_dir)
        if not found:
            raise CheckpointError(f"--resume latest: no checkpoint in {Path(output_dir) / 'checkpoints'}; drop --resume to start fresh")
        return found[-1]
    path = Path(resume)
    if not (path / STATE).is_file():
        raise CheckpointError(f"--resume {resume}: not a checkpoint folder (no {STATE}); use --resume latest or a checkpoints/step_* folder")
    return path


def load_checkpoint(accelerator: Accelerator, path: Path) -> int:
    """Restore everything save_checkpoint saved; return the step. A checkpoint of another model is a CheckpointError."""
    try:
        accelerator.load_state(str(path))
    except (RuntimeError, KeyError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path} does not fit this model: {_first_problem(err)}; was it saved from another config?") from None
    return int(json.loads((path / STATE).read_text())["step"])


def train_seconds(path: Path) -> float:
    """The training time a checkpoint recorded (0 for checkpoints written before it was recorded)."""
    return float(json.loads((path / STATE).read_text()).get("train_seconds", 0.0))


def load_extra(path: Path) -> dict[str, torch.Tensor]:
    """The `extra` tensors saved with a checkpoint ({} when it has none)."""
    return load_file(path / EXTRA) if (path / EXTRA).is_file() else {}


def _first_problem(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    detail = next((line for line in lines if line.startswith(("size mismatch", "Missing key", "Unexpected key"))), lines[-1] if lines else repr(err))
    return detail[:300]
