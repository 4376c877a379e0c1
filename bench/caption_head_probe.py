"""Can a caption head learn *where* from a trained encoder? Fresh caption heads on a trained, frozen encoder.

Every arm takes the encoder of a trained model (frozen, eval mode) and trains a new caption head on the Shapes
captions for the same number of steps, then reads its captions of validation images with the claim reader
(vl.data.shapes.truth): the share with every claim true, and the share of place and relation claims that hold.
Arms: `plain` (cross-attention only, the recipe's head) and `pointer` (vl.heads.pointer_read, taught by the boxes
of the objects each caption names); `pointer-ungrounded` is the pointer without that teaching (the control
that tells the read from the teaching); `pointer+place-words` also weighs where it found into the words' logits.

    python bench/caption_head_probe.py --encoder runs/shapes-reasoning-pointer-exclude/model --steps 1500
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch
import yaml
from accelerate import Accelerator
from accelerate.utils import send_to_device
from vqa_head_probe import encoder_weights

from tasks.common.multitask import MultiTask
from vl.config import from_dict
from vl.experiment import ExperimentConfig
from vl.metrics import FAST_METRICS

ARMS = {
    "plain": {},
    "pointer": {"pointer": True},
    "pointer-ungrounded": {"pointer": True, "grounding_weight": 0.0},
    "pointer+place-words": {"pointer": True, "pointer_place_words": True},
}


def probe(encoder_dir: Path, arm: str, steps: int, lr: float, eval_images: int, seed: int) -> dict:
    """Train a fresh caption head (the trained model's caption head config, plus the arm's options) on the
    frozen encoder of `encoder_dir`: its training time, final loss and val caption truth (greedy and 3 beams)."""
    run = yaml.safe_load((encoder_dir / "train_config.yaml").read_text())
    run["model"]["heads"] = {"caption": {**run["model"]["heads"]["caption"], **ARMS[arm]}}
    run["tasks"] = {"caption": {}}
    run["train"] = {**run["train"], "output_dir": f"/tmp/caption_head_probe/{arm}", "share_images": True, "mixed_precision": "bf16", "seed": seed}
    run["data"].update(eval_images=eval_images)
    run["model"]["tokenizer"] = {"path": str(encoder_dir)}  # the trained model's tokenizer, not a new one
    cfg = from_dict(ExperimentConfig, run)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(seed)
    task = MultiTask(cfg, Accelerator(cpu=device == "cpu", mixed_precision="bf16"))
    model = task.model.to(device)
    model.encoder.load_state_dict(encoder_weights(encoder_dir))
    model.encoder.requires_grad_(False).eval()
    head = model.heads["caption"]
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=0.05)
    loader = task.train_loaders(0)["images"]
    batches = (batch for epoch in range(10**6) for batch in loader)
    losses, grounding, start = [], [], time.perf_counter()
    for _ in range(steps):
        batch = send_to_device(next(batches)["caption"], device)
        with torch.autocast(device, dtype=torch.bfloat16):
            with torch.no_grad():
                tokens = model.encoder(batch["pixel_values"])
            out = head(tokens, batch)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)  # as training clips (train.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(out["loss"].detach()))
        grounding.append(float(out.get("loss_ground", torch.zeros(())).detach()))
    seconds = time.perf_counter() - start
    model.eval()
    kind = task.parts["caption"]
    tail = min(50, steps)
    result = {"train_seconds": seconds, "final_loss": sum(losses[-tail:]) / tail, "final_grounding_loss": sum(grounding[-tail:]) / tail}
    for beams in (1, 3):
        kind.generation = replace(kind.generation, num_beams=beams)
        truth = kind.report(kind.eval_rows, kind.infer(model, kind.eval_rows), FAST_METRICS).scores
        result[f"beams{beams}"] = {"CIDEr": truth["metrics"]["CIDEr"], **truth["truth"]}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", required=True, type=Path, help="a trained model folder (its encoder is frozen and reused)")
    parser.add_argument("--arms", default="plain,pointer", help=f"comma-separated, of {', '.join(ARMS)}")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-images", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/results/caption_head_probe.json"))
    args = parser.parse_args()
    results = {}
    for arm in args.arms.split(","):
        r = results[arm] = probe(args.encoder, arm, args.steps, args.lr, args.eval_images, args.seed)
        for beams in (1, 3):
            t = r[f"beams{beams}"]
            print(
                f"{arm:18} {args.steps} steps in {r['train_seconds']:.0f}s (loss {r['final_loss']:.3f}, grounding {r['final_grounding_loss']:.3f}), "
                f"{beams} beam(s): all claims true {100 * t['all_claims_true']:.1f}%, place {100 * t.get('true/place', float('nan')):.1f}%, "
                f"relation {100 * t.get('true/relation', float('nan')):.1f}%, exists {100 * t.get('true/exists', float('nan')):.1f}%, CIDEr {t['CIDEr']:.3f}",
                flush=True,
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
