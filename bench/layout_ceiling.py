"""The best box IoU any layout predictor can reach from a Shapes scene graph (issue 18's IoU >= 0.7 target).

A graph fixes each object's box size (its shape and size name) and every left/right, above/below and
closest/farthest relation, but no coordinate. Which layouts agree with a test graph is known exactly: the
world places objects uniformly at random without overlap, so the layouts consistent with a graph are
sampled here by drawing each axis's coordinates in the graph's order (sorted uniforms: exactly uniform on
that order) and keeping those that meet the world's spacing rules and the graph's closest/farthest
triples. For each object the centre with the highest mean IoU over those layouts is the Bayes-optimal
prediction; its IoU against the true box, averaged over objects, is the ceiling a perfect layout model
would score on `evaluate_scene_gan`'s box IoU.

    python bench/layout_ceiling.py --n 500 --generator runs/gan-scenes/generator --out bench/results/layout_ceiling.json

With --generator, the scene-graph GAN's own predicted boxes are scored on the same graphs, by object count.

The world's sequential placement is close to, not exactly, uniform over valid layouts; the ceiling is an
estimate at that approximation (and of the sample count, printed).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import default_collate
from torchvision.ops import box_iou
from tqdm.auto import tqdm

from gan.graphs import ShapesScenes
from gan.sample import load_generator
from gan.scene_gan import GRAPH_KEYS
from vl.data.shapes.catalog import SIZES, half_extent
from vl.data.shapes.config import ShapesConfig
from vl.data.shapes.world import ShapesWorld


class GraphRules:
    """What the graphs of G Shapes scenes of n objects each, and the world's spacing rules, say about their
    objects' centres; arrays lead with the graph."""

    def __init__(self, scenes: list):
        size, self.n = scenes[0].size, len(scenes[0].objects)
        self.half = np.array([[[SIZES[o.size] * size * h for h in half_extent(o.shape)] for o in s.objects] for s in scenes])  # (G, n, 2)
        pad, self.gap, self.axis_gap = 0.02 * size, 0.04 * size, 0.03 * size
        self.lo, self.hi = self.half + pad, size - self.half - pad
        self.truth = np.array([[[o.x, o.y] for o in s.objects] for s in scenes])
        self.sign = np.sign(self.truth[:, :, None, :] - self.truth[:, None, :, :])  # left/right, above/below of every pair
        self.off = ~np.eye(self.n, dtype=bool)
        if self.n > 1:
            self.closest = np.array([[s.closest(o).id for o in s.objects] for s in scenes])
            self.farthest = np.array([[s.farthest(o).id for o in s.objects] for s in scenes])

    def valid(self, xy: np.ndarray) -> np.ndarray:
        """(G, C, n, 2) centres (C layouts per graph) -> (G, C) whether the world could have drawn them for that graph."""
        ok = ((xy >= self.lo[:, None]) & (xy <= self.hi[:, None])).all(axis=(2, 3))
        if self.n == 1:
            return ok
        diff = xy[:, :, :, None, :] - xy[:, :, None, :, :]
        d = np.abs(diff)
        off = self.off[None, None]
        ok &= ((np.sign(diff) == self.sign[:, None]) | ~off[..., None]).all(axis=(2, 3, 4))
        sums = (self.half[:, :, None, :] + self.half[:, None, :, :] + self.gap)[:, None]
        apart = (d[..., 0] >= sums[..., 0]) | (d[..., 1] >= sums[..., 1])
        ok &= (((d >= self.axis_gap).all(-1) & apart) | ~off).all(axis=(2, 3))
        dist = np.hypot(d[..., 0], d[..., 1])
        ok &= (np.where(off, dist, np.inf).argmin(-1) == self.closest[:, None]).all(-1)
        ok &= (np.where(off, dist, -np.inf).argmax(-1) == self.farthest[:, None]).all(-1)
        return ok


def sample_layouts(rules: GraphRules, rng: np.random.Generator, chains: int = 16, sweeps: int = 1500, thin: int = 10) -> np.ndarray:
    """(G, K, n, 2) layouts uniform over those each graph allows: Metropolis chains started at the true layout
    (the target is uniform, so a move is kept iff the layout stays valid). A step moves one object by 3 px or
    12 px, or redraws it anywhere on the canvas; a sweep is n steps; the first half of the sweeps is burn-in.
    K = chains * sweeps / 2 / thin."""
    xy = np.repeat(rules.truth[:, None], chains, axis=1).astype(float)
    g, c = np.meshgrid(np.arange(len(xy)), np.arange(chains), indexing="ij")
    out = []
    for t in range(sweeps * rules.n):
        move = xy.copy()
        k = rng.integers(0, rules.n, g.shape)
        kind = rng.random(g.shape)[..., None]
        step = rng.normal(0, 1, g.shape + (2,)) * np.where(kind < 0.5, 3.0, 12.0)
        anywhere = rng.uniform(rules.lo[g, k], rules.hi[g, k])
        move[g, c, k] = np.where(kind < 0.8, move[g, c, k] + step, anywhere)
        keep = rules.valid(move)
        xy[keep] = move[keep]
        if t >= sweeps * rules.n // 2 and t % (thin * rules.n) == 0:
            out.append(xy.copy())
    return np.concatenate(out, axis=1)


def rejection_layouts(rules: GraphRules, rng: np.random.Generator, want: int = 400, batch: int = 20000, max_draws: int = 400_000) -> np.ndarray:
    """The same distribution for one graph (G = 1) drawn exactly, (K, n, 2): each axis's coordinates as sorted
    uniforms in the graph's order, kept when valid. A check of the chains on small graphs; too slow beyond
    three or four objects."""
    kept, draws = [], 0
    orders = [np.argsort(rules.truth[0, :, a]) for a in (0, 1)]
    while sum(len(k) for k in kept) < want and draws < max_draws:
        draws += batch
        xy = np.empty((batch, rules.n, 2))
        for a in (0, 1):
            xy[:, orders[a], a] = np.sort(rng.uniform(rules.lo[0, :, a].min(), rules.hi[0, :, a].max(), (batch, rules.n)), axis=1)
        kept.append(xy[rules.valid(xy[None])[0]])
    return np.concatenate(kept)[:want]


def iou_same_size(dx: np.ndarray, dy: np.ndarray, w: float, h: float) -> np.ndarray:
    """IoU of two w x h boxes whose centres are dx, dy apart."""
    overlap = np.clip(w - np.abs(dx), 0, None) * np.clip(h - np.abs(dy), 0, None)
    return overlap / (2 * w * h - overlap)


def best_centres(layouts: np.ndarray, scene, candidates: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Per object of one scene, from its (K, n, 2) consistent layouts: the centre (among the first `candidates`
    sampled ones) with the highest mean IoU over all K, and that mean (the IoU it expects)."""
    centres, expected = [], []
    for j, o in enumerate(scene.objects):
        cand = layouts[:, j]
        mean_iou = iou_same_size(cand[:candidates, None, 0] - cand[None, :, 0], cand[:candidates, None, 1] - cand[None, :, 1], o.bbox[2], o.bbox[3]).mean(1)
        centres.append(cand[mean_iou.argmax()])
        expected.append(mean_iou.max())
    return np.array(centres), np.array(expected)


@torch.no_grad()
def model_ious(generator, world: ShapesConfig, split: str, n: int, batch_size: int = 100) -> list[np.ndarray]:
    """Per scene of the split's first n, the IoU of each object's box the generator predicts from the graph."""
    data = ShapesScenes(world, split, generator.cfg.mask_size, size=n)
    out = []
    for start in range(0, n, batch_size):
        batch = default_collate([data[i] for i in range(start, min(n, start + batch_size))])
        boxes = generator({k: batch[k] for k in GRAPH_KEYS})["boxes"].float()
        for pred, truth, present in zip(boxes, batch["boxes"], batch["objects"]):
            out.append(box_iou(pred[present], truth[present]).diagonal().numpy())
    return out


def check_chains(world: ShapesWorld, split: str, graphs: int, sweeps: int, rng: np.random.Generator) -> None:
    """Per object of small graphs, the best centre's expected IoU by the chains and by exact rejection sampling."""
    scenes = [s for s in (world.scene(split, i) for i in range(20 * graphs)) if len(s.objects) in (2, 3)][:graphs]
    diffs = []
    for scene in tqdm(scenes, desc="chains against rejection sampling", unit="graph"):
        rules = GraphRules([scene])
        chains = best_centres(sample_layouts(rules, rng, sweeps=sweeps, thin=5)[0], scene)[1]
        exact = best_centres(rejection_layouts(rules, rng, want=1600, max_draws=4_000_000), scene)[1]
        diffs += list(np.abs(chains - exact))
    print(f"{len(scenes)} graphs, {len(diffs)} objects: |chains - exact| of the best centre's expected IoU: mean {np.mean(diffs):.4f}, max {np.max(diffs):.4f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=500, help="graphs per split (evaluate_scene_gan's first n)")
    p.add_argument("--splits", default="test,test_heldout")
    p.add_argument("--sweeps", type=int, default=1000, help="Metropolis sweeps per chain (half burn-in)")
    p.add_argument("--generator", type=Path, help="a scene-graph GAN's generator/ folder: its predicted boxes scored beside the ceiling")
    p.add_argument("--check", type=int, default=0, help="only compare the chains with exact rejection sampling on this many graphs of 2-3 objects")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    generator, shapes = None, ShapesConfig()
    if args.generator:
        generator, cfg = load_generator(args.generator, kind="scene_graph")
        shapes = cfg.data.shapes
    world = ShapesWorld(shapes)
    rng = np.random.default_rng(0)
    if args.check:
        return check_chains(world, args.splits.split(",")[0], args.check, args.sweeps, rng)
    results = {}
    for split in args.splits.split(","):
        scenes = [world.scene(split, i) for i in range(args.n)]
        iou, expected, by_n = [], [], {}
        model = model_ious(generator, shapes, split, args.n) if generator is not None else None
        for n in tqdm(sorted({len(s.objects) for s in scenes}), desc=f"{split}: graphs by object count", unit="group"):
            group = [s for s in scenes if len(s.objects) == n]
            layouts = sample_layouts(GraphRules(group), rng, sweeps=args.sweeps, thin=5)
            group_iou = []
            for scene, ls in zip(group, layouts):
                centres, exp = best_centres(ls, scene)
                truth = np.array([[o.x, o.y] for o in scene.objects])
                sizes = np.array([o.bbox[2:] for o in scene.objects])
                group_iou += list(iou_same_size(centres[:, 0] - truth[:, 0], centres[:, 1] - truth[:, 1], sizes[:, 0], sizes[:, 1]))
                expected += list(exp)
            iou += group_iou
            by_n[n] = {"graphs": len(group), "ceiling_box_iou": round(float(np.mean(group_iou)), 4)}
            if model is not None:
                by_n[n]["model_box_iou"] = round(float(np.concatenate([m for s, m in zip(scenes, model) if len(s.objects) == n]).mean()), 4)
        iou = np.array(iou)
        results[split] = {
            "ceiling_box_iou": round(float(iou.mean()), 4),
            "ceiling_box_R@0.5": round(float((iou >= 0.5).mean()), 4),
            "ceiling_box_R@0.3": round(float((iou >= 0.3).mean()), 4),
            "expected_iou_over_samples": round(float(np.mean(expected)), 4),
            "by_object_count": by_n,
            **({"model_box_iou": round(float(np.concatenate(model).mean()), 4)} if model is not None else {}),
            "objects": len(iou),
            "graphs": args.n,
            "sweeps": args.sweeps,
        }
        print(split, json.dumps(results[split]))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
