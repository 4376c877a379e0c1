"""Do bf16 and fp32 decoding give the same captions? Share of test images whose greedy (and beam-3)
captions are identical under bf16 autocast and in fp32, for a trained model.

    python bench/bf16_agreement.py --model demo/run/model [--data shapes:test] [--max-images 1000]
"""

from __future__ import annotations

import argparse

import torch

from vl.config import load_config
from vl.data.specs import open_captions
from vl.experiment import ExperimentConfig
from vl.generation import GenerationConfig
from vl.modeling import VLModel
from vl.processing import VLProcessor
from vl.tasks.caption import caption_images


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--data", default="shapes:test")
    p.add_argument("--max-images", type=int, default=1000)
    args = p.parse_args()
    cfg = load_config(ExperimentConfig, f"{args.model}/train_config.yaml")
    model, processor = VLModel.from_pretrained(args.model).eval(), VLProcessor.from_pretrained(args.model)
    rows = open_captions(args.data, cfg.data, limit=args.max_images)
    for beams in (1, 3):
        cfg.generation = GenerationConfig(max_new_tokens=24, num_beams=beams)
        fp32, _ = caption_images(model, processor, rows, cfg, batch_size=100)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16, _ = caption_images(model, processor, rows, cfg, batch_size=100)
        same = sum(fp32[i] == bf16[i] for i in fp32)
        print(f"beams {beams}: bf16 and fp32 captions identical on {same}/{len(fp32)} images ({same / len(fp32):.1%})")


if __name__ == "__main__":
    main()
