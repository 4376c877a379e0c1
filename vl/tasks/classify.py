"""Single-label classification (expression recognition on the Faces world; later actions): cross-
entropy, scored with accuracy overall and per yaw when the rows have one (the held-out-pose breakdown)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from datasets import Dataset

from vl.data.specs import LABEL_SPEC_HELP, column, open_labels
from vl.encoders.build import encoder_frames
from vl.metrics import FAST_METRICS
from vl.modeling import VLModel
from vl.registry import TASKS
from vl.tasks.base import TaskKind


@TASKS.register("classify")
class ClassifyTask(TaskKind):
    data_help = LABEL_SPEC_HELP
    headline = ("accuracy",)
    eval_batch_size = 128

    def open(self, spec: str, limit: int | None = None) -> Dataset:
        return open_labels(spec, self.cfg.data, limit)

    @property
    def label_field(self) -> str:
        return self.train_spec.split(":")[2]

    def head_fields(self, processor) -> dict[str, Any]:
        spec = self.cfg.model.heads[self.name]
        labels = spec.get("labels") or sorted(set(self.train_rows["label"]), key=_natural)
        return {"labels": labels, "frames": encoder_frames(self.cfg.model.encoder) or 1}

    def collate(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        inputs, kept = self.inputs(rows, train=True)
        index = {label: i for i, label in enumerate(self.head.cfg.labels)}
        return {**inputs, "labels": torch.tensor([index[r["label"]] for r in kept])}

    def predict(self, model: VLModel, inputs: dict[str, torch.Tensor], rows: list[dict[str, Any]]) -> list[str]:
        """The top label of each image."""
        logits = model(**inputs, task=self.name)["logits"]
        return [self.head.cfg.labels[i] for i in logits.argmax(-1).tolist()]

    def score(self, rows: Dataset, outputs: dict[int, Any], metrics: Sequence[str] = FAST_METRICS) -> dict[str, float]:
        """Accuracy overall and, when the rows have a yaw, per yaw (`accuracy/yaw=-60`...)."""
        labels = column(rows, "label")
        hits = {i: outputs[i] == labels[i] for i in outputs}
        out = {"accuracy": sum(hits.values()) / max(1, len(hits))}
        if "yaw" in rows.column_names:
            yaws = column(rows, "yaw")
            groups: dict[int, list[bool]] = {}
            for i, hit in hits.items():
                groups.setdefault(yaws[i], []).append(hit)
            out.update({f"accuracy/yaw={yaw}": sum(v) / len(v) for yaw, v in sorted(groups.items())})
        return out


def _natural(label: str) -> tuple[int, Any]:
    """Numbers in numeric order (yaw -60 before -30), words alphabetically."""
    try:
        return (0, float(label))
    except ValueError:
        return (1, label)
