"""FacesWorld: procedural faces with an identity, a pose (yaw) and an expression, each item a pure
function of (config, split, index), with captions and labels."""

from __future__ import annotations

import itertools
import random
from typing import Any

from PIL import Image

from vl.data.faces.catalog import EXPRESSION_WORDS, EYE_COLORS, FACE_WIDTHS, HAIR_COLORS, HAIR_STYLES, SKIN_TONES
from vl.data.faces.config import FACE_SPLITS, FacesConfig
from vl.data.faces.render import Identity, render_face
from vl.errors import ConfigError, did_you_mean

ID_STRIDE = 100_000_000  # image_id = split number * ID_STRIDE + index
SPLIT_NUMBERS = {split: i + 1 for i, split in enumerate(FACE_SPLITS)}


class FacesWorld:
    """The procedural Faces world described by a FacesConfig."""

    def __init__(self, cfg: FacesConfig | None = None):
        self.cfg = cfg or FacesConfig()
        self.identities = make_identities(self.cfg.seed, self.cfg.identities, self.cfg.first_identity)

    def _rng(self, split: str, index: int, stream: str) -> random.Random:
        return random.Random(f"vl-faces/{self.cfg.seed}/{split}/{index}/{stream}")

    def check(self, split: str, index: int) -> None:
        if split not in FACE_SPLITS:
            raise ConfigError(f"unknown split '{split}'{did_you_mean(split, FACE_SPLITS)}")
        if not 0 <= index < ID_STRIDE:
            raise ValueError(f"index must be in [0, {ID_STRIDE}), got {index}")

    def labels(self, split: str, index: int) -> tuple[int, int, str]:
        """(identity, yaw, expression) of item `index` of `split`."""
        self.check(split, index)
        rng = self._rng(split, index, "labels")
        return rng.randrange(len(self.identities)), rng.choice(self.cfg.poses_of(split)), rng.choice(self.cfg.expressions)

    def image(self, identity: int, yaw: int, expression: str) -> Image.Image:
        """Any identity at any yaw with any expression (what a pose/expression GAN should learn to draw)."""
        return render_face(self.identities[identity], yaw, expression, self.cfg.image_size, self.cfg.supersample)

    def item(self, split: str, index: int) -> dict[str, Any]:
        """One record: image (PIL), ids, identity / yaw / expression labels, attributes and captions."""
        identity, yaw, expression = self.labels(split, index)
        person = self.identities[identity]
        image_id = SPLIT_NUMBERS[split] * ID_STRIDE + index
        return {
            "image": self.image(identity, yaw, expression),
            "image_id": image_id,
            "split": split,
            "file_name": f"faces_{split}_{image_id:012d}.png",
            "identity": identity,
            "yaw": yaw,
            "pose": self.cfg.poses.index(yaw),
            "expression": expression,
            "attributes": {k: getattr(person, k) for k in ("face_width", "skin", "hair_color", "hair_style", "eye_color")},
            "captions": write_face_captions(person, yaw, expression, self._rng(split, index, "captions"), self.cfg.captions_per_image),
        }


def make_identities(seed: int, n: int, first: int = 0) -> list[Identity]:
    """People first .. first + n - 1 of the world's list: distinct (face width, skin, hair color, hair
    style), plus eye color, nose and brows (drawn in list order, so a person is the same whatever n)."""
    rng = random.Random(f"vl-faces/{seed}/identities")
    looks = list(itertools.product(FACE_WIDTHS, SKIN_TONES, HAIR_COLORS, HAIR_STYLES))
    rng.shuffle(looks)
    eyes = list(EYE_COLORS)
    people = [
        Identity(*look, eye_color=rng.choice(eyes), nose=round(rng.uniform(0.8, 1.2), 2), brow=round(rng.uniform(0.8, 1.3), 2)) for look in looks[: first + n]
    ]
    return people[first:]


def pose_phrase(yaw: int) -> str:
    """Where the face looks, from the viewer's side: 'facing the camera', 'turned slightly to the left'..."""
    if abs(yaw) <= 15:
        return "facing the camera"
    side = "right" if yaw > 0 else "left"
    return f"turned slightly to the {side}" if abs(yaw) <= 45 else f"turned to the {side}"


def write_face_captions(person: Identity, yaw: int, expression: str, rng: random.Random, n: int) -> list[str]:
    """n different captions naming the expression, the pose and some of the person's looks."""
    word = lambda: rng.choice(EXPRESSION_WORDS[expression])  # noqa: E731
    hair = f"{person.hair_color} hair"
    style = {"bun": "in a bun", "long": "that is long", "curly": "that is curly", "bangs": "with bangs", "short": "that is short"}[person.hair_style]
    templates = [
        lambda: f"a {word()} face {pose_phrase(yaw)}",
        lambda: f"a {word()} person with {hair} {style}, {pose_phrase(yaw)}",
        lambda: f"a {person.face_width} {word()} face with {person.skin} skin, {pose_phrase(yaw)}",
        lambda: f"someone {pose_phrase(yaw)} looking {word()}",
        lambda: f"a person with {hair}, {pose_phrase(yaw)}, looks {word()}",
    ]
    order = [0] + rng.sample(range(1, len(templates)), len(templates) - 1)
    return [_article(templates[order[i % len(templates)]]()) for i in range(n)]


def _article(text: str) -> str:
    words = text.split(" ")
    for i, w in enumerate(words[:-1]):
        if w == "a" and words[i + 1][0] in "aeiou":
            words[i] = "an"
    return " ".join(words)
