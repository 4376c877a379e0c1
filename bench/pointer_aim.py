"""Where does a pointer VQA head aim? Per question type: how often each pointer's most-weighted cell lies in
the box of the object the question means, and how often the answer is right.

    python bench/pointer_aim.py --model runs/shapes-reasoning-pointer/model --data shapes:val --images 200

Pointer 1 should find the first object a question names, pointer 2 the second (or, for "closest to / farthest
from", the object meant): `question_boxes` of the Shapes VQA rows (vl.data.shapes.truth.question_objects).
A type whose pointers aim right but whose answers stay at chance needs a better read of what they found; a
type whose pointers miss needs better aiming. Rows without a box for a pointer are not counted for it.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import torch
from datasets import Image

from vl.data.specs import open_vqa
from vl.experiment import ExperimentConfig
from vl.heads.fusion import PointerFusion, box_cells
from vl.metrics import normalize_answer
from vl.modeling import VLModel
from vl.processing import VLProcessor
from vl.tasks.vqa import pad_boxes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path, help="a trained model folder whose VQA head has fusion 'pointer'")
    parser.add_argument("--head", default="vqa")
    parser.add_argument("--data", default="shapes:val")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("bench/results/pointer_aim.json"))
    args = parser.parse_args()
    model, processor = VLModel.from_pretrained(args.model).eval(), VLProcessor.from_pretrained(args.model)
    head = model.heads[args.head]
    if not isinstance(head.fusion, PointerFusion):
        raise SystemExit(f"the {args.head} head of {args.model} has fusion '{head.cfg.fusion}', not 'pointer'")
    rows = open_vqa(args.data, ExperimentConfig().data, args.images).cast_column("image", Image())
    hits: dict[str, list[list[bool]]] = defaultdict(lambda: [[], [], []])  # per type: pointer 1, pointer 2, answer right
    by_image: dict[int, list[dict]] = defaultdict(list)
    for row in rows:
        by_image[row["image_id"]].append(row)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        for group in by_image.values():
            tokens = model.encoder(processor.visual_inputs([group[0]["image"]])["pixel_values"])
            q = processor.encode_texts([r["question"] for r in group], head.cfg.max_len)
            fused, pointers = head.fusion.forward_with_pointers(q["ids"], q["mask"], tokens, torch.zeros(len(group), dtype=torch.long))
            answers = head.classifier(fused[:, 0]).argmax(-1).tolist()
            boxes, present = pad_boxes([r["question_boxes"] for r in group])
            side = int(round(pointers.size(-1) ** 0.5))
            for i, row in enumerate(group):
                for k in range(min(2, boxes.size(1))):
                    if present[i, k]:
                        target = box_cells(boxes[i, k], side)
                        hits[row["question_type"]][k].append(bool(target[pointers[i, k].float().argmax()] > 0))
                right = head.cfg.answers[answers[i]] == normalize_answer(row["multiple_choice_answer"])
                hits[row["question_type"]][2].append(right)
    table = {t: {name: (sum(v) / len(v) if v else None) for name, v in zip(("pointer1", "pointer2", "answer"), h)} for t, h in sorted(hits.items())}
    print(f"{'question type':20} {'pointer 1 in box':>16} {'pointer 2 in box':>16} {'answer right':>13}")
    for t, r in table.items():
        cells = [f"{r[k]:16.3f}" if r[k] is not None else f"{'-':>16}" for k in ("pointer1", "pointer2")]
        print(f"{t:20} {cells[0]} {cells[1]} {r['answer']:13.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "types": table}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
