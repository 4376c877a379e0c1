"""Draw a scene: PIL polygons at `supersample` times the size, box-filtered down (anti-aliasing)."""

from __future__ import annotations

from PIL import Image, ImageDraw

from vl.data.shapes.catalog import BACKGROUNDS, COLORS, OUTLINES
from vl.data.shapes.scene import Scene


def render(scene: Scene, background: str = "gray", supersample: int = 4) -> Image.Image:
    """The scene as an RGB image of scene.size x scene.size pixels. Pixel (i, j) covers [i, i+1) x [j, j+1)."""
    return draw_shapes(scene.size, [(o.shape, o.x, o.y, o.radius, COLORS[o.color]) for o in scene.objects], background, supersample)


def draw_shapes(size: int, shapes: list[tuple[str, float, float, float, tuple[int, int, int]]], background: str = "gray", supersample: int = 4) -> Image.Image:
    """An RGB canvas of size x size pixels with each (shape, x, y, radius, fill) drawn in order."""
    k = supersample
    image = Image.new("RGB", (size * k, size * k), BACKGROUNDS[background])
    draw = ImageDraw.Draw(image)
    for shape, x, y, radius, fill in shapes:
        cx, cy, r, outline = x * k, y * k, radius * k, OUTLINES[shape]
        if outline is None:
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
        else:
            draw.polygon([(cx + r * px, cy + r * py) for px, py in outline], fill=fill)
    return image.reduce(k) if k > 1 else image
