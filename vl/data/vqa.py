"""VQA v2 format: a questions file (`{"data_subtype", "questions": [{"image_id", "question", "question_id"}]}`)
and an annotations file (`{"annotations": [{"question_id", "image_id", "question_type", "answer_type",
"multiple_choice_answer", "answers": [{"answer", "answer_confidence", "answer_id"} x 10]}]}`).

Images are found as the official tools find them: image_dir/COCO_<data_subtype>_<image_id:012d>.jpg
(or .png, which is what tasks.export_shapes writes, lossless).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from datasets import Dataset, Features, Image, List, Value

from vl.data.schema import field, image_folder, read_json
from vl.errors import DataFormatError

VQA_FEATURES = Features(
    {
        "image": Image(),
        "image_id": Value("int64"),
        "question_id": Value("int64"),
        "question": Value("string"),
        "answers": List(Value("string")),
        "multiple_choice_answer": Value("string"),
        "answer_type": Value("string"),
        "question_type": Value("string"),
    }
)
Q_HINT = "VQA questions need data_subtype and questions[].image_id, .question, .question_id"
A_HINT = "VQA annotations need annotations[].question_id, .image_id, .answers[].answer, .multiple_choice_answer, .answer_type, .question_type"
IMAGE_EXTENSIONS = (".jpg", ".png", ".jpeg")
ANSWERS_PER_QUESTION = 10


def vqa_image_name(data_subtype: str, image_id: int, ext: str = ".jpg") -> str:
    """The official file name of an image: COCO_val2014_000000262148.jpg."""
    return f"COCO_{data_subtype}_{image_id:012d}{ext}"


def to_vqa(records: Iterable[dict[str, Any]], data_subtype: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(questions JSON, annotations JSON) of records holding image_id and questions with their answer.

    Each question gets the official 10 answers; synthetic ground truth is exact, so all ten agree.
    """
    questions, annotations = [], []
    for r in records:
        for q in r["questions"]:
            questions.append({"image_id": r["image_id"], "question": q["question"], "question_id": q["question_id"]})
            annotations.append(
                {
                    "question_type": q["question_type"],
                    "multiple_choice_answer": q["answer"],
                    "answers": [{"answer": q["answer"], "answer_confidence": "yes", "answer_id": k + 1} for k in range(ANSWERS_PER_QUESTION)],
                    "image_id": r["image_id"],
                    "answer_type": q["answer_type"],
                    "question_id": q["question_id"],
                }
            )
    info = {"description": "vl-suite Shapes world", "version": "2.0"}
    license_ = {"name": "CC BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"}
    head = {"info": info, "license": license_, "data_type": "mscoco", "data_subtype": data_subtype}
    return {**head, "task_type": "Open-Ended", "questions": questions}, {**head, "annotations": annotations}


def load_vqa(questions_file: str | Path, annotations_file: str | Path | None, image_dir: str | Path) -> Dataset:
    """One row per question: image, ids, question, and (given annotations) the answers and their types.

    Without an annotations file (VQA v2 test-dev/test), answers are empty and the types are "".
    """
    qdata = read_json(questions_file, "VQA questions")
    subtype = field(qdata, "data_subtype", str, "the file", questions_file, Q_HINT)
    questions = field(qdata, "questions", list, "the file", questions_file, Q_HINT)
    answers = _read_annotations(annotations_file) if annotations_file is not None else None
    folder = image_folder(image_dir, questions_file)
    present = set(os.listdir(folder))
    cols: dict[str, list] = {k: [] for k in VQA_FEATURES}
    image_paths: dict[int, str] = {}
    for i, q in enumerate(questions):
        where = f"questions[{i}]"
        image_id = field(q, "image_id", int, where, questions_file, Q_HINT)
        qid = field(q, "question_id", int, where, questions_file, Q_HINT)
        cols["question"].append(field(q, "question", str, where, questions_file, Q_HINT))
        if image_id not in image_paths:
            image_paths[image_id] = _find_image(folder, present, subtype, image_id, questions_file, where)
        cols["image"].append(image_paths[image_id])
        cols["image_id"].append(image_id)
        cols["question_id"].append(qid)
        if answers is None:
            ann = {"answers": [], "multiple_choice_answer": "", "answer_type": "", "question_type": ""}
        elif qid not in answers:
            raise DataFormatError(f"{annotations_file}: no annotation for question_id {qid} ({questions_file} {where})")
        else:
            ann = answers[qid]
        for key in ("answers", "multiple_choice_answer", "answer_type", "question_type"):
            cols[key].append(ann[key])
    return Dataset.from_dict(cols, features=VQA_FEATURES)


def _read_annotations(path: str | Path) -> dict[int, dict[str, Any]]:
    data = read_json(path, "VQA annotations")
    out = {}
    for i, a in enumerate(field(data, "annotations", list, "the file", path, A_HINT)):
        where = f"annotations[{i}]"
        qid = field(a, "question_id", int, where, path, A_HINT)
        field(a, "image_id", int, where, path, A_HINT)
        answers = field(a, "answers", list, where, path, A_HINT)
        out[qid] = {
            "answers": [field(x, "answer", str, f"{where}.answers[{k}]", path, A_HINT) for k, x in enumerate(answers)],
            "multiple_choice_answer": field(a, "multiple_choice_answer", str, where, path, A_HINT),
            "answer_type": field(a, "answer_type", str, where, path, A_HINT),
            "question_type": field(a, "question_type", str, where, path, A_HINT),
        }
    return out


def _find_image(folder: Path, present: set[str], subtype: str, image_id: int, path: str | Path, where: str) -> str:
    for ext in IMAGE_EXTENSIONS:
        name = vqa_image_name(subtype, image_id, ext)
        if name in present:
            return str(folder / name)
    raise DataFormatError(f"{path}: image file not found: {folder / vqa_image_name(subtype, image_id)} (or .png) for {where}; is the image folder right?")


RESULTS_HINT = 'a VQA results file is a list of {"question_id": int, "answer": str}'


def read_vqa_annotations(annotations_file: str | Path, questions_file: str | Path | None = None) -> list[dict[str, Any]]:
    """The annotation records exactly as the file holds them (the official evaluation compares whole
    answer records), checked; with the questions file, its question ids must be the same set."""
    data = read_json(annotations_file, "VQA annotations")
    records = field(data, "annotations", list, "the file", annotations_file, A_HINT)
    for i, a in enumerate(records):
        where = f"annotations[{i}]"
        for key, kind in (("question_id", int), ("question_type", str), ("answer_type", str), ("answers", list)):
            field(a, key, kind, where, annotations_file, A_HINT)
        for k, x in enumerate(a["answers"]):
            field(x, "answer", str, f"{where}.answers[{k}]", annotations_file, A_HINT)
    if questions_file is not None:
        qdata = read_json(questions_file, "VQA questions")
        qids = {
            field(q, "question_id", int, f"questions[{i}]", questions_file, Q_HINT)
            for i, q in enumerate(field(qdata, "questions", list, "the file", questions_file, Q_HINT))
        }
        aids = {a["question_id"] for a in records}
        if qids != aids:
            raise DataFormatError(
                f"{questions_file} and {annotations_file} hold different questions ({len(qids - aids)} without an annotation, "
                f"{len(aids - qids)} annotations without a question); are they the same split?"
            )
    return records


def read_vqa_results(path: str | Path) -> dict[int, str]:
    """{question_id: answer} from a VQA results file; a repeated question_id keeps its last answer, as
    the official loader does."""
    data = read_json(path, "VQA results")
    if not isinstance(data, list):
        raise DataFormatError(f"{path}: {RESULTS_HINT}, got {type(data).__name__}")
    out: dict[int, str] = {}
    for i, r in enumerate(data):
        out[field(r, "question_id", int, f"[{i}]", path, RESULTS_HINT)] = field(r, "answer", str, f"[{i}]", path, RESULTS_HINT)
    return out


def to_vqa_results(predictions: dict[int, str]) -> list[dict[str, Any]]:
    """The VQA results format of {question_id: answer}."""
    return [{"question_id": q, "answer": a} for q, a in predictions.items()]
