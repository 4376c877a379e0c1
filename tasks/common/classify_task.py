"""Single-label classification (expression recognition on the Faces world; later actions): cross-
entropy, scored with accuracy overall and per yaw (the held-out-pose experiment's breakdown)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from accelerate import Accelerator
from datasets import Dataset

from tasks.common.data import ImageReader, open_labels
from tasks.common.task import TaskPart, autocast_of, batches
from vl.modeling import VLModel
from vl.processing import VLProcessor


class ClassifyTask(TaskPart):
    kind = "classify"

    def open(self, spec: str, limit: int | None = None) -> Dataset:
        return open_labels(spec, self.cfg.data, limit)

    @property
    def label_field(self) -> str:
        return self.train_spec.split(":")[2]

    def texts(self) -> Iterator[str]:
        return iter(())

    def head_fields(self, processor: VLProcessor) -> dict[str, Any]:
        spec = self.cfg.model.heads[self.name]
        return {"labels": spec.get("labels") or sorted(set(self.train_rows["label"]), key=_natural)}

    def collate(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        images, kept = self.images(rows)
        index = {label: i for i, label in enumerate(self.head.cfg.labels)}
        return {"pixel_values": self.processor(images=images)["pixel_values"], "labels": torch.tensor([index[r["label"]] for r in kept])}

    @torch.no_grad()
    def evaluate(self, model: VLModel, accelerator: Accelerator | None = None, batch_size: int = 128) -> dict[str, float]:
        preds = classify_images(model, self.processor, self.eval_rows, self.name, batch_size, accelerator)
        return accuracy_summary(self.eval_rows, preds)


def classify_images(
    model: VLModel,
    processor: VLProcessor,
    rows: Dataset,
    task: str,
    batch_size: int = 128,
    accelerator: Accelerator | None = None,
    skip_bad_images: bool = False,
) -> dict[int, str]:
    """The top label of each row's image, by image_id."""
    head, device = model.heads[task], next(model.parameters()).device
    reader = ImageReader(skip=skip_bad_images)
    preds: dict[int, str] = {}
    for chunk in batches(rows, batch_size):
        images, kept = reader(chunk)
        if not kept:
            continue
        with autocast_of(accelerator):
            logits = model(processor(images=images)["pixel_values"].to(device), task=task)["logits"]
        preds.update({r["image_id"]: head.cfg.labels[i] for r, i in zip(kept, logits.argmax(-1).tolist())})
    return preds


def accuracy_summary(rows: Dataset, preds: dict[int, str]) -> dict[str, float]:
    """Accuracy overall and, for Faces rows, per yaw (`accuracy/yaw=-60`...)."""
    ids, labels = rows["image_id"], rows["label"]
    hits = {i: preds[i] == label for i, label in zip(ids, labels) if i in preds}
    out = {"accuracy": sum(hits.values()) / max(1, len(hits))}
    if "yaw" in rows.column_names:
        groups: dict[int, list[bool]] = {}
        for i, yaw in zip(ids, rows["yaw"]):
            if i in hits:
                groups.setdefault(yaw, []).append(hits[i])
        out.update({f"accuracy/yaw={yaw}": sum(v) / len(v) for yaw, v in sorted(groups.items())})
    return out


def _natural(label: str) -> tuple[int, Any]:
    """Numbers in numeric order (yaw -60 before -30), words alphabetically."""
    try:
        return (0, float(label))
    except ValueError:
        return (1, label)
