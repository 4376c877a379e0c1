"""Build a head from its config dict: {"type": <registered name>, ...its Config's fields}."""

from __future__ import annotations

from typing import Any

from torch import nn

from vl.config import from_dict, to_dict
from vl.registry import HEADS


def build_head(name: str, spec: dict[str, Any], memory_dim: int) -> nn.Module:
    """The head `spec` describes, reading encoder tokens of width memory_dim; errors name `heads.<name>.<key>`."""
    spec = dict(spec)
    cls = HEADS.get(spec.pop("type", name))
    return cls(from_dict(cls.Config, spec, prefix=f"heads.{name}."), memory_dim)


def head_spec(head: nn.Module) -> dict[str, Any]:
    """The config dict that rebuilds `head` (what VLConfig stores)."""
    return {"type": head.registry_name, **to_dict(head.cfg)}
