"""Nodal force vectors (N) for surface pressure/traction, area forces, point forces and gravity.

All return an (N, 3) array of nodal forces in newtons to pass as ``nodal_forces_n`` (add several by
``+``). Surface loads are dead loads (their direction does not follow the deformation).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from mechanics.fem.elements import element_geometry, element_lame_mpa
from mechanics.materials import MaterialSpec
from workstation.errors import InputError
from workstation.model import TetMesh

PA_TO_N_PER_MM2 = 1e-6
_FACES = np.array([[1, 2, 3], [0, 3, 2], [0, 1, 3], [0, 2, 1]])  # outward for positively oriented tets


def boundary_faces(mesh: TetMesh) -> NDArray[np.int64]:
    """(F, 3) boundary triangles of the mesh, ordered counter-clockwise seen from outside."""
    tets = np.asarray(mesh.tets)
    faces = tets[:, _FACES].reshape(-1, 3)
    key = np.sort(faces, axis=1)
    _, inverse, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    return faces[counts[inverse.ravel()] == 1]


def _face_area_vectors(mesh: TetMesh, faces: Any) -> tuple[NDArray, NDArray]:
    faces = np.asarray(faces, dtype=np.int64)
    if faces.ndim != 2 or faces.shape[1] != 3 or (faces.size and (faces.min() < 0 or faces.max() >= mesh.n_points)):
        raise InputError(f"faces: expected (F, 3) node indices of the mesh, got shape {faces.shape}")
    p = np.asarray(mesh.points_lps)[faces]
    return faces, 0.5 * np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])


def pressure_forces_n(mesh: TetMesh, faces: Any, pressure_pa: float) -> NDArray[np.float64]:
    """Nodal forces of a pressure (Pa, positive pushes into the body) on outward-oriented ``faces``."""
    faces, area = _face_area_vectors(mesh, faces)
    forces = np.zeros((mesh.n_points, 3))
    np.add.at(forces, faces.ravel(), np.repeat(-pressure_pa * PA_TO_N_PER_MM2 * area / 3.0, 3, axis=0))
    return forces


def traction_forces_n(mesh: TetMesh, faces: Any, traction_pa: Any) -> NDArray[np.float64]:
    """Nodal forces of a uniform traction vector (3,) in Pa over ``faces``."""
    faces, area = _face_area_vectors(mesh, faces)
    t = np.asarray(traction_pa, dtype=float).reshape(3)
    share = np.linalg.norm(area, axis=1)[:, None] * t[None, :] * PA_TO_N_PER_MM2 / 3.0
    forces = np.zeros((mesh.n_points, 3))
    np.add.at(forces, faces.ravel(), np.repeat(share, 3, axis=0))
    return forces


def area_force_n(mesh: TetMesh, faces: Any, total_force_n: Any) -> NDArray[np.float64]:
    """A total force (3,) in N spread over ``faces`` in proportion to area."""
    faces, area = _face_area_vectors(mesh, faces)
    a = np.linalg.norm(area, axis=1)
    if a.sum() <= 0:
        raise InputError("faces: total area is zero")
    return traction_forces_n(mesh, faces, np.asarray(total_force_n, dtype=float) / a.sum() / PA_TO_N_PER_MM2)


def point_force_n(mesh: TetMesh, node: int, force_n: Any) -> NDArray[np.float64]:
    """A single nodal force (3,) in N at ``node``."""
    if not 0 <= int(node) < mesh.n_points:
        raise InputError(f"node: {node} is not a node of the mesh (0..{mesh.n_points - 1})")
    forces = np.zeros((mesh.n_points, 3))
    forces[int(node)] = np.asarray(force_n, dtype=float).reshape(3)
    return forces


def gravity_forces_n(mesh: TetMesh, materials: MaterialSpec, gravity_m_s2: Any) -> NDArray[np.float64]:
    """Nodal weight (N) from the densities and a gravity vector (3,) in m/s^2 (LPS axes)."""
    g = np.asarray(gravity_m_s2, dtype=float).reshape(3) * 1000.0  # mm/s^2
    volume, _, _ = element_geometry(np.asarray(mesh.points_lps), np.asarray(mesh.tets))
    _, _, rho = element_lame_mpa(mesh, materials)  # t/mm^3
    share = (rho * np.abs(volume) / 4.0)[:, None] * g[None, :]
    forces = np.zeros((mesh.n_points, 3))
    np.add.at(forces, np.asarray(mesh.tets).ravel(), np.repeat(share, 4, axis=0))
    return forces
