"""Edits of one segment of a label map: what ``twin edit`` and the app's segment editor call.

Every function takes the label map first, the segment's name second and options keyword-only, and
returns a new :class:`LabelMap` (the input is never modified). Geometry (points, planes, brush
centres) is in patient LPS millimetres, sizes in mm and volumes in ml. A segment holds one label
per voxel; operations that add voxels take them from other segments ("last write wins") unless
``overwrite=False``, when only unlabelled voxels are taken. Bad parameters and unknown segments
raise :class:`InputError` with a one-line reason.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from segmentation import editing, islands, morphology, region_growing, slice_interpolation
from segmentation import labels as label_ops
from segmentation.threshold import threshold
from workstation.errors import InputError
from workstation.geometry import apply_affine, geometry_from_affine, nearest_axes
from workstation.model.labelmap import LabelMap
from workstation.model.volume import Volume

# the anatomical planes and the LPS axis across each (its normal)
PLANES: dict[str, int] = {"axial": 2, "coronal": 1, "sagittal": 0}
Morphology = Literal["grow", "shrink", "open", "close", "smooth"]
Combination = Literal["union", "intersect", "subtract"]
MORPHOLOGY: tuple[Morphology, ...] = ("grow", "shrink", "open", "close", "smooth")
COMBINATIONS: tuple[Combination, ...] = ("union", "intersect", "subtract")


def _mask(label_map: LabelMap, name: str) -> NDArray[np.bool_]:
    try:
        return label_map.mask(name)
    except KeyError:
        raise InputError(f"segment {name!r}: not in the label map; segments: "
                         f"{[s.name for s in label_map.segments]}") from None


def _nonempty(label_map: LabelMap, name: str) -> NDArray[np.bool_]:
    mask = _mask(label_map, name)
    if not mask.any():
        raise InputError(f"segment {name!r}: empty, nothing to edit")
    return mask


def _positive(value: float, option: str) -> float:
    value = float(value)
    if not (np.isfinite(value) and value > 0):
        raise InputError(f"{option}: must be a finite number > 0, got {value:g}")
    return value


def _points_kji(label_map: LabelMap, points_lps: ArrayLike, option: str) -> NDArray[np.int64]:
    """(N, 3) ``[k, j, i]`` voxels under LPS points, refused when one lies outside the grid."""
    points = np.atleast_2d(np.asarray(points_lps, dtype=float))
    if points.size == 0 or points.shape[1] != 3 or not np.isfinite(points).all():
        raise InputError(f"{option}: give one or more finite X,Y,Z points (LPS mm)")
    ijk = np.rint(apply_affine(np.linalg.inv(np.asarray(label_map.ijk_to_lps, dtype=float)), points)).astype(int)
    size = np.array(label_map.array.shape[::-1])
    for point, voxel in zip(points, ijk, strict=True):
        if np.any(voxel < 0) or np.any(voxel >= size):
            raise InputError(f"{option} {tuple(round(float(c), 2) for c in point)}: outside the volume (LPS mm)")
    return ijk[:, ::-1]


def _checked_color(color_rgb: tuple[float, ...]) -> tuple[float, float, float]:
    color = tuple(float(c) for c in color_rgb)
    if len(color) != 3 or not all(np.isfinite(c) and 0.0 <= c <= 1.0 for c in color):
        raise InputError(f"colour {tuple(color_rgb)}: give three values R,G,B between 0 and 1")
    return color  # type: ignore[return-value]


def _set(label_map: LabelMap, name: str, mask: NDArray[np.bool_], *, overwrite: bool = True) -> LabelMap:
    return label_ops.set_segment(label_map, mask, name=name, overwrite=overwrite)


def _in_box(label_map: LabelMap, mask: NDArray[np.bool_],
            region: Callable[[tuple[int, int, int], NDArray[np.float64]], NDArray[np.bool_]]) -> NDArray[np.bool_]:
    """``region(shape, ijk_to_lps)`` evaluated only on the bounding box of ``mask`` (full-grid result).

    Cuts only change the segment's voxels, so a plane or cylinder is never evaluated on the whole grid.
    """
    out = np.zeros(mask.shape, dtype=bool)
    box = morphology.bounding_box(mask)
    if box is None:
        return out
    shift = np.eye(4)
    shift[:3, 3] = [box[2].start, box[1].start, box[0].start]
    shape = tuple(s.stop - s.start for s in box)
    out[box] = region(shape, np.asarray(label_map.ijk_to_lps, dtype=float) @ shift)  # type: ignore[arg-type]
    return out


# -- segments ---------------------------------------------------------------------------------

def add_segment(label_map: LabelMap, name: str, *, color_rgb: tuple[float, float, float] | None = None) -> LabelMap:
    """A new empty segment ``name`` with the next free value and a conventional colour."""
    if not name or not name.strip():
        raise InputError("segment name: must not be empty")
    if any(s.name == name for s in label_map.segments):
        raise InputError(f"segment name {name!r}: already used")
    value = label_ops.next_value(label_map)
    color = _checked_color(color_rgb) if color_rgb is not None else label_ops.color_for(name, value - 1)
    return label_ops.set_segment(label_map, np.zeros(label_map.array.shape, dtype=bool), name=name, color_rgb=color)


def remove_segment(label_map: LabelMap, name: str) -> LabelMap:
    """Without segment ``name`` (its voxels become 0)."""
    _mask(label_map, name)
    return label_ops.remove_segment(label_map, name)


def rename_segment(label_map: LabelMap, name: str, *, new_name: str) -> LabelMap:
    """Segment ``name`` called ``new_name`` (same value, colour and voxels)."""
    _mask(label_map, name)
    if not new_name or not new_name.strip():
        raise InputError("new name: must not be empty")
    if new_name != name and any(s.name == new_name for s in label_map.segments):
        raise InputError(f"new name {new_name!r}: already used")
    return replace(label_map, segments=tuple(replace(s, name=new_name) if s.name == name else s
                                             for s in label_map.segments))


def recolor_segment(label_map: LabelMap, name: str, *, color_rgb: tuple[float, float, float]) -> LabelMap:
    """Segment ``name`` with the colour ``color_rgb`` (three values in 0..1)."""
    _mask(label_map, name)
    color = _checked_color(color_rgb)
    return replace(label_map, segments=tuple(replace(s, color_rgb=color) if s.name == name else s
                                             for s in label_map.segments))


# -- voxels from the image --------------------------------------------------------------------

def threshold_segment(label_map: LabelMap, volume: Volume, name: str, *, lower: float, upper: float,
                      overwrite: bool = True) -> LabelMap:
    """Segment ``name`` (created when new) becomes the voxels with ``lower <= value <= upper``."""
    try:
        mask = threshold(volume, lower=float(lower), upper=float(upper))
    except ValueError as exc:
        raise InputError(f"threshold: {exc}") from None
    return _set(label_map, name, mask, overwrite=overwrite)


def region_grow_segment(label_map: LabelMap, volume: Volume, name: str, *, points_lps: ArrayLike,
                        lower: float | None = None, upper: float | None = None, multiplier: float = 2.5,
                        iterations: int = 3, overwrite: bool = True) -> LabelMap:
    """Segment ``name`` (created when new) becomes the region grown from ``points_lps``.

    With ``lower`` and ``upper``: the voxels in that range connected to the points (connected
    threshold). Without: confidence-connected growing (the range is the mean +- ``multiplier``
    standard deviations of the region, re-estimated ``iterations`` times).
    """
    _points_kji(label_map, points_lps, "--point")
    if (lower is None) != (upper is None):
        raise InputError("region growing: give both --lower and --upper, or neither (confidence connected)")
    if lower is not None and upper is not None:
        if not float(lower) <= float(upper):
            raise InputError(f"--lower {lower:g} / --upper {upper:g}: lower must not exceed upper")
        mask = region_growing.connected_threshold(volume, points_lps, lower=float(lower), upper=float(upper))
    else:
        _positive(multiplier, "--multiplier")
        if int(iterations) < 0:
            raise InputError(f"--iterations: must be >= 0, got {iterations}")
        mask = region_growing.confidence_connected(volume, points_lps, multiplier=float(multiplier),
                                                   iterations=int(iterations))
    return _set(label_map, name, mask, overwrite=overwrite)


# -- islands ----------------------------------------------------------------------------------

def keep_largest(label_map: LabelMap, name: str, *, n: int = 1) -> LabelMap:
    """Segment ``name`` keeps only its ``n`` largest connected pieces (26-connected)."""
    if int(n) < 1:
        raise InputError(f"--count: must be >= 1, got {n}")
    return _set(label_map, name, islands.keep_largest(_nonempty(label_map, name), n=int(n)))


def keep_at_points(label_map: LabelMap, name: str, *, points_lps: ArrayLike) -> LabelMap:
    """Segment ``name`` keeps only the pieces under ``points_lps``; refused when a point is off the segment."""
    mask = _nonempty(label_map, name)
    try:
        kept = islands.keep_at_points(mask, _points_kji(label_map, points_lps, "--point"))
    except ValueError:
        raise InputError(f"--point: no piece of segment {name!r} lies under it") from None
    return _set(label_map, name, kept)


def remove_small(label_map: LabelMap, name: str, *, min_ml: float) -> LabelMap:
    """Segment ``name`` without its pieces smaller than ``min_ml`` millilitres."""
    mask = _nonempty(label_map, name)
    return _set(label_map, name, islands.remove_small(mask, min_ml=_positive(min_ml, "--min-ml"),
                                                      spacing_mm=label_map.spacing_mm))


# -- shape ------------------------------------------------------------------------------------

def morph(label_map: LabelMap, name: str, *, operation: Morphology, mm: float, overwrite: bool = True) -> LabelMap:
    """Grow, shrink, open, close or smooth (close then open) segment ``name`` by a margin in mm.

    Margins are Euclidean balls in mm on the grid's own spacing (anisotropic voxels respected).
    """
    if operation not in MORPHOLOGY:
        raise InputError(f"operation {operation!r}: one of {', '.join(MORPHOLOGY)}")
    mask = _nonempty(label_map, name)
    mm = _positive(mm, "--mm")
    spacing = label_map.spacing_mm
    if operation == "grow":
        out = morphology.grow(mask, mm, spacing_mm=spacing)
    elif operation == "shrink":
        out = morphology.shrink(mask, mm, spacing_mm=spacing)
    elif operation == "open":
        out = morphology.open_mask(mask, mm, spacing_mm=spacing)
    elif operation == "close":
        out = morphology.close_mask(mask, mm, spacing_mm=spacing)
    else:  # fills small gaps and notches, removes thin spurs, as 3D Slicer's morphological smoothing
        out = morphology.open_mask(morphology.close_mask(mask, mm, spacing_mm=spacing), mm, spacing_mm=spacing)
    return _set(label_map, name, out, overwrite=overwrite)


def fill_holes(label_map: LabelMap, name: str, *, per_slice: bool = False, overwrite: bool = True) -> LabelMap:
    """Segment ``name`` with its enclosed holes filled (in 3-D, or in each axial slice)."""
    return _set(label_map, name, morphology.fill_holes(_nonempty(label_map, name), per_slice=per_slice),
                overwrite=overwrite)


def hollow(label_map: LabelMap, name: str, *, thickness_mm: float, inside: bool = True,
           overwrite: bool = True) -> LabelMap:
    """Segment ``name`` becomes a shell of ``thickness_mm``: inside its old surface, or outside it."""
    mask = _nonempty(label_map, name)
    shell = morphology.hollow(mask, _positive(thickness_mm, "--thickness-mm"), spacing_mm=label_map.spacing_mm,
                              inside=inside)
    return _set(label_map, name, shell, overwrite=overwrite)


# -- manual edits -----------------------------------------------------------------------------

def _plane(plane: str) -> int:
    if plane not in PLANES:
        raise InputError(f"--plane {plane!r}: one of {', '.join(PLANES)}")
    return PLANES[plane]


def slice_axis(label_map: LabelMap, plane: str) -> int:
    """The array axis (0 = k, 1 = j, 2 = i) across which a ``plane`` view shows the volume's slices:
    the one nearest the plane's normal, in the assignment of :func:`workstation.geometry.nearest_axes`
    (the app's views use the same rule, so an edit fills the slice a view shows)."""
    return 2 - nearest_axes(_unit_axes(label_map))[_plane(plane)][0]


def _axis_nearest(label_map: LabelMap, direction_lps: NDArray[np.float64]) -> int:
    """The array axis (0 = k, 1 = j, 2 = i) whose voxel direction is nearest ``direction_lps``."""
    return 2 - int(np.argmax(np.abs(direction_lps @ _unit_axes(label_map))))


def _unit_axes(label_map: LabelMap) -> NDArray[np.float64]:
    """(3, 3) unit LPS directions of the grid's i, j, k axes, as columns."""
    return geometry_from_affine(label_map.ijk_to_lps)[2]


def _direction(direction_lps: ArrayLike, option: str) -> NDArray[np.float64]:
    """A unit LPS direction, refused (one line) when it is not three finite numbers or is zero."""
    direction = np.asarray(direction_lps, dtype=float)
    if direction.shape != (3,) or not np.isfinite(direction).all() or np.linalg.norm(direction) < 1e-9:
        shown = ",".join(f"{float(c):g}" for c in np.ravel(direction_lps))
        raise InputError(f"{option} {shown}: give a non-zero X,Y,Z direction (LPS)")
    return direction / np.linalg.norm(direction)


def paint(label_map: LabelMap, name: str, *, center_lps: ArrayLike, radius_mm: float, erase: bool = False,
          plane: str | None = None, overwrite: bool = True) -> LabelMap:
    """One brush dab of ``radius_mm`` at ``center_lps``: adds to (or erases from) segment ``name``.

    The brush is a ball, or with ``plane`` (``"axial"``, ``"coronal"``, ``"sagittal"``) its disc in
    the voxel slice through the centre across the grid axis nearest that plane's normal (a 2-D
    brush, one voxel thick, for :func:`fill_between_slices`).
    """
    mask = _mask(label_map, name)
    center = _points_kji(label_map, center_lps, "--point")[0]
    ball = editing.sphere_mask(label_map.array.shape, label_map.ijk_to_lps, np.asarray(center_lps, dtype=float),
                               _positive(radius_mm, "--radius-mm"))
    if plane is not None:
        axis = slice_axis(label_map, plane)
        ball = editing.in_slice(ball, axis=axis, index=int(center[axis]))
    return _set(label_map, name, mask & ~ball if erase else mask | ball, overwrite=overwrite)


def draw(label_map: LabelMap, name: str, *, points_lps: ArrayLike, plane: str, erase: bool = False,
         overwrite: bool = True) -> LabelMap:
    """A closed outline drawn in one slice, filled: added to (or erased from) segment ``name``.

    ``points_lps`` (N >= 3, LPS mm) are the outline's corners in order, drawn in a ``plane`` view
    (``"axial"``, ``"coronal"``, ``"sagittal"``). They are projected along the grid axis nearest
    that plane's normal onto the voxel slice through their centroid, and the voxels of that slice
    whose centres lie inside the polygon are taken (:func:`segmentation.editing.outline_in_slice`).
    With :func:`fill_between_slices`, outlines every few slices make a solid segment.
    """
    mask = _mask(label_map, name)
    outline = _outline(label_map, points_lps, slice_axis(label_map, plane), editing.outline_in_slice)
    return _set(label_map, name, mask & ~outline if erase else mask | outline, overwrite=overwrite)


def scissors(label_map: LabelMap, name: str, *, points_lps: ArrayLike, plane: str,
             keep_inside: bool = False, normal_lps: ArrayLike | None = None) -> LabelMap:
    """Cut segment ``name`` with a closed outline drawn in a ``plane`` view, through every slice.

    The voxels whose centres, moved along the plane's normal (the patient axis the view looks
    along), pass through the outline (:func:`segmentation.editing.outline_prism`) are erased, or
    with ``keep_inside`` all the others: for example the arms, or the table, out of a bone
    threshold in one stroke. On an oblique grid the cut follows the view's normal, not the grid.
    ``normal_lps`` gives that normal when the view is not a patient plane (an oblique volume
    shown in its own slices); ``plane`` still names the view.
    """
    mask = _nonempty(label_map, name)
    normal = np.eye(3)[_plane(plane)]
    if normal_lps is not None:
        normal = _direction(normal_lps, "--normal")
    sweep = functools.partial(editing.outline_prism, normal_lps=normal)
    prism = _outline(label_map, points_lps, _axis_nearest(label_map, normal), sweep)
    return _set(label_map, name, mask & prism if keep_inside else mask & ~prism)


def _outline(label_map: LabelMap, points_lps: ArrayLike, axis: int,
             region: Callable[..., NDArray[np.bool_]]) -> NDArray[np.bool_]:
    """``region(shape, ijk_to_lps, points, axis=axis)`` of an outline's corners, checked (one-line errors).

    An outline may run outside the volume (a scissors loop around an arm at the image's edge): it is
    clipped; one that encloses no voxel centre of the volume is refused.
    """
    points = np.asarray(points_lps, dtype=float)
    if points.ndim != 2 or points.shape[0] < 3 or points.shape[1] != 3 or not np.isfinite(points).all():
        raise InputError("--point: an outline needs at least 3 finite X,Y,Z points (LPS mm)")
    inside = region(label_map.array.shape, label_map.ijk_to_lps, points, axis=axis)
    if not inside.any():
        raise InputError("--point: the outline encloses no voxel centre of the volume (too small, outside it, or "
                         "its points lie on a line)")
    return inside


def level_trace(label_map: LabelMap, volume: Volume, name: str, *, point_lps: ArrayLike, plane: str,
                darker: bool = False, erase: bool = False, overwrite: bool = True) -> LabelMap:
    """The region of one slice enclosed by the iso-contour through ``point_lps``: added to (or erased
    from) segment ``name``.

    The slice is the voxel slice through the point across the grid axis nearest ``plane``'s normal;
    the region holds the pixels at least as bright as the point's voxel (``darker``: at most as
    bright) connected to it, holes filled (:func:`segmentation.editing.level_trace`). Point at the
    edge of a structure in a slice view; with :func:`fill_between_slices` every few slices.
    """
    mask = _mask(label_map, name)
    seed = _points_kji(label_map, point_lps, "--point")[0]
    if not np.isfinite(volume.array[tuple(seed)]):
        raise InputError(f"--point {tuple(round(float(c), 2) for c in np.ravel(point_lps))}: the volume has no finite "
                         "value there")
    traced = editing.level_trace(volume.array, tuple(seed), axis=slice_axis(label_map, plane), darker=darker)
    return _set(label_map, name, mask & ~traced if erase else mask | traced, overwrite=overwrite)


def fill_between_slices(label_map: LabelMap, name: str, *, plane: str = "auto",
                        overwrite: bool = True) -> LabelMap:
    """Segment ``name`` outlined on every few slices becomes solid: the empty slices between outlined
    ones are filled by shape-based interpolation (:mod:`segmentation.slice_interpolation`).

    ``plane`` is the plane the outlines were drawn in; ``"auto"`` takes the one with the most empty
    slices between outlined ones.
    """
    mask = _nonempty(label_map, name)
    planes = list(PLANES) if plane == "auto" else [plane]
    gaps = {}
    for candidate in planes:
        axis = slice_axis(label_map, candidate)
        outlined = slice_interpolation.outlined_slices(mask, axis=axis)
        gaps[candidate] = (int(outlined[-1] - outlined[0] + 1 - outlined.size), axis)
    chosen = max(planes, key=lambda p: gaps[p][0])
    empty, axis = gaps[chosen]
    if empty == 0:
        where = f"{plane} slices" if plane != "auto" else "axial, coronal or sagittal slices"
        raise InputError(f"segment {name!r}: no empty slices between outlined {where}; outline it on every few "
                         "slices with a 2-D brush first")
    filled = slice_interpolation.fill_between_slices(mask, axis=axis, spacing_mm=label_map.spacing_mm)
    return _set(label_map, name, filled, overwrite=overwrite)


def cut_plane(label_map: LabelMap, name: str, *, origin_lps: ArrayLike, normal_lps: ArrayLike) -> LabelMap:
    """Segment ``name`` without the voxels on the side of the plane its normal points to."""
    mask = _nonempty(label_map, name)
    normal = _direction(normal_lps, "--normal")
    side = _in_box(label_map, mask, lambda shape, affine: editing.plane_side(shape, affine, origin_lps, normal))
    return _set(label_map, name, mask & ~side)


def cut_cylinder(label_map: LabelMap, name: str, *, start_lps: ArrayLike, end_lps: ArrayLike,
                 radius_mm: float) -> LabelMap:
    """Segment ``name`` without the voxels inside the cylinder from ``start_lps`` to ``end_lps`` (a drill path)."""
    mask = _nonempty(label_map, name)
    radius = _positive(radius_mm, "--radius-mm")
    start, end = np.asarray(start_lps, dtype=float), np.asarray(end_lps, dtype=float)
    if np.linalg.norm(end - start) < 1e-9:
        raise InputError("--start / --end: the cylinder's end points must differ")
    inside = _in_box(label_map, mask, lambda shape, affine: editing.cylinder_mask(shape, affine, start, end, radius))
    return _set(label_map, name, mask & ~inside)


def combine(label_map: LabelMap, name: str, *, operation: Combination, others: list[str], margin_mm: float = 0.0,
            overwrite: bool = True) -> LabelMap:
    """Segment ``name`` combined with the region of ``others`` grown by ``margin_mm``.

    ``union`` adds that region to the segment (the others lose those voxels: one label per voxel),
    ``intersect`` keeps only the part of the segment inside it (for example the liver within
    10 mm of a tumour), ``subtract`` removes it (the liver minus 5 mm around the vena cava). As
    two segments never share a voxel, ``intersect`` and ``subtract`` need a margin to do anything.
    """
    if operation not in COMBINATIONS:
        raise InputError(f"operation {operation!r}: one of {', '.join(COMBINATIONS)}")
    if not others:
        raise InputError(f"{operation}: name at least one other segment (--with)")
    if name in others:
        raise InputError(f"--with {name}: a segment cannot be combined with itself")
    margin = float(margin_mm)
    if not (np.isfinite(margin) and margin >= 0):
        raise InputError(f"--margin-mm: must be a finite number >= 0, got {margin:g}")
    mask = _mask(label_map, name)
    region = label_ops.union(*(_mask(label_map, other) for other in others))
    if margin > 0:
        region = morphology.grow(region, margin, spacing_mm=label_map.spacing_mm)
    if operation == "union":
        out = mask | region
    elif operation == "intersect":
        out = mask & region
    else:
        out = mask & ~region
    return _set(label_map, name, out, overwrite=overwrite)


def smooth_all(label_map: LabelMap, *, radius_mm: float) -> LabelMap:
    """Every segment smoothed together (each voxel takes the majority label of a ball of ``radius_mm``)."""
    return label_ops.smooth_labels(label_map, radius_mm=_positive(radius_mm, "--radius-mm"))
