"""The captioning task: data, processor, model, collate, training step, evaluation, saving."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from datasets import Dataset
from transformers import AutoImageProcessor, AutoTokenizer

from tasks.common.data import CaptionPairs, EpochSampler, ImageReader, open_captions
from tasks.common.experiment import ExperimentConfig
from vl.config import save_config
from vl.errors import ConfigError
from vl.metrics import FAST_METRICS, caption_scores
from vl.modeling import VLConfig, VLModel
from vl.processing import VLProcessor, image_processor, train_tokenizer


class CaptionTask:
    """training_step(model, batch) -> {"loss"}; evaluate(model) -> {"val/loss", "val/CIDEr", ...}."""

    name = "caption"

    def __init__(self, cfg: ExperimentConfig, accelerator: Accelerator):
        self.cfg, self.accelerator = cfg, accelerator
        out = Path(cfg.train.output_dir)
        with accelerator.main_process_first():  # the main process builds caches; the others then read them
            self.train_rows = open_captions(cfg.data.train, cfg.data.shapes)
            self.eval_rows = open_captions(cfg.data.eval, cfg.data.shapes, limit=cfg.data.eval_images)
            self.processor = build_processor(cfg, self.train_rows, out / "tokenizer")
        self.model = build_model(cfg, self.processor)
        self.max_len = self.model.heads["caption"].cfg.max_len
        self.reader = ImageReader(skip=cfg.data.skip_bad_images)

    # --- data -------------------------------------------------------------------------------------
    def train_loader(self, batch_size: int, seed: int) -> torch.utils.data.DataLoader:
        pairs = CaptionPairs(self.train_rows)
        return torch.utils.data.DataLoader(
            pairs, batch_size=batch_size, sampler=EpochSampler(len(pairs), seed), collate_fn=self.collate,
            drop_last=True, num_workers=self.cfg.data.num_workers,
        )

    def collate(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        images, kept = self.reader(rows)
        if not kept:
            raise RuntimeError("every image of a batch was unreadable")
        return dict(self.processor(images=images, text=[r["caption"] for r in kept], max_length=self.max_len - 1))

    # --- the Task contract --------------------------------------------------------------------------
    def training_step(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"loss": model(**batch, task="caption")["loss"]}

    @torch.no_grad()
    def evaluate(self, model: VLModel, batch_size: int = 64) -> dict[str, float]:
        """Loss on the first reference of each evaluation image, and BLEU-4 / CIDEr of greedy captions."""
        model.eval()
        preds, refs = caption_images(model, self.processor, self.eval_rows, self.cfg, batch_size, self.accelerator)
        losses = []
        for start in range(0, len(self.eval_rows), batch_size):
            chunk = [self.eval_rows[i] for i in range(start, min(start + batch_size, len(self.eval_rows)))]
            images, kept = self.reader(chunk)
            if not kept:
                continue
            batch = self.processor(images=images, text=[r["captions"][0] for r in kept], max_length=self.max_len - 1)
            batch = batch.to(self.accelerator.device)
            with self.accelerator.autocast():
                losses.append(model(**batch, task="caption")["loss"].float().item())
        scores = caption_scores(refs, preds, FAST_METRICS)["metrics"]
        model.train()
        return {"val/loss": sum(losses) / len(losses), **{f"val/{k}": v for k, v in scores.items()}}

    def save(self, model: VLModel, folder: Path) -> None:
        """save_pretrained model and processor, and the resolved config beside them."""
        model.save_pretrained(folder)
        self.processor.save_pretrained(folder)
        save_config(self.cfg, folder / "train_config.yaml")


def caption_images(
    model: VLModel, processor: VLProcessor, rows: Dataset, cfg: ExperimentConfig, batch_size: int, accelerator: Accelerator | None = None
) -> tuple[dict[int, str], dict[int, list[str]]]:
    """Generated captions and references, keyed by image_id, in the rows' order."""
    reader = ImageReader(skip=cfg.data.skip_bad_images)
    device = next(model.parameters()).device
    preds: dict[int, str] = {}
    refs: dict[int, list[str]] = {}
    autocast = accelerator.autocast if accelerator is not None else contextlib.nullcontext  # a fresh context per batch
    for start in range(0, len(rows), batch_size):
        chunk = [rows[i] for i in range(start, min(start + batch_size, len(rows)))]
        images, kept = reader(chunk)
        if not kept:
            continue
        pixels = processor(images=images)["pixel_values"].to(device)
        with autocast():
            ids = model.generate(pixels, task="caption", generation_config=cfg.generation)
        for row, text in zip(kept, processor.batch_decode(ids)):
            preds[row["image_id"]] = text
            refs[row["image_id"]] = row["captions"]
    return preds, refs


def build_processor(cfg: ExperimentConfig, train_rows: Dataset, tokenizer_dir: Path) -> VLProcessor:
    """Image processor for the encoder; a tokenizer by path, or trained once on the training captions."""
    enc = cfg.model.encoder
    if enc.get("type") == "hf":
        images = AutoImageProcessor.from_pretrained(enc["path"])
    else:
        images = image_processor(enc.get("image_size", 64), cfg.model.image_mean, cfg.model.image_std)
    if cfg.model.tokenizer.path:
        tokenizer = AutoTokenizer.from_pretrained(cfg.model.tokenizer.path)
    else:
        if not (tokenizer_dir / "tokenizer.json").is_file():  # trained once; a resumed run reuses it
            texts = (c for caps in train_rows["captions"] for c in caps)
            train_tokenizer(texts, cfg.model.tokenizer.vocab_size).save_pretrained(tokenizer_dir)
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    return VLProcessor(images, tokenizer)


def build_model(cfg: ExperimentConfig, processor: VLProcessor) -> VLModel:
    """The VLModel of cfg.model, its caption head sized to the processor's tokenizer."""
    heads = {}
    for name, spec in cfg.model.heads.items():
        spec = dict(spec)
        if spec.get("type", name) == "caption":
            ids = processor.caption_head_ids()
            if spec.get("init_from"):
                from transformers import AutoConfig

                vocab = AutoConfig.from_pretrained(spec["init_from"]).vocab_size
                if vocab != ids["vocab_size"]:
                    raise ConfigError(
                        f"model.heads.{name}.init_from has a {vocab}-token vocabulary but the tokenizer has "
                        f"{ids['vocab_size']}; set model.tokenizer.path to the same GPT-2 folder"
                    )
            spec.update(ids)
        heads[name] = spec
    return VLModel(VLConfig(encoder=cfg.model.encoder, heads=heads))
