"""Visual question generation: (image, answer [, question type]) -> question, scored with BLEU /
METEOR / CIDEr against every question of that image with that answer, and by answerability: the
share of generated questions the model's VQA head answers with the given answer."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from datasets import Dataset

from vl.data.specs import VQA_SPEC_HELP, open_vqa
from vl.heads.qgen import qgen_prompt
from vl.metrics import CAPTION_METRICS, FAST_METRICS, caption_scores, format_table, normalize_answer
from vl.modeling import VLModel
from vl.registry import TASKS
from vl.tasks.base import ImageGroups, Report, TaskKind, grouped_inputs
from vl.tasks.vqa import answer


@TASKS.register("qgen")
class QGenTask(TaskKind):
    asks_questions = True
    data_help = VQA_SPEC_HELP
    headline = ("CIDEr", "answerability")

    def open(self, spec: str, limit: int | None = None) -> Dataset:
        return open_vqa(spec, self.cfg.data, limit)

    def texts(self) -> Iterable[str]:
        yield from self.train_rows["question"]
        yield from self.train_rows["multiple_choice_answer"]
        yield from set(self.train_rows["question_type"])

    def head_fields(self, processor) -> dict[str, Any]:
        return processor.caption_head_ids()

    @classmethod
    def decoder_positions(cls, head_cfg: Any) -> tuple[str, int]:
        return "decoder.max_len", head_cfg.decoder.max_len

    def train_items(self) -> torch.utils.data.Dataset:
        return ImageGroups(self.train_rows)

    def collate(self, groups: list[list[dict[str, Any]]]) -> dict[str, torch.Tensor]:
        """Each image once, a question to write for every one of its rows (prompt_image maps them)."""
        inputs, kept, index = grouped_inputs(self, groups)
        c = self.head.cfg
        prompt = self.processor.encode_texts(prompts(kept, c.use_question_type), c.max_len, what="answer prompt")
        text = self.processor.encode_captions([r["question"] for r in kept], c.decoder.max_len - 1)
        return {**inputs, "prompt_image": index, "prompt_ids": prompt["ids"], "prompt_mask": prompt["mask"], **text}

    def predict(self, model: VLModel, inputs: dict[str, torch.Tensor], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A question for each (image, answer) item and, when the model has a VQA head, whether that head
        answers it with the answer it was generated for (an empty question is not answerable). With
        generation.num_return_sequences n > 1 and a VQA head, the round-trip check (Alberti et al. 2019):
        of each item's n questions, best first, the first the VQA head answers with the item's answer (else
        the best); `candidates` says how many were written."""
        device = inputs["pixel_values"].device
        n = self.generation.num_return_sequences
        p = self.processor.encode_texts(prompts(rows, self.head.cfg.use_question_type), self.head.cfg.max_len, what="answer prompt")
        ids = model.generate(**inputs, task=self.name, generation_config=self.generation, prompt_ids=p["ids"].to(device), prompt_mask=p["mask"].to(device))
        questions = self.processor.batch_decode(ids)  # n per item, consecutive
        vqa = next((name for name, h in model.heads.items() if h.registry_name == "vqa"), None)
        if vqa is None:
            return [{"question": q} for q in questions[::n]]
        wanted = [normalize_answer(r["multiple_choice_answer"]) for r in rows]
        pixels = {**inputs, "pixel_values": inputs["pixel_values"].repeat_interleave(n, dim=0)}
        image_ids = [r["image_id"] for r in rows for _ in range(n)]  # each image encoded once for all its questions
        got = answer(model, vqa, self.processor, pixels, [q if q.strip() else "?" for q in questions], image_ids)
        out = []
        for i, want in enumerate(wanted):
            tried = [(q, q.strip() != "" and g == want) for q, g in zip(questions[i * n : (i + 1) * n], got[i * n : (i + 1) * n])]
            question, answerable = next((t for t in tried if t[1]), tried[0])
            out.append({"question": question, "answerable": answerable} | ({"candidates": n} if n > 1 else {}))
        return out

    def items(self, rows: Dataset) -> tuple[list[dict[str, Any]], dict[tuple, list[str]]]:
        """(one item per (image, answer [, question type]): what questions are generated for; the
        references of each (image, answer)), worked out once per set of rows."""
        if getattr(self, "_items_of", (None,))[0] is not rows:
            self._items_of = (rows, qgen_items(rows, self.head.cfg.use_question_type))
        return self._items_of[1]

    def infer(self, model: VLModel, rows: Sequence[dict[str, Any]], accelerator=None, batch_size: int = 0) -> dict[int, Any]:
        """Outputs by index into self.items(rows)."""
        return super().infer(model, self.items(rows)[0], accelerator, batch_size)

    def score(self, rows: Dataset, outputs: dict[int, Any], metrics: Sequence[str] = FAST_METRICS) -> dict[str, float]:
        items, refs = self.items(rows)
        preds = {i: outputs[i]["question"] for i in sorted(outputs)}
        references = {i: refs[(items[i]["image_id"], normalize_answer(items[i]["multiple_choice_answer"]))] for i in preds}
        out: dict[str, Any] = dict(caption_scores(references, preds, metrics)["metrics"])
        answerable = [o["answerable"] for o in outputs.values() if "answerable" in o]
        if answerable:
            out["answerability"] = sum(answerable) / len(answerable)
        return out

    def report(self, rows: Dataset, outputs: dict[int, Any], metrics: Sequence[str]) -> Report:
        scores = self.score(rows, outputs, metrics)
        table = format_table({"score": {k: v for k, v in scores.items() if k in CAPTION_METRICS}})
        if "answerability" in scores:
            table += f"\nanswerability (the model's VQA head gives the answer asked for): {scores['answerability']:.4f}"
            n = self.generation.num_return_sequences
            table += f" (round-trip check: the first of {n} questions it answers as asked)" if n > 1 else ""
        items = self.items(rows)[0]
        kept = ("question", "answerable", "candidates")
        generated = [
            {"image_id": r["image_id"], "answer": normalize_answer(r["multiple_choice_answer"]), "question_type": r["question_type"]}
            | {k: o[k] for k in kept if k in o}
            for r, o in ((items[i], o) for i, o in sorted(outputs.items()))
        ]
        return Report({"metrics": scores}, table, f"{len(generated)} generated questions", generated, results_prefix="questions")


def prompts(rows: list[dict[str, Any]], use_question_type: bool) -> list[str]:
    return [qgen_prompt(normalize_answer(r["multiple_choice_answer"]), r["question_type"] if use_question_type else None) for r in rows]


def qgen_items(rows: Dataset, use_question_type: bool) -> tuple[list[dict[str, Any]], dict[tuple, list[str]]]:
    """One item per (image, answer [, question type]) and, per (image, answer), every question with that answer."""
    refs: dict[tuple, list[str]] = {}
    items: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        answer_ = normalize_answer(r["multiple_choice_answer"])
        refs.setdefault((r["image_id"], answer_), []).append(r["question"])
        key = (r["image_id"], answer_, r["question_type"] if use_question_type else None)
        items.setdefault(key, r)
    return list(items.values()), refs
