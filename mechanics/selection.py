"""Choosing the nodes of a tetrahedral mesh for boundary conditions (all geometry in LPS mm).

Every selector returns an (N,) boolean mask over ``mesh.points_lps``; :func:`fixed_dofs` turns a
mask into the (N, 3) ``fixed_dofs`` array the solvers take.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from workstation.errors import InputError
from workstation.model import SurfaceMesh, TetMesh

# Faces of a positively oriented tet (0, 1, 2, 3) wound outward.
_OUTWARD_FACES = np.array([[1, 2, 3], [0, 3, 2], [0, 1, 3], [0, 2, 1]])


def _tet_faces(mesh: TetMesh) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(4M, 3) outward faces of every tet and the tet each belongs to."""
    tets = np.asarray(mesh.tets)
    faces = tets[:, _OUTWARD_FACES].reshape(-1, 3)
    return faces, np.repeat(np.arange(len(tets)), 4)


def boundary_faces(mesh: TetMesh, *, region_ids: Iterable[int] | None = None) -> NDArray[np.int64]:
    """(F, 3) faces used by exactly one tetrahedron (of the chosen regions), wound outward."""
    faces, owner = _tet_faces(mesh)
    if region_ids is not None:
        keep = np.isin(np.asarray(mesh.region_ids)[owner], list(region_ids))
        faces = faces[keep]
    if len(faces) == 0:
        return np.zeros((0, 3), dtype=np.int64)
    _, inverse, counts = np.unique(np.sort(faces, axis=1), axis=0, return_inverse=True, return_counts=True)
    return faces[counts[inverse.ravel()] == 1]


def interface_faces(mesh: TetMesh, region_a: int, region_b: int) -> NDArray[np.int64]:
    """(F, 3) faces shared by a tet of ``region_a`` and a tet of ``region_b`` (wound out of ``region_a``)."""
    faces, owner = _tet_faces(mesh)
    regions = np.asarray(mesh.region_ids)[owner]
    in_a, in_b = faces[regions == region_a], faces[regions == region_b]
    if len(in_a) == 0 or len(in_b) == 0:
        return np.zeros((0, 3), dtype=np.int64)
    keys_b = {tuple(f) for f in np.sort(in_b, axis=1)}
    shared = np.array([tuple(f) in keys_b for f in np.sort(in_a, axis=1)], dtype=bool)
    return in_a[shared]


def boundary_nodes(mesh: TetMesh, *, region_ids: Iterable[int] | None = None) -> NDArray[np.bool_]:
    """Nodes on the outer surface of the mesh (or of the chosen regions)."""
    mask = np.zeros(mesh.n_points, dtype=bool)
    mask[np.unique(boundary_faces(mesh, region_ids=region_ids))] = True
    return mask


def region_nodes(mesh: TetMesh, region_ids: int | Iterable[int]) -> NDArray[np.bool_]:
    """Nodes of the tetrahedra whose region id is one of ``region_ids``."""
    wanted = [int(region_ids)] if isinstance(region_ids, (int, np.integer)) else [int(r) for r in region_ids]
    present = set(int(r) for r in np.unique(mesh.region_ids))
    missing = [r for r in wanted if r not in present]
    if missing:
        raise InputError(f"region {missing}: not in the mesh (regions: {sorted(present)})")
    mask = np.zeros(mesh.n_points, dtype=bool)
    mask[np.unique(np.asarray(mesh.tets)[np.isin(mesh.region_ids, wanted)])] = True
    return mask


def _plane(point_lps: ArrayLike, normal: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    point = np.asarray(point_lps, dtype=float).reshape(3)
    normal = np.asarray(normal, dtype=float).reshape(3)
    length = float(np.linalg.norm(normal))
    if not (np.all(np.isfinite(point)) and np.isfinite(length) and length > 0):
        raise InputError(f"plane normal {normal.tolist()}: must be a non-zero finite vector")
    return point, normal / length


def signed_plane_distances_mm(mesh: TetMesh, point_lps: ArrayLike, normal: ArrayLike) -> NDArray[np.float64]:
    """(N,) signed distance of every node from the plane through ``point_lps`` (positive along ``normal``)."""
    point, normal = _plane(point_lps, normal)
    return (np.asarray(mesh.points_lps) - point) @ normal


def nodes_beyond_plane(mesh: TetMesh, point_lps: ArrayLike, normal: ArrayLike, *,
                       tolerance_mm: float = 0.0) -> NDArray[np.bool_]:
    """Nodes on the side the ``normal`` points to (distance >= -tolerance_mm)."""
    return signed_plane_distances_mm(mesh, point_lps, normal) >= -float(tolerance_mm)


def nodes_near_plane(mesh: TetMesh, point_lps: ArrayLike, normal: ArrayLike, distance_mm: float) -> NDArray[np.bool_]:
    """Nodes within ``distance_mm`` of the plane (either side)."""
    if not distance_mm >= 0:
        raise InputError(f"distance_mm {distance_mm!r}: must be >= 0")
    return np.abs(signed_plane_distances_mm(mesh, point_lps, normal)) <= float(distance_mm)


def nodes_near_point(mesh: TetMesh, point_lps: ArrayLike, radius_mm: float, *,
                     boundary_only: bool = False) -> NDArray[np.bool_]:
    """Nodes within ``radius_mm`` of a point (optionally only surface nodes): e.g. under a probe tip."""
    if not radius_mm > 0:
        raise InputError(f"radius_mm {radius_mm!r}: must be > 0")
    point = np.asarray(point_lps, dtype=float).reshape(3)
    mask = np.linalg.norm(np.asarray(mesh.points_lps) - point, axis=1) <= float(radius_mm)
    return mask & boundary_nodes(mesh) if boundary_only else mask


def distances_to_surface_mm(points_lps: ArrayLike, surface: SurfaceMesh) -> NDArray[np.float64]:
    """(N,) unsigned distance of points to a triangle surface (exact point-triangle distance, VTK)."""
    import pyvista as pv

    cloud = pv.PolyData(np.asarray(points_lps, dtype=float))
    return np.abs(np.asarray(cloud.compute_implicit_distance(surface.to_pyvista())["implicit_distance"]))


def nodes_near_surface(mesh: TetMesh, surface: SurfaceMesh, distance_mm: float, *,
                       boundary_only: bool = True) -> NDArray[np.bool_]:
    """Nodes within ``distance_mm`` of another structure's surface (e.g. where an organ rests on bone).

    Only surface nodes of the mesh by default (contact happens at the boundary).
    """
    if not distance_mm >= 0:
        raise InputError(f"distance_mm {distance_mm!r}: must be >= 0")
    candidates = boundary_nodes(mesh) if boundary_only else np.ones(mesh.n_points, dtype=bool)
    mask = np.zeros(mesh.n_points, dtype=bool)
    index = np.flatnonzero(candidates)
    if len(index) and surface.n_triangles:
        mask[index] = distances_to_surface_mm(np.asarray(mesh.points_lps)[index], surface) <= float(distance_mm)
    return mask


def fixed_dofs(mask: ArrayLike, *, components: tuple[bool, bool, bool] = (True, True, True)) -> NDArray[np.bool_]:
    """(N, 3) ``fixed_dofs`` for the solvers: the chosen components of the masked nodes."""
    mask = np.asarray(mask, dtype=bool).reshape(-1)
    return mask[:, None] & np.asarray(components, dtype=bool)[None, :]
