"""VLProcessor: image processing + tokenizer, saved and loaded together like any HF processor."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import AutoProcessor, BatchFeature, PreTrainedTokenizerFast, ProcessorMixin, ViTImageProcessor

from vl.data.images import to_rgb
from vl.modeling import VLConfig

SPECIAL = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1000) -> PreTrainedTokenizerFast:
    """A lower-casing BPE tokenizer learned from `texts`; punctuation split off, spacing restored on decoding."""
    tok = Tokenizer(models.BPE(unk_token=SPECIAL["unk_token"]))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Metaspace(), pre_tokenizers.Punctuation()])
    tok.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL.values()), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL)


def image_processor(size: int, mean: Sequence[float] = (0.5, 0.5, 0.5), std: Sequence[float] = (0.5, 0.5, 0.5), width: int | None = None) -> ViTImageProcessor:
    """Resize to size x size (or size high, width wide), scale to [0, 1], normalise: what the built-in ViT encoder expects."""
    return ViTImageProcessor(size={"height": size, "width": width or size}, image_mean=list(mean), image_std=list(std))


class VLProcessor(ProcessorMixin):
    """images -> pixel_values; captions -> input_ids (BOS + text) and labels (text + EOS, -100 on padding)."""

    def __init__(self, image_processor, tokenizer, **kwargs):
        if tokenizer.pad_token is None:  # GPT-2 style tokenizers have no pad: pad with EOS (masked in labels)
            tokenizer.pad_token = tokenizer.eos_token
        if tokenizer.bos_token is None:
            tokenizer.bos_token = tokenizer.eos_token
        super().__init__(image_processor, tokenizer, **kwargs)

    def __call__(self, images: Sequence[Image.Image] | None = None, text: Sequence[str] | None = None, max_length: int = 32, **_: Any) -> BatchFeature:
        out: dict[str, torch.Tensor] = {}
        if images is not None:
            out.update(self.visual_inputs(images))
        if text is not None:
            out.update(self.encode_captions(text, max_length))
        return BatchFeature(out)

    def visual_inputs(self, media: Sequence[Image.Image] | Sequence[Sequence[Image.Image]]) -> dict[str, torch.Tensor]:
        """The encoder's input for a batch of decoded media, the one path training and inference share:
        images -> {"pixel_values": (B, C, H, W)}; clips (each a list of T frames) -> (B, T, C, H, W)."""
        if media and isinstance(media[0], (list, tuple)):
            lengths = {len(clip) for clip in media}
            if len(lengths) != 1 or 0 in lengths:
                raise ValueError(f"every clip of a batch needs the same number of frames (at least one), got {sorted(lengths)}; sample a fixed number")
            frames = self.visual_inputs([f for clip in media for f in clip])["pixel_values"]
            return {"pixel_values": frames.unflatten(0, (len(media), lengths.pop()))}
        # H x W x C arrays, and said so: a 1 x 3 image is not taken for C x H x W (and transformers 5.17 reads
        # a PIL image as C x H x W whatever input_data_format says)
        rgb = [np.array(to_rgb(im)) for im in media]
        return {"pixel_values": self.image_processor(rgb, return_tensors="pt", input_data_format="channels_last")["pixel_values"]}

    def encode_captions(self, text: Sequence[str], max_length: int) -> dict[str, torch.Tensor]:
        """Teacher-forcing tensors: input_ids = BOS w1..wn, labels = w1..wn EOS, each at most max_length."""
        tok = self.tokenizer
        ids = tok(list(text), add_special_tokens=False)["input_ids"]
        seqs = [[tok.bos_token_id, *t[: max_length - 1], tok.eos_token_id] for t in ids]
        width = max(len(s) for s in seqs) - 1
        input_ids = torch.full((len(seqs), width), tok.pad_token_id, dtype=torch.long)
        labels = torch.full((len(seqs), width), -100, dtype=torch.long)
        for i, s in enumerate(seqs):
            input_ids[i, : len(s) - 1] = torch.tensor(s[:-1])
            labels[i, : len(s) - 1] = torch.tensor(s[1:])
        return {"input_ids": input_ids, "labels": labels}

    def encode_texts(self, text: Sequence[str], max_length: int, what: str = "question") -> dict[str, torch.Tensor]:
        """Texts a head reads (questions, answer prompts): ids = BOS w1..wn (padded), mask True on real
        tokens. Longer texts keep their first max_length - 1 tokens (as tokenizers' truncation does);
        an empty text is a ValueError, since there is nothing to read."""
        tok = self.tokenizer
        for i, t in enumerate(text):
            if not isinstance(t, str) or not t.strip():
                raise ValueError(f"{what} {i} is empty ({t!r}); give a non-empty {what}")
        ids = [[tok.bos_token_id, *t[: max_length - 1]] for t in tok(list(text), add_special_tokens=False)["input_ids"]]
        width = max(len(s) for s in ids)
        out = torch.full((len(ids), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.bool)
        for i, s in enumerate(ids):
            out[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = True
        return {"ids": out, "mask": mask}

    def decode(self, ids: torch.Tensor | Sequence[int], **kwargs: Any) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True, **kwargs).strip()

    def batch_decode(self, ids: torch.Tensor | Sequence[Sequence[int]], **kwargs: Any) -> list[str]:
        return [t.strip() for t in self.tokenizer.batch_decode(ids, skip_special_tokens=True, **kwargs)]

    def caption_head_ids(self) -> dict[str, int]:
        """vocab_size and special ids a text head (caption, vqa, qgen) needs from this tokenizer."""
        tok = self.tokenizer
        return {"vocab_size": len(tok), "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id}


AutoProcessor.register(VLConfig, VLProcessor)
