"""A JSON-lines tracker for accelerate (always on), plus whichever accelerate trackers are installed."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from accelerate.tracking import GeneralTracker
from accelerate.utils import is_tensorboard_available, is_wandb_available

AVAILABLE = {"tensorboard": is_tensorboard_available, "wandb": is_wandb_available}


class JSONLTracker(GeneralTracker):
    """Appends {"step": ..., "time": ..., **values} per log call to <dir>/metrics.jsonl."""

    name = "jsonl"
    requires_logging_directory = True

    def __init__(self, run_name: str, logging_dir: str | Path):
        super().__init__()
        self.path = Path(logging_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)

    @property
    def tracker(self) -> Path:
        return self.path

    def store_init_configuration(self, values: dict[str, Any]) -> None:
        (self.path.parent / "hparams.json").write_text(json.dumps(values, indent=1, default=str))

    def log(self, values: dict[str, Any], step: int | None = None, **kwargs: Any) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, "time": round(time.time(), 3), **values}) + "\n")


def trackers(names: list[str], logging_dir: str | Path) -> list[Any]:
    """Our JSONL tracker and each named accelerate tracker that is installed (others are skipped)."""
    return [JSONLTracker("run", logging_dir), *(n for n in names if n in AVAILABLE and AVAILABLE[n]())]
