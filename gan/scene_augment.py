"""Compositional augmentation: Shapes scenes that hold color+shape pairs the training split never shows
(by default the world's held-out pairs: a red circle, a blue square, ...), drawn by the scene-graph
generator at their true layout, added to the training rows with the captions, questions and tags the
world writes for their graphs. The generator learned every color and every shape, never these pairs
together: whether its drawings teach the models the pairs is the experiment
(configs/gan/exp_compositional.yaml).

With `source: real`, the same scenes rendered by the world itself: the ceiling the drawings approximate.
With `filter_with` (a model trained on real scenes), only drawings it reads right are kept: a drawing whose
star it calls a triangle would teach the tags and captions of its graph on a picture that shows another
shape. Scene j is a pure function of (the world, the augmentation's seed, j); the rows are the first
`ratio` x train scenes drawn (or, filtered, kept).
"""

from __future__ import annotations

import random
from functools import lru_cache
from pathlib import Path

import torch
from datasets import Dataset
from torch.utils.data import default_collate
from tqdm.auto import tqdm

from gan.data import to_image, to_stored
from gan.graphs import GraphVocab, encode_scene
from gan.sample import load_generator
from vl.config import load_config, to_yaml
from vl.data.shapes.config import ShapesConfig
from vl.data.shapes.dataset import SHAPES_FEATURES
from vl.data.shapes.scene import Scene
from vl.data.shapes.world import ID_STRIDE, ShapesWorld
from vl.errors import ConfigError
from vl.experiment import ExperimentConfig
from vl.metrics.vqa import normalize_answer
from vl.modeling import VLModel
from vl.processing import VLProcessor
from vl.tasks import task_kind

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

    def scenes(first: int, count: int) -> list[tuple[int, Scene]]:
        """Scenes first .. first + count - 1, each with its index j (a scene is a pure function of the world, seed and j)."""
        streams = (random.Random(f"vl-gan-scenes/{augment.seed}/{j}/scene") for j in range(first, first + count))
        return [(j, world.draw_scene(rng, None if natural else pairs, any_pair=natural)) for j, rng in enumerate(streams, start=first)]

    if augment.filter_with:
        picked, images = _drawn_and_read_right(augment, shapes, scenes, n)
    else:
        picked = scenes(0, n)
        plain = [scene for _, scene in picked]
        images = [world.image(s) for s in plain] if augment.source == "real" else _draw(augment.generator, shapes, plain)
    rows = []
    for k, ((j, scene), image) in enumerate(zip(picked, images)):
        rng = lambda stream: random.Random(f"vl-gan-scenes/{augment.seed}/{j}/{stream}")  # noqa: E731
        rows.append(world.describe(scene, image, SPLIT_NAME, SPLIT_NUMBER * ID_STRIDE + k, rng("captions"), rng("questions"), avoid=set()))
    return Dataset.from_list(rows, features=SHAPES_FEATURES)


def _drawn_and_read_right(augment, shapes: ShapesConfig, scenes, n: int, most: int = 10) -> tuple[list, list]:
    """The first n scenes whose drawings the filter_with model reads right, as ([(scene index, scene)], images);
    drawn in rounds, giving up (a clear error) after `most` x n scenes."""
    picked, images, first, right = [], [], 0, 0
    bar = tqdm(total=n, desc="drawn scenes read right", unit="scene", leave=False)
    while len(picked) < n:
        if first >= most * n:
            raise ConfigError(
                f"data.gan_augment.filter_with: {augment.filter_with} read only {right} of {first} drawn scenes right; "
                "train the generator longer, or give a reader trained on real scenes of this world"
            )
        batch = scenes(first, max(64, round(1.2 * (n - len(picked)))))
        plain = [scene for _, scene in batch]
        drawn = _draw(augment.generator, shapes, plain)
        for item, image, ok in zip(batch, drawn, read_right(augment.filter_with, plain, drawn)):
            right += ok
            if ok and len(picked) < n:
                picked.append(item)
                images.append(image)
                bar.update()
        first += len(batch)
    bar.close()
    print(f"data.gan_augment.filter_with: {augment.filter_with} read {right} of {first} drawn scenes right ({right / first:.0%}); kept the first {n}")
    return picked, images


@torch.no_grad()
def read_right(reader: str, scenes: list, images: list) -> list[bool]:
    """Whether a model with a VQA head (a tasks.train model trained on real Shapes scenes) names the shape of
    every object of each image: "what shape is the <color> object?" (colors are unique in a scene)."""
    model, processor = _reader(reader)
    head = next((name for name, h in model.heads.items() if h.registry_name == "vqa"), None)
    if head is None:
        raise ConfigError(f"data.gan_augment.filter_with: the model in {reader} has heads {list(model.heads)}; it needs a vqa head")
    saved = Path(reader) / "train_config.yaml"
    kind = task_kind(model, head)(head, load_config(ExperimentConfig, saved if saved.is_file() else None))
    kind.bind(processor, model)
    stored = [to_stored(image) for image in images]
    rows = [
        {"image": stored[i], "question": f"what shape is the {o.color} object?", "image_id": i, "shape": o.shape}
        for i, scene in enumerate(scenes)
        for o in scene.objects
    ]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        answers = kind.infer(model, rows)
    right = [True] * len(scenes)
    for r, row in enumerate(rows):
        right[row["image_id"]] &= normalize_answer(answers[r]) == row["shape"]
    return right


@lru_cache(maxsize=1)
def _reader(folder: str):
    if not (Path(folder) / "config.json").is_file():
        raise ConfigError(f"data.gan_augment.filter_with: {folder} is not a saved model (no config.json); give the model/ folder of a tasks.train run")
    return VLModel.from_pretrained(folder).eval(), VLProcessor.from_pretrained(folder)


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
