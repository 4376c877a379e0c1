"""The Faces world as `datasets` objects: built once per config, cached with save_to_disk."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from datasets import DatasetDict, Features, Image, List, Value

from vl.data.cache import build_world_splits
from vl.data.faces.config import FacesConfig
from vl.data.faces.world import FacesWorld

FORMAT_VERSION = "1"  # bump when items change for the same config, so stale caches are not reused
FACES_FEATURES = Features(
    {
        "image": Image(),
        "image_id": Value("int64"),
        "split": Value("string"),
        "file_name": Value("string"),
        "identity": Value("int32"),
        "yaw": Value("int32"),
        "pose": Value("int32"),  # index of yaw in the config's poses
        "expression": Value("string"),
        "attributes": {k: Value("string") for k in ("face_width", "skin", "hair_color", "hair_style", "eye_color")},
        "captions": List(Value("string")),
    }
)


def build_faces_dataset(
    cfg: FacesConfig | None = None,
    splits: Sequence[str] | None = None,
    cache_dir: str | Path | None = None,
    num_proc: int | None = None,
) -> DatasetDict:
    """The Faces splits (default: every split in cfg.splits) as a DatasetDict, cached under
    cache_dir/faces-<config hash>/<split>."""
    cfg = cfg or FacesConfig()
    splits = list(splits or cfg.splits)
    return build_world_splits("faces", cfg, splits, FacesWorld, FACES_FEATURES, FORMAT_VERSION, cache_dir, num_proc)
