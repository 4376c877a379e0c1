"""Captioning: (image, caption) pairs, teacher-forced loss, greedy captions scored with BLEU-4 / CIDEr."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from accelerate import Accelerator
from datasets import Dataset

from gan.augment import GANAugmented
from tasks.common.data import CaptionPairs, ImageReader, open_captions
from tasks.common.experiment import ExperimentConfig
from tasks.common.task import Rows, TaskPart, autocast_of, batches
from vl.metrics import FAST_METRICS, caption_scores
from vl.modeling import VLModel
from vl.processing import VLProcessor


class CaptionTask(TaskPart):
    kind = "caption"

    def open(self, spec: str, limit: int | None = None) -> Dataset:
        return open_captions(spec, self.cfg.data, limit)

    def texts(self) -> Iterator[str]:
        return (c for caps in self.train_rows["captions"] for c in caps)

    def train_items(self) -> torch.utils.data.Dataset:
        counts = [len(caps) for caps in self.train_rows["captions"]]
        items = self.augmented(Rows(self.train_rows))
        return CaptionPairs(items, items.caption_counts(counts) if isinstance(items, GANAugmented) else counts)

    def collate(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        images, kept = self.images(rows)
        return dict(self.processor(images=images, text=[r["caption"] for r in kept], max_length=self.head.cfg.max_len - 1))

    @torch.no_grad()
    def evaluate(self, model: VLModel, accelerator: Accelerator | None = None, batch_size: int = 64) -> dict[str, float]:
        """Loss on the first reference of each evaluation image, and BLEU-4 / CIDEr of greedy captions."""
        preds, refs = caption_images(model, self.processor, self.eval_rows, self.cfg, batch_size, accelerator, self.name)
        device = next(model.parameters()).device
        losses = []
        for chunk in batches(self.eval_rows, batch_size):
            images, kept = self.reader(chunk)
            if not kept:
                continue
            batch = self.processor(images=images, text=[r["captions"][0] for r in kept], max_length=self.head.cfg.max_len - 1)
            with autocast_of(accelerator):
                losses.append(model(**batch.to(device), task=self.name)["loss"].float().item())
        scores = caption_scores(refs, preds, FAST_METRICS)["metrics"]
        return {"loss": sum(losses) / len(losses), **scores}


def caption_images(
    model: VLModel,
    processor: VLProcessor,
    rows: Dataset,
    cfg: ExperimentConfig,
    batch_size: int,
    accelerator: Accelerator | None = None,
    task: str = "caption",
) -> tuple[dict[int, str], dict[int, list[str]]]:
    """Generated captions and references, keyed by image_id, in the rows' order."""
    reader = ImageReader(skip=cfg.data.skip_bad_images)
    device = next(model.parameters()).device
    preds: dict[int, str] = {}
    refs: dict[int, list[str]] = {}
    for chunk in batches(rows, batch_size):
        images, kept = reader(chunk)
        if not kept:
            continue
        pixels = processor(images=images)["pixel_values"].to(device)
        with autocast_of(accelerator):
            ids = model.generate(pixels, task=task, generation_config=cfg.generation)
        for row, text in zip(kept, processor.batch_decode(ids)):
            preds[row["image_id"]] = text
            refs[row["image_id"]] = row["captions"]
    return preds, refs
