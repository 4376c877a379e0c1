"""Early exits: trained jointly with the full-depth head, inert until a threshold is set, each row
leaving at its first confident exit (and its answer not depending on which rows share the batch),
saved and loaded with their thresholds; tuned on one split by tasks.compress exits."""

import json

import pytest
import torch

from tasks.compress import main as compress_main
from tasks.evaluate import main as evaluate_main
from tasks.train import main as train_main
from vl.compress.early_exit import add_early_exits, exit_curve, forced_exit, pick_threshold, set_thresholds
from vl.compress.lowrank import factorize
from vl.errors import ConfigError
from vl.modeling import VLConfig, VLModel

ANSWERS = ["circle", "2", "yes", "no", "red"]


def exit_model(depth: int = 3) -> VLModel:
    torch.manual_seed(0)
    small = {"dim": 32, "heads": 2}
    ids = {"vocab_size": 50, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}
    heads = {
        "vqa": {"type": "vqa", "depth": 1, "max_len": 8, "answers": ANSWERS, **small, **ids},
        "tag": {"type": "tag", "tags": ["red", "circle", "square"], **small},
        "caption": {"type": "caption", "depth": 1, "max_len": 8, **small, **ids},
    }
    encoder = {"type": "vit", "image_size": 32, "patch_size": 8, "dim": 32, "depth": depth, "heads": 2}
    return VLModel(VLConfig(encoder=encoder, heads=heads))


def vqa_batch(images: int = 3, per_image: int = 2) -> dict:
    g = torch.Generator().manual_seed(1)
    q = images * per_image
    return {
        "question_ids": torch.randint(3, 50, (q, 6), generator=g),
        "question_mask": torch.ones(q, 6, dtype=torch.long),
        "question_image": torch.arange(images).repeat_interleave(per_image),
        "answer_scores": torch.rand(q, len(ANSWERS), generator=g),
    }


def test_training_adds_every_exit_loss_and_reaches_every_exit():
    model = exit_model()
    add_early_exits(model, {"blocks": [0, 1, 2], "heads": ["vqa", "tag"], "weight": 0.5})
    model.train()
    pixels = torch.randn(3, 3, 32, 32)
    out = model(pixels, tasks={"vqa": vqa_batch(), "tag": {"tag_targets": torch.ones(3, 3)}})
    for name in ("vqa", "tag"):
        o = out[name]
        torch.testing.assert_close(o["loss"], o["loss_full"] + 0.5 * (o["loss_exit0"] + o["loss_exit1"] + o["loss_exit2"]))
    sum(out[n]["loss"] for n in ("vqa", "tag")).backward()
    for exit_ in (*model.early_exit.exits["vqa"], *model.early_exit.exits["tag"]):
        assert exit_.norm.weight.grad is not None and exit_.norm.weight.grad.abs().sum() > 0


def test_exits_are_inert_until_a_threshold_is_set_and_thresholds_bound_the_depth():
    plain = exit_model().eval()
    model = exit_model().eval()
    add_early_exits(model, {"blocks": [1, 2], "heads": ["vqa", "tag"]})
    pixels, batch = torch.randn(3, 3, 32, 32), vqa_batch()
    with torch.no_grad():
        torch.testing.assert_close(model(pixels, task="vqa", **batch)["logits"], plain(pixels, task="vqa", **batch)["logits"])
        set_thresholds(model, {"vqa": 1.0})  # no softmax is ever that sure: every row runs all blocks
        full = model(pixels, task="vqa", **batch)
        torch.testing.assert_close(full["logits"], plain(pixels, task="vqa", **batch)["logits"])
        assert full["exit_block"].tolist() == [3] * 6
        set_thresholds(model, {"vqa": 1e-6})  # every row is sure enough at the first exit
        first = model(pixels, task="vqa", **batch)
        with forced_exit(model, "vqa", 1) as seen:
            forced = model(pixels, task="vqa", **batch)
        torch.testing.assert_close(first["logits"], forced["logits"])
        assert first["exit_block"].tolist() == [1] * 6 and len(seen) == 1 and seen[0].shape == (6,)


@pytest.mark.parametrize("name, first", [("vqa", 1), ("tag", 1), ("vqa", 0), ("tag", 0)])
def test_each_row_answers_as_it_would_alone(name, first):
    """A middle threshold: some rows leave early, some run on; the batch's answers equal each row's alone.
    The first exit after block 1, or on the stem's tokens (block 0)."""
    model = exit_model().eval()
    add_early_exits(model, {"blocks": [first, 2], "heads": ["vqa", "tag"]})
    pixels = torch.randn(3, 3, 32, 32)
    batch = vqa_batch() if name == "vqa" else {}
    with torch.no_grad(), forced_exit(model, name, first) as seen:
        model(pixels, task=name, **batch)
    c = seen[0].sort().values
    # between two rows' confidences, not on one: a threshold equal to a row's confidence is decided by rounding
    set_thresholds(model, {name: float(c[len(c) // 2 - 1] + c[len(c) // 2]) / 2})
    with torch.no_grad():
        together = model(pixels, task=name, **batch)
        rows = 6 if name == "vqa" else 3
        assert first in together["exit_block"].tolist() and together["exit_block"].max() > first
        for r in range(rows):
            if name == "vqa":
                one = {k: v[r : r + 1] for k, v in batch.items() if k != "question_image"}
                alone = model(pixels[batch["question_image"][r]][None], task=name, **one)
            else:
                alone = model(pixels[r : r + 1], task=name)
            torch.testing.assert_close(together["logits"][r], alone["logits"][0], atol=1e-5, rtol=1e-5)
            assert together["exit_block"][r] == alone["exit_block"][0]
            if name == "tag":
                torch.testing.assert_close(together["probs"][r], alone["probs"][0], atol=1e-5, rtol=1e-5)


def test_exits_and_thresholds_save_and_load(tmp_path):
    model = exit_model().eval()
    add_early_exits(model, {"blocks": [2], "heads": ["tag"]})
    set_thresholds(model, {"tag": 0.7})
    model.save_pretrained(tmp_path / "m")
    record = json.loads((tmp_path / "m/config.json").read_text())["compression"]["early_exit"]
    assert record == {"blocks": [2], "heads": ["tag"], "weight": 1.0, "threshold": {"tag": 0.7}}
    loaded = VLModel.from_pretrained(tmp_path / "m").eval()
    pixels = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        a, b = model(pixels, task="tag"), loaded(pixels, task="tag")
    torch.testing.assert_close(a["probs"], b["probs"])
    assert a["exit_block"].tolist() == b["exit_block"].tolist()


def test_what_cannot_exit_is_refused():
    with pytest.raises(ConfigError, match="blocks 0 .. 2"):
        add_early_exits(exit_model(), {"blocks": [3]})
    with pytest.raises(ConfigError, match="'caption' is a caption head"):
        add_early_exits(exit_model(), {"blocks": [1], "heads": ["caption"]})
    with pytest.raises(ConfigError, match="heads are"):
        add_early_exits(exit_model(), {"blocks": [1], "heads": ["nothing"]})
    with pytest.raises(ConfigError, match="has no \\['blocs'\\]"):
        add_early_exits(exit_model(), {"blocs": [1]})
    model = exit_model()
    add_early_exits(model, {"blocks": [1]})
    assert list(model.early_exit.exits) == ["vqa", "tag"]  # every head that can exit, by default
    with pytest.raises(ConfigError, match="has early exits already"):
        add_early_exits(model, {"blocks": [2]})
    with pytest.raises(ConfigError, match="confidence in \\(0, 1\\]"):
        set_thresholds(model, {"vqa": 1.5})
    with pytest.raises(ConfigError, match="has no early exits"):
        set_thresholds(exit_model(), {"vqa": 0.5})
    lowrank = exit_model()
    factorize(lowrank, 0.5, 0.0)
    with pytest.raises(ConfigError, match="add early exits before lowrank"):
        add_early_exits(lowrank, {"blocks": [1]})


def test_the_curve_is_what_adaptive_inference_answers():
    """exit_curve's forced passes predict, for any threshold, exactly what the adaptive model answers."""

    class Kind:  # the TaskKind surface exit_curve uses: tag rows scored by agreement with fixed targets
        name, headline = "tag", ("agree",)

        def __init__(self, model, pixels):
            self.model, self.pixels = model, pixels

        def infer(self, model, rows, batch_size=0):
            probs = model(self.pixels, task="tag")["probs"]
            return {i: p for i, p in enumerate(probs)}

        def score(self, rows, outputs):
            return {"agree": sum(float((outputs[i] > 0.5).float().mean()) for i in outputs) / len(outputs)}

    model = exit_model().eval()
    add_early_exits(model, {"blocks": [1, 2], "heads": ["tag"]})
    pixels = torch.randn(8, 3, 32, 32)
    kind = Kind(model, pixels)
    with torch.no_grad():
        curve = exit_curve(model, kind, list(range(8)), [0.0, 0.55, 0.6, 1.0])
        assert curve[0]["blocks"] == 3 and curve[1]["blocks"] == 1 and curve[-1]["blocks"] == 3
        for point in curve[1:]:
            set_thresholds(model, {"tag": max(point["threshold"], 1e-9)})
            out = model(pixels, task="tag")
            assert out["exit_block"].float().mean().item() == pytest.approx(point["blocks"])
            assert kind.score(None, dict(enumerate(out["probs"])))["agree"] == pytest.approx(point["agree"])
    assert pick_threshold(curve, "agree", 100.0)["blocks"] == 1  # any drop allowed: the cheapest point
    assert pick_threshold([{"blocks": 3, "m": 1.0}, {"blocks": 1, "m": 0.5, "threshold": 0.5}], "m", 1.0)["blocks"] == 3


def test_train_with_exits_tune_on_one_split_and_evaluate_on_another(tmp_path, capsys):
    out = tmp_path / "run"
    overrides = [f"train.output_dir={out}", "model.early_exit={blocks: [1], heads: [vqa, tag]}", "model.encoder.depth=2"]
    assert train_main(["--config", "tests/tiny_multitask.yaml", *overrides]) == 0
    tuned = tmp_path / "tuned"
    assert compress_main(["exits", "--model", str(out / "model"), "--out", str(tuned), "--tune", "shapes:val", "--max-drop", "50", "--images", "8"]) == 0
    printed = capsys.readouterr().out
    assert "vqa" in printed and "tag" in printed and "blocks" in printed
    record = json.loads((tuned / "config.json").read_text())["compression"]["early_exit"]
    assert record["blocks"] == [1] and set(record["threshold"]) <= {"vqa", "tag"}
    assert evaluate_main(["--model", str(tuned), "--task", "vqa", "--data", "shapes:test", "--max-images", "4"]) == 0
    assert "blocks run" in capsys.readouterr().out
