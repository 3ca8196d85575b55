"""Surface and tetrahedral meshes in LPS millimetres, numpy at heart."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from workstation.model.volume import frozen_array


def _checked_cells(cells: Any, *, n_points: int, width: int, what: str) -> NDArray[np.int64]:
    cells = np.asarray(cells, dtype=np.int64)
    if cells.ndim != 2 or cells.shape[1] != width:
        raise ValueError(f"{what}: cells must have shape (M, {width}), got {cells.shape}")
    if cells.size and (cells.min() < 0 or cells.max() >= n_points):
        raise ValueError(f"{what}: cell indices must lie in 0..{n_points - 1}")
    return frozen_array(cells)


def _checked_points(points: Any, *, what: str) -> NDArray[np.float64]:
    points = np.asarray(points, dtype=float)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"{what}: points must have shape (N, 3), got {points.shape}")
    if not np.all(np.isfinite(points)):
        raise ValueError(f"{what}: points must be finite")
    return frozen_array(points)


@dataclass(frozen=True, eq=False)
class SurfaceMesh:
    """A triangle surface.

    Attributes
    ----------
    vertices_lps : (N, 3) vertex positions in LPS mm.
    triangles : (M, 3) vertex indices, counter-clockwise seen from outside.
    name, id : identity inside a case; ``segment`` names the label-map segment it derives from.
    color_rgb : (r, g, b) in 0..1.
    provenance : parameters that rebuild it from its label map; JSON-serialisable.
    """

    vertices_lps: NDArray[np.float64]
    triangles: NDArray[np.int64]
    name: str = ""
    id: str = ""
    segment: str = ""
    color_rgb: tuple[float, float, float] = (0.9, 0.8, 0.6)
    provenance: dict[str, Any] = field(default_factory=dict)
    coordinate_system: str = "LPS"

    def __post_init__(self) -> None:
        vertices = _checked_points(self.vertices_lps, what="SurfaceMesh")
        object.__setattr__(self, "vertices_lps", vertices)
        object.__setattr__(self, "triangles",
                           _checked_cells(self.triangles, n_points=len(vertices), width=3, what="SurfaceMesh"))

    @property
    def n_vertices(self) -> int:
        return len(self.vertices_lps)

    @property
    def n_triangles(self) -> int:
        return len(self.triangles)

    def to_pyvista(self) -> Any:
        """A ``pyvista.PolyData`` (coordinates LPS mm)."""
        import pyvista as pv

        faces = np.hstack([np.full((self.n_triangles, 1), 3), self.triangles]).ravel()
        return pv.PolyData(np.array(self.vertices_lps), faces)

    def to_trimesh(self) -> Any:
        """A ``trimesh.Trimesh`` (coordinates LPS mm, not processed or merged)."""
        import trimesh

        return trimesh.Trimesh(np.array(self.vertices_lps), np.array(self.triangles), process=False)

    @classmethod
    def from_pyvista(cls, polydata: Any, **fields: Any) -> SurfaceMesh:
        """From a triangulated ``pyvista.PolyData`` whose points are LPS mm."""
        tri = polydata.triangulate()
        return cls(vertices_lps=np.asarray(tri.points, dtype=float),
                   triangles=np.asarray(tri.faces).reshape(-1, 4)[:, 1:], **fields)


@dataclass(frozen=True, eq=False)
class TetMesh:
    """A linear tetrahedral mesh.

    Attributes
    ----------
    points_lps : (N, 3) node positions in LPS mm.
    tets : (M, 4) node indices per tetrahedron (positive orientation).
    region_ids : (M,) integer region per tetrahedron (e.g. the label value).
    """

    points_lps: NDArray[np.float64]
    tets: NDArray[np.int64]
    region_ids: NDArray[np.int64] | None = None
    name: str = ""
    id: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    coordinate_system: str = "LPS"

    def __post_init__(self) -> None:
        points = _checked_points(self.points_lps, what="TetMesh")
        tets = _checked_cells(self.tets, n_points=len(points), width=4, what="TetMesh")
        regions = np.zeros(len(tets), dtype=np.int64) if self.region_ids is None else np.asarray(
            self.region_ids, dtype=np.int64)
        if regions.shape != (len(tets),):
            raise ValueError(f"TetMesh: region_ids must have shape ({len(tets)},), got {regions.shape}")
        object.__setattr__(self, "points_lps", points)
        object.__setattr__(self, "tets", tets)
        object.__setattr__(self, "region_ids", frozen_array(regions))

    @property
    def n_points(self) -> int:
        return len(self.points_lps)

    @property
    def n_tets(self) -> int:
        return len(self.tets)

    def signed_volumes_mm3(self) -> NDArray[np.float64]:
        """(M,) signed volume of each tetrahedron in mm^3 (positive when well oriented)."""
        p = self.points_lps[self.tets]
        return np.einsum("ij,ij->i", np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), p[:, 3] - p[:, 0]) / 6.0

    def to_pyvista(self) -> Any:
        """A ``pyvista.UnstructuredGrid`` with cell data ``region_id``."""
        import pyvista as pv

        cells = np.hstack([np.full((self.n_tets, 1), 4), self.tets]).ravel()
        celltypes = np.full(self.n_tets, pv.CellType.TETRA, dtype=np.uint8)
        grid = pv.UnstructuredGrid(cells, celltypes, np.array(self.points_lps))
        grid.cell_data["region_id"] = np.array(self.region_ids)
        return grid
