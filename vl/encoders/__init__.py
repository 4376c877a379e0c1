"""Encoders: `forward_features(inputs) -> tokens (B, N, D)`, `out_dim`, and `input_kind` ("image": a
(B, C, H, W) batch). Every module here registers its encoder with @ENCODERS.register("<type>")."""

from vl.encoders.build import build_encoder
from vl.registry import ENCODERS, import_modules

import_modules(__name__, __path__)

__all__ = ["ENCODERS", "build_encoder"]
