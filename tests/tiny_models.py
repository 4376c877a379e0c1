"""Small untrained models saved the way training saves them, for tests of what reads model folders."""

from pathlib import Path

import torch

from vl.modeling import VLConfig, VLModel
from vl.processing import VLProcessor, image_processor, train_tokenizer

TEXTS = ["what shape is the red object?", "how many circles are there?", "a red circle left of a blue square", "circle", "2", "yes", "count: 2"]


def every_head_model(folder: Path) -> Path:
    """A model with one head of every kind the pipelines serve (weights + processor in `folder`)."""
    torch.manual_seed(0)
    processor = VLProcessor(image_processor(32), train_tokenizer(TEXTS * 5, vocab_size=120))
    ids = processor.caption_head_ids()
    small = {"dim": 32, "heads": 2}
    heads = {
        "caption": {"type": "caption", "depth": 1, "max_len": 10, **small, **ids},
        "vqa": {"type": "vqa", "depth": 1, "max_len": 12, "answers": ["circle", "2", "yes", "no"], **small, **ids},
        "qgen": {"type": "qgen", "depth": 1, "use_question_type": True, "decoder": {"depth": 1, "max_len": 8}, **small, **ids},
        "tag": {"type": "tag", "tags": ["red", "circle", "red circle"], "threshold": 0.3, **small},
        "retrieval": {"type": "retrieval", "depth": 1, "max_len": 12, "embed_dim": 16, **small, **ids},
    }
    model = VLModel(VLConfig(encoder={"type": "vit", "image_size": 32, "patch_size": 8, "dim": 32, "depth": 1, "heads": 2}, heads=heads)).eval()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def video_model(folder: Path, frames: int = 4) -> Path:
    """A video model with caption, action (classify) and events heads (weights + processor in `folder`)."""
    torch.manual_seed(0)
    processor = VLProcessor(image_processor(32), train_tokenizer(["the red circle moves left while the blue square grows"] * 5, vocab_size=80))
    small = {"dim": 32, "heads": 2}
    actions = ["grow", "move_left", "shrink"]
    heads = {
        "caption": {"type": "caption", "depth": 1, "max_len": 10, **small, **processor.caption_head_ids()},
        "action": {"type": "classify", "labels": actions, **small},
        "events": {"type": "events", "labels": actions, "frames": frames, **small},
    }
    encoder = {"type": "video_vit", "frames": frames, "image_size": 32, "patch_size": 8, "dim": 32, "depth": 1, "heads": 2}
    VLModel(VLConfig(encoder=encoder, heads=heads)).eval().save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
