"""`make demo`: train a captioner on the Shapes world, score it against a baseline, show captions.

Trains configs/shapes/caption.yaml (bf16 where the CPU has native bf16, else fewer fp32 steps, so it
stays within ~10 minutes on 2 cores), generates captions for the 1,000 test images, prints the COCO
caption metrics next to a baseline that always says the most frequent training caption, and writes
demo/captions.png (test images with generated and reference captions).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

import torch

from tasks.common.cli import cli
from tasks.train import main as train
from vl.config import load_config
from vl.data.preview import image_grid
from vl.data.schema import write_json
from vl.data.specs import open_captions, read_image
from vl.experiment import ExperimentConfig
from vl.metrics import caption_scores, format_table
from vl.modeling import VLModel
from vl.processing import VLProcessor
from vl.tasks.caption import caption_images

CONFIG = Path("configs/shapes/caption.yaml")
OUT = Path("demo")


@cli
def main(argv: list[str] | None = None) -> int:
    start = time.perf_counter()
    bf16 = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    overrides = [f"train.output_dir={OUT / 'run'}", f"train.mixed_precision={'bf16' if bf16 else 'no'}"]
    if not bf16:
        overrides.append("train.steps=700")  # fp32 trains ~1.5x slower here
    if code := train(["--config", str(CONFIG), *overrides]):
        return code
    cfg = load_config(ExperimentConfig, OUT / "run" / "config.yaml")
    model, processor = VLModel.from_pretrained(OUT / "run" / "model").eval(), VLProcessor.from_pretrained(OUT / "run" / "model")
    test = open_captions("shapes:test", cfg.data)
    print(f"captioning {len(test)} test images ...")
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        preds, refs = caption_images(model, processor, test, cfg, batch_size=100)
    train_captions = Counter(c for caps in open_captions("shapes:train", cfg.data)["captions"] for c in caps)
    frequent = train_captions.most_common(1)[0][0]
    model_scores = caption_scores(refs, preds)
    baseline_scores = caption_scores(refs, {i: frequent for i in preds})
    print(format_table({"model": model_scores["metrics"], "baseline": baseline_scores["metrics"]}, model_scores["skipped"]))
    print(f'baseline caption: "{frequent}"')
    write_json({"model": model_scores, "baseline": {**baseline_scores, "caption": frequent}}, OUT / "metrics.json")
    write_json([{"image_id": i, "caption": c} for i, c in preds.items()], OUT / "captions_test.json")
    rows = [test[i] for i in range(16)]
    grid = image_grid(
        [read_image(r["image"]) for r in rows],
        [[f"model: {preds[r['image_id']]}", f"ref: {r['captions'][0]}"] for r in rows],
        OUT / "captions.png",
    )
    cider, base = model_scores["metrics"]["CIDEr"], baseline_scores["metrics"]["CIDEr"]
    print(
        f"demo done in {(time.perf_counter() - start) / 60:.1f} min: CIDEr {cider:.3f} vs baseline {base:.3f} "
        f"({cider / max(base, 1e-9):.1f}x); captions in {grid}, scores in {OUT / 'metrics.json'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
