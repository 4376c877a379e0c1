import json
import random

import pytest

from tasks.evaluate import main as evaluate_main
from vl.metrics import caption_scores, spice_status

CAPTIONS = [
    "A man riding a red motorbike down a dirt road.",
    "Two dogs play in the grass!",
    "a plate of food, with broccoli",
    "The cat sits on a WOODEN table",
    "people walking on a busy street at night",
    "a red circle left of a blue square",
]


def write_coco(tmp_path, n=24, seed=0, scored=None):
    """A COCO captions file (5 refs per image, annotations shuffled) and a results file of imperfect captions."""
    rng = random.Random(seed)
    images = [{"id": 1000 + 7 * i, "file_name": f"x{i}.jpg", "width": 64, "height": 64} for i in range(n)]
    anns, results = [], []
    for img in images:
        refs = [f"{rng.choice(CAPTIONS)} {rng.choice(['', 'today', 'in the sun'])}".strip() for _ in range(5)]
        anns += [{"image_id": img["id"], "id": 0, "caption": c} for c in refs]
        results.append({"image_id": img["id"], "caption": rng.choice(refs + CAPTIONS).replace("a ", "one ", 1)})
    rng.shuffle(anns)
    for k, a in enumerate(anns):
        a["id"] = k + 1
    rng.shuffle(results)
    (tmp_path / "captions.json").write_text(json.dumps({"info": {}, "licenses": [], "images": images, "annotations": anns}))
    (tmp_path / "results.json").write_text(json.dumps(results[: scored or n]))
    return tmp_path / "captions.json", tmp_path / "results.json"


class NoSpice:
    def compute_score(self, gts, res):
        return 0.0, [0.0] * len(res)

    def method(self):
        return "SPICE"


@pytest.mark.parametrize("scored", [24, 21])
def test_scores_equal_pycocoevalcap_cocoevalcap(tmp_path, monkeypatch, capsys, scored):
    import pycocoevalcap.eval as coco_eval
    from pycocotools.coco import COCO

    ann, res = write_coco(tmp_path, n=24, scored=scored)
    monkeypatch.setattr(coco_eval, "Spice", NoSpice)  # the reference without SPICE (not installed here)
    coco = COCO(str(ann))
    coco_res = coco.loadRes(str(res))
    reference = coco_eval.COCOEvalCap(coco, coco_res)
    reference.params["image_id"] = coco_res.getImgIds()  # as coco-caption's example does, for partial results
    reference.evaluate()
    assert evaluate_main(["--coco-ann", str(ann), "--predictions", str(res), "--out", str(tmp_path / "s.json")]) == 0
    ours = json.loads((tmp_path / "s.json").read_text())
    assert ours["images"] == scored
    expected = {k: v for k, v in reference.eval.items() if k != "SPICE"}
    assert set(ours["metrics"]) == set(expected)
    for name, value in expected.items():
        assert ours["metrics"][name] == pytest.approx(value, abs=1e-12), name
    assert "SPICE" in ours["skipped"] or "SPICE" in ours["metrics"]
    assert f"scored {scored} images of 24" in capsys.readouterr().out


def test_spice_is_skipped_with_a_reason_and_never_downloaded(monkeypatch):
    import pycocoevalcap.spice.spice as spice_module

    def no_download(*args, **kwargs):
        raise AssertionError("SPICE tried to download Stanford CoreNLP")

    monkeypatch.setattr(spice_module, "get_stanford_models", no_download)
    if spice_status():
        out = caption_scores({1: ["a red circle"]}, {1: "a red circle"}, ["SPICE", "CIDEr"])
        assert "Stanford CoreNLP 3.6.0" in out["skipped"]["SPICE"] and "SPICE" not in out["metrics"]


def test_without_java_every_caption_metric_is_skipped_with_the_fix(monkeypatch):
    import vl.metrics.caption as caption_module

    monkeypatch.setattr(caption_module.shutil, "which", lambda name: None)
    out = caption_scores({1: ["a red circle"]}, {1: "a red circle"}, ["Bleu_4", "CIDEr"])
    assert out["metrics"] == {} and out["images"] == 1
    assert set(out["skipped"]) == {"Bleu_4", "CIDEr"} and "install a Java runtime" in out["skipped"]["CIDEr"]


def test_perfect_captions_score_high_and_wrong_ones_low():
    refs = {i: [c] * 5 for i, c in enumerate(CAPTIONS)}
    good = caption_scores(refs, {i: c for i, c in enumerate(CAPTIONS)}, ["Bleu_4", "CIDEr"])["metrics"]
    bad = caption_scores(refs, {i: CAPTIONS[(i + 1) % len(CAPTIONS)] for i in range(len(CAPTIONS))}, ["Bleu_4", "CIDEr"])["metrics"]
    assert good["Bleu_4"] > 0.99 and good["CIDEr"] > 5 * max(bad["CIDEr"], 0.01)


@pytest.mark.parametrize(
    ("results", "message"),
    [
        ([{"image_id": 1000, "caption": "a"}, {"image_id": 1000, "caption": "b"}], "image_id 1000 has more than one caption"),
        ([{"image_id": 5, "caption": "a"}], "image_id 5 is not among the references"),
        ([{"image_id": 1000}], "[0] is missing key 'caption'"),
        ({"image_id": 1000, "caption": "a"}, "a COCO results file is a list"),
    ],
)
def test_bad_results_files_are_one_clear_line(tmp_path, capsys, results, message):
    ann, _ = write_coco(tmp_path, n=3)
    (tmp_path / "bad.json").write_text(json.dumps(results))
    assert evaluate_main(["--coco-ann", str(ann), "--predictions", str(tmp_path / "bad.json")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_evaluate_needs_one_source_of_each(tmp_path, capsys):
    assert evaluate_main(["--predictions", "x.json"]) == 2
    assert "--data" in capsys.readouterr().err
    assert evaluate_main(["--data", "shapes:test"]) == 2
    assert "--model" in capsys.readouterr().err
