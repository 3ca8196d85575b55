"""A precomputed search structure over one triangle surface for exact, fast distance queries.

Built once per structure, it answers "closest point of this segment / these points to the surface"
exactly while a trajectory is dragged: a two-level bounding-sphere hierarchy (triangles grouped
around ~2000 centres chosen with a scipy ``cKDTree``), visited nearest group first by compiled
kernels (:mod:`workstation.planning.distance_numba`) that prune with provable lower bounds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from workstation.model.mesh import SurfaceMesh
from workstation.planning.distance_numba import points_query, segment_query


@dataclass(frozen=True)
class SegmentHit:
    """The closest approach of a segment to a surface.

    Attributes
    ----------
    distance_mm : exact minimum distance (0 when the segment crosses the surface).
    point_on_segment_lps, point_on_surface_lps : (3,) the closest points (LPS mm).
    triangle : index of the surface triangle holding ``point_on_surface_lps``.
    crosses : the segment crosses the surface.
    """

    distance_mm: float
    point_on_segment_lps: NDArray[np.float64]
    point_on_surface_lps: NDArray[np.float64]
    triangle: int
    crosses: bool


class SurfaceIndex:
    """Exact segment/point-to-surface distances on one :class:`SurfaceMesh` (LPS mm).

    Parameters
    ----------
    mesh : the surface (any triangle soup works; a closed, outward-oriented surface is needed for
        :meth:`contains`).
    """

    def __init__(self, mesh: SurfaceMesh) -> None:
        if mesh.n_triangles == 0:
            raise ValueError(f"surface {mesh.name!r} has no triangles")
        self.mesh = mesh
        self.triangles = np.ascontiguousarray(mesh.vertices_lps[mesh.triangles], dtype=float)  # (M, 3, 3)
        self.centroids = self.triangles.mean(axis=1)
        self.radii = np.sqrt(np.max(np.sum((self.triangles - self.centroids[:, None]) ** 2, axis=2), axis=1))
        self.max_radius = float(self.radii.max())
        normals = np.cross(self.triangles[:, 1] - self.triangles[:, 0], self.triangles[:, 2] - self.triangles[:, 0])
        norm = np.linalg.norm(normals, axis=1)
        self.normals = normals / np.where(norm > 0, norm, 1.0)[:, None]
        self.areas = 0.5 * norm
        self.tree = cKDTree(self.centroids)  # starting bounds of point queries, neighbourhoods
        # groups: ~2048 evenly spread centre triangles; every triangle joins its nearest centre and a
        # group's radius covers every point of its triangles, so a whole group is skipped when it
        # cannot beat the best distance found so far
        self.coarse_ids = np.arange(0, len(self.centroids), max(1, len(self.centroids) // 2048))
        _, group = cKDTree(self.centroids[self.coarse_ids]).query(self.centroids)
        self.group_order = np.argsort(group, kind="stable")
        self.group_start = np.searchsorted(group[self.group_order], np.arange(len(self.coarse_ids) + 1))
        reach = np.linalg.norm(self.centroids - self.centroids[self.coarse_ids][group], axis=1) + self.radii
        self.group_radius = np.zeros(len(self.coarse_ids))
        np.maximum.at(self.group_radius, group, reach)
        self.group_centres = self.centroids[self.coarse_ids]
        self._arrays = (self.triangles, self.centroids, self.radii, np.ascontiguousarray(self.group_centres),
                        self.group_radius, self.group_start.astype(np.int64), self.group_order.astype(np.int64))
        # for inside/outside: faces around each vertex and angle-weighted vertex normals
        flat = mesh.triangles.ravel()
        self.vertex_faces = np.argsort(flat, kind="stable") // 3
        self.vertex_face_start = np.searchsorted(flat[np.argsort(flat, kind="stable")],
                                                 np.arange(mesh.n_vertices + 1))
        corner = np.empty((len(self.triangles), 3))
        for k in range(3):
            e1 = self.triangles[:, (k + 1) % 3] - self.triangles[:, k]
            e2 = self.triangles[:, (k + 2) % 3] - self.triangles[:, k]
            cos = np.einsum("ij,ij->i", e1, e2) / np.maximum(np.linalg.norm(e1, axis=1) * np.linalg.norm(e2, axis=1),
                                                             1e-300)
            corner[:, k] = np.arccos(np.clip(cos, -1.0, 1.0))
        vertex_normals = np.zeros((mesh.n_vertices, 3))
        for k in range(3):
            np.add.at(vertex_normals, mesh.triangles[:, k], self.normals * corner[:, k:k + 1])
        self.vertex_normals = vertex_normals

    @property
    def n_triangles(self) -> int:
        return len(self.triangles)

    def segment_distance(self, start_lps: ArrayLike, end_lps: ArrayLike) -> SegmentHit:
        """Exact closest approach of the segment ``start -> end`` (LPS mm) to the surface.

        Triangles are grouped around ~2000 centres, each group with a radius covering its triangles;
        groups are visited nearest first and a group (then a triangle) is measured only if its lower
        bound (centre distance to the segment minus radius) is below the best distance so far.
        """
        p0 = np.ascontiguousarray(start_lps, dtype=float).reshape(3)
        p1 = np.ascontiguousarray(end_lps, dtype=float).reshape(3)
        best, tri, on_seg, on_tri = segment_query(p0, p1, *self._arrays)
        return SegmentHit(distance_mm=float(best), point_on_segment_lps=np.asarray(on_seg, dtype=float),
                          point_on_surface_lps=np.asarray(on_tri, dtype=float), triangle=int(tri),
                          crosses=bool(best == 0.0))

    def closest_points(self, points_lps: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64],
                                                              NDArray[np.int64]]:
        """Exact closest surface points of many points.

        Parameters
        ----------
        points_lps : (N, 3) query points (LPS mm).

        Returns
        -------
        distance_mm (N,), closest (N, 3) LPS mm, triangle (N,) index.
        """
        q = np.ascontiguousarray(np.atleast_2d(np.asarray(points_lps, dtype=float)))
        _, seeds = self.tree.query(q)
        return points_query(q, np.asarray(seeds, dtype=np.int64), *self._arrays)

    def pseudo_normal(self, triangle: int, point_lps: ArrayLike) -> NDArray[np.float64]:
        """Outward pseudo-normal (Baerentzen & Aanaes 2005) at a point of ``triangle``: the face normal
        inside the face, the sum of the two faces' normals on an edge, the angle-weighted normal at a vertex."""
        tri = self.mesh.triangles[triangle]
        a, b, c = self.triangles[triangle]
        v0, v1, v2 = b - a, c - a, np.asarray(point_lps, dtype=float) - a
        d00, d01, d11, d20, d21 = v0 @ v0, v0 @ v1, v1 @ v1, v2 @ v0, v2 @ v1
        denom = d00 * d11 - d01 * d01
        bary_v = (d11 * d20 - d01 * d21) / denom
        bary_w = (d00 * d21 - d01 * d20) / denom
        bary = np.array([1.0 - bary_v - bary_w, bary_v, bary_w])
        zero = np.abs(bary) <= 1e-7
        if zero.sum() >= 2:
            return self.vertex_normals[tri[int(np.argmax(bary))]]
        if zero.sum() == 1:
            u, w = tri[~zero]
            faces = np.intersect1d(self._faces_of(u), self._faces_of(w))
            return self.normals[faces].sum(axis=0)
        return self.normals[triangle]

    def _faces_of(self, vertex: int) -> NDArray[np.int64]:
        return self.vertex_faces[self.vertex_face_start[vertex]:self.vertex_face_start[vertex + 1]]

    def is_inside(self, point_lps: ArrayLike, closest_lps: ArrayLike, triangle: int) -> bool:
        """Whether ``point_lps``, whose closest surface point is ``closest_lps`` on ``triangle``, lies
        inside the closed, outward-oriented surface (points on the surface count as inside)."""
        offset = np.asarray(point_lps, dtype=float) - np.asarray(closest_lps, dtype=float)
        return bool(offset @ self.pseudo_normal(triangle, closest_lps) <= 0.0)

    def contains(self, points_lps: ArrayLike) -> NDArray[np.bool_]:
        """(N,) whether each point lies inside the closed, outward-oriented surface (sign of the offset
        from its closest surface point along the pseudo-normal there)."""
        q = np.atleast_2d(np.asarray(points_lps, dtype=float))
        _, closest, tri = self.closest_points(q)
        return np.array([self.is_inside(q[n], closest[n], int(tri[n])) for n in range(len(q))], dtype=bool)

    def normal_near(self, point_lps: ArrayLike, *, radius_mm: float = 2.0) -> NDArray[np.float64]:
        """(3,) unit outward normal of the surface near its point closest to ``point_lps``.

        The area-weighted mean normal of the triangles within ``radius_mm`` of that closest point,
        which smooths the facets of a surface extracted from voxels.
        """
        _, closest, tri = self.closest_points(np.asarray(point_lps, dtype=float)[None])
        near = np.asarray(self.tree.query_ball_point(closest[0], radius_mm), dtype=np.int64)
        near = np.union1d(near, tri)
        normal = (self.normals[near] * self.areas[near, None]).sum(axis=0)
        size = np.linalg.norm(normal)
        return normal / size if size > 0 else self.normals[int(tri[0])].copy()
