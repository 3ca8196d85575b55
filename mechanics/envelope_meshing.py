"""Coarse multi-region tetrahedral meshes of touching surfaces with fTetWild (an envelope mesher).

Why not TetGen here: TetGen keeps every boundary triangle (it may split one, never merge), so the
surfaces it is given must already be at element size. One closed surface can be remeshed to that
size (:func:`mechanics.meshing.coarsen_surface`); the shared-interface surfaces of several touching
segments cannot, without breaking the interface they share. Quadric decimation of them leaves
triangles from 1 to 9 mm, and TetGen then fills the fine ones with small, flat tets: liver + vena
cava from ct-abdomen-20 at 8 mm gave 156,250 tets, a smallest dihedral angle of 0.3 deg and 226
slivers.

fTetWild (Hu et al., "Fast Tetrahedral Meshing in the Wild", SIGGRAPH 2020; the ``pytetwild``
wrapper) meshes the surfaces' bounding box at the requested edge length and keeps the input
triangles only within an envelope of ``epsilon_mm``, so both the outer boundary and the interface
come out at element size. Its own inside/outside filtering is off: each tet is assigned here to
the smallest surface that encloses its centroid (the sign of VTK's implicit distance to it), which keeps
a region nested inside another. Regions share nodes and faces by construction (one tet mesh), so
their interfaces conform. Element-size chords cut the convex parts of the surfaces, so the outer
boundary is then offset along its normals to give each region its surface's volume back, and the
volumes are checked.

fTetWild's optimisation is multi-threaded and not bit-reproducible from run to run (tet counts
vary by a few percent); the mesh stored in the case is what later steps use. It runs in a child
process (:mod:`mechanics.mesher_worker`) in a scratch folder, where it writes a file of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from workstation.errors import InputError
from workstation.model.mesh import SurfaceMesh, TetMesh
from workstation.progress import ProgressCallback, report

MAX_VOLUME_ERROR = 0.05  # a region whose tets miss its surface's volume by more is refused


def _enclosing(surfaces: Sequence[SurfaceMesh], points: NDArray[np.float64]
               ) -> tuple[NDArray[np.int64], list[int | None]]:
    """Index of the smallest surface that encloses each point (N, 3) (-1 where none does), and each
    surface's parent: the smallest other surface that encloses it (an inclusion), None for none."""
    import pyvista as pv

    from mechanics.meshing import enclosed_volume_mm3

    volumes = [abs(enclosed_volume_mm3(s.vertices_lps, s.triangles)) for s in surfaces]
    owner = np.full(len(points), -1, dtype=np.int64)
    inside = np.zeros((len(surfaces), len(points)), dtype=bool)
    order = np.argsort(volumes)[::-1]  # larger first: a nested surface overwrites its container
    for index in order:
        surface = surfaces[index]
        low, high = surface.vertices_lps.min(axis=0), surface.vertices_lps.max(axis=0)
        near = np.flatnonzero(np.all((points >= low) & (points <= high), axis=1))
        if near.size == 0:
            continue
        cloud = pv.PolyData(np.ascontiguousarray(points[near]))
        selected = cloud.select_interior_points(surface.to_pyvista(), check_surface=False)
        inside[index, near[np.asarray(selected["selected_points"], dtype=bool)]] = True
        owner[inside[index]] = index
    parents: list[int | None] = []
    for index in range(len(surfaces)):
        containers = [other for other in order if other != index and volumes[other] > volumes[index]
                      and inside[index].any() and inside[other][inside[index]].mean() > 0.5]
        parents.append(min(containers, key=lambda other: volumes[other]) if containers else None)
    return owner, parents


def _boundary_faces(nodes: NDArray[np.float64], tets: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(F, 3) faces of the mesh's outer boundary, wound outward, and the tet each belongs to."""
    corners = ((1, 2, 3), (0, 3, 2), (0, 1, 3), (0, 2, 1))  # outward for a positively oriented tet
    faces = np.concatenate([tets[:, list(c)] for c in corners])
    owner = np.tile(np.arange(len(tets)), len(corners))
    _, inverse, counts = np.unique(np.sort(faces, axis=1), axis=0, return_inverse=True, return_counts=True)
    once = counts[inverse.ravel()] == 1
    return faces[once], owner[once]


def _restore_volumes(nodes: NDArray[np.float64], tets: NDArray[np.int64], owner: NDArray[np.int64],
                     targets: Sequence[float]) -> NDArray[np.float64]:
    """Nodes with the outer boundary offset along its normals so that each region holds its target volume.

    Chords at element size cut the convex parts of a surface (a 5 mm mesh of a 16 ml half-ellipsoid
    held 2.9% less): each region's outer faces move by its missing volume over their area (two
    passes). Interfaces between regions do not move. The input is returned unchanged if a tet
    would invert.
    """
    faces, face_tet = _boundary_faces(nodes, tets)
    region = owner[face_tet]
    moved = nodes.copy()
    for _ in range(2):
        volumes = np.bincount(owner, weights=TetMesh(moved, tets).signed_volumes_mm3(), minlength=len(targets))
        p = moved[faces]
        area_normals = 0.5 * np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
        areas = np.linalg.norm(area_normals, axis=1)
        region_area = np.bincount(region, weights=areas, minlength=len(targets))
        offset = (np.asarray(targets) - volumes) / np.maximum(region_area, 1e-12)  # mm, per region
        push = np.zeros_like(moved)
        weight = np.zeros(len(moved))
        for corner in range(3):
            np.add.at(push, faces[:, corner], offset[region][:, None] * area_normals)
            np.add.at(weight, faces[:, corner], areas)
        on_boundary = weight > 0
        moved[on_boundary] += push[on_boundary] / weight[on_boundary, None]
    if TetMesh(moved, tets).signed_volumes_mm3().min() <= 0:
        return nodes
    return moved


def tetrahedralize_regions_envelope(surfaces: Sequence[SurfaceMesh], region_ids: Sequence[int], *, size_mm: float,
                                    epsilon_mm: float, name: str = "",
                                    progress: ProgressCallback | None = None) -> TetMesh:
    """One conforming tet mesh of touching closed surfaces at edge length ``size_mm`` (fTetWild).

    Parameters
    ----------
    surfaces : closed, outward surfaces in LPS mm; touching ones share their interface triangles
        (as :func:`segmentation.surface.label_map_surfaces` builds them).
    region_ids : the region id of each surface (e.g. its label value), all different.
    size_mm : target edge length of the tets, mm.
    epsilon_mm : how far the mesh's boundary and interfaces may lie from the surfaces, mm.
    name : name of the mesh.
    progress : ``progress(done, total, message)``; returning False cancels between steps.

    Returns
    -------
    TetMesh
        Points (N, 3) in LPS mm, positively oriented tets (M, 4), ``region_ids`` (M,);
        ``provenance["meshing"]`` holds the mesher, its settings and the region volumes against
        the surfaces'.

    Raises
    ------
    InputError
        Bad size or envelope, fTetWild failing, or a region whose tets miss its surface's volume
        by more than :data:`MAX_VOLUME_ERROR` (the caller may then use another mesher).
    """
    from importlib.metadata import version

    from mechanics.boundary_slivers import peel_boundary_ears
    from mechanics.mesher_worker import tetrahedralize_isolated
    from mechanics.meshing import _check_size, _compact, _merge_plc, _oriented, checked_regions, enclosed_volume_mm3
    from mechanics.quality import DEFAULT_SLIVER_DEG

    if not (np.isfinite(epsilon_mm) and epsilon_mm > 0):
        raise InputError(f"epsilon_mm {epsilon_mm!r}: must be a finite number > 0")
    closed = checked_regions(surfaces, region_ids)
    surface_volumes = [abs(enclosed_volume_mm3(s.vertices_lps, s.triangles)) for s in closed]
    _check_size(size_mm, sum(surface_volumes))
    points, triangles = _merge_plc(closed)
    diagonal = float(np.linalg.norm(points.max(axis=0) - points.min(axis=0)))
    report(progress, 1, 4, f"fTetWild: {len(triangles)} surface triangles, {size_mm:g} mm elements")
    options = {"mesher": "ftetwild", "edge_length_abs": float(size_mm), "epsilon": epsilon_mm / diagonal,
               "disable_filtering": True, "quiet": True}
    try:
        nodes, elems, _ = tetrahedralize_isolated(points, np.asarray(triangles, dtype=np.int32), options,
                                                  what=f"surfaces {name}")
    except RuntimeError as exc:
        raise InputError(f"surfaces {name}: fTetWild failed ({' '.join(str(exc).split())})") from None
    report(progress, 2, 4, f"assigning {len(elems)} tetrahedra to the surfaces")
    owner, parents = _enclosing(closed, nodes[elems].mean(axis=1))
    targets = list(surface_volumes)  # a region around an inclusion holds its surface's volume minus the inclusion's
    for index, parent in enumerate(parents):
        if parent is not None:
            targets[parent] -= surface_volumes[index]
    keep = owner >= 0
    if not keep.any():
        raise InputError(f"surfaces {name}: fTetWild produced no tetrahedron inside them")
    tets = _oriented(nodes, elems[keep])
    owner = owner[keep]
    report(progress, 3, 4, "peeling flat boundary tetrahedra")
    peel = peel_boundary_ears(nodes, tets, below_deg=DEFAULT_SLIVER_DEG)
    nodes, tets = _compact(nodes, tets[peel.keep])
    owner = owner[peel.keep]
    nodes = _restore_volumes(nodes, tets, owner, targets)
    mesh = TetMesh(points_lps=nodes, tets=tets, region_ids=np.asarray(region_ids, dtype=np.int64)[owner], name=name)
    volumes = np.bincount(owner, weights=mesh.signed_volumes_mm3(), minlength=len(closed))
    regions: list[dict[str, Any]] = []
    for index, (surface, expected) in enumerate(zip(closed, targets, strict=True)):
        error = abs(volumes[index] - expected) / expected
        regions.append({"region_id": int(region_ids[index]), "surface": surface.name or surface.segment,
                        "mesh_volume_mm3": float(volumes[index]), "expected_volume_mm3": float(expected),
                        "relative_error": float(error)})
        if error > MAX_VOLUME_ERROR:
            raise InputError(f"surface {surface.name or surface.segment!r}: its tets hold {volumes[index] / 1000:.2f} "
                             f"ml, its surface {expected / 1000:.2f} ml (over {MAX_VOLUME_ERROR:.0%} apart)")
    report(progress, 4, 4, f"{mesh.n_tets} tetrahedra")
    settings = {"mesher": "fTetWild", "pytetwild": version("pytetwild"),
                "size_mm": float(size_mm), "epsilon_mm": float(epsilon_mm), "surface_triangles": int(len(triangles)),
                "region_ids": [int(r) for r in region_ids], "regions": regions, "reproducible": False,
                "boundary_ears_removed": {"below_deg": DEFAULT_SLIVER_DEG, "count": peel.n_removed,
                                          "volume_mm3": peel.removed_volume_mm3,
                                          "max_height_mm": peel.max_thickness_mm}}
    return replace(mesh, provenance={"surfaces": [s.name or s.segment for s in surfaces], "meshing": settings})
