"""PNG grids of samples with text under each image, for people to look at."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

Line = str | tuple[str, str]  # text, or (text, color)
MARKS = {True: "\u2713", False: "\u2717"}  # check and cross marks, when a font has them
PLAIN_MARKS = {True: "(right)", False: "(WRONG)"}


def grid_font(size: int) -> tuple[ImageFont.ImageFont, dict[bool, str]]:
    """(a font, the right/wrong marks it can draw): DejaVu Sans when the system has it (its ✓ and ✗),
    else Pillow's own font and words."""
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size), MARKS
    except OSError:
        return ImageFont.load_default(size=size), PLAIN_MARKS


def image_grid(
    images: Sequence[Image.Image],
    texts: Sequence[Sequence[Line]],
    out: str | Path,
    cols: int = 4,
    tile: int = 192,
    font_size: int = 11,
    font: ImageFont.ImageFont | None = None,
) -> Path:
    """Save a grid: each image scaled to `tile` px high (nearest, so pixels stay honest; a wide image,
    such as a filmstrip, keeps its aspect), its lines of text below (a line is a string, or (string,
    color) to draw it in that color)."""
    if not images:
        raise ValueError("image_grid needs at least one image")
    font = font or ImageFont.load_default(size=font_size)
    tile_w = max(round(tile * im.width / im.height) for im in images)
    width_chars = max(16, int(tile_w / (0.55 * font_size)))
    wrapped = [[(w, color) for text, color in map(_colored, lines) for w in textwrap.wrap(text, width_chars) or [""]] for lines in texts]
    line_h = font_size + 3
    text_h = line_h * max(len(w) for w in wrapped) + 6
    cols = min(cols, len(images))
    rows = -(-len(images) // cols)
    pad = 6
    grid = Image.new("RGB", (cols * (tile_w + pad) + pad, rows * (tile + text_h + pad) + pad), "white")
    draw = ImageDraw.Draw(grid)
    for k, (image, lines) in enumerate(zip(images, wrapped)):
        x = pad + (k % cols) * (tile_w + pad)
        y = pad + (k // cols) * (tile + text_h + pad)
        grid.paste(image.convert("RGB").resize((round(tile * image.width / image.height), tile), Image.Resampling.NEAREST), (x, y))
        for i, (line, color) in enumerate(lines):
            draw.text((x, y + tile + 3 + i * line_h), line, fill=color, font=font)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(out)
    return out


def filmstrip(frames: Sequence[Image.Image], gap: int = 2) -> Image.Image:
    """A clip's frames side by side, `gap` white pixels apart."""
    w, h = frames[0].size
    strip = Image.new("RGB", (len(frames) * (w + gap) - gap, h), "white")
    for k, frame in enumerate(frames):
        strip.paste(frame.convert("RGB"), (k * (w + gap), 0))
    return strip


def _colored(line: Line) -> tuple[str, str]:
    return (line, "black") if isinstance(line, str) else line
