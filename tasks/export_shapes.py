"""Write Shapes items as image files plus the official annotation formats.

    python -m tasks.export_shapes --out data/shapes --split test --n 500 --format coco,karpathy,vqa \
        --preview data/shapes/preview.png [--config configs/shapes/world.yaml] [image_size=96 ...]

Layout (COCO's): OUT/<split>/COCO_<split>_<image_id>.png, OUT/annotations/captions_<split>.json,
OUT/dataset_coco.json (Karpathy), OUT/v2_OpenEnded_mscoco_<split>_questions.json and
OUT/v2_mscoco_<split>_annotations.json (VQA v2).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tqdm import tqdm

from tasks.common.cli import cli
from vl.config import load_config
from vl.data.coco import to_coco_captions
from vl.data.karpathy import to_karpathy
from vl.data.preview import image_grid
from vl.data.schema import write_json
from vl.data.shapes import SPLITS, ShapesConfig, ShapesWorld
from vl.data.vqa import to_vqa
from vl.errors import ConfigError, did_you_mean

FORMATS = ("coco", "karpathy", "vqa")


def export_args(argv: list[str] | None, prog: str, doc: str, splits: tuple[str, ...], formats: tuple[str, ...], default_format: str) -> argparse.Namespace:
    """The export commands' arguments (this one's and tasks.export_shapes_video's), checked."""
    p = argparse.ArgumentParser(prog=f"python -m {prog}", description=doc.split("\n")[0])
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--split", default="test", help=f"one or more of {', '.join(splits)}, comma-separated")
    p.add_argument("--n", type=int, default=None, help="items per split (default: the config's split size)")
    p.add_argument("--format", default=default_format, help=f"one or more of {', '.join(formats)}, comma-separated")
    p.add_argument("--preview", type=Path, default=None, help="also write a PNG grid of samples here")
    p.add_argument("--config", type=Path, default=None, help="the world's YAML (default: built-in defaults)")
    p.add_argument("overrides", nargs="*", help="config overrides, key=value")
    args = p.parse_args(argv)
    args.split, args.format = _choices(args.split, splits, "split"), _choices(args.format, formats, "format")
    if args.n is not None and args.n <= 0:
        raise ConfigError(f"--n is {args.n}; the number of items must be positive")
    return args


@cli
def main(argv: list[str] | None = None) -> int:
    args = export_args(argv, "tasks.export_shapes", __doc__, SPLITS, FORMATS, "coco")
    cfg = load_config(ShapesConfig, args.config, args.overrides)
    splits, formats = args.split, args.format
    world, start = ShapesWorld(cfg), time.perf_counter()
    records: dict[str, list[dict]] = {}
    for split in splits:
        n = args.n or cfg.splits.get(split) or 0
        if n <= 0:
            raise ConfigError(f"no size for split '{split}': pass --n or set splits.{split}=N")
        world.check(split, 0)
        folder = args.out / split
        folder.mkdir(parents=True, exist_ok=True)
        records[split] = []
        for index in tqdm(range(n), desc=f"{split}", unit="img", disable=None):
            item = world.item(split, index)
            item["image"].save(folder / item["file_name"])
            records[split].append(item)
        if "coco" in formats:
            write_json(to_coco_captions(records[split], f"Shapes {split}"), args.out / "annotations" / f"captions_{split}.json")
        if "vqa" in formats:
            questions, annotations = to_vqa(records[split], split)
            write_json(questions, args.out / f"v2_OpenEnded_mscoco_{split}_questions.json")
            write_json(annotations, args.out / f"v2_mscoco_{split}_annotations.json")
    if "karpathy" in formats:
        write_json(to_karpathy(r for split in splits for r in records[split]), args.out / "dataset_coco.json")
    if args.preview is not None:
        sample = next(iter(records.values()))[:16]
        image_grid(
            [r["image"] for r in sample],
            [_preview_text(r, k) for k, r in enumerate(sample)],
            args.preview,
        )
    total = sum(len(r) for r in records.values())
    print(
        f"wrote {total} images ({', '.join(splits)}) as {', '.join(formats)} to {args.out} "
        f"in {time.perf_counter() - start:.1f}s" + (f"; preview: {args.preview}" if args.preview else "")
    )
    return 0


def _preview_text(record: dict, k: int) -> list[str]:
    qa = record["questions"][(3 * k) % len(record["questions"])]  # walk through the question types
    return [record["captions"][0], f"Q: {qa['question']}", f"A: {qa['answer']}"]


def _choices(text: str, valid: tuple[str, ...], what: str) -> list[str]:
    chosen = [t.strip() for t in text.split(",") if t.strip()]
    for c in chosen:
        if c not in valid:
            raise ConfigError(f"unknown {what} '{c}'{did_you_mean(c, valid)}")
    if not chosen:
        raise ConfigError(f"--{what} needs at least one of {', '.join(valid)}")
    return chosen


if __name__ == "__main__":
    sys.exit(main())
