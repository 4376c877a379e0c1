"""GAN views as training data: a dataset wrapper that adds synthetic faces to a Faces training set.
Each synthetic item is a real training face redrawn by a trained pose/expression generator at another
yaw and expression (or its own expression, with keep_expression); its labels (yaw, pose, expression, `label`) and captions follow the new view.
Synthetic item j is a pure function of (seed, j), so resumed runs see the same data.

With `source: real` the added faces are instead real renders of the GAN's own training people at the
target yaw and expression: the ceiling that GAN views approximate, for experiments (identity labels
then number those people after the training set's own: len(people) + k)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch

from gan.config import GANExperimentConfig
from gan.data import to_image, to_pixels, to_stored
from gan.sample import CONFIG, load_generator, redraw
from vl.config import load_config
from vl.data.faces import FacesConfig, FacesWorld
from vl.data.faces.world import write_face_captions
from vl.data.images import read_image
from vl.errors import ConfigError

FACE_COLUMNS = ("identity", "yaw", "expression")


class GANAugmented(torch.utils.data.Dataset):
    """items[0..n-1] (real rows), then round(ratio * n) synthetic rows."""

    def __init__(self, items: torch.utils.data.Dataset, augment: Any, faces: FacesConfig, label_field: str | None = None):
        self.items, self.augment, self.label_field = items, augment, label_field
        if augment.source == "real":
            self.generator, drawn = None, _gan_faces(augment.generator)
            self.gan_world = FacesWorld(drawn)
        else:
            self.generator, gan_cfg = load_generator(augment.generator, kind="faces")
            drawn = gan_cfg.data.faces
        if (drawn.poses, drawn.expressions, drawn.image_size) != (faces.poses, faces.expressions, faces.image_size):
            raise ConfigError(
                f"the generator in {augment.generator} draws poses {drawn.poses}, expressions {drawn.expressions} at "
                f"{drawn.image_size} px; data.faces has {faces.poses}, {faces.expressions}, {faces.image_size} px: train it on the same Faces world"
            )
        self.faces, self.people = faces, FacesWorld(faces).identities
        self.poses = augment.poses or faces.poses
        self.expressions = augment.expressions or faces.expressions
        for yaw in self.poses:
            if yaw not in faces.poses:
                raise ConfigError(f"data.gan_augment.poses has {yaw}; the generator draws {faces.poses}")
        for e in self.expressions:
            if e not in faces.expressions:
                raise ConfigError(f"data.gan_augment.expressions has '{e}'; the generator draws {faces.expressions}")
        self.n_real = len(items)
        self.n_fake = round(augment.ratio * self.n_real)

    def __len__(self) -> int:
        return self.n_real + self.n_fake

    def _draw(self, j: int) -> tuple[random.Random, int]:
        """Synthetic item j's random stream, and the real row it redraws (the stream's first draw)."""
        rng = random.Random(f"vl-gan-augment/{self.augment.seed}/{j}")
        return rng, rng.randrange(self.n_real)

    def caption_counts(self, real: list[int]) -> list[int]:
        """Captions per item, given those of the real rows: a synthetic row has as many as its source."""
        return real + [real[self._draw(j)[1]] for j in range(self.n_fake)]

    def __getitem__(self, k: int) -> dict[str, Any]:
        if k < self.n_real:
            return self.items[k]
        j = k - self.n_real
        rng, i = self._draw(j)
        source = self.items[i]
        missing = [c for c in FACE_COLUMNS if c not in source]
        if missing:
            raise ConfigError(f"data.gan_augment redraws Faces rows; this training data has no {', '.join(missing)} (use a faces:<split> data spec)")
        yaw, expression = rng.choice(self.poses), rng.choice(self.expressions)
        if self.augment.keep_expression:  # (drawn all the same, so the other items' draws do not move)
            expression = source["expression"]
        person = self.people[source["identity"]]
        if self.generator is None:  # source: real, one of the GAN's people
            k = rng.randrange(len(self.gan_world.identities))
            person, image = self.gan_world.identities[k], to_stored(self.gan_world.image(k, yaw, expression))
            source = {**source, "identity": len(self.people) + k}
        else:
            image = _redraw(self.generator, source["image"], self.faces.poses.index(yaw), self.faces.expressions.index(expression))
        row = {**source, "image": image, "image_id": -(j + 1), "yaw": yaw, "pose": self.faces.poses.index(yaw), "expression": expression}
        if self.label_field:
            row["label"] = str(row[self.label_field])
        if "captions" in source:
            row["captions"] = write_face_captions(person, yaw, expression, rng, len(source["captions"]))
        return row


@torch.no_grad()
def _redraw(generator, value: dict[str, Any], pose: int, expression: int) -> dict[str, Any]:
    """An undecoded datasets.Image value ({"bytes", "path"}) redrawn; returned in the same form (PNG)."""
    out = redraw(generator, to_pixels(read_image(value))[None], torch.tensor([pose]), torch.tensor([expression]))[0]
    return to_stored(to_image(out))


def _gan_faces(path: str) -> FacesConfig:
    """The Faces world a GAN learned from: its generator/ folder's config, or a tasks.train_gan YAML."""
    folder = Path(path)
    return load_config(GANExperimentConfig, folder / CONFIG if folder.is_dir() else folder).data.faces
