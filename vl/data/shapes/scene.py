"""Scenes: objects with attributes and pixel boxes, placed without overlap, and their scene graph.

Geometry (pixels, origin top-left, y down). An object's position (x, y) is the centre of its box.
Relations are between object centres: `a left_of b` iff a.x < b.x, `a above b` iff a.y < b.y;
`a closest b` / `a farthest b`: b is the object nearest to / farthest from a (centre distance).
Layout keeps the boxes of every pair at least `gap` apart (so shapes never overlap or touch) and
their centres at least `axis_gap` apart on both axes, so left/right/above/below are never a coin toss.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from vl.data.shapes.catalog import SIZES, half_extent

PREDICATES = ("left_of", "right_of", "above", "below", "closest", "farthest")


@dataclass(frozen=True, slots=True)
class ShapeObject:
    """One drawn object. `radius` scales the shape's unit outline; `bbox` is COCO-style (x, y, w, h)."""

    id: int
    shape: str
    color: str
    size: str
    x: float
    y: float
    radius: float
    bbox: tuple[float, float, float, float]

    @property
    def pair(self) -> str:
        return f"{self.color} {self.shape}"


@dataclass(frozen=True, slots=True)
class Scene:
    """A canvas of `size` x `size` pixels with its objects and scene-graph relations."""

    size: int
    objects: tuple[ShapeObject, ...]
    relations: tuple[tuple[int, str, int], ...]

    def closest(self, obj: ShapeObject) -> ShapeObject:
        return min((o for o in self.objects if o is not obj), key=lambda o: _dist(o, obj))

    def farthest(self, obj: ShapeObject) -> ShapeObject:
        return max((o for o in self.objects if o is not obj), key=lambda o: _dist(o, obj))


def sample_scene(rng: random.Random, size: int, specs: list[tuple[str, str, str]]) -> Scene:
    """Place objects given as (color, shape, size name) at random non-overlapping positions."""
    radii = [SIZES[s] * size for _, _, s in specs]
    halves = [(r * hx, r * hy) for r, (hx, hy) in zip(radii, (half_extent(shape) for _, shape, _ in specs))]
    pad, gap, axis_gap = 0.02 * size, 0.04 * size, 0.03 * size
    for _ in range(200):  # restarts; a sane config places on the first or second try
        centres: list[tuple[float, float]] = []
        for hx, hy in halves:
            for _ in range(60):
                x, y = rng.uniform(hx + pad, size - hx - pad), rng.uniform(hy + pad, size - hy - pad)
                if all(
                    abs(x - px) >= axis_gap and abs(y - py) >= axis_gap and (abs(x - px) >= hx + phx + gap or abs(y - py) >= hy + phy + gap)
                    for (px, py), (phx, phy) in zip(centres, halves)
                ):
                    centres.append((x, y))
                    break
            else:
                break
        if len(centres) == len(specs):
            break
    else:
        raise RuntimeError(f"could not place {len(specs)} objects on a {size}px canvas; use fewer or smaller objects")
    objects = []
    for i, ((color, shape, size_name), (x, y), r, (hx, hy)) in enumerate(zip(specs, centres, radii, halves)):
        objects.append(ShapeObject(i, shape, color, size_name, x, y, r, (x - hx, y - hy, 2 * hx, 2 * hy)))
    return Scene(size, tuple(objects), relations(objects))


def relations(objects: list[ShapeObject]) -> tuple[tuple[int, str, int], ...]:
    """All (subject id, predicate, object id) triples of the scene graph."""
    out = []
    for a in objects:
        dist = {}
        for b in objects:
            if a is not b:
                out.append((a.id, "left_of" if a.x < b.x else "right_of", b.id))
                out.append((a.id, "above" if a.y < b.y else "below", b.id))
                dist[b.id] = _dist(a, b)
        if dist:
            out.append((a.id, "closest", min(dist, key=dist.__getitem__)))
            out.append((a.id, "farthest", max(dist, key=dist.__getitem__)))
    return tuple(out)


def places(obj: ShapeObject, size: int) -> list[str]:
    """Named places of the canvas the object is clearly in: left/right (x < 35% / > 65% of the width),
    top/bottom (likewise for y), the corners where both hold, and center (x and y within 40%..60%)."""
    fx, fy = obj.x / size, obj.y / size
    side = "left" if fx < 0.35 else "right" if fx > 0.65 else None
    level = "top" if fy < 0.35 else "bottom" if fy > 0.65 else None
    out = [p for p in (side, level) if p]
    if side and level:
        out.append(f"{level}_{side}")
    if 0.4 < fx < 0.6 and 0.4 < fy < 0.6:
        out.append("center")
    return out


def _dist(a: ShapeObject, b: ShapeObject) -> float:
    return math.hypot(a.x - b.x, a.y - b.y)


def clear_margin(scene: Scene, obj: ShapeObject, nearest: bool) -> float:
    """How much nearer (or farther) obj's closest (farthest) object is than the runner-up, in pixels."""
    d = sorted(_dist(obj, o) for o in scene.objects if o is not obj)
    if len(d) < 2:
        return math.inf
    return d[1] - d[0] if nearest else d[-1] - d[-2]
