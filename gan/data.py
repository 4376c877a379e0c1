"""Faces as training tensors: image in [-1, 1], pose and expression as class indices, identity."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from PIL import Image

from vl.data.faces import FacesConfig


def to_pixels(image: Image.Image) -> torch.Tensor:
    """An image -> (3, H, W) float in [-1, 1], the GAN's pixel range."""
    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32)).permute(2, 0, 1) / 127.5 - 1


def to_image(pixels: torch.Tensor) -> Image.Image:
    """(3, H, W) in [-1, 1] -> an RGB image (values outside the range are clipped)."""
    return Image.fromarray(((pixels.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy())


def to_stored(image: Image.Image) -> dict[str, Any]:
    """A PIL image as an undecoded datasets.Image value ({"bytes": PNG, "path": None}): what dataset rows hold and the task kinds read."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


class FaceTensors(torch.utils.data.Dataset):
    """Rows of a Faces split -> {"image" (3, H, W) in [-1, 1], "pose", "expression", "identity"}."""

    def __init__(self, rows: Dataset, faces: FacesConfig):
        self.rows = rows
        self.expression_index = {e: i for i, e in enumerate(faces.expressions)}

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        row = self.rows[i]
        return {
            "image": to_pixels(row["image"]),
            "pose": row["pose"],
            "expression": self.expression_index[row["expression"]],
            "identity": row["identity"],
        }


def stack_faces(rows: Dataset, faces: FacesConfig) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """A whole (small) split in memory: images (N, 3, H, W) in [-1, 1] and {"pose", "expression", "identity"} (N,)."""
    data = FaceTensors(rows, faces)
    items = [data[i] for i in range(len(data))]
    images = torch.stack([it["image"] for it in items])
    return images, {k: torch.tensor([it[k] for it in items]) for k in ("pose", "expression", "identity")}
