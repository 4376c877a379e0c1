import json
from pathlib import Path

import pytest
import torch

from gan.evaluate import ClassifierConfig, accuracies, frechet_distance, load_classifier, save_classifier, train_classifier
from tasks import evaluate_gan, train_gan

TINY = str(Path(__file__).with_name("tiny_gan.yaml"))


def blobs(n=96, seed=0):
    """Images whose class is written in them: a bright square at one of 3 places (pose), its colour (expression)."""
    g = torch.Generator().manual_seed(seed)
    pose, expr = torch.randint(3, (n,), generator=g), torch.randint(2, (n,), generator=g)
    x = torch.full((n, 3, 32, 32), -1.0)
    for i in range(n):
        c = 4 + 10 * pose[i].item()
        x[i, expr[i].item(), 12:20, c : c + 8] = 1.0
    return x, {"pose": pose, "expression": expr, "identity": pose * 2 + expr}


def test_classifier_learns_and_round_trips(tmp_path):
    x, y = blobs()
    cfg = ClassifierConfig(poses=3, expressions=2, identities=6, width=8, features=16)
    model = train_classifier(x, y, cfg, steps=60, batch_size=32)
    acc = accuracies(model, *blobs(48, seed=1))
    assert acc["pose"] > 0.9 and acc["expression"] > 0.9, acc
    again = load_classifier(save_classifier(model, tmp_path / "clf"))
    assert torch.equal(again(x[:4])["pose"], model(x[:4])["pose"])
    with pytest.raises(ValueError, match="not a face classifier folder"):
        load_classifier(tmp_path)


def test_frechet_distance_is_small_for_the_same_distribution_and_large_for_another():
    x, y = blobs(128)
    model = train_classifier(x, y, ClassifierConfig(poses=3, expressions=2, identities=6, width=8, features=16), steps=40, batch_size=32)
    same = frechet_distance(model, x[:64], x[64:])
    other = frechet_distance(model, x[:64], -x[64:])
    assert 0 <= same < other


def test_evaluate_gan_end_to_end(tmp_path, capsys):
    assert train_gan.main(["--config", TINY, f"train.output_dir={tmp_path}"]) == 0
    argv = ["--generator", str(tmp_path / "generator"), "--n", "24", "--train-faces", "24", "--classifier-steps", "5", "--cas-steps", "5"]
    assert evaluate_gan.main(argv) == 0
    scores = json.loads((tmp_path / "generator" / "scores.json").read_text())
    for key in ("real_pose_acc", "gen_pose_acc", "gen_expression_acc", "gen_identity_acc", "fd", "cas_expression_acc"):
        assert key in scores and scores[key] == scores[key]  # present and not NaN
    assert (tmp_path / "face_classifier" / "model.safetensors").is_file() and (tmp_path / "generator" / "examples.png").is_file()
    assert "24 test faces" in capsys.readouterr().out
    assert evaluate_gan.main(argv) == 0  # the second time the saved judge is reused


def test_an_independent_reader_reads_the_generated_expressions(tmp_path, capsys):
    from tasks import train

    assert train_gan.main(["--config", TINY, f"train.output_dir={tmp_path / 'gan'}"]) == 0
    reader = str(Path(__file__).with_name("tiny_faces.yaml"))  # the tiny worlds share their people: the wiring is what is tested
    assert train.main(["--config", reader, f"train.output_dir={tmp_path / 'reader'}"]) == 0
    argv = ["--generator", str(tmp_path / "gan" / "generator"), "--n", "12", "--train-faces", "24", "--classifier-steps", "3", "--cas-steps", "3"]
    assert evaluate_gan.main([*argv, "--reader", str(tmp_path / "reader" / "model"), "--reader-faces", "10"]) == 0
    scores = json.loads((tmp_path / "gan" / "generator" / "scores.json").read_text())
    assert scores["reader_faces"] == 10 and 0 <= scores["reader_gen_expression_acc"] <= 1 and 0 <= scores["reader_real_expression_acc"] <= 1
    assert "reader_gen_expression_acc" in capsys.readouterr().out
    per_expression = {k: v for k, v in scores.items() if k.startswith("reader_gen_expression_acc/")}
    assert len(per_expression) >= 1 and all(0 <= v <= 1 for v in per_expression.values())
    last = ["--generator", str(tmp_path / "gan" / "checkpoints" / "step_0000004"), "--reader", str(tmp_path / "reader" / "model"), "--reader-faces", "10"]
    assert evaluate_gan.main([*last, "--reader-only", "--out", str(tmp_path / "last.json")]) == 0  # the last checkpoint holds the saved EMA
    again = json.loads((tmp_path / "last.json").read_text())
    assert again["reader_gen_expression_acc"] == scores["reader_gen_expression_acc"] and "fd" not in again
    assert evaluate_gan.main([*last[:2], "--reader-only"]) == 2
    assert "--reader-only needs --reader DIR" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"  # a reader at another image size: says what does not fit
    bad.write_text(Path(reader).read_text().replace("image_size: 32", "image_size: 40"))
    assert train.main(["--config", str(bad), f"train.output_dir={tmp_path / 'bad'}", "model.encoder.patch_size=8"]) == 0
    assert evaluate_gan.main([*argv, "--reader", str(tmp_path / "bad" / "model")]) == 2
    assert "give a reader of the generator's expressions, size" in capsys.readouterr().err
