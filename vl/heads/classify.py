"""Classification head (one label per image: an expression, an action...): a learned query attends
to the image tokens, added to the max-pooled tokens, then a linear read-out over the labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vl.errors import ConfigError
from vl.layers import MLP, CrossAttention, init_weights
from vl.registry import HEADS


@HEADS.register("classify")
class ClassifyHead(nn.Module):
    """forward(tokens (B, N, Dm), batch [with labels (B,) class indices]) -> {"logits" (B, C), "loss"}."""

    @dataclass
    class Config:
        labels: list[str] = field(default_factory=list)  # the label vocabulary, set from the training data
        dim: int = 256
        heads: int = 4
        mlp_ratio: float = 2.0
        label_smoothing: float = 0.0

        def __post_init__(self) -> None:
            if self.dim % self.heads:
                raise ConfigError(f"classify head dim {self.dim} is not divisible by heads {self.heads}")

    def __init__(self, cfg: Config, memory_dim: int):
        super().__init__()
        if not cfg.labels:
            raise ConfigError("classify head has no labels; build it from training data (tasks.train does) or set heads.<name>.labels")
        self.cfg = cfg
        self.query = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.ln_mem, self.ln_q, self.ln2 = nn.LayerNorm(memory_dim), nn.LayerNorm(cfg.dim), nn.LayerNorm(cfg.dim)
        self.attend = CrossAttention(cfg.dim, memory_dim, cfg.heads)
        self.pool = nn.Linear(memory_dim, cfg.dim)
        self.mlp = MLP(cfg.dim, int(cfg.dim * cfg.mlp_ratio))
        self.out = nn.Linear(cfg.dim, len(cfg.labels))
        self.apply(init_weights)
        nn.init.trunc_normal_(self.query, std=0.02)

    def forward(self, tokens: torch.Tensor, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        memory = self.ln_mem(tokens)
        q = self.query.expand(tokens.size(0), -1, -1)
        h = q + self.attend(self.ln_q(q), self.attend.memory_kv(memory)) + self.pool(memory).amax(dim=1, keepdim=True)
        h = h + self.mlp(self.ln2(h))
        logits = self.out(h[:, 0]).float()
        out = {"logits": logits}
        if "labels" in batch:
            out["loss"] = F.cross_entropy(logits, batch["labels"], label_smoothing=self.cfg.label_smoothing)
        return out

    def top_labels(self, logits: torch.Tensor, k: int = 5) -> list[list[dict[str, Any]]]:
        """The k most likely labels of each row with their softmax probability."""
        probs, index = logits.float().softmax(-1).topk(min(k, logits.size(-1)), dim=-1)
        return [[{"label": self.cfg.labels[i], "score": p} for p, i in zip(ps.tolist(), ix.tolist())] for ps, ix in zip(probs, index)]
