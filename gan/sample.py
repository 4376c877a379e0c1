"""Save and load a trained generator (safetensors + its resolved config) of either kind, redraw faces
with a face generator, draw a scene graph written as JSON with a scene-graph generator."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from gan.config import gan_config_class
from gan.data import to_image
from gan.generators import FaceGenerator
from gan.graphs import GraphVocab, graph_from_json
from gan.sg2im import SceneGraphGenerator
from vl.config import load_config, save_config
from vl.errors import ConfigError
from vl.modeling import CheckpointError

WEIGHTS, CONFIG = "model.safetensors", "config.yaml"
EXTRA = "extra_state.safetensors"  # in a training checkpoint: the GAN's EMA and RNG (tasks.common.checkpoint writes it)


def save_generator(generator: torch.nn.Module, cfg, folder: str | Path) -> Path:
    """folder/model.safetensors and folder/config.yaml, each written to a temporary name then renamed."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in generator.state_dict().items()}
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    os.close(fd)
    save_file(state, tmp)
    os.replace(tmp, folder / WEIGHTS)
    save_config(cfg, folder / CONFIG)
    return folder


def load_generator(folder: str | Path, kind: str | None = None):
    """The EMA generator saved by tasks.train_gan, in eval mode, and its experiment config; with `kind`,
    an error unless the generator is of that kind. `folder` is the run's generator/ folder or one of its
    checkpoints/step_N folders (the EMA as it was at that step)."""
    folder = Path(folder)
    checkpoint = (folder / EXTRA).is_file()  # a training checkpoint: the EMA is in the GAN's state, the config in the run folder
    weights, config = (folder / EXTRA, run_folder(folder) / CONFIG) if checkpoint else (folder / WEIGHTS, folder / CONFIG)
    for path in (weights, config):
        if not path.is_file():
            raise CheckpointError(f"{path} is missing; point at the generator/ folder (or a checkpoints/step_N folder) a tasks.train_gan run writes")
    cfg = load_config(gan_config_class(config, []), config)
    if kind is not None and cfg.kind != kind:
        raise ConfigError(f"{folder} holds a {cfg.kind} generator; this needs a {kind} one")
    if cfg.kind == "scene_graph":
        generator = SceneGraphGenerator(cfg.model.generator, GraphVocab.of(cfg.data.shapes))
    else:
        generator = FaceGenerator(cfg.model.generator)
    state = load_file(weights)
    if checkpoint:
        state = {k.removeprefix("ema.module."): v for k, v in state.items() if k.startswith("ema.module.")}
    try:
        generator.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(f"{weights} does not fit the generator its config describes: {str(err).splitlines()[0]}") from None
    return generator.eval(), cfg


def run_folder(folder: str | Path) -> Path:
    """The tasks.train_gan run a generator/ folder or a checkpoints/step_N folder belongs to."""
    folder = Path(folder)
    return folder.parent.parent if (folder / EXTRA).is_file() else folder.parent


@torch.no_grad()
def redraw(generator: FaceGenerator, images: torch.Tensor, pose: torch.Tensor, expression: torch.Tensor, noise: bool = False) -> torch.Tensor:
    """Each face (B, 3, H, W in [-1, 1]) drawn again at pose[i], expression[i] (class indices)."""
    code = generator.encode(images)
    z = None if noise else torch.zeros(images.size(0), generator.cfg.noise_dim, device=images.device)
    return generator.decode(code, pose, expression, z)


@torch.no_grad()
def sample_from_graph(generator: SceneGraphGenerator | str | Path, graph, noise: bool = False) -> dict:
    """Draw a scene graph (a dict, a JSON string or a .json file: gan.graphs' format) with a scene-graph
    generator (or the generator/ folder of its training run) -> {"image": PIL image, "boxes": each
    object's box (x0, y0, x1, y1 in pixels), "layout": the graph's tensors and the raw outputs}."""
    if not isinstance(generator, SceneGraphGenerator):
        generator = load_generator(generator, kind="scene_graph")[0]
    g = graph_from_json(graph, generator.vocab, generator.cfg.max_objects)
    batch = {k: v[None] for k, v in g.items()}
    z = torch.randn(1, generator.cfg.noise_dim) if noise else None
    out = generator(batch, noise=z)
    n = int(g["objects"].sum())
    boxes = (out["boxes"][0, :n] * generator.cfg.image_size).tolist()
    return {"image": to_image(out["image"][0]), "boxes": [tuple(round(v, 1) for v in b) for b in boxes], "graph": g, "outputs": out}
