"""Encoder probes: how fast does an encoder, trained from scratch, learn which shapes are in a Shapes
image? A linear read-out of the pooled tokens predicts the presence of each shape (multi-label), with
direct supervision; what it reaches in a few hundred steps says whether the stem and the blocks can
see shapes at all (the question behind the conv stem and LayerScale, bench/RESULTS.md).

    python bench/probes.py                      # every arm, ~10 min on 2 CPU cores
    python bench/probes.py --arms conv-stem-mean,conv-stem-layerscale-mean --train 2000

Prints, per arm, presence accuracy on the validation images at each report step, next to the
always-absent baseline.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import ViTConfig, ViTModel

from vl.data.shapes import ShapesConfig
from vl.data.shapes.dataset import build_dataset
from vl.encoders import build_encoder

VIT = {"type": "vit", "image_size": 64, "patch_size": 8, "dim": 256, "depth": 4, "heads": 4}


def small_cnn() -> nn.Module:
    """Five 3x3 convolutions (three of stride 2) down to an 8x8 grid of 256-d tokens."""
    layers, width = [], 3
    for out, stride in ((32, 1), (64, 2), (128, 2), (128, 1), (256, 2)):
        layers += [nn.Conv2d(width, out, 3, stride, 1), nn.BatchNorm2d(out), nn.GELU()]
        width = out
    return nn.Sequential(*layers)


class Tokens(nn.Module):
    """Any encoder as (B, N, D) tokens: ours (forward_features), HF's (last_hidden_state) or a CNN's map."""

    def __init__(self, encoder: nn.Module, kind: str):
        super().__init__()
        self.encoder, self.kind = encoder, kind

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        if self.kind == "vl":
            return self.encoder.forward_features(pixels)
        if self.kind == "hf":
            return self.encoder(pixel_values=pixels).last_hidden_state
        return self.encoder(pixels).flatten(2).transpose(1, 2)


ARMS = {  # name: (encoder factory, pooling, steps)
    "vit-patch-mean": (lambda: Tokens(build_encoder(VIT), "vl"), "mean", 400),
    "hf-vit-mean": (
        lambda: Tokens(
            ViTModel(
                ViTConfig(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024, image_size=64, patch_size=8),
                add_pooling_layer=False,
            ),
            "hf",
        ),
        "mean",
        400,
    ),
    "vit-patch-max": (lambda: Tokens(build_encoder(VIT), "vl"), "max", 200),
    "small-cnn-max": (lambda: Tokens(small_cnn(), "cnn"), "max", 200),
    "conv-stem-only-mean": (lambda: Tokens(build_encoder({**VIT, "stem": "conv", "depth": 0}), "vl"), "mean", 200),
    "conv-stem-max": (lambda: Tokens(build_encoder({**VIT, "stem": "conv"}), "vl"), "max", 200),
    "conv-stem-mean": (lambda: Tokens(build_encoder({**VIT, "stem": "conv"}), "vl"), "mean", 400),
    "conv-stem-layerscale-mean": (lambda: Tokens(build_encoder({**VIT, "stem": "conv", "layer_scale": 0.1}), "vl"), "mean", 300),
}


def shapes_data(n_train: int, n_val: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
    """(train pixels, train presence, val pixels, val presence, shape names): pixels in [-1, 1]."""
    cfg = ShapesConfig(splits={"train": n_train, "val": n_val})
    data = build_dataset(cfg, splits=["train", "val"])
    shapes = list(cfg.shapes)

    def tensors(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        rows = data[split]
        pixels = torch.stack([torch.from_numpy(np.array(image.convert("RGB"))) for image in rows["image"]])
        presence = torch.tensor([[float(any(o["shape"] == s for o in scene["objects"])) for s in shapes] for scene in rows["scene"]])
        return pixels.permute(0, 3, 1, 2).float().div(127.5).sub(1), presence

    return *tensors("train"), *tensors("val"), shapes


def run_arm(name: str, data, batch: int, seed: int, bf16: bool) -> list[tuple[int, float]]:
    """Train one arm; (step, val presence accuracy) at every 100 steps and at the end."""
    factory, pooling, steps = ARMS[name]
    train_x, train_y, val_x, val_y, shapes = data
    torch.manual_seed(seed)
    encoder = factory()
    with torch.no_grad():
        dim = encoder(val_x[:1]).size(-1)
    readout = nn.Linear(dim, len(shapes))
    params = [*encoder.parameters(), *readout.parameters()]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.05)
    g = torch.Generator().manual_seed(seed)

    def pooled(x: torch.Tensor) -> torch.Tensor:
        tokens = encoder(x)
        return tokens.amax(1) if pooling == "max" else tokens.mean(1)

    reports = []
    for step in range(1, steps + 1):
        idx = torch.randint(len(train_x), (batch,), generator=g)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = readout(pooled(train_x[idx])).float()
        loss = F.binary_cross_entropy_with_logits(logits, train_y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps:
            encoder.eval()
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                preds = torch.cat([readout(pooled(val_x[i : i + 256])).float() > 0 for i in range(0, len(val_x), 256)])
            encoder.train()
            reports.append((step, (preds == val_y.bool()).float().mean().item()))
    return reports


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, of: {', '.join(ARMS)}")
    p.add_argument("--train", type=int, default=6000, help="training images")
    p.add_argument("--val", type=int, default=1000, help="validation images")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    args = p.parse_args()
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    if unknown := [a for a in arms if a not in ARMS]:
        raise SystemExit(f"unknown arm '{unknown[0]}'; choose from {', '.join(ARMS)}")
    data = shapes_data(args.train, args.val)
    absent = 1 - data[3].mean().item()
    print(f"{args.train} training / {args.val} validation images, shapes {data[4]}, batch {args.batch}, seed {args.seed}, bf16 {not args.fp32}")
    print(f"always-absent baseline: {absent:.1%}")
    for arm in arms:
        start = time.perf_counter()
        reports = run_arm(arm, data, args.batch, args.seed, not args.fp32)
        curve = ", ".join(f"{s}: {a:.1%}" for s, a in reports)
        print(f"{arm:28} {ARMS[arm][1]:4}  {curve}  ({time.perf_counter() - start:.0f}s)", flush=True)


if __name__ == "__main__":
    main()
