"""Data specs -> rows (`shapes:<split>`, `faces:<split>[:<label>]`, `coco:...`, `karpathy:...`, `vqa:...`),
image decoding that names bad files, (image, caption) pairs, and the epoch sampler training uses."""

from __future__ import annotations

import importlib
from dataclasses import replace
from typing import Any

import torch
from datasets import Dataset, Image, List
from PIL import Image as PILImage

from vl.data.activitynet import load_activitynet
from vl.data.coco import load_coco_captions
from vl.data.faces import FACE_SPLITS, FacesConfig
from vl.data.faces.dataset import build_faces_dataset
from vl.data.images import read_image
from vl.data.karpathy import load_karpathy
from vl.data.msrvtt import load_msrvtt
from vl.data.shapes import SPLITS
from vl.data.shapes.dataset import build_dataset, to_caption_dataset, to_vqa_dataset
from vl.data.shapes.questions import QUESTION_FAMILIES
from vl.data.shapes360 import SPLITS as SHAPES360_SPLITS
from vl.data.shapes360 import build_360_dataset
from vl.data.shapes_video import SPLITS as VIDEO_SPLITS
from vl.data.shapes_video import ShapesVideoConfig
from vl.data.shapes_video.dataset import build_video_dataset
from vl.data.video import read_video, sample_indices
from vl.data.vqa import load_vqa
from vl.errors import ConfigError, DataFormatError, did_you_mean

SPEC_HELP = (
    "shapes:<split> | faces:<split> | coco:<captions.json>:<image folder> | karpathy:<dataset.json>:<image root>:<split> "
    "| shapes_video:<split> | msrvtt:<videodatainfo.json>:<video folder>[:<split>]"
)
VQA_SPEC_HELP = "shapes:<split> | vqa:<questions.json>:<annotations.json>:<image folder>"
TAG_SPEC_HELP = "shapes:<split> | shapes360:<split>[:<roll in pixels>]"
LABEL_FIELDS = ("expression", "yaw", "identity")
LABEL_SPEC_HELP = f"faces:<split>:<{'|'.join(LABEL_FIELDS)}> | shapes_video:<split>:action"
EVENT_SPEC_HELP = "shapes_video:<split> | activitynet:<activitynet.json>:<video folder>[:<subset>]"
MEDIA_KEYS = ("image", "frames", "video")  # what a row's media is in: an image, a clip's stored frames, a video file


SYNTHETIC_SPLIT = "gan"  # shapes:gan, the scenes a scene-graph GAN draws for data.gan_augment


def _parse(spec: str) -> tuple[str, list[str]]:
    kind, _, rest = spec.partition(":")
    return kind, rest.split(":") if rest else []


def _world_split(spec: str, world: str, cfg: Any, known: tuple[str, ...], limit: int | None) -> tuple[str, Any]:
    """(split, cfg sized to the split's first `limit` items) for a `<world>:<split>...` data spec."""
    split = _parse(spec)[1][0]
    if split not in known:
        raise ConfigError(f"data spec '{spec}': unknown {world.title()} split '{split}'{did_you_mean(split, known)}")
    n = limit if limit is not None else cfg.splits.get(split)
    if not n:
        raise ConfigError(f"data spec '{spec}': no size for split '{split}'; set data.{world}.splits.{split}=N")
    return split, replace(cfg, splits={**cfg.splits, split: n})


def _shapes(spec: str, data: Any, limit: int | None) -> Dataset:
    """A whole Shapes split (images, captions, questions, tags, scene graph), its first `limit` images.
    `shapes:gan` is the scenes data.gan_augment synthesizes with a scene-graph generator (gan.scene_augment)."""
    if spec == f"shapes:{SYNTHETIC_SPLIT}":
        rows = importlib.import_module("gan.scene_augment").synthetic_scenes(data.shapes, data.gan_augment)
        return rows.select(range(min(limit, len(rows)))) if limit is not None else rows
    split, cfg = _world_split(spec, "shapes", data.shapes, SPLITS, limit)
    return build_dataset(cfg, splits=[split])[split]


def _shapes_video(spec: str, cfg: ShapesVideoConfig, limit: int | None) -> Dataset:
    """A whole Shapes video split (frames, captions, action, objects, events), its first `limit` clips;
    clip_id is its image_id (the column every task keys its rows by)."""
    split, cfg = _world_split(spec, "shapes_video", cfg, VIDEO_SPLITS, limit)
    return build_video_dataset(cfg, splits=[split])[split].rename_column("clip_id", "image_id")


def _faces(spec: str, faces: FacesConfig, limit: int | None) -> Dataset:
    """A whole Faces split (images, identity, yaw, expression, captions), its first `limit` images."""
    split, cfg = _world_split(spec, "faces", faces, FACE_SPLITS, limit)
    return build_faces_dataset(cfg, splits=[split])[split]


def open_labels(spec: str, data: Any, limit: int | None = None) -> Dataset:
    """Single-label classification rows (image, image_id, label, and the Faces columns) of the first `limit` images."""
    kind, parts = _parse(spec)
    if kind == "shapes_video" and len(parts) == 2 and parts[1] == "action":
        ds = _shapes_video(spec, data.shapes_video, limit)
        return ds.rename_column("action", "label").cast_column("frames", List(Image(decode=False)))
    if kind != "faces" or len(parts) != 2 or parts[1] not in LABEL_FIELDS:
        raise ConfigError(f"classification data spec '{spec}' is not one of: {LABEL_SPEC_HELP}")
    ds = _faces(spec, data.faces, limit)
    field = parts[1]
    ds = ds.map(lambda col: {"label": [str(v) for v in col]}, input_columns=field, batched=True)
    return ds.cast_column("image", Image(decode=False))


def open_vqa(spec: str, data: Any, limit: int | None = None) -> Dataset:
    """VQA-form rows (one per question: image, ids, question, 10 answers, types; Shapes rows also name
    the question's family and the boxes of the objects it points at) of the first `limit` images."""
    kind, parts = _parse(spec)
    if kind == "shapes" and len(parts) == 1:
        ds = to_vqa_dataset(_shapes(spec, data, limit), grounding=True)
        ds = ds.map(lambda t: {"question_family": [QUESTION_FAMILIES[x] for x in t]}, input_columns="question_type", batched=True)
    elif kind == "vqa" and len(parts) == 3:
        ds = load_vqa(*parts)
        if limit is not None:
            ids = ds["image_id"]
            first = list(dict.fromkeys(ids))[:limit]
            keep = set(first)
            ds = ds.select([i for i, x in enumerate(ids) if x in keep])
    else:
        raise ConfigError(f"VQA data spec '{spec}' is not one of: {VQA_SPEC_HELP}")
    return ds.cast_column("image", Image(decode=False))


def open_events(spec: str, data: Any, limit: int | None = None) -> Dataset:
    """Temporal event rows (the clip's media, image_id, duration in seconds, segments [{label, start, end}]
    in seconds) of the first `limit` clips."""
    kind, parts = _parse(spec)
    if kind == "shapes_video" and len(parts) == 1:
        fps = data.shapes_video.fps
        ds = _shapes_video(spec, data.shapes_video, limit)

        def segments(events: list[list[dict]]) -> dict[str, list]:
            seconds = [[{"label": e["action"], "start": e["start"] / fps, "end": (e["end"] + 1) / fps} for e in clip] for clip in events]
            return {"segments": seconds, "duration": [data.shapes_video.frames / fps] * len(events)}

        ds = ds.map(segments, input_columns="events", batched=True)
        return ds.select_columns(["frames", "image_id", "duration", "segments"]).cast_column("frames", List(Image(decode=False)))
    if kind == "activitynet" and len(parts) in (2, 3):
        ds = load_activitynet(*parts).rename_column("video_id", "image_id").remove_columns("subset")
        return ds.select(range(limit)) if limit is not None and len(ds) > limit else ds
    raise ConfigError(f"event data spec '{spec}' is not one of: {EVENT_SPEC_HELP}")


def open_tags(spec: str, data: Any, limit: int | None = None) -> Dataset:
    """Tagging rows (image, image_id, tags) of the first `limit` images."""
    kind, parts = _parse(spec)
    if kind == "shapes" and len(parts) == 1:
        ds = _shapes(spec, data, limit).select_columns(["image", "image_id", "tags"])
    elif kind == "shapes360" and len(parts) in (1, 2):
        split, cfg = _world_split(spec, "shapes360", data.shapes360, SHAPES360_SPLITS, limit)
        roll = int(parts[1]) if len(parts) > 1 else 0  # pixels: the same panoramas from another heading
        ds = build_360_dataset(replace(cfg, roll=roll), [split])[split]
    else:
        raise ConfigError(f"tagging data spec '{spec}' is not one of: {TAG_SPEC_HELP}")
    return ds.cast_column("image", Image(decode=False))


def open_captions(spec: str, data: Any, limit: int | None = None) -> Dataset:
    """Caption-form rows (image, image_id, file_name, captions) for a data spec; images stay undecoded.
    Shapes rows keep their scene graph (what the caption truth reader checks against); Faces rows their
    labels (identity, yaw, expression), which GAN augmentation redraws and the face truth reader reads."""
    kind, parts = _parse(spec)
    if kind == "shapes" and len(parts) == 1:
        shapes = _shapes(spec, data, limit)
        ds = to_caption_dataset(shapes).add_column("scene", shapes["scene"])  # the scene: is a caption true of it?
    elif kind == "faces" and len(parts) == 1:
        ds = _faces(spec, data.faces, limit)
    elif kind == "coco" and len(parts) == 2:
        ds = load_coco_captions(*parts)
    elif kind == "karpathy" and len(parts) == 3:
        ds = load_karpathy(*parts).remove_columns("split")
    elif kind == "shapes_video" and len(parts) == 1:  # clips: frames, captions, and their action and events
        return _shapes_video(spec, data.shapes_video, limit).cast_column("frames", List(Image(decode=False)))
    elif kind == "msrvtt" and len(parts) in (2, 3):
        ds = load_msrvtt(*parts).rename_column("video_id", "image_id").remove_columns("split")
        return ds.select(range(limit)) if limit is not None and len(ds) > limit else ds
    else:
        raise ConfigError(f"data spec '{spec}' is not one of: {SPEC_HELP}")
    if limit is not None and len(ds) > limit:
        ds = ds.select(range(limit))
    return ds.cast_column("image", Image(decode=False))  # decoded by read_image, which names bad files


class CaptionPairs(torch.utils.data.Dataset):
    """Every (image, caption) pair of caption-form rows: item k is caption j of row i. `rows` is a
    datasets.Dataset, or any map-style dataset of rows (e.g. with GAN views) given with `counts`, the
    number of captions of each row."""

    def __init__(self, rows: Any, counts: list[int] | None = None):
        self.rows = rows
        counts = counts if counts is not None else [len(caps) for caps in rows["captions"]]
        self.index = [(i, j) for i, n in enumerate(counts) for j in range(n)]
        if not self.index:
            raise DataFormatError("the training data has no captions")

    def __len__(self) -> int:
        return len(self.index)

    def image_ids(self) -> list[Any]:
        """The image_id of every item (without decoding an image)."""
        ids = image_id_column(self.rows)
        return [ids[i] for i, _ in self.index]

    def __getitem__(self, k: int) -> dict[str, Any]:
        i, j = self.index[k]
        row = self.rows[i]
        media = {key: row[key] for key in MEDIA_KEYS if key in row}
        scene = {"scene": row["scene"]} if "scene" in row else {}  # Shapes: where the objects a caption names are
        return {**media, **scene, "caption": row["captions"][j], "image_id": row["image_id"]}


def column(rows: Dataset, name: str) -> list[Any]:
    """A column of a datasets.Dataset as a list. Since datasets 4, `rows[name]` is a lazy Column whose
    `[i]` selects from the table anew each time (about a millisecond a row on Shapes' wide rows: 40 s of
    the demo's start-up once); one slice reads it all at once."""
    values = rows[name]
    return values if isinstance(values, list) else values[:]


def image_id_column(rows: Any) -> list[Any]:
    """The image_id of every row of a datasets.Dataset (or of a dataset of rows that says them)."""
    if hasattr(rows, "image_ids"):
        return rows.image_ids()
    if not hasattr(rows, "column_names") or "image_id" not in rows.column_names:
        raise ConfigError("train.share_images needs rows with an image_id column (synthetic GAN views have none yet)")
    return column(rows, "image_id")


class EpochSampler(torch.utils.data.Sampler):
    """A new permutation each epoch, a pure function of (seed, epoch): resuming mid-run replays the same
    order. With draws=True it yields (index, draw seed) pairs, the draw seed a pure function of (seed,
    epoch, position) too: a Seeded dataset and a seeded() collate make a batch's random draws
    (augmentation, which caption) from it, so they do not depend on when a loader fetches the batch."""

    def __init__(self, n: int, seed: int, draws: bool = False):
        self.n, self.seed, self.epoch, self.draws = n, seed, 0, draws

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.n, generator=g).tolist()
        if not self.draws:
            return iter(order)
        base = (self.seed * 100_003 + self.epoch) * 1_000_003
        return iter((i, base + position) for position, i in enumerate(order))

    def __len__(self) -> int:
        return self.n


class Seeded(torch.utils.data.Dataset):
    """A dataset read with EpochSampler(draws=True): item (i, seed) is (dataset[i], seed)."""

    def __init__(self, dataset: torch.utils.data.Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> tuple[Any, int]:
        i, seed = key
        return self.dataset[i], seed


def seeded(collate: Any) -> Any:
    """collate over Seeded items, with the global generator seeded from the batch's first draw seed (and
    restored after): the batch's random draws are a function of the sampler's seed, epoch and position."""

    def run(pairs: list[tuple[Any, int]]) -> Any:
        items, seeds = zip(*pairs)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seeds[0])
            return collate(list(items))

    return run


def seeded_loader(items: torch.utils.data.Dataset, batch_size: int, seed: int, collate: Any, num_workers: int = 0) -> torch.utils.data.DataLoader:
    """A training loader over `items`: an EpochSampler order, full batches only, and each batch's random
    draws (in `collate`) seeded from the sampler, so a resumed run replays them."""
    return torch.utils.data.DataLoader(
        Seeded(items),
        batch_size=batch_size,
        sampler=EpochSampler(len(items), seed, draws=True),
        collate_fn=seeded(collate),
        drop_last=True,
        num_workers=num_workers,
    )


class ImageReader:
    """Decodes a batch's media: a row's `image`, or a clip: its `frames` (stored images) or its `video`
    (a file or frame folder), `frames` of them sampled uniformly (all when None). With skip=True,
    unreadable media are dropped and remembered."""

    def __init__(self, skip: bool, frames: int | None = None):
        self.skip, self.frames = skip, frames
        self.skipped: list[str] = []

    def read(self, row: dict[str, Any]) -> PILImage.Image | list[PILImage.Image]:
        if "frames" in row:
            stored = row["frames"]
            keep = sample_indices(len(stored), self.frames) if self.frames and stored else range(len(stored))
            return [read_image(stored[i]) for i in keep]
        if "video" in row:
            return read_video(row["video"], self.frames)
        return read_image(row["image"])

    def __call__(self, rows: list[dict[str, Any]]) -> tuple[list[PILImage.Image | list[PILImage.Image]], list[dict[str, Any]]]:
        images, kept = [], []
        for row in rows:
            try:
                images.append(self.read(row))
                kept.append(row)
            except DataFormatError as err:
                if not self.skip:
                    raise
                self.skipped.append(str(err))
        return images, kept
