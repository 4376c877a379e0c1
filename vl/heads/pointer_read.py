"""A caption decoder's pointer: each token aims at one object of the image grid and reads what and where it is.

Why: on Shapes the captions' false claims are about *where* ("a blue plus sign at the bottom" for one in the
middle, "A on the right of B" for A on the left), while the VQA head answers the same facts at 98-100%. The VQA
head reads them through pointers taught by the boxes of the objects each question names (vl.heads.fusion
PointerFusion): a softmax over the grid cells whose weighted mean of the cells' x, y is the object's place,
exactly. Cross-attention can only return what the tokens' values carry, and on Shapes they carry place
poorly (fixed coordinates appended to them did not change the captions: bench/RESULTS.md, issue 13). Here
every decoder token does what a VQA pointer does: a query from its state against keys made of [cell token, x,
y, x^2 + y^2], and the read (what: the cells' values; where: their x, y) is added to the token (zero at
initialisation, so a head starts as if it had none). The logits are returned too, so the caption's own
words can teach the aim: the boxes of the objects a caption speaks of (vl.data.shapes.truth.caption_objects).
"""

from __future__ import annotations

import torch
from torch import nn

from vl.heads.fusion import cells_with_place


class PointerRead(nn.Module):
    """prepare(memory (B, N, Dm)) -> cells (B, N, 2 D + 2); forward(x (B, L, D), cells) -> (the read to add
    to x (B, L, D), the aim's logits over the cells (B, L, N), where it found (B, L, 2): x, y in [-1, 1], fp32)."""

    def __init__(self, dim: int, memory_dim: int):
        super().__init__()
        self.dim = dim
        self.keys = nn.Linear(memory_dim + 3, dim)
        self.values = nn.Linear(memory_dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.query = nn.Linear(dim, dim)
        self.out = nn.Linear(dim + 2, dim)
        self.reset_output()

    def reset_output(self) -> None:
        """Zero the output projection (after the model's weight init), so the read starts silent."""
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def prepare(self, memory: torch.Tensor) -> torch.Tensor:
        """Per image, once: each cell's key, value and x, y (B, N, 2 D + 2)."""
        placed, xy = cells_with_place(memory)
        keys = self.keys(placed)
        return torch.cat([keys, self.values(memory).to(keys.dtype), xy.to(keys.dtype).expand(memory.size(0), -1, -1)], -1)

    def forward(self, x: torch.Tensor, cells: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        keys, values, xy = cells.split([self.dim, self.dim, 2], dim=-1)
        q = self.query(self.norm(x))
        logits = torch.einsum("bld,bnd->bln", q, keys.to(q.dtype)) * self.dim**-0.5
        weights = logits.float().softmax(-1)
        what = torch.einsum("bln,bnd->bld", weights.to(values.dtype), values)
        where = weights @ xy.float()
        return self.out(torch.cat([what.to(x.dtype), where.to(x.dtype)], -1)), logits, where


def place_features(where: torch.Tensor) -> torch.Tensor:
    """(..., 4) from x, y (..., 2): x, y, |x|, |y| — "left" is low x, "bottom" high y, "in the middle" low |x| and |y|."""
    return torch.cat([where, where.abs()], -1)
