"""Manual edits on a mask: spherical brush in mm (or its disc in one slice), an outline filled in one
slice, level tracing in one slice, cuts by a plane or a cylinder (LPS mm)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from workstation.geometry import apply_affine


def _grid_lps(ijk_to_lps: NDArray[np.float64], shape: tuple[int, ...],
              box: tuple[slice, slice, slice] | None = None) -> NDArray[np.float64]:
    box = box or tuple(slice(0, n) for n in shape)  # type: ignore[assignment]
    k, j, i = np.meshgrid(*(np.arange(s.start, s.stop) for s in box), indexing="ij")  # type: ignore[union-attr]
    return apply_affine(ijk_to_lps, np.stack([i, j, k], axis=-1))


def sphere_mask(shape: tuple[int, int, int], ijk_to_lps: ArrayLike, center_lps: ArrayLike,
                radius_mm: float) -> NDArray[np.bool_]:
    """(K, J, I) voxels whose centre lies within ``radius_mm`` of ``center_lps``."""
    if not radius_mm > 0:
        raise ValueError(f"brush radius_mm must be > 0, got {radius_mm}")
    affine = np.asarray(ijk_to_lps, dtype=float)
    center = np.asarray(center_lps, dtype=float)
    # Only the box around the sphere is evaluated: a brush stroke stays cheap on a big volume.
    corners = np.array([[a, b, c] for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)]) * radius_mm + center
    ijk = apply_affine(np.linalg.inv(affine), corners)
    low = np.clip(np.floor(ijk.min(0)).astype(int), 0, np.array(shape[::-1]) - 1)
    high = np.clip(np.ceil(ijk.max(0)).astype(int) + 1, 0, np.array(shape[::-1]))
    out = np.zeros(shape, dtype=bool)
    if np.any(high <= low):
        return out
    box = (slice(low[2], high[2]), slice(low[1], high[1]), slice(low[0], high[0]))
    lps = _grid_lps(affine, shape, box)
    out[box] = np.sum((lps - center) ** 2, axis=-1) <= radius_mm**2
    return out


def in_slice(mask: NDArray[np.bool_], *, axis: int, index: int) -> NDArray[np.bool_]:
    """A copy of ``mask`` keeping only slice ``index`` along array ``axis`` (a 2-D brush from a ball)."""
    out = np.zeros_like(mask)
    if 0 <= index < mask.shape[axis]:
        out[_slice_at(axis, index)] = mask[_slice_at(axis, index)]
    return out


def polygon_mask(vertices: ArrayLike, shape: tuple[int, int]) -> NDArray[np.bool_]:
    """(rows, columns) pixels whose centres lie inside a polygon (even-odd rule, scanlines).

    ``vertices`` (N, 2) are (row, column) coordinates in pixels, in order. A centre on the outline
    is inside on the polygon's low-column side of a crossing and outside on its high-column side,
    whichever way round the polygon runs: drawing an outline and erasing the same outline drawn
    backwards cancel exactly (``matplotlib.path.Path`` leaves centres on an edge to the orientation).
    """
    v = np.asarray(vertices, dtype=float)
    out = np.zeros(shape, dtype=bool)
    if not np.isfinite(v).all():
        raise ValueError("polygon_mask: the vertices must be finite")
    if v.shape[0] < 3 or shape[0] < 1 or shape[1] < 1:
        return out
    # every edge from its lower-row end, so that an outline and its reverse compute the same crossings
    ends = np.stack([v, np.roll(v, -1, axis=0)], axis=1)  # (edges, 2 ends, row/column)
    ends = np.take_along_axis(ends, np.argsort(ends[:, :, 0], axis=1, kind="stable")[:, :, None], axis=1)
    (r0, c0), (r1, c1) = ends[:, 0].T, ends[:, 1].T
    # the integer rows an edge crosses: r0 <= row < r1 (half-open: a vertex on a scanline counts once);
    # only the crossings that exist are made, so long freehand outlines cost what they cross
    first = np.clip(np.ceil(r0), 0, shape[0]).astype(np.intp)
    stop = np.clip(np.ceil(r1), 0, shape[0]).astype(np.intp)
    count = np.maximum(stop - first, 0)
    edge = np.repeat(np.arange(count.size), count)
    row = np.arange(edge.size) - np.repeat(np.cumsum(count) - count, count) + first[edge]
    x = c0[edge] + (row - r0[edge]) * (c1[edge] - c0[edge]) / (r1[edge] - r0[edge])
    order = np.lexsort((x, row))  # each row holds an even number of crossings: pairs are spans
    row, column = row[order], np.clip(np.ceil(x[order]), 0, shape[1]).astype(np.intp)  # spans [start, stop)
    steps = np.zeros((shape[0], shape[1] + 1), dtype=np.int8)
    np.add.at(steps, (row[0::2], column[0::2]), 1)
    np.add.at(steps, (row[1::2], column[1::2]), -1)
    return np.cumsum(steps[:, :-1], axis=1, dtype=np.int8) > 0


def outline_in_slice(shape: tuple[int, int, int], ijk_to_lps: ArrayLike, points_lps: ArrayLike, *,
                     axis: int) -> NDArray[np.bool_]:
    """(K, J, I) voxels of one slice inside a closed outline (a polygon through ``points_lps``).

    The points are projected along array ``axis`` (0 = k, 1 = j, 2 = i) onto the voxel slice through
    their centroid; the voxels of that slice whose centres lie inside the polygon
    (:func:`polygon_mask`) are set. The outline may leave the grid: it is clipped.
    """
    kji = _kji(ijk_to_lps, points_lps)
    rows, cols = [a for a in range(3) if a != axis]
    inside = polygon_mask(kji[:, [rows, cols]], (shape[rows], shape[cols]))
    return _one_slice(shape, inside, axis=axis, index=int(np.rint(kji[:, axis].mean())))


def _kji(ijk_to_lps: ArrayLike, points_lps: ArrayLike) -> NDArray[np.float64]:
    """(N, 3) continuous ``[k, j, i]`` indices of LPS points."""
    inverse = np.linalg.inv(np.asarray(ijk_to_lps, dtype=float))
    return apply_affine(inverse, np.asarray(points_lps, dtype=float))[:, ::-1]


def _one_slice(shape: tuple[int, ...], plane: NDArray[np.bool_], *, axis: int, index: int) -> NDArray[np.bool_]:
    """A (K, J, I) mask holding the 2-D ``plane`` as its slice ``index`` along ``axis`` (nothing when
    ``index`` lies outside the grid)."""
    out = np.zeros(shape, dtype=bool)
    if 0 <= index < shape[axis]:
        out[_slice_at(axis, index)] = plane
    return out


def _slice_at(axis: int, index: int) -> tuple[int | slice, ...]:
    """The (K, J, I) index of slice ``index`` across array ``axis``."""
    return tuple(index if a == axis else slice(None) for a in range(3))


def outline_prism(shape: tuple[int, int, int], ijk_to_lps: ArrayLike, points_lps: ArrayLike, *,
                  axis: int, normal_lps: ArrayLike) -> NDArray[np.bool_]:
    """(K, J, I) voxels whose centre, moved along ``normal_lps``, passes through a closed outline
    (scissors: the outline swept along the view's normal through the whole volume).

    The sweep follows the normal itself, not the grid axis nearest it, so on an oblique or tilted
    grid the cut stays under the drawn outline in every slice. Each voxel slice across array
    ``axis`` (that nearest the normal: 0 = k, 1 = j, 2 = i) is rasterised on its own with the
    outline moved along the normal into it (:func:`polygon_mask`); on a grid whose ``axis`` runs
    along the normal that is one rasterisation for every slice. The outline may leave the grid.
    """
    kji = _kji(ijk_to_lps, points_lps)
    normal = np.asarray(normal_lps, dtype=float)
    along = (np.linalg.inv(np.asarray(ijk_to_lps, dtype=float)[:3, :3]) @ normal)[::-1]  # (k, j, i) per mm
    if not np.isfinite(along).all() or abs(along[axis]) <= 1e-9 * max(np.abs(along).max(), 1e-300):
        raise ValueError(f"outline_prism: the normal {tuple(normal.tolist())} is zero or runs along the slices "
                         f"of axis {axis}")
    rows, cols = [a for a in range(3) if a != axis]
    shift = along[[rows, cols]] / along[axis]  # (row, column) offset per slice
    base = kji[:, [rows, cols]] - kji[:, [axis]] * shift  # the outline moved into slice 0
    if np.abs(shift).max() * shape[axis] < 1e-6:  # the grid axis is the normal (to well below a voxel)
        inside = polygon_mask(base, (shape[rows], shape[cols]))
        return np.broadcast_to(np.expand_dims(inside, axis), shape).copy()
    out = np.zeros(shape, dtype=bool)
    for index in range(shape[axis]):
        out[_slice_at(axis, index)] = polygon_mask(base + index * shift, (shape[rows], shape[cols]))
    return out


def trace_region(plane: NDArray[np.number], seed: tuple[int, int], *, darker: bool = False) -> NDArray[np.bool_]:
    """(rows, columns) region of a 2-D image enclosed by the iso-contour through pixel ``seed``.

    The pixels at least as bright as the seed (or, with ``darker``, at most as bright) that are
    4-connected to it, with the holes they enclose: the structure whose edge the seed lies on, as
    3D Slicer's and ITK-SNAP's level tracing outline it. 4-connectivity and hole filling do not
    depend on the image's orientation, so a view's transposed or flipped slice traces the same pixels.
    """
    from scipy import ndimage

    from segmentation.components import fill_slice_holes

    level = plane[seed]
    if not np.isfinite(level):
        raise ValueError("trace_region: the seed pixel has no finite value")
    pieces, _ = ndimage.label(plane <= level if darker else plane >= level)
    return fill_slice_holes((pieces == pieces[seed])[None])[0]


def level_trace(values: NDArray[np.number], seed_kji: tuple[int, int, int], *, axis: int,
                darker: bool = False) -> NDArray[np.bool_]:
    """(K, J, I) region of one slice enclosed by the iso-contour through a voxel (level tracing):
    :func:`trace_region` in the slice of ``values`` (K, J, I) through ``seed_kji`` across array ``axis``."""
    index = int(seed_kji[axis])
    seed = tuple(int(seed_kji[a]) for a in range(3) if a != axis)
    region = trace_region(np.take(values, index, axis=axis), seed, darker=darker)  # type: ignore[arg-type]
    return _one_slice(values.shape, region, axis=axis, index=index)


def plane_side(shape: tuple[int, int, int], ijk_to_lps: ArrayLike, origin_lps: ArrayLike,
               normal_lps: ArrayLike) -> NDArray[np.bool_]:
    """(K, J, I) voxels on the side of the plane the normal points to."""
    normal = np.asarray(normal_lps, dtype=float)
    if np.linalg.norm(normal) < 1e-12:
        raise ValueError("plane normal must not be zero")
    lps = _grid_lps(np.asarray(ijk_to_lps, dtype=float), shape)
    return (lps - np.asarray(origin_lps, dtype=float)) @ normal > 0


def cylinder_mask(shape: tuple[int, int, int], ijk_to_lps: ArrayLike, start_lps: ArrayLike, end_lps: ArrayLike,
                  radius_mm: float) -> NDArray[np.bool_]:
    """(K, J, I) voxels inside the finite cylinder from ``start_lps`` to ``end_lps`` of ``radius_mm``."""
    start, end = np.asarray(start_lps, dtype=float), np.asarray(end_lps, dtype=float)
    axis = end - start
    length = np.linalg.norm(axis)
    if length < 1e-9 or not radius_mm > 0:
        raise ValueError("cylinder needs distinct end points and radius_mm > 0")
    axis /= length
    rel = _grid_lps(np.asarray(ijk_to_lps, dtype=float), shape) - start
    along = rel @ axis
    radial = np.linalg.norm(rel - along[..., None] * axis, axis=-1)
    return (along >= 0) & (along <= length) & (radial <= radius_mm)
