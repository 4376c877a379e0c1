"""Discriminator with spectral norm: a real/fake score with projection terms for the pose and the
expression (Miyato & Koyama 2018), and auxiliary classifiers of pose, expression and identity
(DR-GAN's multi-task discriminator)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from gan.layers import DownBlock
from vl.errors import ConfigError


@dataclass
class DiscriminatorConfig:
    image_size: int = 64
    width: int = 32  # channels after the first block; doubled at each halving, up to 8x
    poses: int = 5
    expressions: int = 6
    identities: int = 240

    def __post_init__(self) -> None:
        if self.image_size < 16 or self.image_size & (self.image_size - 1):
            raise ConfigError(f"discriminator image_size must be a power of two >= 16, got {self.image_size}")


class FaceDiscriminator(nn.Module):
    """forward(images (B, 3, H, W), pose (B,), expression (B,)) -> {"adv" (B,), "pose" (B, P),
    "expression" (B, E), "identity" (B, I), "features" (B, C)}."""

    def __init__(self, cfg: DiscriminatorConfig):
        super().__init__()
        self.cfg = cfg
        steps = int(math.log2(cfg.image_size // 4))
        widths = [cfg.width * min(2**i, 8) for i in range(steps)]
        self.blocks = nn.Sequential(*[DownBlock(3 if i == 0 else widths[i - 1], w, first=i == 0) for i, w in enumerate(widths)])
        c = widths[-1]
        self.adv = spectral_norm(nn.Linear(c, 1))
        self.pose_proj = spectral_norm(nn.Embedding(cfg.poses, c))
        self.expression_proj = spectral_norm(nn.Embedding(cfg.expressions, c))
        self.pose_head = spectral_norm(nn.Linear(c, cfg.poses))
        self.expression_head = spectral_norm(nn.Linear(c, cfg.expressions))
        self.identity_head = spectral_norm(nn.Linear(c, cfg.identities))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C): the last block's activations summed over positions."""
        return F.relu(self.blocks(images)).sum(dim=(2, 3))

    def forward(self, images: torch.Tensor, pose: torch.Tensor, expression: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.features(images)
        adv = self.adv(h).squeeze(1) + (self.pose_proj(pose) * h).sum(1) + (self.expression_proj(expression) * h).sum(1)
        return {
            "adv": adv,
            "features": h,
            "pose": self.pose_head(h),
            "expression": self.expression_head(h),
            "identity": self.identity_head(h),
        }
