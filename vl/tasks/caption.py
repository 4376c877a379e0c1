"""Captioning: (image, caption) pairs, teacher-forced loss, generated captions scored with the COCO
caption metrics (and, for Faces rows, whether each caption is true of its face)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from datasets import Dataset

from vl.data.coco import to_coco_results
from vl.data.faces.truth import caption_truth as face_caption_truth
from vl.data.shapes.truth import caption_objects
from vl.data.shapes.truth import caption_truth as shapes_caption_truth
from vl.data.shapes_video.truth import caption_truth as video_caption_truth
from vl.data.specs import SPEC_HELP, column, open_captions
from vl.metrics import FAST_METRICS, caption_scores, format_table
from vl.modeling import VLModel
from vl.registry import TASKS
from vl.tasks.base import Report, TaskKind


@TASKS.register("caption")
class CaptionTask(TaskKind):
    data_help = SPEC_HELP
    headline = ("CIDEr",)

    def open(self, spec: str, limit: int | None = None) -> Dataset:
        return open_captions(spec, self.cfg.data, limit)

    def texts(self) -> Iterable[str]:
        return (c for caps in self.train_rows["captions"] for c in caps)

    def head_fields(self, processor) -> dict[str, Any]:
        return processor.caption_head_ids()

    @classmethod
    def decoder_positions(cls, head_cfg: Any) -> tuple[str, int]:
        return "max_len", head_cfg.max_len

    def train_items(self) -> torch.utils.data.Dataset:
        return self.caption_pairs()

    def collate(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        inputs, kept = self.inputs(rows, train=True)
        batch = {**inputs, **self.processor.encode_captions([r["caption"] for r in kept], self.head.cfg.max_len - 1)}
        if getattr(self.head.cfg, "pointer", False) and kept and "scene" in kept[0]:
            batch["caption_boxes"], batch["caption_box_mask"] = self.caption_boxes(kept, batch["labels"].size(1))
        return batch

    def caption_boxes(self, rows: list[dict[str, Any]], width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Shapes rows: for each label token of each caption, the box (x, y, w, h, fractions of the image) of the
        object the words it belongs to speak of (vl.data.shapes.truth.caption_objects), (B, width, 4), and
        which tokens have one (B, width): what the caption head's pointer learns to aim at."""
        size = self.cfg.data.shapes.image_size
        captions = [r["caption"] for r in rows]
        offsets = self.processor.tokenizer(captions, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        boxes, mask = torch.zeros(len(rows), width, 4), torch.zeros(len(rows), width, dtype=torch.bool)
        for i, (row, caption, spans) in enumerate(zip(rows, captions, offsets)):
            named = caption_objects(caption, row["scene"]["objects"], size)
            for t, (start, end) in enumerate(spans[: width - 1]):  # the last label is EOS (or past a truncated caption)
                obj = next((o for a, b, o in named if start < b and end > a), None)  # a token's offsets include its leading space
                if obj is not None:
                    boxes[i, t] = torch.tensor(obj["bbox"], dtype=torch.float32) / size
                    mask[i, t] = True
        return boxes, mask

    def predict(self, model: VLModel, inputs: dict[str, torch.Tensor], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The generated caption of each image, its best beam when several are returned (and, in periodic
        evaluation, the loss of its first reference)."""
        ids = model.generate(**inputs, task=self.name, generation_config=self.generation)[:: self.generation.num_return_sequences]
        out = [{"caption": c} for c in self.processor.batch_decode(ids)]
        if self.eval_loss:
            for o, loss in zip(out, self._reference_loss(model, inputs, rows).tolist()):
                o["loss"] = loss
        return out

    eval_loss = False  # evaluate() sets it: the training curve shows the first reference's loss too

    def evaluate(self, model: VLModel, accelerator=None) -> dict[str, float]:
        self.eval_loss = True
        try:
            return super().evaluate(model, accelerator)
        finally:
            self.eval_loss = False

    def _reference_loss(self, model: VLModel, inputs: dict[str, torch.Tensor], rows: list[dict[str, Any]]) -> torch.Tensor:
        """(B,) cross-entropy of each image's first reference, mean over its tokens."""
        device = inputs["pixel_values"].device
        text = self.processor.encode_captions([r["captions"][0] for r in rows], self.head.cfg.max_len - 1)
        labels = text["labels"].to(device)
        logits = model(**inputs, task=self.name, input_ids=text["input_ids"].to(device))["logits"].float()
        token_loss = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100, reduction="none")
        return token_loss.sum(1) / (labels != -100).sum(1).clamp(min=1)

    def score(self, rows: Sequence[dict[str, Any]], outputs: dict[int, Any], metrics: Sequence[str] = FAST_METRICS) -> dict[str, float]:
        """The caption metrics (and the mean reference loss when it was computed; on Shapes, the share of
        captions whose every claim is true of the scene, so learning curves can follow it)."""
        preds, refs = self.by_image(rows, outputs)
        losses = [o["loss"] for o in outputs.values() if "loss" in o]
        out = {**({"loss": sum(losses) / len(losses)} if losses else {}), **caption_scores(refs, preds, metrics)["metrics"]}
        if "scene" in rows.column_names:
            truth = shapes_caption_truth(rows.select_columns(["image_id", "scene"]), preds, self.cfg.data.shapes.image_size)
            out["all_claims_true"] = truth["all_claims_true"]
        if "events" in rows.column_names:
            out["all_claims_true"] = self.video_truth(rows, preds)["all_claims_true"]
        return out

    def video_truth(self, rows: Dataset, preds: dict[Any, str]) -> dict[str, float]:
        """Shapes video clips: is each caption true of its clip (vl.data.shapes_video.truth)?"""
        return video_caption_truth(rows.select_columns(["image_id", "objects", "events"]), preds, self.cfg.data.shapes_video.colors)

    def report(self, rows: Sequence[dict[str, Any]], outputs: dict[int, Any], metrics: Sequence[str]) -> Report:
        preds, refs = self.by_image(rows, outputs)
        scores = caption_scores(refs, preds, metrics)
        table = format_table({"score": scores["metrics"]}, scores["skipped"])
        if {"yaw", "expression"} <= set(rows.column_names):  # Faces: is each caption true of its face?
            scores["truth"] = face_caption_truth(rows.remove_columns("image"), preds)
            table += "\nCaptions true of their face (pose phrase / expression word / both), per yaw:\n"
            table += "\n".join(f"  {k:22} {v:.4f}" for k, v in scores["truth"].items())
        if "scene" in rows.column_names:  # Shapes: is every claim of each caption true of its scene?
            scores["truth"] = shapes_caption_truth(rows.select_columns(["image_id", "scene"]), preds, self.cfg.data.shapes.image_size)
            table += "\nCaptions read against their scene (every claim true / mentions that exist / claims per caption):\n"
            table += "\n".join(f"  {k:22} {v:.4f}" for k, v in scores["truth"].items())
        if "events" in rows.column_names:  # Shapes video: is every claim of each caption true of its clip?
            scores["truth"] = self.video_truth(rows, preds)
            table += "\nCaptions read against their clip (every claim true / read / mentions that exist / events named):\n"
            table += "\n".join(f"  {k:22} {v:.4f}" for k, v in scores["truth"].items())
        return Report(scores, table, f"{scores['images']} images of {len(refs)}", to_coco_results(preds))

    @staticmethod
    def by_image(rows: Dataset, outputs: dict[int, Any]) -> tuple[dict[int, str], dict[int, list[str]]]:
        """(generated caption, references), keyed by image_id, in the rows' order."""
        ids, captions = column(rows, "image_id"), column(rows, "captions")
        preds = {ids[i]: outputs[i]["caption"] for i in sorted(outputs)}
        return preds, {ids[i]: captions[i] for i in sorted(outputs)}


def caption_images(model: VLModel, processor, rows: Dataset, cfg, batch_size: int = 64, name: str = "caption") -> tuple[dict[int, str], dict[int, list[str]]]:
    """Generated captions and references keyed by image_id (for scripts: the demo, benchmarks)."""
    kind = CaptionTask(name, cfg)
    kind.bind(processor, model)
    return kind.by_image(rows, kind.infer(model, rows, batch_size=batch_size))
