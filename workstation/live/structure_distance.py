"""Signed distances from the tool to critical-structure surfaces, built once per case (LPS mm).

Two measures, combined by the default ``"hybrid"`` method:

- ``"vertices"``: a scipy ``cKDTree`` over each surface's vertices with area-weighted vertex normals
  (trimesh), queried at points sampled along the tool shaft (``step_mm`` apart); negative behind the nearest
  vertex's normal (inside). Fast; over-estimates the true distance by up to about half an edge length plus
  half a step (about 1 mm on the project's 1 mm surfaces).
- ``"exact"``: the planning helper's :class:`~workstation.planning.surface_index.SurfaceIndex` exact
  segment-to-surface distance of the shaft; when the shaft crosses the surface the value is minus the depth
  of the tip inside (0 when the tip is outside again); a shaft wholly on one side takes the sign of the
  closest triangle's normal.
- ``"hybrid"``: a coarse vertex measure for every structure (samples ``2 * step_mm`` apart, KD-tree queries
  allowed ``far_relative_error`` = 5 % relative error), replaced by the exact one for the structures that may
  lie within ``refine_below_mm`` (where an alarm decision is made). Far structures are thus shown within
  5 % + about 1.5 mm of the truth, near ones exactly. Falls back to ``"vertices"`` when the planning helper
  is absent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from workstation.model import SurfaceMesh

METHODS = ("hybrid", "exact", "vertices")


def _surface_index_class() -> Any:
    try:
        from workstation.planning.surface_index import SurfaceIndex
    except ImportError:
        return None
    return SurfaceIndex


class StructureDistances:
    """Per-structure tool-to-surface queries over the meshes given (built once, queried per pose).

    Parameters
    ----------
    meshes : the critical surfaces (LPS mm); a structure is named by its mesh's name (or id).
    method : ``"hybrid"`` (default), ``"exact"``, ``"vertices"`` or ``"auto"`` (= hybrid); see the module notes.
    step_mm : spacing of shaft samples for the vertex measure.
    refine_below_mm : the hybrid method measures exactly below this vertex distance.
    """

    def __init__(self, meshes: Sequence[SurfaceMesh], *, method: str = "hybrid", step_mm: float = 1.0,
                 refine_below_mm: float = 10.0, far_relative_error: float = 0.05) -> None:
        from scipy.spatial import cKDTree

        method = "hybrid" if method == "auto" else method
        if method not in METHODS:
            raise ValueError(f"method {method!r}: one of {', '.join(METHODS)}, auto")
        index_class = _surface_index_class()
        if method == "exact" and index_class is None:
            raise ValueError("method 'exact' needs workstation.planning.surface_index")
        self.method = "vertices" if index_class is None else method
        self.step_mm = step_mm
        self.refine_below_mm = refine_below_mm
        self.far_relative_error = far_relative_error
        self.names: tuple[str, ...] = tuple(m.name or m.id for m in meshes)
        self._indexes = [index_class(m) for m in meshes] if self.method != "vertices" else []
        self._trees: list[Any] = []
        self._normals: list[NDArray[np.float64]] = []
        self._vertices: list[NDArray[np.float64]] = []
        for mesh in meshes if self.method != "exact" else ():
            vertices = np.asarray(mesh.vertices_lps, dtype=float)
            self._trees.append(cKDTree(vertices))
            self._vertices.append(vertices)
            self._normals.append(np.asarray(mesh.to_trimesh().vertex_normals, dtype=float))

    def warm_up(self) -> None:
        """Run every code path once (lazy imports, first allocations) so the first live pose is not late."""
        if not self.names:
            return
        if self._indexes:
            index = self._indexes[0]
            p = np.asarray(index.centroids[0], dtype=float)
            self._exact_tool_distance(0, p + 1.0, p - 1.0)
            self._exact_tool_distance(0, p + 1.0, p + 1.0)
        if self._trees:
            self._vertex_distances(np.asarray(self._vertices[0][:2], dtype=float))

    def _vertex_distances(self, points: NDArray[np.float64], eps: float = 0.0) -> NDArray[np.float64]:
        out = np.empty((len(self._trees), len(points)))
        for s, (tree, vertices, normals) in enumerate(zip(self._trees, self._vertices, self._normals, strict=True)):
            dist, idx = tree.query(points, eps=eps)
            inside = np.einsum("ij,ij->i", points - vertices[idx], normals[idx]) < 0
            out[s] = np.where(inside, -dist, dist)
        return out

    def signed_distances(self, points: ArrayLike) -> NDArray[np.float64]:
        """Signed distance (mm, negative inside) of each point (P, 3) to each structure: shape (S, P)."""
        p = np.atleast_2d(np.asarray(points, dtype=float))
        if self.method == "vertices":
            return self._vertex_distances(p)
        out = np.empty((len(self._indexes), len(p)))
        for s, index in enumerate(self._indexes):
            dist = index.closest_points(p)[0]
            out[s] = np.where(index.contains(p), -dist, dist)
        return out

    def contains(self, point: ArrayLike) -> NDArray[np.bool_]:
        """(S,) whether ``point`` (3,) lies inside each structure."""
        return self.signed_distances(np.asarray(point, dtype=float)[None])[:, 0] < 0

    def _exact_tool_distance(self, s: int, tip: NDArray[np.float64], tail: NDArray[np.float64]) -> float:
        index = self._indexes[s]
        if not np.any(tail != tip):
            depth = float(index.closest_points(tip[None])[0][0])
            return -depth if bool(index.contains(tip[None])[0]) else depth
        hit = index.segment_distance(tip, tail)
        if hit.crosses:  # the shaft pierces the surface: minus the depth of the tip inside, or 0
            depth = float(index.closest_points(tip[None])[0][0])
            return -depth if bool(index.contains(tip[None])[0]) else 0.0
        # the whole shaft is on one side; the closest triangle's normal says which
        outward = float((hit.point_on_segment_lps - hit.point_on_surface_lps) @ index.normals[hit.triangle])
        return hit.distance_mm if outward >= 0 else -hit.distance_mm

    def tool_distances(self, tip: ArrayLike, tail: ArrayLike) -> NDArray[np.float64]:
        """Signed distance (mm) of the tool axis segment ``tip`` -> ``tail`` (3,) to each structure: (S,)."""
        tip, tail = np.asarray(tip, dtype=float), np.asarray(tail, dtype=float)
        if self.method == "exact":
            return np.asarray([self._exact_tool_distance(s, tip, tail) for s in range(len(self.names))])
        hybrid = self.method == "hybrid"
        step = 2 * self.step_mm if hybrid else self.step_mm
        eps = self.far_relative_error if hybrid else 0.0
        n = int(np.ceil(float(np.linalg.norm(tail - tip)) / step)) + 1
        out = self._vertex_distances(tip + np.linspace(0.0, 1.0, n)[:, None] * (tail - tip), eps).min(axis=1)
        if hybrid:
            # the coarse value is at most (1 + eps) x the vertex distance + half a step: refine every structure
            # that could be nearer than refine_below_mm
            for s in np.flatnonzero(out < (1 + eps) * self.refine_below_mm + step / 2):
                out[s] = self._exact_tool_distance(int(s), tip, tail)
        return out


def brute_force_min_distances(meshes: Sequence[SurfaceMesh], points: ArrayLike) -> NDArray[np.float64]:
    """Unsigned smallest vertex distance per structure by comparing every point with every vertex.

    The naive baseline of ``benchmarks/bench_live.py``; shape (S,).
    """
    p = np.atleast_2d(np.asarray(points, dtype=float))
    out = []
    for mesh in meshes:
        v = np.asarray(mesh.vertices_lps)
        best = np.inf
        for start in range(0, len(v), 20000):  # chunks keep the (P, chunk) matrix small
            chunk = v[start:start + 20000]
            d2 = (np.sum(p**2, axis=1)[:, None] - 2 * p @ chunk.T + np.sum(chunk**2, axis=1)[None, :]).min()
            best = min(best, float(d2))
        out.append(np.sqrt(max(best, 0.0)))
    return np.asarray(out)
