"""Task heads: `forward(tokens (B, N, D), batch) -> dict` with "loss" when labels are present."""

from vl.heads import caption, classify, qgen, tag, vqa  # noqa: F401  (register "caption", "classify", "qgen", "tag", "vqa")
from vl.heads.build import build_head
from vl.registry import HEADS

__all__ = ["HEADS", "build_head"]
