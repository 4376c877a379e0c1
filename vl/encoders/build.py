"""Build an encoder from its config dict: {"type": <registered name>, ...its Config's fields}."""

from __future__ import annotations

from typing import Any

from torch import nn

from vl.config import from_dict, to_dict
from vl.registry import ENCODERS


def build_encoder(spec: dict[str, Any], where: str = "encoder") -> nn.Module:
    """The encoder `spec` describes; unknown keys are errors naming `where.<key>`."""
    spec = dict(spec)
    cls = ENCODERS.get(spec.pop("type", "vit"))
    return cls(from_dict(cls.Config, spec, prefix=f"{where}."))


def encoder_frames(spec: dict[str, Any]) -> int | None:
    """The clip length a video encoder's spec takes (its `frames`, or the default); None for image encoders."""
    spec = dict(spec)
    cls = ENCODERS.get(spec.pop("type", "vit"))
    return getattr(from_dict(cls.Config, spec), "frames", None) if getattr(cls, "input_kind", "image") == "video" else None


def encoder_spec(encoder: nn.Module) -> dict[str, Any]:
    """The config dict that rebuilds `encoder` (what VLConfig stores)."""
    return {"type": encoder.registry_name, **to_dict(encoder.cfg)}
