"""A short text (a question, or an answer prompt) read together with the image: token embeddings,
then blocks of bidirectional self-attention over the text, cross-attention to the image tokens and
an MLP. Shared by the VQA and question-generation heads."""

from __future__ import annotations

import torch
from torch import nn

from vl.errors import ConfigError
from vl.layers import DecoderBlock, key_mask


class TextImageFusion(nn.Module):
    """forward(ids (B, L), mask (B, L), image tokens (B, N, Dm)) -> fused text tokens (B, L, D).
    With image_index (B,), the image tokens are per image (I, N, Dm) and text b reads image
    image_index[b]: each image's keys and values are computed once for all its texts."""

    def __init__(self, vocab_size: int, dim: int, depth: int, heads: int, max_len: int, memory_dim: int, mlp_ratio: float = 4.0, dropout: float = 0.0):
        super().__init__()
        if vocab_size <= 0:
            raise ConfigError("text vocab_size is not set; build the model with its tokenizer")
        if dim % heads:
            raise ConfigError(f"text dim {dim} is not divisible by heads {heads}")
        self.max_len = max_len
        self.embed = nn.Embedding(vocab_size, dim)
        self.pos = nn.Embedding(max_len, dim)
        self.blocks = nn.ModuleList(DecoderBlock(dim, memory_dim, heads, mlp_ratio, "gelu", dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def no_weight_decay(self) -> set[str]:
        """Token and position embeddings are not decayed."""
        return {"embed.weight", "pos.weight"}

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, image: torch.Tensor, image_index: torch.Tensor | None = None) -> torch.Tensor:
        if ids.size(1) > self.max_len:
            raise ValueError(f"text of {ids.size(1)} tokens is longer than the head's {self.max_len} positions; truncate it (the processor does)")
        x = self.embed(ids) + self.pos.weight[: ids.size(1)]
        self_mask = key_mask(mask.bool())
        for block in self.blocks:
            kv = block.cross.memory_kv(image)
            if image_index is not None:
                kv = (kv[0][image_index], kv[1][image_index])
            x = block(x, kv, self_mask=self_mask)
        return self.norm(x)


def joint_memory(image: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor, project: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """What a head's decoder attends to: the image tokens (projected to the text width) and the fused
    text tokens, (B, N + L, D), with the mask (B, N + L) that hides the text's padding."""
    image = project(image)
    ones = torch.ones(image.shape[:2], dtype=torch.bool, device=image.device)
    return torch.cat([image, text], dim=1), torch.cat([ones, text_mask.bool()], dim=1)
