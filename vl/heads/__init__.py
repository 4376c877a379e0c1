"""Task heads: `forward(tokens (B, N, D), batch) -> dict` with "loss" when labels are present.
Every module here registers its head with @HEADS.register("<type>") and is imported below."""

from vl.heads.build import build_head
from vl.registry import HEADS, import_modules

import_modules(__name__, __path__)

__all__ = ["HEADS", "build_head"]
