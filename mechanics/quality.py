"""Quality of a tetrahedral mesh: dihedral angles, radius-edge ratio, inverted, degenerate and sliver elements.

Definitions (per tetrahedron):

* dihedral angles: the six angles between the pairs of faces meeting at each edge (a regular
  tetrahedron has 70.53 deg everywhere);
* radius-edge ratio: circumradius / shortest edge (regular: sqrt(6)/4 = 0.612); TetGen's ``-q``
  bound is on this ratio;
* inverted: signed volume below ``-tolerance``; degenerate: ``|volume| <= tolerance`` where the
  tolerance is ``1e-12 * (mean edge length)^3`` of that tetrahedron;
* sliver: a non-degenerate tetrahedron whose smallest dihedral angle is below ``sliver_deg``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from workstation.model import TetMesh

DEFAULT_SLIVER_DEG = 5.0
_EDGES = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))
# Faces opposite each vertex; face k is opposite vertex k.
_FACES = ((1, 2, 3), (0, 3, 2), (0, 1, 3), (0, 2, 1))


def dihedral_angles_deg(points: NDArray[np.float64], tets: NDArray[np.int64]) -> NDArray[np.float64]:
    """(M, 6) interior dihedral angles in degrees at the edges 01, 02, 03, 12, 13, 23."""
    p = np.asarray(points, dtype=float)[np.asarray(tets)]
    normals = []
    for k, (a, b, c) in enumerate(_FACES):
        n = np.cross(p[:, b] - p[:, a], p[:, c] - p[:, a])
        # Orient each face normal away from the opposite vertex (outward) whatever the tet's orientation.
        away = np.einsum("ij,ij->i", n, p[:, a] - p[:, k])
        n = n * np.where(away < 0, -1.0, 1.0)[:, None]
        length = np.linalg.norm(n, axis=1, keepdims=True)
        normals.append(n / np.where(length > 0, length, 1.0))
    angles = np.empty((len(p), 6))
    for e, (i, j) in enumerate(_EDGES):
        k, m = (v for v in range(4) if v not in (i, j))
        cos = np.clip(np.einsum("ij,ij->i", normals[k], normals[m]), -1.0, 1.0)
        angles[:, e] = 180.0 - np.degrees(np.arccos(cos))
    return angles


def radius_edge_ratios(points: NDArray[np.float64], tets: NDArray[np.int64]) -> NDArray[np.float64]:
    """(M,) circumradius / shortest edge; ``inf`` for degenerate tetrahedra."""
    p = np.asarray(points, dtype=float)[np.asarray(tets)]
    a, b, c = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0], p[:, 3] - p[:, 0]
    denom = 2.0 * np.einsum("ij,ij->i", a, np.cross(b, c))
    num = (np.einsum("ij,ij->i", a, a)[:, None] * np.cross(b, c) + np.einsum("ij,ij->i", b, b)[:, None]
           * np.cross(c, a) + np.einsum("ij,ij->i", c, c)[:, None] * np.cross(a, b))
    with np.errstate(divide="ignore", invalid="ignore"):
        radius = np.linalg.norm(num, axis=1) / np.abs(denom)
    edges = np.stack([np.linalg.norm(p[:, j] - p[:, i], axis=1) for i, j in _EDGES], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = radius / edges.min(axis=1)
    return np.where(np.isfinite(ratio), ratio, np.inf)


@dataclass(frozen=True)
class TetQuality:
    """Quality figures of a tetrahedral mesh (angles in degrees, volume in mm^3)."""

    n_points: int
    n_tets: int
    volume_mm3: float
    min_dihedral_deg: float
    max_dihedral_deg: float
    max_radius_edge_ratio: float
    mean_radius_edge_ratio: float
    n_inverted: int
    n_degenerate: int
    n_slivers: int
    sliver_threshold_deg: float
    region_volumes_mm3: dict[int, float]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["region_volumes_mm3"] = {str(k): v for k, v in self.region_volumes_mm3.items()}
        return data

    def summary(self) -> str:
        """One line for a terminal."""
        return (f"{self.n_tets} tets, {self.n_points} nodes, {self.volume_mm3 / 1000:.2f} ml; dihedral "
                f"{self.min_dihedral_deg:.1f}..{self.max_dihedral_deg:.1f} deg; radius-edge ratio max "
                f"{self.max_radius_edge_ratio:.2f} mean {self.mean_radius_edge_ratio:.2f}; inverted {self.n_inverted}, "
                f"degenerate {self.n_degenerate}, slivers (<{self.sliver_threshold_deg:g} deg) {self.n_slivers}")


def tet_quality(mesh: TetMesh, *, sliver_deg: float = DEFAULT_SLIVER_DEG) -> TetQuality:
    """Measure ``mesh`` (see the module notes for the definitions)."""
    points, tets = np.asarray(mesh.points_lps), np.asarray(mesh.tets)
    if len(tets) == 0:
        return TetQuality(mesh.n_points, 0, 0.0, float("nan"), float("nan"), float("nan"), float("nan"), 0, 0, 0,
                          sliver_deg, {})
    volumes = mesh.signed_volumes_mm3()
    p = points[tets]
    mean_edge = np.mean([np.linalg.norm(p[:, j] - p[:, i], axis=1) for i, j in _EDGES], axis=0)
    tolerance = 1e-12 * mean_edge ** 3
    degenerate = np.abs(volumes) <= tolerance
    inverted = volumes < -tolerance
    angles = dihedral_angles_deg(points, tets)
    good = ~degenerate
    ratios = radius_edge_ratios(points, tets)
    slivers = good & (angles.min(axis=1) < sliver_deg)
    regions = np.asarray(mesh.region_ids)
    region_volumes = {int(r): float(volumes[regions == r].sum()) for r in np.unique(regions)}
    return TetQuality(
        n_points=mesh.n_points, n_tets=mesh.n_tets, volume_mm3=float(volumes.sum()),
        min_dihedral_deg=float(angles[good].min()) if good.any() else 0.0,
        max_dihedral_deg=float(angles[good].max()) if good.any() else 180.0,
        max_radius_edge_ratio=float(ratios.max()), mean_radius_edge_ratio=float(ratios[good].mean()) if good.any()
        else float("inf"),
        n_inverted=int(inverted.sum()), n_degenerate=int(degenerate.sum()), n_slivers=int(slivers.sum()),
        sliver_threshold_deg=float(sliver_deg), region_volumes_mm3=region_volumes)
