"""ShapesWorld: every item is a pure function of (config, split, index), so any item can be made
alone, in any order, in any worker process, and comes out byte-identical."""

from __future__ import annotations

import random
from typing import Any

from PIL import Image

from vl.data.shapes.captions import write_captions
from vl.data.shapes.config import SPLITS, ShapesConfig
from vl.data.shapes.questions import QUESTION_FAMILIES, answer_type, write_questions
from vl.data.shapes.render import render
from vl.data.shapes.scene import Scene, sample_scene
from vl.data.vqa import vqa_image_name
from vl.errors import ConfigError, did_you_mean

# image_id = split number * ID_STRIDE + index: unique across splits, so exported splits can share a file.
ID_STRIDE = 100_000_000
SPLIT_NUMBERS = {split: i + 1 for i, split in enumerate(SPLITS)}


class ShapesWorld:
    """The procedural Shapes world described by a ShapesConfig."""

    def __init__(self, cfg: ShapesConfig | None = None):
        self.cfg = cfg or ShapesConfig()
        held = set(self.cfg.heldout_pairs)
        self.heldout = held
        # shapes a color may take outside test_heldout (never a held-out pair)
        self._open_shapes = {c: [s for s in self.cfg.shapes if f"{c} {s}" not in held] for c in self.cfg.colors}
        self._tags = [*self.cfg.colors, *self.cfg.shapes, *self.cfg.all_pairs()]
        self._tag_rank = {t: i for i, t in enumerate(self._tags)}

    def _rng(self, split: str, index: int, stream: str) -> random.Random:
        # String seeds go through SHA-512: stable across processes and independent of PYTHONHASHSEED.
        return random.Random(f"vl-shapes/{self.cfg.seed}/{split}/{index}/{stream}")

    def check(self, split: str, index: int) -> None:
        if split not in SPLITS:
            raise ConfigError(f"unknown split '{split}'{did_you_mean(split, SPLITS)}")
        if split == "test_heldout" and not self.heldout:
            raise ConfigError("split 'test_heldout' needs heldout_pairs in the Shapes config")
        if not 0 <= index < ID_STRIDE:
            raise ValueError(f"index must be in [0, {ID_STRIDE}), got {index}")

    def scene(self, split: str, index: int) -> Scene:
        """The scene (objects, boxes, relations) of item `index` of `split`."""
        self.check(split, index)
        return self.draw_scene(self._rng(split, index, "scene"), self.cfg.heldout_pairs if split == "test_heldout" else None)

    def draw_scene(self, rng: random.Random, with_pairs: list[str] | None = None, any_pair: bool = False) -> Scene:
        """A scene from a random stream: with_pairs given, one of those color+shape pairs for sure and
        the rest from every pair (test_heldout's scenes); else never a held-out pair, unless any_pair
        (every pair as likely as in test_heldout's other objects)."""
        cfg = self.cfg
        n = rng.randint(cfg.min_objects, cfg.max_objects)
        if with_pairs:
            color, shape = rng.choice(with_pairs).split(" ")
            colors = [color] + rng.sample([c for c in cfg.colors if c != color], n - 1)
            shapes = [shape] + [rng.choice(cfg.shapes) for _ in colors[1:]]
        else:
            colors = rng.sample(cfg.colors, n)
            shapes = [rng.choice(cfg.shapes if any_pair else self._open_shapes[c]) for c in colors]
        specs = [(c, s, rng.choice(cfg.sizes)) for c, s in zip(colors, shapes)]
        rng.shuffle(specs)
        return sample_scene(rng, cfg.image_size, specs)

    def image(self, scene: Scene) -> Image.Image:
        return render(scene, self.cfg.background, self.cfg.supersample)

    def item(self, split: str, index: int) -> dict[str, Any]:
        """One record: image (PIL), ids, scene graph, reference captions, QA pairs and tags."""
        scene = self.scene(split, index)
        image_id = SPLIT_NUMBERS[split] * ID_STRIDE + index
        avoid = set() if split == "test_heldout" else self.heldout
        return self.describe(scene, self.image(scene), split, image_id, self._rng(split, index, "captions"), self._rng(split, index, "questions"), avoid)

    def describe(
        self, scene: Scene, image: Image.Image, split: str, image_id: int, caption_rng: random.Random, question_rng: random.Random, avoid: set[str]
    ) -> dict[str, Any]:
        """A scene's record with the given image: its captions, QA pairs (none about the `avoid` pairs), tags."""
        cfg = self.cfg
        captions = write_captions(scene, caption_rng, cfg.captions_per_image, cfg.background)
        qas = write_questions(scene, question_rng, cfg.shapes, cfg.sizes, avoid)
        return {
            "image": image,
            "image_id": image_id,
            "split": split,
            "file_name": vqa_image_name(split, image_id, ".png"),  # COCO/VQA naming, PNG (lossless)
            "captions": captions,
            "questions": [
                {
                    "question_id": image_id * 1000 + k,
                    "question": q,
                    "answer": a,
                    "question_type": t,
                    "question_family": QUESTION_FAMILIES[t],
                    "answer_type": answer_type(a),
                }
                for k, (q, a, t) in enumerate(qas)
            ],
            "tags": self.tags(scene),
            "scene": scene_to_dict(scene),
        }

    def tags(self, scene: Scene) -> list[str]:
        """Multi-label tags in vocabulary order: colors, shapes and color+shape pairs present."""
        present = {t for o in scene.objects for t in (o.color, o.shape, o.pair)}
        return sorted(present, key=self._tag_rank.__getitem__)

    def tag_vocabulary(self) -> list[str]:
        """Every tag this world can produce, in a fixed order."""
        return list(self._tags)


def scene_to_dict(scene: Scene) -> dict[str, Any]:
    """The scene graph as plain data (what the dataset's `scene` column holds)."""
    return {
        "objects": [
            {
                "id": o.id,
                "shape": o.shape,
                "color": o.color,
                "size": o.size,
                "x": o.x,
                "y": o.y,
                "radius": o.radius,
                "bbox": list(o.bbox),
            }
            for o in scene.objects
        ],
        "relations": [{"subject": s, "predicate": p, "object": o} for s, p, o in scene.relations],
    }
