"""A short text (a question, or an answer prompt) read together with the image. Shared by the VQA and
question-generation heads, in one of these ways (the head's `fusion` option):

- "cross": blocks of bidirectional self-attention over the text, cross-attention to the image tokens
  and an MLP. The image tokens stay as the encoder left them; the text gathers from them.
- "joint": one sequence of text and image tokens through self-attention blocks (single-stream, as
  ViLT and MDETR's fusion): the image tokens are rewritten for each text, so image regions can
  compare themselves with each other *given the question* (which object is closest to the red one,
  which are the same shape), the relations a cross-attention text has to find in two hops.
  It costs (L + N)^2 attention per text instead of L * N.
- "film": the text, read by self-attention blocks, modulates convolutions over the image token grid
  (FiLM, Perez et al. 2018: per-channel scale and shift from the text, x/y coordinate maps beside the
  features, residual 3x3 conv blocks, then a max-pool over the grid). Multiplying image features by a
  text-chosen gain binds "red" to red regions from the first steps, where attention must first learn
  to aim; 3x3 convolutions over the grid compare neighbouring regions, relations across the image
  build up block by block. Its first output token is the pooled, text-conditioned image summary.
- "pointer": FiLM plus two text-chosen pointers over the grid cells, the second steered by what and where
  the first found; each returns the content and the x/y of the object it points at, so comparing two
  objects (left of, larger than, closest to) is linear in what the classifier reads. The pointers can
  be taught directly from boxes of the objects a question names (GQA-style grounding; Shapes rows have
  them), which turns aiming from a second-order signal into a first-order one.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from vl.errors import ConfigError
from vl.layers import DecoderBlock, EncoderBlock, key_mask

FusionKind = Literal["cross", "joint", "film", "pointer"]
GEOMETRY = 6  # pointer relations: the finds' geometry, x1 - x2, y1 - y2, |x1 - x2|, |y1 - y2|, x1, y1
WORD_GAIN = 16.0  # pointer relations: a word's weight counts this much, so at the head's small learning rate it moves within a run


def build_fusion(kind: FusionKind, *args: Any, **options: Any) -> nn.Module:
    """The text+image fusion a head's `fusion` option names; args as TextImageFusion takes them, options
    the kind's own (PointerFusion: relations)."""
    return {"cross": TextImageFusion, "joint": JointFusion, "film": FiLMFusion, "pointer": PointerFusion}[kind](*args, **options)


class TextEmbedding(nn.Module):
    """What every fusion starts with: the text's token + position embeddings (not weight-decayed)."""

    def __init__(self, vocab_size: int, dim: int, heads: int, max_len: int):
        super().__init__()
        if vocab_size <= 0:
            raise ConfigError("text vocab_size is not set; build the model with its tokenizer")
        if dim % heads:
            raise ConfigError(f"text dim {dim} is not divisible by heads {heads}")
        self.max_len = max_len
        self.embed = nn.Embedding(vocab_size, dim)
        self.pos = nn.Embedding(max_len, dim)

    def no_weight_decay(self) -> set[str]:
        return {"embed.weight", "pos.weight"}

    def embed_text(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.size(1) > self.max_len:
            raise ValueError(f"text of {ids.size(1)} tokens is longer than the head's {self.max_len} positions; truncate it (the processor does)")
        return self.embed(ids) + self.pos.weight[: ids.size(1)]


class TextImageFusion(TextEmbedding):
    """forward(ids (B, L), mask (B, L), image tokens (B, N, Dm)) -> fused text tokens (B, L, D).
    With image_index (B,), the image tokens are per image (I, N, Dm) and text b reads image
    image_index[b]: each image's keys and values are computed once for all its texts."""

    def __init__(self, vocab_size: int, dim: int, depth: int, heads: int, max_len: int, memory_dim: int, mlp_ratio: float = 4.0, dropout: float = 0.0):
        super().__init__(vocab_size, dim, heads, max_len)
        self.blocks = nn.ModuleList(DecoderBlock(dim, memory_dim, heads, mlp_ratio, "gelu", dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, image: torch.Tensor, image_index: torch.Tensor | None = None) -> torch.Tensor:
        x = self.embed_text(ids)
        self_mask = key_mask(mask.bool())
        for block in self.blocks:
            kv = block.cross.memory_kv(image)
            if image_index is not None:
                kv = (kv[0][image_index], kv[1][image_index])
            x = block(x, kv, self_mask=self_mask)
        return self.norm(x)


class JointFusion(TextEmbedding):
    """forward(ids (B, L), mask (B, L), image tokens (B, N, Dm) [, image_index (B,)]) -> fused text
    tokens (B, L, D), like TextImageFusion, but text and image tokens (projected to D, with a learned
    image-type embedding) go through self-attention blocks together."""

    def __init__(self, vocab_size: int, dim: int, depth: int, heads: int, max_len: int, memory_dim: int, mlp_ratio: float = 4.0, dropout: float = 0.0):
        super().__init__(vocab_size, dim, heads, max_len)
        self.image_in = nn.Linear(memory_dim, dim)
        self.image_type = nn.Parameter(torch.zeros(dim))
        self.blocks = nn.ModuleList(EncoderBlock(dim, heads, mlp_ratio, "gelu", dropout, eps=1e-5) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def no_weight_decay(self) -> set[str]:
        return super().no_weight_decay() | {"image_type"}

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, image: torch.Tensor, image_index: torch.Tensor | None = None) -> torch.Tensor:
        text = self.embed_text(ids)
        image = self.image_in(image) + self.image_type  # projected once per image, then shared by its texts
        if image_index is not None:
            image = image[image_index]
        x = torch.cat([text, image.to(text.dtype)], dim=1)
        ones = torch.ones(image.shape[:2], dtype=torch.bool, device=mask.device)
        full_mask = key_mask(torch.cat([mask.bool(), ones], dim=1))
        for block in self.blocks:
            x = block(x, full_mask)
        return self.norm(x[:, : ids.size(1)])


class FiLMFusion(TextEmbedding):
    """forward(ids (B, L), mask (B, L), image tokens (B, N, Dm) [, image_index (B,)]) -> (B, L, D): the
    text tokens after `depth` self-attention blocks, the first replaced by the pooled output of `depth`
    FiLM'd conv blocks over the image grid (N = s * s tokens, no class token)."""

    def __init__(self, vocab_size: int, dim: int, depth: int, heads: int, max_len: int, memory_dim: int, mlp_ratio: float = 4.0, dropout: float = 0.0):
        super().__init__(vocab_size, dim, heads, max_len)
        self.text_blocks = nn.ModuleList(EncoderBlock(dim, heads, mlp_ratio, "gelu", dropout, eps=1e-5) for _ in range(depth))
        self.text_norm = nn.LayerNorm(dim)
        self.stem = nn.Conv2d(memory_dim + 2, dim, 1)
        self.blocks = nn.ModuleList(FiLMBlock(dim) for _ in range(depth))
        self.film = nn.Linear(dim, depth * 2 * dim)  # every block's scale and shift, from the text summary
        self.out = nn.Sequential(nn.Conv2d(dim + 2, dim, 1), nn.ReLU())
        self.norm = nn.LayerNorm(dim)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, image: torch.Tensor, image_index: torch.Tensor | None = None) -> torch.Tensor:
        text = self.read_text(ids, mask)
        return self.norm(torch.cat([self.pooled(text[:, 0], image, image_index)[:, None].to(text.dtype), text[:, 1:]], dim=1))

    def read_text(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The text tokens after the self-attention blocks, (B, L, D); the first is the text's summary."""
        text = self.embed_text(ids)
        self_mask = key_mask(mask.bool())
        for block in self.text_blocks:
            text = block(text, self_mask)
        return self.text_norm(text)

    def pooled(self, summary: torch.Tensor, image: torch.Tensor, image_index: torch.Tensor | None) -> torch.Tensor:
        """The FiLM'd conv blocks over the image grid, max-pooled: (B, D) from the text summary (B, D)."""
        return self.film_map(summary, image, image_index).amax(dim=(2, 3))

    def film_map(self, summary: torch.Tensor, image: torch.Tensor, image_index: torch.Tensor | None) -> torch.Tensor:
        """The FiLM'd conv blocks over the image grid: (B, D, s, s) from the text summary (B, D)."""
        grid = with_coordinates(token_grid(image))
        x = self.stem(grid)  # once per image, then shared by its texts
        if image_index is not None:
            x = x[image_index]
        coords = grid[:1, -2:].expand(x.size(0), -1, -1, -1)
        film = self.film(summary).unflatten(1, (len(self.blocks), 2, -1))  # (B, blocks, 2, D)
        for k, block in enumerate(self.blocks):
            x = block(x, coords, film[:, k, 0], film[:, k, 1])
        return self.out(torch.cat([x, coords.to(x.dtype)], dim=1))


class FiLMBlock(nn.Module):
    """FiLM's residual block: h = relu(conv1x1([x, coords])); h + relu((1 + gamma) * bn(conv3x3(h)) + beta)."""

    def __init__(self, dim: int):
        super().__init__()
        self.project = nn.Conv2d(dim + 2, dim, 1)
        self.conv = nn.Conv2d(dim, dim, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(dim, affine=False)  # the text's scale and shift are the affine part

    def forward(self, x: torch.Tensor, coords: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.project(torch.cat([x, coords.to(x.dtype)], dim=1)))
        y = self.bn(self.conv(h))
        return h + torch.relu((1 + gamma[:, :, None, None]) * y + beta[:, :, None, None])


class PointerFusion(FiLMFusion):
    """FiLMFusion whose summary also reads two objects the text points at, and its FiLM map mean-pooled as well
    as max-pooled (max says whether there is a thing, the mean how much: counting). Pointer 1 is a text-chosen
    attention over the grid cells; pointer 2's query also takes what and where pointer 1 found, and the
    keys carry each cell's x, y and x^2 + y^2, so "the object closest to the red one" is a dot product
    (-|c - a|^2 = 2 a.c - |c|^2 - |a|^2). Each pointer returns its cells' content and its mean x, y: where
    an object is, and how two compare, is then linear in the summary. `forward_with_pointers` also gives
    the pointers' logits, which a grounding loss can teach from boxes (VQAHead, `question_boxes`).

    With `relations`, the comparisons whose answer flips with one word ("closest" / "farthest", "left of" /
    "right of", "left or right of the image") get the word's choice written out, where otherwise a read has to
    learn an XOR of the word and the geometry. Pointer 2's logits get - w |c - a|^2 - e p1(c) / max p1: a
    the place pointer 1 found, p1 its weights over the cells; w (its sign: nearest or farthest) and e (how far
    to move off pointer 1's own object, which is the nearest of all) are sums over the question's tokens of a
    learned weight per vocabulary word, times WORD_GAIN. And `forward_with_pointers` also returns the finds'
    geometry (x1 - x2, y1 - y2, their sizes, and x1, y1), which VQAHead weighs by the question's words into
    its answer logits. A word, not the summary, chooses: the summaries of "is A left of B" and "is A right of
    B" differ by one word and came out nearly equal (bench/RESULTS.md, issue 14, seventh session). The terms
    start at zero (`start_neutral`, VQAHead) and read the finds detached: no gradient flows back through them
    into the aim."""

    def __init__(
        self,
        vocab_size: int,
        dim: int,
        depth: int,
        heads: int,
        max_len: int,
        memory_dim: int,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        relations: bool = False,
        film_on_find: bool = False,
    ):
        super().__init__(vocab_size, dim, depth, heads, max_len, memory_dim, mlp_ratio, dropout)
        self.relations = relations
        # the FiLM blocks also conditioned on what pointer 1 found ("how many objects have the shape of the red
        # one": count what matches the find); zero at the start (start_neutral)
        self.find_film = nn.Linear(dim, dim) if film_on_find else None
        if relations:
            self.distance_words = nn.Embedding(vocab_size, 1)  # summed over the question: > 0 nearest, < 0 farthest
            self.exclude_words = nn.Embedding(vocab_size, 1)  # summed over the question: > 0 moves pointer 2 off pointer 1's object
        self.keys = nn.Linear(memory_dim + 3, dim)
        self.values = nn.Linear(memory_dim, dim)
        self.first_query = nn.Linear(dim, dim)
        self.second_query = nn.Linear(dim, dim)
        self.second_gain = nn.Linear(dim, dim)  # the text decides how pointer 1's find steers pointer 2 (nearest or farthest)
        self.found = nn.Linear(dim + 2, dim)
        self.read = nn.Sequential(nn.Linear(3 * dim + 4, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.counted = nn.Linear(dim, dim)  # the FiLM map mean-pooled: how much of a thing there is, where max-pool says only whether

    def start_neutral(self) -> None:
        """The distance, exclusion and find-to-FiLM terms at zero, so they start at no effect (call after any weight init)."""
        if self.relations:
            nn.init.zeros_(self.distance_words.weight)
            nn.init.zeros_(self.exclude_words.weight)
        if self.find_film is not None:
            nn.init.zeros_(self.find_film.weight)
            nn.init.zeros_(self.find_film.bias)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, image: torch.Tensor, image_index: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_with_pointers(ids, mask, image, image_index)[0]

    def forward_with_pointers(
        self, ids: torch.Tensor, mask: torch.Tensor, image: torch.Tensor, image_index: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(fused text tokens (B, L, D), pointer logits over the grid cells (B, 2, N), and with relations the
        finds' geometry (B, GEOMETRY): x1 - x2, y1 - y2, |x1 - x2|, |y1 - y2|, x1, y1, detached; None without)."""
        text = self.read_text(ids, mask)
        summary = text[:, 0]
        placed, xy = cells_with_place(image)
        keys = self.keys(placed)
        values = self.values(image)
        if image_index is not None:
            keys, values = keys[image_index], values[image_index]
        scale = keys.size(-1) ** -0.5
        first = torch.einsum("bd,bnd->bn", self.first_query(summary).to(keys.dtype), keys) * scale
        what1, where1 = self._pool(first, values, xy)
        steer = self.second_query(summary) + self.second_gain(summary) * self.found(torch.cat([what1, where1.to(what1.dtype)], -1))
        second = torch.einsum("bd,bnd->bn", steer.to(keys.dtype), keys) * scale
        geometry = None
        if self.relations:
            distance = (xy.float()[None] - where1.detach()[:, None]).square().sum(-1)  # (B, N) from pointer 1's find
            on_first = first.detach().float().softmax(-1)
            on_first = on_first / on_first.amax(-1, keepdim=True)  # (B, N): 1 where pointer 1 looks most
            second = second.float() - self._word_sum(self.distance_words, ids, mask) * distance - self._word_sum(self.exclude_words, ids, mask) * on_first
        what2, where2 = self._pool(second, values, xy)
        if self.relations:
            delta = (where1 - where2).detach()
            geometry = torch.cat([delta, delta.abs(), where1.detach()], -1)
        pointed = self.read(torch.cat([summary, what1.to(summary.dtype), what2.to(summary.dtype), where1.to(summary.dtype), where2.to(summary.dtype)], -1))
        condition = summary if self.find_film is None else summary + self.find_film(what1.to(summary.dtype))
        film = self.film_map(condition, image, image_index)
        pooled = film.amax(dim=(2, 3)) + self.counted(film.mean(dim=(2, 3)))
        fused = self.norm(torch.cat([(pooled + pointed)[:, None].to(text.dtype), text[:, 1:]], dim=1))
        return fused, torch.stack([first, second], dim=1), geometry

    @staticmethod
    def _word_sum(words: nn.Embedding, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, 1): the question's per-word weights summed, times WORD_GAIN (so the words' first steps already count)."""
        return WORD_GAIN * (words(ids).squeeze(-1).float() * mask).sum(-1, keepdim=True)

    @staticmethod
    def _pool(logits: torch.Tensor, values: torch.Tensor, xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What (B, D) and where (B, 2) a pointer's softmax over the cells finds."""
        weights = logits.float().softmax(-1)
        return torch.einsum("bn,bnd->bd", weights.to(values.dtype), values), weights @ xy.float()


def box_cells(boxes: torch.Tensor, side: int) -> torch.Tensor:
    """Boxes (..., 4) as (x, y, w, h) fractions of the image -> which cells of a side x side grid they
    cover (..., side * side), as a distribution: the cells whose centre lies in the box, and the cell
    holding the box's centre (so that a box smaller than a cell still has one)."""
    centres = (torch.arange(side, device=boxes.device, dtype=torch.float32) + 0.5) / side
    cy, cx = torch.meshgrid(centres, centres, indexing="ij")
    cx, cy = cx.flatten(), cy.flatten()
    x, y, w, h = (boxes[..., k, None].float() for k in range(4))
    inside = (cx >= x) & (cx <= x + w) & (cy >= y) & (cy <= y + h)
    middle = ((x + w / 2) * side).long().clamp(0, side - 1) + side * ((y + h / 2) * side).long().clamp(0, side - 1)
    inside = inside | torch.nn.functional.one_hot(middle.squeeze(-1), side * side).bool()
    return inside.float() / inside.sum(-1, keepdim=True)


def grounding_loss(pointers: torch.Tensor, boxes: torch.Tensor, box_mask: torch.Tensor, box_pointer: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of each pointer's softmax over the grid cells (Q, K, N) against the cells its box
    covers (boxes (Q, K', 4), x/y/w/h fractions of the image; box_mask (Q, K') which boxes are there),
    averaged over the pointers that have a box (0 when none has). Box j teaches pointer j; with box_pointer
    (Q, K') box j teaches pointer box_pointer[:, j] instead, and a pointer with several boxes is taught their
    mixture, each object weighing the same ("how many circles": aim at every circle). Boxes for pointers past
    the K there are count for nothing."""
    k = pointers.size(1)
    if box_pointer is None:
        box_pointer = torch.arange(boxes.size(1), device=boxes.device).expand(boxes.size(0), -1)
    present = box_mask.bool() & (box_pointer < k)
    if not present.any():
        return pointers.sum() * 0.0
    cells = box_cells(boxes, int(round(pointers.size(-1) ** 0.5)))  # (Q, K', N)
    which = F.one_hot(box_pointer.clamp(0, k - 1), k).float() * present[..., None]  # (Q, K', K)
    count = which.sum(1)  # (Q, K): boxes per pointer
    taught = count > 0
    target = torch.einsum("qjk,qjn->qkn", which, cells)[taught] / count[taught][:, None]
    return -(target * F.log_softmax(pointers[taught].float(), dim=-1)).sum(-1).mean()


def cells_with_place(tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """What a pointer's keys are made of: the grid's tokens (B, N, Dm) with each cell's x, y and x^2 + y^2 appended
    (B, N, Dm + 3), so -|c - a|^2 is linear in them; and the cells' x, y (N, 2). The tokens must make a square grid."""
    side = token_grid(tokens).size(-1)
    xy = grid_coordinates(side, side, tokens).flatten(1).T
    b = tokens.size(0)
    return torch.cat([tokens, xy.expand(b, -1, -1), xy.square().sum(-1, keepdim=True).expand(b, -1, 1)], -1), xy


def token_grid(tokens: torch.Tensor) -> torch.Tensor:
    """Image tokens (B, N, D) as a (B, D, s, s) grid; N must be a square (an encoder without class token)."""
    side = int(round(tokens.size(1) ** 0.5))
    if side * side != tokens.size(1):
        raise ConfigError(f"fusion 'film' needs the image tokens on a square grid, got {tokens.size(1)}; use an encoder without class token, or fusion 'cross'")
    return tokens.transpose(1, 2).unflatten(2, (side, side))


def with_coordinates(grid: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C + 2, H, W): x and y of each cell centre in [-1, 1] appended (CoordConv)."""
    b, _, h, w = grid.shape
    return torch.cat([grid, grid_coordinates(h, w, grid).expand(b, -1, -1, -1)], dim=1)


def grid_coordinates(h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    """(2, H, W): x and y of each cell centre of an H x W grid in [-1, 1], in like's dtype and device."""
    ys = torch.linspace(-1 + 1 / h, 1 - 1 / h, h, device=like.device, dtype=like.dtype)
    xs = torch.linspace(-1 + 1 / w, 1 - 1 / w, w, device=like.device, dtype=like.dtype)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx, yy])


def joint_memory(image: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor, project: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """What a head's decoder attends to: the image tokens (projected to the text width) and the fused
    text tokens, (B, N + L, D), with the mask (B, N + L) that hides the text's padding."""
    image = project(image)
    ones = torch.ones(image.shape[:2], dtype=torch.bool, device=image.device)
    return torch.cat([image, text], dim=1), torch.cat([ones, text_mask.bool()], dim=1)
