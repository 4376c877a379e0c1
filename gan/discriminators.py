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


@dataclass
class SceneDiscriminatorConfig:
    image_size: int = 64  # set from the Shapes world
    width: int = 16  # channels after the first block; doubled at each halving, up to 8x
    crop_size: int = 16  # each object is cut out at its box and resized to this (sg2im's object discriminator)
    shapes: int = 6  # set from the Shapes world
    colors: int = 7
    sizes: int = 2


class SceneDiscriminator(nn.Module):
    """sg2im's two discriminators in one module (one optimizer): forward(images (B, 3, H, W), boxes
    (B, O, 4) x0 y0 x1 y1 in [0, 1], objects (B, O) bool) -> {"adv" (B,) the whole image's score,
    "obj_adv" (K,) each real object's crop's score, "shape", "color", "size" (K, n) the crops' attribute
    logits (an auxiliary classifier, AC-GAN)}, K = the objects present, in (image, object) order."""

    def __init__(self, cfg: SceneDiscriminatorConfig):
        super().__init__()
        self.cfg = cfg
        self.image_blocks = _down_blocks(cfg.image_size, cfg.width)
        self.image_adv = spectral_norm(nn.Linear(cfg.width * min(2 ** (len(self.image_blocks) - 1), 8), 1))
        self.object_blocks = _down_blocks(cfg.crop_size, cfg.width)
        c = cfg.width * min(2 ** (len(self.object_blocks) - 1), 8)
        self.object_adv = spectral_norm(nn.Linear(c, 1))
        self.heads = nn.ModuleDict({k: spectral_norm(nn.Linear(c, n)) for k, n in (("shape", cfg.shapes), ("color", cfg.colors), ("size", cfg.sizes))})

    def forward(self, images: torch.Tensor, boxes: torch.Tensor, objects: torch.Tensor) -> dict[str, torch.Tensor]:
        h = F.relu(self.image_blocks(images)).sum(dim=(2, 3))
        crops = crop_objects(images, boxes, objects, self.cfg.crop_size)
        g = F.relu(self.object_blocks(crops)).sum(dim=(2, 3))
        return {"adv": self.image_adv(h).squeeze(1), "obj_adv": self.object_adv(g).squeeze(1), **{k: head(g) for k, head in self.heads.items()}}


def crop_objects(images: torch.Tensor, boxes: torch.Tensor, objects: torch.Tensor, size: int) -> torch.Tensor:
    """Each present object's box cut out of its image and resized to size x size (torchvision's
    roi_align): (K, 3, size, size) in (image, object) order."""
    from torchvision.ops import roi_align

    index = objects.nonzero()  # (K, 2): image, object
    scale = torch.tensor([images.size(-1), images.size(-2)] * 2, device=boxes.device, dtype=images.dtype)
    rois = torch.cat([index[:, :1].to(images.dtype), boxes[index[:, 0], index[:, 1]].to(images.dtype) * scale], dim=1)
    return roi_align(images, rois, output_size=size, spatial_scale=1.0, sampling_ratio=2, aligned=True)


def _down_blocks(size: int, width: int) -> nn.Sequential:
    """DownBlocks from size x size down to 4 x 4, widths doubling up to 8x."""
    steps = int(math.log2(size // 4))
    widths = [width * min(2**i, 8) for i in range(steps)]
    return nn.Sequential(*[DownBlock(3 if i == 0 else widths[i - 1], w, first=i == 0) for i, w in enumerate(widths)])
