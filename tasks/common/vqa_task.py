"""Visual question answering: questions with their ten answers, soft-score classification (and
optionally a generated answer), scored with the official VQA accuracy."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import torch
from accelerate import Accelerator
from datasets import Dataset

from tasks.common.data import ImageReader, open_vqa
from tasks.common.task import ImageGroups, TaskPart, autocast_of, batches, flatten_groups
from vl.data.shapes.questions import QUESTION_FAMILIES
from vl.metrics import normalize_answer, vqa_accuracy
from vl.modeling import VLModel
from vl.processing import VLProcessor


class VQATask(TaskPart):
    kind = "vqa"

    def open(self, spec: str, limit: int | None = None) -> Dataset:
        return open_vqa(spec, self.cfg.data, limit)

    def texts(self) -> Iterator[str]:
        yield from self.train_rows["question"]
        yield from self.train_rows["multiple_choice_answer"]

    def head_fields(self, processor: VLProcessor) -> dict[str, Any]:
        """The answer vocabulary: the most frequent (normalized) answers of the training questions."""
        spec = self.cfg.model.heads[self.name]
        counts = Counter(normalize_answer(a) for a in self.train_rows["multiple_choice_answer"])
        counts.pop("", None)
        answers = spec.get("answers") or [a for a, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))][: spec.get("max_answers", 3129)]
        known = set(answers)
        # training questions whose answer the classifier cannot give: their rows add nothing to its loss
        self.out_of_vocabulary = sum(n for a, n in counts.items() if a not in known)
        return {**processor.caption_head_ids(), "answers": answers}

    def bind(self, processor: VLProcessor, model: VLModel) -> None:
        super().bind(processor, model)
        self.answer_index = {a: i for i, a in enumerate(self.head.cfg.answers)}

    def train_items(self) -> torch.utils.data.Dataset:
        return ImageGroups(self.train_rows)

    def collate(self, groups: list[list[dict[str, Any]]]) -> dict[str, torch.Tensor]:
        """Each image once, all its questions: question_image maps every question to its image."""
        images, kept_images = self.images([g[0] for g in groups])
        _, kept, index = flatten_groups([g for g in groups if g[0] in kept_images])
        c = self.head.cfg
        q = self.processor.encode_texts([r["question"] for r in kept], c.max_len)
        scores = torch.zeros(len(kept), len(c.answers))
        for i, r in enumerate(kept):
            for answer, n in Counter(normalize_answer(a) for a in r["answers"] or [r["multiple_choice_answer"]]).items():
                if answer in self.answer_index:
                    scores[i, self.answer_index[answer]] = min(1.0, n / 3)
        batch = {
            "pixel_values": self.processor(images=images)["pixel_values"],
            "question_image": index,
            "question_ids": q["ids"],
            "question_mask": q["mask"],
            "answer_scores": scores,
        }
        if c.generative:
            text = self.processor.encode_captions([normalize_answer(r["multiple_choice_answer"]) for r in kept], c.decoder.max_len - 1)
            batch.update(answer_input_ids=text["input_ids"], answer_labels=text["labels"])
        return batch

    @torch.no_grad()
    def evaluate(self, model: VLModel, accelerator: Accelerator | None = None, batch_size: int = 128) -> dict[str, float]:
        preds = answer_questions(model, self.processor, self.eval_rows, self.name, batch_size, accelerator)
        return vqa_summary(self.eval_rows, preds)


def answer_questions(
    model: VLModel,
    processor: VLProcessor,
    rows: Dataset,
    task: str = "vqa",
    batch_size: int = 128,
    accelerator: Accelerator | None = None,
    skip_bad_images: bool = False,
) -> dict[int, str]:
    """The classifier's top answer to each row's question, by question_id."""
    head = model.heads[task]
    device = next(model.parameters()).device
    reader = ImageReader(skip=skip_bad_images)
    preds: dict[int, str] = {}
    for chunk in batches(rows, batch_size):
        images, kept = reader(chunk)
        if not kept:
            continue
        q = processor.encode_texts([r["question"] for r in kept], head.cfg.max_len)
        pixels = processor(images=images)["pixel_values"].to(device)
        with autocast_of(accelerator):
            logits = model(pixels, task=task, question_ids=q["ids"].to(device), question_mask=q["mask"].to(device))["logits"]
        for r, i in zip(kept, logits.argmax(-1).tolist()):
            preds[r["question_id"]] = head.cfg.answers[i]
    return preds


def vqa_records(rows: Dataset) -> list[dict[str, Any]]:
    """Annotation records (as the official file holds them) of VQA-form rows."""
    cols = ("question_id", "answers", "question_type", "answer_type")
    return [dict(zip(cols, v)) for v in zip(*(rows[c] for c in cols))]


def vqa_summary(rows: Dataset, preds: dict[int, str]) -> dict[str, float]:
    """Official accuracy overall, per answer type, and per Shapes question family when the types are Shapes'."""
    records = [r for r in vqa_records(rows) if r["question_id"] in preds]  # skipped unreadable images drop out
    acc = vqa_accuracy(records, preds)
    out = {"accuracy": acc["overall"], **{f"{t}": v for t, v in acc["perAnswerType"].items()}}
    families: dict[str, list[float]] = {}
    for r in records:
        if r["question_type"] in QUESTION_FAMILIES:
            families.setdefault(QUESTION_FAMILIES[r["question_type"]], []).append(acc["perQuestion"][r["question_id"]])
    out.update({fam: sum(v) / len(v) for fam, v in families.items()})
    return out
