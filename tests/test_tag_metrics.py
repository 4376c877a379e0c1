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


def test_cross_fitted_f1_decides_each_half_at_the_other_halfs_threshold():
    from vl.metrics.tagging import cross_fitted_scores, decision_scores

    targets = torch.tensor([[1, 0], [0, 1], [1, 0], [0, 1]], dtype=torch.float)
    # the first half is tuned to 0.3, the second to 0.7: each half is decided at the other one's
    probs = torch.tensor([[0.4, 0.3], [0.3, 0.4], [0.8, 0.7], [0.7, 0.8]])
    honest = cross_fitted_scores(probs, targets)
    # first half at 0.7: nothing predicted; second half at 0.3: both tags of each row
    expected = decision_scores(torch.tensor([[0, 0], [0, 0], [1, 1], [1, 1]], dtype=torch.bool), targets)
    assert honest == expected and honest["recall"] == 0.5 and honest["precision"] == 0.5


def test_pairs_are_composed_from_their_parts_evidence_at_one_location():
    from vl.heads import build_head

    tags = ["red", "blue", "circle", "square", "red circle", "blue square"]
    head = build_head("tag", {"type": "tag", "dim": 16, "heads": 2, "tags": tags}, memory_dim=8)
    assert head.composable == ["red circle", "red square", "blue circle", "blue square"]  # two never trained on
    with torch.no_grad():
        head.score_map.weight.zero_()
        for tag, feature in (("red", 0), ("blue", 1), ("circle", 2), ("square", 3)):
            head.score_map.weight[tags.index(tag), feature] = 20.0  # tag evidence = one feature of a token
        head.ln_mem = torch.nn.Identity()
        # image: token 0 is red and square, token 1 is blue and circle -> "red square", "blue circle"
        tokens = torch.full((1, 2, 8), -1.0)
        tokens[0, 0, [0, 3]] = 1.0
        tokens[0, 1, [1, 2]] = 1.0
        composed = head(tokens, {"compose": True})["composed"][0]
    scores = dict(zip(head.composable, composed.tolist()))
    assert scores["red square"] > 0.99 and scores["blue circle"] > 0.99
    assert scores["red circle"] < 0.01 and scores["blue square"] < 0.01  # both parts present, not at one place
