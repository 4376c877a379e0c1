"""Learning curves: accuracy per VQA question family against training minutes, for one or more runs.

Reads each run's logs/metrics.jsonl (tasks.train writes it; every periodic evaluation logs its val metrics
with `train/minutes`, the training time so far without evaluations and saves) and draws one panel per
family, a line per run, on the same axes. Question-generation answerability and the caption claim
reader's all-true rate are drawn too when a run logged them.

    python bench/learning_curve.py runs/shapes-reasoning runs/shapes-multitask --out bench/figures/learning_curve.png
    python bench/learning_curve.py RUN[=LABEL] ...        # LABEL names the run in the legend
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# issue 14's targets on Shapes, drawn as dotted lines
TARGETS = {"non-relational": 98, "relational": 95, "counting": 95, "existence": 95, "comparison": 95, "QG answerability": 90, "captions all true": 95}
PANELS = {  # panel title -> "<head>/<metric>" keys tried in order (the first a run logged is drawn)
    "VQA overall": ["vqa/accuracy"],
    "non-relational": ["vqa/non-relational"],
    "relational": ["vqa/relational"],
    "counting": ["vqa/counting"],
    "existence": ["vqa/existence"],
    "comparison": ["vqa/comparison"],
    "QG answerability": ["qgen/answerability"],
    "captions all true": ["caption/all_claims_true"],
    "left/right (horizontal)": ["vqa/type/horizontal"],  # per question type: logged since issue 14's second session
    "large/small (size)": ["vqa/type/size"],
}


def read_curves(run: Path, x: str = "minutes") -> dict[str, list[tuple[float, float]]]:
    """{"<head>/<metric>": [(training minutes, or step, value)]} from a run's evaluation log lines."""
    path = run / "logs" / "metrics.jsonl"
    if not path.is_file():
        raise SystemExit(f"{run}: no metrics.jsonl; pass the train.output_dir of a tasks.train run")
    curves: dict[str, list[tuple[float, float]]] = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        minutes = record.get("train/minutes")
        if minutes is None or not any(k.startswith("val/") for k in record):
            continue
        for key, value in record.items():
            if key.startswith("val/"):
                curves.setdefault(key.removeprefix("val/"), []).append((minutes if x == "minutes" else record["step"], value))
    return curves


def as_percent(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Rates logged as fractions (<= 1 everywhere) drawn as percent, like the VQA accuracies."""
    return points if any(v > 1 for _, v in points) else [(m, 100 * v) for m, v in points]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders (train.output_dir), each optionally RUN=LABEL")
    parser.add_argument("--out", default="bench/figures/learning_curve.png")
    parser.add_argument("--x", choices=("minutes", "step"), default="minutes", help="the horizontal axis (step: when runs shared the CPU)")
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [(Path(r.partition("=")[0]), r.partition("=")[2] or Path(r.partition("=")[0]).name) for r in args.runs]
    curves = {label: read_curves(path, args.x) for path, label in runs}
    panels = [(title, keys) for title, keys in PANELS.items() if any(k in c for c in curves.values() for k in keys)]
    cols = 4
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False, sharex=True)
    for ax, (title, keys) in zip(axes.flat, panels):
        for index, (label, c) in enumerate(curves.items()):
            key = next((k for k in keys if k in c), None)
            if key:
                xs, ys = zip(*as_percent(sorted(c[key])))
                ax.plot(xs, ys, marker="o", markersize=3, label=label, color=f"C{index}")  # a run keeps its color in every panel
        if title in TARGETS:
            ax.axhline(TARGETS[title], color="gray", linestyle=":", linewidth=1)
        ax.set_title(title)
        ax.set_xlabel("training minutes" if args.x == "minutes" else "optimizer step")
        ax.set_xlim(left=0)
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    axes.flat[0].set_ylabel("% (val)")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 2), fontsize=9, frameon=False)  # above the panels, over none
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.15 / rows))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}: {len(panels)} panels, runs: {', '.join(curves)}")


if __name__ == "__main__":
    main()
