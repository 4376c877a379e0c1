"""The Shapes video world as `datasets` objects: built once per config, cached with save_to_disk."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from datasets import DatasetDict, Features, Image, List, Value

from vl.data.cache import build_world_splits
from vl.data.shapes_video.config import ShapesVideoConfig
from vl.data.shapes_video.world import ShapesVideoWorld

FORMAT_VERSION = "1"  # bump when clips change for the same config
EVENT_FEATURES = {"action": Value("string"), "object": Value("int32"), "start": Value("int32"), "end": Value("int32")}
VIDEO_FEATURES = Features(
    {
        "frames": List(Image()),
        "clip_id": Value("int64"),
        "video_id": Value("string"),
        "split": Value("string"),
        "captions": List(Value("string")),
        "action": Value("string"),
        "objects": List(
            {
                "id": Value("int32"),
                "shape": Value("string"),
                "color": Value("string"),
                "size": Value("string"),
                "x": Value("float64"),
                "y": Value("float64"),
                "action": Value("string"),
                "new_color": Value("string"),
                "shift": Value("float64"),
            }
        ),
        "events": List(EVENT_FEATURES),
        "frame_actions": List(List(Value("string"))),
    }
)


def build_video_dataset(
    cfg: ShapesVideoConfig | None = None,
    splits: Sequence[str] | None = None,
    cache_dir: str | Path | None = None,
    num_proc: int | None = None,
) -> DatasetDict:
    """The Shapes video splits (default: every split in cfg.splits) as a DatasetDict, cached under
    cache_dir/shapes-video-<config hash>/<split> (see vl.data.cache)."""
    cfg = cfg or ShapesVideoConfig()
    splits = list(splits or cfg.splits)
    return build_world_splits("shapes-video", cfg, splits, ShapesVideoWorld, VIDEO_FEATURES, FORMAT_VERSION, cache_dir, num_proc)
