"""Draw a face at a yaw angle with an expression.

The head is an ellipsoid turning about its vertical axis: a feature at horizontal angle phi on its
surface (0 = the nose line) and height v (a fraction of the half-height, + down) lands at
x = cx + a * sin(phi + yaw) * sqrt(1 - v^2), is foreshortened by cos(phi + yaw), and is hidden once
cos(phi + yaw) turns negative; the hair's back mass grows on the side the face turns away from. PIL
polygons at `supersample` times the size, box-filtered down (anti-aliasing), as the Shapes world."""

from __future__ import annotations

import math
from dataclasses import dataclass

from PIL import Image, ImageDraw

from vl.data.faces.catalog import BACKGROUND, EXPRESSIONS, EYE_COLORS, FACE_WIDTHS, HAIR_COLORS, SKIN_TONES

EYE_PHI, EYE_V = 0.45, -0.08
BROW_V = -0.24
MOUTH_PHI, MOUTH_V = 0.3, 0.45


@dataclass(frozen=True)
class Identity:
    """Who a face is: what stays the same across poses and expressions."""

    face_width: str
    skin: str
    hair_color: str
    hair_style: str
    eye_color: str
    nose: float  # nose size, ~0.8 to 1.2
    brow: float  # brow thickness, ~0.8 to 1.3


def shade(rgb: tuple[int, int, int], f: float) -> tuple[int, int, int]:
    return tuple(max(0, min(255, round(c * f))) for c in rgb)


class _Head:
    """Projection of points on the turning head onto the canvas (supersampled pixels)."""

    def __init__(self, size: int, width: float, yaw_degrees: float):
        self.cx, self.cy = 0.5 * size, 0.5 * size
        self.a, self.b = 0.27 * size * width, 0.34 * size
        self.yaw = math.radians(yaw_degrees)

    def point(self, phi: float, v: float, out: float = 1.0) -> tuple[float, float]:
        """Canvas (x, y) of the surface point (phi, v); `out` > 1 for a point standing off it (the nose tip)."""
        return self.cx + out * self.a * math.sin(phi + self.yaw) * math.sqrt(max(0.0, 1 - v * v)), self.cy + v * self.b

    def facing(self, phi: float) -> float:
        """cos(phi + yaw): 1 faces the viewer, <= 0 is turned away."""
        return math.cos(phi + self.yaw)


def render_face(identity: Identity, yaw: float, expression: str, size: int = 64, supersample: int = 4) -> Image.Image:
    """The face of `identity` turned by `yaw` degrees with `expression`, as an RGB size x size image."""
    k = supersample
    image = Image.new("RGB", (size * k, size * k), BACKGROUND)
    draw = ImageDraw.Draw(image)
    head = _Head(size * k, FACE_WIDTHS[identity.face_width], yaw)
    e = EXPRESSIONS[expression]
    skin, hair = SKIN_TONES[identity.skin], HAIR_COLORS[identity.hair_color]
    a, b, cx, cy, s = head.a, head.b, head.cx, head.cy, math.sin(head.yaw)

    if identity.hair_style == "long":  # hair falling behind the head and shoulders
        back = cx - 0.35 * a * s
        draw.rounded_rectangle((back - 1.12 * a, cy - 0.6 * b, back + 1.12 * a, cy + 1.25 * b), radius=0.5 * a, fill=hair)
    if identity.hair_style == "bun":
        bx = cx - 0.45 * a * s
        draw.ellipse((bx - 0.42 * a, cy - 1.3 * b, bx + 0.42 * a, cy - 0.72 * b), fill=hair)
    neck_x = cx - 0.1 * a * s
    draw.rectangle((neck_x - 0.42 * a, cy + 0.6 * b, neck_x + 0.42 * a, size * k), fill=shade(skin, 0.9))
    for side in (-1, 1):  # ears, on the sides of the head; the far one goes behind it
        phi = side * 1.5
        if head.facing(phi) > -0.35:
            ex, ey = head.point(phi, 0.02, out=1.02)
            w = 0.14 * a * (0.4 + 0.6 * abs(math.sin(phi + head.yaw)))
            draw.ellipse((ex - w, ey - 0.14 * b, ex + w, ey + 0.14 * b), fill=shade(skin, 0.92))
    draw.ellipse((cx - a, cy - b, cx + a, cy + b), fill=skin)
    _hair_cap(draw, head, identity.hair_style, hair)

    for side in (-1, 1):  # eyes and brows; side -1 is the face's right (the viewer's left)
        phi = side * EYE_PHI
        f = head.facing(phi)
        if f <= 0.12:
            continue
        ex, ey = head.point(phi, EYE_V)
        w, h = 0.15 * a * f, 0.075 * b * e.eye_open
        draw.ellipse((ex - w, ey - h, ex + w, ey + h), fill=(250, 250, 250))
        r = min(0.6 * w, 0.085 * b)
        ix = ex + 0.25 * w * s
        draw.ellipse((ix - r, ey - min(r, h), ix + r, ey + min(r, h)), fill=EYE_COLORS[identity.eye_color])
        draw.ellipse((ix - 0.45 * r, ey - 0.45 * min(r, h), ix + 0.45 * r, ey + 0.45 * min(r, h)), fill=(10, 10, 10))
        inner, outer = head.point(phi - side * 0.2, 0), head.point(phi + side * 0.22, 0)
        lift = BROW_V + e.brow_raise + (e.brow_tilt if side < 0 else 0.0)
        y_in, y_out = cy + (lift + e.brow_inner) * b, cy + lift * b
        draw.line((inner[0], y_in, outer[0], y_out), fill=shade(hair, 0.8), width=max(1, round(0.06 * b * identity.brow)))

    # nose: from between the eyes to a tip standing off the face, toward where it turns
    top = head.point(0, -0.02)
    tip = head.point(0, 0.2, out=1.0 + 0.16 * identity.nose)
    half = 0.1 * a * identity.nose * max(0.35, abs(math.cos(head.yaw)))
    base_y = cy + 0.24 * b
    draw.polygon([top, (tip[0] + half, base_y), (tip[0] - half, base_y)], fill=shade(skin, 0.8))
    if e.nose_wrinkle:
        for dx in (-0.5, 0.5):
            x0 = top[0] + dx * half
            draw.line((x0, cy + 0.02 * b, x0 + 0.6 * dx * half, cy + 0.12 * b), fill=shade(skin, 0.6), width=max(1, round(0.02 * b)))

    _mouth(draw, head, e)
    return image.reduce(k) if k > 1 else image


def _hair_cap(draw: ImageDraw.ImageDraw, head: _Head, style: str, hair: tuple[int, int, int]) -> None:
    """Hair over the top of the head: the head's outline above a hairline, lower at the back of the
    head (the side the face turns away from) and over the forehead for bangs; bumpy when curly."""
    a, b, cx, cy, s = head.a, head.b, head.cx, head.cy, math.sin(head.yaw)
    front = 0.42 if style == "bangs" else 0.62  # hairline height at the front, in half-heights above the centre
    # at the temples (viewer's left and right), on the head's outline: lower on the back of the head
    left, right = (min(0.85, max(-0.7, 0.3 + d * 1.1 * s)) for d in (-1, 1))
    pts = []
    n = 48
    for i in range(n + 1):
        t = math.pi + math.pi * i / n  # left point -> top -> right point (y down)
        r = 1.05 + (0.06 * math.sin(9 * t) if style == "curly" else 0.0)
        pts.append((cx + r * a * math.cos(t), cy + r * b * math.sin(t)))
    fx = head.point(0, 0)[0]  # the hairline dips toward the front of the face
    rim = lambda h: 1.03 * a * math.sqrt(1 - h * h)  # noqa: E731 - the outline's half-width at height h
    inside = lambda x: min(cx + rim(front), max(cx - rim(front), x))  # noqa: E731
    pts += [(cx + rim(right), cy - right * b), (inside(fx + 0.4 * a), cy - front * b), (inside(fx - 0.4 * a), cy - front * b), (cx - rim(left), cy - left * b)]
    draw.polygon(pts, fill=hair)


def _mouth(draw: ImageDraw.ImageDraw, head: _Head, e) -> None:
    """The mouth: a curve whose corners rise (smile) or fall, opened to a dark shape when mouth_open."""
    b = head.b
    phi = MOUTH_PHI * e.mouth_width
    if head.facing(phi) <= 0 and head.facing(-phi) <= 0:
        return
    n = 12
    upper, lower = [], []
    for i in range(n + 1):
        u = -1 + 2 * i / n  # -1: the face's right corner (viewer's left), +1: its left corner
        x, y = head.point(u * phi, MOUTH_V)
        corner = u * u
        y -= e.smile * b * corner
        y -= e.sneer * b * max(0.0, -u) ** 2
        open_h = e.mouth_open * b * (1 - corner)
        upper.append((x, y - 0.35 * open_h))
        lower.append((x, y + open_h))
    lips = (150, 50, 50)
    if e.mouth_open > 0:
        draw.polygon(upper + lower[::-1], fill=(90, 20, 25), outline=lips)
    else:
        draw.line(upper, fill=lips, width=max(1, round(0.045 * b)), joint="curve")
