"""Are generated Shapes questions answerable, by the scene rather than by the model? Reads the questions file
`tasks.evaluate --task qgen` writes and answers every question from its image's objects (vl.data.shapes.truth):
a question is answerable when that answer is the one it was written for.

    python bench/qgen_truth.py --questions runs/X/model/questions_qgen_shapes_test.json --split test

`tasks.evaluate` reports answerability by the model's own VQA head, which is what the round-trip check
(`--num-return-sequences`) selects by; this is the independent check of both. Per question type, with one
failing example each; a question the truth reader cannot parse counts as not answerable.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from tasks.evaluate import saved_experiment
from vl.data.shapes.dataset import build_dataset
from vl.data.shapes.truth import answer


def truth_answerability(questions: list[dict], objects: dict[int, list[dict]], size: int) -> tuple[float, dict[str, dict]]:
    """(share answerable, per question type: share, count, and one failing (question, asked, true answer))."""
    right, total, failing = Counter(), Counter(), {}
    for q in questions:
        try:
            truth = answer(q["question"], objects[q["image_id"]], size)
        except (KeyError, AssertionError):  # names an object the scene lacks, or a question the reader cannot read
            truth = None
        kind = q["question_type"]
        total[kind] += 1
        if truth == q["answer"]:
            right[kind] += 1
        else:
            failing.setdefault(kind, (q["question"], q["answer"], truth))
    per_type = {k: {"answerable": right[k] / total[k], "questions": total[k], "failing": failing.get(k)} for k in sorted(total)}
    return sum(right.values()) / max(1, sum(total.values())), per_type


def written_about_shapes(path: Path, split: str, task: str) -> tuple[list[dict], dict[int, list[dict]], int]:
    """(the items of a file tasks.evaluate wrote beside a model, each image's objects, the canvas size) for a
    Shapes split of the model's own world (its train_config.yaml); a clear error when the file is not about it."""
    cfg = saved_experiment(path.parent).data.shapes
    rows = build_dataset(cfg, splits=[split])[split].select_columns(["image_id", "scene"])
    objects = {r["image_id"]: r["scene"]["objects"] for r in rows}
    items = json.loads(path.read_text())
    if not isinstance(items, list) or not items or any(not isinstance(i, dict) or i.get("image_id") not in objects for i in items):
        raise SystemExit(f"{path}: not about Shapes {split} images (write it with tasks.evaluate --task {task} --data shapes:{split})")
    return items, objects, cfg.image_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", required=True, type=Path, help="a questions_qgen_shapes_<split>.json that tasks.evaluate wrote")
    parser.add_argument("--split", default="test", help="the Shapes split the questions are about")
    parser.add_argument("--out", type=Path, default=None, help="JSON with the figures (default: beside the questions file)")
    args = parser.parse_args()
    questions, objects, size = written_about_shapes(args.questions, args.split, "qgen")
    share, per_type = truth_answerability(questions, objects, size)
    for kind, row in per_type.items():
        print(f"{kind:>18}: {row['answerable']:.3f} of {row['questions']}" + (f"   e.g. {row['failing']}" if row["failing"] else ""))
    out = args.out or args.questions.with_name(args.questions.stem + "_truth.json")
    out.write_text(json.dumps({"questions": str(args.questions), "truth_answerability": share, "types": per_type}, indent=1))
    print(f"truth answerability: {share:.4f} of {len(questions)} questions -> {out}")


if __name__ == "__main__":
    main()
