"""Compression ends in a model folder that loads with from_pretrained into the same outputs and serves
the pipelines unchanged; what cannot be done is refused with the reason."""

import json

import pytest
import torch
from torch import nn
from transformers import pipeline

from tasks.compress import main as compress_main
from vl.compress.int8 import Int8Linear, quantize
from vl.compress.lowrank import LowRankLinear, energy_rank, factorize
from vl.compress.prune import encoder_flops, prune_encoder
from vl.errors import ConfigError
from vl.modeling import CheckpointError, VLConfig, VLModel
from vl.processing import VLProcessor, image_processor, train_tokenizer

from .tiny_models import TEXTS, every_head_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return every_head_model(tmp_path_factory.mktemp("compress") / "model")


def test_full_rank_factors_equal_the_layer_and_energy_picks_the_rank():
    torch.manual_seed(0)
    linear = nn.Linear(12, 8)
    x = torch.randn(5, 12)
    torch.testing.assert_close(LowRankLinear.from_linear(linear, 8)(x), linear(x), atol=1e-5, rtol=1e-5)
    u, _ = torch.linalg.qr(torch.randn(8, 8))
    v, _ = torch.linalg.qr(torch.randn(12, 8))
    w = u @ torch.diag(torch.tensor([4.0, 3.0, 2.0, 1.0, 0, 0, 0, 0])) @ v.T  # squared: 16, 9, 4, 1 of 30
    assert [energy_rank(w, e) for e in (0.5, 0.54, 0.83, 0.84, 0.97, 1.0)] == [1, 2, 2, 3, 4, 4]


def test_a_factored_model_saves_loads_and_serves_the_pipelines(model_dir, tmp_path):
    out = tmp_path / "lowrank"
    assert compress_main(["lowrank", "--model", str(model_dir), "--out", str(out), "--energy", "0.8", "--min-saving", "0.05"]) == 0
    config = json.loads((out / "config.json").read_text())
    ranks = config["compression"]["lowrank"]
    assert ranks and all(isinstance(r, int) and r > 0 for r in ranks.values())
    model = VLModel.from_pretrained(out).eval()
    assert isinstance(model.get_submodule(next(iter(ranks))), LowRankLinear)
    factored = VLModel.from_pretrained(model_dir).eval()
    factorize(factored, 0.8, 0.05)
    pixels = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(model.encoder.forward_features(pixels), factored.encoder.forward_features(pixels))
    assert set(pipeline("image-captioning", model=str(out))(torch.rand(3, 32, 32))[0]) == {"generated_text"}


def test_a_caption_pointer_whose_place_words_are_factored_still_decodes():
    """The caption head's place-words layer (4 -> vocabulary) is left by default (too narrow to save anything) and,
    factored on request, still decodes."""
    torch.manual_seed(0)
    processor = VLProcessor(image_processor(32), train_tokenizer(TEXTS * 5, vocab_size=60))
    caption = {"type": "caption", "dim": 32, "heads": 2, "depth": 1, "max_len": 10, "pointer": True, "pointer_place_words": True}
    encoder = {"type": "vit", "image_size": 32, "patch_size": 8, "dim": 32, "depth": 1, "heads": 2}

    def build() -> VLModel:
        model = VLModel(VLConfig(encoder=encoder, heads={"caption": {**caption, **processor.caption_head_ids()}})).eval()
        nn.init.normal_(model.heads["caption"].place_words.weight)  # zero at the start of training
        return model

    model = build()
    pixels = torch.randn(2, 3, 32, 32)
    before = model.generate(pixels, max_new_tokens=6)
    model.heads["caption"].place_words = LowRankLinear.from_linear(model.heads["caption"].place_words, 4)  # full rank: the same layer
    torch.testing.assert_close(model.generate(pixels, max_new_tokens=6), before)
    factored = build()
    assert "heads.caption.place_words" not in factorize(build(), 0.6, 0.05)  # narrower than min_features: left as it is
    assert "heads.caption.place_words" in factorize(factored, 0.6, 0.05, min_features=1)
    assert factored.generate(pixels, max_new_tokens=6).shape[0] == 2


def test_what_cannot_be_done_is_refused(model_dir, tmp_path):
    model = VLModel.from_pretrained(model_dir)
    factorize(model, 0.8, 0.05)
    with pytest.raises(ConfigError, match="factored already"):
        factorize(model, 0.5)
    with pytest.raises(ConfigError, match="energy must be in"):
        factorize(VLModel.from_pretrained(model_dir), 1.5)
    model.save_pretrained(tmp_path / "lr")
    config = json.loads((tmp_path / "lr/config.json").read_text())
    config["compression"] = {"lowrank": {"encoder.nothing.here": 3}}
    (tmp_path / "lr/config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="names 'encoder.nothing.here', which this model does not have"):
        VLModel.from_pretrained(tmp_path / "lr")
    config["compression"] = {}  # the factored weights, read as the plain model
    (tmp_path / "lr/config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="do not fit the config|has shape"):
        VLModel.from_pretrained(tmp_path / "lr")


@pytest.mark.parametrize("scheme", ["dynamic", "weight_only"])
def test_int8_saves_small_loads_exact_and_serves_the_pipelines(model_dir, tmp_path, scheme):
    out = tmp_path / "int8"
    assert compress_main(["int8", "--model", str(model_dir), "--out", str(out), "--scheme", scheme, "--min-features", "16"]) == 0
    record = json.loads((out / "config.json").read_text())["compression"]["int8"]
    assert record["scheme"] == scheme and record["modules"]
    model = VLModel.from_pretrained(out).eval()
    assert isinstance(model.get_submodule(record["modules"][0]), Int8Linear)
    assert model.get_submodule(record["modules"][0]).qdata.dtype == torch.int8
    float_model = VLModel.from_pretrained(model_dir).eval()
    quantize(float_model, scheme, 16)
    pixels = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(model.encoder.forward_features(pixels), float_model.encoder.forward_features(pixels))
    reference = VLModel.from_pretrained(model_dir).eval().encoder.forward_features(pixels)
    assert (model.encoder.forward_features(pixels) - reference).norm() < 0.05 * reference.norm()  # int8 is close to float
    assert set(pipeline("image-question-answering", model=str(out))(torch.rand(3, 32, 32), question="how many circles are there?")[0]) == {"answer", "score"}


def test_a_freshly_loaded_int8_model_decodes_with_the_compiled_step(model_dir, tmp_path):
    """The torchao weights are made on first use, which a compiled graph cannot do: the compiled step makes them first."""
    out = tmp_path / "int8"
    assert compress_main(["int8", "--model", str(model_dir), "--out", str(out), "--min-features", "16"]) == 0
    model = VLModel.from_pretrained(out).eval()
    pixels = torch.rand(2, 3, 32, 32)
    ids = model.generate(pixels, task="caption", max_new_tokens=4, min_new_tokens=4, compile=True)
    assert ids.shape == (2, 4) and int(ids.max()) < model.config.heads["caption"]["vocab_size"]


def test_lowrank_then_int8_rebuilds_in_order_and_twice_is_refused(model_dir, tmp_path):
    lowrank, both = tmp_path / "lowrank", tmp_path / "both"
    assert compress_main(["lowrank", "--model", str(model_dir), "--out", str(lowrank), "--energy", "0.8", "--min-saving", "0.05"]) == 0
    assert compress_main(["int8", "--model", str(lowrank), "--out", str(both), "--min-features", "8"]) == 0
    assert set(json.loads((both / "config.json").read_text())["compression"]) == {"lowrank", "int8"}  # (rebuilt lowrank first)
    model = VLModel.from_pretrained(both).eval()
    assert any(isinstance(m, Int8Linear) for m in model.modules()) and any(isinstance(m, LowRankLinear) for m in model.modules())
    with pytest.raises(ConfigError, match="int8-quantized already"):
        quantize(model)
    quantized = VLModel.from_pretrained(model_dir)
    quantize(quantized, "dynamic", 16)
    with pytest.raises(ConfigError, match="factor the float model, then quantize"):
        factorize(quantized, 0.5)
    with pytest.raises(ConfigError, match="scheme must be one of"):
        quantize(VLModel.from_pretrained(model_dir), "int4")


def conv_stem_model(folder):
    """A conv-stem, LayerScale ViT (the recipe's encoder kind) with a caption and a tag head."""
    torch.manual_seed(0)
    src = every_head_model(folder)
    config = json.loads((src / "config.json").read_text())
    encoder = {"type": "vit", "image_size": 32, "patch_size": 8, "stem": "conv", "dim": 64, "depth": 2, "heads": 4, "layer_scale": 0.1}
    heads = {k: v for k, v in config["heads"].items() if k in ("caption", "tag")}
    model = VLModel(VLConfig(encoder=encoder, heads=heads)).eval()
    model.save_pretrained(folder)
    return folder


def test_pruning_reaches_the_flops_target_and_the_pruned_model_reloads_exactly(tmp_path):
    src = conv_stem_model(tmp_path / "model")
    for importance in ("magnitude", "taylor"):
        out = tmp_path / importance
        argv = ["prune", "--model", str(src), "--out", str(out), "--flops-ratio", "0.5", "--importance", importance, "--batches", "1"]
        assert compress_main(argv) == 0
        before, pruned = VLModel.from_pretrained(src).eval(), VLModel.from_pretrained(out).eval()
        pixels = torch.zeros(1, 3, 32, 32)
        ratio = encoder_flops(pruned.encoder, pixels) / encoder_flops(before.encoder, pixels)
        assert 0.35 < ratio <= 0.5
        record = pruned.config.compression["prune"]
        assert any(p.startswith("encoder.stem") for p in record["shapes"]) and any("mlp.fc1" in p for p in record["shapes"])
        assert all(1 <= h < 4 for h in record["heads"].values())  # heads went, at least one stayed
        again = VLModel.from_pretrained(out).eval()
        x = torch.randn(2, 3, 32, 32)
        torch.testing.assert_close(again.encoder(x), pruned.encoder(x))
        assert pruned.encoder(x).shape == before.encoder(x).shape  # the token width the heads read is kept
        assert set(pipeline("image-captioning", model=str(out))(torch.rand(3, 32, 32))[0]) == {"generated_text"}


def test_pruning_what_cannot_be_pruned_is_refused(model_dir, tmp_path):
    model = VLModel.from_pretrained(model_dir)
    prune_encoder(model, 0.6)
    with pytest.raises(ConfigError, match="prune-compressed already"):
        prune_encoder(model, 0.5)
    with pytest.raises(ConfigError, match="leaves .* of the FLOPs"):
        prune_encoder(VLModel.from_pretrained(model_dir), 0.01)
    with pytest.raises(ConfigError, match="must be in"):
        prune_encoder(VLModel.from_pretrained(model_dir), 1.5)
    lowrank = VLModel.from_pretrained(model_dir)
    factorize(lowrank, 0.8, 0.05)
    with pytest.raises(ConfigError, match="lowrank-compressed already"):
        prune_encoder(lowrank, 0.5)
    model.save_pretrained(tmp_path / "pruned")  # read as the plain model (record gone): a clear error, not a silent mess
    config = json.loads((tmp_path / "pruned/config.json").read_text())
    config["compression"] = {}
    (tmp_path / "pruned/config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="do not fit the config|has shape"):
        VLModel.from_pretrained(tmp_path / "pruned")
