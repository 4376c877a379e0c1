"""Data-side training augmentation, the same for every task kind: classic image transforms applied as
images are read, and synthetic views (GAN redraws) added to the training items. A task kind calls
these two functions and knows neither which world its rows come from nor which generator drew them."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml
from datasets import concatenate_datasets
from torchvision.transforms import v2

from vl.errors import ConfigError


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


def gan_kind(augment: Any) -> str | None:
    """Which GAN data.gan_augment uses ("faces" or "scene_graph", from its generator's config), None when off."""
    if augment.ratio <= 0:
        return None
    path = Path(augment.generator)
    config = path / "config.yaml" if path.is_dir() else path
    data = yaml.safe_load(config.read_text()) if config.is_file() else None
    return data.get("kind", "faces") if isinstance(data, dict) else "faces"


def with_synthetic_rows(rows: Any, train_spec: str, data: Any, open_spec: Callable[[str], Any]) -> Any:
    """Training rows plus the scenes a scene-graph GAN synthesizes (data.gan_augment with a scene-graph
    generator; `shapes:gan` opened in the task's own form by open_spec), for Shapes training data."""
    if gan_kind(data.gan_augment) != "scene_graph":
        return rows
    if not train_spec.startswith("shapes:"):
        raise ConfigError(f"data.gan_augment with a scene-graph generator adds Shapes scenes; the training data is '{train_spec}' (use shapes:<split>)")
    return concatenate_datasets([rows, open_spec("shapes:gan")])


def with_synthetic_views(items: torch.utils.data.Dataset, data: Any, label_field: str | None = None) -> torch.utils.data.Dataset:
    """items, plus synthetic views when data.gan_augment.ratio > 0 with a face generator (the `gan` package
    draws them; it is imported only then). A wrapper that changes how many captions rows have says so with
    caption_counts(). (A scene-graph generator's scenes are rows already: with_synthetic_rows.)"""
    if gan_kind(data.gan_augment) != "faces":
        return items
    views = importlib.import_module("gan.augment")
    return views.GANAugmented(items, data.gan_augment, data.faces, label_field)
