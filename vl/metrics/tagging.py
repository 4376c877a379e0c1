"""Multi-label tagging metrics through torchmetrics: mean average precision and F1 at a threshold
tuned on held-out data."""

from __future__ import annotations

import warnings

import torch
from torchmetrics.functional.classification import multilabel_average_precision, multilabel_f1_score

THRESHOLDS = tuple(round(0.05 * k, 2) for k in range(1, 20))  # 0.05 .. 0.95


def tag_scores(probs: torch.Tensor, targets: torch.Tensor, threshold: float = 0.5) -> dict[str, float]:
    """probs, targets (N, C) -> {"mAP", "F1", "F1_macro", "precision", "recall", "threshold", "tags_scored"}.

    mAP averages the per-tag AP over the tags with at least one positive (a tag absent from the
    evaluation images has no defined AP; COCO-style multi-label evaluation skips it too).
    F1 is over all (image, tag) decisions at `threshold` (micro, "overall F1"); F1_macro is per tag, averaged.
    """
    if probs.shape != targets.shape or probs.ndim != 2:
        raise ValueError(f"probs {tuple(probs.shape)} and targets {tuple(targets.shape)} must both be (images, tags)")
    targets = targets.int()
    present = targets.sum(0) > 0
    if not bool(present.any()):
        raise ValueError("no tag is present in any evaluation image; mAP is undefined")
    n = probs.size(1)
    if n < 2:
        raise ValueError("tagging metrics need at least 2 tags (one tag is a binary classifier)")
    with warnings.catch_warnings():  # tags with no positives warn; they are excluded below
        warnings.simplefilter("ignore", UserWarning)
        ap = multilabel_average_precision(probs, targets, num_labels=n, average=None)
    return {"mAP": float(ap[present].mean()), **decision_scores(probs > threshold, targets), "threshold": threshold, "tags_scored": int(present.sum())}


def decision_scores(predicted: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """Yes/no decisions (N, C) against targets -> micro F1 ("overall F1"), macro F1 over the tags with
    a positive, precision and recall."""
    targets = targets.int()
    present = targets.sum(0) > 0
    n = targets.size(1)
    decided = predicted.float()  # torchmetrics decides with ">" 0.5
    tp = (predicted.bool() & targets.bool()).sum().item()
    return {
        "F1": float(multilabel_f1_score(decided, targets, num_labels=n, average="micro")),
        "F1_macro": float(multilabel_f1_score(decided, targets, num_labels=n, average="none")[present].mean()),
        "precision": tp / max(1, int(predicted.sum())),
        "recall": tp / max(1, int(targets.sum())),
    }


def cross_fitted_scores(probs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """Decision scores with each half of the rows decided at the threshold tuned on the other half: an
    honest estimate of F1 at a tuned threshold from one split, without a second split."""
    half = probs.size(0) // 2
    first, second = slice(0, half), slice(half, None)
    t_first, t_second = tune_threshold(probs[first], targets[first]), tune_threshold(probs[second], targets[second])
    return decision_scores(torch.cat([probs[first] > t_second, probs[second] > t_first]), targets)


def tune_threshold(probs: torch.Tensor, targets: torch.Tensor, grid: tuple[float, ...] = THRESHOLDS) -> float:
    """The threshold of `grid` with the best micro F1 on (probs, targets); ties go to the lower one."""
    n = probs.size(1)
    scores = [float(multilabel_f1_score(probs, targets.int(), num_labels=n, threshold=t, average="micro")) for t in grid]
    return grid[max(range(len(grid)), key=lambda i: (scores[i], -i))]
