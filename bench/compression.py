"""One table, measured in one run: a trained teacher and each compression of it (python -m tasks.compress),
with bf16 autocast of the teacher as the speed peer on CPUs with native bf16.

    python bench/compression.py --model runs/shapes-reasoning/model \
        --trained "distilled student=runs/shapes-student/model" "student, no teacher=runs/shapes-student-alone/model" \
                  "pruned 50% + fine-tune=runs/reasoning-pruned50-tuned/model" \
        --combine "distilled student" "pruned 50% + fine-tune"

Columns: parameters, weights file MB, encoder GFLOPs per image, greedy caption latency at batch 1 (ms,
median over --rounds images) and captions/s at batch 32 (23 new tokens, the same images for all), caption
CIDEr and claim truth, VQA accuracy and tag mAP on the first --images validation images (tasks.evaluate).
Latencies are medians over --rounds rounds in which every model is timed once (interleaved).
Rows: teacher fp32, teacher bf16, lowrank (energy 0.9), int8 dynamic, int8 weight-only, lowrank + int8,
pruned to --flops-ratio without fine-tuning, then each --trained NAME=FOLDER (models trained elsewhere:
a distilled student, its no-teacher control, a fine-tuned pruned model) and each --combine NAME (that
trained row, int8-quantized). `--compile-decode` adds each row again timed with the torch.compile'd
static-cache decode step (", compiled decode"; timed, not scored); `--only NAME...` keeps those rows. Early exit has its
own benchmark, bench/early_exit.py.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from machine import cpu_name

from tasks.compress import main as compress_main
from tasks.compress import size
from tasks.evaluate import main as evaluate_main
from vl.data.shapes.dataset import build_dataset
from vl.modeling import VLModel
from vl.processing import VLProcessor

NEW_TOKENS = 23
COMPILED = ", compiled decode"  # the suffix of rows timed with generate(compile=True)


def latency(model: VLModel, pixels: torch.Tensor, reps: int, bf16: bool = False, compile: bool = False) -> float:
    """Median seconds of greedy caption decoding of the batch (fixed length: no early stop at EOS);
    compile: with the torch.compile'd static-cache decode step (vl.generation)."""
    times = []
    for _ in range(reps):
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
            start = time.perf_counter()
            model.generate(pixels, task="caption", num_beams=1, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, compile=compile)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def scores(folder: Path, images: int, task: str, out: Path, bf16: bool = False) -> dict:
    """tasks.evaluate's scores of one head on the first `images` validation images."""
    argv = ["--model", str(folder), "--task", task, "--data", "shapes:val", "--max-images", str(images), "--metrics", "CIDEr", "--out", str(out)]
    assert evaluate_main(argv + (["--bf16"] if bf16 else [])) == 0
    return json.loads(out.read_text())


def timing_batch(model: Path) -> torch.Tensor:
    """The 32 validation images every model is timed on, as the model's processor prepares them."""
    rows = build_dataset(splits=["val"])["val"].select(range(32))
    return VLProcessor.from_pretrained(model)(images=[r["image"] for r in rows])["pixel_values"]


def timings(variants: list[tuple[str, Path, bool]], batch: torch.Tensor, rounds: int) -> dict[str, tuple[float, float]]:
    """{name: (median seconds at batch 1, at batch 32)}, every model timed once per round, round after
    round (interleaved), so a slow minute of a shared machine lands on all of them alike. A name ending
    in COMPILED decodes with the compiled step."""
    models = {name: (VLModel.from_pretrained(folder).eval(), bf16, name.endswith(COMPILED)) for name, folder, bf16 in variants}
    b1: dict[str, list[float]] = {name: [] for name in models}
    b32: dict[str, list[float]] = {name: [] for name in models}
    with torch.inference_mode():
        for model, bf16, compiled in models.values():  # warm-up: torchao builds its kernels on first use; compiling, per batch size
            latency(model, batch[:1], 1, bf16, compiled)
            latency(model, batch, 1, bf16, compiled)
        for r in range(rounds):
            for name, (model, bf16, compiled) in models.items():
                b1[name].append(latency(model, batch[r % len(batch) : r % len(batch) + 1], 1, bf16, compiled))
                b32[name].append(latency(model, batch, 1, bf16, compiled))
    return {name: (statistics.median(b1[name]), statistics.median(b32[name])) for name in models}


def measure(name: str, folder: Path, seconds: tuple[float, float], images: int, work: Path, bf16: bool = False) -> dict:
    model = VLModel.from_pretrained(folder).eval()
    params, gflops, _ = size(model)
    tag = "".join(c if c.isalnum() else "_" for c in name)
    if name.endswith(COMPILED):  # timed only: compiled int8 kernels round differently, so its captions are not eager's
        nan = float("nan")
        cap, vqa, tags = {"metrics": {"CIDEr": nan}, "truth": {"all_claims_true": nan}}, {"overall": nan}, {"mAP": nan}
    else:
        cap = scores(folder, images, "caption", work / f"cap_{tag}.json", bf16)
        vqa = scores(folder, images, "vqa", work / f"vqa_{tag}.json", bf16)
        tags = scores(folder, images, "tag", work / f"tag_{tag}.json", bf16)
    return {
        "model": name,
        "params_M": params / 1e6,
        "file_MB": sum(f.stat().st_size for f in folder.glob("*.safetensors")) / 1e6,
        "encoder_GFLOPs": gflops,
        "batch1_ms": 1000 * seconds[0],
        "batch32_captions_per_s": 32 / seconds[1],
        "CIDEr": cap["metrics"]["CIDEr"],
        "all_claims_true": cap["truth"]["all_claims_true"],
        "vqa_accuracy": vqa["overall"],
        "tag_mAP": tags["mAP"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path, help="the teacher: a trained model with caption, vqa and tag heads")
    parser.add_argument("--energy", type=float, default=0.9)
    parser.add_argument("--min-features", default="64", help="int8: quantize Linear layers with both sides at least this")
    parser.add_argument("--flops-ratio", type=float, default=0.5, help="prune: the share of the encoder FLOPs kept")
    parser.add_argument("--trained", nargs="*", default=[], metavar="NAME=FOLDER", help="rows for models trained elsewhere")
    parser.add_argument("--combine", nargs="*", default=[], metavar="NAME", help="--trained rows to add int8-quantized too")
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=15, help="timing rounds (every model once per round); medians are reported")
    parser.add_argument("--out", type=Path, default=Path("bench/results/compression.json"))
    parser.add_argument("--compile-decode", action="store_true", help="also time every row with the torch.compile'd static-cache decode step")
    parser.add_argument("--only", nargs="*", default=None, metavar="NAME", help="only these rows (e.g. 'teacher fp32' 'int8 dynamic')")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="compression-"))
    batch = timing_batch(args.model)
    made = {
        "lowrank": ["lowrank", "--model", str(args.model), "--energy", str(args.energy)],
        "int8 dynamic": ["int8", "--model", str(args.model), "--scheme", "dynamic", "--min-features", args.min_features],
        "int8 weight-only": ["int8", "--model", str(args.model), "--scheme", "weight_only", "--min-features", args.min_features],
        "lowrank + int8": ["int8", "--model", str(work / "lowrank"), "--scheme", "dynamic", "--min-features", args.min_features],
        f"pruned {args.flops_ratio:.0%}, no fine-tune": ["prune", "--model", str(args.model), "--flops-ratio", str(args.flops_ratio)],
    }
    trained = {name: Path(folder) for name, folder in (t.split("=", 1) for t in args.trained)}
    combined = {f"{name} + int8": ["int8", "--model", str(trained[name]), "--scheme", "dynamic", "--min-features", args.min_features] for name in args.combine}
    variants = [("teacher fp32", args.model, False), ("teacher bf16", args.model, True)]
    for group in (made, trained, combined):
        for name, argv in group.items():
            if args.only is not None and name not in args.only and not (name == "lowrank" and "lowrank + int8" in args.only):
                continue
            if isinstance(argv, Path):  # trained elsewhere
                variants.append((name, argv, False))
                continue
            folder = work / "lowrank" if name == "lowrank" else work / "".join(c if c.isalnum() else "_" for c in name)
            assert compress_main([*argv, "--out", str(folder)]) == 0
            variants.append((name, folder, False))
    variants = [v for v in variants if args.only is None or v[0] in args.only]
    if args.compile_decode:
        variants += [(name + COMPILED, folder, bf16) for name, folder, bf16 in variants]
    seconds = timings(variants, batch, args.rounds)
    table = [measure(name, folder, seconds[name], args.images, work, bf16) for name, folder, bf16 in variants]
    base = table[0]
    print(
        f"\nCPU: {cpu_name()}, {torch.get_num_threads()} threads; {args.images} val images; greedy, {NEW_TOKENS} tokens; "
        f"medians of {args.rounds} interleaved rounds"
    )
    print("| model | params (M) | file (MB) | enc GFLOPs | batch 1 (ms) | batch 32 (captions/s) | speed-up b1 / b32 | CIDEr | claims true | VQA | tag mAP |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in table:
        print(
            f"| {r['model']} | {r['params_M']:.2f} | {r['file_MB']:.1f} | {r['encoder_GFLOPs']:.3f} | "
            f"{r['batch1_ms']:.1f} | {r['batch32_captions_per_s']:.1f} | "
            f"{base['batch1_ms'] / r['batch1_ms']:.2f}x / {r['batch32_captions_per_s'] / base['batch32_captions_per_s']:.2f}x | {r['CIDEr']:.3f} | "
            f"{r['all_claims_true']:.3f} | {r['vqa_accuracy']:.2f} | {r['tag_mAP']:.3f} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"cpu": cpu_name(), "threads": torch.get_num_threads(), "rows": table}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
