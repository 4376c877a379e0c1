"""The Faces world: procedural faces with identity, pose (yaw) and expression labels, no download."""

from vl.data.faces.config import FACE_SPLITS, FacesConfig
from vl.data.faces.world import FacesWorld

__all__ = ["FACE_SPLITS", "FacesConfig", "FacesWorld"]
