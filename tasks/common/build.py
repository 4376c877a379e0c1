"""Build a run's processor (image processing + tokenizer) and model (shared encoder + task heads)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer

from vl.compress.early_exit import add_early_exits
from vl.errors import ConfigError
from vl.experiment import ExperimentConfig
from vl.modeling import VLConfig, VLModel
from vl.processing import VLProcessor, image_processor, train_tokenizer


def build_processor(cfg: ExperimentConfig, texts: Iterable[str], tokenizer_dir: Path) -> VLProcessor:
    """Image processor for the encoder; a tokenizer by path, or trained once on `texts` (every task's text);
    or, with model.init_from, the saved model's processor."""
    if cfg.model.init_from:
        return VLProcessor.from_pretrained(cfg.model.init_from)
    enc = cfg.model.encoder
    if enc.get("type") == "hf":
        images = AutoImageProcessor.from_pretrained(enc["path"])
    else:
        images = image_processor(enc.get("image_size", 64), cfg.model.image_mean, cfg.model.image_std, width=enc.get("image_width") or None)
    if cfg.model.tokenizer.path:
        tokenizer = AutoTokenizer.from_pretrained(cfg.model.tokenizer.path)
    else:
        if not (tokenizer_dir / "tokenizer.json").is_file():  # trained once; a resumed run reuses it
            train_tokenizer(texts, cfg.model.tokenizer.vocab_size).save_pretrained(tokenizer_dir)
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    return VLProcessor(images, tokenizer)


def build_model(cfg: ExperimentConfig, processor: VLProcessor, head_fields: Mapping[str, dict[str, Any]]) -> VLModel:
    """The VLModel of cfg.model; each head's spec completed with `head_fields[name]` (token ids, the
    answer or tag vocabulary: what only the data and the tokenizer know); with model.init_from, the saved
    model as it is (its vocabularies are what its weights were trained on)."""
    model = _build_model(cfg, head_fields)
    if cfg.model.early_exit:
        add_early_exits(model, cfg.model.early_exit)  # copies of the heads as built (or as trained, with init_from)
    return model


def _build_model(cfg: ExperimentConfig, head_fields: Mapping[str, dict[str, Any]]) -> VLModel:
    if cfg.model.init_from:
        return VLModel.from_pretrained(cfg.model.init_from)
    heads = {}
    for name, spec in cfg.model.heads.items():
        spec = {**spec, **head_fields.get(name, {})}
        if spec.get("init_from"):
            vocab = AutoConfig.from_pretrained(spec["init_from"]).vocab_size
            if vocab != spec.get("vocab_size"):
                raise ConfigError(
                    f"model.heads.{name}.init_from has a {vocab}-token vocabulary but the tokenizer has "
                    f"{spec.get('vocab_size')}; set model.tokenizer.path to the same GPT-2 folder"
                )
        heads[name] = spec
    model = VLModel(VLConfig(encoder=cfg.model.encoder, heads=heads))
    if cfg.model.inflate_from:
        model.encoder.inflate(saved_weights(cfg.model.inflate_from, "encoder."))
    return model


def saved_weights(folder: str, prefix: str) -> dict[str, torch.Tensor]:
    """The tensors under `prefix` (prefix removed) of a saved model's safetensors files."""
    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise ConfigError(f"{folder} holds no .safetensors weights")
    out = {}
    for f in files:
        out.update({k[len(prefix) :]: v for k, v in load_file(f).items() if k.startswith(prefix)})
    return out
