"""Our temporal detection mAP against ActivityNet's official evaluation code on random cases.

    git clone https://github.com/activitynet/ActivityNet /tmp/ActivityNet
    python bench/detection_map_vs_official.py --official /tmp/ActivityNet/Evaluation [--cases 200]

The official eval_detection.py is Python 2; this script loads it with the minimal Python 3 edits (items()
for iteritems(), float for np.float, print statements dropped, no urllib2) and compares mAP at tIoU
0.3..0.7 and their mean on random ground truth and predictions (scores rounded to one decimal, so that
ties are exercised). Needs pandas and joblib (the official code's imports).
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import re
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

from vl.metrics.detection import THUMOS_TIOU, detection_map


def load_official(folder: Path, work: Path) -> types.ModuleType:
    """The official module, its Python 2 made Python 3, imported from `work` (joblib's workers import it by name)."""
    for name in ("utils.py", "eval_detection.py"):
        text = (folder / name).read_text().replace("import urllib2", "").replace(".iteritems()", ".items()").replace("np.float)", "float)")
        (work / name).write_text(re.sub(r"^(\s*)print .*$", r"\1pass", text, flags=re.M))
    sys.path.insert(0, str(work))
    return importlib.import_module("eval_detection")


def random_case(rng: random.Random, labels: list[str]) -> tuple[dict, dict]:
    database, results = {}, {}
    for v in range(rng.randint(1, 12)):
        anns = [{"segment": sorted([rng.uniform(0, 10), rng.uniform(0, 10)]), "label": rng.choice(labels)} for _ in range(rng.randint(0, 3))]
        database[f"v{v}"] = {"subset": "validation", "duration": 10.0, "annotations": anns}
        preds = [
            {"label": rng.choice(labels), "score": round(rng.random(), 1), "segment": sorted([rng.uniform(0, 10), rng.uniform(0, 10)])}
            for _ in range(rng.randint(0, 5))
        ]
        results[f"v{v}"] = preds
    return database, results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--official", type=Path, required=True, help="the official Evaluation/ folder")
    p.add_argument("--cases", type=int, default=200)
    args = p.parse_args()
    rng, worst, compared = random.Random(0), 0.0, 0
    thresholds = np.array(THUMOS_TIOU)
    with tempfile.TemporaryDirectory() as tmp:
        official = load_official(args.official, Path(tmp))
        for _ in range(args.cases):
            database, results = random_case(rng, ["a", "b", "c", "d"])
            used = {a["label"] for v in database.values() for a in v["annotations"]}
            if not used:
                continue
            results = {v: [r for r in rs if r["label"] in used] for v, rs in results.items()}  # the official code stops on others
            gt_file, pred_file = Path(tmp) / "gt.json", Path(tmp) / "pred.json"
            gt_file.write_text(json.dumps({"version": "VERSION 1.3", "taxonomy": [], "database": database}))
            pred_file.write_text(json.dumps({"version": "VERSION 1.3", "external_data": {}, "results": results}))
            ref = official.ANETdetection(str(gt_file), str(pred_file), tiou_thresholds=thresholds, subset="validation", check_status=False)
            ref.evaluate()
            gt = {v: [{"label": a["label"], "start": a["segment"][0], "end": a["segment"][1]} for a in e["annotations"]] for v, e in database.items()}
            preds = {v: [{"label": r["label"], "start": r["segment"][0], "end": r["segment"][1], "score": r["score"]} for r in rs] for v, rs in results.items()}
            ours = detection_map(gt, preds, THUMOS_TIOU)
            worst = max(worst, abs(ours["mAP"] - ref.average_mAP), *(abs(ours[f"mAP@{t:.2g}"] - m) for t, m in zip(THUMOS_TIOU, ref.mAP)))
            compared += 1
    print(f"{compared} random cases: largest |ours - official| over mAP@0.3..0.7 and their mean = {worst:.3g}")


if __name__ == "__main__":
    main()
