"""How long a training run waits for its data: start-up (tasks, tokenizer, model) and seconds per batch
of the training loader alone, no model step.

    python bench/loader_speed.py                                   # the demo's shared-images loader
    python bench/loader_speed.py --config configs/shapes/multitask.yaml --batches 50

Run it at two commits to compare (the same machine, one after the other): the figures are absolute
seconds, so only a ratio between runs of one session means anything.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from accelerate import Accelerator
from machine import machine

from tasks.common.multitask import MultiTask
from vl.config import load_config
from vl.experiment import ExperimentConfig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/shapes/demo.yaml")
    p.add_argument("--batches", type=int, default=40, help="batches to time after the first (default 40)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as out:
        cfg = load_config(ExperimentConfig, args.config, [f"train.output_dir={out}"])
        start = time.perf_counter()
        tasks = MultiTask(cfg, Accelerator(cpu=True))
        loaders = tasks.train_loaders(seed=0)
        startup = time.perf_counter() - start
        iterators = {name: iter(loader) for name, loader in loaders.items()}
        for it in iterators.values():
            next(it)
        start = time.perf_counter()
        for _ in range(args.batches):
            for it in iterators.values():
                next(it)
        per_batch = (time.perf_counter() - start) / args.batches
    print(f"{args.config} on {machine()}: start-up {startup:.1f} s (tokenizer trained), {per_batch:.3f} s a batch ({', '.join(loaders)})")


if __name__ == "__main__":
    main()
