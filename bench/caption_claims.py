"""Which claims of generated Shapes captions are false, by kind (exists, count, place, left, right, near ...):
reads the results file `tasks.evaluate --task caption` writes and checks every caption against its image's
objects with the claim reader (vl.data.shapes.truth.read_caption), one failing caption per kind.

    python bench/caption_claims.py --results runs/X/model/results_caption_shapes_test.json --split test

`tasks.evaluate` reports the share of true claims by group (relation = left, right, above, below, near, far);
this says which ones fail. A caption can make several false claims.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from qgen_truth import written_about_shapes

from vl.data.shapes.truth import read_caption


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", required=True, type=Path, help="a results_caption_shapes_<split>.json that tasks.evaluate wrote")
    parser.add_argument("--split", default="test", help="the Shapes split the captions are about")
    args = parser.parse_args()
    captions, objects, size = written_about_shapes(args.results, args.split, "caption")
    false_captions, kinds, example = 0, Counter(), {}
    for c in captions:
        reading = read_caption(c["caption"], objects[c["image_id"]], size)
        false_captions += not reading.true
        kinds.update(reading.false_claims)
        for kind in reading.false_claims:
            example.setdefault(kind, c["caption"])
    print(f"{false_captions} of {len(captions)} captions make a false claim (or none the reader can check); false claims by kind:")
    for kind, n in kinds.most_common():
        print(f"{kind:>12}: {n:4d}   e.g. {example[kind]!r}")


if __name__ == "__main__":
    main()
