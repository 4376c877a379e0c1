"""ViT encoder built from config: patch (or small conv) stem, learned positions, pre-norm blocks."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from vl.errors import ConfigError
from vl.layers import EncoderBlock, init_weights
from vl.registry import ENCODERS


@ENCODERS.register("vit")
class ViTEncoder(nn.Module):
    """pixels (B, 3, H, W) -> tokens (B, N, D), N = (H / patch)^2 (+1 with a class token)."""

    registry_name = "vit"

    @dataclass
    class Config:
        image_size: int = 64
        patch_size: int = 8
        stem: Literal["patch", "conv"] = "patch"  # conv: 3x3 stride-2 convs down to the patch grid (hybrid)
        dim: int = 256
        depth: int = 4
        heads: int = 4
        mlp_ratio: float = 4.0
        act: Literal["gelu", "gelu_tanh"] = "gelu"
        dropout: float = 0.0
        cls_token: bool = False
        channels: int = 3

        def __post_init__(self) -> None:
            if self.image_size % self.patch_size:
                raise ConfigError(f"encoder.image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
            if self.dim % self.heads:
                raise ConfigError(f"encoder.dim {self.dim} is not divisible by heads {self.heads}")
            if self.stem == "conv" and self.patch_size & (self.patch_size - 1):
                raise ConfigError(f"encoder.stem 'conv' needs a power-of-two patch_size, got {self.patch_size}")

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.out_dim = cfg.dim
        self.stem = _patch_stem(cfg) if cfg.stem == "patch" else _conv_stem(cfg)
        n = (cfg.image_size // cfg.patch_size) ** 2 + int(cfg.cls_token)
        self.cls = nn.Parameter(torch.zeros(1, 1, cfg.dim)) if cfg.cls_token else None
        self.pos = nn.Parameter(torch.zeros(1, n, cfg.dim))
        self.blocks = nn.ModuleList(EncoderBlock(cfg.dim, cfg.heads, cfg.mlp_ratio, cfg.act, cfg.dropout) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.apply(init_weights)
        nn.init.trunc_normal_(self.pos, std=0.02, a=-0.04, b=0.04)

    def forward_features(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.stem(pixels).flatten(2).transpose(1, 2)  # (B, N, D)
        if self.cls is not None:
            x = torch.cat([self.cls.expand(x.size(0), -1, -1), x], dim=1)
        x = x + self.pos
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    forward = forward_features


def _patch_stem(cfg: ViTEncoder.Config) -> nn.Module:
    return nn.Conv2d(cfg.channels, cfg.dim, kernel_size=cfg.patch_size, stride=cfg.patch_size)


def _conv_stem(cfg: ViTEncoder.Config) -> nn.Module:
    """log2(patch) stride-2 3x3 convs (BatchNorm, GELU), widening to dim/2, then a 1x1 to dim."""
    layers: list[nn.Module] = []
    steps = int(math.log2(cfg.patch_size))
    width_in = cfg.channels
    for i in range(steps):
        width = max(cfg.dim // 2 ** (steps - i), 16)
        layers += [nn.Conv2d(width_in, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width), nn.GELU()]
        width_in = width
    layers.append(nn.Conv2d(width_in, cfg.dim, kernel_size=1))
    return nn.Sequential(*layers)
