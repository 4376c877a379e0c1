"""ShapesVideoWorld: every clip is a pure function of (config, split, index), like the image world."""

from __future__ import annotations

import random
from typing import Any

from PIL import Image

from vl.data.shapes.render import draw_shapes
from vl.data.shapes_video.captions import write_clip_captions
from vl.data.shapes_video.clip import Clip, sample_clip
from vl.data.shapes_video.config import SPLITS, STILL, ShapesVideoConfig
from vl.errors import ConfigError, did_you_mean

ID_STRIDE = 100_000_000  # clip_id = split number * ID_STRIDE + index, unique across splits
SPLIT_NUMBERS = {split: i + 1 for i, split in enumerate(SPLITS)}


class ShapesVideoWorld:
    """The procedural Shapes video world described by a ShapesVideoConfig."""

    def __init__(self, cfg: ShapesVideoConfig | None = None):
        self.cfg = cfg or ShapesVideoConfig()

    def _rng(self, split: str, index: int, stream: str) -> random.Random:
        return random.Random(f"vl-shapes-video/{self.cfg.seed}/{split}/{index}/{stream}")

    def check(self, split: str, index: int) -> None:
        if split not in SPLITS:
            raise ConfigError(f"unknown video split '{split}'{did_you_mean(split, SPLITS)}")
        if not 0 <= index < ID_STRIDE:
            raise ValueError(f"index must be in [0, {ID_STRIDE}), got {index}")

    def clip(self, split: str, index: int) -> Clip:
        self.check(split, index)
        return sample_clip(self._rng(split, index, "clip"), self.cfg)

    def frames(self, clip: Clip) -> list[Image.Image]:
        return [draw_shapes(clip.size, clip.drawn(t, self.cfg.background), self.cfg.background, self.cfg.supersample) for t in range(clip.frames)]

    def item(self, split: str, index: int) -> dict[str, Any]:
        """One record: frames (PIL), ids, captions, the clip's action, each object and its action, the events."""
        clip = self.clip(split, index)
        clip_id = SPLIT_NUMBERS[split] * ID_STRIDE + index
        return {
            "frames": self.frames(clip),
            "clip_id": clip_id,
            "video_id": video_name(clip_id),
            "split": split,
            "captions": write_clip_captions(clip, self._rng(split, index, "captions"), self.cfg.captions_per_clip),
            "action": clip.action,
            "objects": [{f: getattr(o, f) for f in ("id", "shape", "color", "size", "x", "y", "action", "new_color", "shift")} for o in clip.objects],
            "events": [{"action": e.action, "object": e.object, "start": e.start, "end": e.end} for e in clip.events],
            "frame_actions": clip.frame_actions(),
        }

    def action_vocabulary(self) -> list[str]:
        """Every clip label, in a fixed order."""
        return list(self.cfg.actions)

    def object_action_vocabulary(self) -> list[str]:
        """Every per-object label: the actions and STILL."""
        return [*self.cfg.actions, STILL]


def video_name(clip_id: int) -> str:
    """The video's id and file stem, MSR-VTT style: video<clip_id>."""
    return f"video{clip_id}"
