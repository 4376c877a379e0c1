"""Temporal detection mAP (ActivityNet's matching and VOC interpolation) on cases worked by hand;
bench/detection_map_vs_official.py compares it with the official code on random cases."""

from __future__ import annotations

import numpy as np
import pytest

from vl.metrics.detection import detection_map, frames_to_segments, majority_segments


def seg(label, start, end, score=None):
    return {"label": label, "start": start, "end": end, **({"score": score} if score is not None else {})}


def test_perfect_detections_score_one():
    truth = {"v1": [seg("a", 0, 2), seg("b", 1, 3)], "v2": [seg("a", 4, 6)]}
    found = {v: [{**s, "score": 0.9} for s in segs] for v, segs in truth.items()}
    out = detection_map(truth, found)
    assert out["mAP"] == 1.0 and out["mAP@0.5"] == 1.0 and out["per_class"] == {"a": 1.0, "b": 1.0}


def test_a_loose_detection_counts_only_below_its_tiou():
    """GT [0, 10]; the top-scored detection [0, 5] has tIoU 0.5: a hit up to 0.5, a miss above, where the
    second detection [0, 10] still finds it at precision 1/2: AP 1, 1, 1, 0.5, 0.5."""
    out = detection_map({"v": [seg("a", 0, 10)]}, {"v": [seg("a", 0, 5, 0.9), seg("a", 0, 10, 0.8)]})
    assert [out[f"mAP@{t}"] for t in (0.3, 0.4, 0.5, 0.6, 0.7)] == [1.0, 1.0, 1.0, 0.5, 0.5]
    assert out["mAP"] == pytest.approx(0.8)


def test_duplicates_wrong_videos_and_unknown_labels():
    truth = {"v1": [seg("a", 0, 4)], "v2": [seg("b", 0, 4)]}
    found = {
        "v1": [seg("a", 0, 4, 0.9), seg("a", 0, 4, 0.8), seg("zzz", 0, 4, 1.0)],  # a duplicate is a false positive; unknown labels are ignored
        "v2": [seg("a", 0, 4, 0.95)],  # a class in a video without it: a false positive ranked first
    }
    out = detection_map(truth, found)
    # class a: FP (0.95), TP (0.9), FP (0.8): precision 0, 1/2, 1/3 at recall 0, 1, 1 -> AP 0.5; class b: no detections -> 0
    assert out["per_class"] == {"a": 0.5, "b": 0.0} and out["mAP"] == 0.25
    with pytest.raises(ValueError, match="no segments"):
        detection_map({"v": []}, found)


def test_frames_become_segments():
    probs = np.array([[0.9, 0.1], [0.8, 0.6], [0.2, 0.7], [0.7, 0.2]])
    out = frames_to_segments(probs, ["a", "b"], duration=2.0)
    assert out == [seg("a", 0.0, 1.0, pytest.approx(0.85)), seg("a", 1.5, 2.0, pytest.approx(0.7)), seg("b", 0.5, 1.5, pytest.approx(0.65))]
    assert majority_segments(probs, ["a", "b"], 2.0) == [seg("a", 0.0, 2.0, pytest.approx(0.65))]
