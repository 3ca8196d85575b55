"""Multi-planar reformats (MPR): axial, coronal, sagittal and oblique-along-a-trajectory slices in LPS.

A slice is a plane of sample points in LPS mm. :class:`MprSlice` keeps one pyvista grid and updates its
points and values in place when the plane moves, so a renderer reuses the same actor (no rebuild per move).
When the plane is aligned with the voxel grid, values come straight from two neighbouring voxel slices
(linear interpolation between them) instead of a general 3-D resampling.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from workstation.errors import InputError
from workstation.model.plan import Trajectory
from workstation.model.volume import Volume

# Screen-right (u) and screen-up (v) axes in LPS. Normal u x v points towards the viewer; the radiological
# convention (patient's left on the screen's right for axial and coronal, anterior on the left for sagittal).
_STANDARD_AXES = {
    "axial": ((1.0, 0.0, 0.0), (0.0, -1.0, 0.0)),
    "coronal": ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    "sagittal": ((0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
}
MPR_PLANES = (*_STANDARD_AXES, "oblique")


@dataclass(frozen=True)
class SlicePlane:
    """A plane through ``center_lps`` spanned by unit ``u`` (screen right) and ``v`` (screen up), LPS."""

    name: str
    center_lps: tuple[float, float, float]
    u: tuple[float, float, float]
    v: tuple[float, float, float]

    @property
    def normal(self) -> NDArray[np.float64]:
        """(3,) unit normal ``u x v``: points from the plane towards the viewer."""
        n = np.cross(self.u, self.v)
        return n / np.linalg.norm(n)

    def moved(self, offset_mm: float) -> SlicePlane:
        """The same plane shifted by ``offset_mm`` along its normal."""
        return replace(self, center_lps=tuple(np.asarray(self.center_lps) + self.normal * offset_mm))


def standard_plane(volume: Volume, name: str, *, center_lps: ArrayLike | None = None) -> SlicePlane:
    """An axial, coronal or sagittal plane through ``center_lps`` (default: the volume centre)."""
    if name not in _STANDARD_AXES:
        raise InputError(f"--mpr {name!r}: expected axial, coronal, sagittal or oblique:<trajectory>")
    corners = volume.corners_lps()
    center = (corners.min(0) + corners.max(0)) / 2 if center_lps is None else np.asarray(center_lps, dtype=float)
    u, v = _STANDARD_AXES[name]
    return SlicePlane(name, tuple(float(x) for x in center), u, v)


def oblique_plane(trajectory: Trajectory) -> SlicePlane:
    """The plane that contains ``trajectory`` (entry on the left, target on the right), as upright as possible."""
    entry, target = np.asarray(trajectory.entry_lps), np.asarray(trajectory.target_lps)
    u = (target - entry) / np.linalg.norm(target - entry)
    ref = np.array([0.0, 0.0, 1.0]) if abs(u[2]) < 0.9 else np.array([0.0, -1.0, 0.0])
    v = ref - u * float(np.dot(ref, u))
    v /= np.linalg.norm(v)
    return SlicePlane(f"oblique:{trajectory.name}", tuple(float(x) for x in (entry + target) / 2),
                      tuple(float(x) for x in u), tuple(float(x) for x in v))


def _axis_of(direction: NDArray[np.float64], vector: NDArray[np.float64]) -> int | None:
    """The voxel axis (0=i, 1=j, 2=k) parallel to ``vector``, if any."""
    cos = direction.T @ vector
    hits = np.flatnonzero(np.abs(np.abs(cos) - 1.0) < 1e-6)
    return int(hits[0]) if len(hits) else None


class MprSlice:
    """A resampled slice of a volume as a pyvista ``StructuredGrid`` (point data ``"hu"``) updated in place.

    Parameters
    ----------
    volume : the volume to slice.
    plane : the initial plane; its extent covers the volume's projection on the plane.
    max_pixels : cap on samples along each plane axis.
    """

    def __init__(self, volume: Volume, plane: SlicePlane, *, max_pixels: int = 512) -> None:
        import pyvista as pv

        self.volume = volume
        self._array = volume.array
        self._lps_to_ijk = volume.lps_to_ijk
        self._size_ijk = np.array(volume.size_ijk)
        self.plane = plane
        u, v = np.asarray(plane.u), np.asarray(plane.v)
        direction, spacing = volume.direction, volume.spacing_mm
        corners = volume.corners_lps() - np.asarray(plane.center_lps)
        pu, pv_ = corners @ u, corners @ v
        steps = []
        for axis_vec in (u, v):
            a = _axis_of(direction, axis_vec)
            steps.append(float(spacing[a]) if a is not None else float(min(spacing)))
        extent_u, extent_v = pu.max() - pu.min(), pv_.max() - pv_.min()
        step_u = max(steps[0], extent_u / max(max_pixels - 1, 1))
        step_v = max(steps[1], extent_v / max(max_pixels - 1, 1))
        self._su = pu.min() + step_u * np.arange(int(round(extent_u / step_u)) + 1)
        self._sv = pv_.min() + step_v * np.arange(int(round(extent_v / step_v)) + 1)
        self.shape = (len(self._sv), len(self._su))  # rows (v), columns (u)
        points = self._plane_points(plane)
        self.grid = pv.StructuredGrid()
        self.grid.points = points.reshape(-1, 3)
        self.grid.dimensions = (len(self._su), len(self._sv), 1)
        self.grid.point_data["hu"] = self._sample(plane, points).ravel()
        self.grid.point_data.active_scalars_name = "hu"

    def _plane_points(self, plane: SlicePlane) -> NDArray[np.float64]:
        """(rows, cols, 3) LPS sample points of ``plane``."""
        c, u, v = np.asarray(plane.center_lps), np.asarray(plane.u), np.asarray(plane.v)
        return c + self._su[np.newaxis, :, np.newaxis] * u + self._sv[:, np.newaxis, np.newaxis] * v

    def _sample(self, plane: SlicePlane, points: NDArray[np.float64]) -> NDArray[np.float32]:
        fast = self._sample_aligned(plane)
        if fast is not None:
            return fast
        from scipy.ndimage import map_coordinates

        ijk = points.reshape(-1, 3) @ self._lps_to_ijk[:3, :3].T + self._lps_to_ijk[:3, 3]
        inside = np.all((ijk >= -0.5) & (ijk <= self._size_ijk - 0.5), axis=1)
        values = map_coordinates(self._array, ijk[:, ::-1].T, order=1, mode="nearest", output=np.float32)
        values[~inside] = np.nan
        return values.reshape(self.shape)

    def _sample_aligned(self, plane: SlicePlane) -> NDArray[np.float32] | None:
        """Values straight from voxel slices when the sample grid lies on voxel rows and columns."""
        m = self._lps_to_ijk[:3, :3]
        corner = self._plane_points_corner(plane)
        ijk0 = m @ corner + self._lps_to_ijk[:3, 3]
        du = m @ np.asarray(plane.u) * (self._su[1] - self._su[0] if len(self._su) > 1 else 0.0)
        dv = m @ np.asarray(plane.v) * (self._sv[1] - self._sv[0] if len(self._sv) > 1 else 0.0)
        au, av = np.argmax(np.abs(du)), np.argmax(np.abs(dv))
        if au == av or not (abs(abs(du[au]) - 1.0) < 1e-6 and abs(abs(dv[av]) - 1.0) < 1e-6):
            return None
        if np.count_nonzero(np.abs(du) > 1e-6) != 1 or np.count_nonzero(np.abs(dv) > 1e-6) != 1:
            return None
        if abs(ijk0[au] - round(ijk0[au])) > 1e-4 or abs(ijk0[av] - round(ijk0[av])) > 1e-4:
            return None
        an = 3 - au - av
        f = float(ijk0[an])
        out = np.full(self.shape, np.nan, dtype=np.float32)
        n_an = self._size_ijk[an]
        if not -0.5 <= f <= n_an - 0.5:
            return out
        f = min(max(f, 0.0), n_an - 1.0)
        k0 = int(np.floor(f))
        w = f - k0
        k1 = min(k0 + 1, n_an - 1)
        take = [slice(None)] * 3  # array order [k, j, i] = axes (2, 1, 0)
        take[2 - an] = k0
        slab = self._array[tuple(take)].astype(np.float32)
        if w > 1e-6:
            take[2 - an] = k1
            slab = slab * (1 - w) + self._array[tuple(take)].astype(np.float32) * w
        # The slab keeps the other two array dimensions in order; voxel axis a is array dimension 2 - a.
        slab_axes = [2 - d for d in sorted(2 - a for a in (0, 1, 2) if a != an)]
        slab = slab.transpose(slab_axes.index(av), slab_axes.index(au))  # (v, u)
        iu = int(round(ijk0[au])) + np.sign(du[au]).astype(int) * np.arange(len(self._su))
        iv = int(round(ijk0[av])) + np.sign(dv[av]).astype(int) * np.arange(len(self._sv))
        ok_u = (iu >= 0) & (iu < self._size_ijk[au])
        ok_v = (iv >= 0) & (iv < self._size_ijk[av])
        out[np.ix_(ok_v, ok_u)] = slab[np.ix_(iv[ok_v], iu[ok_u])]
        return out

    def _plane_points_corner(self, plane: SlicePlane) -> NDArray[np.float64]:
        return np.asarray(plane.center_lps) + self._su[0] * np.asarray(plane.u) + self._sv[0] * np.asarray(plane.v)

    @property
    def values(self) -> NDArray[np.float32]:
        """(rows, cols) current sampled values (rows run along ``v`` upwards from the plane's bottom)."""
        return np.asarray(self.grid.point_data["hu"]).reshape(self.shape)

    def set_plane(self, plane: SlicePlane) -> None:
        """Move the slice to ``plane`` (same axes and extent), updating points and values in place."""
        if not (np.allclose(plane.u, self.plane.u) and np.allclose(plane.v, self.plane.v)):
            raise ValueError("MprSlice.set_plane: the new plane must keep the slice's axes (use a new MprSlice)")
        shift = np.asarray(plane.center_lps) - np.asarray(self.plane.center_lps)
        self.plane = plane
        points = np.asarray(self.grid.points)
        points += shift  # in place: the VTK points array is shared
        self.grid.GetPoints().Modified()
        values = self._sample(plane, points.reshape(*self.shape, 3))
        hu = self.grid.point_data["hu"]
        hu[:] = values.ravel()
        self.grid.GetPointData().GetArray("hu").Modified()
        self.grid.Modified()

    def move_to(self, point_lps: ArrayLike) -> None:
        """Move the slice (along its normal) so that it passes through ``point_lps``."""
        offset = float(np.dot(np.asarray(point_lps, dtype=float) - np.asarray(self.plane.center_lps),
                              self.plane.normal))
        self.set_plane(self.plane.moved(offset))

    def move(self, offset_mm: float) -> None:
        """Shift the slice along its normal by ``offset_mm``."""
        self.set_plane(self.plane.moved(offset_mm))

    def add_to(self, plotter: Any, *, window_level: tuple[float, float], opacity: float = 1.0) -> Any:
        """Add the slice to a pyvista plotter in grey levels of ``window_level`` (width, level in HU)."""
        width, level = window_level
        return plotter.add_mesh(self.grid, scalars="hu", cmap="gray", clim=(level - width / 2, level + width / 2),
                                show_scalar_bar=False, lighting=False, nan_opacity=0.0, opacity=opacity,
                                name=f"mpr-{self.plane.name}")
