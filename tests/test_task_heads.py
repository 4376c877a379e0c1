"""VQA, question-generation and tagging heads: padding never changes an answer, questions asked per
image equal questions asked one by one, decoding with the cache equals decoding without, and the
defined behavior for an empty question, an over-long question, an answer outside the vocabulary
and an image with no objects."""

import pytest
import torch
from PIL import Image

from vl.errors import ConfigError
from vl.heads.vqa import soft_cross_entropy
from vl.modeling import VLConfig, VLModel
from vl.processing import VLProcessor, image_processor, train_tokenizer

TEXTS = ["what shape is the red object?", "how many circles are there?", "is there a blue square?", "circle", "2", "yes", "count: 2"]


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    processor = VLProcessor(image_processor(32), train_tokenizer(TEXTS * 5, vocab_size=120))
    ids = processor.caption_head_ids()
    heads = {
        "vqa": {
            "type": "vqa",
            "dim": 32,
            "depth": 2,
            "heads": 2,
            "max_len": 8,
            "answers": ["circle", "2", "yes", "no"],
            "generative": True,
            "decoder": {"depth": 1, "max_len": 6},
            **ids,
        },
        "qgen": {"type": "qgen", "dim": 32, "depth": 1, "heads": 2, "decoder": {"depth": 1, "max_len": 12}, **ids},
        "tag": {"type": "tag", "dim": 32, "heads": 2, "tags": ["red", "circle", "red circle"]},
    }
    model = VLModel(VLConfig(encoder={"type": "vit", "image_size": 32, "patch_size": 8, "dim": 32, "depth": 1, "heads": 2}, heads=heads)).eval()
    return model, processor


def pixels(n, seed=0):
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def vqa_logits(model, processor, px, questions, **extra):
    q = processor.encode_texts(questions, model.heads["vqa"].cfg.max_len)
    return model(px, task="vqa", question_ids=q["ids"], question_mask=q["mask"], **extra)["logits"]


def test_padding_does_not_change_answers(setup):
    model, processor = setup
    px = pixels(2)
    together = vqa_logits(model, processor, px, ["circle", "what shape is the red object?"])
    alone = vqa_logits(model, processor, px[:1], ["circle"])
    torch.testing.assert_close(together[:1], alone, rtol=1e-5, atol=1e-5)


def test_questions_per_image_equal_questions_one_by_one(setup):
    model, processor = setup
    px = pixels(2)
    questions = ["circle", "yes", "how many circles are there?"]
    grouped = vqa_logits(model, processor, px, questions, question_image=torch.tensor([0, 0, 1]))
    repeated = vqa_logits(model, processor, px[[0, 0, 1]], questions)
    torch.testing.assert_close(grouped, repeated, rtol=1e-5, atol=1e-5)


def test_top_answers_are_sorted_probabilities(setup):
    model, processor = setup
    top = model.heads["vqa"].top_answers(vqa_logits(model, processor, pixels(1), ["yes"]), k=3)
    assert len(top[0]) == 3 and {a["answer"] for a in top[0]} <= {"circle", "2", "yes", "no"}
    assert top[0][0]["score"] >= top[0][1]["score"] >= top[0][2]["score"]


@pytest.mark.parametrize("task, key", [("vqa", "question"), ("qgen", "prompt")])
def test_generation_with_cache_equals_without_and_ignores_padding(setup, task, key):
    model, processor = setup
    t = processor.encode_texts(["circle", "what shape is the red object?"], 8)
    inputs = {f"{key}_ids": t["ids"], f"{key}_mask": t["mask"]}
    a = model.generate(pixels(2), task=task, max_new_tokens=5, **inputs)
    b = model.generate(pixels(2), task=task, max_new_tokens=5, use_cache=False, **inputs)
    assert torch.equal(a, b)
    alone = model.generate(pixels(2)[:1], task=task, max_new_tokens=5, **{f"{key}_ids": t["ids"][:1, :2], f"{key}_mask": t["mask"][:1, :2]})
    assert torch.equal(a[:1, : alone.size(1)], alone)
    beams = model.generate(pixels(2), task=task, max_new_tokens=5, num_beams=3, **inputs)
    assert beams.size(0) == 2


def test_an_empty_question_is_a_clear_error(setup):
    _, processor = setup
    with pytest.raises(ValueError, match="question 1 is empty"):
        processor.encode_texts(["yes", "  "], 8)


def test_an_over_long_question_is_truncated_to_the_head(setup):
    model, processor = setup
    long = " ".join(["what shape is the red object?"] * 6)
    q = processor.encode_texts([long], 8)
    assert q["ids"].shape == (1, 8) and bool(q["mask"].all())
    first = processor.tokenizer.decode(q["ids"][0, 1:])
    vqa_logits(model, processor, pixels(1), [long])  # answers from the first 7 tokens
    assert long.startswith(first.strip()[:10])
    with pytest.raises(ValueError, match="longer than the head's 8 positions"):
        model.heads["vqa"].fusion(torch.zeros(1, 9, dtype=torch.long), torch.ones(1, 9, dtype=torch.bool), torch.zeros(1, 16, 32))


def test_an_answer_outside_the_vocabulary_adds_nothing_to_the_loss():
    logits = torch.randn(3, 4)
    scores = torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 0], [0, 0.3, 1.0, 0]])  # row 1: answer not in the vocabulary
    both = soft_cross_entropy(logits, scores)
    known = soft_cross_entropy(logits[[0, 2]], scores[[0, 2]])
    torch.testing.assert_close(both, known)
    assert soft_cross_entropy(logits, torch.zeros(3, 4)) == 0  # nothing known: no gradient, no NaN


def test_an_image_with_no_objects_gets_well_formed_outputs(setup):
    model, processor = setup
    blank = processor(images=[Image.new("RGB", (32, 32), (255, 255, 255))])["pixel_values"]
    probs = model(blank, task="tag")["probs"]
    head = model.heads["tag"]
    assert probs.shape == (1, 3) and bool(((probs >= 0) & (probs <= 1)).all())
    old = head.cfg.threshold
    head.cfg.threshold = 1.0
    assert head.predict(probs) == [[]]  # no tag passes the threshold: an empty list, not an error
    head.cfg.threshold = old
    answer = model.heads["vqa"].top_answers(vqa_logits(model, processor, blank, ["how many circles are there?"]), k=1)
    assert answer[0][0]["answer"] in {"circle", "2", "yes", "no"}


def test_heads_need_their_vocabularies():
    with pytest.raises(ConfigError, match="vqa head has no answers"):
        VLModel(VLConfig(encoder={"type": "vit", "image_size": 32, "dim": 32, "depth": 1, "heads": 2}, heads={"vqa": {"type": "vqa", "vocab_size": 10}}))
    with pytest.raises(ConfigError, match="tag head has no tags"):
        VLModel(VLConfig(encoder={"type": "vit", "image_size": 32, "dim": 32, "depth": 1, "heads": 2}, heads={"tag": {"type": "tag"}}))


def test_save_and_load_keeps_every_head(setup, tmp_path):
    model, processor = setup
    model.save_pretrained(tmp_path)
    again = VLModel.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(vqa_logits(model, processor, pixels(1), ["yes"]), vqa_logits(again, processor, pixels(1), ["yes"]))
    torch.testing.assert_close(model(pixels(1), task="tag")["probs"], again(pixels(1), task="tag")["probs"])
