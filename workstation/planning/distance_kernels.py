"""Exact closest points between a line segment and many triangles, vectorised over the triangles (numpy).

The reference implementation: the brute-force peer of ``benchmarks/bench_safety.py`` and the truth the
tests compare the compiled search (:mod:`workstation.planning.distance_numba`) against. The
point-triangle part is trimesh's (``trimesh.triangles.closest_point``, Ericson's method); the
segment-segment and segment-triangle parts are written here because no installed library offers a
segment-to-triangle distance (VTK and trimesh only answer point queries).
"""

from __future__ import annotations

import numpy as np
import trimesh.triangles
from numpy.typing import NDArray

_EPS = 1e-12


def points_to_triangles(points: NDArray[np.float64], triangles: NDArray[np.float64]) -> NDArray[np.float64]:
    """Closest point on each triangle to the matching point.

    Parameters
    ----------
    points : (M, 3) query points (mm).
    triangles : (M, 3, 3) triangle vertices (mm).

    Returns
    -------
    (M, 3) closest points on the triangles.
    """
    if len(points) == 0:
        return np.empty((0, 3))
    return np.asarray(trimesh.triangles.closest_point(triangles, points), dtype=float)


def segment_to_segments(p0: NDArray[np.float64], p1: NDArray[np.float64], q0: NDArray[np.float64],
                        q1: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Closest points between one segment ``p0 -> p1`` and M segments ``q0 -> q1`` (Ericson 5.1.9).

    Parameters
    ----------
    p0, p1 : (3,) ends of the single segment.
    q0, q1 : (M, 3) ends of the other segments.

    Returns
    -------
    (M, 3) closest points on the single segment, (M, 3) closest points on the others.
    """
    d1 = p1 - p0
    d2 = q1 - q0
    r = p0 - q0
    a = float(d1 @ d1)
    e = np.einsum("ij,ij->i", d2, d2)
    f = np.einsum("ij,ij->i", d2, r)
    c = r @ d1
    b = d2 @ d1
    denom = a * e - b * b
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(denom > _EPS * max(a, 1.0) * np.maximum(e, 1.0), np.clip((b * f - c * e) / denom, 0.0, 1.0), 0.0)
        t = np.where(e > _EPS, (b * s + f) / e, 0.0)
        # t outside [0, 1]: clamp it and recompute s for the clamped t
        low, high = (t < 0.0) | (e <= _EPS), t > 1.0
        t = np.clip(t, 0.0, 1.0)
        s = np.where(low, np.clip(-c / a, 0.0, 1.0), s) if a > _EPS else np.zeros_like(s)
        s = np.where(high, np.clip((b - c) / a, 0.0, 1.0), s) if a > _EPS else s
    return p0 + s[:, None] * d1, q0 + t[:, None] * d2


def segment_triangle_crossings(p0: NDArray[np.float64], p1: NDArray[np.float64],
                               triangles: NDArray[np.float64]) -> NDArray[np.float64]:
    """Parameter ``t`` in [0, 1] where the segment crosses each triangle, NaN where it does not.

    Moeller-Trumbore, two-sided. A segment lying in a triangle's plane never counts as crossing it
    (its distance is then found through the edges).
    """
    d = p1 - p0
    e1 = triangles[:, 1] - triangles[:, 0]
    e2 = triangles[:, 2] - triangles[:, 0]
    h = np.cross(d, e2)
    det = np.einsum("ij,ij->i", e1, h)
    scale = np.sqrt(np.einsum("ij,ij->i", e1, e1) * np.einsum("ij,ij->i", e2, e2)) * np.linalg.norm(d)
    ok = np.abs(det) > 1e-12 * np.maximum(scale, _EPS)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        s = p0 - triangles[:, 0]
        u = inv * np.einsum("ij,ij->i", s, h)
        q = np.cross(s, e1)
        v = inv * (q @ d)
        t = inv * np.einsum("ij,ij->i", e2, q)
    hit = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t >= 0) & (t <= 1)
    return np.where(hit, t, np.nan)


def segment_to_triangles(p0: NDArray[np.float64], p1: NDArray[np.float64], triangles: NDArray[np.float64]
                         ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Exact distance and closest points between one segment and each of M triangles.

    Parameters
    ----------
    p0, p1 : (3,) segment ends (mm).
    triangles : (M, 3, 3) triangle vertices (mm).

    Returns
    -------
    distance : (M,) mm (0 where the segment crosses the triangle).
    on_segment : (M, 3) closest point on the segment.
    on_triangle : (M, 3) closest point on the triangle.
    """
    m = len(triangles)
    if m == 0:
        return np.empty(0), np.empty((0, 3)), np.empty((0, 3))
    p0 = np.asarray(p0, dtype=float)
    p1 = np.asarray(p1, dtype=float)
    # candidates: both segment ends against the triangle, the segment against the three edges
    seg_pts = np.empty((5, m, 3))
    tri_pts = np.empty((5, m, 3))
    seg_pts[0] = p0
    tri_pts[0] = points_to_triangles(np.broadcast_to(p0, (m, 3)), triangles)
    seg_pts[1] = p1
    tri_pts[1] = points_to_triangles(np.broadcast_to(p1, (m, 3)), triangles)
    for n, (i, j) in enumerate(((0, 1), (1, 2), (2, 0))):
        seg_pts[2 + n], tri_pts[2 + n] = segment_to_segments(p0, p1, triangles[:, i], triangles[:, j])
    dist2 = np.sum((seg_pts - tri_pts) ** 2, axis=2)
    best = np.argmin(dist2, axis=0)
    cols = np.arange(m)
    distance = np.sqrt(dist2[best, cols])
    on_segment = seg_pts[best, cols]
    on_triangle = tri_pts[best, cols]
    t = segment_triangle_crossings(p0, p1, triangles)
    hit = np.isfinite(t)
    if hit.any():
        crossing = p0 + t[hit, None] * (p1 - p0)
        distance[hit] = 0.0
        on_segment[hit] = crossing
        on_triangle[hit] = crossing
    return distance, on_segment, on_triangle


def point_to_segment_distance(points: NDArray[np.float64], p0: NDArray[np.float64],
                              p1: NDArray[np.float64]) -> NDArray[np.float64]:
    """(M,) distance of each point (M, 3) to the segment ``p0 -> p1`` (mm)."""
    d = p1 - p0
    dd = float(d @ d)
    t = np.clip((points - p0) @ d / dd, 0.0, 1.0) if dd > _EPS else np.zeros(len(points))
    return np.linalg.norm(points - (p0 + t[:, None] * d), axis=1)
