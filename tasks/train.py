"""Train a model from an experiment config.

    accelerate launch -m tasks.train --config configs/shapes/caption.yaml [train.steps=500 ...] [--resume latest]
    torchrun --nproc_per_node 2 -m tasks.train --config ...      # several processes on CPU (gloo)

Writes <output_dir>/config.yaml (resolved), checkpoints/step_*/ (accelerate state), logs/, and the
final model/ (save_pretrained: weights, processor, train_config.yaml).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

from accelerate.utils import GradientAccumulationPlugin, set_seed

from tasks.common.accelerator import new_accelerator
from tasks.common.cli import cli, training_args
from tasks.common.loop import fit
from tasks.common.multitask import MultiTask
from vl.config import load_config, save_config, to_dict
from vl.experiment import ExperimentConfig


@cli
def main(argv: list[str] | None = None) -> int:
    args = training_args(argv, "tasks.train", __doc__, "configs/shapes/caption.yaml")
    cfg = load_config(ExperimentConfig, args.config, args.overrides)
    return run(cfg, args, "tasks.train", MultiTask)


def run(cfg: ExperimentConfig, args: argparse.Namespace, module: str, make_task: Callable[..., MultiTask], *launch: str) -> int:
    """Train `make_task(cfg, accelerator, command=...)` (a MultiTask) as `module` was asked to, with
    `launch`, the module's own arguments, in the command the model card records; print a summary line."""
    out = Path(cfg.train.output_dir)
    accelerator = new_accelerator(
        out,
        cfg.train.mixed_precision,
        cfg.train.trackers,
        gradient_accumulation_plugin=GradientAccumulationPlugin(num_steps=cfg.train.grad_accum, sync_with_dataloader=False),
        step_scheduler_with_optimizer=False,  # the loop steps the schedule once per optimizer step
    )
    set_seed(cfg.train.seed)
    if accelerator.is_main_process:
        save_config(cfg, out / "config.yaml")
    command = shlex.join(["accelerate", "launch", "-m", module, *launch, "--config", str(args.config), *args.overrides])
    task = make_task(cfg, accelerator, command=command)
    accelerator.init_trackers("vl", config=_flat(to_dict(cfg)))
    n_params = sum(p.numel() for p in task.model.parameters())
    accelerator.print(
        f"{task.name}: {n_params / 1e6:.2f}M parameters; world size {accelerator.num_processes}, "
        f"device {accelerator.device}, mixed precision {accelerator.mixed_precision}\n{task.describe()}"
    )
    start = time.perf_counter()
    result = fit(task, cfg, accelerator, args.resume)
    if skipped := task.skipped_images:
        accelerator.print(f"skipped {len(skipped)} unreadable images; first: {skipped[0]}")
    headline = [f"val/{name}/{metric}" for name, part in task.parts.items() for metric in part.headline]
    evals = ", ".join(f"{k.removeprefix('val/').replace('/', ' ')} {result[k]:.3f}" for k in headline if k in result)
    accelerator.print(
        f"done: {cfg.train.steps} steps in {_duration(time.perf_counter() - start)} "
        f"({result.get('train/samples_per_s', 0):.0f} samples/s), loss {result.get('train/loss', float('nan')):.3f}"
        f"{', ' + evals if evals else ''}; model saved to {out / 'model'}"
    )
    return 0


def _flat(d: dict, prefix: str = "") -> dict:
    """Nested config -> flat {a/b: scalar} for trackers' hyperparameter tables."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}/"))
        else:
            out[f"{prefix}{k}"] = v if isinstance(v, (int, float, str, bool)) or v is None else str(v)
    return out


def _duration(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s" if m else f"{seconds:.1f}s"


if __name__ == "__main__":
    sys.exit(main())
