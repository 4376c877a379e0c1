"""Compositional augmentation: Shapes scenes that hold color+shape pairs the training split never shows
(by default the world's held-out pairs: a red circle, a blue square, ...), drawn by the scene-graph
generator at their true layout, added to the training rows with the captions, questions and tags the
world writes for their graphs. The generator learned every color and every shape, never these pairs
together: whether its drawings teach the models the pairs is the experiment
(configs/gan/exp_compositional.yaml).

With `source: real`, the same scenes rendered by the world itself: the ceiling the drawings approximate.
Scene j is a pure function of (the world, the augmentation's seed, j).
"""

from __future__ import annotations

import random
from functools import lru_cache
from pathlib import Path

import torch
from datasets import Dataset
from torch.utils.data import default_collate
from tqdm.auto import tqdm

from gan.data import to_image
from gan.graphs import GraphVocab, encode_scene
from gan.sample import load_generator
from vl.config import to_yaml
from vl.data.shapes.config import ShapesConfig
from vl.data.shapes.dataset import SHAPES_FEATURES
from vl.data.shapes.world import ID_STRIDE, ShapesWorld
from vl.errors import ConfigError

SPLIT_NAME = "gan"  # the rows' split; their image ids follow the world's splits' (split number 9)
SPLIT_NUMBER = 9


def synthetic_scenes(shapes: ShapesConfig, augment) -> Dataset:
    """round(augment.ratio * the train split's size) scenes, each with one of augment.pairs (default: the
    held-out pairs) or, with frequency natural, from every pair of the world; as Shapes rows (the world's
    features), drawn by the generator (or the world, source: real)."""
    return _synthetic(to_yaml(shapes), to_yaml(augment), _stamp(augment.generator))


@lru_cache(maxsize=4)
def _synthetic(shapes_yaml: str, augment_yaml: str, stamp: float) -> Dataset:
    """Made once per process for each (world, augmentation, generator file time): the caption, VQA and
    tag tasks of one run all open them."""
    import yaml

    from vl.config import from_dict
    from vl.experiment import GANAugmentConfig

    shapes = from_dict(ShapesConfig, yaml.safe_load(shapes_yaml))
    augment = from_dict(GANAugmentConfig, yaml.safe_load(augment_yaml))
    world = ShapesWorld(shapes)
    pairs = augment.pairs or shapes.heldout_pairs
    for pair in pairs:
        if pair not in shapes.all_pairs():
            raise ConfigError(f"data.gan_augment.pairs has '{pair}'; a pair is '<color> <shape>' of this world")
    n = round(augment.ratio * shapes.splits["train"])
    natural = augment.frequency == "natural"
    scenes = [world.draw_scene(random.Random(f"vl-gan-scenes/{augment.seed}/{j}/scene"), None if natural else pairs, any_pair=natural) for j in range(n)]
    if augment.source == "real":
        images = [world.image(s) for s in scenes]
    else:
        images = _draw(augment.generator, shapes, scenes)
    rows = []
    for j, (scene, image) in enumerate(zip(scenes, images)):
        rng = lambda stream: random.Random(f"vl-gan-scenes/{augment.seed}/{j}/{stream}")  # noqa: E731
        rows.append(world.describe(scene, image, SPLIT_NAME, SPLIT_NUMBER * ID_STRIDE + j, rng("captions"), rng("questions"), avoid=set()))
    return Dataset.from_list(rows, features=SHAPES_FEATURES)


@torch.no_grad()
def _draw(folder: str, shapes: ShapesConfig, scenes: list, batch_size: int = 64) -> list:
    """Each scene drawn by the scene-graph generator from its graph at its true boxes and masks."""
    generator, cfg = load_generator(folder, kind="scene_graph")
    drawn = cfg.data.shapes
    keys = ("image_size", "max_objects", "shapes", "colors", "sizes")
    if any(getattr(drawn, k) != getattr(shapes, k) for k in keys):
        theirs, ours = ({k: getattr(c, k) for k in keys} for c in (drawn, shapes))
        raise ConfigError(f"the generator in {folder} draws Shapes scenes of {theirs}; data.shapes has {ours}: train it on the same Shapes world")
    vocab = GraphVocab.of(drawn)
    images = []
    for start in tqdm(range(0, len(scenes), batch_size), desc="drawing scenes with the GAN", unit="batch", leave=False):
        items = [encode_scene(s, vocab, generator.cfg.max_objects, generator.cfg.mask_size) for s in scenes[start : start + batch_size]]
        batch = default_collate(items)
        out = generator(batch, boxes=batch["boxes"], masks=batch["masks"])["image"]
        images += [to_image(x) for x in out]
    return images


def _stamp(folder: str) -> float:
    """The generator's weights file time: a retrained generator is not served from the cache."""
    path = Path(folder) / "model.safetensors"
    return path.stat().st_mtime if path.is_file() else 0.0
