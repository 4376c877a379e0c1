"""Scene graphs as tensors: what the scene-graph GAN reads (objects, triples) and learns to draw (object
boxes, masks, the image), made exactly from the Shapes world, or from a graph a user writes as JSON.

A graph in JSON (sg2im's format, with our attributes):

    {"objects": ["small red circle", {"shape": "square", "color": "blue", "size": "large"}],
     "relationships": [[0, "left_of", 1], [1, "above", 0]]}

Objects are "<size> <color> <shape>" strings (size optional: large) or dicts; relationships are
[subject index, predicate, object index] with a predicate of vl.data.shapes.scene.PREDICATES
("left of" and "left_of" are the same). Positions are not given: the generator places the objects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from gan.data import to_pixels
from vl.data.shapes.catalog import OUTLINES, half_extent
from vl.data.shapes.config import ShapesConfig
from vl.data.shapes.scene import PREDICATES, Scene
from vl.data.shapes.world import ShapesWorld
from vl.errors import ConfigError, did_you_mean


@dataclass(frozen=True)
class GraphVocab:
    """The names a graph may use, in the order of the embedding tables (index 0 of each is real)."""

    shapes: tuple[str, ...]
    colors: tuple[str, ...]
    sizes: tuple[str, ...]
    predicates: tuple[str, ...] = PREDICATES

    @classmethod
    def of(cls, world: ShapesConfig) -> GraphVocab:
        return cls(tuple(world.shapes), tuple(world.colors), tuple(world.sizes))

    def max_triples(self, max_objects: int) -> int:
        """A complete Shapes graph: left/right and above/below for each ordered pair, closest and farthest per object."""
        return 2 * max_objects * (max_objects - 1) + 2 * max_objects


def object_mask(shape: str, side: int, supersample: int = 4) -> np.ndarray:
    """(side, side) float in [0, 1]: the shape's outline filling its bounding box, anti-aliased."""
    k = side * supersample
    image = Image.new("L", (k, k), 0)
    draw = ImageDraw.Draw(image)
    outline = OUTLINES[shape]
    if outline is None:
        draw.ellipse((0, 0, k - 1, k - 1), fill=255)
    else:
        hx, hy = half_extent(shape)
        draw.polygon([((x / hx + 1) / 2 * k, (y / hy + 1) / 2 * k) for x, y in outline], fill=255)
    return np.asarray(image.reduce(supersample), dtype=np.float32) / 255


def encode_graph(vocab: GraphVocab, objects: list[tuple[str, str, str]], triples: list[tuple[int, str, int]], max_objects: int) -> dict[str, torch.Tensor]:
    """Objects as (shape, color, size) names and (subject, predicate, object) triples -> padded index
    tensors: "shape", "color", "size" (O,), "objects" (O,) bool, "triples" (T, 3), "triple_mask" (T,)."""
    if not 1 <= len(objects) <= max_objects:
        raise ConfigError(f"a scene graph needs 1 to {max_objects} objects (what the generator was trained on), got {len(objects)}")
    n_triples = vocab.max_triples(max_objects)
    if len(triples) > n_triples:
        raise ConfigError(f"a scene graph of up to {max_objects} objects holds at most {n_triples} relationships, got {len(triples)}")
    out = {k: torch.zeros(max_objects, dtype=torch.long) for k in ("shape", "color", "size")}
    out["objects"] = torch.zeros(max_objects, dtype=torch.bool)
    for i, (shape, color, size) in enumerate(objects):
        for key, name, names in (("shape", shape, vocab.shapes), ("color", color, vocab.colors), ("size", size, vocab.sizes)):
            if name not in names:
                raise ConfigError(f"object {i}: unknown {key} '{name}'{did_you_mean(name, names)}; this generator knows {', '.join(names)}")
            out[key][i] = names.index(name)
        out["objects"][i] = True
    out["triples"] = torch.zeros(n_triples, 3, dtype=torch.long)
    out["triple_mask"] = torch.zeros(n_triples, dtype=torch.bool)
    for t, (s, p, o) in enumerate(triples):
        p = p.replace(" ", "_")
        if p not in vocab.predicates:
            raise ConfigError(f"relationship {t}: unknown predicate '{p}'{did_you_mean(p, vocab.predicates)}; use one of {', '.join(vocab.predicates)}")
        if not (0 <= s < len(objects) and 0 <= o < len(objects)) or s == o:
            raise ConfigError(f"relationship {t}: [{s}, {p}, {o}] must name two different objects among 0..{len(objects) - 1}")
        out["triples"][t] = torch.tensor([s, vocab.predicates.index(p), o])
        out["triple_mask"][t] = True
    return out


def graph_from_json(data: str | Path | dict[str, Any], vocab: GraphVocab, max_objects: int) -> dict[str, torch.Tensor]:
    """A graph written as JSON (a dict, a JSON string or a .json file; format in the module docstring)
    -> encode_graph's tensors."""
    if isinstance(data, Path) or (isinstance(data, str) and not data.lstrip().startswith("{")):
        path = Path(data)
        if not path.is_file():
            raise ConfigError(f"scene graph file not found: {path}")
        data = path.read_text()
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as err:
            raise ConfigError(f"the scene graph is not valid JSON ({err})") from None
    if not isinstance(data, dict) or "objects" not in data:
        raise ConfigError('a scene graph is a JSON object with "objects" (and optional "relationships"), e.g. {"objects": ["red circle"]}')
    objects = [_object(o, i, vocab) for i, o in enumerate(data["objects"])]
    triples = []
    for t, rel in enumerate(data.get("relationships", [])):
        if not (isinstance(rel, list | tuple) and len(rel) == 3 and isinstance(rel[0], int) and isinstance(rel[2], int)):
            raise ConfigError(f"relationship {t} is {rel!r}; write it as [subject index, predicate, object index]")
        triples.append((rel[0], str(rel[1]), rel[2]))
    return encode_graph(vocab, objects, triples, max_objects)


def _object(spec: Any, i: int, vocab: GraphVocab) -> tuple[str, str, str]:
    if isinstance(spec, dict):
        unknown = set(spec) - {"shape", "color", "size"}
        if unknown or "shape" not in spec or "color" not in spec:
            raise ConfigError(f'object {i} is {spec!r}; write it as {{"shape": ..., "color": ..., "size": ...}} (size optional)')
        return spec["shape"], spec["color"], spec.get("size", vocab.sizes[-1])
    words = str(spec).split()
    if len(words) == 2:
        words = [vocab.sizes[-1], *words]
    if len(words) != 3:
        raise ConfigError(f"object {i} is '{spec}'; write it as '<size> <color> <shape>', e.g. 'small red circle'")
    size, color, shape = words
    return shape, color, size


def graph_to_text(graph: dict[str, torch.Tensor], vocab: GraphVocab, max_triples: int = 4) -> list[str]:
    """A graph (encode_graph's tensors, no batch dim) as lines: its objects, then some relationships."""
    names = [
        f"{vocab.sizes[graph['size'][i]]} {vocab.colors[graph['color'][i]]} {vocab.shapes[graph['shape'][i]]}"
        for i in range(len(graph["objects"]))
        if graph["objects"][i]
    ]
    lines = [f"{i}: {n}" for i, n in enumerate(names)]
    rels = [graph["triples"][t].tolist() for t in range(len(graph["triple_mask"])) if graph["triple_mask"][t]]
    rels = [r for r in rels if vocab.predicates[r[1]] in ("left_of", "above")][:max_triples]
    return lines + [f"{s} {vocab.predicates[p].replace('_', ' ')} {o}" for s, p, o in rels]


def encode_scene(scene: Scene, vocab: GraphVocab, max_objects: int, mask_size: int) -> dict[str, torch.Tensor]:
    """A Shapes scene -> encode_graph's tensors (its complete graph) + the truth to learn from: "boxes"
    (O, 4) as x0, y0, x1, y1 in [0, 1] and "masks" (O, mask_size, mask_size), zero for padding."""
    objects = [(o.shape, o.color, o.size) for o in scene.objects]
    out = encode_graph(vocab, objects, list(scene.relations), max_objects)
    out["boxes"] = torch.zeros(max_objects, 4)
    out["masks"] = torch.zeros(max_objects, mask_size, mask_size)
    for i, o in enumerate(scene.objects):
        x, y, w, h = o.bbox
        out["boxes"][i] = torch.tensor([x, y, x + w, y + h]) / scene.size
        out["masks"][i] = torch.from_numpy(object_mask(o.shape, mask_size))
    return out


class ShapesScenes(torch.utils.data.Dataset):
    """Item i of a Shapes split as the scene-graph GAN's training example: encode_scene's tensors and
    "image" (3, H, W) in [-1, 1]. Scenes are drawn on the fly (the world is a pure function of the index)."""

    def __init__(self, world: ShapesConfig, split: str, mask_size: int, size: int | None = None):
        self.world, self.split, self.mask_size = ShapesWorld(world), split, mask_size
        self.vocab = GraphVocab.of(world)
        self.size = world.splits.get(split, 0) if size is None else size
        if self.size <= 0:
            raise ConfigError(f"Shapes split '{split}' has no items in this config; set data.shapes.splits.{split}")

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        scene = self.world.scene(self.split, i)
        out = encode_scene(scene, self.vocab, self.world.cfg.max_objects, self.mask_size)
        out["image"] = to_pixels(self.world.image(scene))
        return out
