"""Temporal action detection mAP, as ActivityNet's official evaluation computes it
(github.com/activitynet/ActivityNet, Evaluation/eval_detection.py and utils.py, read at its source):

- the classes are the labels of the ground truth; per class, predictions sorted by decreasing score
  (numpy's argsort, reversed, as there), each matched to the not yet matched ground-truth segment of its
  video with the highest temporal IoU at or above the threshold, else a false positive;
- AP is VOC 2011's interpolated area under precision/recall; mAP the mean over classes; a class without
  predictions scores 0. Reported: mAP at each tIoU threshold and their mean (THUMOS14's 0.3:0.1:0.7 by
  default; ActivityNet's own average is over 0.5:0.05:0.95).

Differences, on purpose: a predicted label the ground truth never uses is ignored (the official code stops
with a KeyError), and no "blocked videos" list is fetched from a server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

THUMOS_TIOU = (0.3, 0.4, 0.5, 0.6, 0.7)
ACTIVITYNET_TIOU = tuple(np.linspace(0.5, 0.95, 10).tolist())


def segment_iou(target: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Temporal IoU of one [start, end] segment with each of N candidates (N, 2)."""
    inter = (np.minimum(target[1], candidates[:, 1]) - np.maximum(target[0], candidates[:, 0])).clip(0)
    union = (candidates[:, 1] - candidates[:, 0]) + (target[1] - target[0]) - inter
    return inter.astype(float) / union


def interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """VOC 2011's interpolated average precision."""
    mprec = np.hstack([[0], precision, [0]])
    mrec = np.hstack([[0], recall, [1]])
    for i in range(len(mprec) - 1)[::-1]:
        mprec[i] = max(mprec[i], mprec[i + 1])
    idx = np.where(mrec[1:] != mrec[:-1])[0] + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx]))


def class_ap(
    ground_truth: Sequence[tuple[Any, float, float]], predictions: Sequence[tuple[Any, float, float, float]], thresholds: Sequence[float]
) -> np.ndarray:
    """AP of one class at each tIoU threshold: ground truth (video, start, end), predictions (video, start, end, score)."""
    ap = np.zeros(len(thresholds))
    if not predictions:
        return ap
    by_video: dict[Any, list[int]] = {}
    for k, (video, _, _) in enumerate(ground_truth):
        by_video.setdefault(video, []).append(k)
    segments = np.array([[s, e] for _, s, e in ground_truth], dtype=float).reshape(-1, 2)
    order = np.array([p[3] for p in predictions]).argsort()[::-1]
    lock = np.full((len(thresholds), len(ground_truth)), -1)
    tp = np.zeros((len(thresholds), len(predictions)))
    fp = np.zeros((len(thresholds), len(predictions)))
    for idx, p in enumerate(predictions[i] for i in order):
        rows = by_video.get(p[0])
        if rows is None:
            fp[:, idx] = 1
            continue
        tiou = segment_iou(np.array([p[1], p[2]], dtype=float), segments[rows])
        ranked = tiou.argsort()[::-1]
        for t, threshold in enumerate(thresholds):
            for j in ranked:
                if tiou[j] < threshold:
                    fp[t, idx] = 1
                    break
                if lock[t, rows[j]] >= 0:
                    continue
                tp[t, idx] = 1
                lock[t, rows[j]] = idx
                break
            if fp[t, idx] == 0 and tp[t, idx] == 0:
                fp[t, idx] = 1
    tp_sum, fp_sum = np.cumsum(tp, axis=1), np.cumsum(fp, axis=1)
    recall = tp_sum / len(ground_truth)
    precision = tp_sum / (tp_sum + fp_sum)
    return np.array([interpolated_ap(precision[t], recall[t]) for t in range(len(thresholds))])


def detection_map(
    ground_truth: Mapping[Any, Sequence[Mapping[str, Any]]],
    predictions: Mapping[Any, Sequence[Mapping[str, Any]]],
    thresholds: Sequence[float] = THUMOS_TIOU,
) -> dict[str, Any]:
    """{"mAP@<t>": ..., "mAP": mean over thresholds, "per_class": {label: AP averaged over thresholds}}.
    ground_truth: {video: [{"label", "start", "end"}]}; predictions: {video: [{"label", "start", "end", "score"}]}
    (seconds, or frames: any unit both share)."""
    classes: dict[str, int] = {}
    gt: dict[str, list[tuple[Any, float, float]]] = {}
    for video, segments in ground_truth.items():
        for s in segments:
            classes.setdefault(s["label"], len(classes))
            gt.setdefault(s["label"], []).append((video, float(s["start"]), float(s["end"])))
    preds: dict[str, list[tuple[Any, float, float, float]]] = {c: [] for c in classes}
    for video, segments in predictions.items():
        for s in segments:
            if s["label"] in preds:
                preds[s["label"]].append((video, float(s["start"]), float(s["end"]), float(s["score"])))
    if not classes:
        raise ValueError("the ground truth has no segments: nothing to detect")
    ap = np.stack([class_ap(gt[c], preds[c], thresholds) for c in classes], axis=1)  # (thresholds, classes)
    per_threshold = ap.mean(axis=1)
    out: dict[str, Any] = {f"mAP@{t:.2g}": float(m) for t, m in zip(thresholds, per_threshold)}
    out["mAP"] = float(per_threshold.mean())
    out["per_class"] = {c: float(ap[:, k].mean()) for c, k in classes.items()}
    return out


def frames_to_segments(probs: np.ndarray, labels: Sequence[str], duration: float, threshold: float = 0.5) -> list[dict[str, Any]]:
    """Per-frame probabilities (T, A) of uniformly spaced frames -> segments: every maximal run of frames
    at or above `threshold` for a label, [first frame start, last frame end] in the clip's time (frame k
    covers [k, k + 1) * duration / T), scored by the run's mean probability."""
    T = probs.shape[0]
    out = []
    for a, label in enumerate(labels):
        on = probs[:, a] >= threshold
        k = 0
        while k < T:
            if not on[k]:
                k += 1
                continue
            end = k
            while end + 1 < T and on[end + 1]:
                end += 1
            out.append({"label": label, "start": k * duration / T, "end": (end + 1) * duration / T, "score": float(probs[k : end + 1, a].mean())})
            k = end + 1
    return out


def majority_segments(probs: np.ndarray, labels: Sequence[str], duration: float) -> list[dict[str, Any]]:
    """The per-frame-majority baseline: the whole clip as one segment of the label most of its frames
    carry (each frame's top label), scored by that label's mean probability."""
    top = probs.argmax(axis=1)
    label = int(np.bincount(top, minlength=len(labels)).argmax())
    return [{"label": labels[label], "start": 0.0, "end": float(duration), "score": float(probs[:, label].mean())}]
