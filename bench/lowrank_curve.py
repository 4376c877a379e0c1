"""Low-rank factorization's speed/quality curve: a trained model factored at several retained energies
(python -m tasks.compress lowrank), each scored with tasks.evaluate and timed, all in one run.

    python bench/lowrank_curve.py --model runs/shapes-reasoning/model --energies 1,0.99,0.95,0.9,0.8,0.7

Per energy: parameters, encoder GFLOPs per image, greedy caption latency at batch 1 and 32 (fp32, the
same images for every model, medians of --reps interleaved rounds), caption CIDEr and claim truth, VQA accuracy and tag
mAP on the first --images validation images. Energy 1 is the model as trained. Writes a PNG of the curve.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from compression import measure, timing_batch, timings  # noqa: E402 (the same measurements as bench/compression.py)
from machine import cpu_name

from tasks.compress import main as compress_main  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--energies", default="1,0.99,0.95,0.9,0.8,0.7")
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--reps", type=int, default=5, help="timing rounds, every model once per round; medians are reported")
    parser.add_argument("--out", type=Path, default=Path("bench/results/lowrank_curve.json"))
    parser.add_argument("--plot", type=Path, default=Path("bench/figures/lowrank_curve.png"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lowrank-"))
    batch = timing_batch(args.model)
    folders = {}
    for energy in (float(e) for e in args.energies.split(",")):
        folders[energy] = args.model
        if energy < 1:
            folders[energy] = work / f"energy_{energy}"
            assert compress_main(["lowrank", "--model", str(args.model), "--out", str(folders[energy]), "--energy", str(energy)]) == 0
    seconds = timings([(f"energy {e}", folder, False) for e, folder in folders.items()], batch, args.reps)  # interleaved rounds
    table = []
    for energy, folder in folders.items():
        row = {"energy": energy, **measure(f"energy {energy}", folder, seconds[f"energy {energy}"], args.images, work)}
        table.append(row)
        print(
            f"energy {energy:4}: {row['params_M']:5.2f}M params, {row['encoder_GFLOPs']:.3f} GFLOPs, batch 1 {row['batch1_ms']:6.1f} ms, "
            f"batch 32 {row['batch32_captions_per_s']:6.1f} captions/s, CIDEr {row['CIDEr']:.3f}, claims true {row['all_claims_true']:.3f}, "
            f"VQA {row['vqa_accuracy']:.2f}, tag mAP {row['tag_mAP']:.3f}",
            flush=True,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"cpu": cpu_name(), "threads": torch.get_num_threads(), "rows": table}, indent=1))
    plot(table, args.plot)
    print(f"wrote {args.out} and {args.plot}")


def plot(table: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = table[0]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    speed = [r["batch32_captions_per_s"] / base["batch32_captions_per_s"] for r in table]
    for key, label in (("CIDEr", "caption CIDEr"), ("all_claims_true", "captions all true"), ("vqa_accuracy", "VQA accuracy"), ("tag_mAP", "tag mAP")):
        ax.plot(speed, [r[key] / max(base[key], 1e-9) for r in table], marker="o", label=label)
    for r, s in zip(table, speed):
        ax.annotate(f"{r['energy']:g}", (s, r["vqa_accuracy"] / max(base["vqa_accuracy"], 1e-9)), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("caption decoding speed, batch 32 (x the trained model)")
    ax.set_ylabel("score (x the trained model)")
    ax.set_title("Low-rank factorization: retained energy (labels) vs speed and quality")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
