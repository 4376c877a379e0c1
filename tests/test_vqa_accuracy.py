"""The official VQA v2 accuracy: its normalization, its leave-one-out average, and its quirks, as the
current official code (GT-Vision-Lab/VQA's vqaEval.py at a013f00, 2021) and the 2017 code ("legacy",
what LAVIS and BLIP vendor) compute them; expected values worked out by hand from reading both."""

import json

import pytest

from tasks.evaluate import main as evaluate_main
from vl.errors import DataFormatError
from vl.metrics import normalize_answer, vqa_accuracy
from vl.metrics.vqa import process_punctuation, question_accuracy


@pytest.mark.parametrize(
    "raw, normalized",
    [
        ("Two.", "2"),  # period stripped, lower-cased, number word -> digit
        ("2", "2"),
        ("the dog", "dog"),  # articles dropped
        ("A Dog", "dog"),
        ("dont", "don't"),  # contractions restored
        ("10,000", "10000"),  # a thousands comma: every mark is deleted, not spaced
        ("yes!", "yes"),
        ("Yes.", "yes"),
        ("  no \n", "no"),
        ("3.5", "3.5"),  # a period before a digit stays
        ("e.g.", "eg"),
        ("none", "0"),
        ("left-handed", "left handed"),  # a mark between letters becomes a space
        ("black / white", "black white"),  # a mark next to a space is deleted
        ("man's hat?", "man's hat"),  # apostrophes are not punctuation to the official code
        ("ten", "10"),
        ("eleven", "eleven"),  # only zero..ten are mapped
    ],
)
def test_normalization_matches_the_official_rules(raw, normalized):
    assert normalize_answer(raw) == normalized


def test_punctuation_step_alone_keeps_case_and_words():
    assert process_punctuation("Two.") == "Two"
    assert process_punctuation("the dog") == "the dog"


def records(*answers):
    return [{"answer": a, "answer_confidence": "yes", "answer_id": k + 1} for k, a in enumerate(answers)]


def test_leave_one_out_average():
    humans = records(*["2"] * 3, *["3"] * 7)
    # held-out "2": 2 of the other 9 match -> 2/3; held-out "3": 3 match -> 1. (3 * 2/3 + 7) / 10
    assert question_accuracy("2", humans) == pytest.approx(0.9)
    assert question_accuracy("Two.", humans) == pytest.approx(0.9)
    assert question_accuracy("3", humans) == pytest.approx(1.0)
    assert question_accuracy("4", humans) == 0.0
    one = records("cat", *["dog"] * 9)  # a single matching human: held out 1/10 of the time
    assert question_accuracy("cat", one) == pytest.approx(9 * (1 / 3) / 10)


def test_legacy_quirk_unanimous_humans_are_not_normalized():
    # 2017: ten humans agree on "Two": their answers stay as they are, and the prediction (always
    # normalized) becomes "2", so it does not match. With disagreement, humans get the punctuation
    # step only (no lower-casing, no digits).
    assert question_accuracy("Two", records(*["Two"] * 10), "legacy") == 0.0
    assert question_accuracy("2", records(*["2"] * 10), "legacy") == 1.0
    assert question_accuracy("yes", records(*["yes."] * 5, *["yes"] * 5), "legacy") == 1.0  # "yes." -> "yes" as they disagree
    assert question_accuracy("yes", records(*["yes."] * 10), "legacy") == 0.0


@pytest.mark.parametrize(
    "prediction, humans, master, legacy",
    [
        # all ten identical: master compares the raw (stripped) strings; legacy normalizes the prediction only
        ("Yes", ["yes"] * 10, 0.0, 1.0),
        ("yes", ["yes"] * 10, 1.0, 1.0),
        ("two", ["2"] * 10, 0.0, 1.0),
        ("Two", ["Two"] * 10, 1.0, 0.0),
        ("yes", ["yes."] * 10, 0.0, 0.0),
        ("yes", ["yes\n"] * 10, 1.0, 0.0),  # master strips the humans' newlines too; 2017 did not
        # mixed answers: master gives humans the word step too (case, numbers, articles, contractions)
        ("2", ["Two"] * 3 + ["3"] * 7, 0.9, 0.0),
        ("dog", ["the dog"] * 4 + ["cat"] * 6, 1.0, 0.0),
        ("don't", ["dont"] * 5 + ["no"] * 5, 1.0, 0.0),
        ("yes", ["Yes"] * 8 + ["no"] * 2, 1.0, 0.0),
        ("Two.", ["2"] * 3 + ["3"] * 7, 0.9, 0.9),  # the prediction is normalized in both when humans disagree
        ("10000", ["10,000"] * 4 + ["10000"] * 6, 1.0, 1.0),  # punctuation: a thousands comma goes in both
        ("yes", ["yes."] * 5 + ["yes"] * 5, 1.0, 1.0),
        ("cat", ["cat"] + ["dog"] * 9, 0.3, 0.3),  # one matching human: 9 of 10 held-out rounds give 1/3
    ],
)
def test_master_and_legacy_on_hand_worked_cases(prediction, humans, master, legacy):
    assert question_accuracy(prediction, records(*humans)) == pytest.approx(master)  # master is the default
    assert question_accuracy(prediction, records(*humans), "legacy") == pytest.approx(legacy)


def test_an_unknown_evaluation_version_is_an_error():
    with pytest.raises(ValueError, match="choose from master, legacy"):
        question_accuracy("yes", ["yes"] * 10, "2019")


def test_plain_string_answers_are_numbered_like_the_files():
    assert question_accuracy("red", ["red"] * 10) == 1.0


def test_overall_and_per_type_in_file_order_rounded_to_two_decimals():
    anns = [
        {"question_id": 1, "question_type": "how many", "answer_type": "number", "answers": records(*["2"] * 3, *["3"] * 7)},
        {"question_id": 2, "question_type": "is the", "answer_type": "yes/no", "answers": records(*["yes"] * 10)},
        {"question_id": 3, "question_type": "how many", "answer_type": "number", "answers": records(*["1"] * 10)},
    ]
    acc = vqa_accuracy(anns, {1: "two", 2: "Yes", 3: "5"}, version="legacy")
    assert acc["overall"] == round(100 * (0.9 + 1 + 0) / 3, 2) == 63.33
    assert acc["perQuestionType"] == {"how many": 45.0, "is the": 100.0}
    assert acc["perAnswerType"] == {"number": 45.0, "yes/no": 100.0}
    assert acc["perQuestion"] == {1: 90.0, 2: 100.0, 3: 0.0}
    # today's code: "Yes" against ten "yes" is not normalized, so it misses
    master = vqa_accuracy(anns, {1: "two", 2: "Yes", 3: "5"})
    assert master["evaluation"] == "master" and master["overall"] == 30.0 and master["perQuestion"] == {1: 90.0, 2: 0.0, 3: 0.0}


def test_results_must_answer_every_question():
    anns = [{"question_id": 1, "question_type": "x", "answer_type": "other", "answers": records(*["a"] * 10)}]
    with pytest.raises(DataFormatError, match="1 questions have no answer"):
        vqa_accuracy(anns, {})
    with pytest.raises(DataFormatError, match="1 answers are for unknown questions"):
        vqa_accuracy(anns, {1: "a", 2: "b"})


def write_vqa_files(folder):
    questions = {
        "data_subtype": "val2014",
        "questions": [
            {"image_id": 7, "question": "How many dogs?", "question_id": 70},
            {"image_id": 7, "question": "Is it sunny?", "question_id": 71},
        ],
    }
    annotations = {
        "annotations": [
            {
                "question_id": 70,
                "image_id": 7,
                "question_type": "how many",
                "answer_type": "number",
                "multiple_choice_answer": "2",
                "answers": records(*["2"] * 3, *["3"] * 7),
            },
            {
                "question_id": 71,
                "image_id": 7,
                "question_type": "is it",
                "answer_type": "yes/no",
                "multiple_choice_answer": "yes",
                "answers": records(*["yes"] * 9, "no"),
            },
        ]
    }
    results = [{"question_id": 70, "answer": "Two."}, {"question_id": 71, "answer": "no"}]
    paths = []
    for name, data in (("q.json", questions), ("a.json", annotations), ("r.json", results)):
        (folder / name).write_text(json.dumps(data))
        paths.append(folder / name)
    return paths


def test_evaluate_scores_a_results_file(tmp_path, capsys):
    q, a, r = write_vqa_files(tmp_path)
    assert evaluate_main(["--vqa-questions", str(q), "--vqa-annotations", str(a), "--predictions", str(r)]) == 0
    printed = capsys.readouterr().out
    # q70: 0.9; q71: "no" matches one human: held out (1/10) -> 0, else 1/3 -> 0.3; mean 0.6
    assert "Overall Accuracy is: 60.00" in printed and "scored 2 questions" in printed and "current master" in printed
    scores = json.loads((tmp_path / "r_scores.json").read_text())
    assert scores["perAnswerType"] == {"number": 90.0, "yes/no": 30.0} and scores["evaluation"] == "master"
    assert evaluate_main(["--vqa-questions", str(q), "--vqa-annotations", str(a), "--predictions", str(r), "--vqa-eval", "legacy"]) == 0
    assert "as of 2017" in capsys.readouterr().out


def test_evaluate_rejects_mismatched_files(tmp_path, capsys):
    q, a, r = write_vqa_files(tmp_path)
    r.write_text(json.dumps([{"question_id": 70, "answer": "2"}]))
    assert evaluate_main(["--vqa-questions", str(q), "--vqa-annotations", str(a), "--predictions", str(r)]) == 2
    assert "1 questions have no answer (e.g. question_id 71)" in capsys.readouterr().err
    r.write_text(json.dumps({"question_id": 70}))
    assert evaluate_main(["--vqa-questions", str(q), "--vqa-annotations", str(a), "--predictions", str(r)]) == 2
    assert "a VQA results file is a list" in capsys.readouterr().err
