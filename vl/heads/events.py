"""Temporal event head: which actions are under way in each frame of a clip (multi-label per frame).
Each frame's tokens are max- and mean-pooled through a projection, the frames then see each other
through one self-attention block over time (so a frame's label can use its neighbours: where a move
starts and ends), and a linear read-out gives each frame's action logits. vl.metrics.detection turns the
per-frame probabilities into scored segments."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vl.errors import ConfigError
from vl.layers import EncoderBlock, init_weights
from vl.registry import HEADS


@HEADS.register("events")
class EventsHead(nn.Module):
    """forward(tokens (B, T * N, Dm), batch [with frame_targets (B, T, A) in {0, 1}]) -> {"logits" (B, T, A), "probs", "loss"}."""

    @dataclass
    class Config:
        labels: list[str] = field(default_factory=list)  # the action vocabulary, set from the training data
        frames: int = 8  # T: the encoder's clip length (set from the encoder by the task)
        dim: int = 128
        heads: int = 4
        threshold: float = 0.5  # a frame carries an action at this probability (segments are runs of such frames)

        def __post_init__(self) -> None:
            if self.dim % self.heads:
                raise ConfigError(f"events head dim {self.dim} is not divisible by heads {self.heads}")

    def __init__(self, cfg: Config, memory_dim: int):
        super().__init__()
        if not cfg.labels:
            raise ConfigError("events head has no labels; build it from training data (tasks.train does) or set heads.<name>.labels")
        self.cfg = cfg
        self.ln_mem = nn.LayerNorm(memory_dim)
        self.project = nn.Linear(memory_dim, cfg.dim)
        self.time_pos = nn.Parameter(torch.zeros(1, cfg.frames, cfg.dim))
        self.block = EncoderBlock(cfg.dim, cfg.heads, mlp_ratio=2.0)
        self.norm = nn.LayerNorm(cfg.dim)
        self.out = nn.Linear(cfg.dim, len(cfg.labels))
        self.apply(init_weights)
        nn.init.trunc_normal_(self.time_pos, std=0.02)

    def no_weight_decay(self) -> set[str]:
        return {"time_pos"}

    def forward(self, tokens: torch.Tensor, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        B, M, _ = tokens.shape
        T = self.cfg.frames
        if M % T:
            raise ValueError(f"the events head got {M} tokens, not a multiple of {T} frames; use it on a video encoder")
        x = self.project(self.ln_mem(tokens)).unflatten(1, (T, M // T))  # (B, T, N, D)
        x = x.amax(dim=2) + x.mean(dim=2) + self.time_pos[:, :T]  # (B, T, D)
        logits = self.out(self.norm(self.block(x))).float()  # (B, T, A)
        out = {"logits": logits, "probs": logits.sigmoid()}
        if "frame_targets" in batch:
            out["loss"] = F.binary_cross_entropy_with_logits(logits, batch["frame_targets"].float())
        return out
