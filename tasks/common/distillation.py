"""A MultiTask whose model is a student learning from a frozen teacher (vl.compress.distill.Distiller):
the student shares the teacher's tokenizer, image processing and answer/tag vocabularies (so their
logits compare), trains through the same loop, evaluates and saves as an ordinary VLModel."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
from accelerate import Accelerator
from PIL import Image

from tasks.common.multitask import MultiTask
from vl.compress.distill import Distiller, DistillExperimentConfig
from vl.errors import ConfigError
from vl.modeling import VLModel
from vl.processing import VLProcessor

VOCABULARIES = ("answers", "tags", "labels")  # what a head's classes are named by: the student takes the teacher's


class Distillation(MultiTask):
    """training_step, evaluate and save as MultiTask's, on the student; self.model is the Distiller."""

    def __init__(self, cfg: DistillExperimentConfig, accelerator: Accelerator, teacher_dir: str | Path, command: str = ""):
        teacher_dir = Path(teacher_dir)
        if not (teacher_dir / "config.json").is_file():
            raise ConfigError(f"--teacher {teacher_dir} is not a saved model folder (no config.json); pass the model/ folder of a training run")
        teacher = VLModel.from_pretrained(teacher_dir).to(accelerator.device)
        teacher_processor = VLProcessor.from_pretrained(teacher_dir)
        super().__init__(student_config(cfg, teacher, teacher_processor, teacher_dir), accelerator, command)
        check_same_inputs(self.processor, teacher_processor)
        self.model = Distiller(self.model, teacher, cfg.distill)
        self.name = f"distil {self.name}"

    def evaluate(self, model: Distiller) -> dict[str, float]:
        return super().evaluate(model.student)

    def save(self, model: Distiller, folder: Path, state_dict: dict[str, torch.Tensor] | None = None, scores: dict[str, float] | None = None) -> None:
        """The student alone (the projections to the teacher's widths only served training)."""
        if state_dict is not None:
            state_dict = {k.removeprefix("student."): v for k, v in state_dict.items() if k.startswith("student.")}
        super().save(model.student, folder, state_dict, scores)


def student_config(cfg: DistillExperimentConfig, teacher: VLModel, processor: VLProcessor, teacher_dir: Path) -> DistillExperimentConfig:
    """cfg with what the student must share with its teacher filled in: the tokenizer (the teacher's
    folder, unless the config names one: then it must be the same), the image normalisation, and each
    head's class vocabulary. A student head the teacher lacks, or of another type, is a ConfigError."""
    heads = {}
    for name, spec in cfg.model.heads.items():
        teacher_spec = teacher.config.heads.get(name)
        if teacher_spec is None:
            raise ConfigError(f"the student's head '{name}' has no teacher head of that name to learn from; the teacher has {', '.join(teacher.config.heads)}")
        kind, teacher_kind = spec.get("type", name), teacher_spec.get("type", name)
        if kind != teacher_kind:
            raise ConfigError(f"the student's head '{name}' is a '{kind}' head but the teacher's is a '{teacher_kind}' head; give it type {teacher_kind}")
        heads[name] = {**spec, **{k: teacher_spec[k] for k in VOCABULARIES if k in teacher_spec}}
    tokenizer = cfg.model.tokenizer if cfg.model.tokenizer.path else replace(cfg.model.tokenizer, path=str(teacher_dir))
    images = processor.image_processor
    model = replace(cfg.model, heads=heads, tokenizer=tokenizer, image_mean=list(images.image_mean), image_std=list(images.image_std))
    return replace(cfg, model=model)


def check_same_inputs(student: VLProcessor, teacher: VLProcessor) -> None:
    """Student and teacher must read the same pixels and the same token ids: refuse otherwise."""
    if student.tokenizer.get_vocab() != teacher.tokenizer.get_vocab():
        raise ConfigError(
            "the student's tokenizer differs from the teacher's, so their caption logits do not compare; "
            "leave model.tokenizer.path empty (the student then takes the teacher's tokenizer)"
        )
    probe = [Image.new("RGB", (37, 23), (200, 30, 90))]
    s, t = student.visual_inputs(probe)["pixel_values"], teacher.visual_inputs(probe)["pixel_values"]
    if s.shape != t.shape or not torch.allclose(s, t):
        raise ConfigError(
            f"the student prepares images differently from the teacher ({tuple(s.shape[1:])} against {tuple(t.shape[1:])}); "
            "give the student's encoder the teacher's image_size"
        )
