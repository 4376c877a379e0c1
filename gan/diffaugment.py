"""DiffAugment (Zhao et al. 2020): the same differentiable augmentations applied to real and fake
images before the discriminator, so it cannot memorize a small training set. Policies: color
(brightness, saturation, contrast), translation (shift by up to 1/8 of the side, zero padding),
cutout (a random square of half the side set to zero)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")


def diff_augment(x: torch.Tensor, policy: str = "color,translation,cutout", generator: torch.Generator | None = None) -> torch.Tensor:
    """x (B, C, H, W) in [-1, 1], augmented per sample; differentiable with respect to x. The random
    draws come from `generator` (a CPU generator; the global one when None)."""
    for name in filter(None, (p.strip() for p in policy.split(","))):
        if name not in POLICIES:
            raise ValueError(f"unknown DiffAugment policy '{name}'; use some of {', '.join(POLICIES)}")
        x = _AUGMENTS[name](x, generator)
    return x


def _rand(shape: tuple[int, ...], like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(shape, generator=generator).to(like.device, like.dtype)


def _randint(low: int, high: int, shape: tuple[int, ...], like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randint(low, high, shape, generator=generator).to(like.device)


def _color(x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    b = (x.size(0), 1, 1, 1)
    x = x + (_rand(b, x, g) - 0.5)  # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand(b, x, g) * 2) + mean  # saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(b, x, g) + 0.5) + mean  # contrast


def _translation(x: torch.Tensor, g: torch.Generator | None, ratio: float = 0.125) -> torch.Tensor:
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = _randint(-sh, sh + 1, (b, 1, 1), x, g)
    dx = _randint(-sw, sw + 1, (b, 1, 1), x, g)
    ys = (torch.arange(h, device=x.device)[None, :, None] + dy).clamp(-1, h)  # -1 and h read the zero padding
    xs = (torch.arange(w, device=x.device)[None, None, :] + dx).clamp(-1, w)
    padded = F.pad(x, (1, 1, 1, 1))
    index = (ys + 1) * (w + 2) + (xs + 1)  # (B, H, W) into the flattened padded image
    flat = padded.flatten(2)  # (B, C, (H+2)(W+2))
    return flat.gather(2, index.flatten(1)[:, None].expand(-1, x.size(1), -1)).view_as(x)


def _cutout(x: torch.Tensor, g: torch.Generator | None, ratio: float = 0.5) -> torch.Tensor:
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = _randint(0, h + (1 - ch % 2), (b, 1, 1), x, g)
    cx = _randint(0, w + (1 - cw % 2), (b, 1, 1), x, g)
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    top, left = cy - ch // 2, cx - cw // 2
    inside = (ys >= top) & (ys < top + ch) & (xs >= left) & (xs < left + cw)  # (B, H, W)
    return x * (~inside)[:, None].to(x.dtype)


_AUGMENTS = {"color": _color, "translation": _translation, "cutout": _cutout}
