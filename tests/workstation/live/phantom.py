"""An analytic phantom case for the live-twin tests: spheres with known geometry and one straight trajectory.

Trajectory ``t1`` goes from (0, 0, 0) to (0, 0, 100) (LPS mm) with a 2 mm tool. ``aorta`` is a sphere of radius
10 mm at (20, 0, 50): 10 mm from the planned line, 9 mm from the tool surface. ``liver`` (radius 25 mm around the
target) holds the target; ``body`` is a large sphere named like the skin. Neither is critical by default.
"""

from __future__ import annotations

import numpy as np
import pyvista as pv

from workstation.model import Case, Plan, Registration, SurfaceMesh, Trajectory

ENTRY = (0.0, 0.0, 0.0)
TARGET = (0.0, 0.0, 100.0)
AORTA_CENTER = np.array([20.0, 0.0, 50.0])
AORTA_RADIUS = 10.0
TOOL_DIAMETER = 2.0


def sphere(name: str, center: tuple[float, float, float], radius: float, resolution: int = 60) -> SurfaceMesh:
    s = pv.Sphere(radius=radius, center=center, theta_resolution=resolution, phi_resolution=resolution).triangulate()
    return SurfaceMesh(np.asarray(s.points, dtype=float), s.faces.reshape(-1, 4)[:, 1:], name=name, segment=name)


def registration_matrix() -> np.ndarray:
    """A rigid image -> tracker transform: 30 deg about z, 20 deg about x, then a translation (mm)."""
    from scipy.spatial.transform import Rotation

    m = np.eye(4)
    m[:3, :3] = Rotation.from_euler("zx", [30, 20], degrees=True).as_matrix()
    m[:3, 3] = [150.0, -40.0, 900.0]
    return m


def phantom_case(*, registered: bool = False) -> Case:
    case = Case(name="live-phantom")
    case.add_mesh(sphere("aorta", tuple(AORTA_CENTER), AORTA_RADIUS))
    case.add_mesh(sphere("liver", TARGET, 25.0, resolution=40))
    case.add_mesh(sphere("body", (0.0, 0.0, 80.0), 90.0, resolution=40))
    case.set_plan(Plan(trajectories=(Trajectory("t1", ENTRY, TARGET, tool_diameter_mm=TOOL_DIAMETER),
                                     Trajectory("t2", (0.0, 10.0, 0.0), (0.0, 10.0, 80.0), tool_diameter_mm=1.0))))
    if registered:
        case.add_registration(Registration(registration_matrix(), from_frame="image_lps", to_frame="tracker",
                                           fre_mm=0.4))
    return case
