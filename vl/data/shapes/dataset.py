"""The Shapes world as `datasets` objects: built once per config, cached with save_to_disk."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import PIL.Image
from datasets import Dataset, DatasetDict, Features, Image, List, Value

from vl.data import cache
from vl.data.cache import build_world_splits
from vl.data.coco import CAPTION_FEATURES
from vl.data.shapes.config import ShapesConfig
from vl.data.shapes.truth import question_kinds, question_objects
from vl.data.shapes.world import ShapesWorld
from vl.data.vqa import ANSWERS_PER_QUESTION, VQA_FEATURES

FORMAT_VERSION = "1"  # bump when items change for the same config, so stale caches are not reused
SHAPES_FEATURES = Features(
    {
        "image": Image(),
        "image_id": Value("int64"),
        "split": Value("string"),
        "file_name": Value("string"),
        "captions": List(Value("string")),
        "questions": List(
            {
                "question_id": Value("int64"),
                "question": Value("string"),
                "answer": Value("string"),
                "question_type": Value("string"),
                "question_family": Value("string"),
                "answer_type": Value("string"),
            }
        ),
        "tags": List(Value("string")),
        "scene": {
            "objects": List(
                {
                    "id": Value("int32"),
                    "shape": Value("string"),
                    "color": Value("string"),
                    "size": Value("string"),
                    "x": Value("float64"),
                    "y": Value("float64"),
                    "radius": Value("float64"),
                    "bbox": List(Value("float64")),
                }
            ),
            "relations": List({"subject": Value("int32"), "predicate": Value("string"), "object": Value("int32")}),
        },
    }
)


def build_dataset(
    cfg: ShapesConfig | None = None,
    splits: Sequence[str] | None = None,
    cache_dir: str | Path | None = None,
    num_proc: int | None = None,
) -> DatasetDict:
    """The Shapes splits (default: every split in cfg.splits) as a DatasetDict.

    Each split is generated once per config and saved under cache_dir/shapes-<config hash>/<split>;
    later calls load it from there (memory-mapped).
    """
    cfg = cfg or ShapesConfig()
    splits = list(splits or cfg.splits)
    return build_world_splits("shapes", cfg, splits, ShapesWorld, SHAPES_FEATURES, FORMAT_VERSION, cache_dir, num_proc)


def config_hash(cfg: ShapesConfig) -> str:
    """A short hash of everything that decides the items (the resolved config and FORMAT_VERSION)."""
    return cache.config_hash(cfg, FORMAT_VERSION)


def to_caption_dataset(ds: Dataset) -> Dataset:
    """Caption form (what load_coco_captions returns): image, image_id, file_name, captions."""
    return ds.select_columns(list(CAPTION_FEATURES))


def to_vqa_dataset(ds: Dataset, grounding: bool = False) -> Dataset:
    """VQA form (what load_vqa returns): one row per question, with the official 10 answers. With
    `grounding`, also `question_boxes`: the boxes (x, y, w, h as fractions of the image side, COCO order)
    of the objects each question points at (`truth.question_objects`), as GQA's annotations give them; and
    `question_kind_boxes` with `question_kind_pointer`: the boxes of every object of the kinds a question counts
    or asks about (`truth.question_kinds`: "how many circles" -> each circle), and which kind (0, 1) each is of."""
    features = VQA_FEATURES.copy()
    if grounding:
        features["question_boxes"] = List(List(Value("float32")))
        features["question_kind_boxes"] = List(List(Value("float32")))
        features["question_kind_pointer"] = List(Value("int32"))

    def explode(batch: dict[str, list]) -> dict[str, list]:
        out: dict[str, list] = {k: [] for k in features}
        scenes = batch["scene"] if grounding else [None] * len(batch["image_id"])
        for image, image_id, questions, scene in zip(batch["image"], batch["image_id"], batch["questions"], scenes):
            side = PIL.Image.open(io.BytesIO(image["bytes"]) if image["bytes"] else image["path"]).width if grounding else 0
            for q in questions:
                out["image"].append(image)
                out["image_id"].append(image_id)
                out["question_id"].append(q["question_id"])
                out["question"].append(q["question"])
                out["answers"].append([q["answer"]] * ANSWERS_PER_QUESTION)
                out["multiple_choice_answer"].append(q["answer"])
                out["answer_type"].append(q["answer_type"])
                out["question_type"].append(q["question_type"])
                if grounding:
                    out["question_boxes"].append([[v / side for v in o["bbox"]] for o in question_objects(q["question"], scene["objects"])])
                    kinds = [(k, o) for k, group in enumerate(question_kinds(q["question"], scene["objects"])) for o in group]
                    out["question_kind_boxes"].append([[v / side for v in o["bbox"]] for _, o in kinds])
                    out["question_kind_pointer"].append([k for k, _ in kinds])
        return out

    plain = ds.cast_column("image", Image(decode=False))  # pass the PNG bytes through untouched
    exploded = plain.map(explode, batched=True, remove_columns=ds.column_names, features=features)
    return exploded.cast_column("image", Image())
