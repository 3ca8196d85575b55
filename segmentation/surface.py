"""Label map -> closed surface meshes in patient LPS millimetres.

Pipeline (the smoothing, decimation and repair steps are also public, pure functions on
:class:`~workstation.model.SurfaceMesh`):

1. **Manifold voxels** -- the chosen segments are cropped to their bounding box, padded by one
   voxel (so surfaces touching the grid border close) and made *well-composed*: where a
   segment's voxels touch only along an edge or at a corner, a background voxel joins them
   (``provenance["voxels_added_for_manifold_surfaces"]``; volumes below still use the original
   voxel count). A rib running diagonally through the voxels stays one piece. One pass visits
   every 2x2x2 block holding a label; later passes only the blocks around voxels just filled.
2. **Extraction** -- one vertex per boundary voxel corner, two triangles per voxel face between
   different labels, in voxel-index space, all segments in one pass: the geometry of
   ``vtkSurfaceNets3D`` with smoothing off. Its volume is exactly the voxel volume, and touching
   segments share the very same vertices and triangles on their interface. (``vtkSurfaceNets3D``
   exists in this VTK, 9.7; its point splitting at non-manifold voxel configurations left
   zero-width cracks and inconsistently wound triangles on thin diagonal structures, so the
   same geometry is built here with numpy and split where needed by :func:`_make_manifold`.)
3. **Smoothing** (:func:`smooth_surface`) -- windowed sinc (``vtkWindowedSincPolyDataFilter``,
   ``NormalizeCoordinates`` on), a low-pass that removes the voxel staircase. Its uniform
   weights commute with the affine ``ijk_to_lps``, so smoothing in index space equals smoothing
   in LPS. A low-pass alone collapses a 2-voxel rib onto its centre line, so three guards keep
   the label map's volume, thin structures included:

   * every vertex stays within ``DEFAULT_MAX_SHIFT_VOXELS`` (per axis) of its voxel corner;
   * *shrinkage compensation*: the smoothing's displacement along the normal is averaged over
     about ``sqrt(DEFAULT_COMPENSATION_STEPS)`` rings and that local mean given back (twice), so
     the staircase (zero local mean) is smoothed away while the systematic shrinkage of tubes
     and plates is undone (the ``DEFAULT_COMPENSATION_STEPS`` averagings are evaluated as a
     Chebyshev polynomial of 26 graph passes, equal within 0.005 voxel: :func:`_diffuse`);
   * an offset along the normals of each segment's outer (background-facing) surface restores
     the segment's voxel volume (three chord steps; error < 1e-6 of the volume on the phantoms,
     0.1% on 2-voxel ribs).

   VTK's ``NonManifoldSmoothing`` is on only when the surface has a non-manifold edge or vertex
   (several segments meeting): it changes nothing on a manifold surface and cost 45% of the
   filter's time.

   Interfaces between segments are smoothed once, as one surface, so they stay shared.
4. **Mapping** through ``ijk_to_lps`` (oblique and anisotropic grids are exact); the winding is
   flipped when ``det(direction) < 0`` so normals point outward.
5. **Decimation** (:func:`decimate_surface`, fast-simplification quadric collapses) in LPS mm.
   Each interface patch is decimated once with its border (the curves where three regions
   meet) kept, so decimated segments still share their interfaces. Collapses that pinch thin
   sheets are undone by splitting the pinch (on the triangles around the vertices the topology
   check flags, :func:`_repair_pinches`); a patch whose topology still changes is decimated
   less. The voxel volume is restored again afterwards.
6. **Checks and repair** -- every segment is split into a 2-manifold (:func:`_make_manifold`),
   measured (:func:`~segmentation.surface_quality.surface_quality`) and, only if it is still not
   a watertight 2-manifold, repaired with pymeshfix (:func:`repair_surface`; such a segment no
   longer shares vertices with its neighbours and says so in ``provenance["repair"]``).

Topology does not depend on vertex positions: one analysis of the triangles serves smoothing,
decimation and, for a single segment, the checks of step 6.

Every mesh carries ``provenance``: label map id and name, segment name and value, every
parameter that rebuilds it, its voxel count and volume, and its quality.

Defaults and why. Largest distance between mesh and analytic surface (both directions), worst
of 5-8 placements, on a grid with spacing 0.7 x 0.9 x 2.0 mm and a rotated direction matrix;
the bar is half the largest spacing, 1.0 mm:

============================  =======================  ===========================
phantom                       40 it / 0.01 (Slicer's)  **60 it / 0.005 (default)**
============================  =======================  ===========================
sphere r 20 mm                0.90 mm                  **0.57 mm**
ellipsoid 25 x 18 x 12 mm     0.80                     **0.56**
ellipsoid 30 x 24 x 18 mm     1.10 (fails)             **0.87**
sphere r 8 mm                 0.53                     **0.57**
cylinder r 15 h 30, no rim    0.42                     **0.61**
cylinder incl. its 90° rim    1.45                     **1.62**
============================  =======================  ===========================

Volumes equal the voxel volumes (within 0.01%) in every case and are within 0.1% of the
analytic volumes; rib-like tubes 2-3 voxels thick keep their voxel volume within 0.2%. Where a
nearly flat surface lies across the coarse axis only strong smoothing lifts it off its voxel
layer, hence 60 / 0.005. A sharp rim cut obliquely by the voxels cannot be rebuilt within half a
voxel by any smoothing (the raw voxel faces are already 0.57 of the largest spacing away from
it); stronger smoothing rounds it a little more. Decimation removes half of the triangles
(``DEFAULT_TARGET_REDUCTION``); the volume is restored after it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from numba import njit
from numba.core import types
from numba.extending import intrinsic
from numpy.typing import NDArray

from segmentation.surface_quality import (
    SurfaceQuality,
    mesh_topology,
    quality_from_topology,
    signed_volume,
    surface_quality,
)
from segmentation.union_find import find, union
from workstation.errors import InputError
from workstation.model import LabelMap, Segment, SurfaceMesh
from workstation.progress import ProgressCallback, report

__all__ = [
    "DEFAULT_COMPENSATION_STEPS",
    "DEFAULT_MAX_SHIFT_VOXELS",
    "DEFAULT_SMOOTHING_ITERATIONS",
    "DEFAULT_SMOOTHING_PASSBAND",
    "DEFAULT_TARGET_REDUCTION",
    "SurfaceQuality",
    "decimate_surface",
    "label_map_surfaces",
    "label_to_surface",
    "repair_surface",
    "smooth_surface",
    "surface_quality",
    "voxel_volume_mm3",
]

#: Windowed-sinc iterations. 3D Slicer's default (smoothing factor 0.5) is 40 / 0.01; 60 / 0.005 removes
#: more of the staircase on coarse (e.g. 2 mm) slices: see the module notes for the measured trade-off.
DEFAULT_SMOOTHING_ITERATIONS = 60
#: Windowed-sinc pass band (0..2; lower is smoother).
DEFAULT_SMOOTHING_PASSBAND = 0.005
#: Fraction of triangles removed by decimation.
DEFAULT_TARGET_REDUCTION = 0.5
#: How far (voxels, per axis) smoothing may move a vertex from its voxel-corner position.
DEFAULT_MAX_SHIFT_VOXELS = 0.5
#: Diffusion steps of the shrinkage compensation (neighbourhood of about sqrt(steps) rings).
DEFAULT_COMPENSATION_STEPS = 100
_COMPENSATION_ROUNDS = 2
_VOLUME_ROUNDS = 3


# --------------------------------------------------------------------------------------------
# small array helpers
# --------------------------------------------------------------------------------------------

def _vtk() -> Any:
    os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")
    import vtk

    return vtk


def _polydata(points: NDArray[np.float64], triangles: NDArray[np.int64]) -> Any:
    """A vtkPolyData of triangles (no copy of the connectivity semantics beyond what VTK needs)."""
    vtk = _vtk()
    from vtk.util import numpy_support

    pts = vtk.vtkPoints()
    pts.SetData(numpy_support.numpy_to_vtk(np.ascontiguousarray(points, dtype=np.float64), deep=True))
    offsets = np.arange(0, 3 * len(triangles) + 1, 3, dtype=np.int64)
    cells = vtk.vtkCellArray()
    cells.SetData(numpy_support.numpy_to_vtkIdTypeArray(offsets, deep=True),
                  numpy_support.numpy_to_vtkIdTypeArray(np.ascontiguousarray(triangles, dtype=np.int64).ravel(),
                                                        deep=True))
    poly = vtk.vtkPolyData()
    poly.SetPoints(pts)
    poly.SetPolys(cells)
    return poly


@njit(cache=True)
def _normals_kernel(points: NDArray[np.float64], triangles: NDArray[np.int64], face_use: NDArray[np.bool_]
                    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:  # pragma: no cover - compiled
    n = points.shape[0]
    normals = np.zeros((n, 3))
    area = np.zeros(n)
    for f in range(triangles.shape[0]):
        if not face_use[f]:
            continue
        a, b, c = triangles[f, 0], triangles[f, 1], triangles[f, 2]
        ux = points[b, 0] - points[a, 0]
        uy = points[b, 1] - points[a, 1]
        uz = points[b, 2] - points[a, 2]
        vx = points[c, 0] - points[a, 0]
        vy = points[c, 1] - points[a, 1]
        vz = points[c, 2] - points[a, 2]
        nx = uy * vz - uz * vy
        ny = uz * vx - ux * vz
        nz = ux * vy - uy * vx
        third = np.sqrt(nx * nx + ny * ny + nz * nz) / 6.0
        for v in (a, b, c):
            normals[v, 0] += nx
            normals[v, 1] += ny
            normals[v, 2] += nz
            area[v] += third
    for v in range(n):
        length = np.sqrt(normals[v, 0] ** 2 + normals[v, 1] ** 2 + normals[v, 2] ** 2)
        if length > 0:
            normals[v, 0] /= length
            normals[v, 1] /= length
            normals[v, 2] /= length
    return normals, area


def _vertex_normals_and_areas(points: NDArray[np.float64], triangles: NDArray[np.int64],
                              face_mask: NDArray[np.bool_] | None = None
                              ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(N, 3) unit area-weighted vertex normals and (N,) vertex areas (a third of each incident triangle)."""
    use = np.ones(len(triangles), dtype=bool) if face_mask is None else np.asarray(face_mask, dtype=bool)
    return _normals_kernel(np.ascontiguousarray(points, dtype=np.float64),
                           np.ascontiguousarray(triangles, dtype=np.int64), use)


@njit(cache=True)
def _adjacency_oriented(triangles: NDArray[np.int64], n: int, active: NDArray[np.bool_]
                        ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:  # pragma: no cover - compiled
    """:func:`_adjacency` of a closed, consistently oriented, edge-manifold surface without
    degenerate triangles: each edge is traversed once each way, so the heads of the half-edges
    leaving a vertex are its neighbours, each once (no sorting needed)."""
    count = np.zeros(n + 1, dtype=np.int64)
    for f in range(triangles.shape[0]):
        for k in range(3):
            a = triangles[f, k]
            b = triangles[f, (k + 1) % 3]
            if active[a] and active[b]:
                count[a + 1] += 1
    indptr = np.cumsum(count)
    fill = indptr[:-1].copy()
    indices = np.empty(indptr[-1], dtype=np.int64)
    for f in range(triangles.shape[0]):
        for k in range(3):
            a = triangles[f, k]
            b = triangles[f, (k + 1) % 3]
            if active[a] and active[b]:
                indices[fill[a]] = b
                fill[a] += 1
    return indptr, indices


@njit(cache=True)
def _adjacency(triangles: NDArray[np.int64], n: int, active: NDArray[np.bool_]
               ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:  # pragma: no cover - compiled
    """CSR (indptr, indices) of the distinct neighbours of each active vertex among active vertices."""
    count = np.zeros(n + 1, dtype=np.int64)
    for f in range(triangles.shape[0]):
        for k in range(3):
            a = triangles[f, k]
            b = triangles[f, (k + 1) % 3]
            if active[a] and active[b]:
                count[a + 1] += 1
                count[b + 1] += 1
    start = np.cumsum(count)
    fill = start[:-1].copy()
    raw = np.empty(start[-1], dtype=np.int64)
    for f in range(triangles.shape[0]):
        for k in range(3):
            a = triangles[f, k]
            b = triangles[f, (k + 1) % 3]
            if active[a] and active[b]:
                raw[fill[a]] = b
                fill[a] += 1
                raw[fill[b]] = a
                fill[b] += 1
    indptr = np.zeros(n + 1, dtype=np.int64)
    indices = np.empty(start[-1], dtype=np.int64)
    size = 0
    for v in range(n):
        row = np.sort(raw[start[v]:start[v + 1]])
        for r in range(row.shape[0]):
            if r == 0 or row[r] != row[r - 1]:
                indices[size] = row[r]
                size += 1
        indptr[v + 1] = size
    return indptr, indices[:size].copy()


@njit(cache=True)
def _diffuse_chebyshev(indptr: NDArray[np.int32], indices: NDArray[np.int32], values: NDArray[np.float32],
                       coefficients: NDArray[np.float64]) -> NDArray[np.float32]:  # pragma: no cover - compiled
    """``sum_k coefficients[k] T_k(W) values`` with ``W`` the mean over a vertex and its neighbours.

    Three-term recurrence ``T_{k+1} = 2 W T_k - T_{k-1}``, one pass over the graph per degree.
    """
    n = values.shape[0]
    prev = values.copy()
    out = np.empty_like(values)
    c0 = np.float32(coefficients[0])
    for v in range(n):
        out[v, 0] = c0 * prev[v, 0]
        out[v, 1] = c0 * prev[v, 1]
    cur = np.empty_like(values)
    nxt = np.empty_like(values)
    for k in range(1, coefficients.shape[0]):
        c = np.float32(coefficients[k])
        for v in range(n):
            s0 = prev[v, 0] if k == 1 else cur[v, 0]
            s1 = prev[v, 1] if k == 1 else cur[v, 1]
            for e in range(indptr[v], indptr[v + 1]):
                u = indices[e]
                if k == 1:
                    s0 += prev[u, 0]
                    s1 += prev[u, 1]
                else:
                    s0 += cur[u, 0]
                    s1 += cur[u, 1]
            scale = np.float32(1.0) / np.float32(1 + indptr[v + 1] - indptr[v])
            if k == 1:  # T_1 = W
                nxt[v, 0] = s0 * scale
                nxt[v, 1] = s1 * scale
            else:
                nxt[v, 0] = np.float32(2.0) * s0 * scale - prev[v, 0]
                nxt[v, 1] = np.float32(2.0) * s1 * scale - prev[v, 1]
            out[v, 0] += c * nxt[v, 0]
            out[v, 1] += c * nxt[v, 1]
        if k == 1:
            prev, cur, nxt = prev, nxt, cur
        else:
            prev, cur, nxt = cur, nxt, prev
    return out


def _power_as_chebyshev(steps: int, tolerance: float = 1e-2) -> NDArray[np.float64]:
    """Coefficients of ``x**steps = sum_k c_k T_k(x)`` on [-1, 1], truncated at the lowest degree
    whose dropped terms sum to at most ``tolerance`` (degree 26 for 100 steps)."""
    from scipy.special import comb

    full = np.zeros(steps + 1)
    for j in range(steps // 2 + 1):
        full[steps - 2 * j] = comb(steps, j, exact=False) * 2.0 ** (1 - steps)
    if steps % 2 == 0:
        full[0] /= 2.0
    dropped = np.cumsum(full[::-1])[::-1]  # dropped[d] = sum of the coefficients of degree >= d
    degree = steps
    while degree > 1 and dropped[degree] <= tolerance:
        degree -= 1
    return full[:degree + 1]


def _diffuse(indptr: NDArray[np.int64], indices: NDArray[np.int64], values: NDArray[np.float64], steps: int
             ) -> NDArray[np.float64]:
    """``steps`` rounds of averaging each vertex with its neighbours (``W**steps``); ``values`` is (N, 2).

    ``W`` (the row-normalised adjacency with self-loops) has its spectrum in [-1, 1], so
    ``W**steps`` is evaluated as the Chebyshev expansion of ``x**steps``, truncated where the
    dropped terms sum to 1e-2: 26 passes over the graph instead of 100 (about ``2.6 sqrt(steps)``),
    the same result within 1e-2 of the values' largest magnitude (the mean shift is a correction
    of at most half a voxel: 0.005 voxel; the phantoms' distances and volumes did not change
    beyond 0.03 mm / 0.01%). One thread: a parallel region per pass
    (numba ``prange``, tried) waits for the slowest thread every pass and was 1.5-2x slower on a
    shared, busy 2-core machine.
    """
    if steps <= 0:
        return np.asarray(values, dtype=np.float64).copy()
    # float32 / int32 halve the memory traffic of this memory-bound loop; the mean is a correction.
    out = _diffuse_chebyshev(indptr.astype(np.int32), indices.astype(np.int32),
                             np.ascontiguousarray(values, dtype=np.float32), _power_as_chebyshev(int(steps)))
    return out.astype(np.float64)


def _windowed_sinc(points: NDArray[np.float64], triangles: NDArray[np.int64], *, iterations: int,
                   passband: float, manifold: bool) -> NDArray[np.float64]:
    """VTK's windowed sinc; ``manifold``: the triangles have no non-manifold edge or vertex.

    ``NonManifoldSmoothing`` changes nothing on a manifold mesh but its analysis of the vertex
    stencils took 45% of the filter's time (VTK 9.7, 0.8 M triangles): it is on only when needed.
    """
    vtk = _vtk()
    from vtk.util import numpy_support

    smoother = vtk.vtkWindowedSincPolyDataFilter()
    smoother.SetInputData(_polydata(points, triangles))
    smoother.SetNumberOfIterations(int(iterations))
    smoother.SetPassBand(float(passband))
    smoother.NormalizeCoordinatesOn()
    smoother.BoundarySmoothingOff()
    smoother.FeatureEdgeSmoothingOff()
    smoother.SetNonManifoldSmoothing(not manifold)
    smoother.Update()
    return numpy_support.vtk_to_numpy(smoother.GetOutput().GetPoints().GetData()).astype(np.float64)


def _smooth_points(points: NDArray[np.float64], triangles: NDArray[np.int64], *, iterations: int,
                   passband: float, max_shift: float | None, compensation_steps: int,
                   face_patch: NDArray[np.int64] | None = None,
                   volume_targets: Sequence[tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.bool_],
                                                  float]] = (),
                   topology: dict[str, Any] | None = None,
                   added_voxel: NDArray[np.int64] | None = None) -> NDArray[np.float64]:
    """Windowed sinc + displacement limit + shrinkage compensation + volume restoration.

    Parameters
    ----------
    points : (N, 3) raw vertex positions (any linear frame; ``max_shift`` is in its units).
    triangles : (M, 3) indices; each patch consistently oriented.
    face_patch : (M,) patch id of each triangle (one id for a single closed surface). Vertices
        touching two patches (curves where three regions meet) are left to the low-pass alone.
    volume_targets : per region ``(faces_forward, faces_flipped, outer_faces, volume)``: the
        region's volume is made ``volume`` by an offset of the vertices of ``outer_faces``.
    topology : :func:`mesh_topology` of ``triangles`` if the caller has it.
    added_voxel : see :func:`_restore_volumes`.
    """
    p0 = np.asarray(points, dtype=np.float64)
    if iterations <= 0 or len(triangles) == 0:
        return p0.copy()
    n = len(p0)
    if topology is None:
        topology = mesh_topology(triangles, n)
    manifold = topology["n_nonmanifold_edges"] == 0 and topology["n_nonmanifold_vertices"] == 0
    oriented = bool(topology["closed"] and topology["consistently_oriented"] and topology["n_degenerate"] == 0)
    p = _windowed_sinc(p0, triangles, iterations=iterations, passband=passband, manifold=manifold)
    if max_shift is not None:
        p = p0 + np.clip(p - p0, -max_shift, max_shift)
    active = _junction_free(triangles, n, face_patch)
    if compensation_steps > 0 and active.any():
        indptr, indices = (_adjacency_oriented if oriented else _adjacency)(
            np.ascontiguousarray(triangles, dtype=np.int64), n, active)
        for _ in range(_COMPENSATION_ROUNDS):
            normals, area = _vertex_normals_and_areas(p, triangles)
            area = np.where(active, area, 0.0)
            shift = np.einsum("ij,ij->i", p - p0, normals)
            mean = _diffuse(indptr, indices, np.stack([area * shift, area], axis=1), int(compensation_steps))
            mean_shift = np.where(mean[:, 1] > 0, mean[:, 0] / np.maximum(mean[:, 1], 1e-300), 0.0)
            p = p - (mean_shift * active)[:, None] * normals
    return _restore_volumes(p, triangles, volume_targets, movable=active, pieces_from=p0, added_voxel=added_voxel)


def _junction_free(triangles: NDArray[np.int64], n: int, face_patch: NDArray[np.int64] | None) -> NDArray[np.bool_]:
    """(N,) vertices used by triangles of exactly one patch."""
    patch = np.zeros(len(triangles), dtype=np.int64) if face_patch is None else np.asarray(face_patch, np.int64)
    return _single_patch_vertices(np.ascontiguousarray(triangles, dtype=np.int64), n, patch)


@njit(cache=True)
def _single_patch_vertices(triangles: NDArray[np.int64], n: int, patch: NDArray[np.int64]
                           ) -> NDArray[np.bool_]:  # pragma: no cover - compiled
    first = np.full(n, -1, dtype=np.int64)
    single = np.zeros(n, dtype=np.bool_)
    for f in range(triangles.shape[0]):
        for k in range(3):
            v = triangles[f, k]
            if first[v] < 0:
                first[v] = patch[f]
                single[v] = True
            elif first[v] != patch[f]:
                single[v] = False
    return single


def _restore_volumes(points: NDArray[np.float64], triangles: NDArray[np.int64],
                     volume_targets: Sequence[tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.bool_], float]],
                     *, movable: NDArray[np.bool_], pieces_from: NDArray[np.float64] | None = None,
                     added_voxel: NDArray[np.int64] | None = None) -> NDArray[np.float64]:
    """Offset each region's outer surface along its normals until the region has its target volume.

    ``volume_targets`` holds per region ``(faces_forward, faces_flipped, outer_faces, volume)``;
    only ``movable`` vertices of ``outer_faces`` move (shared interfaces stay where they are).
    With ``pieces_from`` (the raw voxel surface in index space), every piece of a region that only
    background touches gets its own voxel volume (its volume there, less the voxels of
    ``added_voxel`` (M,) -- the voxel behind each face if it was added to make the surface
    well-composed, else -1) and the rest of the region the remainder: a thin rib in the same
    segment as a vertebra keeps its own volume instead of sharing one offset with the segment.
    The offset is found by chord (Newton with a fixed slope) steps: the slope, the moving area,
    and the normals are those of the first step; the offsets are small (well below a voxel), so
    after three steps the error is below 1e-6 of the volume on phantoms and bone, 0.1% on a 2-voxel rib.
    """
    p = np.ascontiguousarray(points, dtype=np.float64).copy()
    tris = np.ascontiguousarray(triangles, dtype=np.int64)
    ahead, behind, outer, targets = _volume_groups(p, tris, volume_targets, pieces_from=pieces_from,
                                                   added_voxel=added_voxel)
    if targets.size == 0:
        return p
    normals, area = _vertex_normals_and_areas(p, tris, outer)
    vertex_group = np.full(len(p), -1, dtype=np.int64)
    vertex_group[tris[outer].ravel()] = np.repeat(ahead[outer], 3)
    moving = movable & (area > 0) & (vertex_group >= 0)
    group_area = np.bincount(vertex_group[moving], weights=area[moving], minlength=targets.size)
    normals[~moving] = 0.0
    shift_group = np.where(moving, vertex_group, 0)
    for _ in range(_VOLUME_ROUNDS):
        delta = np.where(group_area > 0, (targets - _group_volumes(p, tris, ahead, behind, targets.size))
                         / np.maximum(group_area, 1e-300), 0.0)
        p += delta[shift_group][:, None] * normals
    return p


def _volume_groups(points: NDArray[np.float64], triangles: NDArray[np.int64],
                   volume_targets: Sequence[tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.bool_], float]],
                   *, pieces_from: NDArray[np.float64] | None, added_voxel: NDArray[np.int64] | None = None,
                   ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_], NDArray[np.float64]]:
    """Volume groups of the faces: (M,) the group a face bounds as wound and (M,) the one it bounds
    reversed (an interface bounds two; -1: none), (M,) the outer faces that may move, (G,) targets."""
    m = len(triangles)
    ahead = np.full(m, -1, dtype=np.int64)
    behind = np.full(m, -1, dtype=np.int64)
    outer_all = np.zeros(m, dtype=bool)
    targets: list[float] = []
    for forward, flipped, outer, volume in volume_targets:
        region = len(targets)
        ahead[forward] = region
        behind[flipped] = region
        outer_all |= outer
        targets.append(float(volume))
        faces = np.flatnonzero(forward | flipped)
        if pieces_from is None or faces.size == 0:
            continue
        piece = _face_pieces(triangles[faces], len(points))
        n_pieces = int(piece.max()) + 1
        if n_pieces < 2:
            continue
        inner_faces = np.bincount(piece, weights=(~outer[faces]).astype(np.float64), minlength=n_pieces)
        isolated = np.flatnonzero(inner_faces == 0)
        if isolated.size == n_pieces:  # one piece stays on the region's target and takes up the rounding
            isolated = isolated[1:]
        if isolated.size == 0:
            continue
        piece_volume = _group_volumes(pieces_from, triangles[faces], np.where(forward[faces], piece, -1),
                                      np.where(flipped[faces], piece, -1), n_pieces)
        if added_voxel is not None:  # voxels that made the surface well-composed are not the segment's
            extra = added_voxel[faces] >= 0
            pairs = np.unique(np.stack([piece[extra], added_voxel[faces][extra]], axis=1), axis=0)
            piece_volume -= np.bincount(pairs[:, 0], minlength=n_pieces) if len(pairs) else 0.0
        new_group = np.full(n_pieces, region, dtype=np.int64)
        new_group[isolated] = len(targets) + np.arange(isolated.size)
        moved = np.zeros(n_pieces, dtype=bool)
        moved[isolated] = True
        moved = moved[piece]
        ahead[faces[moved]] = new_group[piece[moved]]
        targets[region] -= float(piece_volume[isolated].sum())
        targets.extend(piece_volume[isolated].tolist())
    return ahead, behind, outer_all, np.asarray(targets, dtype=np.float64)


def _added_voxel_behind(points: NDArray[np.float64], triangles: NDArray[np.int64], added: NDArray[np.bool_],
                        offset_ijk: NDArray[np.int64]) -> NDArray[np.int64]:
    """(M,) flat index in ``added``'s grid of the voxel behind each raw voxel face (on its
    ``sides[:, 0]`` side) when that voxel was added for well-composedness, else -1."""
    return _added_voxel_kernel(np.ascontiguousarray(points, dtype=np.float64),
                               np.ascontiguousarray(triangles, dtype=np.int64),
                               np.ascontiguousarray(added).ravel(), np.asarray(added.shape, dtype=np.int64),
                               np.asarray(offset_ijk, dtype=np.int64))


@njit(cache=True)
def _added_voxel_kernel(points: NDArray[np.float64], triangles: NDArray[np.int64], added: NDArray[np.bool_],
                        shape: NDArray[np.int64], offset: NDArray[np.int64]) -> NDArray[np.int64]:  # pragma: no cover
    out = np.full(triangles.shape[0], -1, dtype=np.int64)
    for f in range(triangles.shape[0]):
        a, b, c = triangles[f, 0], triangles[f, 1], triangles[f, 2]
        # raw voxel faces are axis-aligned unit squares: the normal is +-1 along one axis
        e1x, e1y, e1z = points[b, 0] - points[a, 0], points[b, 1] - points[a, 1], points[b, 2] - points[a, 2]
        e2x, e2y, e2z = points[c, 0] - points[a, 0], points[c, 1] - points[a, 1], points[c, 2] - points[a, 2]
        nx, ny, nz = e1y * e2z - e1z * e2y, e1z * e2x - e1x * e2z, e1x * e2y - e1y * e2x
        length = np.sqrt(nx * nx + ny * ny + nz * nz)
        i = np.int64(np.rint((points[a, 0] + points[b, 0] + points[c, 0]) / 3.0 - 0.5 * nx / length)) - offset[0]
        j = np.int64(np.rint((points[a, 1] + points[b, 1] + points[c, 1]) / 3.0 - 0.5 * ny / length)) - offset[1]
        k = np.int64(np.rint((points[a, 2] + points[b, 2] + points[c, 2]) / 3.0 - 0.5 * nz / length)) - offset[2]
        flat = (k * shape[1] + j) * shape[2] + i
        if added[flat]:
            out[f] = flat
    return out


def _face_pieces(triangles: NDArray[np.int64], n_points: int) -> NDArray[np.int64]:
    """(M,) connected piece (through shared vertices) of each triangle, numbered from 0 in the order
    of the pieces' smallest vertex index (the numbering of ``scipy.sparse.csgraph.connected_components``)."""
    return _face_pieces_kernel(np.ascontiguousarray(triangles, dtype=np.int64), int(n_points))


@njit(cache=True)
def _face_pieces_kernel(triangles: NDArray[np.int64], n: int) -> NDArray[np.int64]:  # pragma: no cover - compiled
    parent = np.arange(n)
    for f in range(triangles.shape[0]):
        union(parent, triangles[f, 0], triangles[f, 1])
        union(parent, triangles[f, 1], triangles[f, 2])
    rank = np.full(n, -1, dtype=np.int64)
    root = np.empty(triangles.shape[0], dtype=np.int64)
    for f in range(triangles.shape[0]):
        root[f] = find(parent, triangles[f, 0])
        rank[root[f]] = 0
    count = 0
    for v in range(n):  # roots are the smallest members: number the pieces in vertex order
        if rank[v] == 0:
            rank[v] = count
            count += 1
    piece = np.empty(triangles.shape[0], dtype=np.int64)
    for f in range(triangles.shape[0]):
        piece[f] = rank[root[f]]
    return piece


def _group_volumes(points: NDArray[np.float64], triangles: NDArray[np.int64], ahead: NDArray[np.int64],
                   behind: NDArray[np.int64], n_groups: int) -> NDArray[np.float64]:
    """(G,) signed volume enclosed by each group: its ``ahead`` faces as wound, its ``behind`` faces reversed."""
    return _group_volumes_kernel(np.ascontiguousarray(points, dtype=np.float64),
                                 np.ascontiguousarray(triangles, dtype=np.int64),
                                 np.ascontiguousarray(ahead, dtype=np.int64),
                                 np.ascontiguousarray(behind, dtype=np.int64), int(n_groups))


@njit(cache=True)
def _group_volumes_kernel(points: NDArray[np.float64], triangles: NDArray[np.int64], ahead: NDArray[np.int64],
                          behind: NDArray[np.int64], n_groups: int) -> NDArray[np.float64]:  # pragma: no cover
    centre = np.zeros(3)
    for v in range(points.shape[0]):
        centre += points[v]
    centre /= max(points.shape[0], 1)
    out = np.zeros(n_groups)
    for f in range(triangles.shape[0]):
        front, back = ahead[f], behind[f]
        if front < 0 and back < 0:
            continue
        a, b, c = triangles[f, 0], triangles[f, 1], triangles[f, 2]
        ax, ay, az = points[a, 0] - centre[0], points[a, 1] - centre[1], points[a, 2] - centre[2]
        bx, by, bz = points[b, 0] - centre[0], points[b, 1] - centre[1], points[b, 2] - centre[2]
        qx, qy, qz = points[c, 0] - centre[0], points[c, 1] - centre[1], points[c, 2] - centre[2]
        det = (ax * (by * qz - bz * qy) - ay * (bx * qz - bz * qx) + az * (bx * qy - by * qx)) / 6.0
        if front >= 0:
            out[front] += det
        if back >= 0:
            out[back] -= det
    return out


def _apply_affine(affine: NDArray[np.float64], points: NDArray[np.float64]) -> NDArray[np.float64]:
    return points @ affine[:3, :3].T + affine[:3, 3]


def _compact(points: NDArray[np.float64], triangles: NDArray[np.int64]) -> tuple[NDArray[np.float64],
                                                                                   NDArray[np.int64]]:
    """Drop unused vertices and renumber."""
    used = np.zeros(len(points), dtype=bool)
    used[triangles.ravel()] = True
    new_index = np.cumsum(used) - 1
    return points[used], new_index[triangles]


def _outward(points: NDArray[np.float64], triangles: NDArray[np.int64]) -> NDArray[np.int64]:
    """Triangles with winding flipped if the enclosed volume is negative."""
    return triangles[:, ::-1].copy() if signed_volume(points, triangles) < 0 else triangles


def _software() -> dict[str, str]:
    versions: dict[str, str] = {}
    for module in ("vtk", "fast_simplification", "pymeshfix"):
        try:
            from importlib.metadata import version

            versions[module] = version(module)
        except Exception:
            continue
    return versions


def _with_provenance(mesh: SurfaceMesh, vertices: NDArray[np.float64], triangles: NDArray[np.int64],
                     step: dict[str, Any]) -> SurfaceMesh:
    provenance = dict(mesh.provenance)
    provenance["steps"] = [*provenance.get("steps", []), step]
    return SurfaceMesh(vertices_lps=vertices, triangles=triangles, name=mesh.name, id="", segment=mesh.segment,
                       color_rgb=mesh.color_rgb, provenance=provenance, coordinate_system=mesh.coordinate_system)


# --------------------------------------------------------------------------------------------
# public mesh operations
# --------------------------------------------------------------------------------------------

def smooth_surface(mesh: SurfaceMesh, *, iterations: int = DEFAULT_SMOOTHING_ITERATIONS,
                   passband: float = DEFAULT_SMOOTHING_PASSBAND, preserve_volume: bool = True,
                   max_shift_mm: float | None = None,
                   compensation_steps: int = DEFAULT_COMPENSATION_STEPS) -> SurfaceMesh:
    """Volume-preserving windowed-sinc smoothing of a surface.

    Parameters
    ----------
    mesh : the surface (vertices (N, 3) LPS mm, consistently oriented triangles (M, 3)).
    iterations : windowed-sinc iterations (0 returns an unchanged copy).
    passband : windowed-sinc pass band in 0..2 (lower is smoother).
    preserve_volume : give back local shrinkage (see the module notes) and, for a closed
        surface, restore the input's enclosed volume exactly with an offset along the normals.
    max_shift_mm : largest displacement of a vertex per axis in mm (``None``: no limit).
    compensation_steps : diffusion steps of the local shrinkage compensation.

    Returns
    -------
    SurfaceMesh
        A new mesh with the same triangles; ``provenance["steps"]`` records the parameters.
    """
    points = np.asarray(mesh.vertices_lps, dtype=np.float64)
    triangles = np.asarray(mesh.triangles, dtype=np.int64)
    targets: list[tuple[Any, Any, Any, float]] = []
    topology = mesh_topology(triangles, len(points)) if len(triangles) else None
    if preserve_volume and topology is not None and topology["closed"]:
        every = np.ones(len(triangles), dtype=bool)
        targets.append((every, ~every, every, signed_volume(points, triangles)))
    new_points = _smooth_points(points, triangles, iterations=iterations, passband=passband,
                                max_shift=max_shift_mm, compensation_steps=compensation_steps if preserve_volume else 0,
                                volume_targets=targets, topology=topology)
    step = {"step": "smooth", "method": "windowed_sinc", "iterations": int(iterations), "passband": float(passband),
            "normalize_coordinates": True, "preserve_volume": bool(preserve_volume),
            "max_shift_mm": max_shift_mm, "compensation_steps": int(compensation_steps)}
    return _with_provenance(mesh, new_points, triangles.copy(), step)


def decimate_surface(mesh: SurfaceMesh, *, target_reduction: float = DEFAULT_TARGET_REDUCTION) -> SurfaceMesh:
    """Quadric-error decimation (fast-simplification) in LPS mm, keeping the topology.

    Open borders are kept. A result whose topology changed (two sheets joined by a collapse,
    a flipped triangle, a lost component) is rejected and the reduction halved, up to three
    times; if none works the mesh is returned unchanged (the provenance says so).

    Parameters
    ----------
    mesh : the surface (vertices (N, 3) LPS mm, triangles (M, 3)).
    target_reduction : fraction of triangles to remove, 0 <= r < 1 (0 returns a copy).

    Returns
    -------
    SurfaceMesh
        A new mesh with about ``(1 - target_reduction)`` of the triangles.
    """
    if not 0.0 <= target_reduction < 1.0:
        raise ValueError(f"target_reduction must be in [0, 1), got {target_reduction}")
    points = np.asarray(mesh.vertices_lps, dtype=np.float64)
    triangles = np.asarray(mesh.triangles, dtype=np.int64)
    achieved = 0.0
    if target_reduction > 0 and len(triangles) >= 8:
        points, triangles = _compact(points, triangles)
        decimated = _simplify_checked(points, triangles, target_reduction)
        if decimated is not None:
            achieved = 1.0 - len(decimated[1]) / len(triangles)
            points, triangles = decimated[0], decimated[1]
    step = {"step": "decimate", "method": "fast_simplification", "target_reduction": float(target_reduction),
            "achieved_reduction": round(float(achieved), 4), "preserve_border": True, "aggressiveness": 7.0}
    return _with_provenance(mesh, points, triangles.copy(), step)


def repair_surface(mesh: SurfaceMesh, *, keep_largest_component: bool = False,
                   join_components: bool = False) -> SurfaceMesh:
    """Make a watertight, consistently oriented 2-manifold with pymeshfix.

    Holes are filled, non-manifold and degenerate elements and self-intersections removed,
    and the result oriented outward (positive volume).

    Parameters
    ----------
    mesh : the surface.
    keep_largest_component : drop every component but the largest (pymeshfix's default; off
        here so a skeleton keeps all its bones).
    join_components : let pymeshfix join nearby open components.

    Returns
    -------
    SurfaceMesh
        A new mesh; ``provenance["steps"]`` records the repair and the quality before it.
    """
    import pymeshfix

    points = np.asarray(mesh.vertices_lps, dtype=np.float64)
    triangles = np.asarray(mesh.triangles, dtype=np.int64)
    before = surface_quality(points, triangles)
    if len(triangles) == 0:
        raise InputError(f"cannot repair surface {mesh.name!r}: it has no triangles")
    fixer = pymeshfix.MeshFix(np.ascontiguousarray(points), np.ascontiguousarray(triangles, dtype=np.int32))
    fixer.repair(joincomp=join_components, remove_smallest_components=keep_largest_component)
    new_points = np.asarray(fixer.points, dtype=np.float64)
    new_triangles = np.asarray(fixer.faces, dtype=np.int64).reshape(-1, 3)
    if len(new_triangles) == 0:
        raise InputError(f"repair of surface {mesh.name!r} removed every triangle")
    new_triangles = _outward(new_points, new_triangles)
    step = {"step": "repair", "method": "pymeshfix", "keep_largest_component": bool(keep_largest_component),
            "join_components": bool(join_components), "quality_before": before.to_dict()}
    return _with_provenance(mesh, new_points, new_triangles, step)


# --------------------------------------------------------------------------------------------
# label map -> surfaces
# --------------------------------------------------------------------------------------------

def _resolve_segments(label_map: LabelMap, segments: Iterable[str | int] | None) -> list[Segment]:
    if segments is None:
        present = set(int(v) for v in label_map.present_values())
        chosen = [s for s in label_map.segments if s.value in present]
        named = {s.value for s in label_map.segments}
        chosen += [Segment(int(v), f"label {int(v)}") for v in sorted(present - named)]
        return chosen
    chosen = []
    for key in segments:
        try:
            chosen.append(label_map.segment(key))
        except KeyError:
            if isinstance(key, (int, np.integer)) and 0 < int(key) <= 65535:
                chosen.append(Segment(int(key), f"label {int(key)}"))
            else:
                raise InputError(f"label map {label_map.id or label_map.name!r}: no segment {key!r}; "
                                 f"segments: {[s.name for s in label_map.segments]}") from None
    values = [s.value for s in chosen]
    if len(set(values)) != len(values):
        raise InputError(f"label map {label_map.id or label_map.name!r}: a segment is requested twice")
    return chosen


def _critical_tables() -> tuple[NDArray[np.bool_], NDArray[np.int64]]:
    """Tables over the 256 occupancy patterns of a 2x2x2 block (bit ``4 dk + 2 dj + di``).

    ``critical[p]``: the voxel faces of this pattern meet non-manifoldly inside the block (a face
    of the block is a 2x2 checkerboard, or two voxels touch only at the block's centre corner,
    or the complement of that). ``candidates[p]``: empty cells to fill, best first (a cell that
    alone removes the criticality, then the empty cells of a checkerboard face), -1 padded.
    """
    cells = [(c >> 2 & 1, c >> 1 & 1, c & 1) for c in range(8)]

    def is_critical(pattern: int) -> bool:
        on = [(pattern >> c) & 1 for c in range(8)]
        for axis in range(3):
            for side in range(2):
                face = [c for c in range(8) if cells[c][axis] == side]
                values = [on[c] for c in face]
                if sum(values) == 2:
                    c0, c1 = (c for c in face if on[c])
                    if sum(cells[c0][a] != cells[c1][a] for a in range(3)) == 2:
                        return True
        count = sum(on)
        if count in (2, 6):
            chosen = [c for c in range(8) if on[c] == (1 if count == 2 else 0)]
            if all(cells[chosen[0]][a] != cells[chosen[1]][a] for a in range(3)):
                return True
        return False

    critical = np.array([is_critical(p) for p in range(256)], dtype=bool)
    candidates = np.full((256, 8), -1, dtype=np.int64)
    for pattern in range(256):
        if not critical[pattern]:
            continue
        empty = [c for c in range(8) if not (pattern >> c) & 1]
        good = [c for c in empty if not critical[pattern | (1 << c)]]
        rest = [c for c in empty if c not in good]
        for slot, c in enumerate(good + rest):
            candidates[pattern, slot] = c
    return critical, candidates


_CRITICAL, _CANDIDATES = _critical_tables()


@njit(cache=True, inline="always")
def _row_extent(row: NDArray[Any]) -> tuple[int, int]:  # pragma: no cover - compiled
    """First and last index of a nonzero value of a 1-D array, ``(n, -1)`` when it is all zero.

    An OR over the row first (vectorised): most rows of a label map crop are empty.
    """
    n = row.shape[0]
    seen = 0
    for i in range(n):
        seen |= row[i] != 0
    if not seen:
        return n, -1
    lo = 0
    while row[lo] == 0:
        lo += 1
    hi = n - 1
    while row[hi] == 0:
        hi -= 1
    return lo, hi


@njit(cache=True, inline="always")
def _fix_block(labels: NDArray[Any], k: int, j: int, i: int, block: NDArray[np.int64], critical: NDArray[np.bool_],
               candidates: NDArray[np.int64], changed: NDArray[np.int64], n_changed: int
               ) -> int:  # pragma: no cover - compiled
    """Fill background cells of the 2x2x2 block at (k, j, i) until no label in it is critical.

    Filled voxels are appended to ``changed`` (linear indices; the caller leaves room for 8);
    returns the new count. The outermost layer of the array is never filled.
    """
    nk, nj, ni = labels.shape
    first = labels[k, j, i]
    uniform = True
    for c in range(8):
        value = labels[k + (c >> 2), j + ((c >> 1) & 1), i + (c & 1)]
        block[c] = value
        if value != first:
            uniform = False
    if uniform:
        return n_changed
    again = True
    while again:
        again = False
        for c in range(8):
            label = block[c]
            if label == 0:
                continue
            seen = False
            for d in range(c):
                if block[d] == label:
                    seen = True
                    break
            if seen:
                continue
            pattern = 0
            for d in range(8):
                if block[d] == label:
                    pattern |= 1 << d
            if not critical[pattern]:
                continue
            for slot in range(8):
                cell = candidates[pattern, slot]
                if cell < 0:
                    break
                ck = k + (cell >> 2)
                cj = j + ((cell >> 1) & 1)
                ci = i + (cell & 1)
                # The outermost layer stays background so every surface closes.
                on_rim = ck == 0 or cj == 0 or ci == 0 or ck == nk - 1 or cj == nj - 1 or ci == ni - 1
                if block[cell] == 0 and not on_rim:
                    block[cell] = label
                    labels[ck, cj, ci] = label
                    changed[n_changed] = (ck * nj + cj) * ni + ci
                    n_changed += 1
                    again = True
                    break
            if again:
                break
    return n_changed


@njit(cache=True)
def _well_compose_kernel(labels: NDArray[Any], critical: NDArray[np.bool_], candidates: NDArray[np.int64],
                         added_mask: NDArray[np.uint8]) -> int:  # pragma: no cover - compiled
    """Fill background voxels until no label has a critical 2x2x2 configuration; returns voxels added.

    One pass over every block holding a labelled voxel (blocks of background alone are uniform);
    after it only the blocks holding a voxel filled in the previous pass can have become
    critical, so later passes visit those alone (in scan order). Each filled voxel (background
    before, filled once) is set in the flat ``added_mask`` if it has the array's size (else it is
    left alone).
    """
    mark = added_mask.shape[0] == labels.size
    nk, nj, ni = labels.shape
    # Extent of the labelled voxels of each row (k, j) along i.
    row_lo = np.full((nk, nj), ni, dtype=np.int64)
    row_hi = np.full((nk, nj), -1, dtype=np.int64)
    for k in range(nk):
        for j in range(nj):
            row_lo[k, j], row_hi[k, j] = _row_extent(labels[k, j])
    block = np.empty(8, dtype=np.int64)
    changed = np.empty(1024, dtype=np.int64)
    n_changed = 0
    for k in range(nk - 1):
        for j in range(nj - 1):
            lo = min(min(row_lo[k, j], row_lo[k, j + 1]), min(row_lo[k + 1, j], row_lo[k + 1, j + 1]))
            hi = max(max(row_hi[k, j], row_hi[k, j + 1]), max(row_hi[k + 1, j], row_hi[k + 1, j + 1]))
            # Voxels filled during this pass lie in visited blocks and are revisited below.
            for i in range(max(lo - 1, 0), min(hi + 1, ni - 1)):
                n_changed = _fix_block(labels, k, j, i, block, critical, candidates, changed, n_changed)
                if n_changed > changed.shape[0] // 2:
                    grown = np.empty(4 * changed.shape[0], dtype=np.int64)
                    grown[:n_changed] = changed[:n_changed]
                    changed = grown
    added = n_changed
    if mark:
        for e in range(n_changed):
            added_mask[changed[e]] = 1
    while n_changed > 0:
        # Blocks (by their lowest corner) that contain a voxel filled in the last pass.
        blocks = np.empty(8 * n_changed, dtype=np.int64)
        count = 0
        for e in range(n_changed):
            ck = changed[e] // (nj * ni)
            cj = (changed[e] // ni) % nj
            ci = changed[e] % ni
            for c in range(8):
                bk = ck - (c >> 2)
                bj = cj - ((c >> 1) & 1)
                bi = ci - (c & 1)
                if 0 <= bk < nk - 1 and 0 <= bj < nj - 1 and 0 <= bi < ni - 1:
                    blocks[count] = (bk * nj + bj) * ni + bi
                    count += 1
        blocks = np.unique(blocks[:count])
        n_changed = 0
        for e in range(blocks.shape[0]):
            bk = blocks[e] // (nj * ni)
            bj = (blocks[e] // ni) % nj
            bi = blocks[e] % ni
            n_changed = _fix_block(labels, bk, bj, bi, block, critical, candidates, changed, n_changed)
            if n_changed > changed.shape[0] // 2:
                grown = np.empty(4 * changed.shape[0], dtype=np.int64)
                grown[:n_changed] = changed[:n_changed]
                changed = grown
        added += n_changed
        if mark:
            for e in range(n_changed):
                added_mask[changed[e]] = 1
    return added


@njit(cache=True)
def _compact_crop(array: NDArray[Any], lut: NDArray[Any], box: NDArray[np.int64], pad: int
                  ) -> NDArray[Any]:  # pragma: no cover - compiled
    """``lut[array]`` inside ``box`` (k0, j0, i0, k1, j1, i1), ``pad`` background voxels around it.

    Values outside the table (negative ones included) are background.
    """
    k0, j0, i0, k1, j1, i1 = box[0], box[1], box[2], box[3], box[4], box[5]
    out = np.zeros((k1 - k0 + 2 * pad, j1 - j0 + 2 * pad, i1 - i0 + 2 * pad), dtype=lut.dtype)
    size = lut.shape[0]
    skip_zero_rows = size == 0 or lut[0] == 0
    for k in range(k0, k1):
        for j in range(j0, j1):
            if skip_zero_rows and _row_extent(array[k, j, i0:i1])[1] < 0:  # all zero: background
                continue
            for i in range(i0, i1):
                value = array[k, j, i]
                if 0 <= value < size:
                    out[k - k0 + pad, j - j0 + pad, i - i0 + pad] = lut[value]
    return out


def _well_compose(compact: NDArray[Any], *, copy: bool = True, added: NDArray[np.bool_] | None = None
                  ) -> tuple[NDArray[Any], int]:
    """A copy of ``compact`` where no label touches itself only along a voxel edge or at a corner.

    Background voxels are given to the label at each such configuration (so a rib running
    diagonally through the voxels becomes face-connected); the voxel faces of the result form a
    2-manifold for every label that is not wedged against another label. Returns the new array
    and the number of voxels added. The volume targets stay the original voxel counts.
    ``copy=False`` changes (a C-contiguous) ``compact`` in place instead; ``added`` (a C-contiguous
    bool array of its shape) gets the filled voxels set.
    """
    out = np.ascontiguousarray(compact).copy() if copy else compact
    mask = np.zeros(0, dtype=np.uint8) if added is None else added.reshape(-1).view(np.uint8)
    n_added = _well_compose_kernel(out, _CRITICAL, _CANDIDATES, mask)
    return out, int(n_added)


@intrinsic
def _popcount(typingctx: Any, x: Any) -> Any:  # pragma: no cover - compiled
    """Set bits of a uint64 (LLVM ``llvm.ctpop``)."""
    signature = types.uint64(types.uint64)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        return builder.ctpop(args[0])

    return signature, codegen


@njit(cache=True)
def _voxel_faces_kernel(compact: NDArray[Any]) -> tuple[NDArray[np.int64], NDArray[np.int64],
                                                         NDArray[np.int64]]:  # pragma: no cover - compiled
    """Sorted used corner keys (U,), triangles (2Q, 3) into them and sides (2Q, 2) of :func:`_voxel_faces`.

    Quads are made axis by axis (faces normal to i, j, k), each in C order of the voxel below the
    face; a corner's key is ``ci + (I + 1) (cj + (J + 1) ck)``. Only the labelled extent of each
    row (and its neighbour rows) is scanned. The used corners are marked in a bitmap of the corner
    lattice, so a corner's vertex number (its rank among the used keys, as ``np.unique`` gives it)
    is a popcount.
    """
    nk, nj, ni = compact.shape
    row_lo = np.full((nk, nj), ni, dtype=np.int64)
    row_hi = np.full((nk, nj), -1, dtype=np.int64)
    for k in range(nk):
        for j in range(nj):
            row_lo[k, j], row_hi[k, j] = _row_extent(compact[k, j])
    s1 = ni + 1
    s2 = (ni + 1) * (nj + 1)
    strides = np.array([1, s1, s2], dtype=np.int64)
    quads = np.empty((0, 4), dtype=np.int64)
    sides = np.empty((0, 2), dtype=np.int64)
    for fill in range(2):  # count, then fill
        q = 0
        for axis in range(3):
            dk = 1 if axis == 2 else 0
            dj = 1 if axis == 1 else 0
            di = 1 if axis == 0 else 0
            sa = strides[axis]
            su = strides[(axis + 1) % 3]
            sw = strides[(axis + 2) % 3]
            for k in range(nk - dk):
                for j in range(nj - dj):
                    lo = min(row_lo[k, j], row_lo[k + dk, j + dj])
                    hi = max(row_hi[k, j], row_hi[k + dk, j + dj])
                    if hi < 0:
                        continue
                    for i in range(max(lo - di, 0), min(hi + 1, ni - di)):
                        la = np.int64(compact[k, j, i])
                        lb = np.int64(compact[k + dk, j + dj, i + di])
                        if la == lb:
                            continue
                        if fill:
                            if lb == 0:
                                first, second = la, np.int64(0)
                            elif la == 0:
                                first, second = lb, np.int64(0)
                            else:
                                first, second = min(la, lb), max(la, lb)
                            key0 = i + j * s1 + k * s2 + sa
                            if first == la:  # counter-clockwise around +axis: normal from la to lb
                                quads[q, 0] = key0
                                quads[q, 1] = key0 + su
                                quads[q, 2] = key0 + su + sw
                                quads[q, 3] = key0 + sw
                            else:
                                quads[q, 0] = key0 + sw
                                quads[q, 1] = key0 + su + sw
                                quads[q, 2] = key0 + su
                                quads[q, 3] = key0
                            sides[q, 0] = first
                            sides[q, 1] = second
                        q += 1
        if not fill:
            quads = np.empty((q, 4), dtype=np.int64)
            sides = np.empty((q, 2), dtype=np.int64)
    n_keys = s2 * (nk + 1)
    bits = np.zeros(n_keys // 64 + 1, dtype=np.uint64)
    for q in range(quads.shape[0]):
        for c in range(4):
            key = quads[q, c]
            bits[key >> 6] |= np.uint64(1) << np.uint64(key & 63)
    before = np.empty(bits.shape[0], dtype=np.int64)  # used keys in the words before
    total = 0
    for w in range(bits.shape[0]):
        before[w] = total
        total += np.int64(_popcount(bits[w]))
    used_keys = np.empty(total, dtype=np.int64)
    u = 0
    for w in range(bits.shape[0]):
        word = bits[w]
        b = 0
        while word != 0:
            if word & np.uint64(1):
                used_keys[u] = w * 64 + b
                u += 1
            word >>= np.uint64(1)
            b += 1
    triangles = np.empty((2 * quads.shape[0], 3), dtype=np.int64)
    both_sides = np.empty((2 * quads.shape[0], 2), dtype=np.int64)
    vertex = np.empty(4, dtype=np.int64)
    for q in range(quads.shape[0]):
        for c in range(4):
            key = quads[q, c]
            low = bits[key >> 6] & ((np.uint64(1) << np.uint64(key & 63)) - np.uint64(1))
            vertex[c] = before[key >> 6] + np.int64(_popcount(low))
        triangles[2 * q, 0] = vertex[0]
        triangles[2 * q, 1] = vertex[1]
        triangles[2 * q, 2] = vertex[2]
        triangles[2 * q + 1, 0] = vertex[0]
        triangles[2 * q + 1, 1] = vertex[2]
        triangles[2 * q + 1, 2] = vertex[3]
        for r in range(2):
            both_sides[2 * q + r, 0] = sides[q, 0]
            both_sides[2 * q + r, 1] = sides[q, 1]
    return used_keys, triangles, both_sides


def _voxel_faces(compact: NDArray[Any], offset_ijk: NDArray[np.int64]
                 ) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """The unsmoothed surface-nets surface: every voxel face between two different labels.

    Parameters
    ----------
    compact : (K, J, I) labels 0..n (0 background), padded so no label touches the border.
    offset_ijk : (3,) full-grid (i, j, k) index of ``compact[0, 0, 0]``.

    Returns
    -------
    points : (N, 3) voxel corners in full-grid (i, j, k) index coordinates, in C order of the
        corner lattice.
    triangles : (M, 3) two per face (faces normal to i, then j, then k, each in C order of
        their voxels); normal from ``sides[:, 0]`` to ``sides[:, 1]``.
    sides : (M, 2) labels on either side: background (0) always in column 1, otherwise
        column 0 < column 1 (the convention of ``vtkSurfaceNets3D``'s ``BoundaryLabels``).

    Notes
    -----
    This is exactly the geometry ``vtkSurfaceNets3D`` produces with smoothing off (one vertex per
    boundary voxel corner, one quad per boundary voxel face). It is built here because that
    filter (VTK 9.7) splits points at non-manifold voxel configurations in a way that left
    zero-width cracks and inconsistently wound triangles on thin diagonal structures (ribs);
    this construction is consistently oriented by design, and non-manifold edges and
    vertices are split per region by :func:`_make_manifold`. One numba pass (with a bitmap of the
    corners in use) instead of numpy's sort of every corner key.
    """
    _, J, I = compact.shape  # noqa: E741 - i, j, k axes
    used_keys, triangles, sides = _voxel_faces_kernel(np.ascontiguousarray(compact))
    if len(triangles) == 0:
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64), np.zeros((0, 2), np.int64)
    ci = used_keys % (I + 1)
    cj = (used_keys // (I + 1)) % (J + 1)
    ck = used_keys // ((I + 1) * (J + 1))
    points = np.stack([ci, cj, ck], axis=1).astype(np.float64) - 0.5 + np.asarray(offset_ijk, dtype=np.float64)
    return points, triangles, sides


def _settings(smoothing_iterations: int, smoothing_passband: float, target_reduction: float, repair: bool
              ) -> dict[str, Any]:
    if smoothing_iterations < 0:
        raise ValueError(f"smoothing_iterations must be >= 0, got {smoothing_iterations}")
    if not 0.0 < smoothing_passband <= 2.0:
        raise ValueError(f"smoothing_passband must be in (0, 2], got {smoothing_passband}")
    if not 0.0 <= target_reduction < 1.0:
        raise ValueError(f"target_reduction must be in [0, 1), got {target_reduction}")
    return {
        "method": "surface_nets",
        "smoothing": {"method": "windowed_sinc", "iterations": int(smoothing_iterations),
                      "passband": float(smoothing_passband), "normalize_coordinates": True,
                      "max_shift_voxels": DEFAULT_MAX_SHIFT_VOXELS,
                      "compensation_steps": DEFAULT_COMPENSATION_STEPS if smoothing_iterations else 0,
                      "volume": "voxel volume restored per segment"},
        "decimation": {"method": "fast_simplification", "target_reduction": float(target_reduction),
                       "aggressiveness": 7.0, "interfaces": "decimated once per patch, borders kept"},
        "repair": {"method": "pymeshfix", "enabled": bool(repair), "when": "not watertight or not manifold"},
    }


@njit(cache=True)
def _count_and_box(array: NDArray[Any], lut: NDArray[np.int64], n_labels: int
                   ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:  # pragma: no cover - compiled
    """Voxels per compact label (lut maps values to 0..n) and the (k0, j0, i0, k1, j1, i1) box of labels > 0."""
    counts = np.zeros(n_labels + 1, dtype=np.int64)
    nk, nj, ni = array.shape
    box = np.array([nk, nj, ni, 0, 0, 0], dtype=np.int64)
    size = lut.shape[0]
    zero_is_background = size == 0 or lut[0] == 0
    for k in range(nk):
        for j in range(nj):
            row_lo = ni
            row_hi = -1
            if zero_is_background and _row_extent(array[k, j])[1] < 0:  # an empty row: background only
                counts[0] += ni
                continue
            for i in range(ni):
                value = array[k, j, i]
                label = lut[value] if 0 <= value < size else 0
                counts[label] += 1
                if label:
                    if row_lo == ni:
                        row_lo = i
                    row_hi = i
            if row_hi >= 0:
                box[0] = min(box[0], k)
                box[1] = min(box[1], j)
                box[2] = min(box[2], row_lo)
                box[3] = max(box[3], k + 1)
                box[4] = max(box[4], j + 1)
                box[5] = max(box[5], row_hi + 1)
    return counts, box


def _region_targets(sides: NDArray[np.int64], volumes: Sequence[float]
                    ) -> list[tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.bool_], float]]:
    targets = []
    for label, volume in enumerate(volumes, start=1):
        forward = sides[:, 0] == label
        flipped = sides[:, 1] == label
        targets.append((forward, flipped, forward & (sides[:, 1] == 0), float(volume)))
    return targets


def _build_surfaces(label_map: LabelMap, chosen: list[Segment], *, smoothing_iterations: int,
                    smoothing_passband: float, target_reduction: float, repair: bool,
                    progress: ProgressCallback | None, api: str) -> dict[str, SurfaceMesh]:
    settings = _settings(smoothing_iterations, smoothing_passband, target_reduction, repair)
    total = 6
    array = label_map.array
    affine = np.asarray(label_map.ijk_to_lps, dtype=np.float64)
    voxel_mm3 = abs(float(np.linalg.det(affine[:3, :3])))
    label_name = label_map.id or label_map.name or "label map"
    n_labels = len(chosen)
    report(progress, 0, total, "selecting segments")
    # Compact labels 1..n for the chosen segments; everything else is background.
    max_value = max(int(array.max()), 0) if array.size else 0
    lut = np.zeros(max(max_value, max(s.value for s in chosen)) + 1, dtype=np.uint8 if n_labels < 255 else np.uint16)
    for index, seg in enumerate(chosen, start=1):
        lut[seg.value] = index
    counts, box = _count_and_box(np.ascontiguousarray(array), lut.astype(np.int64), n_labels)
    empty = [s.name for s, c in zip(chosen, counts[1:], strict=True) if c == 0]
    if empty:
        raise InputError(f"{label_name}: segment(s) {empty} have no voxels; no surface can be built")
    k0, j0, i0 = (int(x) for x in box[:3])
    # Two layers of padding: the inner one may take voxels that make the segments well-composed,
    # the outer one stays background so that surfaces touching the grid border close.
    padded = _compact_crop(np.ascontiguousarray(array), lut, box, 2)
    added = np.zeros(padded.shape, dtype=bool)  # the voxels well-composing fills (pages touched only there)
    padded, n_added = _well_compose(padded, copy=False, added=added)
    report(progress, 1, total, "extracting surfaces (voxel faces / surface nets)")
    offset = np.array([i0 - 2, j0 - 2, k0 - 2])
    points, triangles, sides = _voxel_faces(padded, offset)
    added_voxel = _added_voxel_behind(points, triangles, added, offset) if n_added else None
    del added
    patch_code = sides[:, 0] * (n_labels + 1) + sides[:, 1]
    # Topology does not depend on positions: one analysis serves smoothing, decimation and, while the
    # triangles stay these, the checks (for one segment its region is the whole surface).
    topology: dict[str, Any] | None = mesh_topology(triangles, len(points))
    report(progress, 2, total, "smoothing (windowed sinc)")
    # Index space: a voxel has volume 1.
    points = _smooth_points(points, triangles, iterations=smoothing_iterations, passband=smoothing_passband,
                            max_shift=DEFAULT_MAX_SHIFT_VOXELS, compensation_steps=DEFAULT_COMPENSATION_STEPS,
                            face_patch=patch_code, volume_targets=_region_targets(sides, counts[1:]),
                            topology=topology, added_voxel=added_voxel)
    lps = _apply_affine(affine, points)
    if np.linalg.det(affine[:3, :3]) < 0:
        triangles = triangles[:, ::-1].copy()
    report(progress, 3, total, "decimating (fast-simplification)")
    if target_reduction > 0:
        lps, triangles, patch_code, topology = _decimate_patches(lps, triangles, patch_code,
                                                                 target_reduction=target_reduction, topology=topology)
        sides = np.stack([patch_code // (n_labels + 1), patch_code % (n_labels + 1)], axis=1)
        lps = _restore_volumes(lps, triangles, _region_targets(sides, counts[1:] * voxel_mm3),
                               movable=_junction_free(triangles, len(lps), patch_code))
    report(progress, 4, total, "checking and repairing")
    names = [s.name for s in chosen]
    meshes: dict[str, SurfaceMesh] = {}
    for label, seg in enumerate(chosen, start=1):
        forward = sides[:, 0] == label
        flipped = sides[:, 1] == label
        region = np.concatenate([triangles[forward], triangles[flipped][:, ::-1]])
        if n_labels > 1 or topology is None:
            topology = mesh_topology(region, len(lps))
        if _is_manifold(topology):  # _make_manifold would return it unchanged: skip its edge sorting
            vertices, tris = _compact(lps, region)
        else:
            split_points, split, _ = _make_manifold(lps, region)
            vertices, tris = _compact(split_points, split)
            topology = mesh_topology(tris, len(vertices))
        others = np.unique(np.concatenate([sides[forward, 1], sides[flipped, 0]]))
        neighbours = sorted(names[int(v) - 1] for v in others if v != 0)
        quality = quality_from_topology(vertices, tris, topology)
        provenance: dict[str, Any] = {
            "source": "label_map",
            "api": api,
            "label_map_id": label_map.id,
            "label_map_name": label_map.name,
            "source_volume_id": label_map.source_volume_id,
            "segment": seg.name,
            "segment_value": seg.value,
            "segments_built_together": names,
            "shared_boundaries_with": neighbours,
            "voxel_count": int(counts[label]),
            "voxel_volume_mm3": float(counts[label]) * voxel_mm3,
            "voxels_added_for_manifold_surfaces": n_added,
            "coordinate_system": "LPS",
            "units": "mm",
            **settings,
            "software": _software(),
        }
        provenance["repair"] = {**settings["repair"], "applied": False}
        mesh = SurfaceMesh(vertices_lps=vertices, triangles=tris, name=seg.name, segment=seg.name,
                           color_rgb=seg.color_rgb, provenance=provenance)
        if repair and not (quality.watertight and quality.manifold):
            mesh = repair_surface(mesh)
            mesh.provenance["repair"] = {**settings["repair"], "applied": True,
                                         "note": "repaired on its own: interfaces no longer share vertices"}
            quality = surface_quality(mesh)
        mesh.provenance["quality"] = quality.to_dict()
        meshes[seg.name] = mesh
    report(progress, total, total, "surfaces done")
    return meshes


def _decimate_patches(points: NDArray[np.float64], triangles: NDArray[np.int64], patch_code: NDArray[np.int64], *,
                      target_reduction: float, topology: dict[str, Any] | None = None
                      ) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64], dict[str, Any] | None]:
    """Decimate each patch (triangles with the same pair of sides) on its own, keeping patch borders.

    Border vertices (on curves where three regions meet) are never collapsed or moved, and a
    decimated patch's surviving vertices keep their order, so every output vertex is traced
    back to its input vertex: patches still join at the same global vertices.

    ``topology`` is :func:`mesh_topology` of ``triangles`` if known. Returns the new points,
    triangles, patch codes and, when there is a single patch, the topology of the new triangles
    (else ``None``).
    """
    if target_reduction <= 0 or len(triangles) == 0:
        return points, triangles, patch_code, topology
    codes = np.unique(patch_code)
    result_topology = topology if len(codes) == 1 else None

    out_points: list[NDArray[np.float64]] = [points]
    out_triangles: list[NDArray[np.int64]] = []
    out_codes: list[NDArray[np.int64]] = []
    n_total = len(points)
    for code in codes:
        patch = triangles[patch_code == code] if len(codes) > 1 else triangles
        if len(codes) > 1 or topology is None:
            topology = mesh_topology(patch, len(points))
        if _is_manifold(topology):
            split_points, split, origin = points, patch, np.arange(len(points))
        else:
            split_points, split, origin = _make_manifold(points, patch)
            topology = None
        used = np.zeros(len(origin), dtype=bool)
        used[split.ravel()] = True
        local_to_split = np.flatnonzero(used)
        if len(local_to_split) == len(used):  # every vertex used (always for a single patch): no renumbering
            local_triangles, local_points = split, split_points
        else:
            local_triangles = (np.cumsum(used) - 1)[split]
            local_points = split_points[local_to_split]
        if len(local_triangles) < 8:
            out_triangles.append(patch)
            out_codes.append(np.full(len(patch), code))
            continue
        decimated = _simplify_checked(local_points, local_triangles, target_reduction, before=topology)
        if decimated is None:  # decimation broke the topology even at a lower reduction: keep the patch
            out_triangles.append(patch)
            out_codes.append(np.full(len(patch), code))
            continue
        new_points, new_triangles, survivors, new_topology = decimated
        known = survivors >= 0
        border = np.zeros(len(survivors), dtype=bool)
        if topology is None or topology["n_boundary_edges"]:
            border[known] = _border_vertices(local_triangles, len(local_points))[survivors[known]]
        if len(codes) == 1 and not border.any():
            # Below, these points would follow the unused input points and be compacted back to
            # themselves: the result is the decimated patch as it is, and so is its topology.
            new_triangles = np.asarray(new_triangles, dtype=np.int64).reshape(-1, 3)
            return (np.asarray(new_points, dtype=np.float64), new_triangles, np.full(len(new_triangles), code),
                    new_topology)
        global_index = np.empty(len(survivors), dtype=np.int64)
        global_index[border] = origin[local_to_split[survivors[border]]]
        n_moved = int(np.count_nonzero(~border))
        global_index[~border] = n_total + np.arange(n_moved)
        n_total += n_moved
        out_points.append(np.asarray(new_points, dtype=np.float64)[~border])
        out_triangles.append(global_index[np.asarray(new_triangles, dtype=np.int64).reshape(-1, 3)])
        out_codes.append(np.full(len(new_triangles), code))
    all_points = np.concatenate(out_points)
    all_triangles = np.concatenate(out_triangles)
    all_points, all_triangles = _compact(all_points, all_triangles)
    return all_points, all_triangles, np.concatenate(out_codes), result_topology


def _simplify_checked(points: NDArray[np.float64], triangles: NDArray[np.int64], target_reduction: float, *,
                      before: dict[str, Any] | None = None
                      ) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64], dict[str, Any]] | None:
    """fast-simplification with the border kept; ``None`` if it cannot keep the topology.

    Quadric collapses may join two sheets (an edge collapse whose ends share more than two
    neighbours, frequent on tubes a few voxels thick); such a result is rejected and the
    reduction halved, up to three times.

    Returns the new points, triangles, for each new point the input vertex it continues, and the
    :func:`mesh_topology` of the new triangles.
    """
    import fast_simplification

    if before is None:  # the topology of the input, unless the caller has it
        before = mesh_topology(triangles, len(points))

    def acceptable(topo: dict[str, Any]) -> bool:
        return bool(topo["consistently_oriented"] and topo["edge_manifold"] and topo["n_nonmanifold_vertices"] == 0
                    and topo["n_boundary_edges"] == before["n_boundary_edges"] and topo["n_degenerate"] == 0)

    reduction = float(target_reduction)
    for _ in range(3):
        new_points, new_triangles, collapses = fast_simplification.simplify(
            np.ascontiguousarray(points), np.ascontiguousarray(triangles, dtype=np.int32),
            target_reduction=reduction, agg=7.0, preserve_border=True, return_collapses=True)
        removed = np.zeros(len(points), dtype=bool)
        if len(collapses):
            removed[np.asarray(collapses)[:, 1]] = True
        survivors = np.flatnonzero(~removed)
        new_points = np.asarray(new_points, dtype=np.float64)
        new_triangles = np.asarray(new_triangles, dtype=np.int64).reshape(-1, 3)
        if len(survivors) == len(new_points) and len(new_triangles):
            topology = mesh_topology(new_triangles, len(new_points))
            if acceptable(topology):
                return new_points, new_triangles, survivors, topology
            # Collapses of thin sheets leave a few back-to-back triangle pairs and pinched edges:
            # drop the pairs, split the pinches.
            split_points, split, origin = _repair_pinches(new_points, new_triangles, topology["problem_vertices"])
            topology = mesh_topology(split, len(origin))
            if acceptable(topology):
                return split_points, split, np.where(origin >= 0, survivors[np.maximum(origin, 0)], -1), topology
        reduction /= 2.0
    return None


def _drop_back_to_back(triangles: NDArray[np.int64]) -> NDArray[np.int64]:
    """Remove triangles repeated with the same vertices: back-to-back pairs both, same-way copies but one."""
    if len(triangles) == 0:
        return triangles
    ordered = np.sort(triangles, axis=1)
    n = int(triangles.max()) + 1
    keys = (ordered[:, 0] * n + ordered[:, 1]) * n + ordered[:, 2]
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    dup = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1])
    if len(dup) == 0:
        return triangles
    drop = np.zeros(len(triangles), dtype=bool)
    parity = _even_permutation(triangles)
    for i in dup:
        a, b = order[i], order[i + 1]
        if drop[a] or drop[b]:
            continue
        if parity[a] != parity[b]:
            drop[a] = drop[b] = True
        else:
            drop[b] = True
    return triangles[~drop]


def _even_permutation(triangles: NDArray[np.int64]) -> NDArray[np.bool_]:
    """True where a triangle's vertex order is an even (rotation) permutation of its sorted order."""
    t = triangles
    return ((t[:, 0] < t[:, 1]) & (t[:, 1] < t[:, 2])) | ((t[:, 1] < t[:, 2]) & (t[:, 2] < t[:, 0])) | (
        (t[:, 2] < t[:, 0]) & (t[:, 0] < t[:, 1]))


def _border_vertices(triangles: NDArray[np.int64], n: int) -> NDArray[np.bool_]:
    """(N,) True for vertices on an edge used by exactly one triangle."""
    e = np.sort(np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]]), axis=1)
    keys = np.sort(e[:, 0] * n + e[:, 1])
    single = np.ones(len(keys), dtype=bool)
    dup = keys[1:] == keys[:-1]
    single[1:] &= ~dup
    single[:-1] &= ~dup
    border = np.zeros(n, dtype=bool)
    lone = keys[single]
    border[lone // n] = True
    border[lone % n] = True
    return border


def _edge_partners(points: NDArray[np.float64], triangles: NDArray[np.int64]) -> NDArray[np.int64]:
    """(M, 3) the triangle across each edge (slot k is edge ``t[k] -> t[k+1]``), -1 on a border.

    An edge with more than two triangles (two voxels touching along an edge) is resolved by
    sorting its triangles by angle around it and pairing neighbours across the *outside*
    wedges, so the region stays joined through the edge (a diagonal rib stays one piece).
    """
    m = len(triangles)
    n = len(points)
    a = triangles.ravel()
    b = triangles[:, [1, 2, 0]].ravel()
    keys = np.minimum(a, b) * n + np.maximum(a, b)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.concatenate([[True], sorted_keys[1:] != sorted_keys[:-1]]))
    sizes = np.diff(np.append(starts, len(keys)))
    partner = np.full(3 * m, -1, dtype=np.int64)
    pairs = starts[sizes == 2]
    h0, h1 = order[pairs], order[pairs + 1]
    partner[h0] = h1 // 3
    partner[h1] = h0 // 3
    # Four triangles on an edge (two voxels of a region touching along it), all at once.
    quads = starts[sizes == 4]
    if len(quads):
        halves = order[quads[:, None] + np.arange(4)]  # (E, 4) half-edge ids
        pairs = _pair_four(points, triangles, halves // 3, a[halves[:, 0]], b[halves[:, 0]])
        ok = pairs[:, 0] >= 0
        for x, y in ((0, 1), (2, 3)):
            ha = halves[ok, pairs[ok, x]]
            hb = halves[ok, pairs[ok, y]]
            partner[ha] = hb // 3
            partner[hb] = ha // 3
        odd = quads[~ok]
    else:
        odd = quads
    for start in np.concatenate([odd, starts[(sizes > 2) & (sizes != 4)]]).astype(np.int64):
        halves = order[start:start + sizes[np.searchsorted(starts, start)]]
        for ha, hb in _pair_around_edge(points, triangles, halves // 3, a[halves[0]], b[halves[0]]):
            partner[halves[ha]] = halves[hb] // 3
            partner[halves[hb]] = halves[ha] // 3
    return partner.reshape(m, 3)


def _pair_four(points: NDArray[np.float64], triangles: NDArray[np.int64], faces: NDArray[np.int64],
               u: NDArray[np.int64], v: NDArray[np.int64]) -> NDArray[np.int64]:
    """Vectorised :func:`_pair_around_edge` for E edges with four triangles each.

    Returns (E, 4): positions ``[a, b, c, d]`` pairing (a, b) and (c, d), or -1 rows where the
    simple rule does not apply (left to the general routine).
    """
    e = points[v] - points[u]
    e /= np.maximum(np.linalg.norm(e, axis=1), 1e-300)[:, None]
    tri = triangles[faces]  # (E, 4, 3)
    forward = ((tri[..., 0] == u[:, None]) & (tri[..., 1] == v[:, None])) | (
        (tri[..., 1] == u[:, None]) & (tri[..., 2] == v[:, None])) | (
        (tri[..., 2] == u[:, None]) & (tri[..., 0] == v[:, None]))
    is_third = (tri != u[:, None, None]) & (tri != v[:, None, None])
    valid = is_third.sum(axis=2) == 1
    third = np.take_along_axis(tri, np.argmax(is_third, axis=2)[..., None], axis=2)[..., 0]
    wing = points[third] - points[u][:, None, :]
    wing -= np.einsum("efk,ek->ef", wing, e)[..., None] * e[:, None, :]
    base1 = wing[:, 0] / np.maximum(np.linalg.norm(wing[:, 0], axis=1), 1e-300)[:, None]
    base2 = np.cross(e, base1)
    angle = np.arctan2(np.einsum("efk,ek->ef", wing, base2), np.einsum("efk,ek->ef", wing, base1))
    ordered = np.argsort(angle, axis=1)
    p = points[tri]
    normal = np.cross(p[..., 1, :] - p[..., 0, :], p[..., 2, :] - p[..., 0, :])
    outside_next = np.einsum("efk,efk->ef", normal, np.cross(e[:, None, :], wing)) > 0
    outside_sorted = np.take_along_axis(outside_next, ordered, axis=1)
    first = np.where(outside_sorted.any(axis=1), np.argmax(outside_sorted, axis=1), 0)
    forward_sorted = np.take_along_axis(forward, ordered, axis=1)
    result = np.full((len(u), 4), -1, dtype=np.int64)
    done = ~valid.all(axis=1)
    for shift in (0, 1):
        roll = (first + shift) % 4
        index = (roll[:, None] + np.arange(4)) % 4
        rolled = np.take_along_axis(ordered, index, axis=1)
        fw = np.take_along_axis(forward_sorted, index, axis=1)
        good = ~done & (fw[:, 0] != fw[:, 1]) & (fw[:, 2] != fw[:, 3])
        result[good] = rolled[good]
        done |= good
    return result


def _pair_around_edge(points: NDArray[np.float64], triangles: NDArray[np.int64], faces: NDArray[np.int64],
                      u: int, v: int) -> list[tuple[int, int]]:
    """Pairs (positions in ``faces``) of the triangles around edge (u, v), neighbours across outside wedges."""
    edge = points[v] - points[u]
    edge = edge / max(float(np.linalg.norm(edge)), 1e-300)
    tri = triangles[faces]
    # +1 where the triangle runs u -> v, -1 where it runs v -> u: a pair must hold one of each.
    forward = ((tri[:, 0] == u) & (tri[:, 1] == v)) | ((tri[:, 1] == u) & (tri[:, 2] == v)) | (
        (tri[:, 2] == u) & (tri[:, 0] == v))
    third = tri[(tri != u) & (tri != v)]
    if len(third) != len(faces):  # degenerate triangles: no angles
        ordered = np.arange(len(faces))
        first = 0
    else:
        wing = points[third] - points[u]
        wing -= np.outer(wing @ edge, edge)
        base1 = wing[0] / max(float(np.linalg.norm(wing[0])), 1e-300)
        base2 = np.cross(edge, base1)
        ordered = np.argsort(np.arctan2(wing @ base2, wing @ base1))
        normal = np.cross(points[tri[:, 1]] - points[tri[:, 0]], points[tri[:, 2]] - points[tri[:, 0]])
        # Outward normal along +angle: the wedge after this triangle is outside.
        outside_next = np.einsum("ij,ij->i", normal, np.cross(edge, wing)) > 0
        first = int(np.flatnonzero(outside_next[ordered])[0]) if outside_next[ordered].any() else 0
    for shift in (first, first + 1):
        rolled = np.roll(ordered, -shift)
        pairs = [(int(rolled[i]), int(rolled[i + 1])) for i in range(0, len(rolled) - 1, 2)]
        if all(forward[x] != forward[y] for x, y in pairs):
            return pairs
    # Folded geometry (neighbours run the same way): pair forward and backward triangles in angle order.
    ahead = [int(i) for i in ordered if forward[i]]
    back = [int(i) for i in ordered if not forward[i]]
    return list(zip(ahead, back, strict=False))


def _separate_kissing_edges(points: NDArray[np.float64], triangles: NDArray[np.int64], origin: NDArray[np.int64]
                            ) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """Split edges still used by more than two triangles after the fan split.

    When both ends of such an edge are regular vertices (two sheets touch along one edge only),
    no vertex copy separates them; each pair after the first gets a new vertex at the edge's
    midpoint and its two triangles are halved, so the edge belongs to one pair only. A triangle
    on two such edges is halved once per pass; passes repeat until none is left.
    """
    for _ in range(8):
        n = len(points)
        a = triangles.ravel()
        b = triangles[:, [1, 2, 0]].ravel()
        keys = np.minimum(a, b) * n + np.maximum(a, b)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        starts = np.flatnonzero(np.concatenate([[True], sorted_keys[1:] != sorted_keys[:-1]]))
        sizes = np.diff(np.append(starts, len(keys)))
        if not np.any(sizes > 2):
            break
        new_points = [points]
        new_origin = [origin]
        extra: list[list[int]] = []
        touched = np.zeros(len(triangles), dtype=bool)
        count = n
        for start, size in zip(starts[sizes > 2], sizes[sizes > 2], strict=True):
            halves = order[start:start + size]
            faces = halves // 3
            if touched[faces].any():
                continue  # next pass
            u, v = int(a[halves[0]]), int(b[halves[0]])
            for fa, fb in _pair_around_edge(points, triangles, faces, u, v)[1:]:
                mid = count
                count += 1
                new_points.append(((points[u] + points[v]) / 2.0)[None, :])
                new_origin.append(np.array([-1]))
                for f in (faces[fa], faces[fb]):
                    t = [int(x) for x in triangles[f]]
                    k = next(i for i in range(3) if {t[i], t[(i + 1) % 3]} == {u, v})
                    p0, p1, p2 = t[k], t[(k + 1) % 3], t[(k + 2) % 3]
                    extra.append([p0, mid, p2])
                    extra.append([mid, p1, p2])
                    touched[f] = True
        triangles = np.concatenate([triangles[~touched], np.array(extra, dtype=np.int64).reshape(-1, 3)])
        points = np.concatenate(new_points)
        origin = np.concatenate(new_origin)
    return points, triangles, origin


@njit(cache=True)
def _split_fans(triangles: NDArray[np.int64], partner: NDArray[np.int64], n: int, allowed: NDArray[np.bool_]
                ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:  # pragma: no cover - compiled
    """Give each fan of triangles around an ``allowed`` vertex its own copy of the vertex."""
    m = triangles.shape[0]
    deg = np.zeros(n + 1, dtype=np.int64)
    for f in range(m):
        for k in range(3):
            deg[triangles[f, k] + 1] += 1
    start = np.cumsum(deg)
    fill = start[:-1].copy()
    corners = np.empty(3 * m, dtype=np.int64)
    for f in range(m):
        for k in range(3):
            v = triangles[f, k]
            corners[fill[v]] = 3 * f + k
            fill[v] += 1
    out = triangles.copy()
    origin = np.empty(n + 3 * m, dtype=np.int64)
    origin[:n] = np.arange(n)
    n_out = n
    max_deg = 0
    for v in range(n):
        max_deg = max(max_deg, start[v + 1] - start[v])
    parent = np.empty(max_deg, dtype=np.int64)
    for v in range(n):
        s0 = start[v]
        d = start[v + 1] - s0
        if d < 2 or not allowed[v]:
            continue
        for a in range(d):
            parent[a] = a
        for a in range(d):
            fa = corners[s0 + a] // 3
            ka = corners[s0 + a] % 3
            p_next = partner[fa, ka]  # across edge v -> next
            p_prev = partner[fa, (ka + 2) % 3]  # across edge prev -> v
            for b in range(d):
                fb = corners[s0 + b] // 3
                if fb == p_next or fb == p_prev:  # noqa: SIM109 - compiled by numba
                    union(parent, a, b)
        for a in range(d):
            parent[a] = find(parent, a)
        # The fan of the first corner keeps v; every other fan gets a new vertex.
        new_id = np.full(d, -1, dtype=np.int64)
        for a in range(d):
            r = parent[a]
            if r == parent[0]:
                continue
            if new_id[r] < 0:
                new_id[r] = n_out
                origin[n_out] = v
                n_out += 1
            c = corners[s0 + a]
            out[c // 3, c % 3] = new_id[r]
    return out, origin[:n_out].copy()


def _is_manifold(topology: dict[str, Any]) -> bool:
    """True when :func:`_make_manifold` has nothing to split (its result would be its input)."""
    return bool(topology["n_nonmanifold_edges"] == 0 and topology["n_nonmanifold_vertices"] == 0
                and topology["n_degenerate"] == 0 and topology["consistently_oriented"])


def _make_manifold(points: NDArray[np.float64], triangles: NDArray[np.int64]
                   ) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """Split non-manifold edges and vertices of a consistently oriented surface.

    Returns new vertices (N', 3), triangles (M', 3) and ``origin`` (N',): the input vertex each
    output vertex copies, -1 for a vertex inserted at an edge midpoint. Copies sit at the same
    position: surfaces touching along an edge or at a corner keep touching, but each sheet now
    has its own vertices.
    """
    t = np.ascontiguousarray(triangles, dtype=np.int64)
    if len(t) == 0:
        return points, t, np.arange(len(points))
    partner = _edge_partners(points, t)
    split, origin = _split_fans(t, partner, len(points), np.ones(len(points), dtype=bool))
    return _separate_kissing_edges(points[origin], split, origin)


def _repair_pinches(points: NDArray[np.float64], triangles: NDArray[np.int64], problem: NDArray[np.bool_]
                    ) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """:func:`_drop_back_to_back` then :func:`_make_manifold`, on the triangles around ``problem`` vertices only.

    ``problem`` (N,) marks the vertices :func:`mesh_topology` found non-manifold, on a
    non-manifold or inconsistent edge or on a degenerate triangle. Every triangle of such an
    edge or vertex touches a problem vertex, so working on those triangles alone (and splitting
    only problem vertices, whose whole star is among them) gives what the whole-mesh functions
    give, without sorting every edge of the mesh. Returns as :func:`_make_manifold`; the triangles
    away from the problems come first, unchanged.
    """
    t = np.ascontiguousarray(triangles, dtype=np.int64)
    near = problem[t].any(axis=1)
    rest = t[~near]
    local = _drop_back_to_back(t[near])
    if len(local) == 0:
        return points, rest, np.arange(len(points))
    partner = _edge_partners(points, local)
    split, origin = _split_fans(local, partner, len(points), problem)
    new_points, split, origin = _separate_kissing_edges(points[origin], split, origin)
    return new_points, np.concatenate([rest, split]), origin


def label_to_surface(label_map: LabelMap, segment: str | int, *,
                     smoothing_iterations: int = DEFAULT_SMOOTHING_ITERATIONS,
                     smoothing_passband: float = DEFAULT_SMOOTHING_PASSBAND,
                     target_reduction: float = DEFAULT_TARGET_REDUCTION, repair: bool = True,
                     progress: ProgressCallback | None = None) -> SurfaceMesh:
    """The closed surface of one segment, vertices in LPS mm.

    Parameters
    ----------
    label_map : the label map (array (K, J, I) indexed ``[k, j, i]``, ``ijk_to_lps`` 4x4).
    segment : segment name or value (a value not listed in ``segments`` is accepted as
        ``"label <value>"``); all other labels count as background.
    smoothing_iterations : windowed-sinc iterations (0: the exact voxel boundary).
    smoothing_passband : windowed-sinc pass band in (0, 2] (lower is smoother).
    target_reduction : fraction of triangles removed by decimation (0: none).
    repair : repair with pymeshfix if the result is not a watertight 2-manifold.
    progress : ``progress(done, total, message)``; returning ``False`` cancels.

    Returns
    -------
    SurfaceMesh
        Outward-oriented triangles; ``provenance`` holds the parameters, the voxel volume and
        the :class:`SurfaceQuality`.

    Raises
    ------
    InputError
        The segment is unknown or has no voxels.
    """
    chosen = _resolve_segments(label_map, [segment])
    return _build_surfaces(label_map, chosen, smoothing_iterations=smoothing_iterations,
                           smoothing_passband=smoothing_passband, target_reduction=target_reduction, repair=repair,
                           progress=progress, api="label_to_surface")[chosen[0].name]


def label_map_surfaces(label_map: LabelMap, *, segments: Iterable[str | int] | None = None,
                       smoothing_iterations: int = DEFAULT_SMOOTHING_ITERATIONS,
                       smoothing_passband: float = DEFAULT_SMOOTHING_PASSBAND,
                       target_reduction: float = DEFAULT_TARGET_REDUCTION, repair: bool = True,
                       progress: ProgressCallback | None = None) -> dict[str, SurfaceMesh]:
    """Surfaces of several segments at once, sharing their common boundaries.

    Touching segments share the same vertices and triangles on their interface (opposite
    winding), so there is neither a gap nor an overlap between them; this holds after
    smoothing and decimation (see the module notes; a segment that needed repair is the
    exception and says so in its provenance).

    Parameters
    ----------
    label_map : the label map.
    segments : names or values to build (default: every segment present in the array,
        unnamed values as ``"label <value>"``); labels not chosen count as background.
    smoothing_iterations, smoothing_passband, target_reduction, repair, progress :
        as in :func:`label_to_surface`.

    Returns
    -------
    dict
        Segment name -> :class:`SurfaceMesh` (LPS mm), in the order of the segments.
    """
    chosen = _resolve_segments(label_map, segments)
    if not chosen:
        raise InputError(f"{label_map.id or label_map.name or 'label map'}: no labelled voxels; no surface to build")
    return _build_surfaces(label_map, chosen, smoothing_iterations=smoothing_iterations,
                           smoothing_passband=smoothing_passband, target_reduction=target_reduction, repair=repair,
                           progress=progress, api="label_map_surfaces")


def voxel_volume_mm3(label_map: LabelMap, segment: str | int) -> float:
    """Volume of a segment's voxels in mm^3 (voxel count times the voxel volume); a value may be unlisted."""
    try:
        value = label_map.segment(segment).value
    except KeyError:
        if not isinstance(segment, (int, np.integer)):
            raise
        value = int(segment)
    count = int(np.count_nonzero(label_map.array == value))
    return count * abs(float(np.linalg.det(np.asarray(label_map.ijk_to_lps)[:3, :3])))
