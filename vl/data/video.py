"""Video files in, RGB PIL frames out (PyAV: its wheels bundle FFmpeg), frame sampling, and writing clips
as mp4 or as frame folders. A missing, empty, corrupt or unreadable video is a DataFormatError naming it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage

from vl.data.images import load_image, read_image
from vl.errors import ConfigError, DataFormatError, InputError

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov")
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg")


def sample_indices(length: int, num_frames: int, stride: int | None = None) -> list[int]:
    """Which of a video's `length` frames to read. Uniform (stride None): the middle frame of each of
    num_frames equal segments (TSN's test-time sampling). With a stride: every stride-th frame from the
    first; a video too short for the window repeats its last frame."""
    if length <= 0:
        raise ValueError("a video with no frames has nothing to sample")
    if num_frames <= 0 or (stride is not None and stride <= 0):
        raise ConfigError(f"num_frames ({num_frames}) and stride ({stride}) must be positive")
    if stride is None:
        return [min(length - 1, int((k + 0.5) * length / num_frames)) for k in range(num_frames)]
    return [min(length - 1, k * stride) for k in range(num_frames)]


def read_video(path: str | Path, num_frames: int | None = None, stride: int | None = None) -> list[PILImage.Image]:
    """The frames of a video file (or of a folder of numbered frame images) as RGB PIL images: all of
    them, or num_frames sampled by sample_indices."""
    path = Path(path)
    if path.is_dir():
        frames = _frame_files(path)
        keep = sample_indices(len(frames), num_frames, stride) if num_frames else range(len(frames))
        return [read_image({"path": str(frames[i])}) for i in keep]
    frames = _decode(path)
    keep = sample_indices(len(frames), num_frames, stride) if num_frames else range(len(frames))
    return [frames[i] for i in keep]


CLIP_HELP = "a video file path, a folder of frame images, a list of frames (anything load_image reads), or an array/tensor of T frames"


def load_clip(clip: Any, num_frames: int | None = None) -> list[PILImage.Image]:
    """One pipeline input as RGB frames, num_frames of them sampled uniformly (all when None); anything
    unusable is an InputError naming the fix."""
    if isinstance(clip, (str, os.PathLike)):
        path = Path(clip).expanduser()
        if not path.exists():
            raise InputError(f"video file not found: {clip}")
        try:
            return read_video(path, num_frames)
        except DataFormatError as err:
            raise InputError(str(err)) from None
    if isinstance(clip, (list, tuple)) or isinstance(clip, np.ndarray) or type(clip).__module__.startswith("torch"):
        frames = list(clip)
        if not frames:
            raise InputError("the clip has no frames; pass " + CLIP_HELP)
        keep = sample_indices(len(frames), num_frames) if num_frames else range(len(frames))
        return [load_image(frames[i]) for i in keep]
    raise InputError(f"cannot read a clip from a {type(clip).__name__}; pass {CLIP_HELP}")


def _decode(path: Path) -> list[PILImage.Image]:
    import av

    if not path.is_file():
        raise DataFormatError(f"video file not found: {path}")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DataFormatError(f"{path} has no video stream (an audio-only or non-video file?)")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            frames = [frame.to_image() for frame in container.decode(stream)]
    except av.error.FFmpegError as err:
        raise DataFormatError(f"cannot read video {path} ({type(err).__name__}: {err}); fix or remove it, or set data.skip_bad_images=true") from None
    if not frames:
        raise DataFormatError(f"video {path} has no frames; fix or remove it, or set data.skip_bad_images=true")
    return [f if f.mode == "RGB" else f.convert("RGB") for f in frames]


def _frame_files(folder: Path) -> list[Path]:
    frames = sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
    if not frames:
        raise DataFormatError(f"frame folder {folder} holds no {'/'.join(FRAME_SUFFIXES)} images")
    return frames


def write_video(frames: Sequence[PILImage.Image], path: str | Path, fps: float = 4.0, crf: int = 12) -> Path:
    """Write frames as an H.264 mp4 (yuv420p, what every player reads), atomically. Frame sides are
    rounded up to even numbers (yuv420p needs them); crf 0 is lossless luma, higher is smaller."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    width, height = (side + side % 2 for side in frames[0].size)
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": str(crf)}
        for image in frames:
            if image.size != (width, height):
                image = image.resize((width, height), PILImage.BICUBIC)
            for packet in stream.encode(av.VideoFrame.from_image(image.convert("RGB"))):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(path)
    return path


def write_frames(frames: Sequence[PILImage.Image], folder: str | Path) -> Path:
    """Write frames as folder/00000.png, 00001.png, ... (lossless)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for k, image in enumerate(frames):
        image.save(folder / f"{k:05d}.png")
    return folder


def find_video(folder: Path, video_id: str) -> Path:
    """The file or frame folder of `video_id` in `folder`: <id>.<ext>, v_<id>.<ext> (ActivityNet), or <id>/."""
    for stem in (video_id, f"v_{video_id}"):
        for suffix in VIDEO_SUFFIXES:
            if (folder / f"{stem}{suffix}").is_file():
                return folder / f"{stem}{suffix}"
        if (folder / stem).is_dir():
            return folder / stem
    looked = f"{video_id}.mp4 and other {'/'.join(VIDEO_SUFFIXES)}, v_{video_id}.*, a frame folder {video_id}/"
    raise DataFormatError(f"no video for id '{video_id}' in {folder} (looked for {looked})")
