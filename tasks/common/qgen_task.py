"""Visual question generation: (image, answer [, question type]) -> question, scored with BLEU /
METEOR / CIDEr against every question of that image with that answer, and by answerability: the
share of generated questions the model's VQA head answers with the given answer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from accelerate import Accelerator
from datasets import Dataset

from tasks.common.data import ImageReader, open_vqa
from tasks.common.experiment import ExperimentConfig
from tasks.common.task import ImageGroups, TaskPart, autocast_of, batches, flatten_groups
from vl.heads.qgen import qgen_prompt
from vl.metrics import FAST_METRICS, caption_scores, normalize_answer
from vl.modeling import VLModel
from vl.processing import VLProcessor


class QGenTask(TaskPart):
    kind = "qgen"

    def open(self, spec: str, limit: int | None = None) -> Dataset:
        return open_vqa(spec, self.cfg.data, limit)

    def texts(self) -> Iterator[str]:
        yield from self.train_rows["question"]
        yield from self.train_rows["multiple_choice_answer"]
        yield from set(self.train_rows["question_type"])

    def train_items(self) -> torch.utils.data.Dataset:
        return ImageGroups(self.train_rows)

    def collate(self, groups: list[list[dict[str, Any]]]) -> dict[str, torch.Tensor]:
        """Each image once, a question to write for every one of its rows (prompt_image maps them)."""
        images, kept_images = self.images([g[0] for g in groups])
        _, kept, index = flatten_groups([g for g in groups if g[0] in kept_images])
        c = self.head.cfg
        prompt = self.processor.encode_texts(prompts(kept, c.use_question_type), c.max_len, what="answer prompt")
        text = self.processor.encode_captions([r["question"] for r in kept], c.decoder.max_len - 1)
        pixels = self.processor(images=images)["pixel_values"]
        return {"pixel_values": pixels, "prompt_image": index, "prompt_ids": prompt["ids"], "prompt_mask": prompt["mask"], **text}

    @torch.no_grad()
    def evaluate(self, model: VLModel, accelerator: Accelerator | None = None, batch_size: int = 64) -> dict[str, float]:
        return score_questions(model, self.processor, self.eval_rows, self.cfg, self.name, batch_size, accelerator, FAST_METRICS)[0]


def prompts(rows: list[dict[str, Any]], use_question_type: bool) -> list[str]:
    return [qgen_prompt(normalize_answer(r["multiple_choice_answer"]), r["question_type"] if use_question_type else None) for r in rows]


def qgen_items(rows: Dataset, use_question_type: bool) -> tuple[list[dict[str, Any]], dict[tuple, list[str]]]:
    """One item per (image, answer [, question type]) and, per (image, answer), every question with that answer."""
    refs: dict[tuple, list[str]] = {}
    items: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        answer = normalize_answer(r["multiple_choice_answer"])
        refs.setdefault((r["image_id"], answer), []).append(r["question"])
        key = (r["image_id"], answer, r["question_type"] if use_question_type else None)
        items.setdefault(key, r)
    return list(items.values()), refs


def score_questions(
    model: VLModel,
    processor: VLProcessor,
    rows: Dataset,
    cfg: ExperimentConfig,
    task: str = "qgen",
    batch_size: int = 64,
    accelerator: Accelerator | None = None,
    metrics: tuple[str, ...] = FAST_METRICS,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Generate a question per item: (caption metrics against the references and answerability,
    the generated questions as records {image_id, answer, question_type, question})."""
    head = model.heads[task]
    items, refs = qgen_items(rows, head.cfg.use_question_type)
    vqa = next((n for n, h in model.heads.items() if h.registry_name == "vqa"), None)
    device = next(model.parameters()).device
    reader = ImageReader(skip=cfg.data.skip_bad_images)
    preds: dict[int, str] = {}
    references: dict[int, list[str]] = {}
    answered = 0
    for start, chunk in zip(range(0, len(items), batch_size), batches(items, batch_size)):
        images, kept = reader(chunk)
        if not kept:
            continue
        pixels = processor(images=images)["pixel_values"].to(device)
        p = processor.encode_texts(prompts(kept, head.cfg.use_question_type), head.cfg.max_len, what="answer prompt")
        with autocast_of(accelerator):
            ids = model.generate(pixels, task=task, generation_config=cfg.generation, prompt_ids=p["ids"].to(device), prompt_mask=p["mask"].to(device))
        questions = processor.batch_decode(ids)
        for k, (r, q) in enumerate(zip(kept, questions)):
            key = start + k
            preds[key] = q
            references[key] = refs[(r["image_id"], normalize_answer(r["multiple_choice_answer"]))]
        if vqa is not None:
            answered += _answerable(model, processor, vqa, pixels, questions, kept, accelerator)
    out: dict[str, Any] = dict(caption_scores(references, preds, metrics)["metrics"])
    if vqa is not None:
        out["answerability"] = answered / max(1, len(preds))
    generated = [
        {"image_id": r["image_id"], "answer": normalize_answer(r["multiple_choice_answer"]), "question_type": r["question_type"], "question": preds[i]}
        for i, r in enumerate(items)
        if i in preds
    ]
    return out, generated


def _answerable(model, processor, vqa: str, pixels, questions: list[str], rows, accelerator) -> int:
    """How many generated questions the VQA head answers with the answer they were generated for."""
    head = model.heads[vqa]
    texts = [q if q.strip() else "?" for q in questions]  # an empty generation is simply not answerable
    q = processor.encode_texts(texts, head.cfg.max_len)
    with autocast_of(accelerator):
        logits = model(pixels, task=vqa, question_ids=q["ids"].to(pixels.device), question_mask=q["mask"].to(pixels.device))["logits"]
    got = [head.cfg.answers[i] for i in logits.argmax(-1).tolist()]
    return sum(g == normalize_answer(r["multiple_choice_answer"]) and t.strip() != "" for g, r, t in zip(got, rows, questions))
