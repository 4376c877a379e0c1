"""Tagging head: multi-label classification with attention pooling. Each tag has its own learned
query that attends to the image tokens, then its own linear read-out (ML-Decoder's group decoding,
one tag per group). A per-tag score map, max-pooled over the tokens, is added to each logit: at the
start of training attention is near-uniform, i.e. a mean that washes a small object out, while the
max finds it at once (measured on Shapes: mean-pooled probes stall at ~64% shape presence, max-pooled
reach 99% in 200 steps). The same score map composes pair tags never trained on ("red circle" from
"red" and "circle" at one location): see compose()."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vl.errors import ConfigError
from vl.layers import MLP, CrossAttention, init_weights
from vl.registry import HEADS


@HEADS.register("tag")
class TagHead(nn.Module):
    """forward(tokens (B, N, Dm), batch [with tag_targets (B, C) in {0, 1}]) -> {"logits" (B, C), "probs", "loss"}."""

    @dataclass
    class Config:
        tags: list[str] = field(default_factory=list)  # the tag vocabulary, set from the training data
        dim: int = 256
        heads: int = 4
        mlp_ratio: float = 2.0
        threshold: float = 0.5  # decision threshold; tuned on the evaluation split after training
        threshold_split: str = ""  # the data spec the thresholds were tuned on ("": not tuned)
        max_pool: bool = True  # add the max over tokens of a per-tag score map to each logit
        pair_threshold: float = 0.5  # decision threshold of composed pair tags (tuned with `threshold`)

        def __post_init__(self) -> None:
            if self.dim % self.heads:
                raise ConfigError(f"tag head dim {self.dim} is not divisible by heads {self.heads}")

    def __init__(self, cfg: Config, memory_dim: int):
        super().__init__()
        if not cfg.tags:
            raise ConfigError("tag head has no tags; build it from training data (tasks.train does) or set heads.tag.tags")
        self.cfg = cfg
        n = len(cfg.tags)
        self.queries = nn.Parameter(torch.zeros(n, cfg.dim))
        self.ln_q, self.ln_mem, self.ln2 = nn.LayerNorm(cfg.dim), nn.LayerNorm(memory_dim), nn.LayerNorm(cfg.dim)
        self.attend = CrossAttention(cfg.dim, memory_dim, cfg.heads)
        self.mlp = MLP(cfg.dim, int(cfg.dim * cfg.mlp_ratio))
        self.readout = nn.Parameter(torch.zeros(n, cfg.dim))
        self.bias = nn.Parameter(torch.zeros(n))
        self.score_map = nn.Linear(memory_dim, n, bias=False) if cfg.max_pool else None
        self.apply(init_weights)
        nn.init.trunc_normal_(self.queries, std=0.02)
        nn.init.trunc_normal_(self.readout, std=0.02)
        # pair tags "A B" (e.g. "red circle") that can be composed from the single tags A and B
        index = {t: i for i, t in enumerate(cfg.tags)}
        pairs = [t.split(" ") for t in cfg.tags if len(t.split(" ")) == 2 and all(w in index for w in t.split(" "))]
        firsts, seconds = dict.fromkeys(a for a, _ in pairs), dict.fromkeys(b for _, b in pairs)
        self.composable = [f"{a} {b}" for a in firsts for b in seconds] if self.score_map is not None else []
        self.parts = [[index[w] for w in p.split(" ")] for p in self.composable]  # a list, not a buffer: from_pretrained builds on meta

    def forward(self, tokens: torch.Tensor, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        B = tokens.size(0)
        memory = self.ln_mem(tokens)
        q = self.queries.expand(B, -1, -1)  # (B, C, D)
        h = q + self.attend(self.ln_q(q), self.attend.memory_kv(memory))
        h = h + self.mlp(self.ln2(h))
        logits = (h * self.readout).sum(-1) + self.bias  # (B, C)
        if self.score_map is not None:
            logits = logits + self.score_map(memory).amax(dim=1)  # (B, N, C) -> (B, C)
        logits = logits.float()
        out = {"logits": logits, "probs": logits.sigmoid()}
        if batch.get("compose") and self.composable:
            out["composed"] = self.compose(memory)
        if "tag_targets" in batch:
            out["loss"] = F.binary_cross_entropy_with_logits(logits, batch["tag_targets"].float())
        return out

    def compose(self, memory: torch.Tensor) -> torch.Tensor:
        """(B, P) scores of every composable pair "A B" (self.composable, trained on or not): the best,
        over image tokens, of the product of A's and B's per-token evidence (the score map), so "red
        circle" is found where a token is both red and circle, whether or not training ever named it."""
        maps = self.score_map(memory).float().sigmoid()  # (B, N, C)
        parts = torch.tensor(self.parts, device=memory.device)  # (P, 2)
        return (maps[..., parts[:, 0]] * maps[..., parts[:, 1]]).amax(dim=1)

    def predict(self, probs: torch.Tensor) -> list[list[dict[str, Any]]]:
        """Each row's tags above the head's threshold, most likely first (an empty list when none is)."""
        out = []
        for row in probs.float().tolist():
            kept = sorted(((p, t) for t, p in zip(self.cfg.tags, row) if p > self.cfg.threshold), reverse=True)
            out.append([{"tag": t, "score": p} for p, t in kept])
        return out
