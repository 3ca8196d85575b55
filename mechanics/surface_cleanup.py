"""Triangle clean-up of a closed surface before TetGen, so that its elements can be well shaped.

TetGen keeps the input triangles on the boundary (it only splits them), so a triangle with an angle
near 180 deg ("cap") or a very short edge ("needle") forces flat tetrahedra next to it whatever the
switches: on the ACVD-coarsened sample liver one cap with a 179.8 deg angle gave tetrahedra with
dihedral angles of 0.02 deg and radius-edge ratios of 2000. Two local, standard operations remove
them without moving any vertex:

* :func:`collapse_short_edges` -- an edge much shorter than the local size is collapsed to its
  midpoint when the link condition holds (the surface stays a closed 2-manifold) and no triangle
  around it turns over or becomes a sliver;
* :func:`flip_edges` -- an edge whose two triangles are not locally Delaunay (opposite angles summing
  to more than 180 deg) is flipped when the two triangles are nearly coplanar (the flip moves the
  surface by at most the flat tetrahedron between the two diagonals) and the new edge is not an
  edge already.

Both keep the triangle winding (every directed edge of the result is one of the input's, or a new
diagonal used once in each direction). :func:`small_components` finds the closed pieces (specks,
voxel-sized voids) too small to hold one element, or with too few triangles to be meshed well.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

_COPLANAR_DEG = 30.0  # largest angle between the two triangles' normals before or after a flip
_MAX_TURN_DEG = 45.0  # largest angle a triangle's normal may turn in a flip or collapse
_MIN_COMPONENT_TRIANGLES = 20


def _angles_at(p: NDArray[np.float64], q: NDArray[np.float64], r: NDArray[np.float64]) -> NDArray[np.float64]:
    """Angle at ``p`` of the triangles (p, q, r), degrees; points (n, 3)."""
    u, w = q - p, r - p
    norm = np.linalg.norm(u, axis=1) * np.linalg.norm(w, axis=1)
    cosine = np.einsum("ij,ij->i", u, w) / np.maximum(norm, 1e-300)
    return np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))


def _edge_pairs(triangles: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Half-edge indices (h1, h2) of the manifold edges (two triangles, opposite directions) and the
    sorted (E, 2) array of every edge. Half-edge ``h`` is edge ``h // M`` of triangle ``h % M``."""
    directed = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    key = np.sort(directed, axis=1)
    unique, inverse, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    order = np.argsort(inverse.ravel(), kind="stable")
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    two = np.flatnonzero(counts == 2)
    h1, h2 = order[start[two]], order[start[two] + 1]
    opposite = (directed[h1, 0] == directed[h2, 1]) & (directed[h1, 1] == directed[h2, 0])
    return h1[opposite], h2[opposite], unique


def flip_edges(points: NDArray[np.float64], triangles: NDArray[np.int64], *, max_passes: int = 50
               ) -> tuple[NDArray[np.int64], int]:
    """Flip the non-Delaunay edges between nearly coplanar triangles (see the module notes).

    Parameters
    ----------
    points : (N, 3) vertices, mm.
    triangles : (M, 3) consistently wound triangles: a closed surface, or several surfaces merged into
        one PLC (only edges with exactly two triangles are flipped, so shared interfaces stay shared).

    Returns
    -------
    (M, 3) new triangles (same vertices, same count) and the number of flips.
    """
    pts = np.asarray(points, dtype=np.float64)
    tri = np.array(triangles, dtype=np.int64)
    n = len(tri)
    cos_coplanar = np.cos(np.radians(_COPLANAR_DEG))
    cos_turn = np.cos(np.radians(_MAX_TURN_DEG))
    flips = 0
    for _ in range(max_passes):
        h1, h2, edges = _edge_pairs(tri)
        corner = np.concatenate([tri[:, [0, 1, 2]], tri[:, [1, 2, 0]], tri[:, [2, 0, 1]]])
        a, b, c, d = corner[h1, 0], corner[h1, 1], corner[h1, 2], corner[h2, 2]
        excess = _angles_at(pts[c], pts[a], pts[b]) + _angles_at(pts[d], pts[a], pts[b]) - 180.0
        candidates = np.flatnonzero((excess > 1e-6) & (c != d))
        if len(candidates) == 0:
            break
        existing = set(map(tuple, edges.tolist()))
        touched: set[int] = set()
        done = 0
        for i in candidates[np.argsort(-excess[candidates])]:
            t1, t2 = int(h1[i] % n), int(h2[i] % n)
            if t1 in touched or t2 in touched:
                continue
            va, vb, vc, vd = int(a[i]), int(b[i]), int(c[i]), int(d[i])
            diagonal = (min(vc, vd), max(vc, vd))
            if diagonal in existing:
                continue
            pa, pb, pc, pd = pts[va], pts[vb], pts[vc], pts[vd]
            # Area-weighted normal of the old pair: a near-degenerate cap (folded over or not) hardly counts.
            both = np.cross(pb - pa, pc - pa) + np.cross(pa - pb, pd - pb)
            n1, n2 = np.cross(pa - pc, pd - pc), np.cross(pb - pd, pc - pd)
            lengths = [float(np.linalg.norm(x)) for x in (both, n1, n2)]
            if min(lengths) <= 0.0:
                continue
            if (n1 @ n2 < cos_coplanar * lengths[1] * lengths[2] or n1 @ both < cos_turn * lengths[1] * lengths[0]
                    or n2 @ both < cos_turn * lengths[2] * lengths[0]):
                continue  # the new pair would fold or cut across a ridge
            tri[t1] = (vc, va, vd)
            tri[t2] = (vd, vb, vc)
            existing.discard((min(va, vb), max(va, vb)))
            existing.add(diagonal)
            touched.update((t1, t2))
            done += 1
        flips += done
        if done == 0:
            break
    return tri, flips


def collapse_short_edges(points: NDArray[np.float64], triangles: NDArray[np.int64], *, min_edge_mm: float,
                         sliver_angle_deg: float = 0.0, max_sliver_edge_mm: float = 0.0,
                         max_passes: int = 10) -> tuple[NDArray[np.float64], NDArray[np.int64], int]:
    """Collapse short edges to their midpoints (see the module notes), shortest first.

    Parameters
    ----------
    points, triangles : closed, consistently wound surface (mm).
    min_edge_mm : every edge shorter than this is a candidate.
    sliver_angle_deg, max_sliver_edge_mm : so is the shortest edge of a triangle with an angle below
        ``sliver_angle_deg`` when it is shorter than ``max_sliver_edge_mm`` (needles and caps of a
        decimated surface).

    Returns
    -------
    (N', 3) points (unused ones removed), (M', 3) triangles and the number of collapses.
    """
    pts = np.array(points, dtype=np.float64)
    tri = np.array(triangles, dtype=np.int64)
    cos_turn = np.cos(np.radians(_MAX_TURN_DEG))
    collapses = 0
    for _ in range(max_passes):
        h1, h2, _ = _edge_pairs(tri)
        n = len(tri)
        corner = np.concatenate([tri[:, [0, 1, 2]], tri[:, [1, 2, 0]], tri[:, [2, 0, 1]]])
        a, b = corner[h1, 0], corner[h1, 1]
        length = np.linalg.norm(pts[a] - pts[b], axis=1)
        wanted = length < min_edge_mm
        if sliver_angle_deg > 0.0:
            # Half-edge h of a triangle is its shortest edge and the triangle has a tiny angle: collapse it.
            sides = np.linalg.norm(pts[corner[:, 1]] - pts[corner[:, 0]], axis=1).reshape(3, n)
            p0, p1, p2 = (pts[tri[:, k]] for k in range(3))
            smallest = np.minimum(np.minimum(_angles_at(p0, p1, p2), _angles_at(p1, p2, p0)), _angles_at(p2, p0, p1))
            shortest = sides == sides.min(axis=0)
            needle = (shortest & (smallest < sliver_angle_deg)[None, :]).ravel()
            wanted |= (needle[h1] | needle[h2]) & (length < max_sliver_edge_mm)
        candidates = np.flatnonzero(wanted)
        if len(candidates) == 0:
            break
        incident: dict[int, list[int]] = {}
        for t, row in enumerate(tri.tolist()):
            for v in row:
                incident.setdefault(v, []).append(t)
        alive = np.ones(n, dtype=bool)
        locked: set[int] = set()
        done = 0
        for i in candidates[np.argsort(length[candidates])]:
            va, vb = int(a[i]), int(b[i])
            t1, t2 = int(h1[i] % n), int(h2[i] % n)
            if va in locked or vb in locked:
                continue
            ring_a = {v for t in incident[va] for v in tri[t]} - {va}
            ring_b = {v for t in incident[vb] for v in tri[t]} - {vb}
            shared = ring_a & ring_b
            opposite = {int(corner[h1[i], 2]), int(corner[h2[i], 2])}
            if shared != opposite or len(ring_a) < 4 or len(ring_b) < 4:
                continue  # link condition: collapsing would pinch the surface
            middle = 0.5 * (pts[va] + pts[vb])
            around = [t for t in set(incident[va]) | set(incident[vb]) if t not in (t1, t2)]
            ok = True
            for t in around:
                old = pts[tri[t]]
                new = np.where((tri[t] == va)[:, None] | (tri[t] == vb)[:, None], middle, old)
                n_old = np.cross(old[1] - old[0], old[2] - old[0])
                n_new = np.cross(new[1] - new[0], new[2] - new[0])
                if n_new @ n_old <= cos_turn * np.linalg.norm(n_new) * np.linalg.norm(n_old):
                    ok = False
                    break
            if not ok:
                continue
            pts[va] = middle
            for t in incident[vb]:
                tri[t][tri[t] == vb] = va
            alive[[t1, t2]] = False
            locked.update(ring_a | ring_b | {va, vb})
            done += 1
        tri = tri[alive]
        collapses += done
        if done == 0:
            break
    used, inverse = np.unique(tri, return_inverse=True)
    return pts[used], inverse.reshape(tri.shape), collapses


def small_components(points: NDArray[np.float64], triangles: NDArray[np.int64], *, min_volume_mm3: float,
                     min_triangles: int = _MIN_COMPONENT_TRIANGLES) -> NDArray[np.bool_]:
    """(M,) True for the triangles of the connected pieces enclosing less than ``min_volume_mm3`` (either sign)
    or made of fewer than ``min_triangles`` triangles (a remesh can pinch off a flat 4-triangle piece)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    tri = np.asarray(triangles, dtype=np.int64)
    pts = np.asarray(points, dtype=np.float64)
    edges = np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]]])
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(len(pts),) * 2)
    _, labels = connected_components(graph, directed=False)
    component = labels[tri[:, 0]]
    p = pts[tri]
    signed = np.einsum("ij,ij->i", p[:, 0], np.cross(p[:, 1], p[:, 2])) / 6.0
    volume = np.bincount(component, weights=signed)
    count = np.bincount(component)
    return (np.abs(volume) < min_volume_mm3)[component] | (count < min_triangles)[component]
