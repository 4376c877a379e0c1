"""Score a scene-graph generator against the Shapes world's exact truth (gan/scene_evaluate.py).

    python -m tasks.evaluate_scene_gan --generator runs/gan-scenes/generator --reader runs/shapes-reasoning-pointer/model [--n 500]

For each split (default: test, and test_heldout whose every scene holds a color+shape pair the
generator never saw), the first n scenes are drawn from their complete graphs: predicted boxes
against the true ones, then the reader (a tasks.train model with vqa and/or tag heads, trained on real
scenes) reads the images drawn at the predicted layout, at the true layout (the drawing alone; what
compositional augmentation adds) and, beside them, the real renders of the same graphs (the world's
questions are about the true layout; "what shape is the <color> object" also by the object's shape:
which drawn shapes the reader mistakes); FD in the reader's feature space with the real-vs-real floor. Prints a
table, writes <generator>/scene_scores.json and <generator>/scene_examples.png.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import torch
from torch.utils.data import default_collate

from gan.graphs import ShapesScenes
from gan.sample import load_generator
from gan.scene_evaluate import draw_split, image_ids, read_with, reader_fd
from gan.scene_gan import GRAPH_KEYS, graph_grid
from tasks.common.cli import cli, require_model_folder
from tasks.evaluate import saved_experiment
from vl.errors import ConfigError
from vl.modeling import VLModel
from vl.processing import VLProcessor

# what the reader's question types say about a generated image
ATTRIBUTE_TYPES, RELATION_TYPES, PLACE_TYPES = ("shape", "size"), ("relative_position", "closest", "farthest"), ("horizontal", "vertical")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tasks.evaluate_scene_gan", description=__doc__.split("\n")[0])
    p.add_argument("--generator", type=Path, required=True, help="the generator/ folder a scene-graph tasks.train_gan run writes")
    p.add_argument("--reader", type=Path, required=True, help="a tasks.train model folder with vqa and/or tag heads, trained on real Shapes scenes")
    p.add_argument("--n", type=int, default=500, help="scenes per split")
    p.add_argument("--splits", default="test,test_heldout", help="Shapes splits, comma-separated")
    p.add_argument("--out", type=Path, default=None, help="scores JSON (default: <generator>/scene_scores.json)")
    return p.parse_args(argv)


@cli
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_model_folder(args.reader)
    generator, cfg = load_generator(args.generator, kind="scene_graph")
    model, processor = VLModel.from_pretrained(args.reader).eval(), VLProcessor.from_pretrained(args.reader)
    reader_cfg = saved_experiment(args.reader)
    heads = [t for t in model.heads if model.config.heads[t]["type"] in ("vqa", "tag")]
    if not heads:
        raise ConfigError(f"the reader {args.reader} has no vqa or tag head; give a model trained with them (configs/shapes/reasoning_pointer.yaml)")
    world = cfg.data.shapes
    if reader_cfg.data.shapes != world:
        print("note: the reader was trained on a Shapes world configured otherwise; it reads the generator's world")
        reader_cfg = replace(reader_cfg, data=replace(reader_cfg.data, shapes=world))
    scores: dict = {"generator": str(args.generator), "reader": str(args.reader), "scenes_per_split": args.n}
    with torch.no_grad():
        for split in args.splits.split(","):
            drawn = draw_split(generator, world, split, args.n)
            at_truth = draw_split(generator, world, split, args.n, true_layout=True)
            images = {name: dict(zip(image_ids(split, args.n), d["images"])) for name, d in (("generated", drawn), ("at_true_layout", at_truth))}
            result = {"layout": drawn["layout"]}
            for task in heads:
                try:
                    result[task] = {"real": read_with(model, processor, reader_cfg, task, split, args.n, None)}
                    result[task] |= {name: read_with(model, processor, reader_cfg, task, split, args.n, im) for name, im in images.items()}
                except ValueError as err:  # e.g. none of the reader's tags in these scenes: its metrics are undefined
                    result[task] = {"skipped": str(err)}
            real = torch.stack([ShapesScenes(world, split, 4, size=args.n)[i]["image"] for i in range(args.n)])
            floor = torch.stack([ShapesScenes(world, "val", 4, size=args.n)[i]["image"] for i in range(args.n)])
            result["fd"] = {
                "generated_vs_real": reader_fd(model, processor, real, drawn["pixels"]),
                "at_true_layout_vs_real": reader_fd(model, processor, real, at_truth["pixels"]),
                "real_val_vs_real": reader_fd(model, processor, real, floor),
            }
            scores[split] = result
            print(table(split, result))
    out = args.out or args.generator / "scene_scores.json"
    out.write_text(json.dumps(scores, indent=1))
    examples = []
    for split in args.splits.split(","):
        data = ShapesScenes(world, split, cfg.model.generator.mask_size, size=4)
        items = [data[i] for i in range(4)]
        examples.append(default_collate(items))
    batch = {k: torch.cat([e[k] for e in examples]) for k in examples[0]}
    with torch.no_grad():
        graph_grid(batch, generator({k: batch[k] for k in GRAPH_KEYS}), generator.vocab).save(args.generator / "scene_examples.png")
    print(f"wrote {out} and {args.generator / 'scene_examples.png'}")
    return 0


def table(split: str, r: dict) -> str:
    lay = r["layout"]
    rows = [
        f"{split}: layouts of {lay['objects']} objects: box IoU {lay['box_iou']:.3f} (R@0.5 {lay['box_R@0.5']:.3f}, R@0.3 {lay['box_R@0.3']:.3f}; "
        f"true sizes at the centre: {lay['box_iou_centred_control']:.3f}), "
        f"centre error {lay['centre_error_px']:.1f} px, size error {lay['size_error_px']:.1f} px, spatial triples kept {lay['spatial_triples_kept']:.3f}",
        f"  {'read by the reader':34} {'real':>8} {'generated':>10} {'at true layout':>15}",
    ]
    for task in ("vqa", "tag"):
        if task not in r or "skipped" in r[task]:
            rows += [f"  {task}: skipped ({r[task]['skipped']})"] if task in r else []
            continue
        real, gen, true = r[task]["real"], r[task]["generated"], r[task]["at_true_layout"]
        keys = (
            ["accuracy", "non-relational", "relational"]
            + [f"type/{t}" for t in ATTRIBUTE_TYPES + RELATION_TYPES + PLACE_TYPES]
            + [k for k in real if k.startswith("shape_read/")]
            if task == "vqa"
            else [
                "mAP",
                "F1",
                "composed_recall",
                "composed_precision",
            ]
        )
        rows += [f"  {task + ' ' + k:34} {real[k]:8.3f} {gen[k]:10.3f} {true[k]:15.3f}" for k in keys if k in real and k in gen]
    fd = r["fd"]
    rows.append(
        f"  FD in the reader's features: generated vs real {fd['generated_vs_real']:.2f}, at the true layout {fd['at_true_layout_vs_real']:.2f}; "
        f"real val vs real (floor) {fd['real_val_vs_real']:.2f}"
    )
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
