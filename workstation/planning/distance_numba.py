"""Compiled (numba) exact distance queries over a grouped triangle surface.

Why hand-written: no installed library answers "closest points between a segment and a triangle
mesh" (VTK, trimesh and scipy answer point queries only), and the numpy version
(:mod:`workstation.planning.distance_kernels`, kept as the reference the tests compare against)
spends milliseconds per call on array overhead, too slow to re-check a dragged trajectory. These
kernels walk the triangle groups nearest first and prune with a running best, exactly.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_EPS = 1e-12


@njit(cache=True, nogil=True)
def _dot(a: np.ndarray, b: np.ndarray) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


@njit(cache=True, nogil=True)
def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.empty(3)
    out[0] = a[1] * b[2] - a[2] * b[1]
    out[1] = a[2] * b[0] - a[0] * b[2]
    out[2] = a[0] * b[1] - a[1] * b[0]
    return out


@njit(cache=True, nogil=True)
def closest_on_triangle(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Closest point to ``p`` on triangle ``abc`` (Ericson, Real-Time Collision Detection 5.1.5)."""
    ab = b - a
    ac = c - a
    ap = p - a
    d1 = _dot(ab, ap)
    d2 = _dot(ac, ap)
    if d1 <= 0.0 and d2 <= 0.0:
        return a.copy()
    bp = p - b
    d3 = _dot(ab, bp)
    d4 = _dot(ac, bp)
    if d3 >= 0.0 and d4 <= d3:
        return b.copy()
    vc = d1 * d4 - d3 * d2
    if vc <= 0.0 and d1 >= 0.0 and d3 <= 0.0:
        v = d1 / (d1 - d3)
        return a + v * ab
    cp = p - c
    d5 = _dot(ab, cp)
    d6 = _dot(ac, cp)
    if d6 >= 0.0 and d5 <= d6:
        return c.copy()
    vb = d5 * d2 - d1 * d6
    if vb <= 0.0 and d2 >= 0.0 and d6 <= 0.0:
        w = d2 / (d2 - d6)
        return a + w * ac
    va = d3 * d6 - d5 * d4
    if va <= 0.0 and (d4 - d3) >= 0.0 and (d5 - d6) >= 0.0:
        w = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        return b + w * (c - b)
    denom = 1.0 / (va + vb + vc)
    v = vb * denom
    w = vc * denom
    return a + ab * v + ac * w


@njit(cache=True, nogil=True)
def closest_segment_segment(p0: np.ndarray, p1: np.ndarray, q0: np.ndarray, q1: np.ndarray
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Closest points between segments ``p0p1`` and ``q0q1`` (Ericson 5.1.9)."""
    d1 = p1 - p0
    d2 = q1 - q0
    r = p0 - q0
    a = _dot(d1, d1)
    e = _dot(d2, d2)
    f = _dot(d2, r)
    if a <= _EPS and e <= _EPS:
        return p0.copy(), q0.copy()
    if a <= _EPS:
        s = 0.0
        t = min(max(f / e, 0.0), 1.0)
    else:
        c = _dot(d1, r)
        if e <= _EPS:
            t = 0.0
            s = min(max(-c / a, 0.0), 1.0)
        else:
            b = _dot(d1, d2)
            denom = a * e - b * b
            s = min(max((b * f - c * e) / denom, 0.0), 1.0) if denom > _EPS * a * e else 0.0
            t = (b * s + f) / e
            if t < 0.0:
                t = 0.0
                s = min(max(-c / a, 0.0), 1.0)
            elif t > 1.0:
                t = 1.0
                s = min(max((b - c) / a, 0.0), 1.0)
    return p0 + s * d1, q0 + t * d2


@njit(cache=True, nogil=True)
def segment_crossing(p0: np.ndarray, p1: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """Parameter in [0, 1] where segment ``p0p1`` crosses triangle ``abc``; -1 when it does not."""
    d = p1 - p0
    e1 = b - a
    e2 = c - a
    h = _cross(d, e2)
    det = _dot(e1, h)
    scale = np.sqrt(_dot(e1, e1) * _dot(e2, e2) * _dot(d, d))
    if abs(det) <= 1e-12 * max(scale, _EPS):
        return -1.0
    inv = 1.0 / det
    s = p0 - a
    u = inv * _dot(s, h)
    if u < 0.0 or u > 1.0:
        return -1.0
    q = _cross(s, e1)
    v = inv * _dot(d, q)
    if v < 0.0 or u + v > 1.0:
        return -1.0
    t = inv * _dot(e2, q)
    if t < 0.0 or t > 1.0:
        return -1.0
    return t


@njit(cache=True, nogil=True)
def segment_triangle(p0: np.ndarray, p1: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray
                     ) -> tuple[float, np.ndarray, np.ndarray]:
    """Exact distance and closest points (on the segment, on the triangle)."""
    t = segment_crossing(p0, p1, a, b, c)
    if t >= 0.0:
        x = p0 + t * (p1 - p0)
        return 0.0, x, x.copy()
    q = closest_on_triangle(p0, a, b, c)
    best = np.sqrt(_dot(q - p0, q - p0))
    sp = p0.copy()
    tp = q
    q = closest_on_triangle(p1, a, b, c)
    d = np.sqrt(_dot(q - p1, q - p1))
    if d < best:
        best, sp, tp = d, p1.copy(), q
    for k in range(3):
        u = a if k == 0 else (b if k == 1 else c)
        w = b if k == 0 else (c if k == 1 else a)
        x, y = closest_segment_segment(p0, p1, u, w)
        d = np.sqrt(_dot(x - y, x - y))
        if d < best:
            best, sp, tp = d, x, y
    return best, sp, tp


@njit(cache=True, nogil=True)
def _point_segment(p: np.ndarray, p0: np.ndarray, p1: np.ndarray) -> float:
    d = p1 - p0
    dd = _dot(d, d)
    t = 0.0 if dd <= _EPS else min(max(_dot(p - p0, d) / dd, 0.0), 1.0)
    x = p0 + t * d - p
    return np.sqrt(_dot(x, x))


@njit(cache=True, nogil=True)
def segment_query(p0: np.ndarray, p1: np.ndarray, triangles: np.ndarray, centroids: np.ndarray,
                  radii: np.ndarray, group_centres: np.ndarray, group_radius: np.ndarray, group_start: np.ndarray,
                  members: np.ndarray) -> tuple[float, int, np.ndarray, np.ndarray]:
    """Exact closest approach of segment ``p0p1`` to the surface; groups visited nearest first.

    Returns the distance, the triangle index and the closest points on the segment and the surface.
    """
    n_groups = len(group_radius)
    lower = np.empty(n_groups)
    for g in range(n_groups):
        lower[g] = _point_segment(group_centres[g], p0, p1) - group_radius[g]
    order = np.argsort(lower)
    best = np.inf
    best_tri = -1
    best_sp = p0.copy()
    best_tp = p0.copy()
    for gi in range(n_groups):
        g = order[gi]
        if lower[g] >= best:
            break
        for m in range(group_start[g], group_start[g + 1]):
            k = members[m]
            if _point_segment(centroids[k], p0, p1) - radii[k] >= best:
                continue
            d, sp, tp = segment_triangle(p0, p1, triangles[k, 0], triangles[k, 1], triangles[k, 2])
            if d < best:
                best, best_tri, best_sp, best_tp = d, k, sp, tp
                if best == 0.0:
                    return best, best_tri, best_sp, best_tp
    return best, best_tri, best_sp, best_tp


@njit(cache=True, nogil=True)
def points_query(points: np.ndarray, seeds: np.ndarray, triangles: np.ndarray, centroids: np.ndarray,
                 radii: np.ndarray, group_centres: np.ndarray, group_radius: np.ndarray, group_start: np.ndarray,
                 members: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact closest surface point of each point (N, 3): distances (N,), points (N, 3), triangles (N,).

    ``seeds`` (N,) is a triangle near each point (e.g. the nearest centroid's): its distance is the
    starting bound, so most groups are skipped without sorting them.
    """
    n = len(points)
    n_groups = len(group_radius)
    dist = np.empty(n)
    closest = np.empty((n, 3))
    tris = np.empty(n, dtype=np.int64)
    for i in range(n):
        p = points[i]
        k = seeds[i]
        q = closest_on_triangle(p, triangles[k, 0], triangles[k, 1], triangles[k, 2])
        best = np.sqrt(_dot(q - p, q - p))
        closest[i] = q
        tris[i] = k
        for g in range(n_groups):
            x = group_centres[g] - p
            if np.sqrt(_dot(x, x)) - group_radius[g] >= best:
                continue
            for m in range(group_start[g], group_start[g + 1]):
                k = members[m]
                x = centroids[k] - p
                if np.sqrt(_dot(x, x)) - radii[k] >= best:
                    continue
                q = closest_on_triangle(p, triangles[k, 0], triangles[k, 1], triangles[k, 2])
                d = np.sqrt(_dot(q - p, q - p))
                if d < best:
                    best = d
                    closest[i] = q
                    tris[i] = k
        dist[i] = best
    return dist, closest, tris
