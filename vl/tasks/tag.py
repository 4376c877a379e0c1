"""Annotation (multi-label tagging): images with their tags, binary cross-entropy, scored with mAP and
F1 at a threshold tuned on the evaluation split during training (and saved with the model)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from datasets import Dataset

from vl.data.specs import TAG_SPEC_HELP, open_tags
from vl.metrics import FAST_METRICS, tag_scores, tune_threshold
from vl.modeling import VLModel
from vl.registry import TASKS
from vl.tasks.base import TaskKind


@TASKS.register("tag")
class TagTask(TaskKind):
    data_help = TAG_SPEC_HELP
    headline = ("mAP", "F1")
    eval_batch_size = 128

    def open(self, spec: str, limit: int | None = None) -> Dataset:
        return open_tags(spec, self.cfg.data, limit)

    def head_fields(self, processor) -> dict[str, Any]:
        spec = self.cfg.model.heads[self.name]
        seen = sorted({t for tags in self.train_rows["tags"] for t in tags})
        return {"tags": spec.get("tags") or seen}

    def collate(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        inputs, kept = self.inputs(rows, train=True)
        return {**inputs, "tag_targets": tag_targets(kept, self.head.cfg.tags)}

    def predict(self, model: VLModel, inputs: dict[str, torch.Tensor], rows: list[dict[str, Any]]) -> list[list[float]]:
        """Each image's probability of every tag."""
        return model(**inputs, task=self.name)["probs"].float().cpu().tolist()

    def evaluate(self, model: VLModel, accelerator=None) -> dict[str, float]:
        """Tune the decision threshold on the evaluation rows, store it in the model, and score."""
        probs, targets = self._arrays(self.eval_rows, self.infer(model, self.eval_rows, accelerator))
        set_threshold(model, self.name, tune_threshold(probs, targets))
        return tag_scores(probs, targets, self.head.cfg.threshold)

    def score(self, rows: Dataset, outputs: dict[int, Any], metrics: Sequence[str] = FAST_METRICS) -> dict[str, float]:
        """mAP, and F1 at the head's threshold."""
        return tag_scores(*self._arrays(rows, outputs), self.head.cfg.threshold)

    def _arrays(self, rows: Dataset, outputs: dict[int, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """(probs, targets), each (images, tags), of the scored rows."""
        tags = rows["tags"]
        order = sorted(outputs)
        return torch.tensor([outputs[i] for i in order]), tag_targets([{"tags": tags[i]} for i in order], self.head.cfg.tags)


def tag_targets(rows: list[dict[str, Any]], tags: list[str]) -> torch.Tensor:
    """(B, C) 0/1 targets; tags outside the head's vocabulary (e.g. held-out pairs) are not targets."""
    index = {t: i for i, t in enumerate(tags)}
    out = torch.zeros(len(rows), len(tags))
    for i, r in enumerate(rows):
        for t in r["tags"]:
            if t in index:
                out[i, index[t]] = 1.0
    return out


def set_threshold(model: VLModel, task: str, threshold: float) -> None:
    """The head decides with `threshold` from now on, and save_pretrained stores it."""
    model.heads[task].cfg.threshold = threshold
    model.config.heads[task]["threshold"] = threshold
