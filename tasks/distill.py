"""Distil a trained model into a smaller student.

    accelerate launch -m tasks.distill --teacher runs/shapes-reasoning/model --config configs/distill/shapes_student.yaml [--resume latest] [key=value ...]

The student (model: in the config) learns every head's ground truth and the frozen teacher's logits,
block outputs and optionally attention maps (the distill: section; vl/compress/distill.py). It takes
the teacher's tokenizer, image normalisation and answer/tag vocabularies. Training, resuming,
checkpoints and the saved model/ folder are tasks.train's.
"""

from __future__ import annotations

import functools
import sys

from tasks.common.cli import cli, training_args
from tasks.common.distillation import Distillation
from tasks.train import run
from vl.compress.distill import DistillExperimentConfig
from vl.config import load_config


def _teacher_arg(parser) -> None:
    parser.add_argument("--teacher", required=True, help="the teacher: a saved model folder (a training run's model/)")


@cli
def main(argv: list[str] | None = None) -> int:
    args = training_args(argv, "tasks.distill", __doc__, "configs/distill/shapes_student.yaml", extra=_teacher_arg)
    cfg = load_config(DistillExperimentConfig, args.config, args.overrides)
    make = functools.partial(Distillation, teacher_dir=args.teacher)
    return run(cfg, args, "tasks.distill", make, "--teacher", args.teacher)


if __name__ == "__main__":
    sys.exit(main())
