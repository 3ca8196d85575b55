"""Tool poses and the line geometry the live twin measures against (mm, degrees)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from workstation.export.tool_pose import tool_rotation


def unit(vector: ArrayLike) -> NDArray[np.float64]:
    """``vector`` (..., 3) scaled to length 1."""
    v = np.asarray(vector, dtype=float)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def perpendicular_axis(direction: ArrayLike) -> NDArray[np.float64]:
    """A unit vector perpendicular to ``direction`` (3,): the tool x axis of the plan export's
    tool-axis convention (:func:`workstation.export.tool_pose.tool_rotation`)."""
    return tool_rotation(direction)[:, 0]


def tool_pose(tip: ArrayLike, axis: ArrayLike) -> NDArray[np.float64]:
    """4x4 pose with translation ``tip`` (3,) mm and local +z along ``axis`` (3,), in the plan export's
    tool-axis convention (x, y from :func:`workstation.export.tool_pose.tool_rotation`)."""
    pose = np.eye(4)
    pose[:3, :3] = tool_rotation(axis)
    pose[:3, 3] = np.asarray(tip, dtype=float)
    return pose


def tips_and_axes(poses: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Tip positions (T, 3) and unit tool axes (T, 3) of poses (T, 4, 4) (or one pose (4, 4))."""
    p = np.asarray(poses, dtype=float)
    return p[..., :3, 3].copy(), unit(p[..., :3, 2])


def rotation_about(axis: ArrayLike, angle_deg: float) -> NDArray[np.float64]:
    """3x3 rotation by ``angle_deg`` about unit ``axis`` (right hand rule)."""
    from scipy.spatial.transform import Rotation

    return Rotation.from_rotvec(unit(axis) * np.radians(angle_deg)).as_matrix()


def distance_to_line(points: ArrayLike, origin: ArrayLike, direction: ArrayLike) -> NDArray[np.float64]:
    """Distance (mm) of points (..., 3) from the infinite line through ``origin`` along ``direction``."""
    d = unit(direction)
    rel = np.asarray(points, dtype=float) - np.asarray(origin, dtype=float)
    return np.linalg.norm(rel - (rel @ d)[..., None] * d, axis=-1)


def angle_between_deg(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """Angle (degrees, 0..180) between vectors ``a`` (..., 3) and ``b`` (..., 3)."""
    cos = np.sum(unit(a) * unit(b), axis=-1)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def invert_rigid(matrix: ArrayLike) -> NDArray[np.float64]:
    """Inverse of a 4x4 rigid (or affine) transform."""
    return np.linalg.inv(np.asarray(matrix, dtype=float))
