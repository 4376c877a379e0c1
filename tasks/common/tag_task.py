"""Annotation (multi-label tagging): images with their tags, binary cross-entropy, scored with mAP and
F1 at a threshold tuned on the evaluation split (and saved with the model)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from accelerate import Accelerator
from datasets import Dataset

from tasks.common.data import ImageReader, open_tags
from tasks.common.task import TaskPart, autocast_of, batches
from vl.metrics import tag_scores, tune_threshold
from vl.modeling import VLModel
from vl.processing import VLProcessor


class TagTask(TaskPart):
    kind = "tag"

    def open(self, spec: str, limit: int | None = None) -> Dataset:
        return open_tags(spec, self.cfg.data, limit)

    def texts(self) -> Iterator[str]:
        return iter(())  # tags are labels, not text to tokenize

    def head_fields(self, processor: VLProcessor) -> dict[str, Any]:
        spec = self.cfg.model.heads[self.name]
        seen = sorted({t for tags in self.train_rows["tags"] for t in tags})
        return {"tags": spec.get("tags") or seen}

    def collate(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        images, kept = self.images(rows)
        return {"pixel_values": self.processor(images=images)["pixel_values"], "tag_targets": tag_targets(kept, self.head.cfg.tags)}

    @torch.no_grad()
    def evaluate(self, model: VLModel, accelerator: Accelerator | None = None, batch_size: int = 128) -> dict[str, float]:
        """Tune the decision threshold on the evaluation rows, store it in the model, and score."""
        probs, targets = tag_probabilities(model, self.processor, self.eval_rows, self.name, batch_size, accelerator)
        set_threshold(model, self.name, tune_threshold(probs, targets))
        return tag_scores(probs, targets, self.head.cfg.threshold)


def tag_targets(rows: list[dict[str, Any]], tags: list[str]) -> torch.Tensor:
    """(B, C) 0/1 targets; tags outside the head's vocabulary (e.g. held-out pairs) are not targets."""
    index = {t: i for i, t in enumerate(tags)}
    out = torch.zeros(len(rows), len(tags))
    for i, r in enumerate(rows):
        for t in r["tags"]:
            if t in index:
                out[i, index[t]] = 1.0
    return out


def tag_probabilities(
    model: VLModel,
    processor: VLProcessor,
    rows: Dataset,
    task: str = "tag",
    batch_size: int = 128,
    accelerator: Accelerator | None = None,
    skip_bad_images: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(probs, targets), each (images, tags)."""
    head = model.heads[task]
    device = next(model.parameters()).device
    reader = ImageReader(skip=skip_bad_images)
    probs, targets = [], []
    for chunk in batches(rows, batch_size):
        images, kept = reader(chunk)
        if not kept:
            continue
        with autocast_of(accelerator):
            probs.append(model(processor(images=images)["pixel_values"].to(device), task=task)["probs"].float().cpu())
        targets.append(tag_targets(kept, head.cfg.tags))
    return torch.cat(probs), torch.cat(targets)


def set_threshold(model: VLModel, task: str, threshold: float) -> None:
    """The head decides with `threshold` from now on, and save_pretrained stores it."""
    model.heads[task].cfg.threshold = threshold
    model.config.heads[task]["threshold"] = threshold
