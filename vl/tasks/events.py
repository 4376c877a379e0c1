"""Temporal event detection: per-frame action labels from each clip's segments, binary cross-entropy,
and segments (runs of frames at the head's threshold) scored with ActivityNet's detection mAP at tIoU
0.3..0.7 (vl.metrics.detection), next to the per-frame-majority baseline on the same outputs: the whole
clip as one segment of the label most of its frames carry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from datasets import Dataset

from vl.data.specs import EVENT_SPEC_HELP, column, open_events
from vl.data.video import sample_indices
from vl.encoders.build import encoder_frames
from vl.errors import ConfigError
from vl.metrics import FAST_METRICS
from vl.metrics.detection import detection_map, frames_to_segments, majority_segments
from vl.modeling import VLModel
from vl.registry import TASKS
from vl.tasks.base import Report, TaskKind


@TASKS.register("events")
class EventsTask(TaskKind):
    data_help = EVENT_SPEC_HELP
    headline = ("mAP@0.5", "mAP")
    eval_batch_size = 64

    def open(self, spec: str, limit: int | None = None) -> Dataset:
        return open_events(spec, self.cfg.data, limit)

    def head_fields(self, processor) -> dict[str, Any]:
        spec = self.cfg.model.heads[self.name]
        frames = encoder_frames(self.cfg.model.encoder)
        if frames is None:
            raise ConfigError(f"an events head reads clips: set model.encoder.type to video_vit (model.heads.{self.name})")
        seen = sorted({s["label"] for segs in self.train_rows["segments"] for s in segs})
        return {"labels": spec.get("labels") or seen, "frames": frames}

    def collate(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        inputs, kept = self.inputs(rows, train=True)
        return {**inputs, "frame_targets": frame_targets(kept, self.head.cfg.labels, self.head.cfg.frames)}

    def predict(self, model: VLModel, inputs: dict[str, torch.Tensor], rows: list[dict[str, Any]]) -> list[np.ndarray]:
        """Each clip's per-frame action probabilities (T, A)."""
        return list(model(**inputs, task=self.name)["probs"].float().cpu().numpy())

    def score(self, rows: Sequence[dict[str, Any]], outputs: dict[int, Any], metrics: Sequence[str] = FAST_METRICS) -> dict[str, float]:
        """Detection mAP at tIoU 0.3..0.7 and their mean; the per-frame-majority baseline's; per-frame exact-set accuracy."""
        truth, found, baseline = self.segments(rows, outputs)
        ours, base = detection_map(truth, found), detection_map(truth, baseline)
        out = {k: v for k, v in ours.items() if k != "per_class"}
        out.update({f"baseline_{k}": v for k, v in base.items() if k != "per_class"})
        labels, T = self.head.cfg.labels, self.head.cfg.frames
        targets = frame_targets([rows[i] for i in outputs], labels, T).numpy()
        predicted = np.stack([outputs[i] >= self.head.cfg.threshold for i in outputs])
        out["frame_accuracy"] = float((predicted == targets.astype(bool)).all(axis=2).mean())
        return out

    def report(self, rows: Sequence[dict[str, Any]], outputs: dict[int, Any], metrics: Sequence[str]) -> Report:
        scores = self.score(rows, outputs, metrics)
        truth, found, _ = self.segments(rows, outputs)
        scores["per_class"] = detection_map(truth, found)["per_class"]
        table = "\n".join(f"{k:24} {v:.4f}" for k, v in scores.items() if isinstance(v, float))
        table += "\nAP per action (mean over tIoU 0.3..0.7):\n" + "\n".join(f"  {k:22} {v:.4f}" for k, v in scores["per_class"].items())
        results = {
            "version": "VERSION 1.3",
            "external_data": {},
            "results": {str(v): [{"label": s["label"], "score": s["score"], "segment": [s["start"], s["end"]]} for s in segs] for v, segs in found.items()},
        }
        return Report(scores, table, f"{len(outputs)} clips", results, "detections")

    def segments(self, rows: Sequence[dict[str, Any]], outputs: dict[int, Any]) -> tuple[dict, dict, dict]:
        """(ground truth, predicted segments, the baseline's), keyed by image_id, in seconds."""
        ids, durations, segments = (column(rows, c) for c in ("image_id", "duration", "segments"))
        labels = self.head.cfg.labels
        truth = {ids[i]: segments[i] for i in outputs}
        found = {ids[i]: frames_to_segments(outputs[i], labels, durations[i], self.head.cfg.threshold) for i in outputs}
        baseline = {ids[i]: majority_segments(outputs[i], labels, durations[i]) for i in outputs}
        return truth, found, baseline


def frame_targets(rows: list[dict[str, Any]], labels: list[str], frames: int) -> torch.Tensor:
    """(B, T, A): 1 where a segment of the label covers the middle of the sampled frame. A clip of stored
    frames knows which frames were sampled (vl.data.video.sample_indices); a video file is taken as
    sampled uniformly over its duration."""
    index = {label: a for a, label in enumerate(labels)}
    out = torch.zeros(len(rows), frames, len(labels))
    for b, row in enumerate(rows):
        d = row["duration"]
        if "frames" in row:
            n = len(row["frames"])
            times = [(i + 0.5) * d / n for i in sample_indices(n, frames)]
        else:
            times = [(k + 0.5) * d / frames for k in range(frames)]
        for s in row["segments"]:
            if s["label"] in index:
                for k, t in enumerate(times):
                    if s["start"] <= t < s["end"]:
                        out[b, k, index[s["label"]]] = 1
    return out
