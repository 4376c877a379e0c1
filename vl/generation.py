"""Decoding for every text head: greedy, beam search (length penalty), top-k / top-p sampling.

A head decodes through three methods (the "decoder protocol"):
    state = head.start(memory, max_len, use_cache, memory_mask)  # per-image state: cross-attention k/v, KV cache
    logits = head.decode_step(input_ids, state)        # (B, V) next-token logits; with a cache, input_ids is
                                                       # the last token only, without one the whole prefix
    head.reorder(state, rows)                          # keep batch rows `rows` (beam search)

The semantics follow transformers' generate() (greedy, sampling, and beam search with
early_stopping=False), so the same model decodes to the same tokens; the loop is lean (a preallocated
KV cache, no per-step processor objects), which is where the speed comes from.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from vl.errors import ConfigError

NEG = -1.0e9  # transformers' "impossible" score, so ties break the same way


@dataclass
class GenerationConfig:
    """How to decode. num_beams > 1 is beam search; do_sample samples (with temperature/top_k/top_p)."""

    max_new_tokens: int = 20
    min_new_tokens: int = 0
    num_beams: int = 1
    length_penalty: float = 1.0
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    num_return_sequences: int = 1  # the best n beams (n <= num_beams), or n samples, of each item: rows item-major
    use_cache: bool = True
    # decode with a torch.compile'd step over a static KV cache (fixed shapes, a position mask): the first
    # call for each batch size and length compiles (tens of seconds), later ones run fused (bench/caption_speed.py)
    compile: bool = False

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1 or not 0 <= self.min_new_tokens <= self.max_new_tokens:
            raise ConfigError(f"need 0 <= min_new_tokens <= max_new_tokens and max_new_tokens >= 1, got {self}")
        if self.num_beams < 1 or (self.num_beams > 1 and self.do_sample):
            raise ConfigError("num_beams must be >= 1, and beam search does not sample (set do_sample=false)")
        if self.temperature <= 0 or self.top_k < 0 or not 0 < self.top_p <= 1:
            raise ConfigError("need temperature > 0, top_k >= 0 and 0 < top_p <= 1")
        if self.num_return_sequences < 1 or (not self.do_sample and self.num_return_sequences > self.num_beams):
            raise ConfigError(
                f"num_return_sequences={self.num_return_sequences} needs as many beams (num_beams >= it) or sampling (do_sample=true); "
                "greedy decoding has one answer per item"
            )
        if self.compile and not self.use_cache:
            raise ConfigError("compile decodes over a static KV cache: it needs use_cache=true")

    def changed(self) -> dict[str, Any]:
        """The fields that differ from the defaults (what a saved model's config records)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != f.default}


class Decoder(Protocol):
    def start(self, memory: torch.Tensor, max_len: int, use_cache: bool, memory_mask: torch.Tensor | None, beams: int = 1, compile: bool = False) -> Any: ...
    def decode_step(self, input_ids: torch.Tensor, state: Any) -> torch.Tensor: ...
    def reorder(self, state: Any, rows: torch.Tensor) -> None: ...


@torch.inference_mode()
def generate(
    decoder: Decoder,
    memory: torch.Tensor,
    bos_token_id: int,
    eos_token_id: int,
    pad_token_id: int,
    config: GenerationConfig | None = None,
    generator: torch.Generator | None = None,
    memory_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Token ids (B * n, T) after BOS for each item's memory (B, M, D) [mask (B, M), True = real token]; EOS
    kept, then padding. n = config.num_return_sequences: each item's n rows are consecutive, best beam first."""
    cfg = config or GenerationConfig()
    if cfg.num_beams > 1:
        return _beam_search(decoder, memory, memory_mask, bos_token_id, eos_token_id, pad_token_id, cfg)
    if cfg.num_return_sequences > 1:  # n samples of each item: its memory n times
        n = cfg.num_return_sequences
        memory = memory.repeat_interleave(n, dim=0)
        memory_mask = None if memory_mask is None else memory_mask.repeat_interleave(n, dim=0)
    return _greedy_or_sample(decoder, memory, memory_mask, bos_token_id, eos_token_id, pad_token_id, cfg, generator)


def _greedy_or_sample(decoder, memory, memory_mask, bos, eos, pad, cfg: GenerationConfig, generator) -> torch.Tensor:
    B = memory.size(0)
    state = decoder.start(memory, cfg.max_new_tokens + 1, cfg.use_cache, memory_mask, compile=cfg.compile)
    out = torch.full((B, cfg.max_new_tokens + 1), pad, dtype=torch.long, device=memory.device)
    out[:, 0] = bos
    finished = torch.zeros(B, dtype=torch.bool, device=memory.device)
    for t in range(cfg.max_new_tokens):
        logits = decoder.decode_step(out[:, t : t + 1] if cfg.use_cache else out[:, : t + 1], state).float()
        if t < cfg.min_new_tokens:
            logits[:, eos] = -float("inf")
        if cfg.do_sample:
            probs = F.softmax(filter_logits(logits / cfg.temperature, cfg.top_k, cfg.top_p), dim=-1)
            token = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        else:
            token = logits.argmax(dim=-1)
        out[:, t + 1] = torch.where(finished, pad, token)
        finished |= token == eos
        if finished.all():
            return out[:, 1 : t + 2]
    return out[:, 1:]


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Logits with everything outside the top-k, then outside the top-p nucleus, set to -inf."""
    if top_k and top_k < logits.size(-1):
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, -float("inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1)  # ascending, as transformers' TopPLogitsWarper
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        drop = cumulative <= 1 - top_p
        drop[:, -1] = False  # always keep the most likely token
        logits = logits.masked_fill(drop.scatter(1, order, drop), -float("inf"))
    return logits


def _beam_search(decoder, memory, memory_mask, bos, eos, pad, cfg: GenerationConfig) -> torch.Tensor:
    B, K, T, lp = memory.size(0), cfg.num_beams, cfg.max_new_tokens, cfg.length_penalty
    dev = memory.device
    state = decoder.start(memory, T + 1, cfg.use_cache, memory_mask, beams=K, compile=cfg.compile)  # cross-attention k/v once per image
    seqs = torch.full((B * K, T + 1), pad, dtype=torch.long, device=dev)  # running beams, BOS first
    seqs[:, 0] = bos
    running = torch.zeros(B, K, device=dev)
    running[:, 1:] = NEG  # at first only beam 0 is live, so the K beams do not start as copies
    best = torch.full((B, K), NEG, device=dev)  # finished hypotheses, best first
    best_seqs = torch.full((B, K, T), pad, dtype=torch.long, device=dev)
    best_filled = torch.zeros(B, K, dtype=torch.bool, device=dev)
    best_len = torch.zeros(B, K, dtype=torch.long, device=dev)
    open_batch = torch.ones(B, 1, dtype=torch.bool, device=dev)  # can this item still improve?
    offset = torch.arange(B, device=dev)[:, None] * K
    top_k_mask = torch.arange(2 * K, device=dev) < K  # only the top K candidates may finish
    for t in range(T):
        logits = decoder.decode_step(seqs[:, t : t + 1] if cfg.use_cache else seqs[:, : t + 1], state)
        logprobs = F.log_softmax(logits.float(), dim=-1)
        if t < cfg.min_new_tokens:
            logprobs[:, eos] = -float("inf")
        V = logprobs.size(-1)
        scores, index = (logprobs.view(B, K, V) + running[:, :, None]).view(B, K * V).topk(2 * K, dim=1)
        rows, token = offset + index // V, index % V  # (B, 2K): source beam row, new token
        stops = (token == eos) | (t + 1 == T)  # at the last step every candidate ends (max length)
        # finished candidates join the best hypotheses, scored by length-normalised log-probability
        ended = scores / (t + 1) ** lp + (~(stops & top_k_mask & open_batch)) * NEG
        cand = torch.cat([seqs[rows.view(-1), 1 : t + 1].view(B, 2 * K, t), token[:, :, None]], dim=2)
        cand = F.pad(cand, (0, T - t - 1), value=pad)
        merged = torch.cat([best, ended], dim=1).topk(K, dim=1).indices
        best = torch.cat([best, ended], dim=1).gather(1, merged)
        best_seqs = torch.cat([best_seqs, cand], dim=1).gather(1, merged[:, :, None].expand(-1, -1, T))
        best_filled = torch.cat([best_filled, stops & top_k_mask], dim=1).gather(1, merged)
        best_len = torch.cat([best_len, torch.full_like(token, t + 1)], dim=1).gather(1, merged)
        # the K best candidates that did not end keep running
        keep = (scores + stops * NEG).topk(K, dim=1).indices
        running = (scores + stops * NEG).gather(1, keep)
        rows, token = rows.gather(1, keep).view(-1), token.gather(1, keep).view(-1)
        seqs = seqs[rows]
        seqs[:, t + 1] = token
        if t + 1 == T:
            break
        decoder.reorder(state, rows)
        worst = torch.where(best_filled, best.min(dim=1, keepdim=True).values, NEG)
        open_batch &= (running[:, :1] / (t + 1) ** lp > worst).any(dim=1, keepdim=True)
        if not open_batch.any():
            break
    n = cfg.num_return_sequences
    return best_seqs[:, :n].flatten(0, 1)[:, : int(best_len[:, :n].max())]
