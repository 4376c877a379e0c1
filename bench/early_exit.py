"""Early exit's trade-off, measured: thresholds chosen on one split, reported on another, and the
latency at batch 1 of the adaptive model against the same model at full depth, in one run.

    python bench/early_exit.py --model runs/reasoning-exits/model --control runs/reasoning-exits-control/model

For each exit head (vqa, tag): the curve of the headline metric (VQA accuracy, tag mAP) against the
mean encoder blocks run per item, on --tune (first --images images) and --report; the threshold with the
fewest blocks within --max-drop percent of full depth on --tune, and what it gives on --report. Then the
latency at batch 1 (one image, and for VQA one question, per call; the first question of each of
--latency-images report images): full depth and adaptive, every item timed once per round, alternating,
--rounds rounds; per-item medians summed. --control: a model fine-tuned the same way without exits, its
full-depth metric on --report (do the exits cost the full-depth head anything?). Writes a PNG of the
curves (--plot). `--breakdown FOLDER` instead prints where a batch-1 call's time goes (stem, each block,
each head), what bounds the speed-up an exit can give.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from machine import cpu_name

from tasks.compress import THRESHOLDS, bound_kind
from vl.compress.early_exit import exit_curve, pick_threshold, set_thresholds
from vl.modeling import VLModel


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, required=True, help="a model trained with model.early_exit")
    p.add_argument("--control", type=Path, help="the same fine-tune without exits (its full-depth metric is reported)")
    p.add_argument("--tune", default="shapes:val")
    p.add_argument("--report", default="shapes:test")
    p.add_argument("--images", type=int, default=500, help="images of each split scored")
    p.add_argument("--max-drop", type=float, default=1.0, help="relative drop of the metric allowed, percent")
    p.add_argument("--latency-images", type=int, default=200)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--bf16", action="store_true", help="everything under bf16 autocast")
    p.add_argument("--plot", type=Path, default=Path("bench/figures/early_exit.png"))
    p.add_argument("--breakdown", type=Path, help="only print where a batch-1 call's time goes in this model (e.g. the control)")
    return p.parse_args()


def breakdown(folder: Path, calls: int = 200) -> None:
    """Median ms at batch 1 of the stem, each block, each head and a whole VQA call: what an exit can skip."""
    model = VLModel.from_pretrained(folder).eval()
    encoder, size = model.encoder, model.config.encoder["image_size"]
    pixels = torch.randn(1, 3, size, size)
    question = {"question_ids": torch.randint(3, 100, (1, 12)), "question_mask": torch.ones(1, 12, dtype=torch.long)}

    def ms(call) -> float:
        for _ in range(20):
            call()
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        return 1e3 * statistics.median(times)

    with torch.inference_mode():
        x = encoder.embed(pixels)
        tokens = encoder.finish(x)
        parts = {"stem + positions": ms(lambda: encoder.embed(pixels))}
        parts.update({f"block {k}": ms(lambda b=b: b(x)) for k, b in enumerate(encoder.blocks, 1)})
        for name, head in model.heads.items():
            if head.registry_name in ("vqa", "tag"):
                parts[f"{name} head"] = ms(lambda h=head: h(tokens, question if h.registry_name == "vqa" else {}))
                parts[f"whole {name} call"] = ms(lambda n=name, h=head: model(pixels, task=n, **(question if h.registry_name == "vqa" else {})))
    print(f"{folder}, batch 1, fp32, median of {calls} calls: " + ", ".join(f"{k} {v:.2f} ms" for k, v in parts.items()))


def batch_one_items(kind, rows, n: int) -> list[tuple[torch.Tensor, dict]]:
    """(pixels (1, 3, H, W), head fields) per call: each image once (and its first question, for VQA)."""
    items, seen = [], set()
    for row in rows:
        if row["image_id"] in seen:
            continue
        seen.add(row["image_id"])
        inputs, _ = kind.inputs([row])
        fields = {}
        if "question" in row:
            q = kind.processor.encode_texts([row["question"]], kind.head.cfg.max_len)
            fields = {"question_ids": q["ids"], "question_mask": q["mask"]}
        items.append((inputs["pixel_values"], fields))
        if len(items) == n:
            break
    return items


def timed(model: VLModel, name: str, items: list, threshold: float | None, rounds: int) -> tuple[float, float]:
    """(ms per item at batch 1, the sum of per-item medians over rounds; mean blocks run), full depth when
    threshold is None. Each round times every item once; the caller alternates the settings per round."""
    set_thresholds(model, {name: threshold})
    model.early_exit.blocks_run.pop(name, None)
    times = [[0.0] * len(items) for _ in range(rounds)]
    for r in range(rounds):
        for i, (pixels, fields) in enumerate(items):
            start = time.perf_counter()
            model(pixels, task=name, **fields)
            times[r][i] = time.perf_counter() - start
    blocks, n = model.early_exit.blocks_run.get(name, (model.early_exit.depth * len(items) * rounds, len(items) * rounds))
    return 1e3 * sum(statistics.median(t) for t in zip(*times)) / len(items), blocks / n


def main() -> None:
    args = parse_args()
    torch.manual_seed(0)
    if args.breakdown:
        return breakdown(args.breakdown)
    model = VLModel.from_pretrained(args.model).eval()
    exits = model.early_exit
    cpu = f"{cpu_name()}, {torch.get_num_threads()} threads"
    print(f"{args.model}: exits after blocks {exits.blocks} of {exits.depth}, heads {list(exits.exits)}; {cpu}")
    control = VLModel.from_pretrained(args.control).eval() if args.control else None
    curves, table = {}, []
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16)
    for name in exits.exits:
        set_thresholds(model, {name: None})
        tune, report = bound_kind(model, args.model, name, args.tune), bound_kind(model, args.model, name, args.report)
        metric = tune.headline[0]
        tune_rows, report_rows = tune.open(args.tune, args.images), report.open(args.report, args.images)
        with autocast, torch.no_grad():
            on_tune = exit_curve(model, tune, tune_rows, THRESHOLDS)
            on_report = exit_curve(model, report, report_rows, THRESHOLDS)
        best = pick_threshold(on_tune, metric, args.max_drop)
        at = on_report[on_tune.index(best)]
        curves[name] = (metric, on_tune, on_report, best)
        control_metric = float("nan")
        if control is not None:
            c = bound_kind(control, args.control, name, args.report)
            with autocast, torch.no_grad():
                control_metric = c.score(report_rows, c.infer(control, report_rows))[metric]
        items = batch_one_items(report, report_rows, args.latency_images)
        full_ms, adaptive_ms, blocks = [], [], []
        with autocast, torch.inference_mode():
            timed(model, name, items[:20], None, 1)  # warm-up
            for _ in range(args.rounds):  # alternate the settings round by round
                full_ms.append(timed(model, name, items, None, 1)[0])
                ms, b = timed(model, name, items, None if best is on_tune[0] else best["threshold"], 1)
                adaptive_ms.append(ms)
                blocks.append(b)
        full, adaptive = statistics.median(full_ms), statistics.median(adaptive_ms)
        table.append((name, metric, best, on_report[0], at, control_metric, full, adaptive, statistics.mean(blocks)))
        print(f"\n{name}: {metric} against mean blocks run, {args.tune} (tune) / {args.report} (report)")
        for a, b in zip(on_tune, on_report):
            t = "full depth" if a is on_tune[0] else f"{a['threshold']:g}"
            mark = "  <- chosen on tune" if a is best else ""
            print(f"  {t:>10}  {a['blocks']:4.2f} / {b['blocks']:4.2f} blocks  {a[metric]:7.4f} / {b[metric]:7.4f}{mark}")
    head = f"| head | metric | threshold (tuned on {args.tune}) | {args.report}: full depth | at threshold | change | mean blocks"
    print(f"\n{head} | control, no exits | batch-1 ms full / adaptive | speed-up |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, metric, best, full_point, at, control_metric, full, adaptive, blocks in table:
        t = "full depth" if best["blocks"] == exits.depth else f"{best['threshold']:g}"
        change = 100 * (at[metric] - full_point[metric]) / full_point[metric]
        print(
            f"| {name} | {metric} | {t} | {full_point[metric]:.4f} | {at[metric]:.4f} | {change:+.2f}% | {at['blocks']:.2f} of {exits.depth} "
            f"| {control_metric:.4f} | {full:.2f} / {adaptive:.2f} ({blocks:.2f} blocks) | {full / adaptive:.2f}x |"
        )
    plot(curves, exits.depth, args)


def plot(curves: dict, depth: int, args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(5.5 * len(curves), 4), squeeze=False)
    for ax, (name, (metric, on_tune, on_report, best)) in zip(axes[0], curves.items()):
        for curve, label, style in ((on_tune, args.tune, "o-"), (on_report, args.report, "s--")):
            points = sorted(curve, key=lambda p: p["blocks"])
            ax.plot([p["blocks"] for p in points], [p[metric] for p in points], style, label=label, markersize=4)
        ax.plot([best["blocks"]], [best[metric]], "r*", markersize=14, label=f"chosen on {args.tune}")
        ax.set(title=f"{name}: early exit", xlabel=f"mean encoder blocks run (of {depth})", ylabel=metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.plot, dpi=110)
    print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
