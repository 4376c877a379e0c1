from vl.data.faces import FacesWorld
from vl.data.faces.truth import caption_truth, says_expression, says_pose

WORLD = FacesWorld()


def test_every_reference_caption_is_true_of_its_face():
    for i in range(60):
        item = WORLD.item("test", i)
        for caption in item["captions"]:
            assert says_pose(caption, item["yaw"]) and says_expression(caption, item["expression"]), caption


def test_wrong_or_mixed_claims_are_caught():
    assert not says_pose("a smiling face turned slightly to the left", -60)
    assert not says_pose("a smiling face turned to the right", -60)
    assert not says_expression("a smiling face facing the camera", "sad")
    assert not says_expression("a smiling and gloomy face", "happy")  # names another expression too
    assert says_expression("a person with red hair, turned to the left, looks grossed out", "disgusted")


def test_caption_truth_per_yaw():
    rows = [{"image_id": 1, "yaw": -60, "expression": "happy"}, {"image_id": 2, "yaw": 0, "expression": "sad"}, {"image_id": 3, "yaw": 0, "expression": "sad"}]
    preds = {1: "a smiling face turned to the left", 2: "a gloomy face facing the camera", 3: "a calm face facing the camera"}
    truth = caption_truth(rows, preds)
    assert truth["both"] == 2 / 3 and truth["pose"] == 1.0
    assert truth["expression/yaw=0"] == 0.5 and truth["both/yaw=-60"] == 1.0
    assert list(truth)[:3] == ["pose", "expression", "both"] and list(truth)[3] == "pose/yaw=-60"
