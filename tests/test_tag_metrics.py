"""Tagging metrics: mAP over the tags present, F1 at a threshold tuned on held-out data."""

import pytest
import torch

from vl.metrics import tag_scores, tune_threshold


def test_perfect_ranking_and_threshold():
    targets = torch.tensor([[1, 0, 0], [0, 1, 0], [1, 1, 0]])
    probs = torch.tensor([[0.9, 0.2, 0.1], [0.3, 0.8, 0.2], [0.7, 0.6, 0.1]])
    s = tag_scores(probs, targets, threshold=0.5)
    assert s["mAP"] == pytest.approx(1.0) and s["F1"] == pytest.approx(1.0)
    assert s["tags_scored"] == 2  # the third tag never occurs: no AP, not counted as 0


def test_ap_of_one_tag_by_hand():
    targets = torch.tensor([[1, 1], [0, 0], [1, 0], [0, 0]])
    probs = torch.tensor([[0.9, 0.9], [0.8, 0.1], [0.7, 0.2], [0.1, 0.3]])  # tag 0 ranks: hit, miss, hit -> AP (1 + 2/3) / 2
    assert tag_scores(probs, targets)["mAP"] == pytest.approx((5 / 6 + 1) / 2)


def test_tuned_threshold_beats_a_bad_default():
    targets = torch.tensor([[1, 0], [0, 1], [1, 1], [0, 0]])
    probs = torch.tensor([[0.3, 0.1], [0.1, 0.35], [0.4, 0.3], [0.05, 0.1]])
    t = tune_threshold(probs, targets)
    assert 0.1 <= t < 0.3  # a tag counts when its probability is above the threshold
    assert tag_scores(probs, targets, t)["F1"] == pytest.approx(1.0)
    assert tag_scores(probs, targets, 0.5)["F1"] < 0.9


def test_shapes_must_agree():
    with pytest.raises(ValueError, match="must both be"):
        tag_scores(torch.zeros(2, 3), torch.zeros(2, 2))
