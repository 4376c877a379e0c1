"""Image-text retrieval head: contrastive image-text matching on the shared encoder (CLIP's recipe at
small scale). The image side pools the encoder's tokens with a learned query (plus a max-pooled
branch, as the classify head does, so a small object is not averaged away); the text side is a small
bidirectional transformer over the shared tokenizer, mean-pooled over its real tokens. Both are
projected to `embed_dim` and L2-normalised; the loss is InfoNCE both ways with a learned temperature,
where every pair of the same image counts as a positive (ALBEF's targets: a batch of (image, caption)
pairs may hold one image twice)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vl.errors import ConfigError
from vl.layers import MLP, CrossAttention, EncoderBlock, init_weights, key_mask
from vl.registry import HEADS


@HEADS.register("retrieval")
class RetrievalHead(nn.Module):
    """forward(tokens (B, N, Dm), batch [with text_ids/text_mask (B, L), pair_ids (B,)]) ->
    {"image_embeds" (B, E), "text_embeds", "logits_per_image" (B, B), "loss"}."""

    @dataclass
    class Config:
        dim: int = 256  # text transformer and image pooling width
        depth: int = 2  # text transformer blocks
        heads: int = 4
        mlp_ratio: float = 4.0
        max_len: int = 32  # text positions, BOS included
        embed_dim: int = 128  # the joint embedding space
        temperature: float = 0.07  # initial; learned (CLIP), its inverse capped at 100
        vocab_size: int = 0  # set from the tokenizer
        bos_token_id: int = 0
        eos_token_id: int = 0
        pad_token_id: int = 0

        def __post_init__(self) -> None:
            if self.dim % self.heads:
                raise ConfigError(f"retrieval head dim {self.dim} is not divisible by heads {self.heads}")
            if not 0 < self.temperature < 1:
                raise ConfigError(f"retrieval head temperature must be in (0, 1), got {self.temperature}")

    def __init__(self, cfg: Config, memory_dim: int):
        super().__init__()
        if cfg.vocab_size <= 0:
            raise ConfigError("retrieval head vocab_size is not set; build the model with its tokenizer")
        self.cfg = cfg
        # image side
        self.query = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.ln_mem, self.ln_q, self.ln_img = nn.LayerNorm(memory_dim), nn.LayerNorm(cfg.dim), nn.LayerNorm(cfg.dim)
        self.attend = CrossAttention(cfg.dim, memory_dim, cfg.heads)
        self.pool = nn.Linear(memory_dim, cfg.dim)
        self.mlp = MLP(cfg.dim, int(cfg.dim * cfg.mlp_ratio))
        self.image_proj = nn.Linear(cfg.dim, cfg.embed_dim, bias=False)
        # text side
        self.embed = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.pos = nn.Embedding(cfg.max_len, cfg.dim)
        self.blocks = nn.ModuleList(EncoderBlock(cfg.dim, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.ln_text = nn.LayerNorm(cfg.dim)
        self.text_proj = nn.Linear(cfg.dim, cfg.embed_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / cfg.temperature)))
        self.apply(init_weights)
        nn.init.trunc_normal_(self.query, std=0.02)

    def no_weight_decay(self) -> set[str]:
        """Token and position embeddings and the temperature are not decayed."""
        return {"embed.weight", "pos.weight", "logit_scale"}

    def embed_image(self, tokens: torch.Tensor) -> torch.Tensor:
        """Encoder tokens (B, N, Dm) -> unit image embeddings (B, E)."""
        memory = self.ln_mem(tokens)
        q = self.query.expand(tokens.size(0), -1, -1)
        h = q + self.attend(self.ln_q(q), self.attend.memory_kv(memory)) + self.pool(memory).amax(dim=1, keepdim=True)
        h = h + self.mlp(self.ln_img(h))
        return F.normalize(self.image_proj(h[:, 0]).float(), dim=-1)

    def embed_text(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Token ids (B, L) with mask (B, L), True on real tokens -> unit text embeddings (B, E)."""
        if ids.size(1) > self.cfg.max_len:
            raise ValueError(f"text of {ids.size(1)} tokens is longer than the head's {self.cfg.max_len} positions; truncate it (the processor does)")
        x = self.embed(ids) + self.pos.weight[: ids.size(1)]
        attn_mask = key_mask(mask.bool())
        for block in self.blocks:
            x = block(x, attn_mask)
        x = self.ln_text(x)
        weights = mask.unsqueeze(-1).to(x.dtype)
        pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1)
        return F.normalize(self.text_proj(pooled).float(), dim=-1)

    def forward(self, tokens: torch.Tensor, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        out = {"image_embeds": self.embed_image(tokens)}
        if "text_ids" in batch:
            out["text_embeds"] = self.embed_text(batch["text_ids"], batch["text_mask"])
            scale = self.logit_scale.float().clamp(max=math.log(100)).exp()
            logits = scale * out["image_embeds"] @ out["text_embeds"].t()  # (B images, B texts)
            out["logits_per_image"] = logits
            pairs = batch.get("pair_ids", torch.arange(logits.size(0), device=logits.device))
            positives = (pairs[:, None] == pairs[None, :]).float()  # every pair of the same image matches
            targets = positives / positives.sum(1, keepdim=True)
            out["loss"] = (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets)) / 2
        return out
