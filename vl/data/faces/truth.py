"""Is a caption of a Faces image true? The world knows each face's yaw and expression, so a generated
caption can be checked for what it claims, not only scored against references: the pose phrase
("turned to the left") and the expression word ("smiling") must be the face's own."""

from __future__ import annotations

import re
from collections.abc import Iterable

from vl.data.faces.catalog import EXPRESSION_WORDS
from vl.data.faces.world import pose_phrase


def says_pose(caption: str, yaw: int) -> bool:
    return pose_phrase(yaw) in caption.lower()


def says_expression(caption: str, expression: str) -> bool:
    """The caption names this expression and no other."""
    text = f" {re.sub(r'[^a-z ]', ' ', caption.lower())} "
    named = {e for e, words in EXPRESSION_WORDS.items() if any(f" {w} " in text for w in words)}
    return named == {expression}


def caption_truth(rows: Iterable[dict], preds: dict[int, str]) -> dict[str, float]:
    """Share of generated captions whose pose phrase / expression / both are right, overall and per yaw
    (`pose/yaw=-60`...). rows: Faces rows with image_id, yaw and expression."""
    by_yaw: dict[int, list[tuple[bool, bool]]] = {}
    for row in rows:
        caption = preds.get(row["image_id"])
        if caption is not None:
            by_yaw.setdefault(row["yaw"], []).append((says_pose(caption, row["yaw"]), says_expression(caption, row["expression"])))
    groups = {"": [hit for hits in by_yaw.values() for hit in hits]} | {f"/yaw={yaw}": by_yaw[yaw] for yaw in sorted(by_yaw)}
    out: dict[str, float] = {}
    for suffix, hits in groups.items():
        out[f"pose{suffix}"] = sum(p for p, _ in hits) / len(hits)
        out[f"expression{suffix}"] = sum(e for _, e in hits) / len(hits)
        out[f"both{suffix}"] = sum(p and e for p, e in hits) / len(hits)
    return out
