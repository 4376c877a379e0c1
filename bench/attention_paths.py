"""Which attention path is fastest on this CPU at the suite's shapes: PyTorch's fused
scaled_dot_product_attention (flash kernel), its math backend, and two matmuls with a softmax (what
vl.layers.attention uses where this bench shows it wins), fp32 and bf16, inference and training
(forward + backward), in the same run. Also the error of each against fp32 SDPA.

    python bench/attention_paths.py --out bench/results/attention_paths.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from machine import machine
from torch.nn.attention import SDPBackend, sdpa_kernel

from vl.layers import _matmul_attention

# (batch*heads layout, keys): a clip's temporal attention (8 frames), an image's 64 patches (one 8 x 8
# grid), a question fused with an image (17 tokens), a decoding step over 64 image tokens
SHAPES = {
    "temporal, 8 keys": (512, 4, 8, 8, 48),
    "spatial, 64 keys": (64, 4, 64, 64, 48),
    "question, 17 keys": (32, 4, 17, 17, 48),
    "decode step, 1 query x 64 keys": (32, 4, 1, 64, 48),
}


def sdpa(q, k, v):
    return F.scaled_dot_product_attention(q, k, v)


def sdpa_math(q, k, v):
    with sdpa_kernel(SDPBackend.MATH):
        return F.scaled_dot_product_attention(q, k, v)


def matmuls(q, k, v):
    return _matmul_attention(q, k, v, causal=False, dropout=0.0, mask=None)


PATHS = {"SDPA (fused)": sdpa, "SDPA math backend": sdpa_math, "two matmuls + softmax": matmuls}


def timed(fn, shape: tuple[int, ...], dtype: torch.dtype, train: bool, reps: int) -> float:
    b, h, n, m, d = shape
    q = torch.randn(b, h, n, d, dtype=dtype, requires_grad=train)
    k, v = (torch.randn(b, h, m, d, dtype=dtype, requires_grad=train) for _ in range(2))
    times = []
    for _ in range(reps + 2):
        start = time.perf_counter()
        with torch.set_grad_enabled(train):
            y = fn(q, k, v)
            if train:
                y.sum().backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times[2:]) * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=15)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    torch.manual_seed(0)
    print(machine())
    rows = []
    for what, shape in SHAPES.items():
        b, h, n, m, d = shape
        q, k, v = torch.randn(b, h, n, d), torch.randn(b, h, m, d), torch.randn(b, h, m, d)
        reference = sdpa(q, k, v)
        for dtype in (torch.float32, torch.bfloat16):
            errors = {name: (fn(q.to(dtype), k.to(dtype), v.to(dtype)).float() - reference).abs().max().item() for name, fn in PATHS.items()}
            for train in (False, True):
                ms = {name: timed(fn, shape, dtype, train, args.reps) for name, fn in PATHS.items()}
                mode = f"{str(dtype)[6:]} {'training' if train else 'inference'}"
                best = min(ms, key=ms.get)
                print(f"{what:32} {mode:19} " + "  ".join(f"{name} {t:6.2f} ms" for name, t in ms.items()) + f"   fastest: {best}")
                rows.append({"shape": what, "mode": mode, "ms": ms, "max_abs_error": errors})
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
