"""Compress a trained model into a new model folder that loads with from_pretrained and serves the
pipelines and tasks.evaluate unchanged (its config records what changed).

    python -m tasks.compress lowrank --model runs/shapes-reasoning/model --energy 0.9 --out runs/reasoning-lowrank90

lowrank: every Linear worth it becomes two factors from its SVD, at the smallest rank that keeps
`--energy` of the squared singular values (vl/compress/lowrank.py); `--skip` leaves modules (by path
prefix) whole. Prints parameters and FLOPs of one image's encoder pass before and after.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from tasks.common.cli import cli
from vl.compress.lowrank import factorize
from vl.errors import InputError
from vl.modeling import VLModel
from vl.processing import VLProcessor

CARRIED = ("train_config.yaml",)  # files of the source folder the compressed one keeps


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tasks.compress", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="method", required=True)
    c = sub.add_parser("lowrank", help="SVD of Linear layers, the rank by retained energy")
    c.add_argument("--model", required=True, type=Path, help="a trained model folder")
    c.add_argument("--out", required=True, type=Path, help="the new model folder")
    c.add_argument("--energy", type=float, default=0.9, help="share of the squared singular values each layer keeps (0..1]")
    c.add_argument("--min-saving", type=float, default=0.2, help="factor a layer only when it shrinks by this share")
    c.add_argument("--skip", default="", help="comma-separated module path prefixes left whole (e.g. heads.vqa.classifier)")
    return p.parse_args(argv)


@cli
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.out.resolve() == args.model.resolve():
        raise InputError("--out is the source folder; write the compressed model to a new folder")
    model = VLModel.from_pretrained(args.model).eval()
    before = size(model)
    ranks = factorize(model, args.energy, args.min_saving, tuple(s for s in args.skip.split(",") if s))
    after = size(model)
    model.save_pretrained(args.out)
    VLProcessor.from_pretrained(args.model).save_pretrained(args.out)
    for name in CARRIED:
        if (args.model / name).is_file():
            shutil.copy(args.model / name, args.out / name)
    print(
        f"lowrank at energy {args.energy}: {len(ranks)} layers factored; parameters {before[0] / 1e6:.2f}M -> {after[0] / 1e6:.2f}M "
        f"({after[0] / before[0]:.0%}), encoder GFLOPs per image {before[1]:.3f} -> {after[1]:.3f} ({after[1] / before[1]:.0%}); saved to {args.out}"
    )
    return 0


def size(model: VLModel) -> tuple[int, float]:
    """(parameters, GFLOPs of the encoder on one image)."""
    cfg = model.config.encoder
    pixels = torch.zeros(1, cfg.get("channels", 3), cfg.get("image_size", 224), cfg.get("image_size", 224))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.encoder.forward_features(pixels)
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops() / 1e9


if __name__ == "__main__":
    sys.exit(main())
