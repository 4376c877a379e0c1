"""Video files through PyAV, frame sampling, and the MSR-VTT / ActivityNet formats written and read back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tasks.export_shapes_video import main as export
from vl.data.activitynet import load_activitynet, read_activitynet
from vl.data.msrvtt import load_msrvtt
from vl.data.shapes_video.config import ShapesVideoConfig
from vl.data.shapes_video.world import ShapesVideoWorld
from vl.data.video import read_video, sample_indices, write_frames, write_video
from vl.errors import ConfigError, DataFormatError

WORLD = ShapesVideoWorld()


def test_sampling_uniform_and_strided():
    assert sample_indices(8, 4) == [1, 3, 5, 7]
    assert sample_indices(100, 1) == [50]
    assert sample_indices(3, 5) == [0, 0, 1, 2, 2]  # fewer frames than asked: repeated, in order
    assert sample_indices(10, 4, stride=2) == [0, 2, 4, 6]
    assert sample_indices(5, 4, stride=2) == [0, 2, 4, 4]  # past the end: the last frame
    with pytest.raises(ConfigError, match="must be positive"):
        sample_indices(10, 0)


def test_mp4_and_frame_folders_round_trip(tmp_path):
    frames = WORLD.item("train", 3)["frames"]
    mp4 = write_video(frames, tmp_path / "clip.mp4", fps=4)
    back = read_video(mp4)
    assert len(back) == len(frames) and back[0].size == frames[0].size and back[0].mode == "RGB"
    error = np.mean([np.abs(np.asarray(a, float) - np.asarray(b, float)).mean() for a, b in zip(frames, back)])
    assert error < 3  # H.264 at crf 12, 4:2:0 chroma: close, not exact
    folder = write_frames(frames, tmp_path / "frames")
    exact = read_video(folder)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(frames, exact))  # PNG: exact
    picked = read_video(folder, num_frames=4)
    assert [np.asarray(p).tobytes() for p in picked] == [np.asarray(frames[i]).tobytes() for i in sample_indices(8, 4)]
    assert len(read_video(mp4, num_frames=3, stride=2)) == 3


def test_bad_videos_are_errors_that_name_the_file(tmp_path):
    (tmp_path / "text.mp4").write_text("not a video, just text " * 20)
    (tmp_path / "empty.mp4").write_bytes(b"")
    good = write_video(WORLD.item("train", 0)["frames"], tmp_path / "good.mp4")
    (tmp_path / "cut.mp4").write_bytes(good.read_bytes()[:200])
    (tmp_path / "no-frames").mkdir()
    for name in ("text.mp4", "empty.mp4", "cut.mp4", "missing.mp4", "no-frames"):
        with pytest.raises(DataFormatError, match=name):
            read_video(tmp_path / name)


def test_export_reads_back_as_msrvtt_and_activitynet(tmp_path):
    out = tmp_path / "export"
    assert export(["--out", str(out), "--split", "train,val", "--n", "3", "--preview", str(out / "p.png"), "frames=6"]) == 0
    cfg = ShapesVideoConfig(frames=6)
    world = ShapesVideoWorld(cfg)
    val = load_msrvtt(out / "videodatainfo.json", out / "videos", "val")  # our name for MSR-VTT's "validate"
    assert len(val) == 3 and val[0]["split"] == "validate"
    assert val["captions"] == [world.item("val", i)["captions"] for i in range(3)]
    assert len(read_video(val[1]["video"])) == 6
    assert len(load_msrvtt(out / "videodatainfo.json", out / "frames")) == 6  # frame folders, all splits
    events = load_activitynet(out / "activitynet.json", out / "frames", "train")
    first = world.item("train", 0)
    assert events[0]["duration"] == 6 / cfg.fps
    assert events[0]["segments"] == [{"label": e["action"], "start": e["start"] / cfg.fps, "end": (e["end"] + 1) / cfg.fps} for e in first["events"]]
    assert (out / "p.png").stat().st_size > 0


def test_real_format_files_with_activitynet_names(tmp_path):
    """Files as the datasets ship them: MSR-VTT's extra keys, ActivityNet's v_<id>.mp4 and untouched subsets."""
    frames = WORLD.item("test", 0)["frames"]
    write_video(frames, tmp_path / "videos" / "video7010.mp4")
    write_video(frames, tmp_path / "videos" / "v_-zHX3Gdx6I4.mp4")
    msrvtt = {
        "info": {"contributor": "Microsoft MSM group", "year": "2016"},
        "videos": [{"category": 9, "url": "", "video_id": "video7010", "start time": 137.72, "end time": 149.44, "split": "test", "id": 7010}],
        "sentences": [{"caption": "a man is driving a car", "video_id": "video7010", "sen_id": 140200}],
    }
    anet = {
        "version": "VERSION 1.3",
        "taxonomy": [],
        "database": {
            "-zHX3Gdx6I4": {"subset": "validation", "duration": 2.0, "url": "", "annotations": [{"segment": [0.25, 1.5], "label": "Shoveling snow"}]},
            "abc": {"subset": "testing", "duration": 5.0, "resolution": "", "url": "", "annotations": []},
        },
    }
    (tmp_path / "msrvtt.json").write_text(json.dumps(msrvtt))
    (tmp_path / "anet.json").write_text(json.dumps(anet))
    ds = load_msrvtt(tmp_path / "msrvtt.json", tmp_path / "videos", "test")
    assert ds[0]["captions"] == ["a man is driving a car"] and ds[0]["video"].endswith("video7010.mp4")
    rows = load_activitynet(tmp_path / "anet.json", tmp_path / "videos", "val")
    assert rows[0]["video"].endswith("v_-zHX3Gdx6I4.mp4") and rows[0]["segments"] == [{"label": "Shoveling snow", "start": 0.25, "end": 1.5}]
    assert set(read_activitynet(tmp_path / "anet.json")) == {"-zHX3Gdx6I4", "abc"}
    with pytest.raises(ConfigError, match="has no videos in split 'train'; it has test"):
        load_msrvtt(tmp_path / "msrvtt.json", tmp_path / "videos", "train")
    with pytest.raises(DataFormatError, match="no video for id 'abc'"):
        load_activitynet(tmp_path / "anet.json", tmp_path / "videos", "test")
    anet["database"]["abc"]["annotations"] = [{"segment": [3.0, 1.0], "label": "x"}]
    (tmp_path / "anet.json").write_text(json.dumps(anet))
    with pytest.raises(DataFormatError, match=r"database.abc.annotations\[0\].segment"):
        read_activitynet(tmp_path / "anet.json")
    del msrvtt["sentences"][0]["caption"]
    (tmp_path / "msrvtt.json").write_text(json.dumps(msrvtt))
    with pytest.raises(DataFormatError, match=r"sentences\[0\] is missing key 'caption'"):
        load_msrvtt(tmp_path / "msrvtt.json", tmp_path / "videos")
