"""FacesConfig: which faces the procedural Faces world draws and how many items each split holds."""

from __future__ import annotations

from dataclasses import dataclass, field

from vl.data.cache import check_rendering
from vl.data.faces.catalog import EXPRESSIONS, FACE_WIDTHS, HAIR_COLORS, HAIR_STYLES, SKIN_TONES
from vl.errors import ConfigError, did_you_mean

FACE_SPLITS = ("train", "val", "test")
MIN_SIZE, MAX_SIZE = 32, 256
MAX_YAW = 75


@dataclass
class FacesConfig:
    """The Faces world. Every item is a pure function of (this config, split, index)."""

    seed: int = 0
    image_size: int = 64  # canvas side in pixels
    identities: int = 240  # distinct people, each a unique (face width, skin, hair color, hair style)
    # The world's people are one fixed list; this config uses people first_identity .. first_identity +
    # identities - 1 of it. Disjoint ranges keep two experiments' people apart (the GAN vs the recognizer).
    first_identity: int = 0
    poses: list[int] = field(default_factory=lambda: [-60, -30, 0, 30, 60])  # yaw in degrees, + = turned to the viewer's right
    expressions: list[str] = field(default_factory=lambda: list(EXPRESSIONS))
    # Poses drawn in train and val; None = every pose. test always draws every pose (the held-out-pose setting).
    train_poses: list[int] | None = None
    captions_per_image: int = 3
    supersample: int = 4  # anti-aliasing: draw this many times larger, then box-filter down
    splits: dict[str, int] = field(default_factory=lambda: {"train": 6000, "val": 600, "test": 1200})

    def __post_init__(self) -> None:
        if not MIN_SIZE <= self.image_size <= MAX_SIZE:
            raise ConfigError(f"image_size is {self.image_size}; it must be between {MIN_SIZE} and {MAX_SIZE} pixels")
        most = len(FACE_WIDTHS) * len(SKIN_TONES) * len(HAIR_COLORS) * len(HAIR_STYLES)
        if not 1 <= self.identities <= most:
            raise ConfigError(f"identities is {self.identities}; the Faces world draws 1 to {most} distinct people")
        if not 0 <= self.first_identity <= most - self.identities:
            raise ConfigError(f"first_identity {self.first_identity} + identities {self.identities} exceeds the world's {most} people; lower one of them")
        if not self.poses or any(abs(p) > MAX_YAW for p in self.poses) or len(set(self.poses)) != len(self.poses):
            raise ConfigError(f"poses {self.poses}: give distinct yaw angles in degrees between -{MAX_YAW} and {MAX_YAW}")
        for e in self.expressions:
            if e not in EXPRESSIONS:
                raise ConfigError(f"unknown expression '{e}' in expressions{did_you_mean(e, EXPRESSIONS)}")
        if not self.expressions or len(set(self.expressions)) != len(self.expressions):
            raise ConfigError("expressions must list at least one expression, each once")
        if self.train_poses is not None:
            extra = [p for p in self.train_poses if p not in self.poses]
            if extra or not self.train_poses:
                raise ConfigError(f"train_poses {self.train_poses} must be a non-empty subset of poses {self.poses}")
        check_rendering(self.splits, FACE_SPLITS, self.captions_per_image, self.supersample)

    def poses_of(self, split: str) -> list[int]:
        """The yaw angles drawn in `split`."""
        return self.poses if split == "test" or self.train_poses is None else self.train_poses
