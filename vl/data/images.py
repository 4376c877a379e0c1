"""Images in, RGB PIL images out: decoding stored images (the `datasets` way, {"bytes", "path"}) and
the inputs a user hands a pipeline (a path, a URL, a PIL image, a numpy array, a torch tensor), with
one colour conversion for both and errors that say what is wrong and how to fix it."""

from __future__ import annotations

import io
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError

from vl.errors import DataFormatError, InputError

URL_TIMEOUT_S = 10.0
MAX_SIDE = 1024  # larger inputs are box-reduced first: the encoder sees a few dozen pixels a side
IMAGE_HELP = "a file path, an http(s) URL, a PIL image, a numpy array (H x W x 3 uint8, or H x W gray) or a torch tensor (C x H x W)"


def read_image(value: dict[str, Any]) -> PILImage.Image:
    """Decode an undecoded datasets.Image value to RGB; an unreadable or missing file is a DataFormatError."""
    path = value.get("path") or "<embedded image>"
    try:
        source = io.BytesIO(value["bytes"]) if value.get("bytes") else value["path"]
        with PILImage.open(source) as image:
            image.load()  # before the file closes
            return to_rgb(image)
    except FileNotFoundError:
        raise DataFormatError(f"image file not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataFormatError(f"cannot read image {path} ({type(err).__name__}: {err}); fix or remove it, or set data.skip_bad_images=true") from None


def to_rgb(image: PILImage.Image) -> PILImage.Image:
    """8-bit RGB of any PIL mode: 16- and 32-bit gray scaled (not clipped) to 8 bits, transparency
    composited on white (as a browser shows it on a white page), palette and CMYK converted."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        a = np.asarray(image, dtype=np.float64)
        top = 1.0 if image.mode == "F" and a.max(initial=0) <= 1 else 255.0 if a.max(initial=0) <= 255 else 65535.0
        image = PILImage.fromarray(np.clip(a * (255.0 / top), 0, 255).round().astype(np.uint8), "L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        white = PILImage.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = PILImage.alpha_composite(white, rgba)
    return image if image.mode == "RGB" else image.convert("RGB")


def load_image(image: Any) -> PILImage.Image:
    """One pipeline input as an RGB PIL image; anything unusable is an InputError naming the fix."""
    if isinstance(image, (str, os.PathLike)):
        text = str(image)
        return _decode(_download(text) if text.startswith(("http://", "https://")) else _file(text), text)
    if isinstance(image, PILImage.Image):
        return _decode(image, "the PIL image")
    if isinstance(image, np.ndarray) or type(image).__module__.startswith("torch"):
        return _shrink(to_rgb(PILImage.fromarray(_uint8_hwc(image))))
    raise InputError(f"cannot read an image from a {type(image).__name__}; pass {IMAGE_HELP}")


def _file(path: str) -> PILImage.Image:
    p = Path(path).expanduser()
    if p.is_dir():
        raise InputError(f"{path} is a directory, not an image; pass the image files in it (e.g. {p}/*.png)")
    if not p.is_file():
        raise InputError(f"image file not found: {path}")
    try:
        return PILImage.open(p)
    except (UnidentifiedImageError, OSError) as err:
        raise InputError(f"{path} is not an image PIL can read ({err}); pass a PNG, JPEG, WebP, BMP, GIF or TIFF file") from None


def _download(url: str) -> PILImage.Image:
    """The image at an http(s) URL, or an InputError within URL_TIMEOUT_S (at once when offline)."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
        raise InputError(f"cannot download {url}: offline (HF_HUB_OFFLINE is set); download the image and pass its file path")
    try:
        with urllib.request.urlopen(url, timeout=URL_TIMEOUT_S) as response:  # noqa: S310 (http(s) checked above)
            data = response.read()
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as err:
        raise InputError(f"cannot download {url} ({getattr(err, 'reason', err)}); check the address or your network, or pass a local file") from None
    try:
        return PILImage.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError) as err:
        raise InputError(f"{url} did not return an image ({err})") from None


def _decode(image: PILImage.Image, what: str) -> PILImage.Image:
    """Decode now (a truncated or corrupt file fails here, by name), upright by its EXIF, shrunk, RGB."""
    try:
        image.draft("RGB", (MAX_SIDE, MAX_SIDE))  # JPEG: decode at a reduced scale when the file is huge
        image.load()
        image = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError) as err:
        raise InputError(f"cannot decode {what} ({err}); the file is damaged or incomplete: re-download or re-export it") from None
    return to_rgb(_shrink(image))


def _shrink(image: PILImage.Image) -> PILImage.Image:
    if max(image.size) > MAX_SIDE:
        image = image.copy() if image.mode in ("RGB", "L", "RGBA") else to_rgb(image)
        image.thumbnail((MAX_SIDE, MAX_SIDE), PILImage.Resampling.BOX)
    return image


def _uint8_hwc(array: Any) -> np.ndarray:
    """A numpy array or torch tensor as uint8 H x W (gray) or H x W x C (C = 3 or 4). Tensors follow
    torchvision (C x H x W); floats are taken in [0, 1] (values above 1: in [0, 255]); 16-bit in [0, 65535]."""
    is_tensor = not isinstance(array, np.ndarray)
    a = array.detach().cpu().numpy() if is_tensor else np.asarray(array)
    if a.size == 0:
        raise InputError(f"the image array is empty (shape {tuple(a.shape)}); pass an H x W x 3 array")
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and (is_tensor or a.shape[-1] not in (1, 3, 4)):
        a = np.moveaxis(a, 0, -1)  # C x H x W -> H x W x C
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        raise InputError(f"an image array of shape {tuple(a.shape)}; pass H x W x 3 (RGB), H x W x 4 (RGBA) or H x W (gray); a batch as a list")
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise InputError("the image array holds NaN or infinite values")
        a = np.clip(a * 255.0 if a.max(initial=0) <= 1.0 else a, 0, 255).round()
    elif a.dtype.kind in "iu" and a.dtype.itemsize > 1:
        a = a / 257.0 if a.max(initial=0) > 255 else a
        a = np.clip(a, 0, 255).round()
    elif a.dtype.kind not in "iu":
        raise InputError(f"an image array of dtype {a.dtype}; pass uint8, uint16, bool or float values")
    return np.ascontiguousarray(a.astype(np.uint8))
