"""Issue 18's compositional augmentation, scored: models trained without, with GAN-drawn and with real
scenes of the held-out color+shape pairs (configs/gan/exp_compositional.yaml), read on test_heldout
(every scene holds a held-out pair) and on test (in distribution).

    python bench/compositional.py runs/compositional-none runs/compositional-gan runs/compositional-real [--n 500]
    python bench/compositional.py runs/compositional-none runs/compositional-gan --per-tag    # test AP by tag

Per model: tags -- the held-out pairs' mean AP (from the head's own outputs when its vocabulary has
them, else from its composed pair scores), their recall at the saved threshold, and mAP on test (as
tasks.evaluate --task tag reports it); VQA -- official accuracy on test_heldout, on its questions that
name a held-out object's color (the object is then the held-out pair), on those of them that ask its
shape ("what shape is the red object?": the answer is the pair's shape) and, beside it, on every shape
question of test, and on test; captions -- the share of captions with every claim true, and of
captions that name the held-out pair (color and shape) when the image holds it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import torch
from torchmetrics.functional.classification import binary_average_precision

from tasks.evaluate import saved_experiment
from vl.data.shapes.catalog import SHAPE_WORDS
from vl.data.specs import column
from vl.metrics import vqa_accuracy
from vl.modeling import VLModel
from vl.processing import VLProcessor
from vl.tasks import task_kind
from vl.tasks.base import TaskConfig


def load_run(run: Path) -> tuple[VLModel, VLProcessor, object]:
    """(model, processor, experiment config) of a tasks.train output folder's model/."""
    folder = run / "model"
    return VLModel.from_pretrained(folder).eval(), VLProcessor.from_pretrained(folder), saved_experiment(folder)


def outputs(model, processor, cfg, task: str, spec: str, n: int):
    kind = task_kind(model, task)(task, cfg, TaskConfig(eval=spec))
    kind.bind(processor, model)
    rows = kind.open(spec, n)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return kind, rows, kind.infer(model, rows)


def held_out_objects(cfg, spec: str, n: int) -> dict[int, list[tuple[str, str]]]:
    """image_id -> the (color, shape) held-out pairs its scene holds."""
    from vl.data.specs import open_captions

    rows = open_captions(spec, cfg.data, n)
    held = set(cfg.data.shapes.heldout_pairs)
    return {
        i: [(o["color"], o["shape"]) for o in s["objects"] if f"{o['color']} {o['shape']}" in held]
        for i, s in zip(column(rows, "image_id"), column(rows, "scene"))
    }


def tag_scores(model, processor, cfg, n: int) -> dict[str, float]:
    kind, rows, out = outputs(model, processor, cfg, "tag", "shapes:test_heldout", n)
    head, tags = kind.head, column(rows, "tags")
    order = sorted(out)
    aps, hits, total = [], 0, 0
    for pair in cfg.data.shapes.heldout_pairs:
        target = torch.tensor([pair in tags[i] for i in order], dtype=torch.long)
        if pair in head.cfg.tags:
            k, threshold, source = head.cfg.tags.index(pair), head.cfg.threshold, "probs"
        else:
            k, threshold, source = head.composable.index(pair), head.cfg.pair_threshold, "composed"
        score = torch.tensor([out[i][source][k] for i in order])
        aps.append(binary_average_precision(score, target).item())
        hits += int(((score > threshold) & (target == 1)).sum())
        total += int(target.sum())
    test_kind, test_rows, test_out = outputs(model, processor, cfg, "tag", "shapes:test", n)
    return {
        "heldout_pair_AP": sum(aps) / len(aps),
        "heldout_pair_recall": hits / max(total, 1),
        "vocabulary_has_pairs": all(p in head.cfg.tags for p in cfg.data.shapes.heldout_pairs),
        "test/tag_mAP": test_kind.score(test_rows, test_out)["mAP"],
    }


def tag_ap_by_tag(model, processor, cfg, n: int) -> dict[str, float]:
    """AP of every tag of the head's vocabulary on test (those test images show)."""
    kind, rows, out = outputs(model, processor, cfg, "tag", "shapes:test", n)
    probs, targets = kind._arrays(rows, out)
    return {t: binary_average_precision(probs[:, k], targets[:, k].long()).item() for k, t in enumerate(kind.head.cfg.tags) if targets[:, k].any()}


def print_per_tag(runs: list[Path], n: int) -> None:
    """Test AP by tag, the runs side by side, the tags the second run loses most against the first on top."""
    aps = {}
    for run in runs:
        with torch.no_grad():
            aps[run.name] = tag_ap_by_tag(*load_run(run), n)
    first, *rest = aps.values()
    order = sorted(first, key=lambda t: (rest[0].get(t, 0.0) - first[t]) if rest else 0.0)
    print("| test AP | " + " | ".join(aps) + " |\n|---|" + "---:|" * len(aps))
    for t in order:
        print(f"| {t} | " + " | ".join(f"{a.get(t, float('nan')):.3f}" for a in aps.values()) + " |")


def vqa_scores(model, processor, cfg, n: int) -> dict[str, float]:
    result = {}
    for split in ("test_heldout", "test"):
        kind, rows, out = outputs(model, processor, cfg, "vqa", f"shapes:{split}", n)
        records, preds = kind._records(rows, out)
        acc = vqa_accuracy(records, preds, version=cfg.evaluation.vqa_eval)
        result[f"{split}/accuracy"] = acc["overall"]
        held = held_out_objects(cfg, f"shapes:{split}", n) if split == "test_heldout" else {}
        questions, ids, types = column(rows, "question"), column(rows, "image_id"), column(rows, "question_type")
        about, shape = [], []
        for r, i in zip(records, sorted(out)):
            names_held = any(re.search(rf"\b{c}\b", questions[i]) for c, _ in held.get(ids[i], []))
            if names_held:
                about.append(acc["perQuestion"][r["question_id"]])
            if types[i] == "shape" and (names_held or split == "test"):
                shape.append(acc["perQuestion"][r["question_id"]])
        if split == "test_heldout":
            result["test_heldout/about_heldout_object"] = sum(about) / max(len(about), 1)
            result["test_heldout/questions_about_heldout"] = len(about)
        # "what shape is the <color> object?": on test_heldout asked of a held-out pair's object (the answer is the pair's shape)
        result[f"{split}/shape_of_{'heldout_object' if split == 'test_heldout' else 'object'}"] = sum(shape) / max(len(shape), 1)
        result[f"{split}/shape_questions"] = len(shape)
    return result


def caption_scores(model, processor, cfg, n: int) -> dict[str, float]:
    result = {}
    for split in ("test_heldout", "test"):
        kind, rows, out = outputs(model, processor, cfg, "caption", f"shapes:{split}", n)
        scores = kind.score(rows, out, ("CIDEr",))
        result[f"{split}/all_claims_true"], result[f"{split}/CIDEr"] = scores["all_claims_true"], scores["CIDEr"]
        if split == "test_heldout":
            held = held_out_objects(cfg, f"shapes:{split}", n)
            preds, _ = kind.by_image(rows, out)
            named = [any(f"{c} {w}" in preds[i] for c, s in held[i] for w in SHAPE_WORDS[s]) for i in preds if held.get(i)]
            result["test_heldout/names_heldout_pair"] = sum(named) / max(len(named), 1)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="tasks.train output folders (their model/ is read)")
    p.add_argument("--n", type=int, default=500, help="images per split")
    p.add_argument("--out", type=Path, default=None, help="JSON of every figure")
    p.add_argument("--per-tag", action="store_true", help="only test AP by tag (which tags a run loses against the first)")
    args = p.parse_args(argv)
    if args.per_tag:
        print_per_tag(args.runs, args.n)
        return 0
    table = {}
    for run in args.runs:
        model, processor, cfg = load_run(run)
        with torch.no_grad():
            table[run.name] = {
                **tag_scores(model, processor, cfg, args.n),
                **vqa_scores(model, processor, cfg, args.n),
                **caption_scores(model, processor, cfg, args.n),
            }
        print(run.name, json.dumps(table[run.name]))
    keys = list(next(iter(table.values())))
    print("| figure | " + " | ".join(table) + " |\n|---|" + "---:|" * len(table))
    for k in keys:
        print(f"| {k} | " + " | ".join(f"{v[k]:.3f}" if isinstance(v[k], float) else str(v[k]) for v in table.values()) + " |")
    if args.out:
        args.out.write_text(json.dumps(table, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
