import hashlib
import json
import re
import subprocess
import sys
from collections import Counter, defaultdict

import numpy as np
import pytest

from vl.data.shapes import ShapesConfig, ShapesWorld
from vl.data.shapes.catalog import BACKGROUNDS, COLORS, SHAPE_WORDS
from vl.data.shapes.questions import QUESTION_FAMILIES
from vl.data.shapes.truth import NP, PLACES, answer, caption_objects, check_caption, in_place, matching, question_kinds, question_objects
from vl.errors import ConfigError

WORLD = ShapesWorld()
N_PROPERTY = 400  # scenes per property check; 2,000 captions and ~6,500 questions
FINGERPRINT = """
import hashlib, json, sys
from vl.data.shapes import ShapesWorld
w = ShapesWorld()
for split, index in json.loads(sys.argv[1]):
    it = w.item(split, index)
    text = json.dumps([it["captions"], it["questions"], it["tags"], it["scene"]], sort_keys=True)
    print(hashlib.sha256(it["image"].tobytes() + text.encode()).hexdigest())
"""
PROBES = [["train", 0], ["train", 7], ["val", 3], ["test", 11], ["test_heldout", 5]]


def fingerprint(item):
    text = json.dumps([item["captions"], item["questions"], item["tags"], item["scene"]], sort_keys=True)
    return hashlib.sha256(item["image"].tobytes() + text.encode()).hexdigest()


def test_same_seed_gives_identical_items_across_processes():
    runs = [
        subprocess.run(
            [sys.executable, "-c", FINGERPRINT, json.dumps(PROBES)],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout.split()
        for seed in ("1", "2")
    ]
    here = [fingerprint(WORLD.item(s, i)) for s, i in PROBES]
    assert runs[0] == runs[1] == here


def test_items_made_out_of_order_equal_items_made_in_order():
    in_order = [fingerprint(WORLD.item("train", i)) for i in range(12)]
    shuffled = [9, 2, 11, 0, 5, 7, 1, 10, 3, 8, 6, 4]
    fresh = ShapesWorld()
    assert {i: fingerprint(fresh.item("train", i)) for i in shuffled} == dict(enumerate(in_order))


def test_seed_and_split_change_the_items():
    other = ShapesWorld(ShapesConfig(seed=1))
    assert fingerprint(WORLD.item("train", 0)) != fingerprint(other.item("train", 0))
    assert fingerprint(WORLD.item("train", 0)) != fingerprint(WORLD.item("test", 0))


@pytest.mark.parametrize("size", [16, 32, 64, 128, 256])
def test_every_canvas_size_draws_what_the_scene_graph_says(size):
    world = ShapesWorld(ShapesConfig(image_size=size))
    for index in range(25):
        item = world.item("train", index)
        pixels = np.asarray(item["image"], dtype=np.int16)
        assert pixels.shape == (size, size, 3)
        objs = item["scene"]["objects"]
        assert 1 <= len(objs) <= 6 and len({o["color"] for o in objs}) == len(objs)
        background = np.ones((size, size), bool)
        for o in objs:
            x, y, w, h = o["bbox"]
            assert 0 <= x and 0 <= y and x + w <= size and y + h <= size
            assert (x + w / 2, y + h / 2) == pytest.approx((o["x"], o["y"]))
            # the object's centre pixel is drawn in its color (up to anti-aliasing at tiny sizes)
            centre = pixels[int(o["y"]), int(o["x"])]
            tolerance = 40 if size >= 64 else 140
            assert np.abs(centre - COLORS[o["color"]]).max() <= tolerance, (o, centre)
            background[max(int(y) - 1, 0) : int(y + h) + 2, max(int(x) - 1, 0) : int(x + w) + 2] = False
        # every pixel outside the (1-px grown) boxes is untouched background
        assert (pixels[background] == BACKGROUNDS["gray"]).all()
        for a in objs:  # boxes never overlap
            for b in objs:
                if a is not b:
                    ax, ay, aw, ah = a["bbox"]
                    bx, by, bw, bh = b["bbox"]
                    assert ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay


def test_relations_agree_with_geometry():
    for index in range(N_PROPERTY):
        scene = WORLD.item("train", index)["scene"]
        objs = {o["id"]: o for o in scene["objects"]}
        triples = {(r["subject"], r["predicate"], r["object"]) for r in scene["relations"]}
        for a in objs.values():
            for b in objs.values():
                if a is b:
                    continue
                assert ((a["id"], "left_of", b["id"]) in triples) == (a["x"] < b["x"])
                assert ((a["id"], "right_of", b["id"]) in triples) == (a["x"] > b["x"])
                assert ((a["id"], "above", b["id"]) in triples) == (a["y"] < b["y"])
                assert ((a["id"], "below", b["id"]) in triples) == (a["y"] > b["y"])
            others = [o for o in objs.values() if o is not a]
            if others:
                d = {o["id"]: np.hypot(a["x"] - o["x"], a["y"] - o["y"]) for o in others}
                assert (a["id"], "closest", min(d, key=d.get)) in triples
                assert (a["id"], "farthest", max(d, key=d.get)) in triples
        assert len(triples) == len(scene["relations"])


@pytest.mark.parametrize("split", ["train", "test_heldout"])
def test_every_caption_claim_is_true(split):
    claims = Counter()
    for index in range(N_PROPERTY):
        item = WORLD.item(split, index)
        assert len(item["captions"]) == 5
        for caption in item["captions"]:
            claims += check_caption(caption, item["scene"]["objects"], 64)
            assert not re.search(r"\bwith\b[^;,]*\b(?:is|sits|lies|appears)\b", caption), caption  # "with X sits" is not English
    # the checker really read relations, places and counts, not only noun phrases
    for kind in ("exists", "unique", "count", "left", "right", "above", "below", "near", "far", "place", "exhaustive"):
        assert claims[kind] >= 20, (kind, claims)


def test_caption_objects_name_the_objects_that_make_each_claim_true():
    """The spans caption_objects gives (what a caption pointer is taught to aim at) each name one object that
    fits the noun phrase and makes its place or relation true; most reference captions have some."""
    grounded = places = 0
    for index in range(N_PROPERTY):
        item = WORLD.item("train", index)
        objs = item["scene"]["objects"]
        for caption in item["captions"]:
            spans = caption_objects(caption, objs, 64)
            grounded += bool(spans)
            for start, end, obj in spans:
                phrase = caption[start:end]
                assert phrase.split()[0] in ("a", "an", "the") and obj in objs, phrase
                noun = NP.match(phrase)
                assert obj in matching(noun, objs), (caption, phrase, obj)
                place = next((p for p, pattern in PLACES.items() if re.search(pattern + "$", phrase)), None)
                if place is not None:
                    places += 1
                    assert in_place(place, obj, 64), (caption, phrase, obj)
    assert grounded >= 0.7 * 5 * N_PROPERTY and places >= 20, (grounded, places)
    objs = [{"color": "red", "shape": "circle", "size": "large", "x": 10, "y": 30}, {"color": "blue", "shape": "circle", "size": "small", "x": 50, "y": 30}]
    assert [(s, e, o["color"]) for s, e, o in caption_objects("a circle left of a blue circle", objs, 64)] == [(0, 17, "red"), (17, 30, "blue")]
    assert caption_objects("a circle and a circle", objs, 64) == []  # two fit each: neither is pinned
    assert caption_objects("two circles", objs, 64) == []


def test_captions_vary():
    captions = [WORLD.item("train", i)["captions"] for i in range(N_PROPERTY)]
    distinct_per_image = [len(set(c)) for c in captions]
    assert sum(distinct_per_image) / len(captions) >= 4.9
    openings = Counter(" ".join(c.split()[:2]) for cs in captions for c in cs)
    assert len(openings) >= 40  # many sentence shapes, not one template
    words = Counter(w for cs in captions for c in cs for w in c.replace(",", " ").split())
    for synonyms in (("disc", "circle"), ("rhombus", "diamond"), ("big", "large"), ("little", "small")):
        assert all(words[w] > 0 for w in synonyms), synonyms


@pytest.mark.parametrize("split", ["train", "test_heldout"])
def test_every_answer_is_right(split):
    seen = Counter()
    for index in range(N_PROPERTY):
        item = WORLD.item(split, index)
        for qa in item["questions"]:
            assert answer(qa["question"], item["scene"]["objects"], 64) == qa["answer"], qa
            assert qa["question_family"] == QUESTION_FAMILIES[qa["question_type"]]
            assert qa["answer_type"] == ("yes/no" if qa["answer"] in ("yes", "no") else "number" if qa["answer"].isdigit() else "other")
            seen[qa["question_type"]] += 1
    assert set(seen) == set(QUESTION_FAMILIES)
    assert {QUESTION_FAMILIES[t] for t in seen} == {"non-relational", "relational", "counting", "existence", "comparison"}


def test_questions_point_at_the_objects_their_answer_is_about():
    """question_objects: one object for questions about one, two for comparisons and relations (for
    closest/farthest the second is the answer's object), none for questions about kinds."""
    expected = {"shape": 1, "horizontal": 1, "vertical": 1, "size": 1, "count_same_shape": 1, "closest": 2, "farthest": 2, "relative_position": 2}
    expected |= {"compare_size": 2, "compare_shape": 2, "count": 0, "exist": 0, "compare_count": 0}
    for index in range(100):
        objs = WORLD.item("train", index)["scene"]["objects"]
        for qa in WORLD.item("train", index)["questions"]:
            pointed = question_objects(qa["question"], objs)
            assert len(pointed) == expected[qa["question_type"]], qa
            if qa["question_type"] in ("closest", "farthest"):
                assert qa["answer"] in (pointed[1]["shape"], pointed[1]["color"]) and pointed[1] is not pointed[0]
            if qa["question_type"] == "shape":
                assert pointed[0]["shape"] == qa["answer"]


def test_question_kinds_are_the_objects_a_count_or_existence_answer_is_made_of():
    """question_kinds: one group for counts and existence, two for "are there more X than Y"; the answer follows
    from the groups' sizes alone, and questions that name objects have none."""
    groups_of = {"count": 1, "exist": 1, "compare_count": 2}
    seen = Counter()
    for index in range(100):
        objs = WORLD.item("train", index)["scene"]["objects"]
        for qa in WORLD.item("train", index)["questions"]:
            groups, kind = question_kinds(qa["question"], objs), qa["question_type"]
            assert len(groups) == groups_of.get(kind, 0), qa
            if kind == "count":
                assert str(len(groups[0])) == qa["answer"], qa
            if kind == "exist":
                assert ("yes" if groups[0] else "no") == qa["answer"], qa
            if kind == "compare_count":
                assert ("yes" if len(groups[0]) > len(groups[1]) else "no") == qa["answer"], qa
            seen[kind] += bool(groups)
    assert all(seen[kind] > 20 for kind in groups_of), seen


def test_no_answer_dominates_its_type():
    answers = defaultdict(Counter)
    for index in range(2000):
        for qa in WORLD.item("train", index)["questions"]:
            answers[qa["question_type"]][qa["answer"]] += 1
    for qtype, counts in answers.items():
        top, n = counts.most_common(1)[0]
        assert n / sum(counts.values()) <= 0.5, (qtype, top, counts)
        assert sum(counts.values()) >= 1000, qtype


def test_heldout_pairs_never_appear_in_train_and_always_in_test_heldout():
    heldout = set(WORLD.cfg.heldout_pairs)
    phrases = {f"{pair.split()[0]} {word}" for pair in heldout for word in SHAPE_WORDS[pair.split()[1]]}
    for split in ("train", "val", "test"):
        for index in range(1500 if split == "train" else 300):
            item = WORLD.item(split, index)
            assert not heldout & {f"{o['color']} {o['shape']}" for o in item["scene"]["objects"]}
            assert not heldout & set(item["tags"])
            text = " ".join(item["captions"] + [q["question"] for q in item["questions"]])
            assert not any(p in text for p in phrases), text
    seen = Counter()
    for index in range(500):
        pairs = {f"{o['color']} {o['shape']}" for o in WORLD.item("test_heldout", index)["scene"]["objects"]}
        assert pairs & heldout
        seen.update(pairs & heldout)
    assert set(seen) == heldout


def test_tags_list_colors_shapes_and_pairs_present():
    vocab = WORLD.tag_vocabulary()
    assert len(vocab) == 7 + 6 + 42
    for index in range(100):
        item = WORLD.item("train", index)
        objs = item["scene"]["objects"]
        expected = {o["color"] for o in objs} | {o["shape"] for o in objs} | {f"{o['color']} {o['shape']}" for o in objs}
        assert set(item["tags"]) == expected
        assert item["tags"] == sorted(item["tags"], key=vocab.index)


def test_image_ids_and_question_ids_are_unique_across_splits():
    ids, qids, n_questions = set(), set(), 0
    for split in ("train", "val", "test", "test_heldout"):
        for index in range(50):
            item = WORLD.item(split, index)
            ids.add(item["image_id"])
            qids.update(q["question_id"] for q in item["questions"])
            n_questions += len(item["questions"])
    assert len(ids) == 200 and len(qids) == n_questions


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"image_size": 8}, "image_size is 8; it must be between 16 and 256"),
        ({"image_size": 512}, "image_size is 512"),
        ({"shapes": ["circle", "sqare"]}, "unknown shape 'sqare' in shapes; did you mean 'square'?"),
        ({"colors": ["red", "bleu"]}, "unknown color 'bleu' in colors; did you mean 'blue'?"),
        ({"background": "grey"}, "unknown background 'grey' in background; did you mean 'gray'?"),
        ({"splits": {"train": 0}}, "splits.train is 0; the number of items must be positive"),
        ({"splits": {"tarin": 5}}, "unknown split 'splits.tarin'; did you mean 'train'?"),
        ({"max_objects": 9}, "max_objects is 9"),
        ({"min_objects": 0}, "need 1 <= min_objects <= max_objects"),
        ({"heldout_pairs": ["red hexagon"]}, "heldout_pairs entry 'red hexagon'"),
    ],
)
def test_bad_world_configs_are_one_clear_line(overrides, message):
    with pytest.raises(ConfigError) as err:
        ShapesConfig(**overrides)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_unknown_split_and_missing_heldout():
    with pytest.raises(ConfigError, match="unknown split 'tset'; did you mean 'test'"):
        WORLD.item("tset", 0)
    with pytest.raises(ConfigError, match="needs heldout_pairs"):
        ShapesWorld(ShapesConfig(heldout_pairs=[])).item("test_heldout", 0)


def test_the_caption_reader_tells_a_scenes_captions_from_another_scenes():
    from vl.data.shapes.truth import caption_truth

    items = [WORLD.item("test", i) for i in range(80)]
    rows = [{"image_id": it["image_id"], "scene": it["scene"]} for it in items]
    own = caption_truth(rows, {it["image_id"]: it["captions"][0] for it in items}, 64)
    assert own["all_claims_true"] == 1.0 and own["mentions_exist"] == 1.0 and own["claims_per_caption"] > 2
    assert all(v == 1.0 for k, v in own.items() if k.startswith("true/")) and "true/exists" in own
    shifted = caption_truth(rows, {a["image_id"]: b["captions"][0] for a, b in zip(items, items[1:] + items[:1])}, 64)
    assert shifted["all_claims_true"] < 0.3 and shifted["mentions_exist"] < 0.5
    assert shifted["true/exists"] < 0.6 and set(shifted) - set(own) <= {"true/relation", "true/place", "true/count", "true/unique", "true/exhaustive"}
    assert caption_truth(rows[:1], {rows[0]["image_id"]: "hello world"}, 64)["all_claims_true"] == 0.0  # nothing readable


def test_truth_answerability_counts_a_question_answerable_when_the_scene_gives_its_answer():
    """bench/qgen_truth.py's check: the world's own questions are all answerable; a wrong answer, a colour
    the scene lacks and a sentence the reader cannot read are not."""
    import importlib.util
    import pathlib

    spec = importlib.util.spec_from_file_location("qgen_truth", pathlib.Path(__file__).resolve().parents[1] / "bench" / "qgen_truth.py")
    qgen_truth = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(qgen_truth)
    items = [WORLD.item("test", i) for i in range(20)]
    objects = {i: item["scene"]["objects"] for i, item in enumerate(items)}
    fields = ("question", "answer", "question_type")
    asked = [{"image_id": i} | {k: q[k] for k in fields} for i, it in enumerate(items) for q in it["questions"]]
    assert qgen_truth.truth_answerability(asked, objects, 64)[0] == 1.0
    absent = next(c for c in ("red", "green", "blue", "yellow", "cyan", "purple", "orange") if c not in {o["color"] for o in objects[0]})
    bad = [
        {**asked[0], "answer": "no such answer"},
        {**asked[0], "question": f"what is the shape of the {absent} object?"},
        {**asked[0], "question": "why?"},
    ]
    share, per_type = qgen_truth.truth_answerability(asked[:1] + bad, objects, 64)
    assert share == 0.25 and per_type[asked[0]["question_type"]]["failing"][0] == asked[0]["question"]
