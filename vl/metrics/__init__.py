"""Evaluation metrics: COCO caption metrics (pycocoevalcap), the official VQA v2 accuracy, tagging mAP/F1."""

from vl.metrics.caption import CAPTION_METRICS, FAST_METRICS, caption_scores, format_table, spice_status
from vl.metrics.tagging import tag_scores, tune_threshold
from vl.metrics.vqa import normalize_answer, vqa_accuracy

__all__ = [
    "CAPTION_METRICS",
    "FAST_METRICS",
    "caption_scores",
    "format_table",
    "spice_status",
    "normalize_answer",
    "vqa_accuracy",
    "tag_scores",
    "tune_threshold",
]
