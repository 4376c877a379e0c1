"""The Shapes video world: deterministic clips whose pixels, labels, events and captions agree."""

from __future__ import annotations

import numpy as np
import pytest

from vl.data.shapes.catalog import COLORS, half_extent
from vl.data.shapes_video.clip import MOVES
from vl.data.shapes_video.config import ShapesVideoConfig
from vl.data.shapes_video.dataset import build_video_dataset
from vl.data.shapes_video.world import ShapesVideoWorld
from vl.errors import ConfigError

WORLD = ShapesVideoWorld()
CLIPS = [WORLD.clip("train", i) for i in range(300)]


def test_clips_are_deterministic_and_differ():
    a, b = ShapesVideoWorld().item("val", 7), ShapesVideoWorld().item("val", 7)
    assert a["captions"] == b["captions"] and a["events"] == b["events"]
    assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a["frames"], b["frames"]))
    assert WORLD.item("val", 8)["events"] != a["events"] or WORLD.item("val", 8)["objects"] != a["objects"]


def test_the_clip_action_is_its_longest_event_by_two_frames():
    for clip in CLIPS:
        lengths = sorted((e.end - e.start + 1 for e in clip.events), reverse=True)
        assert 1 <= len(clip.events) <= WORLD.cfg.max_events
        assert lengths[0] >= 4 and all(length >= 2 for length in lengths)
        assert len(lengths) == 1 or lengths[0] - lengths[1] >= 2
        assert clip.action == max(clip.events, key=lambda e: e.end - e.start).action
        assert all(0 <= e.start < e.end < clip.frames for e in clip.events)


def test_objects_stay_on_the_canvas_apart_and_uniquely_colored():
    for clip in CLIPS:
        colors = [o.color for o in clip.objects] + [o.new_color for o in clip.objects if o.new_color]
        assert len(set(colors)) == len(colors)
        for t in range(clip.frames):
            boxes = []
            for obj in clip.objects:
                x, y, r, *_ = clip.state(obj, t)
                hx, hy = (r * h for h in half_extent(obj.shape))
                assert 0 <= x - hx and x + hx <= clip.size and 0 <= y - hy and y + hy <= clip.size
                boxes.append((x - hx, y - hy, x + hx, y + hy))
            for i, a in enumerate(boxes):
                for b in boxes[i + 1 :]:
                    assert a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1]


def _centroid(frame, color) -> tuple[float, float, int]:
    pixels = np.asarray(frame).astype(int)
    ys, xs = np.nonzero(np.abs(pixels - np.array(COLORS[color])).sum(-1) < 30)
    return (xs.mean() if len(xs) else np.nan), (ys.mean() if len(ys) else np.nan), len(xs)


def test_the_pixels_show_each_event():
    """Moves move the colored pixels that way, grow/shrink change their count, appear/disappear start or end with none."""
    checked = set()
    for i, clip in enumerate(CLIPS[:120]):
        frames = WORLD.frames(clip)
        for e in clip.events:
            obj = clip.objects[e.object]
            if e.action == "change_color":
                assert _centroid(frames[e.start], obj.color)[2] > 0 and _centroid(frames[e.end], obj.color)[2] == 0
                assert _centroid(frames[e.end], obj.new_color)[2] > 0
                continue
            x0, y0, n0 = _centroid(frames[e.start], obj.color)
            x1, y1, n1 = _centroid(frames[e.end], obj.color)
            if e.action in MOVES:
                dx, dy = MOVES[e.action]
                assert (x1 - x0) * dx + (y1 - y0) * dy > 0.15 * clip.size, (i, e)
            elif e.action == "grow":
                assert n1 > 1.5 * n0
            elif e.action == "shrink":
                assert n0 > 1.5 * n1
            elif e.action == "appear":
                assert n0 == 0 and n1 > 0
            elif e.action == "disappear":
                assert n0 > 0 and n1 == 0
            checked.add(e.action)
    assert checked == {*MOVES, "grow", "shrink", "appear", "disappear"}


def test_captions_name_every_event_and_its_timing():
    for index in range(60):
        item = WORLD.item("test", index)
        events, objects = item["events"], item["objects"]
        assert len(item["captions"]) == 5
        for caption in item["captions"]:
            for e in events:
                assert objects[e["object"]]["color"] in caption
            for before, after in zip(events, events[1:]):
                overlap = after["start"] <= before["end"]
                assert ("while" in caption) == overlap or len(events) > 2


def test_frame_actions_and_labels_cover_the_vocabulary():
    counts = {}
    for clip in CLIPS:
        counts[clip.action] = counts.get(clip.action, 0) + 1
        per_frame = clip.frame_actions()
        for e in clip.events:
            assert all(e.action in per_frame[t] for t in range(e.start, e.end + 1))
    assert set(counts) == set(WORLD.action_vocabulary())
    assert min(counts.values()) >= 15  # roughly balanced over 9 actions


def test_config_errors_name_the_fix():
    with pytest.raises(ConfigError, match="4 to 64 frames"):
        ShapesVideoConfig(frames=2)
    with pytest.raises(ConfigError, match="did you mean 'grow'"):
        ShapesVideoConfig(actions=["grwo"])
    with pytest.raises(ConfigError, match="too few for"):
        ShapesVideoConfig(colors=["red", "blue", "green"])
    with pytest.raises(ConfigError, match="unknown video split"):
        WORLD.clip("tset", 0)


def test_dataset_splits_are_cached_with_frames(tmp_path):
    cfg = ShapesVideoConfig(frames=6, splits={"train": 4, "val": 2, "test": 2})
    ds = build_video_dataset(cfg, splits=["val"], cache_dir=tmp_path)["val"]
    assert len(ds) == 2 and len(ds[0]["frames"]) == 6 and ds[0]["frames"][0].size == (64, 64)
    item = ShapesVideoWorld(cfg).item("val", 1)
    assert ds[1]["captions"] == item["captions"] and ds[1]["action"] == item["action"]
    assert np.array_equal(np.asarray(ds[1]["frames"][3]), np.asarray(item["frames"][3]))
    assert build_video_dataset(cfg, splits=["val"], cache_dir=tmp_path)["val"]["video_id"] == ds["video_id"]  # from the cache


def test_the_claim_reader_holds_every_reference_true_and_catches_false_claims():
    from vl.data.shapes_video.truth import caption_truth

    items = [WORLD.item("test", i) for i in range(80)]
    rows = [{"image_id": it["clip_id"], "objects": it["objects"], "events": it["events"]} for it in items]
    colors = WORLD.cfg.colors
    for k in range(5):
        assert caption_truth(rows, {it["clip_id"]: it["captions"][k] for it in items}, colors)["all_claims_true"] == 1.0
    swapped = caption_truth(rows, {items[i]["clip_id"]: items[i - 1]["captions"][0] for i in range(80)}, colors)
    assert swapped["all_claims_true"] < 0.05 and swapped["readable"] == 1.0

    clip = {
        "image_id": 1,
        "objects": [
            {"id": 0, "shape": "circle", "color": "red", "action": "move_left", "new_color": ""},
            {"id": 1, "shape": "square", "color": "blue", "action": "change_color", "new_color": "green"},
            {"id": 2, "shape": "star", "color": "cyan", "action": "still", "new_color": ""},
        ],
        "events": [{"action": "move_left", "object": 0, "start": 0, "end": 5}, {"action": "change_color", "object": 1, "start": 6, "end": 7}],
    }

    def true(text: str) -> float:
        return caption_truth([clip], {1: text}, colors)["all_claims_true"]

    assert true("the red disc slides left, then the blue square turns green, and the cyan star stays still") == 1.0
    assert true("the red circle moves left before the blue square becomes green") == 1.0
    assert true("the red circle moves left while the blue square turns green") == 0.0  # they do not overlap
    assert true("the red circle moves right") == 0.0  # wrong direction
    assert true("the blue square turns purple") == 0.0  # wrong color
    assert true("the green square moves left") == 0.0  # no such object
    assert true("the red circle moves left, and the blue square stays still") == 0.0  # it changes color
    assert true("a red circle dances") == 0.0 and caption_truth([clip], {1: "a red circle dances"}, colors)["readable"] == 0.0
    assert caption_truth([clip], {1: "the red circle moves left"}, colors)["events_named"] == 0.5
