"""ShapesConfig: what the procedural world draws and how many items each split holds."""

from __future__ import annotations

from dataclasses import dataclass, field

from vl.data.cache import check_rendering
from vl.data.shapes.catalog import BACKGROUNDS, COLORS, SHAPES, SIZES
from vl.errors import ConfigError, did_you_mean

SPLITS = ("train", "val", "test", "test_heldout")
MIN_SIZE, MAX_SIZE = 16, 256


@dataclass
class ShapesConfig:
    """The Shapes world. Every item is a pure function of (this config, split, index)."""

    seed: int = 0
    image_size: int = 64  # canvas side in pixels, 16..256
    min_objects: int = 1
    max_objects: int = 6
    shapes: list[str] = field(default_factory=lambda: ["circle", "square", "triangle", "diamond", "star", "cross"])
    colors: list[str] = field(default_factory=lambda: ["red", "orange", "yellow", "green", "cyan", "blue", "purple"])
    sizes: list[str] = field(default_factory=lambda: ["small", "large"])
    background: str = "gray"
    # color+shape pairs never drawn in train/val/test; every test_heldout scene has at least one.
    heldout_pairs: list[str] = field(default_factory=lambda: ["red circle", "blue square", "green triangle", "yellow star"])
    captions_per_image: int = 5
    supersample: int = 4  # anti-aliasing: draw this many times larger, then box-filter down
    splits: dict[str, int] = field(default_factory=lambda: {"train": 10000, "val": 1000, "test": 1000, "test_heldout": 1000})

    def __post_init__(self) -> None:
        if not MIN_SIZE <= self.image_size <= MAX_SIZE:
            raise ConfigError(f"image_size is {self.image_size}; it must be between {MIN_SIZE} and {MAX_SIZE} pixels")
        _check_names("shapes", self.shapes, SHAPES.keys())
        _check_names("colors", self.colors, COLORS)
        _check_names("sizes", self.sizes, SIZES)
        _check_names("background", [self.background], BACKGROUNDS)
        if len(self.shapes) < 2 or len(self.colors) < 2:
            raise ConfigError("shapes and colors need at least 2 entries each")
        if not 1 <= self.min_objects <= self.max_objects:
            raise ConfigError(f"need 1 <= min_objects <= max_objects, got {self.min_objects} and {self.max_objects}")
        if self.max_objects > min(len(self.colors), 9):
            raise ConfigError(
                f"max_objects is {self.max_objects}; colors are unique within a scene, so it can be at most "
                f"{min(len(self.colors), 9)} with {len(self.colors)} colors"
            )
        for pair in self.heldout_pairs:
            color, _, shape = pair.partition(" ")
            if color not in self.colors or shape not in self.shapes:
                raise ConfigError(
                    f"heldout_pairs entry '{pair}' must be '<color> <shape>' with a color from colors and a "
                    f"shape from shapes{did_you_mean(pair, self.all_pairs())}"
                )
        for color in self.colors:
            if all(f"{color} {s}" in self.heldout_pairs for s in self.shapes):
                raise ConfigError(f"heldout_pairs hold out every shape of '{color}'; keep at least one for training")
        check_rendering(self.splits, SPLITS, self.captions_per_image, self.supersample)

    def all_pairs(self) -> list[str]:
        """Every '<color> <shape>' this world can draw."""
        return [f"{c} {s}" for c in self.colors for s in self.shapes]


def _check_names(key: str, names: list[str], known) -> None:
    for name in names:
        if name not in known:
            raise ConfigError(f"unknown {key.rstrip('s')} '{name}' in {key}{did_you_mean(name, known)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"{key} lists a name twice: {names}")
