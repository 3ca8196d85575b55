"""The tool pose of a straight trajectory: one 4x4 convention shared by every exporter.

Convention (stated in every exported file): the pose maps tool coordinates (mm) to the frame
of the file. Its origin is the **target** point; its +z axis is the unit insertion direction
(from entry to target, into the patient); the tool is symmetric about z, so x is fixed by a
rule: x is the frame axis least aligned with z (first of x, y, z on ties), made orthogonal to z
and normalised; y = z cross x (right-handed).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

TOOL_AXIS_CONVENTION = (
    "pose maps tool coordinates (mm) to the file's frame; origin at the target point; +z = unit insertion "
    "direction from entry to target (into the patient); x = the frame axis least aligned with z (first of "
    "x, y, z on ties) made orthogonal to z and normalised; y = z cross x; the entry is at tool z = -length_mm"
)


def tool_rotation(direction: ArrayLike) -> NDArray[np.float64]:
    """(3, 3) rotation whose columns are the tool x, y, z axes for insertion ``direction`` (3,)."""
    z = np.asarray(direction, dtype=float)
    norm = float(np.linalg.norm(z))
    if not norm > 1e-12:
        raise ValueError("tool direction must not be zero")
    z = z / norm
    ref = np.eye(3)[int(np.argmin(np.abs(z)))]
    x = ref - (ref @ z) * z
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.column_stack([x, y, z])


def trajectory_pose(entry: ArrayLike, target: ArrayLike) -> NDArray[np.float64]:
    """(4, 4) tool pose for a path from ``entry`` to ``target`` (3,), both mm in one frame."""
    entry_, target_ = np.asarray(entry, dtype=float), np.asarray(target, dtype=float)
    pose = np.eye(4)
    pose[:3, :3] = tool_rotation(target_ - entry_)
    pose[:3, 3] = target_
    return pose
