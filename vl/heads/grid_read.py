"""A decoder's second way to look at the image: FiLM-gated max-pooling over the token grid.

Why: on Shapes, caption relations ("a red circle left of a blue square") stayed at chance (~50% true)
in every demo run: cross-attention has to learn to aim at one object, read its place out of the token,
then aim at the other, and in ten CPU minutes it does not (issue 14's oracle-token probe showed the
same for VQA). FiLM (Perez et al. 2018) learned left/right where cross-attention did not: the text sets
per-channel gains and offsets over the grid and a max-pool reads the result. Here every decoder token
does that for itself: from the token's state, a gain and offset per channel of per-cell features built
from [image token, x, y]; relu, then the maximum over the cells. One channel can then read "the largest
x of any red cell", and once the state holds that x, the next read can gate on "cells right of it".
The per-image features are made once (at `prepare`); each token's read costs channels x cells
multiply-adds, no attention.
"""

from __future__ import annotations

import torch
from torch import nn

from vl.heads.fusion import token_grid, with_coordinates


class GridRead(nn.Module):
    """prepare(memory (B, N, Dm)) -> cells (B, N, C); forward(x (B, L, D), cells) -> (B, L, D), the
    read to add to x (zero at initialisation, so a model starts as if it had none)."""

    def __init__(self, dim: int, memory_dim: int, channels: int):
        super().__init__()
        self.cells = nn.Sequential(nn.Linear(memory_dim + 2, channels), nn.ReLU(), nn.Linear(channels, channels))
        self.norm = nn.LayerNorm(dim)
        self.film = nn.Linear(dim, 2 * channels)
        self.out = nn.Linear(channels, dim)
        self.reset_output()

    def reset_output(self) -> None:
        """Zero the output projection (after the model's weight init), so the read starts silent."""
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def prepare(self, memory: torch.Tensor) -> torch.Tensor:
        grid = with_coordinates(token_grid(memory))  # (B, Dm + 2, s, s): the memory must be a square grid
        return self.cells(grid.flatten(2).transpose(1, 2))

    def forward(self, x: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.film(self.norm(x)).chunk(2, dim=-1)  # (B, L, C) each
        gated = torch.relu((1 + gamma[:, :, None]) * cells[:, None].to(gamma.dtype) + beta[:, :, None])  # (B, L, N, C)
        return self.out(gated.amax(dim=2))
