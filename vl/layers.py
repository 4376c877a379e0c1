"""Transformer building blocks shared by every encoder and head.

Pre-norm blocks, a fused qkv projection, PyTorch's scaled_dot_product_attention (two matmuls where
those are faster on CPU: `attention`), one-kernel GELU, and no dropout module at all when the rate is
0: the few large matrix multiplies do the work and little else runs. The decoder block keeps GPT-2's
layout and names-by-role so a GPT-2 checkpoint maps onto it one tensor to one tensor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

GELU_APPROXIMATE = {"gelu": "none", "gelu_tanh": "tanh"}


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False, dropout: float = 0.0, mask: torch.Tensor | None = None) -> torch.Tensor:
    """scaled_dot_product_attention over (B, H, N, hd); mask (B, 1, 1, M) bool, True = attend to that key.

    On CPU, two matmuls and a softmax (`_matmul_attention`) where they beat the fused kernels at this
    suite's lengths (8-64 keys; `bench/attention_paths.py`): in bf16 always (the fused kernel is 2-5x
    slower there, its math backend ~2x in training), and in fp32 inference for one query (a decoding
    step). fp32 training and fp32 inference over many queries keep the fused kernel, which wins there."""
    if causal and mask is not None:
        raise ValueError("attention takes a causal flag or a key mask, not both")
    if q.device.type == "cpu" and (q.dtype == torch.bfloat16 or (q.size(-2) == 1 and not torch.is_grad_enabled())):
        return _matmul_attention(q, k, v, causal, dropout, mask)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, dropout_p=dropout)


def _matmul_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool, dropout: float, mask: torch.Tensor | None) -> torch.Tensor:
    """softmax(q k^T / sqrt(hd)) v as two batched matmuls (what HF's eager attention computes); a causal
    query i sees keys up to i + (keys - queries), as scaled_dot_product_attention's is_causal does for
    equal lengths and a cached step's queries need."""
    scores = torch.matmul(q, k.transpose(-1, -2)).mul_(q.size(-1) ** -0.5)
    if causal and q.size(-2) > 1:
        n, m = q.size(-2), k.size(-2)
        mask = torch.ones(n, m, dtype=torch.bool, device=q.device).tril_(m - n)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    probs = scores.softmax(dim=-1)
    if dropout:
        probs = F.dropout(probs, dropout)
    return torch.matmul(probs, v)


def key_mask(mask: torch.Tensor | None) -> torch.Tensor | None:
    """(B, M) bool, True = a real token -> (B, 1, 1, M), the shape attention() broadcasts."""
    return None if mask is None else mask[:, None, None, :]


class MLP(nn.Module):
    """Linear -> GELU -> Linear."""

    def __init__(self, dim: int, hidden: int, act: str = "gelu", dropout: float = 0.0):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        self.approximate = GELU_APPROXIMATE[act]
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc2(F.gelu(self.fc1(x), approximate=self.approximate))
        return F.dropout(x, self.dropout, self.training) if self.dropout else x


class KVCache:
    """Keys and values of every decoder layer, preallocated: (layers, B, H, max_len, head_dim) each."""

    def __init__(self, layers: int, batch: int, heads: int, max_len: int, head_dim: int, like: torch.Tensor):
        shape = (layers, batch, heads, max_len, head_dim)
        # zeros, not empty: the static-shape step attends over every position with a mask, and a masked
        # position's weight 0 times a NaN left in uninitialised memory is NaN (a flaky wrong caption)
        self.k = torch.zeros(shape, dtype=like.dtype, device=like.device)
        self.v = torch.zeros(shape, dtype=like.dtype, device=like.device)
        self.length = 0  # positions filled in every layer

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write this step's k, v (B, H, n, hd) after the filled positions; return all keys/values so far."""
        end = self.length + k.size(2)
        self.k[layer, :, :, self.length : end] = k
        self.v[layer, :, :, self.length : end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    def advance(self, n: int) -> None:
        self.length += n

    def reorder(self, index: torch.Tensor) -> None:
        """Keep batch rows `index` (beam search), in that order."""
        self.k[:, :, :, : self.length] = self.k[:, index, :, : self.length]
        self.v[:, :, :, : self.length] = self.v[:, index, :, : self.length]


class SelfAttention(nn.Module):
    """Multi-head self-attention; causal and cached for decoding."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads, self.dropout = heads, dropout
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, causal: bool = False, cache: KVCache | None = None, layer: int = 0, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, N, D); mask (B, 1, 1, N) for padded, non-causal inputs."""
        B, N, _ = x.shape
        inner = self.proj.in_features  # heads * head width: the model width, unless heads were pruned
        q, k, v = self.qkv(x).view(B, N, 3, self.heads, inner // self.heads).permute(2, 0, 3, 1, 4)  # 3 x (B, H, N, hd)
        if cache is not None:
            if N > 1 and cache.length:
                raise ValueError("a cached step takes one token at a time after the first")
            k, v = cache.update(layer, k, v)
            causal = causal and N > 1  # one new query may attend to every cached key
        y = attention(q, k, v, causal, self.dropout if self.training else 0.0, mask)
        return self.proj(y.transpose(1, 2).reshape(B, N, inner))


class CrossAttention(nn.Module):
    """Queries from the sequence, keys/values from the encoder tokens (of any width)."""

    def __init__(self, dim: int, memory_dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.q, self.proj = nn.Linear(dim, dim), nn.Linear(dim, dim)
        # Separate k and v projections: their gradients come back dense, where slices of one fused
        # projection cost a stack and a transposing copy per layer in the backward pass.
        self.k, self.v = nn.Linear(memory_dim, dim), nn.Linear(memory_dim, dim)

    def memory_kv(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of the encoder tokens (B, M, Dm) -> 2 x (B, H, M, hd); computed once per image."""
        B, M, _ = memory.shape
        D = self.q.out_features
        k = self.k(memory).view(B, M, self.heads, D // self.heads).transpose(1, 2)
        v = self.v(memory).view(B, M, self.heads, D // self.heads).transpose(1, 2)
        return k, v

    def forward(self, x: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor], mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, N, D) attends to the memory's keys/values; mask (B, 1, 1, M) hides padded memory tokens."""
        B, N, D = x.shape
        q = self.q(x).view(B, N, self.heads, D // self.heads).transpose(1, 2)
        y = attention(q, *kv, dropout=self.dropout if self.training else 0.0, mask=mask)
        return self.proj(y.transpose(1, 2).reshape(B, N, D))


class LayerScale(nn.Module):
    """x * gamma, one learned factor per channel starting at `init` (CaiT; timm's `init_values`)."""

    def __init__(self, dim: int, init: float):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class EncoderBlock(nn.Module):
    """x + attn(ln(x)), then x + mlp(ln(x)); each branch scaled by a LayerScale when layer_scale is set."""

    def __init__(
        self,
        dim: int,
        heads: int,
        mlp_ratio: float = 4.0,
        act: str = "gelu",
        dropout: float = 0.0,
        eps: float = 1e-6,
        layer_scale: float | None = None,
    ):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim, eps=eps), nn.LayerNorm(dim, eps=eps)
        self.attn = SelfAttention(dim, heads, dropout)
        self.mlp = MLP(dim, int(dim * mlp_ratio), act, dropout)
        self.ls1 = LayerScale(dim, layer_scale) if layer_scale else nn.Identity()
        self.ls2 = LayerScale(dim, layer_scale) if layer_scale else nn.Identity()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, N, D); mask (B, 1, 1, N) (see key_mask) hides padding from attention."""
        x = x + self.ls1(self.attn(self.ln1(x), mask=mask))
        return x + self.ls2(self.mlp(self.ln2(x)))


class DecoderBlock(nn.Module):
    """Self-attention (causal when decoding), cross-attention to the encoder tokens, MLP; each pre-norm
    (GPT-2's layout). Non-causal with a padding mask, the same block fuses a question with the image."""

    def __init__(
        self,
        dim: int,
        memory_dim: int,
        heads: int,
        mlp_ratio: float = 4.0,
        act: str = "gelu",
        dropout: float = 0.0,
        eps: float = 1e-5,
    ):
        super().__init__()
        self.ln1, self.ln_cross, self.ln2 = (nn.LayerNorm(dim, eps=eps) for _ in range(3))
        self.attn = SelfAttention(dim, heads, dropout)
        self.cross = CrossAttention(dim, memory_dim, heads, dropout)
        self.mlp = MLP(dim, int(dim * mlp_ratio), act, dropout)

    def forward(
        self,
        x: torch.Tensor,
        memory_kv: tuple[torch.Tensor, torch.Tensor],
        cache: KVCache | None = None,
        layer: int = 0,
        memory_mask: torch.Tensor | None = None,
        self_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Causal unless self_mask (B, 1, 1, N) is given (then bidirectional over the unmasked tokens)."""
        x = x + self.attn(self.ln1(x), causal=self_mask is None, cache=cache, layer=layer, mask=self_mask)
        x = x + self.cross(self.ln_cross(x), memory_kv, memory_mask)
        return x + self.mlp(self.ln2(x))


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """Truncated-normal linear/embedding weights, zero biases, unit LayerNorms (ViT/GPT-2 style);
    convolutions keep PyTorch's (Kaiming) initialisation, the usual choice ahead of BatchNorm."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=std, a=-2 * std, b=2 * std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.trunc_normal_(module.weight, std=std, a=-2 * std, b=2 * std)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
