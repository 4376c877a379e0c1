"""Compression of trained vl-suite models. Every method ends in a model whose config records what changed
(`config.compression`), so save_pretrained / from_pretrained rebuild the same shapes, no pickled modules:

    lowrank.py   SVD of Linear layers, rank by retained energy
"""

from vl.compress.structure import apply_compression

__all__ = ["apply_compression"]
