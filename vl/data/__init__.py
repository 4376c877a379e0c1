"""Data: the built-in Shapes world and loaders of the standard formats (COCO, Karpathy, VQA v2)."""
