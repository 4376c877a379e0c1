"""ActivityNet's temporal annotation format (v1.3):
`{"version", "taxonomy", "database": {video_id: {"subset", "duration", "annotations": [{"segment": [start s, end s], "label"}]}}}`,
videos as <folder>/v_<video_id>.mp4 (or <video_id>.mp4).

Reads real ActivityNet files and the ones tasks.export_shapes_video writes (a clip's events, frame k
covering [k / fps, (k + 1) / fps) seconds).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from datasets import Dataset, Features, List, Value

from vl.data.schema import field, image_folder, read_json
from vl.data.video import find_video
from vl.errors import ConfigError, DataFormatError

HINT = 'ActivityNet needs database.<video_id>.subset, .duration and .annotations[] of {"segment": [start, end], "label"}'
SUBSETS = {"train": "training", "val": "validation", "test": "testing"}  # ours -> ActivityNet's
SEGMENT_FEATURES = Features(
    {
        "video": Value("string"),
        "video_id": Value("string"),
        "subset": Value("string"),
        "duration": Value("float64"),
        "segments": List({"label": Value("string"), "start": Value("float64"), "end": Value("float64")}),
    }
)


def to_activitynet(records: Iterable[dict[str, Any]], fps: float, actions: list[str]) -> dict[str, Any]:
    """The ActivityNet JSON of records with video_id, split, frames and events (frames start..end inclusive)."""
    database = {}
    for r in records:
        width, height = r["frames"][0].size
        annotations = [{"segment": [e["start"] / fps, (e["end"] + 1) / fps], "label": e["action"]} for e in r["events"]]
        entry = {"subset": SUBSETS[r["split"]], "duration": len(r["frames"]) / fps, "resolution": f"{width}x{height}", "url": ""}
        database[r["video_id"]] = {**entry, "annotations": annotations}
    taxonomy = [{"nodeId": 0, "nodeName": "Root", "parentId": None, "parentName": None}]
    taxonomy += [{"nodeId": k + 1, "nodeName": a, "parentId": 0, "parentName": "Root"} for k, a in enumerate(actions)]
    return {"version": "VERSION 1.3", "taxonomy": taxonomy, "database": database}


def read_activitynet(ann_file: str | Path, subset: str | None = None) -> dict[str, dict[str, Any]]:
    """{video_id: {"subset", "duration", "segments": [{label, start, end}]}} of one subset (ActivityNet's
    name: training, validation, testing; or ours: train, val, test) or of all, in the file's order."""
    data = read_json(ann_file, "ActivityNet")
    database = field(data, "database", dict, "the file", ann_file, HINT)
    want = SUBSETS.get(subset, subset) if subset else None
    out, seen = {}, set()
    for vid, entry in database.items():
        where = f"database.{vid}"
        s = field(entry, "subset", str, where, ann_file, HINT)
        seen.add(s)
        if want is not None and s != want:
            continue
        duration = field(entry, "duration", (int, float), where, ann_file, HINT)
        segments = []
        for i, ann in enumerate(entry.get("annotations", [])):
            seg = field(ann, "segment", list, f"{where}.annotations[{i}]", ann_file, HINT)
            label = field(ann, "label", str, f"{where}.annotations[{i}]", ann_file, HINT)
            if len(seg) != 2 or not all(isinstance(t, (int, float)) for t in seg) or not seg[0] <= seg[1]:
                raise DataFormatError(f"{ann_file}: {where}.annotations[{i}].segment should be [start, end] seconds with start <= end, got {seg}")
            segments.append({"label": label, "start": float(seg[0]), "end": float(seg[1])})
        out[vid] = {"subset": s, "duration": float(duration), "segments": segments}
    if want is not None and not out:
        raise ConfigError(f"{ann_file} has no videos in subset '{subset}'; it has {', '.join(sorted(seen))}")
    return out


def load_activitynet(ann_file: str | Path, video_dir: str | Path, subset: str | None = None) -> Dataset:
    """One row per video: video (its file or frame folder), video_id, subset, duration (s), segments."""
    entries = read_activitynet(ann_file, subset)
    folder = image_folder(video_dir, ann_file)
    rows = {k: [] for k in SEGMENT_FEATURES}
    for vid, e in entries.items():
        rows["video"].append(str(find_video(folder, vid)))
        rows["video_id"].append(vid)
        rows["subset"].append(e["subset"])
        rows["duration"].append(e["duration"])
        rows["segments"].append(e["segments"])
    return Dataset.from_dict(rows, features=SEGMENT_FEATURES)
