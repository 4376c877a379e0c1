"""COCO captions format: `{"images": [{"id", "file_name", ...}], "annotations": [{"image_id", "id", "caption"}]}`.

Reads real COCO caption files (captions_train2014.json...) and the ones tasks.export_shapes writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from datasets import Dataset, Features, Image, List, Value

from vl.data.schema import field, image_file, image_folder, read_json
from vl.errors import DataFormatError

CAPTION_FEATURES = Features({"image": Image(), "image_id": Value("int64"), "file_name": Value("string"), "captions": List(Value("string"))})
RESULTS_HINT = "results entries need image_id (integer) and caption (string)"
HINT = "COCO captions need images[].id, images[].file_name, annotations[].image_id, annotations[].id, annotations[].caption"


def to_coco_captions(records: Iterable[dict[str, Any]], description: str = "") -> dict[str, Any]:
    """The COCO captions JSON of records with image (PIL), image_id, file_name and captions."""
    images, annotations = [], []
    for r in records:
        width, height = r["image"].size
        images.append({"id": r["image_id"], "file_name": r["file_name"], "width": width, "height": height})
        for caption in r["captions"]:
            annotations.append({"image_id": r["image_id"], "id": len(annotations) + 1, "caption": caption})
    info = {"description": description, "version": "1.0", "contributor": "vl-suite"}
    return {"info": info, "licenses": [], "images": images, "annotations": annotations}


def read_coco_references(ann_file: str | Path) -> tuple[dict[int, list[str]], dict[int, str]]:
    """({image_id: captions}, {image_id: file_name}) from a COCO captions file, in the file's image order."""
    data = read_json(ann_file, "COCO captions")
    images = field(data, "images", list, "the file", ann_file, HINT)
    annotations = field(data, "annotations", list, "the file", ann_file, HINT)
    captions: dict[int, list[str]] = {}
    names: dict[int, str] = {}
    for i, img in enumerate(images):
        image_id = field(img, "id", int, f"images[{i}]", ann_file, HINT)
        name = field(img, "file_name", str, f"images[{i}]", ann_file, HINT)
        if image_id in captions:
            raise DataFormatError(f"{ann_file}: images[{i}].id {image_id} appears twice")
        captions[image_id], names[image_id] = [], name
    for i, ann in enumerate(annotations):
        image_id = field(ann, "image_id", int, f"annotations[{i}]", ann_file, HINT)
        field(ann, "id", int, f"annotations[{i}]", ann_file, HINT)
        text = field(ann, "caption", str, f"annotations[{i}]", ann_file, HINT)
        if image_id not in captions:
            raise DataFormatError(f"{ann_file}: annotations[{i}].image_id {image_id} is not among the images")
        captions[image_id].append(text)
    return captions, names


def load_coco_captions(ann_file: str | Path, image_dir: str | Path) -> Dataset:
    """One row per image: image (decoded lazily from image_dir), image_id, file_name, captions."""
    captions, names = read_coco_references(ann_file)
    folder = image_folder(image_dir, ann_file)
    paths = [str(image_file(folder, names[i], ann_file, f"images[{k}].file_name")) for k, i in enumerate(captions)]
    return Dataset.from_dict(
        {"image": paths, "image_id": list(captions), "file_name": list(names.values()), "captions": list(captions.values())},
        features=CAPTION_FEATURES,
    )


def read_coco_results(path: str | Path) -> dict[int, str]:
    """{image_id: caption} from a COCO caption results file: [{"image_id": int, "caption": str}, ...]."""
    data = read_json(path, "caption results")
    if not isinstance(data, list):
        raise DataFormatError(f'{path}: a COCO results file is a list of {{"image_id", "caption"}} objects, got {type(data).__name__}')
    out: dict[int, str] = {}
    for i, r in enumerate(data):
        image_id = field(r, "image_id", int, f"[{i}]", path, RESULTS_HINT)
        caption = field(r, "caption", str, f"[{i}]", path, RESULTS_HINT)
        if image_id in out:
            raise DataFormatError(f"{path}: image_id {image_id} has more than one caption ([{i}]); a results file has one per image")
        out[image_id] = caption
    return out


def to_coco_results(predictions: dict[int, str]) -> list[dict[str, Any]]:
    """The COCO caption results format of {image_id: caption}."""
    return [{"image_id": i, "caption": c} for i, c in predictions.items()]
