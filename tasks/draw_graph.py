"""Draw a scene graph written as JSON with a trained scene-graph generator.

    python -m tasks.draw_graph --generator runs/gan-scenes/generator --graph scene.json --out scene.png
    python -m tasks.draw_graph --generator runs/gan-scenes/generator \
        --graph '{"objects": ["small red circle", "large blue square"], "relationships": [[0, "left_of", 1]]}'

The graph's format is in gan/graphs.py: objects as "<size> <color> <shape>" (or dicts), relationships
as [subject, predicate, object]. Writes the image (PNG) and, with --grid, the graph | predicted layout |
image panel; prints each object's predicted box.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from gan.sample import load_generator, sample_from_graph
from gan.scene_gan import graph_grid
from tasks.common.cli import cli


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tasks.draw_graph", description=__doc__.split("\n")[0])
    p.add_argument("--generator", type=Path, required=True, help="the generator/ folder a scene-graph tasks.train_gan run writes")
    p.add_argument("--graph", required=True, help="a .json file or a JSON string")
    p.add_argument("--out", type=Path, default=Path("scene.png"), help="the image (PNG)")
    p.add_argument("--grid", type=Path, default=None, help="also the graph | layout | image panel here (PNG)")
    p.add_argument("--seed", type=int, default=None, help="draw with noise from this seed (default: zero noise)")
    p.add_argument("--scale", type=int, default=4, help="enlarge the written image this many times (nearest neighbour)")
    return p.parse_args(argv)


@cli
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    generator, _ = load_generator(args.generator, kind="scene_graph")
    if args.seed is not None:
        torch.manual_seed(args.seed)
    drawn = sample_from_graph(generator, args.graph, noise=args.seed is not None)
    image = drawn["image"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    image.resize((image.width * args.scale, image.height * args.scale), resample=0).save(args.out)
    if args.grid is not None:
        graph = {k: v[None] for k, v in drawn["graph"].items()}
        graph_grid(graph, drawn["outputs"], generator.vocab).save(args.grid)
    for i, box in enumerate(drawn["boxes"]):
        print(f"object {i}: box x0 y0 x1 y1 = {box}")
    print(f"wrote {args.out}" + (f" and {args.grid}" if args.grid else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
