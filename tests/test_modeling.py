import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModel, AutoProcessor, GPT2Config, GPT2LMHeadModel

from vl.data.shapes import ShapesWorld
from vl.modeling import CheckpointError, VLConfig, VLModel
from vl.processing import VLProcessor, image_processor, train_tokenizer

WORLD = ShapesWorld()
ITEMS = [WORLD.item("train", i) for i in range(60)]


@pytest.fixture(scope="module")
def processor():
    tokenizer = train_tokenizer((c for it in ITEMS for c in it["captions"]), vocab_size=200)
    return VLProcessor(image_processor(64), tokenizer)


@pytest.fixture(scope="module")
def model(processor):
    torch.manual_seed(0)
    head = {"type": "caption", "dim": 32, "depth": 1, "heads": 2, "max_len": 24, **processor.caption_head_ids()}
    return VLModel(VLConfig(encoder={"type": "vit", "dim": 32, "depth": 1, "heads": 2}, heads={"caption": head})).eval()


def test_tokenizer_round_trips_captions(processor):
    tok = processor.tokenizer
    for caption in (c for it in ITEMS for c in it["captions"]):
        assert tok.decode(tok(caption)["input_ids"]) == caption
    assert {"<pad>", "<s>", "</s>", "<unk>"} <= set(tok.get_vocab())


def test_processor_builds_teacher_forcing_batches(processor):
    batch = processor(images=[it["image"] for it in ITEMS[:3]], text=["a red circle", "two big blue squares and a star", "x"], max_length=5)
    assert batch["pixel_values"].shape == (3, 3, 64, 64)
    ids, labels = batch["input_ids"], batch["labels"]
    tok = processor.tokenizer
    assert (ids[:, 0] == tok.bos_token_id).all()
    assert ids.shape == labels.shape and ids.shape[1] <= 6  # BOS + at most 5 tokens
    inside = (labels[:, :-1] != -100) & (labels[:, :-1] != tok.eos_token_id)
    assert torch.equal(ids[:, 1:][inside], labels[:, :-1][inside])  # labels are the inputs shifted by one
    for row in labels.tolist():
        kept = [t for t in row if t != -100]
        assert kept[-1] == tok.eos_token_id


def test_save_pretrained_round_trip_gives_identical_outputs(model, processor, tmp_path):
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and not list(tmp_path.glob("*.bin"))
    again, proc = AutoModel.from_pretrained(tmp_path).eval(), AutoProcessor.from_pretrained(tmp_path)
    assert isinstance(again, VLModel) and isinstance(proc, VLProcessor)
    images, texts = [it["image"] for it in ITEMS[:4]], [it["captions"][0] for it in ITEMS[:4]]
    a, b = processor(images=images, text=texts), proc(images=images, text=texts)
    assert torch.equal(a["pixel_values"], b["pixel_values"]) and torch.equal(a["input_ids"], b["input_ids"])
    with torch.no_grad():
        assert torch.equal(model(**a)["logits"], again(**b)["logits"])
        assert torch.equal(model.generate(a["pixel_values"], max_new_tokens=10), again.generate(b["pixel_values"], max_new_tokens=10))
        beams = {"num_beams": 3, "max_new_tokens": 10}
        assert torch.equal(model.generate(a["pixel_values"], **beams), again.generate(b["pixel_values"], **beams))


def test_another_model_type_is_refused(tmp_path):
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=10)).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="holds a 'gpt2' model, not a vl-suite model"):
        VLModel.from_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="model folder not found: .*nothing"):
        VLModel.from_pretrained(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no config.json"):
        VLModel.from_pretrained(tmp_path / "empty")


def test_weights_that_do_not_fit_the_config_are_refused(model, tmp_path):
    model.save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    weights.pop("encoder.pos")
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="missing keys: encoder.pos"):
        VLModel.from_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["encoder"]["dim"] = 48  # same names, other shapes
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"has shape \[.*\] in the checkpoint but \[.*48.*\] in its config"):
        VLModel.from_pretrained(tmp_path)


def test_task_selection(model):
    with pytest.raises(ValueError, match="no 'vqa' head"):
        model(torch.zeros(1, 3, 64, 64), task="vqa", input_ids=torch.ones(1, 2, dtype=torch.long))
