"""Where does a pointer VQA head aim? Per question type: how often each pointer's most-weighted cell lies in
the box of the object the question means, and how often the answer is right.

    python bench/pointer_aim.py --model runs/shapes-reasoning-pointer/model --data shapes:val --images 200

Pointer 1 should find the first object a question names, pointer 2 the second (or, for "closest to / farthest
from", the object meant): `question_boxes` of the Shapes VQA rows (vl.data.shapes.truth.question_objects).
A type whose pointers aim right but whose answers stay at chance needs a better read of what they found; a
type whose pointers miss needs better aiming. Also per pointer: the softmax weight on its box (is it sharp?),
the distance from its mean position (what the head reads as "where") to the box centre, and how often pointer 2
lands on pointer 1's object. Rows without a box for a pointer are not counted for it. With pointer relations,
also the answer with the relation read dropped (answer_no_relations): which question types lean on it. For
questions about kinds ("how many circles"), the weight each pointer puts on every object of its kind
(`question_kind_boxes`, vl.data.shapes.truth.question_kinds), beside those cells' share of the grid (what a
uniform pointer would put there).
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
from vl.heads.fusion import PointerFusion, box_cells, grid_coordinates
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
    stats: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))  # per type, per measure: one value a row
    by_image: dict[int, list[dict]] = defaultdict(list)
    for row in rows:
        by_image[row["image_id"]].append(row)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        for group in by_image.values():
            tokens = model.encoder(processor.visual_inputs([group[0]["image"]])["pixel_values"])
            q = processor.encode_texts([r["question"] for r in group], head.cfg.max_len)
            fused, pointers, geometry = head.fusion.forward_with_pointers(q["ids"], q["mask"], tokens, torch.zeros(len(group), dtype=torch.long))
            answers = head.answer_logits(fused, q["ids"], q["mask"], geometry).argmax(-1).tolist()
            plain = head.answer_logits(fused, q["ids"], q["mask"]).argmax(-1).tolist() if geometry is not None else None
            boxes, present = pad_boxes([r["question_boxes"] for r in group])
            side = int(round(pointers.size(-1) ** 0.5))
            xy = grid_coordinates(side, side, pointers.float()).flatten(1).T  # (N, 2) cell centres in [-1, 1]
            for i, row in enumerate(group):
                seen = stats[row["question_type"]]
                targets = [box_cells(boxes[i, k], side) if present[i, k] else None for k in range(min(2, boxes.size(1)))]
                for k, target in enumerate(targets):
                    if target is None:
                        continue
                    weights = pointers[i, k].float().softmax(-1)
                    centre = (boxes[i, k, :2] + boxes[i, k, 2:] / 2) * 2 - 1
                    seen[f"pointer{k + 1}"].append(float(target[weights.argmax()] > 0))
                    seen[f"mass{k + 1}"].append(float(weights[target > 0].sum()))
                    seen[f"error{k + 1}"].append(float((weights @ xy - centre).norm()))
                    if k == 1 and targets[0] is not None:  # pointer 2 stuck on pointer 1's object
                        seen["pointer2_on_first"].append(float(targets[0][weights.argmax()] > 0 and target[weights.argmax()] == 0))
                for k in range(2):  # questions about kinds ("how many circles"): the weight on every object of the kind
                    kind = [b for b, p in zip(row.get("question_kind_boxes") or [], row.get("question_kind_pointer") or []) if p == k]
                    if kind:
                        cells = box_cells(torch.tensor(kind), side).amax(0) > 0
                        seen[f"kinds_mass{k + 1}"].append(float(pointers[i, k].float().softmax(-1)[cells].sum()))
                        seen[f"kinds_share{k + 1}"].append(float(cells.float().mean()))
                gold = normalize_answer(row["multiple_choice_answer"])
                seen["answer"].append(float(head.cfg.answers[answers[i]] == gold))
                if plain is not None:
                    seen["answer_no_relations"].append(float(head.cfg.answers[plain[i]] == gold))
    table = {t: {name: sum(v) / len(v) for name, v in sorted(m.items())} for t, m in sorted(stats.items())}
    columns = ("pointer1", "mass1", "error1", "pointer2", "mass2", "error2", "pointer2_on_first", "kinds_mass1", "kinds_share1", "kinds_mass2", "answer")
    columns += ("answer_no_relations",) if head.cfg.pointer_relations else ()
    print(f"{'question type':20} " + " ".join(f"{c:>17}" for c in columns))
    for t, r in table.items():
        print(f"{t:20} " + " ".join(f"{r[c]:17.3f}" if c in r else f"{'-':>17}" for c in columns))
    print("pointerK: top cell in its object's box; massK: softmax weight on the box's cells; errorK: distance from the")
    print("pointer's mean position to the box centre (the image spans [-1, 1]); pointer2_on_first: pointer 2's top cell on pointer 1's object;")
    print("kinds_massK: for questions about kinds, the weight on every object of the kind; kinds_shareK: those cells' share of the grid")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "types": table}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
