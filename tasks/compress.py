"""Compress a trained model into a new model folder that loads with from_pretrained and serves the
pipelines and tasks.evaluate unchanged (its config records what changed).

    python -m tasks.compress lowrank --model runs/shapes-reasoning/model --energy 0.9 --out runs/reasoning-lowrank90
    python -m tasks.compress int8 --model runs/shapes-reasoning/model --out runs/reasoning-int8 [--scheme weight_only]
    python -m tasks.compress int8 --model runs/reasoning-lowrank90 --out runs/reasoning-lowrank90-int8   # both
    python -m tasks.compress prune --model runs/shapes-reasoning/model --flops-ratio 0.5 --out runs/reasoning-pruned50
    python -m tasks.compress exits --model runs/reasoning-exits/model --tune shapes:val --max-drop 1 --out runs/reasoning-exits-tuned

lowrank: every Linear worth it becomes two factors from its SVD, at the smallest rank that keeps
`--energy` of the squared singular values (vl/compress/lowrank.py). int8: torchao's int8 quantization of
every Linear with both sides >= --min-features, activations quantized at run time (`dynamic`) or not
(`weight_only`) (vl/compress/int8.py). prune: Torch-Pruning removes conv-stem channels, MLP channels
and attention heads of the encoder until its FLOPs are --flops-ratio of the start, ranked by weight
magnitude or by Taylor saliency on the caption loss of --batches Shapes training batches
(vl/compress/prune.py); fine-tune the result (tasks.distill with model.init_from, the original as
teacher). exits: a model trained with early exits (model.early_exit) gets, per exit head, the
confidence threshold with the fewest encoder blocks run whose headline metric on --tune is within
--max-drop percent of full depth's (vl/compress/early_exit.py); the curve is printed. `--skip` leaves
modules (by path prefix) as they are (lowrank, int8). Prints parameters, file size and FLOPs of one
image's encoder pass before and after.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import sys
from pathlib import Path

import torch

from tasks.common.cli import cli
from tasks.evaluate import saved_experiment
from vl.compress.early_exit import exit_curve, pick_threshold, set_thresholds
from vl.compress.int8 import SCHEMES, quantize
from vl.compress.lowrank import factorize
from vl.compress.prune import IMPORTANCES, encoder_flops, prune_encoder
from vl.data.shapes.world import ShapesWorld
from vl.errors import InputError
from vl.experiment import TaskConfig
from vl.modeling import VLModel
from vl.pipelines import find_head
from vl.processing import VLProcessor
from vl.tasks import task_kind

THRESHOLDS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)

CARRIED = ("train_config.yaml",)  # files of the source folder the compressed one keeps


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tasks.compress", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="method", required=True)
    c = sub.add_parser("lowrank", help="SVD of Linear layers, the rank by retained energy")
    c.add_argument("--model", required=True, type=Path, help="a trained model folder")
    c.add_argument("--out", required=True, type=Path, help="the new model folder")
    c.add_argument("--energy", type=float, default=0.9, help="share of the squared singular values each layer keeps (0..1]")
    c.add_argument("--min-saving", type=float, default=0.2, help="factor a layer only when it shrinks by this share")
    c.add_argument("--min-features", type=int, default=16, help="factor a Linear only when both its sides are at least this")
    c = sub.add_parser("int8", help="torchao int8 quantization of Linear layers")
    c.add_argument("--model", required=True, type=Path, help="a trained (or low-rank) model folder")
    c.add_argument("--out", required=True, type=Path, help="the new model folder")
    c.add_argument("--scheme", choices=SCHEMES, default="dynamic", help="dynamic: int8 activations too; weight_only: int8 weights")
    c.add_argument("--min-features", type=int, default=64, help="quantize a Linear only when both its sides are at least this")
    c = sub.add_parser("prune", help="Torch-Pruning of encoder channels and heads to a FLOPs target")
    c.add_argument("--model", required=True, type=Path, help="a trained model folder")
    c.add_argument("--out", required=True, type=Path, help="the new model folder")
    c.add_argument("--flops-ratio", type=float, default=0.5, help="the share of the encoder's FLOPs to keep (0..1)")
    c.add_argument("--importance", choices=IMPORTANCES, default="magnitude", help="rank channels by weight magnitude or Taylor saliency")
    c.add_argument("--batches", type=int, default=4, help="taylor: Shapes training batches of 32 images whose caption loss gives the gradients")
    c = sub.add_parser("exits", help="tune the early exits' confidence thresholds on a split")
    c.add_argument("--model", required=True, type=Path, help="a model trained with early exits (model.early_exit)")
    c.add_argument("--out", required=True, type=Path, help="the new model folder (the same weights, thresholds set)")
    c.add_argument("--tune", required=True, help="the data the thresholds are chosen on, e.g. shapes:val (report on another)")
    c.add_argument("--max-drop", type=float, default=1.0, help="the largest relative drop of the headline metric allowed, in percent")
    c.add_argument("--images", type=int, default=None, help="tune on the first N images (default: all)")
    c.add_argument("--thresholds", default=",".join(map(str, THRESHOLDS)), help="comma-separated confidences to try")
    c.add_argument("--bf16", action="store_true", help="run under bf16 autocast")
    for c in sub.choices.values():
        c.add_argument("--skip", default="", help="comma-separated module path prefixes left as they are (e.g. heads.vqa.classifier)")
    return p.parse_args(argv)


@cli
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.out.resolve() == args.model.resolve():
        raise InputError("--out is the source folder; write the compressed model to a new folder")
    model = VLModel.from_pretrained(args.model).eval()
    before = size(model)
    skip = tuple(s for s in args.skip.split(",") if s)
    if args.method == "lowrank":
        done = f"lowrank at energy {args.energy}: {len(factorize(model, args.energy, args.min_saving, skip, args.min_features))} layers factored"
    elif args.method == "prune":
        if skip:
            raise InputError("prune takes no --skip: it prunes the encoder and leaves the heads as they are")
        forward = functools.partial(caption_loss, model, VLProcessor.from_pretrained(args.model), args.batches)
        done = f"pruned ({args.importance}): {prune_encoder(model, args.flops_ratio, args.importance, forward=forward)['layers']} layers resized"
    elif args.method == "exits":
        if skip:
            raise InputError("exits takes no --skip")
        done = tune_exits(model, args)
    else:
        done = f"int8 ({args.scheme}): {len(quantize(model, args.scheme, args.min_features, skip))} layers quantized"
    model.save_pretrained(args.out)
    after = size(model)
    VLProcessor.from_pretrained(args.model).save_pretrained(args.out)
    for name in CARRIED:
        if (args.model / name).is_file():
            shutil.copy(args.model / name, args.out / name)
    mb = sum(f.stat().st_size for f in args.out.glob("*.safetensors")) / 1e6
    flops = f"{before[1]:.3f} -> {after[1]:.3f} ({after[1] / before[1]:.0%})" if args.method != "int8" else f"{before[1]:.3f}, the quantized ones now int8"
    print(
        f"{done}; parameters {before[0] / 1e6:.2f}M -> {after[0] / 1e6:.2f}M, weights {before[2]:.1f} MB -> {after[2]:.1f} MB "
        f"(file {mb:.1f} MB), encoder GFLOPs per image {flops}; saved to {args.out}"
    )
    return 0


def tune_exits(model: VLModel, args: argparse.Namespace) -> str:
    """Each exit head's threshold chosen on args.tune, its curve printed; what was set, in a line."""
    if model.early_exit is None:
        raise InputError(f"{args.model} has no early exits; train it with model.early_exit (configs/compress/shapes_exits.yaml)")
    thresholds = [float(t) for t in args.thresholds.split(",") if t]
    chosen = {}
    for name in model.early_exit.exits:
        kind = bound_kind(model, args.model, name, args.tune)
        metric = kind.headline[0]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16), torch.no_grad():
            curve = exit_curve(model, kind, kind.open(args.tune, args.images), thresholds)
        best = pick_threshold(curve, metric, args.max_drop)
        chosen[name] = None if best is curve[0] else best["threshold"]
        print(f"{name} on {args.tune}: {metric} and mean encoder blocks run (of {model.early_exit.depth}) per threshold")
        for point in curve:
            mark = "  <- chosen" if point is best else ""
            t = "full depth" if point is curve[0] else f"{point['threshold']:g}"
            print(f"  {t:>10}  {point['blocks']:5.2f} blocks  {metric} {point[metric]:.4f}{mark}")
    set_thresholds(model, chosen)
    said = ", ".join(f"{n} {'full depth' if t is None else t}" for n, t in chosen.items())
    return f"exit thresholds within {args.max_drop:g}% of full depth on {args.tune}: {said}"


def bound_kind(model: VLModel, folder: Path, name: str, data: str):
    """The task kind of head `name` reading `data`, with the config saved in `folder`, bound to the model
    and the folder's processor (what scores the head's outputs)."""
    kind = task_kind(model, name)(name, saved_experiment(folder), TaskConfig(eval=data))
    kind.bind(VLProcessor.from_pretrained(folder), model)
    return kind


def caption_loss(model: VLModel, processor: VLProcessor, batches: int) -> torch.Tensor:
    """The caption head's loss on `batches` batches of 32 Shapes training images and their first captions
    (what Taylor importance differentiates)."""
    head = find_head(model, "caption", None, "taylor importance (the caption loss; or use --importance magnitude)")
    world = ShapesWorld()
    total = torch.zeros(())
    for start in range(0, 32 * batches, 32):
        chunk = [world.item("train", i) for i in range(start, start + 32)]
        pixels = processor.visual_inputs([r["image"] for r in chunk])["pixel_values"]
        text = processor.encode_captions([r["captions"][0] for r in chunk], model.config.heads[head]["max_len"] - 1)
        total = total + model(pixels, task=head, **text)["loss"] / batches
    return total


def size(model: VLModel) -> tuple[int, float, float]:
    """(parameters and int8 weights, GFLOPs of the encoder on one image, MB of parameters and buffers)."""
    cfg = model.config.encoder
    pixels = torch.zeros(1, cfg.get("channels", 3), cfg.get("image_size", 224), cfg.get("image_size", 224))
    tensors = list(model.parameters()) + [b for n, b in model.named_buffers() if n.endswith("qdata")]
    stored = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() for t in tensors), encoder_flops(model.encoder, pixels) / 1e9, sum(t.numel() * t.element_size() for t in stored) / 1e6


if __name__ == "__main__":
    sys.exit(main())
