"""Caption head: a transformer decoder with cross-attention to the shared encoder's tokens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from vl.errors import ConfigError
from vl.heads.fusion import WORD_GAIN, grounding_loss
from vl.heads.grid_read import GridRead
from vl.heads.pointer_read import PointerRead, place_features
from vl.layers import DecoderBlock, KVCache, attention, init_weights, key_mask
from vl.registry import HEADS

_SKIPPED_GUARDS = {"EMPTY_NN_MODULE_HOOKS_DICT", "NOT_PRESENT_IN_GENERIC_DICT", "DICT_KEYS_MATCH"}


def _step_guards(entries) -> list[bool]:
    """Which of torch.compile's guards the decode step keeps: all but the per-module checks that no hook was
    added and no attribute shadowed (~200 for a 4-layer head; the check each token falls from 0.40 to 0.23 ms
    at batch 1, where a decoder layer's work is ~0.5 ms). Module types, parameter shapes and dtypes, and
    everything about the step's inputs stay guarded: dynamo caches graphs per code object, shared by every
    head, so another head's shapes or a layer swapped by a compression method must still miss the cache."""
    return [not (e.guard_type in _SKIPPED_GUARDS and e.orig_guard.source.is_unspecialized_nn_module()) for e in entries]


# How the decode step compiles (bench/caption_speed.py --compile-decode measures it): a C++ wrapper calls the
# kernels instead of Python; fewer guards are checked each step; and no pattern matching, which would turn
# each one-query attention back into the fused SDPA kernel (several times slower than two matmuls for one query).
STEP_COMPILE_OPTIONS = {"cpp_wrapper": True, "guard_filter_fn": _step_guards, "pattern_matcher": False}


@dataclass
class DecodeState:
    """Per-image decoding state: each layer's cross-attention keys/values and the self-attention cache."""

    memory_kv: list[tuple[torch.Tensor, torch.Tensor]]
    cache: KVCache | None
    memory_mask: torch.Tensor | None = None  # (B, 1, 1, M), True = a real memory token
    cells: list[torch.Tensor] | None = None  # each grid read's per-cell features (B, N, C), when the head has them
    pointer_cells: torch.Tensor | None = None  # the pointer read's per-cell keys, values and x, y, when the head has one
    compiled: bool = False  # decode through the compiled static-shape step


@HEADS.register("caption")
class CaptionHead(nn.Module):
    """forward(tokens (B, N, Dm), batch with input_ids (B, L) [and labels]) -> {"logits", "loss"}."""

    @dataclass
    class Config:
        dim: int = 256
        depth: int = 4
        heads: int = 4
        mlp_ratio: float = 4.0
        act: Literal["gelu", "gelu_tanh"] = "gelu"  # exact GELU is the cheaper one on CPUs; GPT-2 uses tanh
        dropout: float = 0.0
        max_len: int = 32  # positions, BOS included
        vocab_size: int = 0  # set from the tokenizer
        bos_token_id: int = 0
        eos_token_id: int = 0
        pad_token_id: int = 0
        label_smoothing: float = 0.0
        init_from: str = ""  # a GPT-2 checkpoint folder: decoder weights from it, cross-attention new
        # Channels of a FiLM-gated max-pool read of the image grid before each block and after the last
        # (vl.heads.grid_read: relations and places that cross-attention learns slowly); 0: none.
        # Needs the image tokens on a square grid (no class token).
        grid_read: int = 0
        # A pointer before the last block (vl.heads.pointer_read): each token aims at one object of the image grid
        # and reads what and where it is. Taught by the boxes of the objects each caption word is about, when the
        # training batches carry them (`caption_boxes`: Shapes rows do), at `grounding_weight`. Needs a square grid.
        pointer: bool = False
        grounding_weight: float = 1.0
        # With the pointer: where it found (x, y, |x|, |y|) weighed straight into every word's logit (zero at the start), so a
        # place word ("bottom", "left") is a linear function of where the token aims, as VQA's relation words weigh geometry.
        pointer_place_words: bool = False
        # With the pointer: it reads the encoder's tokens detached, so its aim, its reads and the grounding loss teach the
        # head only and the shared encoder is shaped by the other paths, as without a pointer (a frozen-encoder probe's setting).
        pointer_detached: bool = False

        def __post_init__(self) -> None:
            if self.dim % self.heads:
                raise ConfigError(f"caption head dim {self.dim} is not divisible by heads {self.heads}")
            if self.pointer_place_words and not self.pointer:
                raise ConfigError("caption head pointer_place_words reads the pointer's place: set pointer: true, or drop it")
            if self.pointer_detached and not self.pointer:
                raise ConfigError("caption head pointer_detached detaches the pointer's input: set pointer: true, or drop it")

    def __init__(self, cfg: Config, memory_dim: int):
        super().__init__()
        gpt2 = _load_gpt2(cfg) if cfg.init_from else None
        if cfg.vocab_size <= 0:
            raise ConfigError("caption head vocab_size is not set; build the model with its tokenizer")
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.pos = nn.Embedding(cfg.max_len, cfg.dim)
        self.blocks = nn.ModuleList(DecoderBlock(cfg.dim, memory_dim, cfg.heads, cfg.mlp_ratio, cfg.act, cfg.dropout) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim)
        self.reads = nn.ModuleList(GridRead(cfg.dim, memory_dim, cfg.grid_read) for _ in range(cfg.depth + 1)) if cfg.grid_read else None
        self.pointer = PointerRead(cfg.dim, memory_dim) if cfg.pointer else None
        self.place_words = nn.Linear(4, cfg.vocab_size, bias=False) if cfg.pointer_place_words else None
        self._static_step_compiled = None  # torch.compile of _static_step, made on first use
        self.apply(init_weights)
        for read in [*(self.reads or ()), *([self.pointer] if self.pointer is not None else [])]:
            read.reset_output()
        if self.place_words is not None:
            nn.init.zeros_(self.place_words.weight)
        if gpt2 is not None:
            self.load_state_dict(gpt2_state_dict(gpt2, cfg.max_len), strict=False)

    def no_weight_decay(self) -> set[str]:
        """Token and position embeddings are not decayed."""
        return {"embed.weight", "pos.weight"}

    # --- training -------------------------------------------------------------------------------
    def forward(self, tokens: torch.Tensor, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return self.teacher_forced(tokens, batch["input_ids"], batch.get("labels"), boxes=batch.get("caption_boxes"), box_mask=batch.get("caption_box_mask"))

    def teacher_forced(
        self,
        memory: torch.Tensor,
        input_ids: torch.Tensor,
        labels: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
        box_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """input_ids (B, L) = BOS w1 .. wn (padded), labels (B, L) = w1 .. wn EOS (-100 on padding),
        attending to memory (B, M, Dm) [mask (B, M)] -> {"logits" (B, L, V), "loss"}. With a pointer and
        boxes (B, L, 4) of the object each label token is about (box_mask (B, L): which have one), the loss
        also teaches the pointer to aim there ("loss_ground")."""
        state = self._state(memory, memory_mask)
        hidden, aim, where = self._hidden(input_ids, state, start=0)
        logits = self._logits(hidden, where)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100, label_smoothing=self.cfg.label_smoothing)
            if aim is not None and boxes is not None and self.cfg.grounding_weight:
                out["loss_ground"] = grounding_loss(aim, boxes[:, : aim.size(1)], box_mask[:, : aim.size(1)])
                out["loss"] = out["loss"] + self.cfg.grounding_weight * out["loss_ground"]
        return out

    def _state(self, memory: torch.Tensor, memory_mask: torch.Tensor | None) -> DecodeState:
        kv = [blk.cross.memory_kv(memory) for blk in self.blocks]
        return DecodeState(kv, cache=None, memory_mask=key_mask(memory_mask), cells=self._cells(memory), pointer_cells=self._pointer_cells(memory))

    def _hidden(self, ids: torch.Tensor, state: DecodeState, start: int) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """The last layer's normed states (B, L, D), and when the head has a pointer its logits over the grid cells
        (B, L, N) and where it found (B, L, 2)."""
        x = self.embed(ids) + self.pos.weight[start : start + ids.size(1)]
        aim = where = None
        for i, block in enumerate(self.blocks):
            x = self._read(x, state.cells, i)
            if self.pointer is not None and i == len(self.blocks) - 1:
                read, aim, where = self.pointer(x, state.pointer_cells)
                x = x + read
            x = block(x, state.memory_kv[i], state.cache, i, state.memory_mask)
        return self.norm(self._read(x, state.cells, len(self.blocks))), aim, where

    def _cells(self, memory: torch.Tensor, beams: int = 1) -> list[torch.Tensor] | None:
        """Each grid read's per-cell features of the memory, once per image (then per beam)."""
        if self.reads is None:
            return None
        return [read.prepare(memory).repeat_interleave(beams, dim=0) for read in self.reads]

    def _pointer_cells(self, memory: torch.Tensor, beams: int = 1) -> torch.Tensor | None:
        """The pointer's per-cell keys, values and x, y of the memory, once per image (then per beam)."""
        if self.pointer is None:
            return None
        return self.pointer.prepare(memory.detach() if self.cfg.pointer_detached else memory).repeat_interleave(beams, dim=0)

    def _read(self, x: torch.Tensor, cells: list[torch.Tensor] | None, k: int) -> torch.Tensor:
        return x if cells is None else x + self.reads[k](x, cells[k])

    # --- decoding (the protocol of vl.generation) -------------------------------------------------
    def decoder_memory(self, tokens: torch.Tensor, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """What the decoder attends to when generating: the image tokens themselves."""
        return tokens, None

    def text_decoder(self) -> CaptionHead:
        return self

    def start(
        self, memory: torch.Tensor, max_len: int, use_cache: bool = True, memory_mask: torch.Tensor | None = None, beams: int = 1, compile: bool = False
    ) -> DecodeState:
        """Each layer's cross-attention keys/values of the memory (computed once per image, then repeated
        for its `beams` rows) and an empty KV cache; with `compile`, a static cache that decode_step
        fills through a torch.compile'd step of fixed shapes."""
        if max_len > self.cfg.max_len:
            raise ConfigError(f"cannot decode {max_len - 1} new tokens: the head has {self.cfg.max_len} positions")
        # contiguous once per image, not copied by the attention kernel at every step
        kv = [tuple(t.repeat_interleave(beams, dim=0).contiguous() for t in blk.cross.memory_kv(memory)) for blk in self.blocks]
        if memory_mask is not None:
            memory_mask = memory_mask.repeat_interleave(beams, dim=0)
        cache = None
        if use_cache:
            hd = self.cfg.dim // self.cfg.heads
            cache = KVCache(len(self.blocks), memory.size(0) * beams, self.cfg.heads, max_len, hd, like=kv[0][0])
        cells, pointer_cells = self._cells(memory, beams), self._pointer_cells(memory, beams)
        return DecodeState(kv, cache, key_mask(memory_mask), compiled=compile, cells=cells, pointer_cells=pointer_cells)

    def decode_step(self, input_ids: torch.Tensor, state: DecodeState) -> torch.Tensor:
        if state.compiled:
            return self._compiled_step(input_ids, state)
        start = state.cache.length if state.cache is not None else 0
        h, _, where = self._hidden(input_ids, state, start)
        if state.cache is not None:
            state.cache.advance(input_ids.size(1))
        return self._logits(h[:, -1], where[:, -1] if where is not None else None)  # (B, V)

    def _compiled_step(self, input_ids: torch.Tensor, state: DecodeState) -> torch.Tensor:
        """One token through the compiled static-shape step (compiled once per head, re-specialised by
        torch.compile for each new batch size or length)."""
        if self._static_step_compiled is None:
            for module in self.modules():  # weights made on first use (int8's) cannot be made inside the graph
                if hasattr(module, "build_weight"):
                    module.build_weight()
            self._static_step_compiled = torch.compile(self._static_step, dynamic=False, fullgraph=True, options=STEP_COMPILE_OPTIONS)
        cache = state.cache
        position = torch.tensor(cache.length, device=input_ids.device)
        logits = self._static_step_compiled(input_ids, position, cache.k, cache.v, state.memory_kv, state.memory_mask, state.cells, state.pointer_cells)
        cache.advance(1)
        return logits

    def _static_step(
        self, ids: torch.Tensor, position: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, memory_kv, memory_mask, cells, pointer_cells=None
    ) -> torch.Tensor:
        """One token (B, 1) at `position` (a 0-d tensor, so one graph serves every step): its keys/values
        written into the full-length caches (layers, B, H, T, hd), attention over the positions up to it."""
        x = self.embed(ids) + self.pos.weight.index_select(0, position.view(1))[None]
        where = None
        filled = (torch.arange(k_cache.size(3), device=ids.device) <= position)[None, None, None, :]
        for i, block in enumerate(self.blocks):
            x = self._read(x, cells, i)
            if pointer_cells is not None and i == len(self.blocks) - 1:
                read, _, where = self.pointer(x, pointer_cells)
                x = x + read
            attn, B = block.attn, ids.size(0)
            inner = attn.proj.in_features
            q, k, v = attn.qkv(block.ln1(x)).view(B, 1, 3, attn.heads, inner // attn.heads).permute(2, 0, 3, 1, 4)
            k_cache[i].index_copy_(2, position.view(1), k.to(k_cache.dtype))
            v_cache[i].index_copy_(2, position.view(1), v.to(v_cache.dtype))
            y = attention(q, k_cache[i].to(q.dtype), v_cache[i].to(q.dtype), mask=filled)
            x = x + attn.proj(y.transpose(1, 2).reshape(B, 1, inner))
            x = x + block.cross(block.ln_cross(x), memory_kv[i], memory_mask)
            x = x + block.mlp(block.ln2(x))
        return self._logits(self.norm(self._read(x, cells, len(self.blocks)))[:, -1], where[:, -1] if where is not None else None)

    def _logits(self, h: torch.Tensor, where: torch.Tensor | None = None) -> torch.Tensor:
        """Vocabulary logits, tied to the input embedding, always in fp32: under bf16 autocast, logits
        rounded to bf16 (steps of ~0.03) flip near-tied tokens and bf16 decoding drifts from fp32's. With
        pointer_place_words, plus each word's weights on where the pointer found (x, y, |x|, |y|)."""
        with torch.autocast(h.device.type, enabled=False):
            logits = F.linear(h.float(), self.embed.weight.float())
            if self.place_words is not None and where is not None:
                # times WORD_GAIN, so at a head's learning rate a word's weights move within a run (as VQA's word terms)
                # called, not read as .weight: low-rank may have factored the layer
                place = place_features(where.float()).to(next(self.place_words.parameters()).dtype)
                logits = logits + WORD_GAIN * self.place_words(place).float()
            return logits

    def reorder(self, state: DecodeState, rows: torch.Tensor) -> None:
        if state.cache is not None:
            state.cache.reorder(rows)  # cross-attention keys are per image and beams stay within an image


def _load_gpt2(cfg: CaptionHead.Config):
    """Load a GPT-2 checkpoint and set the head's shape from it (width, depth, heads, vocabulary)."""
    from transformers import GPT2LMHeadModel

    try:
        gpt2 = GPT2LMHeadModel.from_pretrained(cfg.init_from)
    except (OSError, ValueError) as err:
        raise ConfigError(f"caption head init_from: cannot load GPT-2 from '{cfg.init_from}' ({str(err).splitlines()[0]})") from None
    g = gpt2.config
    if g.activation_function not in ("gelu_new", "gelu_pytorch_tanh", "gelu"):
        raise ConfigError(f"caption head init_from: unsupported GPT-2 activation '{g.activation_function}'")
    cfg.dim, cfg.depth, cfg.heads, cfg.vocab_size = g.n_embd, g.n_layer, g.n_head, g.vocab_size
    cfg.mlp_ratio = (g.n_inner or 4 * g.n_embd) / g.n_embd
    cfg.act = "gelu" if g.activation_function == "gelu" else "gelu_tanh"
    cfg.max_len = min(cfg.max_len, g.n_positions)
    cfg.init_from = ""  # the weights now live in this model; a saved copy must not reload them
    return gpt2


def gpt2_state_dict(gpt2: nn.Module, max_len: int) -> dict[str, torch.Tensor]:
    """GPT-2's weights under this head's names (its Conv1D weights transposed); no cross-attention."""
    sd = {k.removeprefix("transformer."): v for k, v in gpt2.state_dict().items()}
    out = {"embed.weight": sd["wte.weight"], "pos.weight": sd["wpe.weight"][:max_len], "norm.weight": sd["ln_f.weight"], "norm.bias": sd["ln_f.bias"]}
    names = {"ln_1": "ln1", "ln_2": "ln2", "attn.c_attn": "attn.qkv", "attn.c_proj": "attn.proj", "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2"}
    for i in range(gpt2.config.n_layer):
        for theirs, ours in names.items():
            weight = sd[f"h.{i}.{theirs}.weight"]
            out[f"blocks.{i}.{ours}.weight"] = weight if theirs.startswith("ln") else weight.t().contiguous()
            out[f"blocks.{i}.{ours}.bias"] = sd[f"h.{i}.{theirs}.bias"]
    return out
