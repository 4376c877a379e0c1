"""Procedural worlds as `datasets` splits: generated once per config, saved with save_to_disk under a
hash of the config, loaded memory-mapped afterwards; a split appears atomically or not at all."""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict, Features, load_from_disk

from vl.config import from_dict, to_dict, to_yaml
from vl.errors import ConfigError, did_you_mean


def check_rendering(splits: dict[str, int], known: tuple[str, ...], captions_per_image: int, supersample: int) -> None:
    """The config checks every procedural world shares: known splits with positive sizes, captions, anti-aliasing."""
    for split, n in splits.items():
        if split not in known:
            raise ConfigError(f"unknown split 'splits.{split}'{did_you_mean(split, known)}")
        if n <= 0:
            raise ConfigError(f"splits.{split} is {n}; the number of items must be positive")
    if captions_per_image <= 0:
        raise ConfigError("captions_per_image must be positive")
    if not 1 <= supersample <= 8:
        raise ConfigError(f"supersample is {supersample}; use 1 (no anti-aliasing) to 8")


def default_cache_dir() -> Path:
    """$VL_CACHE, else ~/.cache/vl-suite."""
    return Path(os.environ.get("VL_CACHE", Path.home() / ".cache" / "vl-suite"))


def config_hash(cfg: Any, version: str) -> str:
    """A short hash of everything that decides the items: the resolved config and a format version."""
    return hashlib.sha256((version + to_yaml(cfg)).encode()).hexdigest()[:12]


def build_world_splits(
    name: str,
    cfg: Any,
    splits: list[str],
    world: type,
    features: Features,
    version: str,
    cache_dir: str | Path | None,
    num_proc: int | None,
) -> DatasetDict:
    """Splits of a procedural world (cfg.splits gives their sizes), each cached under
    cache_dir/<name>-<config hash>/<split>: items world(cfg).item(split, index), made in worker processes
    when num_proc says so (the world class and its config travel by name)."""
    made = world(cfg)
    for split in splits:
        made.check(split, 0)
        if split not in cfg.splits:
            raise ValueError(f"split '{split}' has no size in the config; set splits.{split}=N")
    root = Path(cache_dir or default_cache_dir()) / f"{name}-{config_hash(cfg, version)}"
    kwargs = {"cfg": to_dict(cfg), "world": _name(world), "config": _name(type(cfg))}
    return DatasetDict({s: cached_split(root / s, world_items, {**kwargs, "split": s}, features, cfg.splits[s], num_proc) for s in splits})


def world_items(cfg: dict[str, Any], world: str, config: str, split: str, indices: list[int]) -> Iterator[dict[str, Any]]:
    """Items `indices` of `split` of the world class named `world` ("module:Class") built from `cfg`."""
    made = _load(world)(from_dict(_load(config), cfg))
    for index in indices:
        yield made.item(split, index)


def _name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _load(name: str) -> Any:
    module, _, attr = name.partition(":")
    return getattr(importlib.import_module(module), attr)


def cached_split(
    path: Path,
    items: Callable[..., Iterator[dict[str, Any]]],
    gen_kwargs: dict[str, Any],
    features: Features,
    n: int,
    num_proc: int | None = None,
) -> Dataset:
    """The split saved at `path`, generated first (items(**gen_kwargs, indices=...)) if it is not there."""
    if not (path / "dataset_info.json").is_file():
        generate_split(path, items, gen_kwargs, features, n, num_proc)
    return load_from_disk(str(path))


def generate_split(
    path: Path,
    items: Callable[..., Iterator[dict[str, Any]]],
    gen_kwargs: dict[str, Any],
    features: Features,
    n: int,
    num_proc: int | None,
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        ds = Dataset.from_generator(
            items,
            features=features,
            gen_kwargs={**gen_kwargs, "indices": list(range(n))},
            num_proc=num_proc if num_proc and num_proc > 1 and n >= 2 * num_proc else None,
            cache_dir=str(work / "build"),
            split=path.name,
        )
        ds.save_to_disk(str(work / "saved"))
        del ds
        try:
            (work / "saved").rename(path)  # atomic: a reader sees no split or a whole one
        except OSError:
            if not (path / "dataset_info.json").is_file():  # not another process that finished first
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
