"""Clips per second of our video encoder against HF TimesformerModel at equal size, and against running
the image encoder frame by frame, all in the same run (interleaved rounds, medians).

    python bench/video_speed.py                       # 8 frames of 64 px, 4 x 192, batch 8, fp32 and bf16
    python bench/video_speed.py --frames 16 --batch 4 --out bench/results/video_speed.json
    python bench/video_speed.py --compile             # adds ours and HF under torch.compile (inference)

Equal size: the same patch embedding (8 px patches), width, depth, heads and MLP ratio, divided space-time
attention in both (TimesformerConfig(attention_type="divided_space_time")); ours without its conv stem
(`stem: patch`) so the parameter counts match. "frame by frame" is our encoder with `attention: frames`:
the image ViT on each frame, no temporal attention. Inference is a no-grad forward; training a forward,
backward and AdamW step on the mean of the output tokens.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from pathlib import Path

import torch
from machine import machine
from transformers import TimesformerConfig, TimesformerModel

from vl.encoders import build_encoder


def encoders(args: argparse.Namespace) -> dict[str, torch.nn.Module]:
    spec = {"type": "video_vit", "frames": args.frames, "image_size": args.size, "patch_size": 8, "stem": "patch"}
    spec |= {"dim": args.dim, "depth": args.depth, "heads": args.heads}
    hf = TimesformerConfig(
        image_size=args.size,
        patch_size=8,
        num_frames=args.frames,
        hidden_size=args.dim,
        num_hidden_layers=args.depth,
        num_attention_heads=args.heads,
        intermediate_size=4 * args.dim,
        attention_type="divided_space_time",
    )
    return {"ours": build_encoder(spec), "HF Timesformer": TimesformerModel(hf), "frame by frame (ours)": build_encoder({**spec, "attention": "frames"})}


def interleaved(fns: dict[str, callable], rounds: int) -> dict[str, float]:
    """Median seconds per call of each fn, round-robin so machine-load drift hits all alike."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def run(model: torch.nn.Module, clips: torch.Tensor, precision: str, train: bool):
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16" else contextlib.nullcontext
    hf = isinstance(getattr(model, "_orig_mod", model), TimesformerModel)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)

    def forward() -> torch.Tensor:
        return model(pixel_values=clips).last_hidden_state if hf else model(clips)

    def infer():
        model.eval()
        with torch.no_grad(), autocast():
            forward()

    def step():
        model.train()
        with autocast():
            loss = forward().float().mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step if train else infer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--dim", type=int, default=192)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--compile", action="store_true", help="also time ours and HF under torch.compile (inference only)")
    p.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
    args = p.parse_args()
    torch.manual_seed(0)
    models = encoders(args)
    if args.compile:
        models |= {f"{name}, compiled": torch.compile(models[name]) for name in ("ours", "HF Timesformer")}
    params = {name: sum(q.numel() for q in m.parameters()) for name, m in models.items()}
    clips = torch.randn(args.batch, args.frames, 3, args.size, args.size)
    print(f"{machine()}; batch {args.batch} clips of {args.frames} x {args.size} px; dim {args.dim}, depth {args.depth}, heads {args.heads}")
    print("parameters: " + ", ".join(f"{n} {v / 1e6:.2f}M" for n, v in params.items()))
    rows = []
    for precision in ("fp32", "bf16"):
        for train in (False,) if args.compile else (False, True):
            seconds = interleaved({name: run(m, clips, precision, train) for name, m in models.items()}, args.rounds)
            what = f"{'training' if train else 'inference'} {precision}"
            rates = {name: args.batch / s for name, s in seconds.items()}
            base = rates["HF Timesformer"]
            print(f"{what:20} " + "  ".join(f"{name} {r:7.1f} clips/s ({r / base:.2f}x)" for name, r in rates.items()))
            rows.append({"workload": what, "clips_per_s": rates, "vs_hf": {n: r / base for n, r in rates.items()}})
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"machine": machine(), "args": vars(args) | {"out": str(args.out)}, "params": params, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
