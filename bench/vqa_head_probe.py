"""Is it the encoder or the question head that learns slowly? Fresh VQA heads on a trained, frozen encoder.

Every arm takes the encoder of a trained model (its weights frozen, eval mode) and trains a new VQA head
of one fusion kind (vl.heads.fusion: cross, joint, film, pointer) on the Shapes questions for the same number
of steps, then scores it on validation images (official VQA accuracy, per question family). If
the heads stay near the answer prior on an encoder that already tags every color and shape, the time
goes into the head learning to bind question words to image regions, not into the encoder.

    python bench/vqa_head_probe.py --encoder runs/shapes-reasoning/model            # 3 arms x 400 steps
    python bench/vqa_head_probe.py --encoder DIR --fusions cross --steps 200 --questions-per-image 8
    python bench/vqa_head_probe.py --encoder DIR --fusions pointer --grounding-weight 0   # pointers not taught by boxes
    python bench/vqa_head_probe.py --encoder DIR --fusions pointer,pointer+relations     # + explicit distance/difference terms
    python bench/vqa_head_probe.py --encoder DIR --fusions pointer+relations+find        # + FiLM on pointer 1's find
    python bench/vqa_head_probe.py --encoder DIR --fusions pointer+relations+find+kinds  # + pointers taught the kinds counted
"""

from __future__ import annotations

import argparse
import json
import math
import re
import time
from collections import Counter, defaultdict
from pathlib import Path

import torch
import yaml
from accelerate import Accelerator
from accelerate.utils import send_to_device
from safetensors import safe_open

from tasks.common.multitask import MultiTask
from vl.config import from_dict
from vl.experiment import ExperimentConfig
from vl.processing import VLProcessor

COLORS = re.compile(r"\b(red|orange|yellow|green|cyan|blue|purple)\b")
FUSION_SHAPES = {"cross": {"depth": 2}, "joint": {"depth": 2}, "film": {"depth": 4}, "pointer": {"depth": 4}}


def encoder_weights(folder: Path) -> dict[str, torch.Tensor]:
    """The encoder's tensors of a saved model: its heads may be of a kind this version no longer builds."""
    weights = {}
    for file in sorted(folder.glob("model*.safetensors")):
        with safe_open(file, "pt") as f:
            weights.update({k.removeprefix("encoder."): f.get_tensor(k) for k in f.keys() if k.startswith("encoder.")})
    return weights


def probe(
    encoder_dir: Path,
    fusion: str,
    steps: int,
    questions: int,
    lr: float,
    dim: int,
    eval_images: int,
    out: Path,
    coords: int = 0,
    grounding_weight: float = 1.0,
    pointer_relations: bool = False,
    workers: int = 0,
    save: Path | None = None,
    pointer_film_on_find: bool = False,
    grounding_kinds: bool = False,
) -> tuple[dict, dict]:
    """Train a fresh `fusion` VQA head on the frozen encoder of `encoder_dir`: (the question-only prior,
    the head's training time, final loss and val scores)."""
    run = yaml.safe_load((encoder_dir / "train_config.yaml").read_text())
    if coords:  # fixed grid-position features appended to the frozen encoder's tokens (no weights)
        run["model"]["encoder"]["coords"] = coords
    run["model"]["heads"] = {"vqa": {"type": "vqa", "dim": dim, "heads": 4, "fusion": fusion, **FUSION_SHAPES[fusion]}}
    if fusion == "pointer":  # taught to aim by the questions' boxes, unless weight 0 (the control)
        run["model"]["heads"]["vqa"].update(
            grounding_weight=grounding_weight,
            pointer_relations=pointer_relations,
            pointer_film_on_find=pointer_film_on_find,
            grounding_kinds=grounding_kinds,
        )
    run["tasks"] = {"vqa": {"questions_per_image": questions}}
    run["train"] = {**run["train"], "output_dir": str(out), "share_images": True, "mixed_precision": "bf16"}
    run["data"].update(eval_images=eval_images, num_workers=workers)
    run["model"]["tokenizer"] = {"path": str(encoder_dir)}  # the trained model's tokenizer, not a new one
    cfg = from_dict(ExperimentConfig, run)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    accelerator = Accelerator(cpu=device == "cpu", mixed_precision="bf16")
    task = MultiTask(cfg, accelerator)
    model = task.model.to(device)
    model.encoder.load_state_dict(encoder_weights(encoder_dir))
    model.encoder.requires_grad_(False).eval()
    head = model.heads["vqa"]
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=0.05)
    loader = task.train_loaders(0)["images"]
    batches = (batch for epoch in range(10**6) for batch in loader)
    losses, start = [], time.perf_counter()
    for _ in range(steps):
        batch = send_to_device(next(batches)["vqa"], device)
        with torch.autocast(device, dtype=torch.bfloat16):
            with torch.no_grad():
                tokens = model.encoder(batch["pixel_values"])
            loss = head(tokens, batch)["loss"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)  # as training clips (train.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
    seconds = time.perf_counter() - start
    scores = task.evaluate(model)
    if save is not None:  # a model folder bench/pointer_aim.py can read
        model.save_pretrained(save)
        VLProcessor.from_pretrained(encoder_dir).save_pretrained(save)
    tail = losses[-50:]
    scores = {k.removeprefix("val/vqa/"): v for k, v in scores.items()}
    return question_only_prior(task), {"train_seconds": seconds, "final_loss": sum(tail) / len(tail), **scores}


def question_only_prior(task: MultiTask) -> dict[str, float]:
    """What a head that ignores the image reaches: the answer entropy (the soft cross-entropy floor)
    and the accuracy of the most frequent answer, given the question with its color words blanked
    (colors name the object; without the image they carry no information)."""
    rows = task.parts["vqa"].train_rows
    by_template: dict[str, Counter] = defaultdict(Counter)
    for question, answer in zip(rows["question"], rows["multiple_choice_answer"]):
        by_template[COLORS.sub("C", question)][answer] += 1
    n = sum(sum(c.values()) for c in by_template.values())
    entropy = sum(-sum(v * math.log(v / sum(c.values())) for v in c.values()) for c in by_template.values()) / n
    return {"loss": entropy, "accuracy": 100 * sum(max(c.values()) for c in by_template.values()) / n, "templates": len(by_template)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", required=True, type=Path, help="a trained model folder (its encoder is frozen and reused)")
    parser.add_argument("--fusions", default="cross,joint,film")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--questions-per-image", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--dim", type=int, default=192)
    parser.add_argument("--eval-images", type=int, default=200)
    parser.add_argument("--coords", type=int, default=0, help="append this many grid-position features to the encoder's tokens")
    parser.add_argument("--grounding-weight", type=float, default=1.0, help="fusion pointer: weight of its loss against question_boxes (0: none)")
    parser.add_argument("--pointer-relations", action="store_true", help="fusion pointer: its explicit distance and difference terms")
    parser.add_argument("--workers", type=int, default=0, help="data loader worker processes")
    parser.add_argument("--save", type=Path, default=None, help="save each arm's model in SAVE/<arm> (for bench/pointer_aim.py)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/vqa_head_probe.json"))
    args = parser.parse_args()
    results = {}
    for fusion in args.fusions.split(","):
        kind, *options = fusion.split("+")  # "pointer+relations+find+kinds": relation terms, FiLM on pointer 1's find, kinds taught
        arm = (
            kind,
            args.steps,
            args.questions_per_image,
            args.lr,
            args.dim,
            args.eval_images,
            Path("/tmp/vqa_head_probe"),
            args.coords,
            args.grounding_weight,
            args.pointer_relations or "relations" in options,
            args.workers,
            args.save / fusion if args.save else None,
            "find" in options,
            "kinds" in options,
        )
        prior, r = probe(args.encoder, *arm)
        if not results:
            print(f"question-only prior (the image ignored): loss {prior['loss']:.3f}, accuracy {prior['accuracy']:.2f} ({prior['templates']} templates)")
            results["question_only_prior"] = prior
        results[fusion] = r
        print(
            f"{fusion:6} {args.steps} steps in {r['train_seconds']:.0f}s: loss {r['final_loss']:.3f}, accuracy {r['accuracy']:.2f} "
            f"(non-rel {r['non-relational']:.1f}, rel {r['relational']:.1f}, counting {r['counting']:.1f}, "
            f"existence {r['existence']:.1f}, comparison {r['comparison']:.1f})\n         per type: "
            + ", ".join(f"{k[5:]} {v:.1f}" for k, v in r.items() if k.startswith("type/")),
            flush=True,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
