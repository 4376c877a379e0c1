"""VQA head: the question, read together with the image tokens, is classified over the training
set's answers; optionally an answer decoder (the caption decoder) also writes the answer as text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vl.errors import ConfigError
from vl.heads.caption import CaptionHead
from vl.heads.fusion import GEOMETRY, FusionKind, PointerFusion, build_fusion, grounding_loss, joint_memory
from vl.layers import init_weights
from vl.registry import HEADS

RELATION_CHANNELS = 16  # pointer relations: the channels a question's words weigh the pointers' geometry into


@dataclass
class TextDecoderConfig:
    """The caption decoder a head writes text with (width and heads follow the head's)."""

    depth: int = 2
    max_len: int = 16  # positions, BOS included
    mlp_ratio: float = 4.0
    label_smoothing: float = 0.0


def build_text_decoder(cfg: Any, dc: TextDecoderConfig) -> CaptionHead:
    """A CaptionHead decoding over the head's joint memory (width cfg.dim)."""
    ids = {k: getattr(cfg, k) for k in ("vocab_size", "bos_token_id", "eos_token_id", "pad_token_id")}
    spec = CaptionHead.Config(
        dim=cfg.dim, depth=dc.depth, heads=cfg.heads, mlp_ratio=dc.mlp_ratio, max_len=dc.max_len, label_smoothing=dc.label_smoothing, **ids
    )
    return CaptionHead(spec, memory_dim=cfg.dim)


@HEADS.register("vqa")
class VQAHead(nn.Module):
    """forward(tokens (B, N, Dm), batch with question_ids/question_mask (Q, L) [question_image (Q,): the
    image of each question, when a batch asks several per image; answer_scores (Q, A);
    answer_input_ids/answer_labels; question_boxes (Q, K, 4) with question_box_mask (Q, K): the objects
    each question points at, which fusion "pointer" learns to aim at; with grounding_kinds also question_kind_boxes,
    question_kind_box_mask and question_kind_pointer (Q, K'): every object of the kinds it asks about]) -> {"logits" (Q, A), "loss"}."""

    @dataclass
    class Config:
        dim: int = 256
        depth: int = 2  # fusion blocks: question self-attention + cross-attention to the image
        fusion: FusionKind = "cross"  # how the question reads the image: cross | joint | film | pointer (vl.heads.fusion)
        grounding_weight: float = 1.0  # fusion "pointer": weight of its loss against question_boxes, when the batch has them
        grounding_kinds: bool = False  # fusion "pointer": also teach the pointers the kinds a question counts or asks about ("how many circles": every circle)
        pointer_relations: bool = False  # fusion "pointer": explicit distance and difference terms (vl.heads.fusion.PointerFusion)
        pointer_film_on_find: bool = False  # fusion "pointer": its FiLM blocks also read what pointer 1 found (counting what matches it)
        heads: int = 4
        mlp_ratio: float = 4.0
        dropout: float = 0.0
        max_len: int = 32  # question positions, BOS included; longer questions are truncated
        answers: list[str] = field(default_factory=list)  # the answer vocabulary, set from the training data
        max_answers: int = 3129  # the vocabulary keeps the most frequent training answers (VQA v2's usual 3,129)
        generative: bool = False  # also train an answer decoder (answers outside the vocabulary become possible)
        decoder: TextDecoderConfig = field(default_factory=TextDecoderConfig)
        vocab_size: int = 0  # set from the tokenizer
        bos_token_id: int = 0
        eos_token_id: int = 0
        pad_token_id: int = 0

        def __post_init__(self) -> None:
            if self.dim % self.heads:
                raise ConfigError(f"vqa head dim {self.dim} is not divisible by heads {self.heads}")
            pointer_only = [name for name in ("pointer_relations", "pointer_film_on_find", "grounding_kinds") if getattr(self, name)]
            if pointer_only and self.fusion != "pointer":
                raise ConfigError(f"vqa head: {', '.join(pointer_only)} work(s) with fusion 'pointer' only, not '{self.fusion}'; set fusion: pointer")

    def __init__(self, cfg: Config, memory_dim: int):
        super().__init__()
        if not cfg.answers:
            raise ConfigError("vqa head has no answers; build it from training data (tasks.train does) or set heads.vqa.answers")
        self.cfg = cfg
        options = {"relations": cfg.pointer_relations, "film_on_find": cfg.pointer_film_on_find} if cfg.fusion == "pointer" else {}
        self.fusion = build_fusion(cfg.fusion, cfg.vocab_size, cfg.dim, cfg.depth, cfg.heads, cfg.max_len, memory_dim, cfg.mlp_ratio, cfg.dropout, **options)
        self.classifier = nn.Sequential(nn.Linear(cfg.dim, 2 * cfg.dim), nn.GELU(), nn.LayerNorm(2 * cfg.dim), nn.Linear(2 * cfg.dim, len(cfg.answers)))
        self.relation_words = self.relation_answer = None
        if getattr(self.fusion, "relations", False):  # pointer relations: the finds' geometry, weighed by the question's words
            self.relation_words = nn.Embedding(cfg.vocab_size, GEOMETRY * RELATION_CHANNELS)
            self.relation_answer = nn.Linear(RELATION_CHANNELS, len(cfg.answers))
        if cfg.generative:
            self.project = nn.Linear(memory_dim, cfg.dim)
            self.decoder = build_text_decoder(cfg, cfg.decoder)
        self.apply(init_weights)
        if isinstance(self.fusion, PointerFusion):
            self.fusion.start_neutral()
        if self.relation_words is not None:
            # one factor at zero, so the term starts at no effect; the other at unit scale, so the words' first
            # steps already move the answer (at the usual std of 0.02 they would need ~50x more)
            nn.init.zeros_(self.relation_words.weight)
            nn.init.normal_(self.relation_answer.weight)

    def forward(self, tokens: torch.Tensor, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        index = batch.get("question_image")  # several questions per image: (Q,) image of each
        pointers = geometry = None
        if isinstance(self.fusion, PointerFusion):
            fused, pointers, geometry = self.fusion.forward_with_pointers(batch["question_ids"], batch["question_mask"], tokens, index)
        else:
            fused = self.fusion(batch["question_ids"], batch["question_mask"], tokens, index)  # (Q, L, D)
        logits = self.answer_logits(fused, batch["question_ids"], batch["question_mask"], geometry)
        out: dict[str, torch.Tensor] = {"logits": logits}
        losses = []
        if pointers is not None and "question_boxes" in batch and self.cfg.grounding_weight:
            out["loss_ground"] = grounding_loss(pointers, *self._grounding_boxes(batch))
            losses.append(self.cfg.grounding_weight * out["loss_ground"])
        if "answer_scores" in batch:
            out["loss_classify"] = soft_cross_entropy(logits, batch["answer_scores"])
            losses.append(out["loss_classify"])
        if self.cfg.generative and "answer_labels" in batch:
            memory, mask = joint_memory(tokens if index is None else tokens[index], fused, batch["question_mask"], self.project)
            out["loss_generate"] = self.decoder.teacher_forced(memory, batch["answer_input_ids"], batch["answer_labels"], mask)["loss"]
            losses.append(out["loss_generate"])
        if losses:
            out["loss"] = sum(losses)
        return out

    def _grounding_boxes(self, batch: dict[str, Any]) -> tuple[torch.Tensor, ...]:
        """What grounding_loss reads: the named objects' boxes (box j: pointer j), with grounding_kinds and a batch that has
        them also every object of the kinds asked about (question_kind_pointer: which pointer each teaches)."""
        boxes, mask = batch["question_boxes"], batch["question_box_mask"]
        if not (self.cfg.grounding_kinds and "question_kind_boxes" in batch):
            return boxes, mask
        named = torch.arange(boxes.size(1), device=boxes.device).expand(boxes.size(0), -1)
        return (
            torch.cat([boxes, batch["question_kind_boxes"]], 1),
            torch.cat([mask, batch["question_kind_box_mask"]], 1),
            torch.cat([named, batch["question_kind_pointer"]], 1),
        )

    def answer_logits(self, fused: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, geometry: torch.Tensor | None = None) -> torch.Tensor:
        """(Q, A) fp32: the classifier on the fused BOS token (it reads the whole question), plus, with pointer
        relations, the pointers' geometry (Q, GEOMETRY) weighed by the question's words (ids, mask (Q, L)): each
        word has RELATION_CHANNELS weights per geometry feature, summed over the question, read by a linear layer
        into the answers. "Is A left of B" is then a linear function of x1 - x2 whose sign a word sets, and "is A on
        the left or the right" one of x1."""
        logits = self.classifier(fused[:, 0]).float()
        if geometry is not None:
            with torch.autocast(logits.device.type, enabled=False):
                words = self.relation_words(ids).float().unflatten(-1, (GEOMETRY, RELATION_CHANNELS))  # (Q, L, GEOMETRY, C)
                channels = torch.einsum("ql,qlgc,qg->qc", mask.float(), words, geometry.float())
                logits = logits + self.relation_answer(channels)
        return logits

    def top_answers(self, logits: torch.Tensor, k: int = 5) -> list[list[dict[str, Any]]]:
        """The k most likely answers of each row with their softmax probability."""
        probs, index = logits.float().softmax(-1).topk(min(k, logits.size(-1)), dim=-1)
        return [[{"answer": self.cfg.answers[i], "score": p} for p, i in zip(ps.tolist(), ix.tolist())] for ps, ix in zip(probs, index)]

    # --- generative answers (the decoder protocol of vl.generation) ------------------------------
    def decoder_memory(self, tokens: torch.Tensor, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        index = batch.get("question_image")
        fused = self.fusion(batch["question_ids"], batch["question_mask"], tokens, index)
        return joint_memory(tokens if index is None else tokens[index], fused, batch["question_mask"], self.project)

    def text_decoder(self) -> CaptionHead:
        if not self.cfg.generative:
            raise ValueError("this vqa head classifies only; train it with heads.vqa.generative=true to generate answers")
        return self.decoder


def soft_cross_entropy(logits: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against each row's answer scores (the VQA soft scores min(1, n/3), normalised to
    sum 1). A row with no answer in the vocabulary (all scores 0) adds nothing; the mean is over the others."""
    scores = scores.float()
    total = scores.sum(-1, keepdim=True)
    target = scores / total.clamp(min=1e-6)
    per_row = -(target * F.log_softmax(logits.float(), dim=-1)).sum(-1)
    has_answer = (total.squeeze(-1) > 0).float()
    return (per_row * has_answer).sum() / has_answer.sum().clamp(min=1)
