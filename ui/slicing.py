"""Patient-aligned slices of a volume for the MPR views (no Qt): pixels and their LPS placement.

Radiological convention, as in :mod:`workstation.preview`: screen columns run along +x (the
patient's right on the screen's left), axial rows along +y (anterior up), coronal and sagittal
rows along -z (superior up); sagittal columns run along +y (anterior on the left).

Volumes whose axes are parallel to the patient axes (almost every CT and MR) are cut by plain
array indexing, so no voxel is interpolated and a slice costs microseconds; oblique volumes are
resampled on an isotropic grid with linear (image) or nearest (labels) interpolation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from workstation.geometry import direction_letters, nearest_axes
from workstation.model.volume import Volume

PLANES = ("axial", "coronal", "sagittal")

# Screen column direction, screen row direction (LPS unit vectors) and the plane's normal axis.
_SCREEN = {
    "axial": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), 2),
    "coronal": ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0), 1),
    "sagittal": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0), 0),
}
_LETTERS = {"axial": ("R", "L", "A", "P"), "coronal": ("R", "L", "S", "I"), "sagittal": ("A", "P", "S", "I")}


def letters(plane: str) -> tuple[str, str, str, str]:
    """Orientation letters at the (left, right, top, bottom) edges of ``plane``'s view."""
    return _LETTERS[plane]


@dataclass(frozen=True)
class Slice:
    """One plane's pixels and where they sit in the patient.

    Attributes
    ----------
    plane : ``"axial"``, ``"coronal"`` or ``"sagittal"``.
    pixels : (rows, cols) values (HU for CT; label values for a label map).
    origin_lps : (3,) LPS mm of the centre of pixel (row 0, col 0).
    col_step_lps, row_step_lps : (3,) LPS mm from one pixel to the next along a row / a column.
    index : the voxel index of the slice along the volume axis normal to it (-1 when resampled).
    """

    plane: str
    pixels: NDArray
    origin_lps: NDArray[np.float64]
    col_step_lps: NDArray[np.float64]
    row_step_lps: NDArray[np.float64]
    index: int = -1

    @property
    def pixel_mm(self) -> tuple[float, float]:
        """(width, height) of one pixel in mm."""
        return float(np.linalg.norm(self.col_step_lps)), float(np.linalg.norm(self.row_step_lps))

    def lps_at(self, col: float, row: float) -> NDArray[np.float64]:
        """LPS mm of continuous pixel coordinates (pixel centres at integers)."""
        return self.origin_lps + col * self.col_step_lps + row * self.row_step_lps

    def edge_letters(self) -> tuple[str, str, str, str]:
        """Orientation letters at the (left, right, top, bottom) edges of the view of this slice.

        Each names the patient directions the screen points to there, strongest first, as DICOM
        viewers label oblique images: ``"L"`` for a plane parallel to the patient axes, ``"PS"``
        for a direction between posterior and superior (components below 0.25 are left out).
        """
        col, row = self.col_step_lps, self.row_step_lps
        return direction_letters(-col), direction_letters(col), direction_letters(-row), direction_letters(row)

    def pixel_of(self, point_lps: ArrayLike) -> tuple[float, float]:
        """(col, row) of the projection of an LPS point on this plane."""
        rel = np.asarray(point_lps, dtype=float) - self.origin_lps
        return (float(rel @ self.col_step_lps / (self.col_step_lps @ self.col_step_lps)),
                float(rel @ self.row_step_lps / (self.row_step_lps @ self.row_step_lps)))


def _axis_map(volume: Volume, *, follow_volume: bool = False) -> list[tuple[int, float]] | None:
    """For LPS axes x, y, z: (ijk axis parallel to it, sign); ``None`` for oblique volumes.

    With ``follow_volume`` an oblique volume maps each patient axis to the volume axis nearest it
    (the assignment with the largest total alignment), so its views show its own voxel slices;
    a sheared grid is still resampled.
    """
    direction = volume.direction
    out = []
    for lps_axis in range(3):
        row = direction[lps_axis]
        axis = int(np.argmax(np.abs(row)))
        if abs(abs(row[axis]) - 1.0) > 1e-4:
            return _followed_axes(direction) if follow_volume else None
        out.append((axis, float(np.sign(row[axis]))))
    if len({a for a, _ in out}) != 3:
        return _followed_axes(direction) if follow_volume else None
    return out


def _followed_axes(direction: NDArray[np.float64]) -> list[tuple[int, float]] | None:
    """The volume axes the views follow (:func:`workstation.geometry.nearest_axes`), or ``None`` for a
    sheared grid, whose slices cannot be drawn as rectangles: it is resampled."""
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-4):
        return None
    return nearest_axes(direction)


def is_oblique(volume: Volume) -> bool:
    """Whether the volume's axes are not parallel to the patient axes (its views are resampled
    unless they follow the volume)."""
    return _axis_map(volume) is None


def slice_index(volume: Volume, plane: str, point_lps: ArrayLike, *, follow_volume: bool = False) -> int:
    """Index along the volume axis normal to ``plane`` of the slice nearest ``point_lps`` (clipped);
    -1 when the view is resampled (an oblique volume, not ``follow_volume``)."""
    axes = _axis_map(volume, follow_volume=follow_volume)
    if axes is None:
        return -1
    ijk_axis = axes[_SCREEN[plane][2]][0]
    ijk = volume.lps_to_ijk_points(np.asarray(point_lps, dtype=float))
    return int(np.clip(np.rint(ijk[ijk_axis]), 0, volume.size_ijk[ijk_axis] - 1))


def n_slices(volume: Volume, plane: str, *, follow_volume: bool = False) -> int:
    """Number of distinct slices along ``plane``'s normal (voxels, or 1 mm steps when resampled)."""
    axes = _axis_map(volume, follow_volume=follow_volume)
    if axes is None:
        normal = _SCREEN[plane][2]
        corners = volume.corners_lps()
        return int(corners[:, normal].max() - corners[:, normal].min()) + 1
    return volume.size_ijk[axes[_SCREEN[plane][2]][0]]


def normal_step_mm(volume: Volume, plane: str, *, follow_volume: bool = False) -> float:
    """Distance (mm) between neighbouring slices along ``plane``'s normal."""
    axes = _axis_map(volume, follow_volume=follow_volume)
    if axes is None:
        return float(min(volume.spacing_mm))
    return float(volume.spacing_mm[axes[_SCREEN[plane][2]][0]])


def step(volume: Volume, plane: str, point_lps: ArrayLike, steps: int, *,
         follow_volume: bool = False) -> NDArray[np.float64]:
    """``point_lps`` moved ``steps`` slices along ``plane``'s normal (+: towards +x, +y or +z).

    Views of voxel slices land on slice centres (so a crosshair between two slices still moves
    one slice per step); resampled views move by the smallest spacing.
    """
    point = np.array(point_lps, dtype=float)
    normal = _SCREEN[plane][2]
    axes = _axis_map(volume, follow_volume=follow_volume)
    if axes is None:
        point[normal] += steps * float(min(volume.spacing_mm))
        return point
    ijk_axis, sign = axes[normal]
    current = volume.lps_to_ijk_points(point)
    index = int(np.clip(np.rint(current[ijk_axis]) + steps * sign, 0, volume.size_ijk[ijk_axis] - 1))
    current[ijk_axis] = index
    moved = volume.ijk_to_lps_points(current)
    if _axis_map(volume) is None:
        return moved  # along the volume's own axis (an oblique volume shown in its slices)
    point[normal] = moved[normal]
    return point


def cut(volume: Volume, plane: str, point_lps: ArrayLike, *, array: NDArray | None = None,
        labels: bool = False, follow_volume: bool = False) -> Slice:
    """The ``plane`` slice of ``volume`` (or of ``array`` on its grid) through ``point_lps``.

    An oblique volume is resampled in the patient's plane (``labels`` selects nearest-neighbour
    interpolation, so values are never mixed) or, with ``follow_volume``, shown in its own voxel
    slice nearest that plane (3D Slicer's "rotate to volume plane"; ITK-SNAP always does this), so
    that what a 2-D edit fills is exactly what the view shows.
    """
    data = volume.array if array is None else array
    col_dir, row_dir, normal_axis = (np.asarray(v, dtype=float) if isinstance(v, tuple) else v
                                     for v in _SCREEN[plane])
    point = np.asarray(point_lps, dtype=float)
    axes = _axis_map(volume, follow_volume=follow_volume)
    if axes is not None:
        return _cut_aligned(volume, data, plane, point, axes, col_dir, row_dir, normal_axis)
    return _cut_oblique(volume, data, plane, point, col_dir, row_dir, normal_axis, labels)


def _cut_aligned(volume: Volume, data: NDArray, plane: str, point: NDArray[np.float64],
                 axes: list[tuple[int, float]], col_dir: NDArray[np.float64], row_dir: NDArray[np.float64],
                 normal_axis: int) -> Slice:
    col_lps, row_lps = int(np.argmax(np.abs(col_dir))), int(np.argmax(np.abs(row_dir)))
    col_axis, col_sign = axes[col_lps]
    row_axis, row_sign = axes[row_lps]
    col_sign *= np.sign(col_dir[col_lps])
    row_sign *= np.sign(row_dir[row_lps])
    normal_ijk = axes[normal_axis][0]
    ijk = volume.lps_to_ijk_points(point)
    index = int(np.clip(np.rint(ijk[normal_ijk]), 0, volume.size_ijk[normal_ijk] - 1))
    # data is [k, j, i]: array axis of ijk axis a is 2 - a.
    taken = np.take(data, index, axis=2 - normal_ijk)
    remaining = [a for a in (2, 1, 0) if a != normal_ijk]  # ijk axes in the order of taken's axes
    pixels = taken if remaining.index(row_axis) == 0 else taken.T
    if row_sign < 0:
        pixels = pixels[::-1]
    if col_sign < 0:
        pixels = pixels[:, ::-1]
    n_col, n_row = volume.size_ijk[col_axis], volume.size_ijk[row_axis]
    origin_ijk = np.zeros(3)
    origin_ijk[normal_ijk] = index
    origin_ijk[col_axis] = 0 if col_sign > 0 else n_col - 1
    origin_ijk[row_axis] = 0 if row_sign > 0 else n_row - 1
    linear = volume.ijk_to_lps[:3, :3]
    return Slice(plane=plane, pixels=pixels, origin_lps=volume.ijk_to_lps_points(origin_ijk),
                 col_step_lps=linear[:, col_axis] * col_sign, row_step_lps=linear[:, row_axis] * row_sign,
                 index=index)


def _cut_oblique(volume: Volume, data: NDArray, plane: str, point: NDArray[np.float64], col_dir: NDArray[np.float64],
                 row_dir: NDArray[np.float64], normal_axis: int, labels: bool) -> Slice:
    from scipy.ndimage import map_coordinates

    pixel_mm = float(min(volume.spacing_mm))
    corners = volume.corners_lps()
    low, high = corners.min(axis=0), corners.max(axis=0)
    col_lps, row_lps = int(np.argmax(np.abs(col_dir))), int(np.argmax(np.abs(row_dir)))
    n_cols = int((high[col_lps] - low[col_lps]) / pixel_mm) + 1
    n_rows = int((high[row_lps] - low[row_lps]) / pixel_mm) + 1
    origin = np.where(col_dir + row_dir < 0, high, low).astype(float)
    origin[normal_axis] = point[normal_axis]
    cols, rows = np.meshgrid(np.arange(n_cols), np.arange(n_rows))
    points = origin + cols[..., None] * col_dir * pixel_mm + rows[..., None] * row_dir * pixel_mm
    ijk = volume.lps_to_ijk_points(points.reshape(-1, 3))
    inside = np.all((ijk >= -0.5) & (ijk <= np.array(volume.size_ijk) - 0.5), axis=1)
    values = map_coordinates(data if labels else data.astype(np.float32, copy=False), ijk[:, ::-1].T,
                             order=0 if labels else 1, mode="nearest")
    fill = 0 if labels else float(data.min())
    pixels = np.where(inside, values, fill).reshape(n_rows, n_cols).astype(data.dtype if labels else np.float32)
    return Slice(plane=plane, pixels=pixels, origin_lps=origin, col_step_lps=col_dir * pixel_mm,
                 row_step_lps=row_dir * pixel_mm)


def window_to_gray(pixels: NDArray, level: float, width: float) -> NDArray[np.uint8]:
    """8-bit grey of ``pixels`` for a window ``level`` / ``width`` (same units as the pixels)."""
    width = max(float(width), 1e-6)
    low = level - width / 2
    scaled = (pixels.astype(np.float32) - low) * (255.0 / width)
    return np.clip(scaled, 0, 255).astype(np.uint8)


def overlay_rgba(labels: NDArray, colors: dict[int, tuple[float, float, float]], opacity: dict[int, float]
                 ) -> NDArray[np.uint8]:
    """(rows, cols, 4) RGBA of the label values in ``colors`` (others transparent)."""
    lut_size = int(max(max(colors, default=0), int(labels.max(initial=0)))) + 1
    lut = np.zeros((lut_size, 4), dtype=np.uint8)
    for value, rgb in colors.items():
        lut[value, :3] = np.clip(np.asarray(rgb) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        lut[value, 3] = int(round(255 * float(np.clip(opacity.get(value, 0.5), 0.0, 1.0))))
    return lut[labels]
