import numpy as np
import pytest

import vl.data.cache as cache
from vl.data.shapes import ShapesConfig, ShapesWorld
from vl.data.shapes.dataset import SHAPES_FEATURES, build_dataset, config_hash, to_vqa_dataset

CFG = ShapesConfig(splits={"train": 24, "test_heldout": 8})


def test_build_dataset_returns_the_world_as_a_datasetdict(tmp_path):
    dd = build_dataset(CFG, cache_dir=tmp_path)
    assert set(dd) == {"train", "test_heldout"}
    assert dd["train"].features == SHAPES_FEATURES and len(dd["train"]) == 24
    world, row = ShapesWorld(CFG), dd["test_heldout"][3]
    item = world.item("test_heldout", 3)
    assert np.array_equal(np.asarray(row["image"]), np.asarray(item["image"]))
    for key in ("image_id", "file_name", "captions", "questions", "tags", "scene"):
        assert row[key] == item[key], key
    vqa = to_vqa_dataset(dd["train"])
    assert len(vqa) == sum(len(q) for q in dd["train"]["questions"])
    grounded = to_vqa_dataset(dd["train"], grounding=True)  # the boxes of the objects each question points at
    first, objs = grounded[0], {o["color"]: o for o in dd["train"][0]["scene"]["objects"]}
    color = first["question"].split("the ")[1].split()[0]  # the first question asks about one object by its color
    np.testing.assert_allclose(first["question_boxes"], [[v / CFG.image_size for v in objs[color]["bbox"]]], rtol=1e-6)
    counted = next(r for r in grounded if r["question"].startswith("how many") and r["question_type"] == "count" and r["multiple_choice_answer"] != "0")
    assert len(counted["question_kind_boxes"]) == int(counted["multiple_choice_answer"]) and set(counted["question_kind_pointer"]) == {0}  # each object counted


def test_second_build_loads_from_the_cache(tmp_path, monkeypatch):
    first = build_dataset(CFG, splits=["train"], cache_dir=tmp_path)
    assert (tmp_path / f"shapes-{config_hash(CFG)}" / "train" / "dataset_info.json").is_file()
    monkeypatch.setattr(cache, "generate_split", lambda *a: pytest.fail("regenerated a cached split"))
    again = build_dataset(CFG, splits=["train"], cache_dir=tmp_path)
    assert again["train"]["image_id"] == first["train"]["image_id"]
    assert config_hash(CFG) != config_hash(ShapesConfig(seed=1, splits=CFG.splits))


def test_worker_processes_make_the_same_items(tmp_path):
    one = build_dataset(CFG, splits=["train"], cache_dir=tmp_path / "a")["train"]
    two = build_dataset(CFG, splits=["train"], cache_dir=tmp_path / "b", num_proc=2)["train"]
    assert one["captions"] == two["captions"] and one["questions"] == two["questions"]
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(one["image"], two["image"]))


def test_asking_for_a_split_without_a_size_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="splits.val=N"):
        build_dataset(CFG, splits=["val"], cache_dir=tmp_path)
