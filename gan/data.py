"""Faces as training tensors: image in [-1, 1], pose and expression as class indices, identity."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from datasets import Dataset

from vl.data.faces import FacesConfig


class FaceTensors(torch.utils.data.Dataset):
    """Rows of a Faces split -> {"image" (3, H, W) in [-1, 1], "pose", "expression", "identity"}."""

    def __init__(self, rows: Dataset, faces: FacesConfig):
        self.rows = rows
        self.expression_index = {e: i for i, e in enumerate(faces.expressions)}

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        row = self.rows[i]
        image = torch.from_numpy(np.asarray(row["image"].convert("RGB"), dtype=np.float32)).permute(2, 0, 1) / 127.5 - 1
        return {
            "image": image,
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
