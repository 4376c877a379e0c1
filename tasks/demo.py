"""`make demo`: the suite's main job, runnable on a fresh machine with no download.

Until the caption head lands, it shows the built-in Shapes world: it exports 16 test items in the
COCO, Karpathy and VQA v2 formats under demo/shapes/ and writes demo/shapes.png to look at.
"""
from __future__ import annotations

import sys

from tasks.common.cli import cli
from tasks.export_shapes import main as export_shapes


@cli
def main(argv: list[str] | None = None) -> int:
    code = export_shapes(
        ["--out", "demo/shapes", "--split", "test", "--n", "16", "--format", "coco,karpathy,vqa", "--preview", "demo/shapes.png"]
    )
    print("captioning demo arrives with the caption head; meanwhile, look at demo/shapes.png")
    return code


if __name__ == "__main__":
    sys.exit(main())
