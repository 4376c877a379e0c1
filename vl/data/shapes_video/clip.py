"""Clips: objects that act over segments of frames, placed so that they never overlap at any frame.

An event changes one object between its `start` and `end` frame (inclusive): at `start` the object is
as before, at `end` as after, in between it changes linearly. Moves go `shift` pixels along an axis
(y down), grow/shrink go between the small and the large size, a color change blends between two
colors, appear/disappear fade the object in or out (objects never overlap, so fading is drawing the
blend of the object's color and the background's).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from vl.data.shapes.catalog import BACKGROUNDS, COLORS, SIZES, half_extent
from vl.data.shapes_video.config import STILL, ShapesVideoConfig

MOVES = {"move_left": (-1, 0), "move_right": (1, 0), "move_up": (0, -1), "move_down": (0, 1)}


@dataclass(frozen=True, slots=True)
class Event:
    action: str
    object: int
    start: int  # first frame of the change
    end: int  # last frame of the change (inclusive)


@dataclass(frozen=True, slots=True)
class ClipObject:
    """An object as it is at the first frame, and what it does (`action`, STILL if nothing)."""

    id: int
    shape: str
    color: str
    size: str  # at the first frame; grow starts small, shrink starts large
    x: float
    y: float
    action: str = STILL
    new_color: str = ""  # change_color's final color
    shift: float = 0.0  # a move's length in pixels

    @property
    def pair(self) -> str:
        return f"{self.color} {self.shape}"


@dataclass(frozen=True, slots=True)
class Clip:
    size: int
    frames: int
    objects: tuple[ClipObject, ...]
    events: tuple[Event, ...]  # in order of start frame, then object id

    @property
    def action(self) -> str:
        """The clip's label: the action of its longest event."""
        return max(self.events, key=lambda e: e.end - e.start).action

    def frame_actions(self) -> list[list[str]]:
        """Per frame, the actions under way (sorted)."""
        return [sorted({e.action for e in self.events if e.start <= t <= e.end}) for t in range(self.frames)]

    def event_of(self, obj: ClipObject) -> Event | None:
        return next((e for e in self.events if e.object == obj.id), None)

    def progress(self, obj: ClipObject, t: int) -> float:
        """How far the object's event is at frame t: 0 up to its start, 1 from its end (0 without one)."""
        event = self.event_of(obj)
        return 0.0 if event is None else min(1.0, max(0.0, (t - event.start) / (event.end - event.start)))

    def state(self, obj: ClipObject, t: int) -> tuple[float, float, float, str, str, float]:
        """The object at frame t: (x, y, radius, color, the color it blends to, how far, 0..1)."""
        p = self.progress(obj, t)
        dx, dy = MOVES.get(obj.action, (0, 0))
        x, y = obj.x + dx * obj.shift * p, obj.y + dy * obj.shift * p
        small, large = SIZES["small"] * self.size, SIZES["large"] * self.size
        radius = {"grow": small + (large - small) * p, "shrink": large + (small - large) * p}.get(obj.action, SIZES[obj.size] * self.size)
        mix = p if obj.action == "change_color" else 0.0
        return x, y, radius, obj.color, obj.new_color or obj.color, mix

    def opacity(self, obj: ClipObject, t: int) -> float:
        if obj.action not in ("appear", "disappear"):
            return 1.0
        p = self.progress(obj, t)
        return p if obj.action == "appear" else 1.0 - p

    def drawn(self, t: int, background: str) -> list[tuple[str, float, float, float, tuple[int, int, int]]]:
        """Frame t as (shape, x, y, radius, fill) for vl.data.shapes.render.draw_shapes."""
        out, bg = [], BACKGROUNDS[background]
        for obj in self.objects:
            x, y, radius, c0, c1, mix = self.state(obj, t)
            alpha = self.opacity(obj, t)
            if alpha <= 0:
                continue
            rgb = [(1 - mix) * a + mix * b for a, b in zip(COLORS[c0], COLORS[c1])]
            fill = tuple(round(alpha * c + (1 - alpha) * g) for c, g in zip(rgb, bg))
            out.append((obj.shape, x, y, radius, fill))
        return out


def sample_clip(rng: random.Random, cfg: ShapesVideoConfig) -> Clip:
    """A clip: 1..max_events acting objects among min..max objects, the first one's event the longest."""
    n = rng.randint(cfg.min_objects, cfg.max_objects)
    colors = rng.sample(cfg.colors, n)
    n_events = rng.randint(1, min(cfg.max_events, n))
    actions = [rng.choice(cfg.actions) for _ in range(n_events)] + [STILL] * (n - n_events)
    spare = [c for c in cfg.colors if c not in colors]
    t = cfg.frames
    main = rng.randint(max(t // 2 + 1, 4), t)  # the clip's action lasts at least 2 frames longer than any other
    lengths = [main] + [rng.randint(2, min(t // 2, main - 2)) for _ in range(n_events - 1)]
    specs = []
    for color, action in zip(colors, actions):
        size = {"grow": "small", "shrink": "large"}.get(action) or rng.choice(("small", "large"))
        new_color = spare.pop(rng.randrange(len(spare))) if action == "change_color" else ""
        shift = rng.uniform(0.2, 0.35) * cfg.image_size if action in MOVES else 0.0
        specs.append((rng.choice(cfg.shapes), color, size, action, new_color, shift))
    centres = _place(rng, cfg.image_size, specs)
    objects = [ClipObject(i, s, c, z, x, y, a, nc, sh) for i, ((s, c, z, a, nc, sh), (x, y)) in enumerate(zip(specs, centres))]
    events = []
    for obj, length in zip(objects, lengths):
        start = rng.randint(0, t - length)
        events.append(Event(obj.action, obj.id, start, start + length - 1))
    order = list(range(n))
    rng.shuffle(order)  # the acting objects are not always the first ids
    objects = [objects[i] for i in order]
    renumber = {obj.id: k for k, obj in enumerate(objects)}
    objects = [ClipObject(renumber[o.id], o.shape, o.color, o.size, o.x, o.y, o.action, o.new_color, o.shift) for o in objects]
    events = sorted((Event(e.action, renumber[e.object], e.start, e.end) for e in events), key=lambda e: (e.start, e.object))
    return Clip(cfg.image_size, t, tuple(objects), tuple(events))


def _place(rng: random.Random, size: int, specs: list[tuple]) -> list[tuple[float, float]]:
    """Start centres such that every object's box swept over the whole clip stays on the canvas and
    keeps a gap to every other object's swept box."""
    pad, gap = 0.02 * size, 0.05 * size
    for _ in range(300):
        boxes: list[tuple[float, float, float, float]] = []
        centres = []
        for shape, _, size_name, action, _, shift in specs:
            radius = SIZES["large" if action in ("grow", "shrink") else size_name] * size
            hx, hy = (radius * h for h in half_extent(shape))
            dx, dy = (d * shift for d in MOVES.get(action, (0, 0)))
            lo_x, hi_x = hx + pad - min(dx, 0), size - hx - pad - max(dx, 0)
            lo_y, hi_y = hy + pad - min(dy, 0), size - hy - pad - max(dy, 0)
            for _ in range(60):
                x, y = rng.uniform(lo_x, hi_x), rng.uniform(lo_y, hi_y)
                box = (min(x, x + dx) - hx, min(y, y + dy) - hy, max(x, x + dx) + hx, max(y, y + dy) + hy)
                if all(box[0] >= b[2] + gap or b[0] >= box[2] + gap or box[1] >= b[3] + gap or b[1] >= box[3] + gap for b in boxes):
                    boxes.append(box)
                    centres.append((x, y))
                    break
            else:
                break
        if len(centres) == len(specs):
            return centres
    raise RuntimeError(f"could not place {len(specs)} moving objects on a {size}px canvas; use fewer objects")
