"""Why int8 does not speed decoding up on this CPU: one Linear at the caption decoder's shapes, timed with each
kernel this machine offers, in one run (medians of interleaved rounds).

Rows: fp32 (MKL), bf16, torchao int8 dynamic (Int8DynamicActivationInt8WeightConfig) and weight-only
(Int8WeightOnlyConfig), each eager and torch.compile'd (inductor's default options, whose pattern matcher
holds its int8 lowerings), and, for reference, the deprecated `torch.ao.quantization` dynamic Linear (fbgemm),
which vl/compress/int8.py does not use. Each call takes M rows of input (1: greedy at batch 1, 3: beam-3,
32: a batch) at the decoder's widths (dim -> 4 dim and 4 dim -> dim in the MLP, dim -> vocabulary).

    python bench/int8_kernels.py --dim 192 --vocab 1000 --out bench/results/int8_kernels.json
"""

from __future__ import annotations

import argparse
import copy
import json
import warnings
from pathlib import Path

import torch
from caption_speed import interleaved  # bench/ is on the path when this runs as a script
from machine import machine
from torch import nn

from vl.compress.int8 import torchao_config


def torchao_linear(linear: nn.Linear, scheme: str) -> nn.Linear:
    """A copy quantized by torchao with the config vl.compress.int8 uses for `scheme`."""
    from torchao.quantization import quantize_

    out = copy.deepcopy(linear)
    quantize_(out, torchao_config(scheme))
    return out


def fbgemm_linear(linear: nn.Linear) -> nn.Module:
    """The deprecated eager int8 dynamic Linear (per-channel int8 weights, fbgemm kernels)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.backends.quantized.engine = "fbgemm" if "fbgemm" in torch.backends.quantized.supported_engines else "x86"
        return torch.ao.quantization.quantize_dynamic(nn.Sequential(copy.deepcopy(linear)), {nn.Linear}, dtype=torch.qint8, inplace=False)


def variants(linear: nn.Linear, x: torch.Tensor) -> dict[str, callable]:
    """Each kernel as a no-argument call on the same input."""
    bf16 = copy.deepcopy(linear).to(torch.bfloat16)
    xb = x.to(torch.bfloat16)
    dynamic, weight_only = torchao_linear(linear, "dynamic"), torchao_linear(linear, "weight_only")
    compiled = {name: torch.compile(m, dynamic=False) for name, m in (("fp32", linear), ("dynamic", dynamic), ("weight_only", weight_only))}
    fbgemm = fbgemm_linear(linear)
    return {
        "fp32": lambda: linear(x),
        "bf16": lambda: bf16(xb),
        "torchao int8 dynamic": lambda: dynamic(x),
        "torchao int8 weight-only": lambda: weight_only(x),
        "fp32, compiled": lambda: compiled["fp32"](x),
        "torchao int8 dynamic, compiled": lambda: compiled["dynamic"](x),
        "torchao int8 weight-only, compiled": lambda: compiled["weight_only"](x),
        "fbgemm int8 dynamic (deprecated API)": lambda: fbgemm(x),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dim", type=int, default=192, help="the decoder's width (the recipe's teacher: 192)")
    parser.add_argument("--vocab", type=int, default=1000, help="the tokenizer's vocabulary (the output projection)")
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 32], help="input rows per call (1: greedy at batch 1; 32: a batch)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.manual_seed(0)
    shapes = [(args.dim, 4 * args.dim), (4 * args.dim, args.dim), (args.dim, args.vocab)]
    results = []
    with torch.no_grad():
        for n_in, n_out in shapes:
            linear = nn.Linear(n_in, n_out)
            for rows in args.rows:
                x = torch.randn(rows, n_in)
                fns = variants(linear, x)
                calls = max(20, 1000 // rows)
                seconds = interleaved(fns, args.rounds, calls, "cpu")
                results.append({"shape": f"{n_in}->{n_out}", "rows": rows, "us": {k: v * 1e6 for k, v in seconds.items()}})
    names = list(results[0]["us"])
    print(f"\n{machine()}; torch {torch.__version__}; microseconds per call (speed-up against fp32)\n")
    print("| kernel | " + " | ".join(f"{r['shape']}, M={r['rows']}" for r in results) + " |")
    print("|---|" + "---:|" * len(results))
    for name in names:
        cells = [f"{r['us'][name]:.1f} ({r['us']['fp32'] / r['us'][name]:.2f}x)" for r in results]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"machine": machine(), "torch": torch.__version__, "results": results}, indent=1))


if __name__ == "__main__":
    main()
