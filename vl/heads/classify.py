"""Classification head (one label per image or clip: an expression, an action...): a learned query attends
to the tokens, added to the max-pooled tokens, then a linear read-out over the labels.

On clips (`frames` > 1, set from the video encoder by the task) the same query also pools each frame on
its own, and a linear layer over the frames' vectors *in order* is added (TRN's ordered-frames relation,
Zhou et al. 2018): "was it left early and right late" is a difference of frame vectors, which an
unordered pool over every token of the clip cannot express. `order: false` turns it off (the control)."""

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
        frames: int = 1  # T: the clip length of a video encoder (set from the encoder by the task); 1 for images
        order: bool = True  # on clips, add the read-out of the frames' vectors in order (see the module doc)

        def __post_init__(self) -> None:
            if self.dim % self.heads:
                raise ConfigError(f"classify head dim {self.dim} is not divisible by heads {self.heads}")
            if self.frames < 1:
                raise ConfigError(f"classify head frames is {self.frames}; it must be at least 1")

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
        # frame vectors in order -> one vector; starts at zero, so the head starts as the unordered pool
        self.ordered = nn.Linear(cfg.frames * cfg.dim, cfg.dim) if cfg.frames > 1 and cfg.order else None
        self.apply(init_weights)
        nn.init.trunc_normal_(self.query, std=0.02)
        if self.ordered is not None:
            nn.init.zeros_(self.ordered.weight)

    def forward(self, tokens: torch.Tensor, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        memory = self.ln_mem(tokens)
        q = self.query.expand(tokens.size(0), -1, -1)
        qn, kv, pooled = self.ln_q(q), self.attend.memory_kv(memory), self.pool(memory)
        h = q + self.attend(qn, kv) + pooled.amax(dim=1, keepdim=True)
        if self.ordered is not None:
            h = h + self.ordered(self.frame_vectors(qn, kv, pooled).flatten(1)).unsqueeze(1)
        h = h + self.mlp(self.ln2(h))
        logits = self.out(h[:, 0]).float()
        out = {"logits": logits}
        if "labels" in batch:
            out["loss"] = F.cross_entropy(logits, batch["labels"], label_smoothing=self.cfg.label_smoothing)
        return out

    def frame_vectors(self, qn: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor], pooled: torch.Tensor) -> torch.Tensor:
        """(B, T, D): the (normalised) query's attention over each frame's tokens alone, plus that frame's max-pool."""
        B, M, D = pooled.shape
        T = self.cfg.frames
        if M % T:
            raise ValueError(f"the classify head got {M} tokens, not a multiple of its {T} frames; give it clips of {T} frames")
        k, v = (t.unflatten(2, (T, M // T)).transpose(1, 2).flatten(0, 1) for t in kv)  # (B*T, H, N, hd)
        per_frame = self.attend(qn.repeat_interleave(T, dim=0), (k, v)).view(B, T, D)  # queries (B*T, 1, D)
        return per_frame + pooled.unflatten(1, (T, M // T)).amax(dim=2)

    def top_labels(self, logits: torch.Tensor, k: int = 5) -> list[list[dict[str, Any]]]:
        """The k most likely labels of each row with their softmax probability."""
        probs, index = logits.float().softmax(-1).topk(min(k, logits.size(-1)), dim=-1)
        return [[{"label": self.cfg.labels[i], "score": p} for p, i in zip(ps.tolist(), ix.tolist())] for ps, ix in zip(probs, index)]
