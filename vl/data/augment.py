"""Data-side training augmentation, the same for every task kind: classic image transforms applied as
images are read, and synthetic views (GAN redraws) added to the training items. A task kind calls
these two functions and knows neither which world its rows come from nor which generator drew them."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import torch
from torchvision.transforms import v2


def classic_augmentation(cfg: Any) -> Callable | None:
    """torchvision v2 transforms on PIL images for data.augment (flip, shift, color), or None when all off."""
    steps = []
    if cfg.flip:
        steps.append(v2.RandomHorizontalFlip())
    if cfg.shift:
        steps.append(v2.RandomAffine(degrees=0, translate=(cfg.shift, cfg.shift), scale=(1 - cfg.shift, 1 + cfg.shift)))
    if cfg.color:
        steps.append(v2.ColorJitter(brightness=cfg.color, contrast=cfg.color, saturation=cfg.color))
    return v2.Compose(steps) if steps else None


def with_synthetic_views(items: torch.utils.data.Dataset, data: Any, label_field: str | None = None) -> torch.utils.data.Dataset:
    """items, plus synthetic views when data.gan_augment.ratio > 0 (the `gan` package draws them; it is
    imported only then). A wrapper that changes how many captions rows have says so with caption_counts()."""
    if data.gan_augment.ratio <= 0:
        return items
    views = importlib.import_module("gan.augment")
    return views.GANAugmented(items, data.gan_augment, data.faces, label_field)
