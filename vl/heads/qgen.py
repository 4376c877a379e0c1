"""Question generation head: (image, answer [, question type]) -> a question that has that answer.
The answer prompt is read together with the image (as the VQA head reads a question); the caption
decoder then writes the question, attending to the image tokens and the fused prompt."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from vl.errors import ConfigError
from vl.heads.caption import CaptionHead
from vl.heads.fusion import FusionKind, build_fusion, joint_memory
from vl.heads.vqa import TextDecoderConfig, build_text_decoder
from vl.layers import init_weights
from vl.registry import HEADS


@HEADS.register("qgen")
class QGenHead(nn.Module):
    """forward(tokens (B, N, Dm), batch with prompt_ids/prompt_mask (B, P) [input_ids/labels (B, L)])
    -> {"logits" (B, L, V), "loss"}; generate with VLModel.generate(pixels, task="qgen", prompt_ids=..., prompt_mask=...)."""

    @dataclass
    class Config:
        dim: int = 256
        depth: int = 1  # fusion blocks over the answer prompt
        fusion: FusionKind = "cross"  # cross: the text attends to the image; joint: text and image tokens attend together (vl.heads.fusion)
        heads: int = 4
        mlp_ratio: float = 4.0
        dropout: float = 0.0
        max_len: int = 16  # prompt positions, BOS included
        use_question_type: bool = False  # the prompt says which kind of question to ask ("count: 3")
        decoder: TextDecoderConfig = field(default_factory=lambda: TextDecoderConfig(depth=3, max_len=32))
        vocab_size: int = 0  # set from the tokenizer
        bos_token_id: int = 0
        eos_token_id: int = 0
        pad_token_id: int = 0

        def __post_init__(self) -> None:
            if self.dim % self.heads:
                raise ConfigError(f"qgen head dim {self.dim} is not divisible by heads {self.heads}")

    def __init__(self, cfg: Config, memory_dim: int):
        super().__init__()
        self.cfg = cfg
        self.fusion = build_fusion(cfg.fusion, cfg.vocab_size, cfg.dim, cfg.depth, cfg.heads, cfg.max_len, memory_dim, cfg.mlp_ratio, cfg.dropout)
        self.project = nn.Linear(memory_dim, cfg.dim)
        self.decoder = build_text_decoder(cfg, cfg.decoder)
        self.fusion.apply(init_weights)
        self.project.apply(init_weights)

    def forward(self, tokens: torch.Tensor, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        memory, mask = self.decoder_memory(tokens, batch)
        return self.decoder.teacher_forced(memory, batch["input_ids"], batch.get("labels"), mask)

    def decoder_memory(self, tokens: torch.Tensor, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        index = batch.get("prompt_image")  # several prompts per image: (P,) image index of each
        fused = self.fusion(batch["prompt_ids"], batch["prompt_mask"], tokens, index)
        return joint_memory(tokens if index is None else tokens[index], fused, batch["prompt_mask"], self.project)

    def text_decoder(self) -> CaptionHead:
        return self.decoder


def qgen_prompt(answer: str, question_type: str | None = None) -> str:
    """The text the head reads: "circle", or with the question type "shape: circle"."""
    return f"{question_type}: {answer}" if question_type else answer
