"""The video encoder: the image ViT on every frame, with TimeSformer's divided space-time attention."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from vl.encoders.vit import ViTEncoder
from vl.errors import ConfigError
from vl.layers import SelfAttention, init_weights
from vl.registry import ENCODERS


@ENCODERS.register("video_vit")
class VideoViTEncoder(nn.Module):
    """clips (B, T, C, H, W) -> tokens (B, T * N, D): frame-major, each frame's N tokens as the image
    encoder gives them (coordinates included), after `depth` blocks of divided space-time attention.

    Each block first lets every token attend to the tokens at its own place in the other frames
    (temporal attention, its output projection zero-initialised), then runs the image encoder's block
    on each frame (spatial attention and MLP). With the temporal branches at zero and the temporal
    positions at zero, the encoder is exactly the image encoder applied frame by frame: so a trained
    image encoder inflates into a video encoder that starts where the image model was (`inflate`)."""

    @dataclass
    class Config(ViTEncoder.Config):
        frames: int = 8  # clip length the temporal positions are learned for (shorter clips use the first ones)
        # divided: TimeSformer's temporal then spatial attention per block; frames: no temporal attention,
        # the image encoder on each frame independently (the frame-by-frame baseline)
        attention: Literal["divided", "frames"] = "divided"

        def __post_init__(self) -> None:
            super().__post_init__()
            if not 1 <= self.frames <= 256:
                raise ConfigError(f"encoder.frames is {self.frames}; it must be between 1 and 256")

    input_kind = "video"  # (B, T, C, H, W)

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        image_fields = {k: v for k, v in vars(cfg).items() if k in ViTEncoder.Config.__dataclass_fields__}
        self.image = ViTEncoder(ViTEncoder.Config(**image_fields))
        self.out_dim = self.image.out_dim
        self.time_pos = nn.Parameter(torch.zeros(1, cfg.frames, 1, cfg.dim))
        self.temporal = nn.ModuleList(TemporalAttention(cfg.dim, cfg.heads, cfg.dropout) for _ in range(cfg.depth)) if cfg.attention == "divided" else None

    def no_weight_decay(self) -> set[str]:
        return {"time_pos", *(f"image.{n}" for n in self.image.no_weight_decay())}

    def forward_features(self, clips: torch.Tensor) -> torch.Tensor:
        if clips.ndim != 5:
            raise ValueError(f"the video encoder takes clips (B, T, C, H, W), got a tensor of shape {tuple(clips.shape)}")
        B, T = clips.shape[:2]
        if T > self.cfg.frames:
            raise ValueError(f"clips have {T} frames but encoder.frames is {self.cfg.frames}; sample at most {self.cfg.frames} frames")
        x = self.image.embed(clips.flatten(0, 1))  # (B*T, N, D)
        N = x.size(1)
        x = x.unflatten(0, (B, T)) + self.time_pos[:, :T]  # (B, T, N, D)
        for k, block in enumerate(self.image.blocks):
            if self.temporal is not None and T > 1:
                xt = x.transpose(1, 2).flatten(0, 1)  # (B*N, T, D): each place across time
                x = (xt + self.temporal[k](xt)).unflatten(0, (B, N)).transpose(1, 2)
            x = block(x.flatten(0, 1)).unflatten(0, (B, T))
        return self.image.finish(x.flatten(0, 1)).unflatten(0, (B, T)).flatten(1, 2)  # (B, T*N, D')

    forward = forward_features

    def inflate(self, image_state: dict[str, torch.Tensor]) -> None:
        """Load a trained image ViT's weights (its state_dict) into the per-frame part; temporal attention
        and positions are reset to zero, so the encoder starts as that image encoder on every frame."""
        missing, unexpected = self.image.load_state_dict(image_state, strict=False)
        if missing or unexpected:
            raise ConfigError(
                f"the image encoder does not fit this video encoder (missing {missing[:3]}, unexpected {unexpected[:3]}); "
                "inflate from an image model with the same encoder settings"
            )
        nn.init.zeros_(self.time_pos)
        if self.temporal is not None:
            for t in self.temporal:
                t.reset()


class TemporalAttention(nn.Module):
    """proj(attention over time(ln(x))): x (B*N, T, D); the output projection starts at zero (identity block)."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.ln = nn.LayerNorm(dim, eps=1e-6)
        self.attn = SelfAttention(dim, heads, dropout)
        self.reset()

    def reset(self) -> None:
        self.apply(init_weights)
        nn.init.zeros_(self.attn.proj.weight)
        nn.init.zeros_(self.attn.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(self.ln(x))
