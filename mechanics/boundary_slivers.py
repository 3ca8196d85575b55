"""Removal of flat tetrahedra lying on the boundary of a tetrahedral mesh ("ears").

Where the boundary is nearly flat, TetGen can leave a tetrahedron whose two faces are both boundary
triangles meeting at an edge with a dihedral angle near 180 deg: the element is flat (a sliver)
whatever the optimisation, since TetGen may not flip boundary faces. Deleting it is the same as
flipping that boundary edge: the two other faces become the boundary, which moves by at most the
element's thickness, and the enclosed volume shrinks by the element's (tiny) volume.

An ear is deleted only if the boundary stays a closed 2-manifold: the new boundary edge (between the
two vertices off the flat edge) must not be a boundary edge already. Tets with one or no boundary
face are never deleted (their removal would pinch the boundary or open a hole), so the pass cannot
remove every sliver; the caller measures the result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

# Face k is opposite vertex k; outward for a positively oriented tetrahedron.
_FACES = ((1, 2, 3), (0, 3, 2), (0, 1, 3), (0, 2, 1))
# Index (into dihedral_angles_deg's 6 edges 01 02 03 12 13 23) of the edge shared by faces k1 < k2:
# the edge between the two vertices other than k1 and k2.
_SHARED_EDGE = {(0, 1): 5, (0, 2): 4, (0, 3): 3, (1, 2): 2, (1, 3): 1, (2, 3): 0}


@dataclass(frozen=True)
class PeelResult:
    """Which tetrahedra survive and what the removal changed."""

    keep: NDArray[np.bool_]
    n_removed: int
    removed_volume_mm3: float
    max_thickness_mm: float


def _boundary_faces(tets: NDArray[np.int64], n_points: int) -> NDArray[np.bool_]:
    """(M, 4): face k of tet m is on the boundary (belongs to no other tet)."""
    faces = np.sort(np.concatenate([tets[:, list(f)] for f in _FACES]), axis=1)
    key = (faces[:, 0] * n_points + faces[:, 1]) * n_points + faces[:, 2]
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    return (counts[inverse] == 1).reshape(4, -1).T


def peel_boundary_ears(points: NDArray[np.float64], tets: NDArray[np.int64], *, below_deg: float,
                       max_passes: int = 8) -> PeelResult:
    """Delete the boundary ears (see the module notes) whose smallest dihedral angle is below ``below_deg``.

    Parameters
    ----------
    points : (N, 3) node coordinates, mm.
    tets : (M, 4) positively oriented tetrahedra.
    below_deg : ears with a smaller minimum dihedral angle are deleted.

    Returns
    -------
    PeelResult
        ``keep`` (M,) mask of the surviving tetrahedra, how many were removed, their total volume (mm^3)
        and the largest height of a removed element over its boundary faces (mm): a bound on how far the
        boundary moved.
    """
    from mechanics.quality import dihedral_angles_deg

    pts = np.asarray(points, dtype=np.float64)
    tets = np.asarray(tets, dtype=np.int64)
    keep = np.ones(len(tets), dtype=bool)
    if len(tets) == 0:
        return PeelResult(keep, 0, 0.0, 0.0)
    angles = dihedral_angles_deg(pts, tets)
    low = angles.min(axis=1) < below_deg
    n = len(pts)
    removed_volume, thickness = 0.0, 0.0
    for _ in range(max_passes):
        alive = np.flatnonzero(keep)
        boundary = _boundary_faces(tets[alive], n)
        candidates = np.flatnonzero(low[alive] & (boundary.sum(axis=1) == 2))
        if len(candidates) == 0:
            break
        faces = np.concatenate([tets[alive][boundary[:, k]][:, list(_FACES[k])] for k in range(4)])
        edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
        boundary_edges = set((edges[:, 0] * n + edges[:, 1]).tolist())
        locked: set[int] = set()
        done = 0
        for local in candidates[np.argsort(angles[alive[candidates]].min(axis=1))]:
            m = int(alive[local])
            k1, k2 = (int(k) for k in np.flatnonzero(boundary[local]))
            if angles[m, _SHARED_EDGE[(k1, k2)]] < 90.0:
                continue  # a sharp ridge of the boundary, not a flat ear
            c, d = sorted((int(tets[m, k1]), int(tets[m, k2])))
            if c * n + d in boundary_edges or locked.intersection(tets[m].tolist()):
                continue
            p = pts[tets[m]]
            volume = float(np.dot(np.cross(p[1] - p[0], p[2] - p[0]), p[3] - p[0])) / 6.0
            # The boundary moves by at most the larger height of the removed element over its boundary faces.
            area = min(float(np.linalg.norm(np.cross(*(p[list(_FACES[k])][1:] - p[list(_FACES[k])][0]))))
                       for k in (k1, k2)) / 2.0
            keep[m] = False
            boundary_edges.add(c * n + d)
            locked.update(tets[m].tolist())
            removed_volume += volume
            thickness = max(thickness, 3.0 * volume / max(area, 1e-300))
            done += 1
        if done == 0:
            break
    return PeelResult(keep, int((~keep).sum()), removed_volume, thickness)
