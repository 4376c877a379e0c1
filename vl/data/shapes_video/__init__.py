"""The Shapes video world: clips of moving, growing, recoloring, appearing shapes with exact labels,
events and captions, no download."""

from vl.data.shapes_video.config import ACTIONS, SPLITS, ShapesVideoConfig
from vl.data.shapes_video.world import ShapesVideoWorld

__all__ = ["ACTIONS", "SPLITS", "ShapesVideoConfig", "ShapesVideoWorld"]
