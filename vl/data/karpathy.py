"""Karpathy split format (`dataset_coco.json`): `{"images": [{"filepath", "filename", "split",
"sentences": [{"raw", "tokens", ...}], "imgid", "cocoid", "sentids"}], "dataset": "coco"}`.

Reads Karpathy's files for COCO (and Flickr8k/30k, which have no filepath/cocoid) and ours.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict, Features, Image, List, Value

from vl.data.schema import field, image_file, image_folder, read_json
from vl.errors import DataFormatError, did_you_mean

KARPATHY_FEATURES = Features(
    {
        "image": Image(),
        "image_id": Value("int64"),
        "file_name": Value("string"),
        "captions": List(Value("string")),
        "split": Value("string"),
    }
)
HINT = "Karpathy entries need filename, split, imgid and sentences[].raw"
_WORD = re.compile(r"[a-z0-9]+")


def to_karpathy(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The Karpathy JSON of records with image_id, file_name, split and captions (image folder = split)."""
    images, sentid = [], 0
    for imgid, r in enumerate(records):
        sentences = []
        for raw in r["captions"]:
            sentences.append({"tokens": _WORD.findall(raw.lower()), "raw": raw, "imgid": imgid, "sentid": sentid})
            sentid += 1
        images.append(
            {
                "filepath": r["split"],
                "sentids": [s["sentid"] for s in sentences],
                "filename": r["file_name"],
                "imgid": imgid,
                "split": r["split"],
                "sentences": sentences,
                "cocoid": r["image_id"],
            }
        )
    return {"images": images, "dataset": "coco"}


def load_karpathy(json_file: str | Path, image_root: str | Path, split: str | list[str] | None = None) -> Dataset | DatasetDict:
    """Rows of the given split(s) as one Dataset; with no split, a DatasetDict of every split in the file.

    Image i is read from image_root/filepath/filename (image_root/filename when there is no filepath).
    image_id is the cocoid when present, else the imgid.
    """
    data = read_json(json_file, "Karpathy split")
    entries = field(data, "images", list, "the file", json_file, HINT)
    root = image_folder(image_root, json_file)
    rows: dict[str, dict[str, list]] = {}
    for i, e in enumerate(entries):
        where = f"images[{i}]"
        name = field(e, "filename", str, where, json_file, HINT)
        entry_split = field(e, "split", str, where, json_file, HINT)
        sentences = field(e, "sentences", list, where, json_file, HINT)
        image_id = field(e, "cocoid", int, where, json_file, HINT) if "cocoid" in e else field(e, "imgid", int, where, json_file, HINT)
        sub = field(e, "filepath", str, where, json_file, HINT) if "filepath" in e else ""
        caps = [field(s, "raw", str, f"{where}.sentences[{k}]", json_file, HINT) for k, s in enumerate(sentences)]
        cols = rows.setdefault(entry_split, {k: [] for k in KARPATHY_FEATURES})
        cols["image"].append(str(image_file(root / sub, name, json_file, f"{where}.filename")))
        cols["image_id"].append(image_id)
        cols["file_name"].append(name)
        cols["captions"].append(caps)
        cols["split"].append(entry_split)
    wanted = [split] if isinstance(split, str) else split
    for s in wanted or []:
        if s not in rows:
            raise DataFormatError(f"{json_file}: no images in split '{s}'{did_you_mean(s, rows)}")
    if wanted is None:
        return DatasetDict({s: Dataset.from_dict(c, features=KARPATHY_FEATURES) for s, c in rows.items()})
    merged = {k: [v for s in wanted for v in rows[s][k]] for k in KARPATHY_FEATURES}
    return Dataset.from_dict(merged, features=KARPATHY_FEATURES)
