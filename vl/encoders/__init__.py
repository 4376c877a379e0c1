"""Image encoders: `forward_features(pixels (B, C, H, W)) -> tokens (B, N, D)` and `out_dim`."""

from vl.encoders import hf, vit  # noqa: F401  (registers "vit" and "hf")
from vl.encoders.build import build_encoder
from vl.registry import ENCODERS

__all__ = ["ENCODERS", "build_encoder"]
