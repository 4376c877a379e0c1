"""PNG grids of samples with text under each image, for people to look at."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont


def image_grid(
    images: Sequence[Image.Image],
    texts: Sequence[Sequence[str]],
    out: str | Path,
    cols: int = 4,
    tile: int = 192,
    font_size: int = 11,
) -> Path:
    """Save a grid: each image scaled to `tile` px (nearest, so pixels stay honest), its lines of text below."""
    if not images:
        raise ValueError("image_grid needs at least one image")
    font = ImageFont.load_default(size=font_size)
    width_chars = max(16, int(tile / (0.55 * font_size)))
    wrapped = [[w for line in lines for w in textwrap.wrap(line, width_chars) or [""]] for lines in texts]
    line_h = font_size + 3
    text_h = line_h * max(len(w) for w in wrapped) + 6
    cols = min(cols, len(images))
    rows = -(-len(images) // cols)
    pad = 6
    grid = Image.new("RGB", (cols * (tile + pad) + pad, rows * (tile + text_h + pad) + pad), "white")
    draw = ImageDraw.Draw(grid)
    for k, (image, lines) in enumerate(zip(images, wrapped)):
        x = pad + (k % cols) * (tile + pad)
        y = pad + (k // cols) * (tile + text_h + pad)
        grid.paste(image.convert("RGB").resize((tile, tile), Image.Resampling.NEAREST), (x, y))
        for i, line in enumerate(lines):
            draw.text((x, y + tile + 3 + i * line_h), line, fill="black", font=font)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(out)
    return out
