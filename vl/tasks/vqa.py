"""Visual question answering: questions with their ten answers, soft-score classification (and
optionally a generated answer), scored with the official VQA accuracy (and per question family when
the rows name one, as the Shapes world's do)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from datasets import Dataset

from vl.data.specs import VQA_SPEC_HELP, column, open_vqa
from vl.data.vqa import to_vqa_results
from vl.metrics import FAST_METRICS, normalize_answer, vqa_accuracy
from vl.metrics.vqa import VQA_EVALS
from vl.modeling import VLModel
from vl.registry import TASKS
from vl.tasks.base import ImageGroups, Report, TaskKind, grouped_inputs


@TASKS.register("vqa")
class VQATask(TaskKind):
    asks_questions = True
    data_help = VQA_SPEC_HELP
    headline = ("accuracy",)
    eval_batch_size = 128
    out_of_vocabulary = 0

    def open(self, spec: str, limit: int | None = None) -> Dataset:
        return open_vqa(spec, self.cfg.data, limit)

    def texts(self) -> Iterable[str]:
        yield from self.train_rows["question"]
        yield from self.train_rows["multiple_choice_answer"]

    def head_fields(self, processor) -> dict[str, Any]:
        """The answer vocabulary: the most frequent answers of the training questions, fully normalized as
        the official evaluation normalizes (so "Two" and "2" are one class; likewise the training targets)."""
        spec = self.cfg.model.heads[self.name]
        counts = Counter(normalize_answer(a) for a in self.train_rows["multiple_choice_answer"])
        counts.pop("", None)
        answers = spec.get("answers") or [a for a, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))][: spec.get("max_answers", 3129)]
        known = set(answers)
        # training questions whose answer the classifier cannot give: their rows add nothing to its loss
        self.out_of_vocabulary = sum(n for a, n in counts.items() if a not in known)
        return {**processor.caption_head_ids(), "answers": answers}

    def describe(self) -> str:
        return f"{self.out_of_vocabulary} questions with an answer outside the vocabulary" if self.out_of_vocabulary else ""

    def bind(self, processor, model: VLModel) -> None:
        super().bind(processor, model)
        self.answer_index = {a: i for i, a in enumerate(self.head.cfg.answers)}

    def train_items(self) -> torch.utils.data.Dataset:
        return ImageGroups(self.train_rows)

    def collate(self, groups: list[list[dict[str, Any]]]) -> dict[str, torch.Tensor]:
        """Each image once, all its questions: question_image maps every question to its image."""
        inputs, kept, index = grouped_inputs(self, groups)
        c = self.head.cfg
        q = self.processor.encode_texts([r["question"] for r in kept], c.max_len)
        scores = torch.zeros(len(kept), len(c.answers))
        for i, r in enumerate(kept):
            for answer, n in Counter(normalize_answer(a) for a in r["answers"] or [r["multiple_choice_answer"]]).items():
                if answer in self.answer_index:
                    scores[i, self.answer_index[answer]] = min(1.0, n / 3)
        batch = {**inputs, "question_image": index, "question_ids": q["ids"], "question_mask": q["mask"], "answer_scores": scores}
        if kept and "question_boxes" in kept[0]:  # the objects each question points at (Shapes rows; GQA-style)
            batch["question_boxes"], batch["question_box_mask"] = pad_boxes([r["question_boxes"] for r in kept])
        if kept and "question_kind_boxes" in kept[0] and c.grounding_kinds:  # every object of the kinds asked about
            batch["question_kind_boxes"], batch["question_kind_box_mask"] = pad_boxes([r["question_kind_boxes"] for r in kept])
            kind = torch.zeros(batch["question_kind_box_mask"].shape, dtype=torch.long)
            for i, r in enumerate(kept):
                kind[i, : len(r["question_kind_pointer"])] = torch.tensor(r["question_kind_pointer"], dtype=torch.long)
            batch["question_kind_pointer"] = kind
        if c.generative:
            text = self.processor.encode_captions([normalize_answer(r["multiple_choice_answer"]) for r in kept], c.decoder.max_len - 1)
            batch.update(answer_input_ids=text["input_ids"], answer_labels=text["labels"])
        return batch

    def predict(self, model: VLModel, inputs: dict[str, torch.Tensor], rows: list[dict[str, Any]]) -> list[str]:
        """The classifier's top answer to each row's question."""
        return answer(model, self.name, self.processor, inputs, [r["question"] for r in rows], [r["image_id"] for r in rows])

    def score(self, rows: Sequence[dict[str, Any]], outputs: dict[int, Any], metrics: Sequence[str] = FAST_METRICS) -> dict[str, float]:
        """Official accuracy overall, per answer type, and per question family when the rows name one."""
        records, preds = self._records(rows, outputs)
        acc = vqa_accuracy(records, preds, version=self.cfg.evaluation.vqa_eval)
        out = {"accuracy": acc["overall"], **acc["perAnswerType"]}
        if "question_family" in rows.column_names:
            families: dict[str, list[float]] = {}
            for record, family in zip(records, _column(rows, "question_family", outputs)):
                families.setdefault(family, []).append(acc["perQuestion"][record["question_id"]])
            out.update({fam: sum(v) / len(v) for fam, v in families.items()})
            # a world that names families has few question types: each on the curve too (VQA v2's 65 are not)
            out.update({f"type/{t}": v for t, v in acc["perQuestionType"].items()})
        return out

    def report(self, rows: Sequence[dict[str, Any]], outputs: dict[int, Any], metrics: Sequence[str]) -> Report:
        records, preds = self._records(rows, outputs)
        acc = vqa_accuracy(records, preds, version=self.cfg.evaluation.vqa_eval)
        summary = self.score(rows, outputs)
        table = vqa_table(acc) + "\nPer question family:\n" + "\n".join(f"  {k:24} {v:6.2f}" for k, v in summary.items() if not k.startswith("type/"))
        return Report({**acc, "summary": summary}, table, f"{acc['questions']} questions", to_vqa_results(preds))

    @staticmethod
    def _records(rows: Dataset, outputs: dict[int, Any]) -> tuple[list[dict[str, Any]], dict[int, str]]:
        """(annotation records as the official file holds them, answers by question_id) of the answered rows."""
        cols = ("question_id", "answers", "question_type", "answer_type")
        values = zip(*(_column(rows, c, outputs) for c in cols))
        records = [dict(zip(cols, v)) for v in values]
        return records, {r["question_id"]: outputs[i] for r, i in zip(records, sorted(outputs))}


def _column(rows: Dataset, name: str, outputs: dict[int, Any]) -> list[Any]:
    """A column's values at the answered rows, in row order."""
    values = column(rows, name)
    return [values[i] for i in sorted(outputs)]


def answer(model: VLModel, task: str, processor, inputs: dict[str, torch.Tensor], questions: list[str], image_ids: list[Any] | None = None) -> list[str]:
    """The top answer of the `task` VQA head to each question about its image (one image per question;
    given the image_ids, each distinct image is encoded once for all its questions)."""
    head = model.heads[task]
    device = inputs["pixel_values"].device
    q = processor.encode_texts(questions, head.cfg.max_len)
    fields = {"question_ids": q["ids"].to(device), "question_mask": q["mask"].to(device)}
    if image_ids is not None:
        first: dict[Any, int] = {}
        fields["question_image"] = torch.tensor([first.setdefault(i, len(first)) for i in image_ids], device=device)
        inputs = {**inputs, "pixel_values": inputs["pixel_values"][[image_ids.index(i) for i in first]]}
    logits = model(**inputs, task=task, **fields)["logits"]
    return [head.cfg.answers[i] for i in logits.argmax(-1).tolist()]


def pad_boxes(rows: list[list[list[float]]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Each question's boxes as one tensor (Q, K, 4), K the most any question has, and which are there (Q, K)."""
    k = max(1, max(map(len, rows)))
    boxes, mask = torch.zeros(len(rows), k, 4), torch.zeros(len(rows), k, dtype=torch.bool)
    for i, row in enumerate(rows):
        if row:
            boxes[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = True
    return boxes, mask


def vqa_table(acc: dict[str, Any]) -> str:
    """Which evaluation scored, then overall, per answer type and per question type accuracy, as the
    official demo prints them."""
    rows = [f"VQA accuracy by the {VQA_EVALS[acc['evaluation']]}", f"Overall Accuracy is: {acc['overall']:.2f}", "Per Answer Type Accuracy is the following:"]
    rows += [f"  {k:24} {v:6.2f}" for k, v in acc["perAnswerType"].items()]
    rows += ["Per Question Type Accuracy is the following:"] + [f"  {k:24} {v:6.2f}" for k, v in acc["perQuestionType"].items()]
    return "\n".join(rows)
