"""`make demo`: one encoder, three heads (captions, answers, tags) trained together on the Shapes world.

Trains configs/shapes/demo.yaml (every step, the three heads learn from the same images through one
encoder pass), then on the first 400 test images prints the COCO caption metrics beside a baseline
(always the most frequent training caption), the share of captions whose every claim is true of the
scene, VQA accuracy (the official evaluation) per question family beside an answer prior, and tag
mAP/F1 at thresholds tuned on val. Writes demo/shapes.png: test images with the generated caption,
two questions answered (right or wrong against the truth) and the predicted tags.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from tasks.common.cli import cli
from tasks.train import main as train
from vl.config import load_config
from vl.data.preview import grid_font, image_grid
from vl.data.schema import write_json
from vl.data.shapes.truth import read_caption
from vl.data.specs import read_image
from vl.errors import ConfigError
from vl.experiment import ExperimentConfig, TaskConfig
from vl.metrics import caption_scores, format_table, normalize_answer
from vl.metrics.vqa import VQA_EVALS
from vl.modeling import VLModel
from vl.processing import VLProcessor
from vl.tasks import task_kind

CONFIG = Path("configs/shapes/demo.yaml")
OUT = Path("demo")
TEST, TEST_IMAGES, SHOWN = "shapes:test", 400, 12
METRICS = ("Bleu_1", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr", "SPICE")
GREEN, RED = "#1a7f37", "#cf222e"


@cli
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tasks.demo", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=OUT, help="where the run, the scores and the PNG go (default: demo)")
    p.add_argument("--skip-training", action="store_true", help="score the model an earlier demo left in OUT/run")
    p.add_argument("--test-images", type=int, default=TEST_IMAGES, help=f"score the first N test images (default {TEST_IMAGES})")
    args = p.parse_args(argv)
    start, out = time.perf_counter(), args.out
    bf16 = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    overrides = [f"train.output_dir={out / 'run'}", f"train.mixed_precision={'bf16' if bf16 else 'no'}"]
    if not bf16:
        overrides.append("train.steps=1225")  # fp32 trains at ~2.5 steps/s on 2 cores (bf16 ~5): 1,225 steps fill the same minutes
    if not args.skip_training and (code := train(["--config", str(CONFIG), *overrides])):
        return code
    if not (out / "run" / "model").is_dir():
        raise ConfigError(f"{out / 'run' / 'model'} does not exist: run the demo without --skip-training first")
    cfg = load_config(ExperimentConfig, out / "run" / "config.yaml")
    model, processor = VLModel.from_pretrained(out / "run" / "model").eval(), VLProcessor.from_pretrained(out / "run" / "model")
    print(f"scoring the first {args.test_images} test images ...")
    kinds, rows, outputs, reports = score_heads(model, processor, cfg, TEST, args.test_images, bf16)
    baselines = _baselines(kinds, rows)
    caption = reports["caption"].scores
    print(format_table({"model": caption["metrics"], "baseline": baselines["caption"]["metrics"]}, caption["skipped"]))
    print(f'baseline caption: "{baselines["caption"]["caption"]}"')
    truth = caption["truth"]
    print(f"captions with every claim true of their scene: {truth['all_claims_true']:.1%}; mentions that exist: {truth['mentions_exist']:.1%}")
    print("claims that hold, by kind: " + ", ".join(f"{k.removeprefix('true/')} {v:.1%}" for k, v in truth.items() if k.startswith("true/")))
    vqa, prior = reports["vqa"].scores["summary"], baselines["vqa"]
    print(f"\nVQA accuracy ({VQA_EVALS[cfg.evaluation.vqa_eval]}), model vs answer prior (the most frequent training answer of the question's family):")
    print("\n".join(f"  {k:16} {v:6.2f}   {prior.get(k, float('nan')):6.2f}" for k, v in vqa.items()))
    print("\n" + reports["tag"].table)
    write_json(
        {name: {**r.scores, "what": r.what} for name, r in reports.items()} | {"baselines": baselines},
        out / "metrics.json",
    )
    grid = _grid(kinds, rows, outputs, model, cfg, out / "shapes.png")
    cider, base = caption["metrics"]["CIDEr"], baselines["caption"]["metrics"]["CIDEr"]
    print(
        f"demo done in {(time.perf_counter() - start) / 60:.1f} min: captions all true {truth['all_claims_true']:.1%}, "
        f"CIDEr {cider:.3f} (baseline {base:.3f}); VQA {vqa['accuracy']:.1f} (prior {prior['accuracy']:.1f}); "
        f"tag mAP {reports['tag'].scores['mAP']:.3f}; pictures in {grid}, scores in {out / 'metrics.json'}"
    )
    return 0


def score_heads(model: VLModel, processor: VLProcessor, cfg: ExperimentConfig, spec: str, images: int, bf16: bool, metrics=METRICS) -> tuple[dict, ...]:
    """Every head of the model on the first `images` images of `spec`: (kinds, rows, outputs, reports),
    each by head name."""
    kinds, rows, outputs, reports = {}, {}, {}, {}
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for name in model.heads:
            kind = kinds[name] = task_kind(model, name)(name, cfg, TaskConfig(eval=spec))
            kind.bind(processor, model)
            rows[name] = kind.open(spec, images)
            outputs[name] = kind.infer(model, rows[name], batch_size=100)
            reports[name] = kind.report(rows[name], outputs[name], metrics)
    return kinds, rows, outputs, reports


def _baselines(kinds: dict[str, Any], rows: dict[str, Any]) -> dict[str, Any]:
    """What a model that ignores the image scores: the most frequent training caption for every
    image, and for every question the most frequent training answer of its family."""
    caption_rows = kinds["caption"].open(kinds["caption"].cfg.data.train)
    train_captions = Counter(c for caps in caption_rows["captions"] for c in caps)
    frequent = train_captions.most_common(1)[0][0]
    preds, refs = kinds["caption"].by_image(rows["caption"], {i: {"caption": frequent} for i in range(len(rows["caption"]))})
    caption = {**caption_scores(refs, preds, ("Bleu_1", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr")), "caption": frequent}
    train_vqa = kinds["vqa"].open(kinds["vqa"].cfg.data.train)
    by_family: dict[str, Counter] = {}
    for family, a in zip(train_vqa["question_family"], train_vqa["multiple_choice_answer"]):
        by_family.setdefault(family, Counter())[normalize_answer(a)] += 1
    prior = {i: by_family[f].most_common(1)[0][0] for i, f in enumerate(rows["vqa"]["question_family"])}
    return {"caption": caption, "vqa": kinds["vqa"].score(rows["vqa"], prior)}


def _grid(kinds: dict[str, Any], rows: dict[str, Any], outputs: dict[str, Any], model: VLModel, cfg: ExperimentConfig, out: Path) -> Path:
    """The first test images, each with its caption (green when every claim is true), two of its
    questions with the model's answer (right or wrong) and its predicted color+shape tags."""
    font, marks = grid_font(11)
    size = cfg.data.shapes.image_size
    questions: dict[int, list[int]] = {}
    for i, image_id in enumerate(rows["vqa"]["image_id"]):
        questions.setdefault(image_id, []).append(i)
    tag_row = {image_id: k for k, image_id in enumerate(rows["tag"]["image_id"])}
    vqa, tag_head = rows["vqa"], model.heads["tag"]
    images, texts = [], []
    for k in range(min(SHOWN, len(rows["caption"]))):
        row = rows["caption"][k]
        objects = row["scene"]["objects"]
        caption = outputs["caption"][k]["caption"]
        true = read_caption(caption, objects, size).true
        lines: list[Any] = [(f"{marks[true]} {caption}", GREEN if true else RED)]
        for q in _two_questions(questions[row["image_id"]], vqa):
            answer, truth = outputs["vqa"][q], vqa[q]["multiple_choice_answer"]
            right = normalize_answer(answer) == normalize_answer(truth)
            lines.append((f"{marks[right]} {vqa[q]['question']} {answer}" + ("" if right else f" (truth: {truth})"), GREEN if right else RED))
        t = tag_row[row["image_id"]]  # color+shape pairs only: they imply the color and shape tags
        predicted = [p["tag"] for p in tag_head.predict(torch.tensor([outputs["tag"][t]["probs"]]))[0] if " " in p["tag"]]
        actual = sorted({tag for tag in rows["tag"][t]["tags"] if " " in tag})
        right = sorted(predicted) == actual
        lines.append((f"{marks[right]} tags: {', '.join(predicted) or 'none'}" + ("" if right else f" (truth: {', '.join(actual)})"), GREEN if right else RED))
        images.append(read_image(row["image"]))
        texts.append(lines)
    return image_grid(images, texts, out, cols=4, tile=224, font=font)


def _two_questions(indices: list[int], vqa: Any) -> list[int]:
    """Two of an image's questions of different families (the first of each), for variety."""
    chosen, families = [], set()
    for i in indices:
        if vqa[i]["question_family"] not in families:
            chosen.append(i)
            families.add(vqa[i]["question_family"])
        if len(chosen) == 2:
            break
    return chosen


if __name__ == "__main__":
    sys.exit(main())
