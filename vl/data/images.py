"""Decoding images stored the `datasets` way ({"bytes", "path"}), with errors that name the file."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from vl.errors import DataFormatError


def read_image(value: dict[str, Any]) -> PILImage.Image:
    """Decode an undecoded datasets.Image value to RGB; an unreadable or missing file is a DataFormatError."""
    path = value.get("path") or "<embedded image>"
    try:
        source = io.BytesIO(value["bytes"]) if value.get("bytes") else value["path"]
        with PILImage.open(source) as image:
            return image.convert("RGB")
    except FileNotFoundError:
        raise DataFormatError(f"image file not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataFormatError(f"cannot read image {path} ({type(err).__name__}: {err}); fix or remove it, or set data.skip_bad_images=true") from None
