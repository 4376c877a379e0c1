"""Score captions with the COCO caption metrics (pycocoevalcap), from a model or from a results file.

    python -m tasks.evaluate --model runs/shapes-caption/model --data shapes:test      # generate, then score
    python -m tasks.evaluate --coco-ann captions_val2014.json --predictions results.json   # score a file

References come from --coco-ann (a COCO captions file) or --data (a data spec); captions from
--model (generated; also written as a COCO results file) or --predictions. Prints a table and
writes the scores as JSON (--out).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from tasks.common.caption_task import caption_images
from tasks.common.cli import cli
from tasks.common.data import SPEC_HELP, open_captions
from tasks.common.experiment import ExperimentConfig
from vl.config import load_config
from vl.data.coco import read_coco_references, read_coco_results, to_coco_results
from vl.data.schema import write_json
from vl.errors import ConfigError
from vl.metrics import CAPTION_METRICS, caption_scores, format_table
from vl.modeling import VLModel
from vl.processing import VLProcessor


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="tasks.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, help="a folder saved by training (save_pretrained)")
    p.add_argument("--data", help=f"references and images: {SPEC_HELP}")
    p.add_argument("--coco-ann", type=Path, help="references from a COCO captions file")
    p.add_argument("--predictions", type=Path, help='captions to score: [{"image_id": ..., "caption": ...}]')
    p.add_argument("--max-images", type=int, default=None, help="score only the first N images")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--num-beams", type=int, default=None, help="override the model's generation config")
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument("--bf16", action="store_true", help="decode under bf16 autocast")
    p.add_argument("--metrics", default=",".join(CAPTION_METRICS), help="comma-separated subset of " + ",".join(CAPTION_METRICS))
    p.add_argument("--out", type=Path, default=None, help="scores JSON (default: beside the model or the predictions)")
    return p.parse_args(argv)


@cli
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if (args.model is None) == (args.predictions is None):
        raise ConfigError("pass exactly one of --model (generate captions) or --predictions (a results file)")
    if (args.data is None) == (args.coco_ann is None):
        raise ConfigError("pass exactly one of --data (a data spec) or --coco-ann (a COCO captions file) for the references")
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    if unknown := [m for m in metrics if m not in CAPTION_METRICS]:
        raise ConfigError(f"unknown metric '{unknown[0]}'; choose from {', '.join(CAPTION_METRICS)}")
    start = time.perf_counter()
    if args.model is not None:
        preds, refs, results_file = _generate(args)
    else:
        preds = read_coco_results(args.predictions)
        refs = _references(args)
        unknown_ids = [i for i in preds if i not in refs]
        if unknown_ids:
            raise ConfigError(f"{args.predictions}: image_id {unknown_ids[0]} is not among the references ({len(unknown_ids)} such)")
        preds = {i: preds[i] for i in refs if i in preds}  # the references' image order, as COCOEvalCap scores
        results_file = args.predictions
    scores = caption_scores(refs, preds, metrics)
    print(format_table({"score": scores["metrics"]}, scores["skipped"]))
    out = args.out or Path(results_file).with_name(Path(results_file).stem + "_scores.json")
    write_json({**scores, "predictions": str(results_file), "references": str(args.coco_ann or args.data)}, out)
    print(f"scored {scores['images']} images of {len(refs)} in {time.perf_counter() - start:.1f}s; wrote {out}")
    return 0


def _references(args: argparse.Namespace) -> dict[int, list[str]]:
    if args.coco_ann is not None:
        refs, _ = read_coco_references(args.coco_ann)
        return refs
    rows = open_captions(args.data, _experiment(args).data.shapes, limit=args.max_images)
    return dict(zip(rows["image_id"], rows["captions"]))


def _experiment(args: argparse.Namespace) -> ExperimentConfig:
    """The training config saved with the model (its Shapes world and generation settings), or the defaults."""
    saved = args.model / "train_config.yaml" if args.model is not None else None
    cfg = load_config(ExperimentConfig, saved if saved is not None and saved.is_file() else None)
    gen = {k: v for k, v in (("num_beams", args.num_beams), ("max_new_tokens", args.max_new_tokens)) if v is not None}
    return replace(cfg, generation=replace(cfg.generation, **gen)) if gen else cfg


def _generate(args: argparse.Namespace) -> tuple[dict[int, str], dict[int, list[str]], Path]:
    cfg = _experiment(args)
    model = VLModel.from_pretrained(args.model).eval()
    processor = VLProcessor.from_pretrained(args.model)
    if args.coco_ann is not None:
        raise ConfigError("with --model, give the images and references as --data coco:<captions.json>:<image folder>")
    rows = open_captions(args.data, cfg.data.shapes, limit=args.max_images)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
        preds, refs = caption_images(model, processor, rows, cfg, args.batch_size)
    name = args.data.replace(":", "_").replace("/", "_")[:60]
    results_file = write_json(to_coco_results(preds), args.model / f"results_{name}.json")
    return preds, refs, results_file


if __name__ == "__main__":
    sys.exit(main())
