"""Single- vs multi-task at equal images seen per head: is a head better for sharing its encoder?

Every arm trains the demo's recipe (configs/shapes/demo.yaml) with train.share_images, so each head
sees the same 32 images a step whether it trains alone or beside the others: caption alone, VQA alone,
tags alone, and caption + VQA + tags. Same steps, same learning rate and schedule, seeds 0, 1, 2.
Each model is scored on the first 300 test images (caption CIDEr and claims-true rate, official VQA
accuracy, tag mAP at thresholds tuned on val); the table shows mean ± std over the seeds.

    python bench/multitask_control.py                     # 4 arms x 3 seeds x 400 steps: ~45 min on 2 cores
    python bench/multitask_control.py --steps 100 --seeds 0 --arms caption,all   # a quick look
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
import yaml

from tasks.demo import score_heads
from tasks.train import main as train
from vl.config import load_config
from vl.experiment import ExperimentConfig
from vl.modeling import VLModel
from vl.processing import VLProcessor

CONFIG = Path("configs/shapes/demo.yaml")
ARMS = {"caption": ["caption"], "vqa": ["vqa"], "tag": ["tag"], "all": ["caption", "vqa", "tag"]}
METRICS = {"caption": ["CIDEr", "all_claims_true"], "vqa": ["accuracy", "relational", "non-relational"], "tag": ["mAP"]}


def run_arm(heads: list[str], seed: int, steps: int, out: Path) -> dict[str, float]:
    """Train the demo recipe with only `heads`, then score them on the test images."""
    recipe = yaml.safe_load(CONFIG.read_text())
    recipe["model"]["heads"] = {h: recipe["model"]["heads"][h] for h in heads}
    recipe["tasks"] = {h: recipe["tasks"][h] for h in heads}
    config = out.with_suffix(".yaml")
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(yaml.safe_dump(recipe))
    overrides = [f"train.output_dir={out}", f"train.seed={seed}", f"train.steps={steps}", f"train.eval_every={steps}", f"train.save_every={steps}"]
    if code := train(["--config", str(config), *overrides]):
        raise SystemExit(f"training {heads} (seed {seed}) failed with exit code {code}")
    cfg = load_config(ExperimentConfig, out / "config.yaml")
    model, processor = VLModel.from_pretrained(out / "model").eval(), VLProcessor.from_pretrained(out / "model")
    bf16 = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    _, _, _, reports = score_heads(model, processor, cfg, "shapes:test", 300, bf16, metrics=("CIDEr",))
    scores = {}
    if "caption" in reports:
        s = reports["caption"].scores
        scores.update({"caption CIDEr": s["metrics"]["CIDEr"], "caption all_claims_true": 100 * s["truth"]["all_claims_true"]})
    if "vqa" in reports:
        scores.update({f"vqa {k}": reports["vqa"].scores["summary"][k] for k in METRICS["vqa"]})
    if "tag" in reports:
        scores["tag mAP"] = reports["tag"].scores["mAP"]
    return scores


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--arms", default=",".join(ARMS), help=f"a subset of {','.join(ARMS)}")
    p.add_argument("--out", type=Path, default=Path("bench/results/multitask_control.json"))
    args = p.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    results: dict[str, list[dict[str, float]]] = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for arm in args.arms.split(","):
            for seed in seeds:
                t = time.perf_counter()
                results.setdefault(arm, []).append(run_arm(ARMS[arm], seed, args.steps, Path(tmp) / f"{arm}-{seed}"))
                print(f"{arm} seed {seed}: {results[arm][-1]} ({(time.perf_counter() - t) / 60:.1f} min)", flush=True)
                args.out.parent.mkdir(parents=True, exist_ok=True)  # after every run: a long bench keeps what it measured
                args.out.write_text(json.dumps({"steps": args.steps, "seeds": seeds, "images_per_step": 32, "results": results}, indent=1))
    metrics = sorted({m for runs in results.values() for r in runs for m in r})
    print(f"\n{args.steps} steps x 32 images per head, seeds {args.seeds}; test (300 images), mean ± std")
    print("| metric | " + " | ".join(f"{a} alone" if a != "all" else "caption + vqa + tag" for a in results) + " |")
    print("|---|" + "---:|" * len(results))
    for m in metrics:
        cells = []
        for runs in results.values():
            values = [r[m] for r in runs if m in r]
            cells.append(f"{statistics.mean(values):.3f} ± {statistics.stdev(values) if len(values) > 1 else 0:.3f}" if values else "–")
        print(f"| {m} | " + " | ".join(cells) + " |")
    print(f"done in {(time.perf_counter() - start) / 60:.1f} min; runs in {args.out}")


if __name__ == "__main__":
    main()
