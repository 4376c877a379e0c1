"""Video pipelines: `pipeline("video-captioning" | "action-recognition" | "video-event-detection", model=DIR)`
on clips given as files, frame folders, frame lists and arrays; equal to the model called directly; clear errors."""

import numpy as np
import pytest
import torch
from transformers import pipeline

import vl  # noqa: F401 (registers the pipelines)
from vl.data.shapes_video import ShapesVideoWorld
from vl.data.video import sample_indices, write_frames, write_video
from vl.errors import InputError
from vl.modeling import VLModel
from vl.processing import VLProcessor

from .tiny_models import every_head_model, video_model

CLIP = ShapesVideoWorld().item("test", 1)["frames"]  # 8 frames, 64 px


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return video_model(tmp_path_factory.mktemp("video") / "model")


@pytest.fixture(scope="module")
def pipes(model_dir):
    return {t: pipeline(t, model=str(model_dir)) for t in ("video-captioning", "action-recognition", "video-event-detection")}


def test_each_pipeline_answers_in_its_shape(pipes):
    assert set(pipes["video-captioning"](CLIP)[0]) == {"generated_text"}
    ranked = pipes["action-recognition"](CLIP)
    assert [set(r) for r in ranked] == [{"score", "label"}] * 3 and ranked[0]["score"] >= ranked[-1]["score"]
    assert len(pipes["action-recognition"](CLIP, top_k=1)) == 1
    segments = pipes["video-event-detection"](CLIP, threshold=0.0, duration=2.0)
    assert segments and all(set(s) == {"label", "start", "end", "score"} and 0 <= s["start"] < s["end"] <= 2.0 for s in segments)


def test_the_pipeline_equals_the_model_on_the_sampled_frames(pipes, model_dir):
    model, processor = VLModel.from_pretrained(model_dir).eval(), VLProcessor.from_pretrained(model_dir)
    frames = [CLIP[i] for i in sample_indices(len(CLIP), 4)]
    with torch.no_grad():
        probs = model(**processor.visual_inputs([frames]), task="action")["logits"].softmax(-1)[0]
    out = pipes["action-recognition"](CLIP, top_k=3)
    assert [r["label"] for r in out] == [model.heads["action"].cfg.labels[i] for i in probs.argsort(descending=True).tolist()]
    assert out[0]["score"] == pytest.approx(probs.max().item(), abs=1e-6)


def test_every_clip_kind_and_batches(pipes, tmp_path):
    mp4, folder = write_video(CLIP, tmp_path / "clip.mp4"), write_frames(CLIP, tmp_path / "frames")
    array = np.stack([np.asarray(f) for f in CLIP])  # (T, H, W, C) uint8
    tensor = torch.from_numpy(array).permute(0, 3, 1, 2)  # (T, C, H, W)
    recognize = pipes["action-recognition"]
    labels = {kind: recognize(clip, top_k=1)[0]["label"] for kind, clip in {"frames": CLIP, "folder": str(folder), "array": array, "tensor": tensor}.items()}
    assert len(set(labels.values())) == 1  # lossless inputs agree
    assert recognize(str(mp4), top_k=1)[0]["label"] in {"grow", "move_left", "shrink"}
    batch = recognize([CLIP, str(folder), CLIP[:5]], top_k=1, batch_size=2)
    assert len(batch) == 3 and batch[0] == batch[1] and batch[0] == [recognize(CLIP, top_k=1)[0]]
    assert recognize([]) == []


def test_bad_inputs_name_the_fix(pipes, model_dir, tmp_path):
    with pytest.raises(InputError, match="video file not found"):
        pipes["action-recognition"](str(tmp_path / "missing.mp4"))
    (tmp_path / "bad.mp4").write_text("no video here " * 10)
    with pytest.raises(InputError, match="cannot read video"):
        pipes["video-captioning"](str(tmp_path / "bad.mp4"))
    with pytest.raises(InputError, match="cannot read a clip from a int"):
        pipes["action-recognition"](3)
    with pytest.raises(InputError, match="cannot read an image from a int"):
        pipes["action-recognition"]([CLIP[0], 3])  # a frame of a clip
    with pytest.raises(InputError, match="top_k must be a positive integer"):
        pipes["action-recognition"](CLIP, top_k=0)
    with pytest.raises(InputError, match=r"reads clips \(a video encoder\); use pipeline\('video-captioning'\)"):
        pipeline("image-captioning", model=str(model_dir))
    image_model = every_head_model(tmp_path / "image")
    with pytest.raises(InputError, match=r"reads images; use pipeline\('image-captioning'\)"):
        pipeline("video-captioning", model=str(image_model))
