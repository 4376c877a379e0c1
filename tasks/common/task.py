"""What every task of a run shares: its data specs, weight and batch size, batches of decoded images,
and the loader. A task kind (caption, vqa, qgen, tag) fills in its data, batches, loss and evaluation."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from accelerate import Accelerator
from datasets import Dataset
from torchvision.transforms import v2

from gan.augment import GANAugmented
from tasks.common.data import EpochSampler, ImageReader
from tasks.common.experiment import ClassicAugmentConfig, ExperimentConfig, TaskConfig
from vl.modeling import VLModel
from vl.processing import VLProcessor


class Rows(torch.utils.data.Dataset):
    """Rows of a datasets.Dataset as training items (images stay undecoded until collate)."""

    def __init__(self, rows: Dataset):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.rows[i]


class ImageGroups(torch.utils.data.Dataset):
    """Question-form rows grouped by image: item i is every row of the i-th image, so a batch encodes
    each image once for all its questions (Shapes asks ~16 per image, VQA v2 ~5)."""

    def __init__(self, rows: Dataset):
        self.rows = rows
        groups: dict[int, list[int]] = {}
        for i, image_id in enumerate(rows["image_id"]):
            groups.setdefault(image_id, []).append(i)
        self.groups = list(groups.values())

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, i: int) -> list[dict[str, Any]]:
        return [self.rows[j] for j in self.groups[i]]


def flatten_groups(groups: list[list[dict[str, Any]]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], torch.Tensor]:
    """(one row per image, every row, image index of every row) of a batch of ImageGroups items."""
    firsts = [g[0] for g in groups]
    rows = [r for g in groups for r in g]
    index = torch.tensor([k for k, g in enumerate(groups) for _ in g])
    return firsts, rows, index


class TaskPart:
    """One task of a run, trained through the head named `name`."""

    def __init__(self, name: str, cfg: ExperimentConfig, task: TaskConfig):
        self.name, self.cfg = name, cfg
        self.train_spec = task.train or cfg.data.train
        self.eval_spec = task.eval or cfg.data.eval
        self.weight = task.weight
        self.batch_size = task.batch_size or cfg.train.batch_size
        self.reader = ImageReader(skip=cfg.data.skip_bad_images)
        self.transform = classic_augmentation(cfg.data.augment)
        self.processor: VLProcessor | None = None
        self.head: torch.nn.Module | None = None

    # --- what a kind provides ------------------------------------------------------------------------
    def open(self, spec: str, limit: int | None = None) -> Dataset:
        raise NotImplementedError

    def texts(self) -> Iterator[str]:
        """The training text this task brings to the tokenizer."""
        raise NotImplementedError

    def head_fields(self, processor: VLProcessor) -> dict[str, Any]:
        """Head config fields only the data and the tokenizer know (token ids, label vocabularies)."""
        return processor.caption_head_ids()

    def train_items(self) -> torch.utils.data.Dataset:
        return self.augmented(Rows(self.train_rows))

    def collate(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def evaluate(self, model: VLModel, accelerator: Accelerator | None = None) -> dict[str, float]:
        raise NotImplementedError

    # --- shared --------------------------------------------------------------------------------------
    label_field: str | None = None  # the row field a `label` column was made from (GAN views relabel it)

    def augmented(self, items: torch.utils.data.Dataset) -> torch.utils.data.Dataset:
        """items, plus GAN views when data.gan_augment.ratio > 0."""
        augment = self.cfg.data.gan_augment
        if augment.ratio <= 0:
            return items
        return GANAugmented(items, augment, self.cfg.data.faces, self.label_field)

    def load(self) -> None:
        self.train_rows = self.open(self.train_spec)
        self.eval_rows = self.open(self.eval_spec, limit=self.cfg.data.eval_images)

    def bind(self, processor: VLProcessor, model: VLModel) -> None:
        self.processor, self.head = processor, model.heads[self.name]

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return model(**batch, task=self.name)["loss"]

    def train_loader(self, seed: int) -> torch.utils.data.DataLoader:
        items = self.train_items()
        return torch.utils.data.DataLoader(
            items,
            batch_size=self.batch_size,
            sampler=EpochSampler(len(items), seed),
            collate_fn=self.collate,
            drop_last=True,
            num_workers=self.cfg.data.num_workers,
        )

    def images(self, rows: list[dict[str, Any]]) -> tuple[list, list[dict[str, Any]]]:
        """Decoded images of `rows` and the rows kept (unreadable ones are skipped only when asked to)."""
        images, kept = self.reader(rows)
        if not kept:
            raise RuntimeError("every image of a batch was unreadable")
        if self.transform is not None:  # training batches only: evaluation decodes with its own reader
            images = [self.transform(image) for image in images]
        return images, kept


def classic_augmentation(cfg: ClassicAugmentConfig) -> Callable | None:
    """torchvision v2 transforms on PIL images for data.augment, or None when it is all off."""
    steps = []
    if cfg.flip:
        steps.append(v2.RandomHorizontalFlip())
    if cfg.shift:
        steps.append(v2.RandomAffine(degrees=0, translate=(cfg.shift, cfg.shift), scale=(1 - cfg.shift, 1 + cfg.shift)))
    if cfg.color:
        steps.append(v2.ColorJitter(brightness=cfg.color, contrast=cfg.color, saturation=cfg.color))
    return v2.Compose(steps) if steps else None


def batches(rows: Dataset, size: int) -> Iterator[list[dict[str, Any]]]:
    """Rows in chunks of `size`, in order."""
    for start in range(0, len(rows), size):
        yield [rows[i] for i in range(start, min(start + size, len(rows)))]


def autocast_of(accelerator: Accelerator | None):
    """A fresh autocast context per call: the accelerator's, or none."""
    return accelerator.autocast() if accelerator is not None else contextlib.nullcontext()
