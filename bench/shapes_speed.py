"""Shapes world generation speed on one core: scenes/s for whole items and for each stage.

    python bench/shapes_speed.py [--n 3000] [--sizes 32,64,128,256]

A whole item is what training reads: the anti-aliased image, the scene graph, 5 captions, ~16 QA
pairs and the tags. Target: >= 2,000 items/s at 64 px on one core. Each figure is the median of
3 timed runs after a warm-up.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import time

from machine import cpu_name

from vl.data.shapes import ShapesConfig, ShapesWorld
from vl.data.shapes.captions import write_captions
from vl.data.shapes.questions import write_questions


def rate(fn, n: int, repeats: int = 3) -> float:
    """Median calls per second of fn(i) for i in range(n)."""
    for i in range(min(n, 200)):
        fn(i)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(n):
            fn(i)
        times.append(time.perf_counter() - start)
    return n / statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--sizes", default="32,64,128,256")
    args = p.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, whatever the machine has
    print(f"python {platform.python_version()}, {cpu_name()}, 1 core, n={args.n}")
    print(f"{'size':>5} {'items/s':>9} {'+PNG/s':>8} | {'layout':>7} {'render':>7} {'captions':>8} {'QA':>7}  (us per item)")
    for size in (int(s) for s in args.sizes.split(",")):
        world = ShapesWorld(ShapesConfig(image_size=size))
        scenes = [world.scene("train", i) for i in range(args.n)]
        rngs = lambda stream: [world._rng("train", i, stream) for i in range(args.n)]  # noqa: E731
        items = rate(lambda i: world.item("train", i), args.n)

        def with_png(i: int) -> None:
            world.item("train", i)["image"].save(io.BytesIO(), format="PNG")

        png = rate(with_png, args.n // 2)
        layout = rate(lambda i: world.scene("train", i), args.n)
        render = rate(lambda i: world.image(scenes[i]), args.n)
        cap_rngs, qa_rngs = rngs("captions"), rngs("questions")
        captions = rate(lambda i: write_captions(scenes[i], cap_rngs[i], 5, "gray"), args.n, repeats=1)
        qa = rate(lambda i: write_questions(scenes[i], qa_rngs[i], world.cfg.shapes, world.cfg.sizes, world.heldout), args.n, repeats=1)
        us = lambda r: f"{1e6 / r:7.0f}"  # noqa: E731
        print(f"{size:>5} {items:>9.0f} {png:>8.0f} | {us(layout)} {us(render)} {us(captions):>8} {us(qa)}")
    print("target: >= 2000 items/s at 64 px")


if __name__ == "__main__":
    main()
