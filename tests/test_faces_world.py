import numpy as np
import pytest

from vl.data.faces import FacesConfig, FacesWorld
from vl.data.faces.catalog import EXPRESSION_WORDS, EXPRESSIONS
from vl.data.faces.dataset import FACES_FEATURES, build_faces_dataset
from vl.data.faces.world import pose_phrase
from vl.errors import ConfigError

WORLD = FacesWorld()


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def eye_white_x(image) -> float:
    """Mean column of the eye whites (the only near-white pixels a face has)."""
    ys, xs = np.nonzero((pixels(image) > 235).all(-1))
    return float(xs.mean())


def test_items_are_deterministic_and_labelled():
    a, b = WORLD.item("train", 7), FacesWorld().item("train", 7)
    assert np.array_equal(pixels(a["image"]), pixels(b["image"]))
    assert {k: v for k, v in a.items() if k != "image"} == {k: v for k, v in b.items() if k != "image"}
    assert a["image"].size == (64, 64) and a["image"].mode == "RGB"
    assert a["yaw"] in WORLD.cfg.poses and a["expression"] in EXPRESSIONS and 0 <= a["identity"] < 240
    assert a["pose"] == WORLD.cfg.poses.index(a["yaw"])


def test_at_least_200_distinguishable_identities():
    images = {pixels(WORLD.image(i, 0, "neutral")).tobytes() for i in range(len(WORLD.identities))}
    assert len(WORLD.identities) >= 200 and len(images) == len(WORLD.identities)
    looks = {(p.face_width, p.skin, p.hair_color, p.hair_style) for p in WORLD.identities}
    assert len(looks) == len(WORLD.identities)  # distinct in what a 64 px image shows, not only in eye color


def test_first_identity_picks_a_disjoint_range_of_the_same_people():
    later = FacesWorld(FacesConfig(identities=240, first_identity=240)).identities
    assert later == FacesWorld(FacesConfig(identities=480)).identities[240:]  # the same people, whatever the range
    assert not set(later) & set(WORLD.identities)
    with pytest.raises(ConfigError, match="first_identity"):
        FacesConfig(identities=240, first_identity=600)


@pytest.mark.parametrize("identity", [0, 57, 123, 239])
def test_turning_moves_the_features_consistently(identity):
    """Yaw from -60 to +60 moves the eyes steadily to the right and narrows the far eye until it hides
    (drawn at 128 px, where the eye whites are whole pixels)."""
    world = FacesWorld(FacesConfig(image_size=128))
    xs = [eye_white_x(world.image(identity, yaw, "neutral")) for yaw in (-60, -30, 0, 30, 60)]
    assert all(a < b for a, b in zip(xs, xs[1:])), xs
    frontal = (pixels(world.image(identity, 0, "neutral")) > 235).all(-1).sum()
    turned = (pixels(world.image(identity, 60, "neutral")) > 235).all(-1).sum()
    assert turned < frontal  # foreshortened, and only one eye left


def test_expressions_change_the_face_not_the_person():
    for identity in (3, 99):
        faces = {e: pixels(WORLD.image(identity, 30, e)) for e in EXPRESSIONS}
        assert len({f.tobytes() for f in faces.values()}) == len(EXPRESSIONS) == 6
        # the hair and the outline stay put: the top rows of the image are the same for every expression
        tops = {f[:12].tobytes() for f in faces.values()}
        assert len(tops) == 1


def test_captions_say_the_expression_and_the_pose():
    for index in range(20):
        item = WORLD.item("val", index)
        phrase = pose_phrase(item["yaw"])
        assert len(item["captions"]) == 3 and len(set(item["captions"])) == 3
        for caption in item["captions"]:
            assert phrase in caption and any(w in caption for w in EXPRESSION_WORDS[item["expression"]]), caption
    assert pose_phrase(-60) == "turned to the left" and pose_phrase(30) == "turned slightly to the right"
    assert pose_phrase(0) == "facing the camera"


def test_train_poses_hold_out_poses_from_train_and_val_only():
    world = FacesWorld(FacesConfig(train_poses=[-30, 0, 30]))
    assert {world.labels("train", i)[1] for i in range(200)} == {-30, 0, 30}
    assert {world.labels("val", i)[1] for i in range(200)} == {-30, 0, 30}
    assert {world.labels("test", i)[1] for i in range(200)} == {-60, -30, 0, 30, 60}


def test_bad_configs_name_the_problem():
    with pytest.raises(ConfigError, match="unknown expression 'hapy'.*did you mean 'happy'"):
        FacesConfig(expressions=["hapy"])
    with pytest.raises(ConfigError, match="distinct yaw angles"):
        FacesConfig(poses=[0, 90])
    with pytest.raises(ConfigError, match="subset of poses"):
        FacesConfig(train_poses=[45])
    with pytest.raises(ConfigError, match="1 to 720 distinct people"):
        FacesConfig(identities=1000)
    with pytest.raises(ConfigError, match="unknown split 'splits.tran'"):
        FacesConfig(splits={"tran": 3})


def test_dataset_matches_the_world(tmp_path):
    cfg = FacesConfig(splits={"train": 12, "test": 6})
    dd = build_faces_dataset(cfg, cache_dir=tmp_path)
    assert dd["train"].features == FACES_FEATURES and len(dd["train"]) == 12 and len(dd["test"]) == 6
    row, item = dd["test"][4], FacesWorld(cfg).item("test", 4)
    assert np.array_equal(pixels(row["image"]), pixels(item["image"]))
    for key in ("image_id", "file_name", "identity", "yaw", "pose", "expression", "attributes", "captions"):
        assert row[key] == item[key], key
