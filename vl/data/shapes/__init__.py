"""The Shapes world: procedural scenes with exact ground truth for every task, no download."""

from vl.data.shapes.config import SPLITS, ShapesConfig
from vl.data.shapes.world import ShapesWorld

__all__ = ["SPLITS", "ShapesConfig", "ShapesWorld"]
