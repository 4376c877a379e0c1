"""The scene-graph generator (sg2im, Johnson et al. 2018, with SPADE blocks for its cascaded
refinement network): graph -> object vectors, boxes and masks (gan.layout) -> the layout tensor ->
an image drawn by upsampling blocks whose normalisation the layout sets pixel by pixel."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from gan.graphs import GraphVocab
from gan.layers import SPADE, SPADEUpBlock, layout_pyramid
from gan.layout import LayoutNet, masks_to_layout
from vl.errors import ConfigError


@dataclass
class SceneGeneratorConfig:
    image_size: int = 64  # set from the Shapes world
    max_objects: int = 6  # set from the Shapes world
    dim: int = 64  # object and predicate vectors: the layout's channels
    graph_depth: int = 3  # graph convolutions
    mask_size: int = 16
    width: int = 16  # channels at full resolution; doubled at each halving, up to 8x, from 8 x 8
    noise_dim: int = 16

    def __post_init__(self) -> None:
        if self.image_size < 16 or self.image_size & (self.image_size - 1):
            raise ConfigError(f"generator image_size must be a power of two >= 16, got {self.image_size}")


class SceneGraphGenerator(nn.Module):
    """forward(graph, boxes=None, masks=None, noise=None) -> {"image" (B, 3, H, W) in [-1, 1], "boxes",
    "mask_logits" (the predicted layout), "layout" (B, D, H, W)}. The image is drawn from the given
    boxes and masks (the true ones, in training, as sg2im does) or else from the predicted ones."""

    def __init__(self, cfg: SceneGeneratorConfig, vocab: GraphVocab):
        super().__init__()
        self.cfg, self.vocab = cfg, vocab
        self.layout_net = LayoutNet(vocab, cfg.dim, cfg.graph_depth, cfg.mask_size)
        steps = int(math.log2(cfg.image_size // 8))
        widths = [cfg.width * min(2**i, 8) for i in range(steps + 1)][::-1]  # at 8 x 8, ..., full size
        self.stem = nn.Conv2d(cfg.dim + cfg.noise_dim, widths[0], 3, padding=1)
        self.blocks = nn.ModuleList(SPADEUpBlock(a, b, cfg.dim) for a, b in zip(widths[:-1], widths[1:]))
        self.out_norm = SPADE(widths[-1], cfg.dim)
        self.out = nn.Sequential(nn.ReLU(), nn.Conv2d(widths[-1], 3, 3, padding=1), nn.Tanh())

    def forward(
        self, graph: dict[str, torch.Tensor], boxes: torch.Tensor | None = None, masks: torch.Tensor | None = None, noise: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        predicted = self.layout_net(graph)
        boxes = predicted["boxes"] if boxes is None else boxes
        masks = torch.sigmoid(predicted["mask_logits"]) if masks is None else masks
        layout = masks_to_layout(predicted["vectors"], boxes, masks, graph["objects"], self.cfg.image_size)
        return {**predicted, "layout": layout, "image": self.draw(layout, noise)}

    def draw(self, layout: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """The image of a layout (B, D, H, W); noise (B, noise_dim), zeros when None."""
        b = layout.size(0)
        if noise is None:
            noise = layout.new_zeros(b, self.cfg.noise_dim)
        layouts = layout_pyramid(layout, 8)
        x = self.stem(torch.cat([layouts[8], noise[:, :, None, None].expand(-1, -1, 8, 8).to(layout.dtype)], dim=1))
        for block in self.blocks:
            x = block(x, layouts)
        return self.out(self.out_norm(x, layouts))
