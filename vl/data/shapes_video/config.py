"""ShapesVideoConfig: what the procedural video world draws and how many clips each split holds."""

from __future__ import annotations

from dataclasses import dataclass, field

from vl.data.cache import check_rendering
from vl.data.shapes.catalog import BACKGROUNDS, COLORS, SHAPES
from vl.data.shapes.config import MAX_SIZE, MIN_SIZE
from vl.errors import ConfigError, did_you_mean

SPLITS = ("train", "val", "test")
# What an object can do in a clip; "still" is the label of an object that does none of these.
ACTIONS = ("move_left", "move_right", "move_up", "move_down", "grow", "shrink", "change_color", "appear", "disappear")
STILL = "still"


@dataclass
class ShapesVideoConfig:
    """The Shapes video world. Every clip is a pure function of (this config, split, index).

    A clip has `frames` frames; 1..`max_events` of its objects act, each over a segment of frames, at
    different times and sometimes at once. One event, the clip's action, lasts longer than every other
    (by at least 2 frames): that is the clip's label for action recognition."""

    seed: int = 0
    image_size: int = 64  # frame side in pixels
    frames: int = 8
    fps: float = 4.0  # of the exported videos; segments in seconds are frame / fps
    min_objects: int = 1
    max_objects: int = 3
    max_events: int = 2
    shapes: list[str] = field(default_factory=lambda: ["circle", "square", "triangle", "diamond", "star", "cross"])
    colors: list[str] = field(default_factory=lambda: ["red", "orange", "yellow", "green", "cyan", "blue", "purple"])
    actions: list[str] = field(default_factory=lambda: list(ACTIONS))
    background: str = "gray"
    captions_per_clip: int = 5
    supersample: int = 4
    splits: dict[str, int] = field(default_factory=lambda: {"train": 5000, "val": 500, "test": 500})

    def __post_init__(self) -> None:
        if not MIN_SIZE <= self.image_size <= MAX_SIZE:
            raise ConfigError(f"image_size is {self.image_size}; it must be between {MIN_SIZE} and {MAX_SIZE} pixels")
        if not 4 <= self.frames <= 64:
            raise ConfigError(f"frames is {self.frames}; a clip needs 4 to 64 frames (an event lasts at least 2)")
        if self.fps <= 0:
            raise ConfigError(f"fps is {self.fps}; it must be positive")
        for key, names, known in (("shapes", self.shapes, SHAPES.keys()), ("colors", self.colors, COLORS), ("actions", self.actions, ACTIONS)):
            for name in names:
                if name not in known:
                    raise ConfigError(f"unknown {key.rstrip('s')} '{name}' in {key}{did_you_mean(name, known)}")
            if len(set(names)) != len(names) or not names:
                raise ConfigError(f"{key} must list distinct names, at least one: {names}")
        if self.background not in BACKGROUNDS:
            raise ConfigError(f"unknown background '{self.background}'{did_you_mean(self.background, BACKGROUNDS)}")
        if not 1 <= self.min_objects <= self.max_objects <= 4:
            raise ConfigError(f"need 1 <= min_objects <= max_objects <= 4 (room to move), got {self.min_objects} and {self.max_objects}")
        if not 1 <= self.max_events <= self.max_objects:
            raise ConfigError(f"max_events is {self.max_events}; one event per object, so 1..max_objects ({self.max_objects})")
        # colors are unique within a clip, and a color change needs a color no other object wears
        if len(self.colors) < self.max_objects + ("change_color" in self.actions) * self.max_events:
            raise ConfigError(f"{len(self.colors)} colors are too few for {self.max_objects} objects and their color changes; add colors")
        check_rendering(self.splits, SPLITS, self.captions_per_clip, self.supersample)
