"""Closed surfaces (LPS mm) -> tetrahedral meshes with TetGen, one region or several conforming regions.

Pipeline of :func:`tetrahedralize` (one region):

1. **Check** -- the surface must be closed: every edge shared by exactly two triangles with
   opposite directions (:func:`check_surface`). An open or non-manifold surface is refused with
   an :class:`~workstation.errors.InputError` saying what is wrong, unless ``repair=True``
   (pymeshfix: holes filled, non-manifold and self-intersecting parts rebuilt). A surface that
   cannot be repaired is refused; the label map -> voxel tetrahedra path
   (:mod:`mechanics.voxel_tets`) is the fallback.
2. **Coarsen** -- with ``size_mm`` set and a surface much finer than it, the surface is
   remeshed to triangles of about ``size_mm`` (:func:`coarsen_surface`: pieces smaller than one
   element dropped, ACVD uniform remeshing or, failing that, VTK quadric decimation, pymeshfix,
   then caps flipped and needles collapsed, volume restored). TetGen keeps the boundary
   triangles (it only splits them), so a bad one makes flat tets whatever the switches: one
   folded cap left by ACVD gave the sample liver a 0.02 deg dihedral angle (and made TetGen fail
   outright with a finer size on a test surface).
3. **TetGen** -- ``-pq<ratio>/<dihedral>a<volume>o/165A``: a constrained Delaunay mesh of the
   piecewise-linear complex with refinement until every tetrahedron's radius-edge ratio is at most
   ``max_radius_edge_ratio`` and its volume at most that of a regular tetrahedron with edge
   ``size_mm`` (``size^3 / (6 sqrt 2)``; TetGen's final optimisation (flips, smoothing) may leave a
   few tets somewhat above it: measured up to 1.33x on a sphere). TetGen guarantees the radius-edge bound (ratio >= ~1.1
   terminates; it may be exceeded next to input angles sharper than ~60 deg, where TetGen keeps the
   input); the minimum dihedral angle is only an optimisation target (TetGen's manual: "not
   guaranteed"), which is why every mesh comes with a measured :class:`~mechanics.quality.TetQuality`.
   With ``keep_surface=True`` (``-Y``) the surface triangles are kept as they are (fewer,
   faster, but the radius-edge bound then only holds away from the boundary).
   TetGen's other switches were measured on the sample liver (cleaned surface, 10 mm) and hardly
   change the worst elements, which sit at the boundary: optimisation levels (``-O``) 5, 7, 10,
   10 iterations, ``-o/150`` all 3.3 deg; ``/15`` 3.3, ``/18`` 3.8 (26% more tets), ratio 1.2
   3.5, 1.3 3.7; ``-Y`` 5.7 here but worse on the aorta (5.2 vs 14 deg) and without the
   radius-edge bound at the boundary.
4. **Regions** -- TetGen numbers the facet-bounded regions (``-A``); each is classified by the
   generalized winding number of a few of its tetrahedra's centroids with respect to each input
   surface (1 inside, 0 outside); regions inside no surface (cavities) are dropped.
5. **Boundary ears** -- a tetrahedron with two boundary faces meeting at a nearly flat edge and a
   dihedral angle below 5 deg is deleted when the boundary stays a closed 2-manifold
   (:mod:`mechanics.boundary_slivers`); the count, volume and largest height (how far the boundary
   moved) are in ``provenance["meshing"]["boundary_ears_removed"]``.
6. **Retry** -- if the smallest dihedral angle is still below ``_RETRY_BELOW_DEG`` (or TetGen
   failed), the PLC's caps are flipped away (:func:`mechanics.surface_cleanup.flip_edges`, which
   keeps every vertex, so shared interfaces stay shared) and the mesh is made again; the better
   of the two is kept (``provenance["meshing"]["retry"]``). This is what fixes a surface that is
   not coarsened (``coarsen=False``, :func:`tetrahedralize_regions`).

TetGen runs in a child process (:mod:`mechanics.mesher_worker`): on some invalid input (surfaces
that intersect each other) it corrupts its memory and aborts, which must not take the app down.

:func:`tetrahedralize_regions` meshes several touching closed surfaces at once: their union is one
PLC in which the shared interface triangles (same vertices, opposite winding, as surfaces built from
one label map have) appear once, so the mesh conforms to every interface and each tetrahedron lies
in exactly one region (``region_ids``).

All tetrahedra are returned positively oriented (``TetMesh.signed_volumes_mm3() > 0``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from workstation.errors import InputError
from workstation.model import LabelMap, SurfaceMesh, TetMesh
from workstation.progress import ProgressCallback, report

DEFAULT_MAX_RADIUS_EDGE_RATIO = 1.5
DEFAULT_MIN_DIHEDRAL_DEG = 10.0
MAX_TETS = 3_000_000
# Decimate only when the mean surface edge is below this fraction of the requested size.
_COARSEN_VOLUME_TOLERANCE = 0.01  # relative change of enclosed volume a coarsening may make
_COARSEN_BELOW = 0.6
# A coarsened surface's edges shorter than this fraction of the size are collapsed (needles make flat tets).
_MIN_EDGE_FRACTION = 0.2
# ... and so is the shortest edge of a triangle with an angle below _SLIVER_TRIANGLE_DEG if shorter than this fraction.
_SLIVER_TRIANGLE_DEG = 10.0
_MAX_SLIVER_EDGE_FRACTION = 0.5
# TetGen's optimisation removes tets with a dihedral above this (default 177): on the decimated sample
# liver (6 mm) this halves the tets with a dihedral below 5 deg (382 -> 195 of ~39k) at equal run time.
_OPT_MAX_DIHEDRAL_DEG = 165.0
# A mesh whose smallest dihedral angle is below this is made again from the surface with its caps flipped away.
_RETRY_BELOW_DEG = 3.0


@dataclass(frozen=True)
class SurfaceCheck:
    """Whether a triangle surface bounds a volume."""

    n_triangles: int
    n_open_edges: int
    n_nonmanifold_edges: int
    n_misoriented_edges: int
    n_degenerate_triangles: int

    @property
    def closed(self) -> bool:
        return (self.n_triangles > 0 and self.n_open_edges == 0 and self.n_nonmanifold_edges == 0
                and self.n_misoriented_edges == 0)

    def problem(self) -> str:
        """What is wrong, in words ("" when closed)."""
        parts = []
        if self.n_triangles == 0:
            parts.append("no triangles")
        if self.n_open_edges:
            parts.append(f"{self.n_open_edges} open (boundary) edges")
        if self.n_nonmanifold_edges:
            parts.append(f"{self.n_nonmanifold_edges} non-manifold edges")
        if self.n_misoriented_edges:
            parts.append(f"{self.n_misoriented_edges} edges with inconsistent winding")
        return ", ".join(parts)


def check_surface(vertices: NDArray[np.float64], triangles: NDArray[np.int64]) -> SurfaceCheck:
    """Count the edges that keep a surface from being closed and consistently wound."""
    tri = np.asarray(triangles, dtype=np.int64)
    pts = np.asarray(vertices, dtype=float)
    if len(tri) == 0:
        return SurfaceCheck(0, 0, 0, 0, 0)
    directed = np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]])
    undirected = np.sort(directed, axis=1)
    keys, inverse, counts = np.unique(undirected, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    forward = (directed[:, 0] < directed[:, 1]).astype(np.int64)
    n_forward = np.bincount(inverse, weights=forward, minlength=len(keys))
    twice = counts == 2
    area = np.linalg.norm(np.cross(pts[tri[:, 1]] - pts[tri[:, 0]], pts[tri[:, 2]] - pts[tri[:, 0]]), axis=1)
    scale = max(float(np.ptp(pts, axis=0).max()), 1e-300)
    return SurfaceCheck(n_triangles=len(tri), n_open_edges=int(np.sum(counts == 1)),
                        n_nonmanifold_edges=int(np.sum(counts > 2)),
                        n_misoriented_edges=int(np.sum(twice & (n_forward != 1))),
                        n_degenerate_triangles=int(np.sum(area <= 1e-12 * scale ** 2)))


def enclosed_volume_mm3(vertices: NDArray[np.float64], triangles: NDArray[np.int64]) -> float:
    """Signed volume enclosed by a closed surface (positive for outward winding), mm^3."""
    p = np.asarray(vertices, dtype=float)[np.asarray(triangles)]
    return float(np.einsum("ij,ij->i", p[:, 0], np.cross(p[:, 1], p[:, 2])).sum() / 6.0)


def winding_numbers(vertices: NDArray[np.float64], triangles: NDArray[np.int64],
                    queries: NDArray[np.float64]) -> NDArray[np.float64]:
    """Generalized winding numbers of ``queries`` (Q, 3) w.r.t. a closed surface: ~1 inside, ~0 outside.

    Van Oosterom-Strackee solid angles summed over the triangles (exact for closed surfaces).
    """
    p = np.asarray(vertices, dtype=float)[np.asarray(triangles)]
    out = np.empty(len(queries))
    for n, q in enumerate(np.asarray(queries, dtype=float)):
        a, b, c = p[:, 0] - q, p[:, 1] - q, p[:, 2] - q
        la, lb, lc = (np.linalg.norm(x, axis=1) for x in (a, b, c))
        num = np.einsum("ij,ij->i", a, np.cross(b, c))
        den = (la * lb * lc + np.einsum("ij,ij->i", a, b) * lc + np.einsum("ij,ij->i", b, c) * la
               + np.einsum("ij,ij->i", c, a) * lb)
        out[n] = np.sum(2.0 * np.arctan2(num, den)) / (4.0 * np.pi)
    return out


def _components(n_points: int, triangles: NDArray[np.int64]) -> NDArray[np.int64]:
    """Connected component of each triangle (through shared vertices)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    edges = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]]])
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n_points, n_points))
    _, labels = connected_components(graph, directed=False)
    return labels[triangles[:, 0]]


def repair_surface(surface: SurfaceMesh) -> SurfaceMesh:
    """A closed, outward-wound, self-intersection-free version of ``surface`` (pymeshfix).

    Each connected component is repaired on its own (pymeshfix keeps only the largest component of
    what it is given, which would drop all but one bone of a skeleton or a vessel beside an organ).

    Raises
    ------
    InputError
        The repair left no triangles or still not a closed surface.
    """
    import pymeshfix

    label = surface.name or surface.segment or "surface"
    if surface.n_triangles == 0:
        raise InputError(f"surface {label!r}: has no triangles; nothing to repair")
    vertices = np.asarray(surface.vertices_lps, dtype=np.float64)
    all_triangles = np.asarray(surface.triangles, dtype=np.int64)
    component = _components(len(vertices), all_triangles)
    pieces_points, pieces_triangles, offset = [], [], 0
    for c in np.unique(component):
        part = all_triangles[component == c]
        if len(part) < 4:
            continue
        used, inverse = np.unique(part, return_inverse=True)
        fixer = pymeshfix.MeshFix(np.ascontiguousarray(vertices[used]),
                                  np.ascontiguousarray(inverse.reshape(-1, 3), dtype=np.int32))
        fixer.repair(joincomp=False, remove_smallest_components=False)
        fixed_points = np.asarray(fixer.points, dtype=np.float64)
        fixed_triangles = np.asarray(fixer.faces, dtype=np.int64).reshape(-1, 3)
        if len(fixed_triangles) == 0:
            continue
        if enclosed_volume_mm3(fixed_points, fixed_triangles) < 0:
            fixed_triangles = fixed_triangles[:, ::-1]
        pieces_points.append(fixed_points)
        pieces_triangles.append(fixed_triangles + offset)
        offset += len(fixed_points)
    if not pieces_triangles:
        raise InputError(f"surface {label!r}: repair left no triangles; mesh the label map instead (voxel "
                         "tetrahedra, --from-labels)")
    points, triangles = np.vstack(pieces_points), np.vstack(pieces_triangles)
    check = check_surface(points, triangles)
    if not check.closed:
        raise InputError(f"surface {label!r}: repair failed ({check.problem()}); "
                         "mesh the label map instead (voxel tetrahedra, --from-labels)")
    steps = [*surface.provenance.get("mechanics_steps", []), {"step": "repair", "method": "pymeshfix per component",
                                                               "components": int(len(pieces_triangles))}]
    return replace(surface, vertices_lps=points, triangles=triangles,
                   provenance={**surface.provenance, "mechanics_steps": steps})


def coarsen_surface(surface: SurfaceMesh, size_mm: float) -> SurfaceMesh:
    """Remesh ``surface`` to triangles with edges of about ``size_mm`` (unchanged when already coarser).

    Closed pieces enclosing less than one element (``max_volume_mm3(size_mm)``: specks, voxel-sized
    voids) are dropped first (they cannot be meshed with elements of that size without slivers).
    Then a uniform remesh (ACVD clustering, ``pyacvd``): nearly equilateral triangles, which TetGen
    keeps on the boundary, so they decide the worst elements. ACVD can still leave a few caps
    (an angle near 180 deg) and needles (a very short edge): they are removed by edge flips and
    short-edge collapses (:mod:`mechanics.surface_cleanup`). The slight shrinkage is undone by an
    offset along the vertex normals. If that does not give a closed surface within
    ``_COARSEN_VOLUME_TOLERANCE`` of the enclosed volume, ACVD is tried again with edges 0.7, 0.49,
    0.34 times ``size_mm`` (thin parts such as a vertebra's processes need more clusters; its
    triangles make better tetrahedra than decimation's: 6.1 vs 1.4 deg on a T12 at 10 mm), then VTK
    quadric decimation (volume preserving) with a pymeshfix clean-up, with edges 1, 0.7, 0.49, 0.34 times
    ``size_mm`` (decimation may make the surface touch itself and the clean-up then cuts the
    touching parts away). If none keeps the volume, the surface is returned unchanged (finer,
    slower, but the anatomy is kept).
    """
    tri = np.asarray(surface.triangles)
    pts = np.asarray(surface.vertices_lps)
    edges = np.linalg.norm(pts[tri] - pts[np.roll(tri, 1, axis=1)], axis=2)
    if len(tri) < 200 or float(edges.mean()) >= _COARSEN_BELOW * size_mm:
        return surface
    surface = _without_specks(surface, max_volume_mm3(size_mm))
    tri, pts = np.asarray(surface.triangles), np.asarray(surface.vertices_lps)
    volume = abs(enclosed_volume_mm3(pts, tri))
    poly = surface.to_pyvista()
    for attempt in range(4):
        uniform = _uniform_remesh(surface, poly, size_mm * 0.7**attempt, volume)
        if uniform is not None:
            return uniform
    for attempt in range(4):
        size = size_mm * 0.7**attempt
        target = poly.area / (math.sqrt(3.0) / 4.0 * size ** 2)
        reduction = 1.0 - max(target, 100.0) / len(tri)
        if reduction <= 0.05:
            return surface
        decimated = poly.decimate(reduction, volume_preservation=True).clean()
        coarse = SurfaceMesh.from_pyvista(decimated, name=surface.name, segment=surface.segment,
                                          color_rgb=surface.color_rgb, provenance=surface.provenance)
        coarse = repair_surface(_with_step(coarse, surface, {
            "step": "coarsen", "method": "vtkQuadricDecimation(volume_preservation)", "size_mm": size,
            "triangles_before": int(len(tri)), "triangles_after": coarse.n_triangles}))
        coarse = _cleaned(coarse, size)
        kept = abs(enclosed_volume_mm3(np.asarray(coarse.vertices_lps), np.asarray(coarse.triangles)))
        if abs(kept - volume) <= _COARSEN_VOLUME_TOLERANCE * volume:
            # Give back what decimation and clean-up took (within the tolerance, so no part was cut away).
            points = _restored_volume(np.asarray(coarse.vertices_lps, dtype=np.float64),
                                      np.asarray(coarse.triangles), volume)
            return replace(coarse, vertices_lps=points)
    return surface


def _without_specks(surface: SurfaceMesh, min_volume_mm3: float) -> SurfaceMesh:
    """``surface`` without its closed pieces enclosing less than ``min_volume_mm3`` (never the largest piece)."""
    from mechanics.surface_cleanup import small_components

    pts, tri = np.asarray(surface.vertices_lps), np.asarray(surface.triangles)
    small = small_components(pts, tri, min_volume_mm3=min_volume_mm3)
    if not small.any() or small.all():
        return surface
    volume_before = enclosed_volume_mm3(pts, tri)
    used, inverse = np.unique(tri[~small], return_inverse=True)
    points, triangles = pts[used], inverse.reshape(-1, 3)
    return _with_step(replace(surface, vertices_lps=points, triangles=triangles), surface, {
        "step": "drop specks", "min_volume_mm3": float(min_volume_mm3), "triangles_dropped": int(small.sum()),
        "volume_change_mm3": float(enclosed_volume_mm3(points, triangles) - volume_before)})


def _cleaned(surface: SurfaceMesh, size_mm: float) -> SurfaceMesh:
    """``surface`` without specks, with its edges shorter than ``_MIN_EDGE_FRACTION * size_mm`` collapsed and
    its caps flipped away (:mod:`mechanics.surface_cleanup`); the flips and collapses are skipped when they
    would not leave a closed surface."""
    from mechanics.surface_cleanup import collapse_short_edges, flip_edges

    surface = _without_specks(surface, max_volume_mm3(size_mm))  # a remesh can pinch off small pieces
    pts, tri = np.asarray(surface.vertices_lps), np.asarray(surface.triangles)
    points, triangles, collapses = collapse_short_edges(pts, tri, min_edge_mm=_MIN_EDGE_FRACTION * size_mm,
                                                        sliver_angle_deg=_SLIVER_TRIANGLE_DEG,
                                                        max_sliver_edge_mm=_MAX_SLIVER_EDGE_FRACTION * size_mm)
    triangles, flips = flip_edges(points, triangles)
    if (collapses == 0 and flips == 0) or not check_surface(points, triangles).closed:
        return surface
    return _with_step(replace(surface, vertices_lps=points, triangles=triangles), surface, {
        "step": "clean triangles", "method": "short-edge collapses + Delaunay flips of nearly coplanar pairs",
        "min_edge_mm": _MIN_EDGE_FRACTION * size_mm, "collapses": collapses, "flips": flips,
        "volume_change_mm3": float(enclosed_volume_mm3(points, triangles) - enclosed_volume_mm3(pts, tri))})


def _with_step(mesh: SurfaceMesh, source: SurfaceMesh, step: dict[str, Any]) -> SurfaceMesh:
    """``mesh`` with ``source``'s provenance and one more entry in its ``mechanics_steps``."""
    steps = [*source.provenance.get("mechanics_steps", []), step]
    return replace(mesh, provenance={**source.provenance, "mechanics_steps": steps})


def _uniform_remesh(surface: SurfaceMesh, poly: Any, size_mm: float, volume_mm3: float) -> SurfaceMesh | None:
    """ACVD remesh of ``surface`` (pyvista ``poly``) to edges of about ``size_mm``, cleaned and volume
    restored; None when it does not give a closed surface within the volume tolerance."""
    import pyacvd
    from pyvista.core.errors import PyVistaDeprecationWarning

    n_points = max(100, int(round(poly.area / (math.sqrt(3.0) / 4.0 * size_mm ** 2) / 2.0)))
    if n_points >= 0.8 * poly.n_points:
        return None
    with warnings.catch_warnings():  # pyacvd 0.4 reads a pyvista attribute that pyvista 0.46+ deprecates
        warnings.simplefilter("ignore", PyVistaDeprecationWarning)
        clustering = pyacvd.Clustering(poly)
        clustering.cluster(n_points)
        remeshed_poly = clustering.create_mesh()
    remeshed = SurfaceMesh.from_pyvista(remeshed_poly, name=surface.name, segment=surface.segment,
                                        color_rgb=surface.color_rgb, provenance=surface.provenance)
    try:
        coarse = repair_surface(_with_step(remeshed, surface, {
            "step": "coarsen", "method": "ACVD uniform remeshing (pyacvd) + volume restore", "size_mm": size_mm,
            "triangles_before": surface.n_triangles, "triangles_after": remeshed.n_triangles}))
    except InputError:
        return None
    coarse = _cleaned(coarse, size_mm)
    triangles = np.asarray(coarse.triangles, dtype=np.int64)
    points = _restored_volume(np.asarray(coarse.vertices_lps, dtype=np.float64), triangles, volume_mm3)
    kept = enclosed_volume_mm3(points, triangles)
    if abs(kept - volume_mm3) > _COARSEN_VOLUME_TOLERANCE * volume_mm3 or not check_surface(points, triangles).closed:
        return None
    return replace(coarse, vertices_lps=points)


def _restored_volume(points: NDArray[np.float64], triangles: NDArray[np.int64], volume_mm3: float
                     ) -> NDArray[np.float64]:
    """``points`` offset along the vertex normals so that the surface encloses ``volume_mm3``."""
    for _ in range(2):  # first-order offset: the volume change is the area times the normal shift
        corner = points[triangles]
        cross = np.cross(corner[:, 1] - corner[:, 0], corner[:, 2] - corner[:, 0])
        area = 0.5 * float(np.linalg.norm(cross, axis=1).sum())
        normals = np.zeros_like(points)
        for k in range(3):
            np.add.at(normals, triangles[:, k], cross)
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
        points = points + normals * ((volume_mm3 - enclosed_volume_mm3(points, triangles)) / area)
    return points


def max_volume_mm3(size_mm: float) -> float:
    """Volume of a regular tetrahedron with edge ``size_mm``: TetGen's volume bound for that size."""
    return size_mm ** 3 / (6.0 * math.sqrt(2.0))


def _check_size(size_mm: float | None, volume_mm3: float) -> float:
    if size_mm is None:
        return -1.0
    if not (isinstance(size_mm, (int, float)) and math.isfinite(size_mm) and size_mm > 0):
        raise InputError(f"size_mm {size_mm!r}: must be a positive number of millimetres")
    bound = max_volume_mm3(float(size_mm))
    estimate = abs(volume_mm3) / bound * 1.2
    if estimate > MAX_TETS:
        raise InputError(f"size_mm {size_mm:g}: would make about {estimate:,.0f} tetrahedra (limit {MAX_TETS:,}); "
                         "choose a larger size")
    return bound


def _checked_closed(surface: SurfaceMesh, *, repair: bool) -> SurfaceMesh:
    label = surface.name or surface.segment or "surface"
    check = check_surface(surface.vertices_lps, surface.triangles)
    if check.closed:
        return surface
    if not repair:
        raise InputError(f"surface {label!r}: not watertight ({check.problem()}); repair it (repair=True, "
                         "--repair) or mesh the label map (voxel tetrahedra, --from-labels)")
    return repair_surface(surface)


def _merge_plc(surfaces: Sequence[SurfaceMesh]) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """One PLC from several surfaces: coincident vertices merged, shared triangles kept once."""
    points = np.vstack([np.asarray(s.vertices_lps) for s in surfaces])
    offsets = np.cumsum([0] + [s.n_vertices for s in surfaces])
    triangles = np.vstack([np.asarray(s.triangles) + offsets[n] for n, s in enumerate(surfaces)])
    scale = max(float(np.abs(points).max()), 1.0)
    keys = np.round(points / (scale * 1e-12)).astype(np.int64)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    triangles = inverse.ravel()[triangles]
    _, keep = np.unique(np.sort(triangles, axis=1), axis=0, return_index=True)
    return points[first], triangles[np.sort(keep)]


def _run_tetgen(points: NDArray[np.float64], triangles: NDArray[np.int64], *, ratio: float, dihedral: float,
                max_volume: float, keep_surface: bool, what: str) -> tuple[NDArray[np.float64], NDArray[np.int64],
                                                                           NDArray[np.int64]]:
    from mechanics.mesher_worker import tetrahedralize_isolated

    options = {"plc": True, "quality": True, "minratio": ratio, "mindihedral": dihedral, "maxvolume": max_volume,
               "fixedvolume": max_volume > 0, "regionattrib": True, "nobisect": keep_surface, "quiet": True,
               "optmaxdihedral": _OPT_MAX_DIHEDRAL_DEG}
    nodes, elems, attributes = tetrahedralize_isolated(points, np.asarray(triangles, dtype=np.int32), options,
                                                       what=what)
    region = attributes[:, 0].astype(np.int64) if attributes.size else np.zeros(len(elems), dtype=np.int64)
    return nodes, elems, region


def _classify(nodes: NDArray[np.float64], elems: NDArray[np.int64], tetgen_regions: NDArray[np.int64],
              surfaces: Sequence[SurfaceMesh]) -> NDArray[np.int64]:
    """Index of the surface each TetGen region lies in (innermost when nested), -1 when in none."""
    volumes = [abs(enclosed_volume_mm3(s.vertices_lps, s.triangles)) for s in surfaces]
    tet_volume = np.abs(TetMesh(nodes, elems).signed_volumes_mm3()) if len(elems) else np.zeros(0)
    owner = np.full(len(elems), -1, dtype=np.int64)
    for region in np.unique(tetgen_regions):
        members = np.flatnonzero(tetgen_regions == region)
        sample = members[np.argsort(tet_volume[members])[-3:]]
        centroids = nodes[elems[sample]].mean(axis=1)
        inside = [n for n, s in enumerate(surfaces)
                  if np.median(winding_numbers(s.vertices_lps, s.triangles, centroids)) > 0.5]
        if inside:
            owner[members] = min(inside, key=lambda n: volumes[n])
    return owner


def _oriented(points: NDArray[np.float64], tets: NDArray[np.int64]) -> NDArray[np.int64]:
    p = points[tets]
    volume = np.einsum("ij,ij->i", np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), p[:, 3] - p[:, 0])
    tets = tets.copy()
    flip = volume < 0
    tets[flip] = tets[flip][:, [0, 2, 1, 3]]
    return tets


def _compact(points: NDArray[np.float64], tets: NDArray[np.int64]) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    used, inverse = np.unique(tets, return_inverse=True)
    return points[used], inverse.reshape(tets.shape)


def _tetrahedra(points: NDArray[np.float64], triangles: NDArray[np.int64], surfaces: Sequence[SurfaceMesh],
                region_ids: Sequence[int], *, ratio: float, dihedral: float, max_volume: float, keep_surface: bool,
                names: str) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64], dict[str, Any]]:
    """TetGen on the PLC, tets classified into the surfaces' regions, oriented, boundary ears peeled:
    (nodes, tets, region ids, what the peeling removed)."""
    from mechanics.boundary_slivers import peel_boundary_ears
    from mechanics.quality import DEFAULT_SLIVER_DEG

    try:
        nodes, elems, tetgen_regions = _run_tetgen(points, triangles, ratio=ratio, dihedral=dihedral,
                                                   max_volume=max_volume, keep_surface=keep_surface,
                                                   what=f"surface {names}")
    except RuntimeError as exc:
        raise InputError(f"surface {names}: TetGen failed ({' '.join(str(exc).split())}); repair the surface "
                         "or mesh the label map (voxel tetrahedra, --from-labels)") from None
    owner = _classify(nodes, elems, tetgen_regions, surfaces)
    keep = owner >= 0
    if not keep.any():
        raise InputError("TetGen produced no tetrahedron inside the surface(s)")
    tets = _oriented(nodes, elems[keep])
    owner = owner[keep]
    peel = peel_boundary_ears(nodes, tets, below_deg=DEFAULT_SLIVER_DEG)
    nodes, tets = _compact(nodes, tets[peel.keep])
    regions = np.asarray(region_ids, dtype=np.int64)[owner[peel.keep]]
    peeled = {"below_deg": DEFAULT_SLIVER_DEG, "count": peel.n_removed, "volume_mm3": peel.removed_volume_mm3,
              "max_height_mm": peel.max_thickness_mm}
    return nodes, tets, regions, peeled


def _min_dihedral_deg(nodes: NDArray[np.float64], tets: NDArray[np.int64]) -> float:
    from mechanics.quality import dihedral_angles_deg

    return float(dihedral_angles_deg(nodes, tets).min()) if len(tets) else float("nan")


def _mesh(surfaces: Sequence[SurfaceMesh], region_ids: Sequence[int], *, size_mm: float | None, ratio: float,
          dihedral: float, keep_surface: bool, name: str, provenance: dict[str, Any],
          progress: ProgressCallback | None) -> TetMesh:
    from mechanics.surface_cleanup import flip_edges

    if not (math.isfinite(ratio) and ratio >= 1.05):
        raise InputError(f"max_radius_edge_ratio {ratio!r}: must be at least 1.05 (TetGen may not terminate below)")
    if not (math.isfinite(dihedral) and 0 <= dihedral < 30):
        raise InputError(f"min_dihedral_deg {dihedral!r}: must be in [0, 30) degrees")
    points, triangles = _merge_plc(surfaces)
    total_volume = sum(abs(enclosed_volume_mm3(s.vertices_lps, s.triangles)) for s in surfaces)
    max_volume = _check_size(size_mm, total_volume)
    report(progress, 1, 4, f"TetGen: {len(triangles)} surface triangles")
    names = ", ".join(repr(s.name or s.segment or "surface") for s in surfaces)
    options = {"ratio": ratio, "dihedral": dihedral, "max_volume": max_volume, "keep_surface": keep_surface,
               "names": names}
    retry: dict[str, Any] = {"min_dihedral_deg_below": _RETRY_BELOW_DEG, "done": False}
    failure: InputError | None = None
    first: tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64], dict[str, Any]] | None = None
    try:
        first = _tetrahedra(points, triangles, surfaces, region_ids, **options)
    except InputError as exc:
        if keep_surface:
            raise
        failure = exc  # a folded cap can make TetGen fail ("Internal TetGen error within `repair_tet`")
    worst = _min_dihedral_deg(first[0], first[1]) if first is not None else float("nan")
    if (first is None or worst < _RETRY_BELOW_DEG) and not keep_surface:
        # Caps (triangles with an angle near 180 deg, possibly folded over a neighbour) force flat tets or make
        # TetGen fail: flip them away and mesh again.
        flipped, flips = flip_edges(points, triangles)
        retry.update(first_min_dihedral_deg=worst if first is not None else "TetGen failed", flips=flips)
        if flips:
            report(progress, 2, 4, f"min dihedral {worst:.2g} deg: {flips} surface edges flipped, meshing again")
            try:
                again = _tetrahedra(points, flipped, surfaces, region_ids, **options)
            except InputError:
                if failure is not None:
                    raise failure from None
                again = None
            if again is not None:
                second = _min_dihedral_deg(again[0], again[1])
                retry.update(done=True, second_min_dihedral_deg=second)
                if first is None or second > worst:
                    first, triangles = again, flipped
                retry["kept"] = "second" if triangles is flipped else "first"
    if first is None:
        raise failure if failure is not None else InputError(f"surface {names}: TetGen failed")
    nodes, tets, regions, peeled = first
    report(progress, 4, 4, f"{len(tets)} tetrahedra")
    switches = (f"pq{ratio:g}/{dihedral:g}" + (f"a{max_volume:.6g}" if size_mm else "") + f"o/{_OPT_MAX_DIHEDRAL_DEG:g}"
                + "A" + ("Y" if keep_surface else ""))
    settings = {"mesher": "tetgen", "switches": switches, "size_mm": size_mm, "max_radius_edge_ratio": ratio,
                "min_dihedral_deg_requested": dihedral, "keep_surface": keep_surface,
                "surface_triangles": int(len(triangles)), "region_ids": [int(r) for r in region_ids],
                "boundary_ears_removed": peeled, "retry": retry}
    return TetMesh(points_lps=nodes, tets=tets, region_ids=regions, name=name,
                   provenance={**provenance, "meshing": settings})


def tetrahedralize(surface: SurfaceMesh, *, size_mm: float | None = None,
                   max_radius_edge_ratio: float = DEFAULT_MAX_RADIUS_EDGE_RATIO,
                   min_dihedral_deg: float = DEFAULT_MIN_DIHEDRAL_DEG, repair: bool = False,
                   keep_surface: bool = False, coarsen: bool = True, region_id: int = 1, name: str = "",
                   progress: ProgressCallback | None = None) -> TetMesh:
    """Tetrahedra filling one closed surface.

    Parameters
    ----------
    surface : closed triangle surface, vertices in LPS mm.
    size_mm : element size in mm: tetrahedra no larger than a regular one of that edge (the mean edge is
        then about 0.7 ``size_mm``: 6.8 mm at 10 mm on the sample liver), and the surface decimated to
        about that edge when much finer (``coarsen``). ``None``: no size bound.
    max_radius_edge_ratio : TetGen's quality bound (circumradius / shortest edge), >= 1.05.
    min_dihedral_deg : dihedral angle TetGen tries to reach (not guaranteed; see the module notes).
    repair : repair a surface that is not closed (or intersects itself) instead of refusing it.
    keep_surface : keep the surface triangles unsplit (TetGen ``-Y``).
    coarsen : remesh a surface much finer than ``size_mm`` (:func:`coarsen_surface`).
    region_id : the region id of every tetrahedron.
    name : name of the mesh.
    progress : ``progress(done, total, message)``; returning False cancels.

    Returns
    -------
    TetMesh
        Points (N, 3) in LPS mm, positively oriented tets (M, 4), ``region_ids`` (M,) all ``region_id``;
        ``provenance["meshing"]`` holds the TetGen switches and settings.

    Raises
    ------
    InputError
        The surface is not closed (and ``repair`` is off) or cannot be repaired, TetGen fails on it
        (for example self-intersections), or ``size_mm`` is not positive or would make too many
        tetrahedra.
    """
    report(progress, 0, 4, "checking the surface")
    _check_size(size_mm, 0.0)
    surface = _checked_closed(surface, repair=repair)
    if enclosed_volume_mm3(surface.vertices_lps, surface.triangles) < 0:
        surface = replace(surface, triangles=np.asarray(surface.triangles)[:, ::-1])
    if size_mm is not None and coarsen:
        surface = coarsen_surface(surface, float(size_mm))
    provenance = {"surface": surface.name or surface.segment, "surface_steps": surface.provenance.get(
        "mechanics_steps", [])}
    try:
        return _mesh([surface], [region_id], size_mm=size_mm, ratio=max_radius_edge_ratio, dihedral=min_dihedral_deg,
                     keep_surface=keep_surface, name=name or surface.name, provenance=provenance, progress=progress)
    except InputError:
        if not repair:
            raise
    repaired = repair_surface(surface)
    provenance = {**provenance, "surface_steps": repaired.provenance.get("mechanics_steps", [])}
    return _mesh([repaired], [region_id], size_mm=size_mm, ratio=max_radius_edge_ratio, dihedral=min_dihedral_deg,
                 keep_surface=keep_surface, name=name or surface.name, provenance=provenance, progress=progress)


def checked_regions(surfaces: Sequence[SurfaceMesh], region_ids: Sequence[int]) -> list[SurfaceMesh]:
    """The surfaces of a multi-region mesh, each checked closed and wound outward; InputError otherwise
    (also when the ids are not one per surface or repeat)."""
    if len(surfaces) != len(region_ids) or not surfaces:
        raise InputError(f"region_ids: need one id per surface ({len(surfaces)} surfaces, {len(region_ids)} ids)")
    if len(set(int(r) for r in region_ids)) != len(region_ids):
        raise InputError(f"region_ids {list(region_ids)}: must differ")
    closed = []
    for surface in surfaces:
        surface = _checked_closed(surface, repair=False)
        if enclosed_volume_mm3(surface.vertices_lps, surface.triangles) < 0:
            surface = replace(surface, triangles=np.asarray(surface.triangles)[:, ::-1])
        closed.append(surface)
    return closed


def tetrahedralize_regions(surfaces: Sequence[SurfaceMesh], region_ids: Sequence[int], *,
                           size_mm: float | None = None,
                           max_radius_edge_ratio: float = DEFAULT_MAX_RADIUS_EDGE_RATIO,
                           min_dihedral_deg: float = DEFAULT_MIN_DIHEDRAL_DEG, keep_surface: bool = False,
                           name: str = "", progress: ProgressCallback | None = None) -> TetMesh:
    """One conforming mesh of several touching closed surfaces, each tetrahedron tagged with its region.

    Surfaces that touch must share their interface (the same vertex positions and triangles, as
    the surfaces of one label map built together do); surfaces are not decimated here (that would
    break the shared interfaces). A region nested inside another without a shared interface
    (an inclusion) is assigned to the innermost surface.

    Parameters
    ----------
    surfaces : closed surfaces, LPS mm.
    region_ids : the region id of each surface (e.g. its label value).
    size_mm, max_radius_edge_ratio, min_dihedral_deg, keep_surface, name, progress : as in :func:`tetrahedralize`.

    Raises
    ------
    InputError
        A surface is not closed, the surfaces intersect each other (TetGen refuses), ids repeat, or a bad size.
    """
    report(progress, 0, 4, "checking the surfaces")
    _check_size(size_mm, 0.0)
    closed = checked_regions(surfaces, region_ids)
    provenance = {"surfaces": [s.name or s.segment for s in surfaces]}
    return _mesh(closed, region_ids, size_mm=size_mm, ratio=max_radius_edge_ratio, dihedral=min_dihedral_deg,
                 keep_surface=keep_surface, name=name or "+".join(s.name for s in surfaces if s.name),
                 provenance=provenance, progress=progress)


def regions_from_labels(mesh: TetMesh, label_map: LabelMap, values: Sequence[int]) -> TetMesh:
    """``mesh`` with each tetrahedron's region id set to the label value at its centroid.

    The voxel containing the centroid decides; where that voxel holds none of ``values`` (the mesh
    boundary is smoother than the voxels), the nearest voxel that does. The interfaces between
    regions then follow tetrahedron faces (a staircase at element size), not the segments' smooth
    interface surfaces: the fallback when a conforming multi-region mesh cannot be built.
    """
    from scipy import ndimage

    values = [int(v) for v in values]
    array = np.asarray(label_map.array)
    chosen = np.isin(array, values)
    if not chosen.any():
        raise InputError(f"label map {label_map.name or label_map.id!r}: no voxels with values {values}")
    lo = np.maximum(np.argwhere(chosen).min(axis=0) - 2, 0)
    hi = np.minimum(np.argwhere(chosen).max(axis=0) + 3, array.shape)
    crop = array[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    affine = np.asarray(label_map.ijk_to_lps, dtype=float)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)[::-1]  # along k, j, i
    _, nearest = ndimage.distance_transform_edt(~np.isin(crop, values), sampling=spacing, return_indices=True)
    centroids = np.asarray(mesh.points_lps)[np.asarray(mesh.tets)].mean(axis=1)
    ijk = (centroids - affine[:3, 3]) @ np.linalg.inv(affine[:3, :3]).T
    kji = np.rint(ijk[:, ::-1]).astype(np.int64) - lo
    kji = np.clip(kji, 0, np.array(crop.shape) - 1)
    k, j, i = (nearest[axis][kji[:, 0], kji[:, 1], kji[:, 2]] for axis in range(3))
    regions = crop[k, j, i].astype(np.int64)
    return replace(mesh, region_ids=regions, provenance={**mesh.provenance, "regions": {
        "method": "label value at tet centroid (nearest chosen voxel outside the segments)",
        "label_map_id": label_map.id, "values": values, "conforming_interfaces": False}})
