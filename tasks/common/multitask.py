"""A run's tasks on one shared encoder: every task's data, one processor and one model with all the
heads, a training step that adds the tasks' weighted losses, and an evaluation that reports each task.
A single-task run is the same thing with one task. Each task is reached through its kind (vl.tasks)."""

from __future__ import annotations

from itertools import chain
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator

from tasks.common.build import build_model, build_processor
from vl.config import save_config
from vl.errors import ConfigError
from vl.experiment import ExperimentConfig
from vl.modeling import VLModel
from vl.registry import TASKS
from vl.tasks import TaskKind


class MultiTask:
    """training_step(model, {task: batch}) -> {"loss", "loss/<task>"}; evaluate(model) -> {"val/<task>/<metric>"}."""

    def __init__(self, cfg: ExperimentConfig, accelerator: Accelerator):
        self.cfg, self.accelerator = cfg, accelerator
        self.parts: dict[str, TaskKind] = {}
        for name, task in cfg.task_configs().items():
            kind = cfg.model.heads[name].get("type", name)
            if kind not in TASKS:
                raise ConfigError(f"head '{name}' is a '{kind}' head; no task trains it (tasks: {', '.join(TASKS)})")
            self.parts[name] = TASKS.get(kind)(name, cfg, task)
        self.name = "+".join(self.parts)
        out = Path(cfg.train.output_dir)
        with accelerator.main_process_first():  # the main process builds caches; the others then read them
            for part in self.parts.values():
                part.load()
            self.processor = build_processor(cfg, chain.from_iterable(p.texts() for p in self.parts.values()), out / "tokenizer")
            fields = {name: p.head_fields(self.processor) for name, p in self.parts.items()}
        self.model = build_model(cfg, self.processor, fields)
        for part in self.parts.values():
            part.bind(self.processor, self.model)
        # heads no task trains get no gradient: freeze them, so DDP does not wait for their gradients
        for name, head in self.model.heads.items():
            if name not in self.parts:
                head.requires_grad_(False)

    def describe(self) -> str:
        """One line per task: its training size and weight (and what its kind adds, e.g. answers out of vocabulary)."""
        lines = []
        for name, p in self.parts.items():
            extra = f", {p.describe()}" if p.describe() else ""
            lines.append(f"  {name}: {len(p.train_items())} training items, batch {p.batch_size}, weight {p.weight:g}{extra}")
        return "\n".join(lines)

    @property
    def samples_per_step(self) -> int:
        return sum(p.batch_size for p in self.parts.values())

    @property
    def skipped_images(self) -> list[str]:
        return [s for p in self.parts.values() for s in p.reader.skipped]

    def train_loaders(self, seed: int) -> dict[str, torch.utils.data.DataLoader]:
        return {name: p.train_loader(seed + k) for k, (name, p) in enumerate(self.parts.items())}

    def training_step(self, model: torch.nn.Module, batches: dict[str, dict[str, Any]]) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        total = 0.0
        for name, part in self.parts.items():
            loss = part.loss(model, batches[name])
            out[f"loss/{name}"] = loss.detach()
            total = total + part.weight * loss
        out["loss"] = total
        return out

    def evaluate(self, model: VLModel) -> dict[str, float]:
        """Every task's metrics; every process evaluates its share of the rows and all get the result."""
        model.eval()
        metrics = {}
        for name, part in self.parts.items():
            metrics.update({f"val/{name}/{k}": v for k, v in part.evaluate(model, self.accelerator).items()})
        model.train()
        return metrics

    def save(self, model: VLModel, folder: Path, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        """save_pretrained model (with `state_dict` gathered from every process, when given) and processor,
        and the resolved config beside them."""
        model.save_pretrained(folder, state_dict=state_dict)
        self.processor.save_pretrained(folder)
        save_config(self.cfg, folder / "train_config.yaml")
