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
from vl.data.specs import seeded_loader
from vl.errors import ConfigError
from vl.experiment import ExperimentConfig
from vl.model_card import write_model_card
from vl.modeling import VLModel
from vl.registry import TASKS
from vl.tasks import TaskKind
from vl.tasks.base import LazyRows


class SharedImages(torch.utils.data.Dataset):
    """Item i: the i-th image that every task trains on, as {task: that task's training items of the
    image} (a caption task has one per caption, a question task one per image). Images are matched by
    image_id; the order is the first task's."""

    def __init__(self, items: dict[str, torch.utils.data.Dataset]):
        self.items = items
        self.by_image: dict[str, dict[Any, list[int]]] = {}
        for name, dataset in items.items():
            if not hasattr(dataset, "image_ids"):
                raise ConfigError(f"train.share_images: task '{name}' does not say which image each training item shows; set train.share_images=false")
            groups: dict[Any, list[int]] = {}
            for k, image_id in enumerate(dataset.image_ids()):
                groups.setdefault(image_id, []).append(k)
            self.by_image[name] = groups
        first, *others = self.by_image.values()
        self.images = [i for i in first if all(i in other for other in others)]
        if not self.images:
            raise ConfigError(
                "train.share_images: the tasks' training data have no image_id in common; train them on the same images or set train.share_images=false"
            )

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, list[Any]]:
        image_id = self.images[i]
        return {name: LazyRows(self.items[name], self.by_image[name][image_id]) for name in self.items}


class MultiTask:
    """training_step(model, {task: batch}) -> {"loss", "loss/<task>"}; evaluate(model) -> {"val/<task>/<metric>"}."""

    def __init__(self, cfg: ExperimentConfig, accelerator: Accelerator, command: str = ""):
        self.cfg, self.accelerator = cfg, accelerator
        self.command = command  # how the run was started, for the model card
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
        if self.cfg.train.share_images:
            return self.cfg.train.batch_size
        return sum(p.batch_size for p in self.parts.values())

    @property
    def skipped_images(self) -> list[str]:
        return [s for p in self.parts.values() for s in p.reader.skipped]

    def train_loaders(self, seed: int) -> dict[str, torch.utils.data.DataLoader]:
        """A loader per task; with train.share_images one loader, "images", whose batches hold every
        task's batch of the same images."""
        if self.cfg.train.share_images:
            images = SharedImages({name: p.train_items() for name, p in self.parts.items()})
            return {"images": seeded_loader(images, self.cfg.train.batch_size, seed, self._collate_shared, self.cfg.data.num_workers)}
        return {name: p.train_loader(seed + k) for k, (name, p) in enumerate(self.parts.items())}

    def _collate_shared(self, images: list[dict[str, list[Any]]]) -> dict[str, dict[str, Any]]:
        """{task: its training batch}: one of each image's items per task (drawn at random), every task's
        images read with the same random draws, so all tasks' pixel_values are the same tensor."""
        seed = int(torch.randint(2**62, ()))
        batches = {}
        for name, part in self.parts.items():
            chosen = [items[int(torch.randint(len(items), ()))] for items in (image[name] for image in images)]
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                batches[name] = part.collate(chosen)
        return batches

    def training_step(self, model: torch.nn.Module, batches: dict[str, dict[str, Any]]) -> dict[str, torch.Tensor]:
        """The weighted sum of the tasks' losses as "loss"; each task's loss, and the parts its head
        reports (loss_<part>: e.g. a VQA head's classify/generate, a student's gt/kd/encoder), for the log."""
        if self.cfg.train.share_images:
            outputs = self._shared_outputs(model, batches["images"])
        else:
            outputs = {name: part.outputs(model, batches[name]) for name, part in self.parts.items()}
        out: dict[str, torch.Tensor] = {}
        for name, o in outputs.items():
            out[f"loss/{name}"] = o["loss"].detach()
            out.update({f"loss/{name}/{k.removeprefix('loss_')}": v.detach() for k, v in o.items() if k.startswith("loss_") and torch.is_tensor(v)})
        out["loss"] = sum(self.parts[name].weight * o["loss"] for name, o in outputs.items())
        return out

    def _shared_outputs(self, model: torch.nn.Module, batches: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Every task's outputs on the same images, from one encoder pass."""
        pixel_values = next(iter(batches.values()))["pixel_values"]
        fields = {}
        for name, batch in batches.items():
            if not torch.equal(batch["pixel_values"], pixel_values):
                raise RuntimeError(f"train.share_images: task '{name}' read its images differently from the others; train without share_images")
            fields[name] = {k: v for k, v in batch.items() if k != "pixel_values"}
        return model(pixel_values, tasks=fields)

    def evaluate(self, model: VLModel) -> dict[str, float]:
        """Every task's metrics; every process evaluates its share of the rows and all get the result."""
        model.eval()
        metrics = {}
        for name, part in self.parts.items():
            metrics.update({f"val/{name}/{k}": v for k, v in part.evaluate(model, self.accelerator).items()})
        model.train()
        return metrics

    def save(self, model: VLModel, folder: Path, state_dict: dict[str, torch.Tensor] | None = None, scores: dict[str, float] | None = None) -> None:
        """save_pretrained model (with `state_dict` gathered from every process, when given) and processor,
        the resolved config beside them, and a model card (README.md) with the final `scores`. Each text
        head's decoding goes into the model's config, so generate() and the pipelines decode as evaluation did."""
        model.config.generation = {name: part.generation.changed() for name, part in self.parts.items() if hasattr(model.heads[name], "text_decoder")}
        model.save_pretrained(folder, state_dict=state_dict)
        self.processor.save_pretrained(folder)
        save_config(self.cfg, folder / "train_config.yaml")
        command = self.command or f"accelerate launch -m tasks.train --config {folder.parent / 'config.yaml'}"
        headline = {f"val/{name}/{metric}" for name, part in self.parts.items() for metric in part.headline}
        final = {k: v for k, v in (scores or {}).items() if k.startswith("val/")}
        write_model_card(folder, model.config.heads, self.cfg.data.eval, final, command, headline)
