"""What the pipeline costs over calling the model: pipeline("image-captioning") against processor +
model.generate + batch_decode on the same images, measured alternately in one run (medians of --reps).

    python bench/pipeline_speed.py --model demo/run/model                 # a trained model
    python bench/pipeline_speed.py                                        # the demo's shapes, untrained

Target (issue 15): a batched pipeline call within 10% of model.generate on the same batch.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from machine import cpu_name
from transformers import pipeline

import vl  # noqa: F401 (registers the pipelines)
from vl.data.shapes.dataset import build_dataset
from vl.modeling import VLConfig, VLModel
from vl.processing import VLProcessor, image_processor, train_tokenizer


def demo_shaped_model(folder: Path) -> Path:
    """An untrained model of the demo's shapes (conv-stem ViT 4 x 192, caption decoder 3 x 192) with a
    tokenizer trained on Shapes captions: it writes max_new_tokens every time, so both arms do equal work."""
    rows = build_dataset(splits=["val"])["val"]
    processor = VLProcessor(image_processor(64), train_tokenizer([c for caps in rows["captions"] for c in caps], 1000))
    encoder = {"type": "vit", "image_size": 64, "patch_size": 8, "stem": "conv", "dim": 192, "depth": 4, "heads": 4, "layer_scale": 0.1}
    heads = {"caption": {"type": "caption", "dim": 192, "depth": 3, "heads": 4, "max_len": 32, **processor.caption_head_ids()}}
    torch.manual_seed(0)
    VLModel(VLConfig(encoder=encoder, heads=heads)).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a trained model folder with a caption head (default: the demo's shapes, untrained)")
    parser.add_argument("--batch-sizes", default="1,32")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--max-new-tokens", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("bench/results/pipeline_speed.json"))
    args = parser.parse_args()
    folder = args.model or demo_shaped_model(Path(tempfile.mkdtemp()) / "model")
    captioner = pipeline("image-captioning", model=str(folder))
    model, processor = captioner.model, captioner.processor
    images = [row["image"] for row in build_dataset(splits=["test"])["test"].select(range(64))]
    results = {
        "cpu": cpu_name(),
        "torch_threads": torch.get_num_threads(),
        "model": str(args.model or "demo-shaped, untrained"),
    }
    for b in (int(x) for x in args.batch_sizes.split(",")):
        batch = images[:b]

        def direct() -> list[str]:
            pixels = processor(images=batch)["pixel_values"]
            return processor.batch_decode(model.generate(pixels, task=captioner.head, max_new_tokens=args.max_new_tokens))

        def piped() -> list[str]:
            out = captioner(batch if b > 1 else batch[0], batch_size=b, max_new_tokens=args.max_new_tokens)
            return [o[0]["generated_text"] for o in (out if b > 1 else [out])]

        assert direct() == piped(), "the pipeline and the direct call disagree"
        times: dict[str, list[float]] = {"direct": [], "pipeline": []}
        for _ in range(args.reps):
            for name, fn in (("direct", direct), ("pipeline", piped)):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        d, p = statistics.median(times["direct"]), statistics.median(times["pipeline"])
        results[f"batch_{b}"] = {"direct_s": d, "pipeline_s": p, "overhead": p / d - 1}
        print(
            f"batch {b:3}: processor + model.generate + decode {d * 1000:7.1f} ms, pipeline {p * 1000:7.1f} ms: overhead {100 * (p / d - 1):+.1f}%", flush=True
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
