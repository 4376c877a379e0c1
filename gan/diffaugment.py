"""DiffAugment (Zhao et al. 2020): the same differentiable augmentations applied to real and fake
images before the discriminator, so it cannot memorize a small training set. Policies: color
(brightness, saturation, contrast), translation (shift by up to 1/8 of the side, zero padding),
cutout (a random square of half the side set to zero)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")


def diff_augment(x: torch.Tensor, policy: str = "color,translation,cutout") -> torch.Tensor:
    """x (B, C, H, W) in [-1, 1], augmented per sample; differentiable with respect to x."""
    for name in filter(None, (p.strip() for p in policy.split(","))):
        if name not in POLICIES:
            raise ValueError(f"unknown DiffAugment policy '{name}'; use some of {', '.join(POLICIES)}")
        x = _AUGMENTS[name](x)
    return x


def _color(x: torch.Tensor) -> torch.Tensor:
    b = x.size(0)
    x = x + (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean


def _translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (b, 1, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (b, 1, 1), device=x.device)
    ys = (torch.arange(h, device=x.device)[None, :, None] + dy).clamp(-1, h)  # -1 and h read the zero padding
    xs = (torch.arange(w, device=x.device)[None, None, :] + dx).clamp(-1, w)
    padded = F.pad(x, (1, 1, 1, 1))
    index = (ys + 1) * (w + 2) + (xs + 1)  # (B, H, W) into the flattened padded image
    flat = padded.flatten(2)  # (B, C, (H+2)(W+2))
    return flat.gather(2, index.flatten(1)[:, None].expand(-1, x.size(1), -1)).view_as(x)


def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), device=x.device)
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    top, left = cy - ch // 2, cx - cw // 2
    inside = (ys >= top) & (ys < top + ch) & (xs >= left) & (xs < left + cw)  # (B, H, W)
    return x * (~inside)[:, None].to(x.dtype)


_AUGMENTS = {"color": _color, "translation": _translation, "cutout": _cutout}
