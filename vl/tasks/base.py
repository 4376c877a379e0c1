"""The task-kind contract: how one kind of head is fed, trained, run and scored. Training
(tasks.train's multi-task runner), tasks.evaluate, pipelines and compression reach a head only through
its kind; a kind is one module of vl/tasks/, registered with @TASKS.register("<head type>").

A kind provides (the rest is shared here):
    open(spec, limit)              rows of a data spec (a datasets.Dataset, images undecoded)
    texts()                        training text for the tokenizer                      (default: none)
    head_fields(processor)         head config fields only data and tokenizer know      (default: none)
    decoder_positions(head_cfg)    (config key, positions) of a decoding head           (default: none)
    train_items()                  training items        (default: the rows, with data-side augmentation)
    collate(items)                 a training batch: self.inputs(rows, train=True) + the head's targets
    predict(model, inputs, rows)   one output per row of a batch: the batched inference step
    score(rows, outputs, metrics)  metrics of {row index: output}
    report(rows, outputs, metrics) what tasks.evaluate prints and writes          (default: score as a table)
    data_help, headline            the data specs it takes; the metrics a run's summary line shows
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object
from datasets import Dataset
from tqdm.auto import tqdm

from vl.data.augment import classic_augmentation, with_synthetic_rows, with_synthetic_views
from vl.data.specs import CaptionPairs, ImageReader, column, image_id_column, seeded_loader
from vl.encoders.build import encoder_frames
from vl.errors import ConfigError
from vl.experiment import ExperimentConfig, TaskConfig
from vl.metrics import FAST_METRICS
from vl.modeling import VLModel
from vl.processing import VLProcessor


@dataclass
class Report:
    """What tasks.evaluate shows for one evaluation: the scores (written as JSON), a table to print, the
    model's outputs in the standard results format (written beside the model) and what was scored."""

    scores: dict[str, Any]
    table: str
    what: str
    results: Any = None  # JSON-able, e.g. COCO caption results; None: nothing to write
    results_prefix: str = "results"


class TaskKind:
    """One task of a run, or of an evaluation, through the head named `name` (see the module docstring)."""

    data_help = ""  # the data specs open() takes, for error messages and --help
    headline: tuple[str, ...] = ()  # the metrics a run's one-line summary shows
    eval_batch_size = 64
    asks_questions = False  # its training items are an image's questions (tasks.<name>.questions_per_image applies)
    label_field: str | None = None  # the row field a `label` column was made from (synthetic views relabel it)

    def __init__(self, name: str, cfg: ExperimentConfig, task: TaskConfig | None = None):
        task = task or TaskConfig()
        self.name, self.cfg = name, cfg
        self.train_spec = task.train or cfg.data.train
        self.eval_spec = task.eval or cfg.data.eval
        self.weight = task.weight
        self.batch_size = task.batch_size or cfg.train.batch_size
        self.questions_per_image = task.questions_per_image
        self.generation = cfg.generation_for(name)  # how a decoding head of this task writes text
        if self.questions_per_image and not self.asks_questions:
            raise ConfigError(f"tasks.{name}.questions_per_image applies to question tasks (vqa, qgen), not to a '{self.registry_name}' task: remove it")
        self.reader = ImageReader(skip=cfg.data.skip_bad_images, frames=encoder_frames(cfg.model.encoder))
        self.transform = classic_augmentation(cfg.data.augment)
        self.processor: VLProcessor | None = None
        self.head: torch.nn.Module | None = None

    # --- what a kind provides ------------------------------------------------------------------------
    def open(self, spec: str, limit: int | None = None) -> Dataset:
        raise NotImplementedError

    def texts(self) -> Iterable[str]:
        """The training text this task brings to the tokenizer."""
        return ()

    def head_fields(self, processor: VLProcessor) -> dict[str, Any]:
        """Head config fields only the data and the tokenizer know (token ids, label vocabularies)."""
        return {}

    @classmethod
    def decoder_positions(cls, head_cfg: Any) -> tuple[str, int] | None:
        """(config key, positions with BOS) of the decoder evaluation generates with; None: no decoder."""
        return None

    def train_items(self) -> torch.utils.data.Dataset:
        return with_synthetic_views(Rows(self.train_rows), self.cfg.data, self.label_field)

    def collate(self, items: list[Any]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def caption_pairs(self) -> torch.utils.data.Dataset:
        """Every (image, caption) pair of the training rows, synthetic views included: the training
        items of kinds that learn from captions (captioning, retrieval)."""
        counts = [len(caps) for caps in self.train_rows["captions"]]
        items = with_synthetic_views(Rows(self.train_rows), self.cfg.data, self.label_field)
        return CaptionPairs(items, items.caption_counts(counts) if hasattr(items, "caption_counts") else counts)

    def predict(self, model: VLModel, inputs: dict[str, torch.Tensor], rows: list[dict[str, Any]]) -> list[Any]:
        raise NotImplementedError

    def score(self, rows: Sequence[dict[str, Any]], outputs: dict[int, Any], metrics: Sequence[str] = FAST_METRICS) -> dict[str, float]:
        raise NotImplementedError

    def report(self, rows: Sequence[dict[str, Any]], outputs: dict[int, Any], metrics: Sequence[str]) -> Report:
        scores = self.score(rows, outputs, metrics)
        table = "\n".join(f"{k:22} {v:.4f}" if isinstance(v, float) else f"{k:22} {v}" for k, v in scores.items())
        return Report(scores, table, f"{len(outputs)} items")

    def describe(self) -> str:
        """Anything the run's start-up summary should say about this task's data ('' for nothing)."""
        return ""

    # --- shared: data, the one input path, training --------------------------------------------------
    def load(self) -> None:
        self.train_rows = with_synthetic_rows(self.open(self.train_spec), self.train_spec, self.cfg.data, self.open)
        self.eval_rows = self.open(self.eval_spec, limit=self.cfg.data.eval_images)

    def bind(self, processor: VLProcessor, model: VLModel) -> None:
        self.processor, self.head = processor, model.heads[self.name]

    def inputs(self, rows: list[dict[str, Any]], train: bool = False) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
        """(the encoder's inputs for the rows' media, the rows kept): what training batches and inference
        both feed the model. Unreadable media are skipped only when data.skip_bad_images says so;
        training batches get the classic augmentation (a clip's frames all get the same draw: torchvision's
        v2 transforms treat a list as one sample; a flip swaps left and right, so keep it off for actions)."""
        media, kept = self.reader(rows)
        if train and not kept:
            raise RuntimeError("every image of a training batch was unreadable")
        if train and self.transform is not None:
            media = [self.transform(m) for m in media]
        return (self.processor.visual_inputs(media) if kept else {}), kept

    def outputs(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The head's outputs on a training batch ("loss" among them)."""
        return model(**batch, task=self.name)

    def train_loader(self, seed: int) -> torch.utils.data.DataLoader:
        return seeded_loader(self.train_items(), self.batch_size, seed, self.collate, self.cfg.data.num_workers)

    # --- shared: inference and evaluation ------------------------------------------------------------
    @torch.no_grad()
    def infer(self, model: VLModel, rows: Sequence[dict[str, Any]], accelerator: Accelerator | None = None, batch_size: int = 0) -> dict[int, Any]:
        """predict() over `rows` in batches: {row index: output}. With several processes each takes an
        equal share (padded, so all run as many batches) and every process gets all outputs back."""
        batch_size = batch_size or self.eval_batch_size
        share = _my_share(len(rows), accelerator)
        device = next(model.parameters()).device
        outputs: dict[int, Any] = {}
        starts = range(0, len(share), batch_size)
        main = accelerator is None or accelerator.is_main_process
        for start in tqdm(starts, desc=f"{self.name}", unit="batch", leave=False, disable=not main or len(starts) < 4):
            chunk = share[start : start + batch_size]
            batch_rows = [rows[i] for i in chunk]
            inputs, kept = self.inputs(batch_rows)
            if not kept:
                continue
            position = {id(r): i for i, r in zip(chunk, batch_rows)}
            with accelerator.autocast() if accelerator is not None else contextlib.nullcontext():
                predicted = self.predict(model, {k: v.to(device) for k, v in inputs.items()}, kept)
            outputs.update((position[id(r)], out) for r, out in zip(kept, predicted))
        if accelerator is not None and accelerator.num_processes > 1:
            outputs = dict(gather_object(list(outputs.items())))
        return outputs

    def evaluate(self, model: VLModel, accelerator: Accelerator | None = None) -> dict[str, float]:
        """The periodic evaluation during training: fast metrics on the evaluation rows."""
        return self.score(self.eval_rows, self.infer(model, self.eval_rows, accelerator), FAST_METRICS)


def _my_share(n: int, accelerator: Accelerator | None) -> list[int]:
    """This process's row indices: contiguous, equally many on every process (the last index repeated)."""
    if accelerator is None or accelerator.num_processes == 1 or n == 0:
        return list(range(n))
    per = math.ceil(n / accelerator.num_processes)
    mine = list(range(accelerator.process_index * per, min(n, (accelerator.process_index + 1) * per)))
    return mine + [n - 1] * (per - len(mine))


class Rows(torch.utils.data.Dataset):
    """Rows of a datasets.Dataset as training items (images stay undecoded until collate)."""

    def __init__(self, rows: Dataset):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.rows[i]

    def image_ids(self) -> list[Any]:
        return image_id_column(self.rows)


class LazyRows(Sequence):
    """The items `source[key]` for each of `keys`, fetched when first read and then kept (so a row read
    twice is the same object). A training item can list every row of its image (16 Shapes questions, 5
    captions) while its batch reads only the one or two it draws: fetching every row was a third of the
    demo's step time."""

    def __init__(self, source: Any, keys: Sequence[Any]):
        self.source, self.keys, self.cache = source, keys, {}

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i: int) -> Any:  # type: ignore[override]  # no slices
        if i < 0:
            i += len(self.keys)
        if i not in self.cache:
            self.cache[i] = self.source[self.keys[i]]
        return self.cache[i]


class ImageGroups(torch.utils.data.Dataset):
    """Question-form rows grouped by image: item i is every row of the i-th image, so a batch encodes
    each image once for all its questions (Shapes asks ~16 per image, VQA v2 ~5)."""

    def __init__(self, rows: Dataset):
        self.rows = rows
        groups: dict[int, list[int]] = {}
        for i, image_id in enumerate(column(rows, "image_id")):
            groups.setdefault(image_id, []).append(i)
        self.groups = list(groups.values())

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, i: int) -> LazyRows:
        return LazyRows(self.rows, self.groups[i])

    def image_ids(self) -> list[Any]:
        ids = image_id_column(self.rows)
        return [ids[g[0]] for g in self.groups]


def grouped_inputs(kind: TaskKind, groups: list[list[dict[str, Any]]]) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]], torch.Tensor]:
    """A training batch of ImageGroups items: (each image's inputs once, every row of a kept image (or
    tasks.<name>.questions_per_image of them, drawn at random), the image index of every row)."""
    inputs, kept = kind.inputs([g[0] for g in groups], train=True)
    kept_ids = {id(r) for r in kept}
    groups = [g for g in groups if id(g[0]) in kept_ids]
    if n := kind.questions_per_image:
        groups = [[g[k] for k in torch.randperm(len(g))[:n].tolist()] if len(g) > n else g for g in groups]
    rows = [r for g in groups for r in g]
    index = torch.tensor([k for k, g in enumerate(groups) for _ in g])
    return inputs, rows, index
