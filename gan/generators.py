"""DR-GAN-style generator: an encoder takes a face to an identity code; a decoder draws that identity
at a target pose and expression (plus noise)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gan.layers import DownBlock, UpBlock
from vl.errors import ConfigError


@dataclass
class GeneratorConfig:
    image_size: int = 64
    width: int = 32  # channels at full resolution; doubled at each halving, up to 8x
    id_dim: int = 128  # the identity code
    noise_dim: int = 32
    embed_dim: int = 32  # pose and expression embeddings
    poses: int = 5
    expressions: int = 6

    def __post_init__(self) -> None:
        if self.image_size < 16 or self.image_size & (self.image_size - 1):
            raise ConfigError(f"generator image_size must be a power of two >= 16, got {self.image_size}")


def _widths(cfg: GeneratorConfig) -> list[int]:
    """Channels at each resolution from full size down to 4x4."""
    steps = int(math.log2(cfg.image_size // 4))
    return [cfg.width * min(2**i, 8) for i in range(steps + 1)]


class FaceGenerator(nn.Module):
    """encode(images (B, 3, H, W)) -> identity (B, id_dim); decode(identity, pose (B,), expression (B,),
    noise (B, noise_dim) or None) -> images in [-1, 1]; forward = decode(encode(x), ...)."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        widths = _widths(cfg)
        # block i halves the resolution to image_size / 2^(i+1), with widths[i+1] channels
        self.encoder = nn.Sequential(*[DownBlock(3 if i == 0 else widths[i], widths[i + 1], first=i == 0) for i in range(len(widths) - 1)])
        self.to_code = nn.Linear(widths[-1], cfg.id_dim)
        self.pose_embed = nn.Embedding(cfg.poses, cfg.embed_dim)
        self.expression_embed = nn.Embedding(cfg.expressions, cfg.embed_dim)
        cond = cfg.id_dim + 2 * cfg.embed_dim + cfg.noise_dim
        self.stem = nn.Linear(cond, 16 * widths[-1])
        rev = widths[::-1]
        self.blocks = nn.ModuleList(UpBlock(c_in, c_out, cond) for c_in, c_out in zip(rev[:-1], rev[1:]))
        self.out = nn.Sequential(nn.BatchNorm2d(rev[-1]), nn.ReLU(), nn.Conv2d(rev[-1], 3, 3, padding=1), nn.Tanh())

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        h = self.encoder(images)  # (B, C, 4, 4)
        return self.to_code(F.relu(h).sum(dim=(2, 3)))

    def decode(self, identity: torch.Tensor, pose: torch.Tensor, expression: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is None:
            noise = torch.randn(identity.size(0), self.cfg.noise_dim, device=identity.device)
        cond = torch.cat([identity, self.pose_embed(pose), self.expression_embed(expression), noise], dim=1)
        x = self.stem(cond).view(cond.size(0), -1, 4, 4)
        for block in self.blocks:
            x = block(x, cond)
        return self.out(x)

    def forward(
        self, images: torch.Tensor, pose: torch.Tensor, expression: torch.Tensor, noise: torch.Tensor | None = None, own: tuple | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """decode(encode(images), pose, expression, noise); with own = (pose, expression, noise) of the
        images themselves, also each face redrawn from the same code at its own pose: (fake, same).
        Training calls go through forward, so a DDP-wrapped generator syncs every parameter."""
        code = self.encode(images)
        fake = self.decode(code, pose, expression, noise)
        return fake if own is None else (fake, self.decode(code, *own))
