"""Draw a scene: PIL polygons at `supersample` times the size, box-filtered down (anti-aliasing)."""

from __future__ import annotations

from PIL import Image, ImageDraw

from vl.data.shapes.catalog import BACKGROUNDS, COLORS, OUTLINES
from vl.data.shapes.scene import Scene


def render(scene: Scene, background: str = "gray", supersample: int = 4) -> Image.Image:
    """The scene as an RGB image of scene.size x scene.size pixels. Pixel (i, j) covers [i, i+1) x [j, j+1)."""
    k = supersample
    image = Image.new("RGB", (scene.size * k, scene.size * k), BACKGROUNDS[background])
    draw = ImageDraw.Draw(image)
    for obj in scene.objects:
        cx, cy, r, fill = obj.x * k, obj.y * k, obj.radius * k, COLORS[obj.color]
        outline = OUTLINES[obj.shape]
        if outline is None:
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
        else:
            draw.polygon([(cx + r * px, cy + r * py) for px, py in outline], fill=fill)
    return image.reduce(k) if k > 1 else image
