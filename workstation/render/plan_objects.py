"""Geometry of plan items for drawing (pyvista, LPS mm): tools, planes, implants, landmarks."""

from __future__ import annotations

from typing import Any

import numpy as np

from workstation.model.plan import Implant, ResectionPlane, Trajectory

TOOL_RGB = (0.25, 0.75, 1.0)
ENTRY_RGB = (0.2, 0.9, 0.3)
TARGET_RGB = (1.0, 0.25, 0.2)
PLANE_RGB = (1.0, 0.85, 0.2)
IMPLANT_RGB = (0.7, 0.72, 0.78)
LANDMARK_RGB = (1.0, 0.55, 0.1)


def tool_cylinder(trajectory: Trajectory) -> Any:
    """The tool as a cylinder of its diameter from entry to target."""
    import pyvista as pv

    entry, target = np.asarray(trajectory.entry_lps), np.asarray(trajectory.target_lps)
    return pv.Cylinder(center=(entry + target) / 2, direction=target - entry, radius=trajectory.tool_diameter_mm / 2,
                       height=trajectory.length_mm, resolution=32, capping=True)


def plane_patch(plane: ResectionPlane, size_mm: float) -> Any:
    """A square patch of the cutting plane, ``size_mm`` wide, centred on its origin."""
    import pyvista as pv

    return pv.Plane(center=plane.origin_lps, direction=plane.normal_lps, i_size=size_mm, j_size=size_mm)


def implant_body(implant: Implant) -> Any:
    """The implant as a cylinder from its head to its tip (frame: origin at the tip, +z along the insertion
    direction, see :class:`~workstation.model.plan.Implant`)."""
    import pyvista as pv

    pose = np.asarray(implant.pose_lps)
    axis = pose[:3, 2] / np.linalg.norm(pose[:3, 2])
    center = pose[:3, 3] - axis * implant.length_mm / 2
    return pv.Cylinder(center=center, direction=axis, radius=implant.diameter_mm / 2, height=implant.length_mm,
                       resolution=32)


def marker(position_lps: Any, radius_mm: float) -> Any:
    import pyvista as pv

    return pv.Sphere(radius=radius_mm, center=np.asarray(position_lps, dtype=float), theta_resolution=16,
                     phi_resolution=16)
