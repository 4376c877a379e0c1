"""Caption data for the tasks: data specs, image decoding that names bad files, (image, caption) pairs."""
from __future__ import annotations

import io
from dataclasses import replace
from typing import Any

import torch
from datasets import Dataset, Image
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from vl.data.coco import load_coco_captions
from vl.data.karpathy import load_karpathy
from vl.data.shapes import SPLITS, ShapesConfig
from vl.data.shapes.dataset import build_dataset, to_caption_dataset
from vl.errors import ConfigError, DataFormatError, did_you_mean

SPEC_HELP = "shapes:<split> | coco:<captions.json>:<image folder> | karpathy:<dataset.json>:<image root>:<split>"


def open_captions(spec: str, shapes: ShapesConfig, limit: int | None = None) -> Dataset:
    """Caption-form rows (image, image_id, file_name, captions) for a data spec; images stay undecoded."""
    kind, _, rest = spec.partition(":")
    parts = rest.split(":") if rest else []
    if kind == "shapes" and len(parts) == 1:
        split = parts[0]
        if split not in SPLITS:
            raise ConfigError(f"data spec '{spec}': unknown Shapes split '{split}'{did_you_mean(split, SPLITS)}")
        n = limit if limit is not None else shapes.splits.get(split)
        if not n:
            raise ConfigError(f"data spec '{spec}': no size for split '{split}'; set data.shapes.splits.{split}=N")
        cfg = replace(shapes, splits={**shapes.splits, split: n})
        ds = to_caption_dataset(build_dataset(cfg, splits=[split])[split])
    elif kind == "coco" and len(parts) == 2:
        ds = load_coco_captions(*parts)
    elif kind == "karpathy" and len(parts) == 3:
        ds = load_karpathy(*parts).remove_columns("split")
    else:
        raise ConfigError(f"data spec '{spec}' is not one of: {SPEC_HELP}")
    if limit is not None and len(ds) > limit:
        ds = ds.select(range(limit))
    return ds.cast_column("image", Image(decode=False))  # decoded by read_image, which names bad files


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
        raise DataFormatError(
            f"cannot read image {path} ({type(err).__name__}: {err}); fix or remove it, or set data.skip_bad_images=true"
        ) from None


class CaptionPairs(torch.utils.data.Dataset):
    """Every (image, caption) pair of caption-form rows: item k is caption j of image i."""

    def __init__(self, rows: Dataset):
        self.rows = rows
        self.index = [(i, j) for i, caps in enumerate(rows["captions"]) for j in range(len(caps))]
        if not self.index:
            raise DataFormatError("the training data has no captions")

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int) -> dict[str, Any]:
        i, j = self.index[k]
        row = self.rows[i]
        return {"image": row["image"], "caption": row["captions"][j], "image_id": row["image_id"]}


class EpochSampler(torch.utils.data.Sampler[int]):
    """A new permutation each epoch, a pure function of (seed, epoch): resuming mid-run replays the same order."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


class ImageReader:
    """Decodes a batch's images; with skip=True, unreadable ones are dropped and remembered."""

    def __init__(self, skip: bool):
        self.skip = skip
        self.skipped: list[str] = []

    def __call__(self, rows: list[dict[str, Any]]) -> tuple[list[PILImage.Image], list[dict[str, Any]]]:
        images, kept = [], []
        for row in rows:
            try:
                images.append(read_image(row["image"]))
                kept.append(row)
            except DataFormatError as err:
                if not self.skip:
                    raise
                self.skipped.append(str(err))
        return images, kept
