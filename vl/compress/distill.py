"""Teacher-student distillation of a VLModel: a smaller student learns from a frozen teacher and from the
ground truth at once (Hinton et al. 2015; hidden states as in TinyBERT / FitNets; attention maps as in
MiniLM).

`Distiller` wraps the student and answers the student's own forward API (`forward(pixel_values,
task=... | tasks={...})`), so the training loop, the task kinds and checkpoints see an ordinary model;
each head's "loss" becomes

    ground_truth * its own loss + logits * T^2 KL(teacher || student at temperature T)
    + (hidden * MSE(projected student blocks, teacher blocks) + attention * KL(attention maps)) / heads

(the encoder terms are computed once per encoder pass and shared out over the heads that read it). The
teacher runs in eval mode under no_grad and is not a submodule: it is neither trained nor saved. Block
outputs are captured with torchdistill's ForwardHookManager.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchdistill.core.forward_hook import ForwardHookManager

from vl.errors import ConfigError
from vl.experiment import ExperimentConfig

TEMPERATURE_HELP = "distill.temperature must be positive (2-4 is usual)"


@dataclass
class DistillConfig:
    """How a student learns from its teacher (the `distill:` section of a configs/distill/*.yaml)."""

    temperature: float = 2.0  # softens both sides' distributions; the KL is scaled by T^2
    logits: float = 1.0  # weight of the KL on every head's logits (caption tokens, answers, tags...)
    ground_truth: float = 1.0  # weight of each head's own loss against the labels
    hidden: float = 1.0  # weight of the encoder block outputs matched through learned projections (MSE)
    attention: float = 0.0  # weight of the encoder attention maps matched (KL, heads averaged)
    # [student block, teacher block] pairs to match; empty: each student block to the teacher block at the
    # same relative depth (student 0 of 2 -> teacher 1 of 4, student 1 -> teacher 3)
    layers: list[list[int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ConfigError(f"{TEMPERATURE_HELP}, got {self.temperature}")
        weights = {"logits": self.logits, "ground_truth": self.ground_truth, "hidden": self.hidden, "attention": self.attention}
        if any(w < 0 for w in weights.values()) or not any(weights.values()):
            raise ConfigError(f"distill weights must be >= 0 and not all 0, got {weights}")
        if any(len(pair) != 2 for pair in self.layers):
            raise ConfigError(f"distill.layers holds [student block, teacher block] pairs, got {self.layers}")


@dataclass
class DistillExperimentConfig(ExperimentConfig):
    """An experiment config with a `distill:` section (configs/distill/*.yaml). A distilled model's saved
    train_config.yaml has one, so readers of saved configs read them with this class."""

    distill: DistillConfig = field(default_factory=DistillConfig)


def block_pairs(student_depth: int, teacher_depth: int, layers: list[list[int]]) -> list[tuple[int, int]]:
    """The (student, teacher) encoder blocks to match: `layers`, or each student block to the teacher block
    ending at the same fraction of the depth."""
    pairs = [tuple(p) for p in layers] or [(i, (i + 1) * teacher_depth // student_depth - 1) for i in range(student_depth)]
    for s, t in pairs:
        if not (0 <= s < student_depth and 0 <= t < teacher_depth):
            raise ConfigError(f"distill.layers pair [{s}, {t}] is outside the student's {student_depth} or the teacher's {teacher_depth} blocks")
    return pairs


def soft_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float, mask: torch.Tensor | None = None) -> torch.Tensor:
    """T^2 * KL(softmax(teacher / T) || softmax(student / T)) over the last axis, averaged over the rows
    (the positions where `mask` is True, when given)."""
    log_p_s = F.log_softmax(student.float() / temperature, dim=-1)
    log_p_t = F.log_softmax(teacher.float() / temperature, dim=-1)
    per_row = (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1)
    if mask is not None:
        per_row = per_row[mask]
    return per_row.mean() * temperature**2 if per_row.numel() else student.sum() * 0


def binary_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL between the per-label Bernoulli distributions (multi-label heads such as tags), averaged."""
    p_t = torch.sigmoid(teacher.float() / temperature)
    target = F.binary_cross_entropy_with_logits(teacher.float() / temperature, p_t)  # the teacher's entropy
    return (F.binary_cross_entropy_with_logits(student.float() / temperature, p_t) - target) * temperature**2


def logits_kl(kind: str, student: dict[str, Any], teacher: dict[str, Any], batch: dict[str, Any], temperature: float) -> torch.Tensor | None:
    """The KD term of one head's outputs, by head type; None when the head has no logits to match."""
    if kind == "retrieval":
        if "logits_per_image" not in student:
            return None
        s, t = student["logits_per_image"], teacher["logits_per_image"]
        return (soft_kl(s, t, temperature) + soft_kl(s.t(), t.t(), temperature)) / 2
    if "logits" not in student:
        return None
    s, t = student["logits"], teacher["logits"]
    if kind == "tag":
        return binary_kl(s, t, temperature)
    mask = batch["labels"] != -100 if s.dim() == 3 and "labels" in batch else None  # text: the real tokens only
    return soft_kl(s, t, temperature, mask)


def attention_map(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The head-averaged attention probabilities (B, N, N) of an EncoderBlock given its input x."""
    attn = block.attn
    B, N, _ = x.shape
    q, k, _ = attn.qkv(block.ln1(x)).view(B, N, 3, attn.heads, attn.proj.in_features // attn.heads).permute(2, 0, 3, 1, 4)
    return (q @ k.transpose(-1, -2) * q.size(-1) ** -0.5).float().softmax(-1).mean(1)


class Distiller(nn.Module):
    """The student (trained, saved) with the projections from its blocks to the teacher's (trained, not
    saved); the teacher is held outside the module tree. forward() is the student's, with distilled losses."""

    def __init__(self, student: nn.Module, teacher: nn.Module, cfg: DistillConfig):
        super().__init__()
        self.student, self.cfg = student, cfg
        self.__dict__["teacher"] = teacher.eval().requires_grad_(False)  # not a submodule: no gradient, no state_dict
        s_blocks, t_blocks = _blocks(student, "student"), _blocks(teacher, "teacher")
        self.pairs = block_pairs(len(s_blocks), len(t_blocks), cfg.layers) if (cfg.hidden or cfg.attention) else []
        self.project = nn.ModuleList(nn.Linear(_width(s_blocks[s]), _width(t_blocks[t])) for s, t in self.pairs)
        self.hooks: dict[str, ForwardHookManager] = {}
        for name, model, index in (("student", student, 0), ("teacher", teacher, 1)):
            manager = ForwardHookManager(torch.device("cpu"))
            for pair in self.pairs:
                manager.add_hook(model, f"encoder.blocks.{pair[index]}", requires_input=bool(cfg.attention), requires_output=True)
            self.hooks[name] = manager
        self.kinds = {name: spec.get("type", name) for name, spec in student.config.heads.items()}

    def no_weight_decay(self) -> set[str]:
        return {f"student.{n}" for n in self.student.no_weight_decay()}

    def train(self, mode: bool = True) -> Distiller:
        super().train(mode)
        self.teacher.eval()  # always: dropout off, BatchNorm statistics fixed
        return self

    def forward(self, pixel_values: torch.Tensor, task: str | None = None, tasks: dict[str, dict[str, Any]] | None = None, **batch: Any) -> dict[str, Any]:
        """As VLModel.forward; every head's "loss" is its distilled loss (parts in loss_gt, loss_kd, loss_encoder)."""
        single = tasks is None
        if single:
            task = self.student._task(task)
            tasks = {task: batch}
        for manager in self.hooks.values():
            manager.change_target_device(pixel_values.device)
        student = self.student(pixel_values, tasks=tasks)
        teacher = {}
        if self.cfg.logits or self.pairs:  # (with both off, the control arm: ground truth alone)
            with torch.no_grad():
                teacher = self.teacher(pixel_values, tasks=tasks)
        encoder = self._encoder_loss() / len(tasks) if self.pairs else None
        for name, out in student.items():
            gt = out.get("loss")
            kd = logits_kl(self.kinds[name], out, teacher[name], tasks[name], self.cfg.temperature) if self.cfg.logits else None
            parts = {"loss_gt": gt, "loss_kd": kd, "loss_encoder": encoder}
            weights = {"loss_gt": self.cfg.ground_truth, "loss_kd": self.cfg.logits, "loss_encoder": 1.0}
            out.update({k: v for k, v in parts.items() if v is not None})
            out["loss"] = sum(weights[k] * v for k, v in parts.items() if v is not None)
        return student[task] if single else student

    def _encoder_loss(self) -> torch.Tensor:
        s_io, t_io = self.hooks["student"].pop_io_dict(), self.hooks["teacher"].pop_io_dict()
        total = torch.zeros((), device=next(self.student.parameters()).device)
        s_blocks, t_blocks = _blocks(self.student, "student"), _blocks(self.teacher, "teacher")
        for (s, t), project in zip(self.pairs, self.project):
            s_key, t_key = f"encoder.blocks.{s}", f"encoder.blocks.{t}"
            s_out, t_out = s_io[s_key]["output"], t_io[t_key]["output"]
            if s_out.shape[1] != t_out.shape[1]:
                raise ConfigError(
                    f"student block {s} has {s_out.shape[1]} tokens, teacher block {t} {t_out.shape[1]}: give the student the "
                    "teacher's image_size and patch_size, or set distill.hidden and distill.attention to 0"
                )
            if self.cfg.hidden:
                total = total + self.cfg.hidden * F.mse_loss(project(s_out).float(), t_out.float())
            if self.cfg.attention:
                with torch.no_grad():
                    t_map = attention_map(t_blocks[t], _first(t_io[t_key]["input"]))
                s_map = attention_map(s_blocks[s], _first(s_io[s_key]["input"]))
                kl = (t_map * (t_map.clamp_min(1e-8).log() - s_map.clamp_min(1e-8).log())).sum(-1).mean()
                total = total + self.cfg.attention * kl
        return total / max(len(self.pairs), 1)


def _blocks(model: nn.Module, who: str) -> nn.ModuleList:
    blocks = getattr(model.encoder, "blocks", None)
    if blocks is None:
        raise ConfigError(f"the {who}'s encoder ({type(model.encoder).__name__}) has no `blocks`; set distill.hidden and distill.attention to 0")
    return blocks


def _first(inputs: Any) -> torch.Tensor:
    """A hooked module's first positional input (the hook unwraps a 1-tuple itself)."""
    return inputs[0] if isinstance(inputs, tuple) else inputs


def _width(block: nn.Module) -> int:
    return block.ln1.normalized_shape[0]
