"""sg2im's first half (Johnson et al. 2018): object and predicate embeddings, graph convolution over
(subject, predicate, object) triples, a box and a mask per object, and the scene layout they make."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gan.graphs import GraphVocab


def mlp(*dims: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class GraphTripleConv(nn.Module):
    """One graph convolution (sg2im's GraphTripleConv): each triple's [subject, predicate, object]
    vectors go through an MLP that gives a new predicate vector and a candidate vector for each end;
    an object's candidates are averaged over the triples it is in, then a second MLP gives its new
    vector. An object in no triple keeps a vector from the second MLP of zeros (plus its residual)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.hidden = hidden
        self.net1 = mlp(3 * dim, hidden, 2 * hidden + dim)
        self.net2 = mlp(hidden, hidden, dim)

    def forward(self, obj: torch.Tensor, pred: torch.Tensor, triples: torch.Tensor, triple_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """obj (B, O, D), pred (B, T, D), triples (B, T, 3) indices, triple_mask (B, T) -> new (obj, pred)."""
        s, o = triples[..., 0], triples[..., 2]
        gather = lambda idx: obj.gather(1, idx[..., None].expand(-1, -1, obj.size(-1)))  # noqa: E731
        h = self.net1(torch.cat([gather(s), pred, gather(o)], dim=-1))
        h_s, new_pred, h_o = h.split([self.hidden, obj.size(-1), self.hidden], dim=-1)
        keep = triple_mask[..., None].to(h.dtype)
        pooled = obj.new_zeros(obj.size(0), obj.size(1), self.hidden, dtype=h.dtype)
        pooled.scatter_add_(1, s[..., None].expand_as(h_s), h_s * keep).scatter_add_(1, o[..., None].expand_as(h_o), h_o * keep)
        counts = obj.new_zeros(obj.shape[:2], dtype=h.dtype)
        counts.scatter_add_(1, s, keep[..., 0]).scatter_add_(1, o, keep[..., 0])
        pooled = pooled / counts.clamp(min=1)[..., None]
        return obj + self.net2(pooled), pred + new_pred


class LayoutNet(nn.Module):
    """forward(graph) -> {"vectors" (B, O, D), "boxes" (B, O, 4) x0, y0, x1, y1 in [0, 1], "mask_logits"
    (B, O, M, M), zero for padding}: embeddings, `depth` graph convolutions, then a box MLP and a mask
    upsampler per object."""

    def __init__(self, vocab: GraphVocab, dim: int, depth: int, mask_size: int, mask_channels: int = 32):
        super().__init__()
        self.shape = nn.Embedding(len(vocab.shapes), dim)
        self.color = nn.Embedding(len(vocab.colors), dim)
        self.size = nn.Embedding(len(vocab.sizes), dim)
        self.predicate = nn.Embedding(len(vocab.predicates), dim)
        self.convs = nn.ModuleList(GraphTripleConv(dim, 2 * dim) for _ in range(depth))
        self.box = mlp(dim, 2 * dim, 4)
        steps = max(0, (mask_size // 4).bit_length() - 1)  # 4 x 4 doubled to mask_size
        if 4 * 2**steps != mask_size:
            raise ValueError(f"mask_size must be 4 times a power of two, got {mask_size}")
        self.mask_size, c = mask_size, mask_channels
        self.mask_stem = nn.Linear(dim, c * 16)
        ups: list[nn.Module] = []
        for _ in range(steps):
            ups += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU()]
        self.mask_up = nn.Sequential(*ups, nn.Conv2d(c, 1, 1))

    def forward(self, graph: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        v = self.shape(graph["shape"]) + self.color(graph["color"]) + self.size(graph["size"])
        p = self.predicate(graph["triples"][..., 1])
        for conv in self.convs:
            v, p = conv(v, p, graph["triples"], graph["triple_mask"])
        centre_size = torch.sigmoid(self.box(v))  # cx, cy, w, h: always a box inside the canvas' scale
        cx, cy, w, h = centre_size.unbind(-1)
        boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)
        present = graph["objects"]  # masks of the present objects only (padding is ~40% of a Shapes batch)
        drawn = self.mask_up(self.mask_stem(v[present]).unflatten(1, (-1, 4, 4)))[:, 0]
        masks = drawn.new_zeros(*present.shape, self.mask_size, self.mask_size)
        masks[present] = drawn
        return {"vectors": v, "boxes": boxes, "mask_logits": masks}


def masks_to_layout(vectors: torch.Tensor, boxes: torch.Tensor, masks: torch.Tensor, objects: torch.Tensor, size: int) -> torch.Tensor:
    """sg2im's layout: each object's mask (B, O, M, M) in [0, 1] warped into its box (B, O, 4, x0 y0
    x1 y1 in [0, 1]) on a size x size canvas, times its vector (B, O, D), summed over the real objects
    (objects (B, O) bool) -> (B, D, size, size)."""
    b, o, d = vectors.shape
    x0, y0, x1, y1 = boxes.reshape(b * o, 4).unbind(-1)
    # where each canvas pixel falls in each box, in grid_sample's [-1, 1] box coordinates
    grid = (torch.arange(size, device=vectors.device, dtype=vectors.dtype) + 0.5) / size
    ww = (x1 - x0).clamp(min=1e-3)
    hh = (y1 - y0).clamp(min=1e-3)
    gx = ((grid[None, :] - x0[:, None]) / ww[:, None]) * 2 - 1  # (BO, W)
    gy = ((grid[None, :] - y0[:, None]) / hh[:, None]) * 2 - 1  # (BO, H)
    sample = torch.stack([gx[:, None, :].expand(-1, size, -1), gy[:, :, None].expand(-1, -1, size)], dim=-1)
    placed = F.grid_sample(masks.reshape(b * o, 1, *masks.shape[-2:]).to(vectors.dtype), sample, align_corners=False, padding_mode="zeros")
    placed = placed.view(b, o, size, size) * objects[..., None, None].to(vectors.dtype)
    return torch.einsum("bohw,bod->bdhw", placed, vectors)
