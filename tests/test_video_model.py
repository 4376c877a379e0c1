"""The video encoder (divided space-time attention, inflation from an image encoder) and the heads that
read its tokens unchanged: action recognition and video captioning, trained, saved, loaded, evaluated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from tasks import evaluate, train
from tasks.export_shapes_video import main as export
from vl.config import load_config
from vl.data.shapes_video import ACTIONS
from vl.encoders import build_encoder
from vl.errors import ConfigError
from vl.experiment import ExperimentConfig
from vl.modeling import VLConfig, VLModel
from vl.processing import VLProcessor, image_processor, train_tokenizer

HERE = Path(__file__).parent
VIDEO = str(HERE / "tiny_video.yaml")
IMAGE = {"type": "vit", "image_size": 32, "patch_size": 8, "stem": "conv", "stem_width": 8, "dim": 32, "depth": 2, "heads": 2, "layer_scale": 0.1, "coords": 8}


def test_an_inflated_encoder_is_the_image_encoder_on_every_frame():
    torch.manual_seed(0)
    image = build_encoder(IMAGE).eval()
    video = build_encoder({**IMAGE, "type": "video_vit", "frames": 4}).eval()
    video.inflate(image.state_dict())
    clips = torch.randn(2, 4, 3, 32, 32)
    frame_by_frame = image(clips.flatten(0, 1)).unflatten(0, (2, 4)).flatten(1, 2)
    assert video(clips).shape == (2, 4 * 16, 40)
    torch.testing.assert_close(video(clips), frame_by_frame)
    torch.testing.assert_close(video(clips[:, :3]), frame_by_frame[:, : 3 * 16])  # shorter clips use the first positions


def test_temporal_attention_lets_frames_see_each_other():
    torch.manual_seed(0)
    video = build_encoder({**IMAGE, "type": "video_vit", "frames": 4}).eval()
    for t in video.temporal:
        torch.nn.init.normal_(t.attn.proj.weight, std=0.2)  # as after training
    clips = torch.randn(1, 4, 3, 32, 32)
    changed = clips.clone()
    changed[:, 3] = torch.randn(3, 32, 32)  # only the last frame differs
    first = slice(0, 16)
    assert not torch.allclose(video(clips)[:, first], video(changed)[:, first])  # ...and frame 0's tokens notice
    per_frame = build_encoder({**IMAGE, "type": "video_vit", "frames": 4, "attention": "frames"}).eval()
    torch.testing.assert_close(per_frame(clips)[:, first], per_frame(changed)[:, first])  # the baseline: frames stay independent


def test_the_action_head_reads_the_order_of_frames():
    from vl.heads.build import build_head

    torch.manual_seed(0)
    tokens = torch.randn(2, 4 * 16, 40)  # 4 frames of 16 tokens
    reversed_clip = tokens.unflatten(1, (4, 16)).flip(1).flatten(1, 2)
    spec = {"type": "classify", "labels": ["move_left", "move_right"], "dim": 32, "heads": 2, "frames": 4}
    ordered = build_head("action", spec, 40).eval()
    torch.testing.assert_close(ordered(tokens, {})["logits"], ordered(reversed_clip, {})["logits"])  # starts as the unordered pool
    torch.nn.init.normal_(ordered.ordered.weight, std=0.1)  # as after training
    assert not torch.allclose(ordered(tokens, {})["logits"], ordered(reversed_clip, {})["logits"])
    plain = build_head("action", {**spec, "order": False}, 40).eval()
    assert plain.ordered is None
    torch.testing.assert_close(plain(tokens, {})["logits"], plain(reversed_clip, {})["logits"])  # the control cannot tell
    with pytest.raises(ValueError, match="not a multiple of its 4 frames"):
        ordered(tokens[:, :50], {})


def test_inputs_of_the_wrong_kind_are_clear_errors():
    video = build_encoder({**IMAGE, "type": "video_vit", "frames": 4})
    with pytest.raises(ValueError, match=r"takes clips \(B, T, C, H, W\)"):
        video(torch.randn(2, 3, 32, 32))
    with pytest.raises(ValueError, match="sample at most 4 frames"):
        video(torch.randn(1, 6, 3, 32, 32))
    with pytest.raises(ValueError, match="for clips use encoder type video_vit"):
        build_encoder(IMAGE)(torch.randn(1, 4, 3, 32, 32))
    with pytest.raises(ConfigError, match="encoder.frames is 0"):
        build_encoder({**IMAGE, "type": "video_vit", "frames": 0})


def test_the_processor_stacks_clips():
    from PIL import Image

    processor = VLProcessor(image_processor(32), train_tokenizer(["a red circle moves left"], 60))
    frame = Image.new("RGB", (64, 64), "red")
    assert processor.visual_inputs([[frame] * 3, [frame] * 3])["pixel_values"].shape == (2, 3, 3, 32, 32)
    with pytest.raises(ValueError, match="same number of frames"):
        processor.visual_inputs([[frame] * 3, [frame] * 2])


def test_action_recognition_captioning_and_events_train_save_load_and_evaluate(tmp_path, capsys):
    assert train.main(["--config", VIDEO, f"train.output_dir={tmp_path}"]) == 0
    logs = [json.loads(line) for line in (tmp_path / "logs" / "metrics.jsonl").read_text().splitlines()]
    assert any("val/action/accuracy" in e and "val/caption/CIDEr" in e and "val/events/mAP@0.5" in e for e in logs)
    model = VLModel.from_pretrained(tmp_path / "model")
    assert model.config.encoder["type"] == "video_vit" and len(model.heads["action"].cfg.labels) >= 5
    assert model.heads["action"].cfg.frames == model.encoder.cfg.frames and model.heads["action"].ordered is not None
    argv = ["--model", str(tmp_path / "model"), "--task", "action", "--data", "shapes_video:test:action", "--max-images", "8"]
    assert evaluate.main(argv) == 0
    scores = json.loads(next((tmp_path / "model").glob("scores_action_*.json")).read_text())
    assert 0.0 <= scores["accuracy"] <= 1.0
    assert "accuracy" in capsys.readouterr().out
    argv = ["--model", str(tmp_path / "model"), "--task", "events", "--data", "shapes_video:test", "--max-images", "8"]
    assert evaluate.main(argv) == 0
    scores = json.loads(next((tmp_path / "model").glob("scores_events_*.json")).read_text())
    assert {"mAP@0.5", "mAP", "baseline_mAP@0.5", "frame_accuracy"} <= scores.keys() and set(scores["per_class"]) <= set(ACTIONS)
    detections = json.loads(next((tmp_path / "model").glob("detections_*.json")).read_text())
    assert detections["version"] == "VERSION 1.3" and len(detections["results"]) == 8  # ActivityNet's results format
    assert "baseline_mAP" in capsys.readouterr().out


def test_frame_targets_follow_the_sampled_frames():
    from vl.tasks.events import frame_targets

    row = {"frames": [None] * 8, "duration": 2.0, "segments": [{"label": "grow", "start": 0.5, "end": 1.25}]}  # frames 2..4 of 8 at 4 fps
    assert frame_targets([row], ["grow"], 8)[0, :, 0].tolist() == [0, 0, 1, 1, 1, 0, 0, 0]
    assert frame_targets([row], ["grow"], 4)[0, :, 0].tolist() == [0, 1, 0, 0]  # frames 1, 3, 5, 7 sampled: only 3 is in it
    video = {"video": "clip.mp4", "duration": 2.0, "segments": row["segments"]}
    assert frame_targets([video], ["grow"], 4)[0, :, 0].tolist() == [0, 1, 0, 0]  # centres 0.25, 0.75, 1.25, 1.75 s


def test_inflate_from_an_image_model_starts_at_its_encoder(tmp_path):
    heads = {"caption": {"type": "caption", "dim": 32, "depth": 1, "heads": 2, "vocab_size": 60, "max_len": 16}}
    image_model = VLModel(VLConfig(encoder=IMAGE, heads=heads))
    image_model.save_pretrained(tmp_path / "image")
    config = yaml.safe_load(Path(VIDEO).read_text())
    config["model"]["encoder"] = {"type": "video_vit", "frames": 4}
    config["model"]["inflate_from"] = str(tmp_path / "image")
    (tmp_path / "video.yaml").write_text(yaml.safe_dump(config))
    cfg = load_config(ExperimentConfig, tmp_path / "video.yaml")
    assert cfg.model.encoder["depth"] == 2 and cfg.model.encoder["frames"] == 4  # the image model's settings, the video ones given
    from tasks.common.build import build_model

    fields = {"caption": {"vocab_size": 60, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}, "action": {"labels": ["grow", "shrink"]}}
    fields["events"] = {"labels": ["grow"], "frames": 4}
    model = build_model(cfg, None, fields)
    model.eval()
    image_model.eval()
    clips = torch.randn(1, 4, 3, 32, 32)
    torch.testing.assert_close(model.encoder(clips), image_model.encoder(clips[0]).flatten(0, 1)[None])
    with pytest.raises(ConfigError, match="set model.encoder.type to video_vit"):
        load_config(ExperimentConfig, tmp_path / "video.yaml", ["model.encoder.type=vit"])
    with pytest.raises(ConfigError, match="model.encoder.depth is 1 but the image encoder of model.inflate_from has 2"):
        load_config(ExperimentConfig, tmp_path / "video.yaml", ["model.encoder.depth=1"])


def test_video_captioning_and_events_read_msrvtt_and_activitynet_files(tmp_path):
    """The same training reads MSR-VTT's and ActivityNet's formats: mp4 files decoded by PyAV, frames sampled to the encoder's length."""
    out = tmp_path / "msrvtt"
    assert export(["--out", str(out), "--split", "train,val", "--n", "4", "--format", "mp4", "image_size=32", "frames=6"]) == 0
    spec = f"msrvtt:{out / 'videodatainfo.json'}:{out / 'videos'}"
    config = yaml.safe_load(Path(VIDEO).read_text())
    del config["model"]["heads"]["action"], config["tasks"]["action"]
    config["tasks"]["caption"] = {"train": f"{spec}:train", "eval": f"{spec}:val"}
    anet = f"activitynet:{out / 'activitynet.json'}:{out / 'videos'}"
    config["tasks"]["events"] = {"train": f"{anet}:train", "eval": f"{anet}:val"}
    config["train"]["share_images"] = False
    (tmp_path / "msrvtt.yaml").write_text(yaml.safe_dump(config))
    assert train.main(["--config", str(tmp_path / "msrvtt.yaml"), f"train.output_dir={tmp_path / 'run'}"]) == 0
    assert (tmp_path / "run" / "model" / "config.json").is_file()
