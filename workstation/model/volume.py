"""The image volume: voxels on a grid placed in patient LPS millimetres."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from workstation.geometry import affine_from_geometry, apply_affine, geometry_from_affine


def frozen_array(values: ArrayLike, *, dtype: Any = None) -> NDArray[Any]:
    """A read-only view of ``values`` (the caller's own array keeps its flags)."""
    array = np.asarray(values, dtype=dtype).view()
    array.flags.writeable = False
    return array


def checked_affine(ijk_to_lps: ArrayLike, *, what: str) -> NDArray[np.float64]:
    """Validate a 4x4 affine (finite, invertible, last row 0 0 0 1) and freeze it."""
    affine = np.array(ijk_to_lps, dtype=float)
    if affine.shape != (4, 4):
        raise ValueError(f"{what}: ijk_to_lps must be 4x4, got shape {affine.shape}")
    if not np.all(np.isfinite(affine)) or not np.allclose(affine[3], [0, 0, 0, 1]):
        raise ValueError(f"{what}: ijk_to_lps must be finite with last row (0, 0, 0, 1)")
    if abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise ValueError(f"{what}: ijk_to_lps is singular (zero spacing or degenerate axes)")
    return frozen_array(affine)


@dataclass(frozen=True)
class SeriesIdentity:
    """Which acquisition a volume came from (de-identified UIDs unless PHI was kept)."""

    study_instance_uid: str = ""
    series_instance_uid: str = ""
    frame_of_reference_uid: str = ""
    series_number: int | None = None
    series_description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "study_instance_uid": self.study_instance_uid,
            "series_instance_uid": self.series_instance_uid,
            "frame_of_reference_uid": self.frame_of_reference_uid,
            "series_number": self.series_number,
            "series_description": self.series_description,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SeriesIdentity:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass(frozen=True, eq=False)
class Volume:
    """A scalar image on a regular grid in patient LPS millimetres.

    Attributes
    ----------
    array : (K, J, I) voxel values indexed ``[k, j, i]`` (slice, row, column), read-only.
        CT values are Hounsfield units.
    ijk_to_lps : (4, 4) maps ``(i, j, k, 1)`` to LPS mm (voxel centres).
    modality : DICOM modality (``"CT"``, ``"MR"``, ...) or ``"OT"``.
    id : identifier inside a case ("" until a case assigns one).
    name : human-readable name.
    series : the source acquisition's identity.
    provenance : how the volume was made (source, steps, warnings); JSON-serialisable.
    coordinate_system : always ``"LPS"`` (millimetres).
    """

    array: NDArray[Any]
    ijk_to_lps: NDArray[np.float64]
    modality: str = "OT"
    id: str = ""
    name: str = ""
    series: SeriesIdentity = field(default_factory=SeriesIdentity)
    provenance: dict[str, Any] = field(default_factory=dict)
    coordinate_system: str = "LPS"

    def __post_init__(self) -> None:
        array = frozen_array(self.array)
        if array.ndim != 3 or min(array.shape) < 1:
            raise ValueError(f"Volume array must be 3-D [k, j, i] and non-empty, got shape {array.shape}")
        object.__setattr__(self, "array", array)
        object.__setattr__(self, "ijk_to_lps", checked_affine(self.ijk_to_lps, what="Volume"))
        if self.coordinate_system != "LPS":
            raise ValueError(f"Volume coordinate_system must be 'LPS', got {self.coordinate_system!r}")

    @classmethod
    def from_geometry(
        cls,
        array: ArrayLike,
        *,
        spacing_mm: ArrayLike,
        origin_lps: ArrayLike = (0.0, 0.0, 0.0),
        direction: ArrayLike = ((1, 0, 0), (0, 1, 0), (0, 0, 1)),
        **fields: Any,
    ) -> Volume:
        """Build from spacing ([x, y, z] along i, j, k), origin and direction columns."""
        return cls(array=np.asarray(array), ijk_to_lps=affine_from_geometry(spacing_mm, origin_lps, direction),
                   **fields)

    # Derived geometry (never stored twice).
    @property
    def shape(self) -> tuple[int, int, int]:
        """``(K, J, I)``: slices, rows, columns."""
        return tuple(self.array.shape)  # type: ignore[return-value]

    @property
    def size_ijk(self) -> tuple[int, int, int]:
        """``(I, J, K)``: number of voxels along i, j, k."""
        k, j, i = self.array.shape
        return (i, j, k)

    @property
    def spacing_mm(self) -> NDArray[np.float64]:
        """(3,) voxel size along i, j, k in mm."""
        return geometry_from_affine(self.ijk_to_lps)[0]

    @property
    def origin_lps(self) -> NDArray[np.float64]:
        """(3,) LPS position (mm) of the centre of voxel (0, 0, 0)."""
        return np.array(self.ijk_to_lps[:3, 3])

    @property
    def direction(self) -> NDArray[np.float64]:
        """(3, 3) unit i, j, k axes in LPS as columns."""
        return geometry_from_affine(self.ijk_to_lps)[2]

    @property
    def lps_to_ijk(self) -> NDArray[np.float64]:
        """(4, 4) inverse of :attr:`ijk_to_lps`."""
        return np.linalg.inv(self.ijk_to_lps)

    @property
    def voxel_volume_mm3(self) -> float:
        return float(abs(np.linalg.det(self.ijk_to_lps[:3, :3])))

    def ijk_to_lps_points(self, ijk: ArrayLike) -> NDArray[np.float64]:
        """LPS mm of continuous voxel indices ``(..., 3)`` given as ``(i, j, k)``."""
        return apply_affine(self.ijk_to_lps, ijk)

    def lps_to_ijk_points(self, points_lps: ArrayLike) -> NDArray[np.float64]:
        """Continuous ``(i, j, k)`` indices of LPS points ``(..., 3)``."""
        return apply_affine(self.lps_to_ijk, points_lps)

    def corners_lps(self) -> NDArray[np.float64]:
        """(8, 3) LPS positions of the corner voxel centres."""
        i, j, k = (n - 1 for n in self.size_ijk)
        corners = np.array([[a, b, c] for a in (0, i) for b in (0, j) for c in (0, k)], dtype=float)
        return self.ijk_to_lps_points(corners)

    def sample(self, points_lps: ArrayLike, *, order: int = 1, fill_value: float = np.nan) -> NDArray[np.float64]:
        """Values at LPS points ``(N, 3)`` by interpolation (``order`` 0 nearest, 1 trilinear).

        Points outside the grid (more than half a voxel beyond a centre) get ``fill_value``.
        """
        from scipy.ndimage import map_coordinates

        ijk = np.atleast_2d(self.lps_to_ijk_points(points_lps))
        size = np.array(self.size_ijk)
        inside = np.all((ijk >= -0.5) & (ijk <= size - 0.5), axis=1)
        values = map_coordinates(self.array.astype(float, copy=False), ijk[:, ::-1].T, order=order,
                                 mode="nearest")
        return np.where(inside, values, fill_value)

    def with_array(self, array: ArrayLike, **changes: Any) -> Volume:
        """A new volume on the same grid holding ``array``."""
        array = np.asarray(array)
        if array.shape != self.array.shape:
            raise ValueError(f"with_array: shape {array.shape} differs from the grid's {self.array.shape}")
        return replace(self, array=array, **changes)

    def same_grid(self, other: Volume | Any, *, tolerance_mm: float = 1e-3) -> bool:
        """True when ``other`` (anything with ``array`` and ``ijk_to_lps``) has this grid."""
        return other.array.shape == self.array.shape and bool(
            np.allclose(other.ijk_to_lps, self.ijk_to_lps, atol=tolerance_mm)
        )

    def geometry_dict(self) -> dict[str, Any]:
        """JSON-ready geometry, in the form ``twin info --json`` prints."""
        return {
            "id": self.id,
            "name": self.name,
            "shape": list(self.shape),
            "spacing_mm": [float(x) for x in self.spacing_mm],
            "origin_lps": [float(x) for x in self.origin_lps],
            "direction": self.direction.tolist(),
            "ijk_to_lps": self.ijk_to_lps.tolist(),
            "modality": self.modality,
            "dtype": str(self.array.dtype),
            "coordinate_system": self.coordinate_system,
        }

    def __repr__(self) -> str:
        sp = ", ".join(f"{s:.4g}" for s in self.spacing_mm)
        return f"Volume(id={self.id!r}, {self.modality}, shape[k,j,i]={self.shape}, spacing_mm=[{sp}], LPS)"
