"""Write Shapes video clips as mp4 files and frame folders plus MSR-VTT and ActivityNet annotations.

    python -m tasks.export_shapes_video --out data/shapes-video --split train,test --n 200 \
        --preview data/shapes-video/preview.png [--config configs/shapes/video_world.yaml] [frames=16 ...]

Layout: OUT/videos/video<clip_id>.mp4 (H.264), OUT/frames/video<clip_id>/00000.png ... (lossless),
OUT/videodatainfo.json (MSR-VTT captions, every exported split), OUT/activitynet.json (ActivityNet v1.3
event segments in seconds). vl.data.msrvtt.load_msrvtt and vl.data.activitynet.load_activitynet read
them back, from either the videos or the frames folder.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

from tasks.common.cli import cli
from tasks.export_shapes import export_args
from vl.config import load_config
from vl.data.activitynet import to_activitynet
from vl.data.msrvtt import to_msrvtt
from vl.data.preview import filmstrip, image_grid
from vl.data.schema import write_json
from vl.data.shapes_video.config import SPLITS, ShapesVideoConfig
from vl.data.shapes_video.world import ShapesVideoWorld
from vl.data.video import write_frames, write_video
from vl.errors import ConfigError

FORMATS = ("mp4", "frames")


@cli
def main(argv: list[str] | None = None) -> int:
    args = export_args(argv, "tasks.export_shapes_video", __doc__, SPLITS, FORMATS, "mp4,frames")
    cfg = load_config(ShapesVideoConfig, args.config, args.overrides)
    splits, formats = args.split, args.format
    world, start, records = ShapesVideoWorld(cfg), time.perf_counter(), []
    for split in splits:
        n = args.n or cfg.splits.get(split) or 0
        if n <= 0:
            raise ConfigError(f"no size for split '{split}': pass --n or set splits.{split}=N")
        for index in tqdm(range(n), desc=split, unit="clip", disable=None):
            item = world.item(split, index)
            if "mp4" in formats:
                write_video(item["frames"], args.out / "videos" / f"{item['video_id']}.mp4", cfg.fps)
            if "frames" in formats:
                write_frames(item["frames"], args.out / "frames" / item["video_id"])
            records.append(item)
    write_json(to_msrvtt(records, cfg.fps, "Shapes video"), args.out / "videodatainfo.json")
    write_json(to_activitynet(records, cfg.fps, world.action_vocabulary()), args.out / "activitynet.json")
    if args.preview is not None:
        sample = records[:8]
        texts = [[r["captions"][0], f"action: {r['action']}", _segments(r)] for r in sample]
        image_grid([filmstrip(r["frames"]) for r in sample], texts, args.preview, cols=1, tile=96)
    print(
        f"wrote {len(records)} clips ({', '.join(splits)}) as {', '.join(formats)} to {args.out} "
        f"in {time.perf_counter() - start:.1f}s" + (f"; preview: {args.preview}" if args.preview else "")
    )
    return 0


def _segments(record: dict) -> str:
    return "events: " + "; ".join(f"{e['action']} (object {e['object']}) frames {e['start']}-{e['end']}" for e in record["events"])


if __name__ == "__main__":
    sys.exit(main())
