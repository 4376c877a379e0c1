import json

import numpy as np
import pytest
from PIL import Image

from tasks.export_shapes import main as export_main
from vl.data.coco import load_coco_captions
from vl.data.karpathy import load_karpathy
from vl.data.shapes import ShapesConfig
from vl.data.shapes.dataset import build_dataset, to_caption_dataset, to_vqa_dataset
from vl.data.vqa import load_vqa
from vl.errors import DataFormatError

N = 12


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The Shapes test split built as a dataset, and the same items exported in all three formats."""
    out = tmp_path_factory.mktemp("export")
    cfg = ShapesConfig(splits={"test": N, "val": 4})
    built = build_dataset(cfg, cache_dir=out / "cache")
    code = export_main(["--out", str(out), "--split", "test,val", "--n", str(N), "--format", "coco,karpathy,vqa", "splits.val=4"])
    assert code == 0
    return out, built


def same_rows(a, b, image_columns=("image",)):
    assert a.column_names == b.column_names and len(a) == len(b)
    for ra, rb in zip(a, b):
        for key in a.column_names:
            if key in image_columns:
                assert np.array_equal(np.asarray(ra[key]), np.asarray(rb[key]))
            else:
                assert ra[key] == rb[key], key


def test_coco_round_trip(exported):
    out, built = exported
    loaded = load_coco_captions(out / "annotations" / "captions_test.json", out / "test")
    same_rows(loaded, to_caption_dataset(built["test"]))


def test_karpathy_round_trip(exported):
    out, built = exported
    splits = load_karpathy(out / "dataset_coco.json", out)
    assert set(splits) == {"test", "val"}
    one = load_karpathy(out / "dataset_coco.json", out, split="test")
    same_rows(one.remove_columns("split"), to_caption_dataset(built["test"]))
    data = json.loads((out / "dataset_coco.json").read_text())
    sentence = data["images"][0]["sentences"][0]
    assert sentence["tokens"] == sentence["raw"].replace(",", " ").replace(":", " ").replace(";", " ").split()


def test_vqa_round_trip(exported):
    out, built = exported
    loaded = load_vqa(out / "v2_OpenEnded_mscoco_test_questions.json", out / "v2_mscoco_test_annotations.json", out / "test")
    same_rows(loaded, to_vqa_dataset(built["test"]))
    assert all(len(a) == 10 for a in loaded["answers"])
    ann = json.loads((out / "v2_mscoco_test_annotations.json").read_text())["annotations"][0]
    assert set(ann) == {"question_type", "multiple_choice_answer", "answers", "image_id", "answer_type", "question_id"}
    assert set(ann["answers"][0]) == {"answer", "answer_confidence", "answer_id"}


def test_pycocotools_reads_our_caption_file(exported):
    from pycocotools.coco import COCO

    out, _ = exported
    coco = COCO(str(out / "annotations" / "captions_test.json"))
    assert len(coco.getImgIds()) == N
    assert all(len(coco.imgToAnns[i]) == 5 for i in coco.getImgIds())


# --- files shaped like the real releases ---------------------------------------------------------


def _jpg(path, color=(10, 200, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 6), color).save(path)


def test_reads_a_real_coco_caption_file(tmp_path):
    _jpg(tmp_path / "val2014" / "COCO_val2014_000000391895.jpg")
    real = {
        "info": {"description": "This is stable 1.0 version of the 2014 MS COCO dataset.", "year": 2014},
        "images": [
            {
                "license": 3,
                "url": "http://farm9.staticflickr.com/8186/8119368305_4e622c8349_z.jpg",
                "file_name": "COCO_val2014_000000391895.jpg",
                "id": 391895,
                "width": 640,
                "height": 360,
                "date_captured": "2013-11-14 11:18:45",
            }
        ],
        "licenses": [{"url": "http://creativecommons.org/licenses/by-nc-sa/2.0/", "id": 1, "name": "Attribution"}],
        "type": "captions",
        "annotations": [
            {"image_id": 391895, "id": 770337, "caption": "A man with a red helmet on a small moped on a dirt road. "},
            {"image_id": 391895, "id": 771687, "caption": "Man riding a motor bike on a dirt road on the countryside."},
        ],
    }
    (tmp_path / "captions_val2014.json").write_text(json.dumps(real))
    ds = load_coco_captions(tmp_path / "captions_val2014.json", tmp_path / "val2014")
    assert ds[0]["image_id"] == 391895 and len(ds[0]["captions"]) == 2
    assert ds[0]["image"].size == (8, 6)


def test_reads_karpathy_files_for_coco_and_flickr(tmp_path):
    _jpg(tmp_path / "val2014" / "COCO_val2014_000000391895.jpg")
    _jpg(tmp_path / "1000092795.jpg")
    coco = {
        "images": [
            {
                "filepath": "val2014",
                "sentids": [770337],
                "filename": "COCO_val2014_000000391895.jpg",
                "imgid": 0,
                "split": "test",
                "cocoid": 391895,
                "sentences": [{"tokens": ["a", "man"], "raw": "A man.", "imgid": 0, "sentid": 770337}],
            }
        ],
        "dataset": "coco",
    }
    flickr = {
        "images": [
            {
                "sentids": [0],
                "imgid": 0,
                "split": "train",
                "filename": "1000092795.jpg",
                "sentences": [{"tokens": ["two", "men"], "raw": "Two men.", "imgid": 0, "sentid": 0}],
            }
        ],
        "dataset": "flickr30k",
    }
    (tmp_path / "dataset_coco.json").write_text(json.dumps(coco))
    (tmp_path / "dataset_flickr30k.json").write_text(json.dumps(flickr))
    assert load_karpathy(tmp_path / "dataset_coco.json", tmp_path, split="test")[0]["image_id"] == 391895
    row = load_karpathy(tmp_path / "dataset_flickr30k.json", tmp_path, split="train")[0]
    assert row["image_id"] == 0 and row["captions"] == ["Two men."]
    with pytest.raises(DataFormatError, match="no images in split 'tset'; did you mean 'test'"):
        load_karpathy(tmp_path / "dataset_coco.json", tmp_path, split="tset")


def test_reads_real_vqa_v2_files_with_and_without_annotations(tmp_path):
    _jpg(tmp_path / "val2014" / "COCO_val2014_000000262148.jpg")
    questions = {
        "info": {},
        "task_type": "Open-Ended",
        "data_type": "mscoco",
        "license": {},
        "data_subtype": "val2014",
        "questions": [{"image_id": 262148, "question": "Where is he looking?", "question_id": 262148000}],
    }
    answers = ["down"] * 6 + ["at table", "skateboard", "down", "table"]
    annotations = {
        "info": {},
        "license": {},
        "data_subtype": "val2014",
        "data_type": "mscoco",
        "annotations": [
            {
                "question_type": "none of the above",
                "multiple_choice_answer": "down",
                "image_id": 262148,
                "answer_type": "other",
                "question_id": 262148000,
                "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": k + 1} for k, a in enumerate(answers)],
            }
        ],
    }
    (tmp_path / "q.json").write_text(json.dumps(questions))
    (tmp_path / "a.json").write_text(json.dumps(annotations))
    row = load_vqa(tmp_path / "q.json", tmp_path / "a.json", tmp_path / "val2014")[0]
    assert row["answers"] == answers and row["question_type"] == "none of the above"
    test_dev = load_vqa(tmp_path / "q.json", None, tmp_path / "val2014")[0]
    assert test_dev["answers"] == [] and test_dev["question"] == "Where is he looking?"


# --- malformed files: one clear line naming the problem ------------------------------------------


def _coco(tmp_path, mutate):
    _jpg(tmp_path / "imgs" / "a.jpg")
    data = {"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"image_id": 1, "id": 1, "caption": "x"}]}
    mutate(data)
    (tmp_path / "c.json").write_text(json.dumps(data))
    return tmp_path / "c.json"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("annotations"), "the file is missing key 'annotations'"),
        (lambda d: d["annotations"][0].pop("caption"), "annotations[0] is missing key 'caption'"),
        (lambda d: d["annotations"][0].update(caption=5), "annotations[0].caption should be a string, got int 5"),
        (lambda d: d["images"][0].update(id="1"), "images[0].id should be an integer, got str '1'"),
        (lambda d: d["images"][0].update(file_name="gone.jpg"), "image file not found: "),
        (lambda d: d["annotations"][0].update(image_id=9), "annotations[0].image_id 9 is not among the images"),
        (lambda d: d.update(images={"id": 1}), "the file.images should be a list, got dict"),
    ],
)
def test_malformed_coco_files(tmp_path, mutate, message):
    with pytest.raises(DataFormatError) as err:
        load_coco_captions(_coco(tmp_path, mutate), tmp_path / "imgs")
    assert message in str(err.value) and "\n" not in str(err.value)
    assert "c.json" in str(err.value)


def test_broken_json_missing_file_and_folder(tmp_path):
    (tmp_path / "bad.json").write_text('{"images": [}')
    with pytest.raises(DataFormatError, match=r"bad.json: not valid JSON \(line 1, column 13"):
        load_coco_captions(tmp_path / "bad.json", tmp_path)
    with pytest.raises(DataFormatError, match="COCO captions file not found: .*nope.json"):
        load_coco_captions(tmp_path / "nope.json", tmp_path)
    with pytest.raises(DataFormatError, match="image folder not found: .*no_such_dir"):
        load_coco_captions(_coco(tmp_path, lambda d: None), tmp_path / "no_such_dir")


@pytest.mark.parametrize(
    ("which", "mutate", "message"),
    [
        ("q", lambda q, a: q.pop("data_subtype"), "the file is missing key 'data_subtype'"),
        ("q", lambda q, a: q["questions"][0].update(question_id="7"), "questions[0].question_id should be an integer"),
        ("a", lambda q, a: a["annotations"][0]["answers"][3].pop("answer"), "annotations[0].answers[3] is missing key 'answer'"),
        ("a", lambda q, a: a["annotations"].clear(), "no annotation for question_id 7"),
        ("q", lambda q, a: q["questions"][0].update(image_id=5), "image file not found: "),
    ],
)
def test_malformed_vqa_files(tmp_path, which, mutate, message):
    _jpg(tmp_path / "COCO_val2014_000000000001.jpg")
    q = {"data_subtype": "val2014", "questions": [{"image_id": 1, "question": "what?", "question_id": 7}]}
    a = {
        "annotations": [
            {
                "question_id": 7,
                "image_id": 1,
                "question_type": "what",
                "answer_type": "other",
                "multiple_choice_answer": "x",
                "answers": [{"answer": "x"} for _ in range(10)],
            }
        ]
    }
    mutate(q, a)
    (tmp_path / "q.json").write_text(json.dumps(q))
    (tmp_path / "a.json").write_text(json.dumps(a))
    with pytest.raises(DataFormatError) as err:
        load_vqa(tmp_path / "q.json", tmp_path / "a.json", tmp_path)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert f"{which}.json" in str(err.value)
