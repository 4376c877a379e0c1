"""What the Shapes world can draw: colors, shapes (a registry of unit outlines), sizes, and their words."""

from __future__ import annotations

import math

from vl.registry import Registry

# RGB of each color name. The default world uses the first seven (well-separated hues).
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "orange": (245, 140, 20),
    "yellow": (240, 220, 40),
    "green": (40, 170, 60),
    "cyan": (40, 200, 220),
    "blue": (40, 80, 220),
    "purple": (150, 60, 200),
    "pink": (250, 150, 200),
    "brown": (130, 80, 40),
    "white": (250, 250, 250),
}

BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "gray": (128, 128, 128),
    "black": (20, 20, 20),
    "white": (245, 245, 245),
}

# Radius of each size as a fraction of the canvas side (the shape fits in a circle of about this radius).
SIZES: dict[str, float] = {"small": 0.075, "large": 0.12}

# A shape is a unit outline centred on (0, 0), y pointing down, drawn scaled by the object's radius.
# `None` means a circle. Register new shapes here with `@SHAPES.register("name")`.
SHAPES = Registry("shape")


def _regular(n: int, radius: float, phase: float = -math.pi / 2) -> list[tuple[float, float]]:
    return [(radius * math.cos(phase + 2 * math.pi * k / n), radius * math.sin(phase + 2 * math.pi * k / n)) for k in range(n)]


@SHAPES.register("circle")
def circle() -> None:
    return None


@SHAPES.register("square")
def square() -> list[tuple[float, float]]:
    a = 0.85
    return [(-a, -a), (a, -a), (a, a), (-a, a)]


@SHAPES.register("triangle")
def triangle() -> list[tuple[float, float]]:
    return _regular(3, 1.1)


@SHAPES.register("diamond")
def diamond() -> list[tuple[float, float]]:
    return [(0.0, -1.2), (0.85, 0.0), (0.0, 1.2), (-0.85, 0.0)]


@SHAPES.register("star")
def star() -> list[tuple[float, float]]:
    outer, inner = _regular(5, 1.2), _regular(5, 0.5, phase=-math.pi / 2 + math.pi / 5)
    return [p for pair in zip(outer, inner) for p in pair]


@SHAPES.register("cross")
def cross() -> list[tuple[float, float]]:
    a, w = 1.0, 0.36
    return [(-w, -a), (w, -a), (w, -w), (a, -w), (a, w), (w, w), (w, a), (-w, a), (-w, w), (-a, w), (-a, -w), (-w, -w)]


@SHAPES.register("hexagon")
def hexagon() -> list[tuple[float, float]]:
    return _regular(6, 1.05, phase=0.0)


def _centre_box(pts: list[tuple[float, float]] | None) -> list[tuple[float, float]] | None:
    """Shift an outline so that its bounding box is centred on (0, 0): an object's position is its box centre."""
    if pts is None:
        return None
    dx = -(min(x for x, _ in pts) + max(x for x, _ in pts)) / 2
    dy = -(min(y for _, y in pts) + max(y for _, y in pts)) / 2
    return [(x + dx, y + dy) for x, y in pts]


OUTLINES: dict[str, list[tuple[float, float]] | None] = {name: _centre_box(SHAPES.build(name)) for name in SHAPES}


def half_extent(shape: str) -> tuple[float, float]:
    """Half width and half height of the unit outline's (centred) bounding box."""
    pts = OUTLINES[shape]
    if pts is None:
        return (1.0, 1.0)
    return (max(x for x, _ in pts), max(y for _, y in pts))


# Words. Each shape's first synonym is its canonical name (the answer word); captions use all of them.
SHAPE_WORDS: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "disc"),
    "square": ("square",),
    "triangle": ("triangle",),
    "diamond": ("diamond", "rhombus"),
    "star": ("star",),
    "cross": ("cross", "plus sign"),
    "hexagon": ("hexagon",),
}
PLURALS: dict[str, str] = {
    "circle": "circles",
    "disc": "discs",
    "square": "squares",
    "triangle": "triangles",
    "diamond": "diamonds",
    "rhombus": "rhombuses",
    "star": "stars",
    "cross": "crosses",
    "plus sign": "plus signs",
    "hexagon": "hexagons",
    "shape": "shapes",
    "object": "objects",
    "figure": "figures",
    "item": "items",
}
SIZE_WORDS: dict[str, tuple[str, ...]] = {"small": ("small", "little"), "large": ("large", "big")}
GENERIC_NOUNS: tuple[str, ...] = ("shape", "object", "figure", "item")
NUMBER_WORDS: tuple[str, ...] = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

assert set(SHAPE_WORDS) == set(SHAPES.keys()), "every registered shape needs its words"
