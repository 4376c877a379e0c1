"""Compression of trained vl-suite models. Every method ends in a model whose config records what changed
(`config.compression`), so save_pretrained / from_pretrained rebuild the same shapes, no pickled modules:

    distill.py   teacher-student distillation (tasks.distill)
    prune.py     Torch-Pruning of encoder channels and attention heads to a FLOPs target
    lowrank.py   SVD of Linear layers, rank by retained energy
    int8.py      torchao int8 (dynamic activations, or weight-only), stored as plain int8 buffers
    early_exit.py  exits after encoder blocks for vqa/tag/classify heads, a confidence threshold per head
"""

from vl.compress.structure import apply_compression

__all__ = ["apply_compression"]
