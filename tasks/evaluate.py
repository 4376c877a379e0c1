"""Score a model or a results file: COCO caption metrics, the official VQA accuracy, QG, tagging, retrieval.

    python -m tasks.evaluate --model runs/shapes-caption/model --data shapes:test            # generate, score
    python -m tasks.evaluate --coco-ann captions_val2014.json --predictions results.json     # a caption file
    python -m tasks.evaluate --model runs/shapes-multitask/model --data shapes:test --task vqa
    python -m tasks.evaluate --model runs/shapes-retrieval/model --data shapes:test              # recall@1/5/10
    python -m tasks.evaluate --vqa-questions Q.json --vqa-annotations A.json --predictions results.json

--task names a head of the model (caption, vqa, qgen, tag, classify...); a model with one head needs none.
Prints a table, writes the scores as JSON (--out) and the model's outputs in the standard results format.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from tasks.common.cli import cli
from vl.compress.distill import DistillExperimentConfig
from vl.config import load_config
from vl.data.coco import read_coco_references, read_coco_results
from vl.data.schema import write_json
from vl.data.vqa import read_vqa_annotations, read_vqa_results
from vl.errors import ConfigError
from vl.experiment import ExperimentConfig, TaskConfig
from vl.metrics import CAPTION_METRICS, caption_scores, format_table, vqa_accuracy
from vl.metrics.vqa import VQA_EVALS
from vl.modeling import VLModel
from vl.processing import VLProcessor
from vl.registry import TASKS
from vl.tasks import task_kind
from vl.tasks.vqa import vqa_table


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="tasks.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, help="a folder saved by training (save_pretrained)")
    p.add_argument("--task", help="which head of the model to evaluate (its name; a model with one head needs none)")
    p.add_argument("--data", help="images and references; by kind of head: " + "; ".join(f"{k}: {TASKS.get(k).data_help}" for k in TASKS))
    p.add_argument("--coco-ann", type=Path, help="caption references from a COCO captions file")
    p.add_argument("--vqa-questions", type=Path, help="VQA v2 questions file (with --vqa-annotations)")
    p.add_argument("--vqa-annotations", type=Path, help="VQA v2 annotations file")
    p.add_argument("--predictions", type=Path, help='a results file: [{"image_id", "caption"}] or [{"question_id", "answer"}]')
    p.add_argument("--max-images", type=int, default=None, help="score only the first N images")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--num-beams", type=int, default=None, help="override the model's generation config")
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument(
        "--num-return-sequences",
        type=int,
        default=None,
        help="qgen: write this many questions (the best beams; needs --num-beams >= it) and keep the first the model's VQA head answers as asked",
    )
    p.add_argument("--bf16", action="store_true", help="run the model under bf16 autocast")
    p.add_argument("--device", default="cpu", help="where the model runs: cpu, cuda, cuda:1, mps ... (default cpu)")
    p.add_argument(
        "--vqa-eval", choices=tuple(VQA_EVALS), default=None,
        help="the official VQA accuracy as its code is today (master, the default) or as of 2017 (legacy: LAVIS/BLIP's copy)",
    )  # fmt: skip
    p.add_argument("--metrics", default=",".join(CAPTION_METRICS), help="caption metrics, a subset of " + ",".join(CAPTION_METRICS))
    p.add_argument("--out", type=Path, default=None, help="scores JSON (default: beside the model or the predictions)")
    return p.parse_args(argv)


@cli
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    if args.vqa_questions or args.vqa_annotations:
        scores, table, out, what = _vqa_file(args)
    elif args.model is None:
        scores, table, out, what = _caption_file(args)
    else:
        scores, table, out, what = _model(args)
    print(table)
    write_json(scores, out)
    print(f"scored {what} in {time.perf_counter() - start:.1f}s; wrote {out}")
    return 0


def _caption_metrics(args: argparse.Namespace) -> list[str]:
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    if unknown := [m for m in metrics if m not in CAPTION_METRICS]:
        raise ConfigError(f"unknown metric '{unknown[0]}'; choose from {', '.join(CAPTION_METRICS)}")
    return metrics


def _caption_file(args: argparse.Namespace) -> tuple[dict, str, Path, str]:
    if args.predictions is None or args.coco_ann is None:
        raise ConfigError("pass --model (and --data), or a results file: --predictions with --coco-ann, or with --vqa-questions/--vqa-annotations")
    preds = read_coco_results(args.predictions)
    refs, _ = read_coco_references(args.coco_ann)
    if unknown := [i for i in preds if i not in refs]:
        raise ConfigError(f"{args.predictions}: image_id {unknown[0]} is not among the references ({len(unknown)} such)")
    preds = {i: preds[i] for i in refs if i in preds}  # the references' image order, as COCOEvalCap scores
    scores = caption_scores(refs, preds, _caption_metrics(args))
    out = args.out or args.predictions.with_name(args.predictions.stem + "_scores.json")
    table = format_table({"score": scores["metrics"]}, scores["skipped"])
    return {**scores, "predictions": str(args.predictions), "references": str(args.coco_ann)}, table, out, f"{scores['images']} images of {len(refs)}"


def _vqa_file(args: argparse.Namespace) -> tuple[dict, str, Path, str]:
    if not (args.vqa_questions and args.vqa_annotations and args.predictions):
        raise ConfigError("scoring a VQA results file takes --vqa-questions, --vqa-annotations and --predictions")
    version = args.vqa_eval or "master"
    acc = vqa_accuracy(read_vqa_annotations(args.vqa_annotations, args.vqa_questions), read_vqa_results(args.predictions), version=version)
    out = args.out or args.predictions.with_name(args.predictions.stem + "_scores.json")
    return {**acc, "predictions": str(args.predictions), "annotations": str(args.vqa_annotations)}, vqa_table(acc), out, f"{acc['questions']} questions"


def saved_experiment(folder: Path) -> ExperimentConfig:
    """The training config saved with a model folder, or the defaults (a distilled student's config has
    a distill: section, which the subclass reads)."""
    saved = folder / "train_config.yaml"
    return load_config(DistillExperimentConfig, saved) if saved.is_file() else ExperimentConfig()


def _experiment(args: argparse.Namespace) -> ExperimentConfig:
    """The model's saved training config (its Shapes world and generation settings), with the options' overrides."""
    cfg = saved_experiment(args.model)
    options = (("num_beams", args.num_beams), ("max_new_tokens", args.max_new_tokens), ("num_return_sequences", args.num_return_sequences))
    gen = {k: v for k, v in options if v is not None}
    if gen:  # the options win over the generation section and over every task's own decoding
        tasks = {name: replace(t, generation={**t.generation, **gen}) for name, t in cfg.tasks.items()}
        cfg = replace(cfg, generation=replace(cfg.generation, **gen), tasks=tasks)
    return replace(cfg, evaluation=replace(cfg.evaluation, vqa_eval=args.vqa_eval)) if args.vqa_eval else cfg


def _model(args: argparse.Namespace) -> tuple[dict, str, Path, str]:
    if args.predictions is not None:
        raise ConfigError("pass either --model (its outputs are scored) or --predictions (a results file), not both")
    cfg = _experiment(args)
    device = _device(args.device)
    model = VLModel.from_pretrained(args.model).to(device).eval()
    processor = VLProcessor.from_pretrained(args.model)
    task = model._task(args.task)
    kind = task_kind(model, task)(task, cfg, TaskConfig(eval=args.data or ""))
    if args.data is None:
        raise ConfigError(f"with --model, say which data with --data ({kind.data_help})")
    kind.bind(processor, model)
    name = f"{task}_{args.data.replace(':', '_').replace('/', '_')[:60]}"
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
        rows = kind.open(args.data, args.max_images)
        outputs = kind.infer(model, rows, batch_size=args.batch_size)
        report = kind.report(rows, outputs, _caption_metrics(args))
    if (exits := model.early_exit) is not None and task in exits.threshold:
        blocks, rows_run = exits.blocks_run.get(task, (0, 0))
        report.scores["exit_blocks"] = blocks / max(rows_run, 1)
        ran = f"{report.scores['exit_blocks']:.2f} of {exits.depth} encoder blocks run per item"
        report.table += f"\nearly exit at confidence {exits.threshold[task]:g}: {ran} (exits after {exits.blocks})"
    results = write_json(report.results, args.model / f"{report.results_prefix}_{name}.json") if report.results is not None else None
    out = args.out or args.model / f"scores_{name}.json"
    what = report.what + (f"; skipped {len(kind.reader.skipped)} unreadable images, first: {kind.reader.skipped[0]}" if kind.reader.skipped else "")
    return {**report.scores, "task": task, "data": args.data, "outputs": str(results) if results else None}, report.table, out, what


def _device(name: str) -> torch.device:
    """The torch device --device names, or a ConfigError saying what this machine has."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device '{name}' is not a device name; use cpu, cuda, cuda:1 or mps") from None
    here = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if not here.get(device.type, False):
        has = ", ".join(k for k, v in here.items() if v)
        raise ConfigError(f"--device {name}: this machine has no {device.type} device (it has: {has}); use --device cpu")
    return device


if __name__ == "__main__":
    sys.exit(main())
