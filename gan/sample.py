"""Save and load a trained generator (safetensors + its resolved config), and draw faces with it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from gan.config import GANExperimentConfig
from gan.generators import FaceGenerator
from vl.config import load_config, save_config
from vl.modeling import CheckpointError

WEIGHTS, CONFIG = "model.safetensors", "config.yaml"


def save_generator(generator: FaceGenerator, cfg: GANExperimentConfig, folder: str | Path) -> Path:
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


def load_generator(folder: str | Path) -> tuple[FaceGenerator, GANExperimentConfig]:
    """The EMA generator saved by tasks.train_gan, in eval mode, and its experiment config."""
    folder = Path(folder)
    for name in (WEIGHTS, CONFIG):
        if not (folder / name).is_file():
            raise CheckpointError(f"{folder} has no {name}; point at the generator/ folder a tasks.train_gan run writes")
    cfg = load_config(GANExperimentConfig, folder / CONFIG)
    generator = FaceGenerator(cfg.model.generator)
    try:
        generator.load_state_dict(load_file(folder / WEIGHTS))
    except RuntimeError as err:
        raise CheckpointError(f"{folder / WEIGHTS} does not fit the generator its config describes: {str(err).splitlines()[0]}") from None
    return generator.eval(), cfg


@torch.no_grad()
def redraw(generator: FaceGenerator, images: torch.Tensor, pose: torch.Tensor, expression: torch.Tensor, noise: bool = False) -> torch.Tensor:
    """Each face (B, 3, H, W in [-1, 1]) drawn again at pose[i], expression[i] (class indices)."""
    code = generator.encode(images)
    z = None if noise else torch.zeros(images.size(0), generator.cfg.noise_dim, device=images.device)
    return generator.decode(code, pose, expression, z)
