"""MSR-VTT's caption format: `{"videos": [{"video_id", "split", "id", ...}], "sentences": [{"video_id", "caption", "sen_id"}]}`
(train_val_videodatainfo.json / test_videodatainfo.json), videos as <folder>/<video_id>.mp4.

Reads real MSR-VTT files and the ones tasks.export_shapes_video writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from datasets import Dataset, Features, List, Value

from vl.data.schema import field, image_folder, read_json
from vl.data.video import find_video
from vl.errors import ConfigError, DataFormatError

HINT = "MSR-VTT needs videos[].video_id, videos[].split, sentences[].video_id, sentences[].caption"
SPLIT_NAMES = {"train": "train", "val": "validate", "test": "test"}  # ours -> MSR-VTT's
VIDEO_CAPTION_FEATURES = Features({"video": Value("string"), "video_id": Value("string"), "split": Value("string"), "captions": List(Value("string"))})


def to_msrvtt(records: Iterable[dict[str, Any]], fps: float, description: str = "") -> dict[str, Any]:
    """The MSR-VTT JSON of records with video_id, split, frames and captions."""
    videos, sentences = [], []
    for k, r in enumerate(records):
        duration = len(r["frames"]) / fps
        videos.append({"category": 0, "url": "", "video_id": r["video_id"], "start time": 0.0, "end time": duration, "split": SPLIT_NAMES[r["split"]], "id": k})
        for caption in r["captions"]:
            sentences.append({"caption": caption, "video_id": r["video_id"], "sen_id": len(sentences)})
    return {"info": {"description": description, "version": "1.0", "contributor": "vl-suite"}, "videos": videos, "sentences": sentences}


def read_msrvtt(ann_file: str | Path, split: str | None = None) -> tuple[dict[str, list[str]], dict[str, str]]:
    """({video_id: captions}, {video_id: split}) of one split (MSR-VTT's name: train, validate, test; or
    ours: val) or of all, in the file's video order."""
    data = read_json(ann_file, "MSR-VTT")
    videos = field(data, "videos", list, "the file", ann_file, HINT)
    sentences = field(data, "sentences", list, "the file", ann_file, HINT)
    want = SPLIT_NAMES.get(split, split) if split else None
    captions: dict[str, list[str]] = {}
    splits: dict[str, str] = {}
    for i, v in enumerate(videos):
        vid = field(v, "video_id", str, f"videos[{i}]", ann_file, HINT)
        s = field(v, "split", str, f"videos[{i}]", ann_file, HINT)
        if vid in splits:
            raise DataFormatError(f"{ann_file}: videos[{i}].video_id '{vid}' appears twice")
        splits[vid] = s
        if want is None or s == want:
            captions[vid] = []
    if want is not None and not captions:
        raise ConfigError(f"{ann_file} has no videos in split '{split}'; it has {', '.join(sorted(set(splits.values())))}")
    for i, s in enumerate(sentences):
        vid = field(s, "video_id", str, f"sentences[{i}]", ann_file, HINT)
        text = field(s, "caption", str, f"sentences[{i}]", ann_file, HINT)
        if vid not in splits:
            raise DataFormatError(f"{ann_file}: sentences[{i}].video_id '{vid}' is not among the videos")
        if vid in captions:
            captions[vid].append(text)
    return captions, {v: splits[v] for v in captions}


def load_msrvtt(ann_file: str | Path, video_dir: str | Path, split: str | None = None) -> Dataset:
    """One row per video: video (its file or frame folder, read later with vl.data.video.read_video),
    video_id, split, captions."""
    captions, splits = read_msrvtt(ann_file, split)
    folder = image_folder(video_dir, ann_file)
    videos = [str(find_video(folder, v)) for v in captions]
    rows = {"video": videos, "video_id": list(captions), "split": list(splits.values()), "captions": list(captions.values())}
    return Dataset.from_dict(rows, features=VIDEO_CAPTION_FEATURES)
