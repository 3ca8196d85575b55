"""Clearance maps: how far each surface point is from a planned tool's outer wall (mm)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from workstation.model.plan import Trajectory


def distance_to_segment_mm(points_lps: ArrayLike, start_lps: ArrayLike, end_lps: ArrayLike) -> NDArray[np.float64]:
    """(N,) Euclidean distance (mm) of LPS points (N, 3) to the segment ``start``-``end``."""
    p = np.asarray(points_lps, dtype=float).reshape(-1, 3)
    a, b = np.asarray(start_lps, dtype=float), np.asarray(end_lps, dtype=float)
    ab = b - a
    t = np.clip((p - a) @ ab / float(ab @ ab), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[:, np.newaxis] * ab), axis=1)


def clearance_mm(points_lps: ArrayLike, trajectory: Trajectory) -> NDArray[np.float64]:
    """(N,) distance (mm) from the tool's outer wall (radius ``tool_diameter_mm / 2`` around the path
    from entry to target) to each point; negative inside the tool."""
    return distance_to_segment_mm(points_lps, trajectory.entry_lps, trajectory.target_lps) - \
        trajectory.tool_diameter_mm / 2.0
