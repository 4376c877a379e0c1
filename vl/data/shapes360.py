"""Shapes in 360 degrees: objects on the viewing sphere, rendered in equirectangular projection (x is
longitude over the full width, y latitude from +90 to -90 degrees), so they stretch with latitude and
wrap across the left/right seam. Tags (colors, shapes, color+shape pairs present) as in the image world.
Every item is a pure function of (config, split, index); `roll` shifts the panorama horizontally (a
different heading of the same scene: the same tags)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from datasets import DatasetDict, Features, Image, List, Value
from PIL import Image as PILImage

from vl.data.cache import build_world_splits, check_rendering
from vl.data.shapes.catalog import BACKGROUNDS, COLORS, OUTLINES, SHAPES, half_extent
from vl.errors import ConfigError, did_you_mean

SPLITS = ("train", "val", "test")
FORMAT_VERSION = "1"
FEATURES = Features({"image": Image(), "image_id": Value("int64"), "tags": List(Value("string"))})


@dataclass
class Shapes360Config:
    seed: int = 0
    height: int = 64  # the panorama is 2 * height wide
    min_objects: int = 1
    max_objects: int = 4
    max_latitude: float = 60.0  # degrees; objects stay within this band (stretched up to 1 / cos of it)
    sizes: dict[str, float] = field(default_factory=lambda: {"small": 0.2, "large": 0.32})  # angular radius, radians
    shapes: list[str] = field(default_factory=lambda: ["circle", "square", "triangle", "diamond", "star", "cross"])
    colors: list[str] = field(default_factory=lambda: ["red", "orange", "yellow", "green", "cyan", "blue", "purple"])
    background: str = "gray"
    supersample: int = 3
    roll: int = 0  # pixels every panorama is rolled to the right: the same scenes seen from another heading
    splits: dict[str, int] = field(default_factory=lambda: {"train": 4000, "val": 500, "test": 500})

    def __post_init__(self) -> None:
        if not 16 <= self.height <= 256:
            raise ConfigError(f"height is {self.height}; it must be between 16 and 256 pixels")
        for key, names, known in (("shapes", self.shapes, SHAPES.keys()), ("colors", self.colors, COLORS)):
            for name in names:
                if name not in known:
                    raise ConfigError(f"unknown {key.rstrip('s')} '{name}' in {key}{did_you_mean(name, known)}")
        if not 1 <= self.min_objects <= self.max_objects <= len(self.colors):
            raise ConfigError(f"need 1 <= min_objects <= max_objects <= {len(self.colors)} (colors are unique in a scene)")
        if not 0 < self.max_latitude <= 75:
            raise ConfigError(f"max_latitude is {self.max_latitude}; use 0 < it <= 75 degrees")
        check_rendering(self.splits, SPLITS, 1, self.supersample)


class Shapes360World:
    def __init__(self, cfg: Shapes360Config | None = None):
        self.cfg = cfg or Shapes360Config()
        self._tags = [*self.cfg.colors, *self.cfg.shapes, *(f"{c} {s}" for c in self.cfg.colors for s in self.cfg.shapes)]

    def check(self, split: str, index: int) -> None:
        if split not in SPLITS:
            raise ConfigError(f"unknown Shapes 360 split '{split}'{did_you_mean(split, SPLITS)}")

    def scene(self, split: str, index: int) -> list[dict[str, Any]]:
        """Objects {shape, color, size, lon, lat, radius} (radians), their angular boxes apart."""
        self.check(split, index)
        cfg = self.cfg
        rng = random.Random(f"vl-shapes360/{cfg.seed}/{split}/{index}")
        n = rng.randint(cfg.min_objects, cfg.max_objects)
        band = math.radians(cfg.max_latitude)
        for _ in range(200):
            objects: list[dict[str, Any]] = []
            for color in rng.sample(cfg.colors, n):
                shape, size = rng.choice(cfg.shapes), rng.choice(list(cfg.sizes))
                radius = cfg.sizes[size] * max(half_extent(shape))
                for _ in range(50):
                    lon, lat = rng.uniform(-math.pi, math.pi), rng.uniform(-band, band)
                    if all(_angle(lon, lat, o["lon"], o["lat"]) > 1.5 * (radius + o["extent"]) for o in objects):
                        objects.append({"shape": shape, "color": color, "size": size, "lon": lon, "lat": lat, "radius": cfg.sizes[size], "extent": radius})
                        break
            if len(objects) == n:
                return objects
        raise RuntimeError(f"could not place {n} objects on the sphere; use fewer or smaller ones")

    def image(self, objects: list[dict[str, Any]], roll: int = 0) -> PILImage.Image:
        """The equirectangular panorama (height x 2 * height), rolled `roll` pixels to the right."""
        cfg, k = self.cfg, self.cfg.supersample
        h, w = cfg.height * k, 2 * cfg.height * k
        lon = (np.arange(w) + 0.5) / w * 2 * np.pi - np.pi
        lat = np.pi / 2 - (np.arange(h) + 0.5) / h * np.pi
        lon, lat = np.meshgrid(lon, lat)
        p = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], -1)  # (h, w, 3) unit directions
        canvas = np.broadcast_to(np.array(BACKGROUNDS[cfg.background], np.float32), (h, w, 3)).copy()
        for o in objects:
            c = np.array([math.cos(o["lat"]) * math.cos(o["lon"]), math.cos(o["lat"]) * math.sin(o["lon"]), math.sin(o["lat"])])
            east = np.array([-math.sin(o["lon"]), math.cos(o["lon"]), 0.0])
            north = np.cross(c, east)
            depth = p @ c
            front = depth > 0.1
            x = np.where(front, (p @ east) / np.maximum(depth, 1e-6), 9.0) / o["radius"]  # gnomonic projection around the centre
            y = np.where(front, -(p @ north) / np.maximum(depth, 1e-6), 9.0) / o["radius"]
            canvas[_inside(OUTLINES[o["shape"]], x, y)] = COLORS[o["color"]]
        image = PILImage.fromarray(canvas.round().astype(np.uint8)).reduce(k) if k > 1 else PILImage.fromarray(canvas.astype(np.uint8))
        return PILImage.fromarray(np.roll(np.asarray(image), roll, axis=1)) if roll else image

    def tags(self, objects: list[dict[str, Any]]) -> list[str]:
        present = {t for o in objects for t in (o["color"], o["shape"], f"{o['color']} {o['shape']}")}
        return [t for t in self._tags if t in present]

    def item(self, split: str, index: int) -> dict[str, Any]:
        objects = self.scene(split, index)
        return {"image": self.image(objects, self.cfg.roll), "image_id": (SPLITS.index(split) + 1) * 100_000_000 + index, "tags": self.tags(objects)}


def _inside(outline: list[tuple[float, float]] | None, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Which (x, y) lie inside the unit outline (None: the unit circle); even-odd ray casting."""
    if outline is None:
        return x * x + y * y < 1
    inside = np.zeros(x.shape, bool)
    for (x1, y1), (x2, y2) in zip(outline, outline[1:] + outline[:1]):
        crosses = (y1 > y) != (y2 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (x < at)
    return inside


def _angle(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    cos = math.sin(lat1) * math.sin(lat2) + math.cos(lat1) * math.cos(lat2) * math.cos(lon1 - lon2)
    return math.acos(max(-1.0, min(1.0, cos)))


def build_360_dataset(cfg: Shapes360Config | None = None, splits: Sequence[str] | None = None, cache_dir: str | Path | None = None) -> DatasetDict:
    """The 360 splits as a DatasetDict, cached like the other worlds."""
    cfg = cfg or Shapes360Config()
    return build_world_splits("shapes360", cfg, list(splits or cfg.splits), Shapes360World, FEATURES, FORMAT_VERSION, cache_dir, None)
