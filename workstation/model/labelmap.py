"""Label maps: the saved source of truth of a segmentation."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from workstation.model.volume import checked_affine, frozen_array


@dataclass(frozen=True)
class Segment:
    """One structure of a label map.

    Attributes
    ----------
    value : the voxel value (1..65535) that marks this structure.
    name : lower-case anatomical name, e.g. ``"liver"``.
    color_rgb : (r, g, b) in 0..1.
    code : optional anatomical code, e.g. ``{"scheme": "SCT", "value": "10200004", "meaning": "Liver"}``.
    """

    value: int
    name: str
    color_rgb: tuple[float, float, float] = (0.9, 0.8, 0.6)
    code: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if not 0 < int(self.value) <= 65535:
            raise ValueError(f"segment {self.name!r}: value must be 1..65535, got {self.value}")
        if not self.name:
            raise ValueError("segment name must not be empty")
        rgb = tuple(float(c) for c in self.color_rgb)
        if len(rgb) != 3 or not all(0.0 <= c <= 1.0 for c in rgb):
            raise ValueError(f"segment {self.name!r}: color_rgb must be three numbers in 0..1")
        object.__setattr__(self, "color_rgb", rgb)
        object.__setattr__(self, "value", int(self.value))

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "name": self.name, "color_rgb": list(self.color_rgb), "code": self.code}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Segment:
        return cls(value=data["value"], name=data["name"], color_rgb=tuple(data["color_rgb"]),
                   code=data.get("code"))


@dataclass(frozen=True, eq=False)
class LabelMap:
    """Integer labels on a volume's grid; one label per voxel (0 is background).

    Overlap rule: a voxel belongs to exactly one segment, so painting one segment over
    another replaces it. Surfaces are derived from the label map, never the reverse.

    Attributes
    ----------
    array : (K, J, I) unsigned integer labels indexed ``[k, j, i]``, read-only.
    ijk_to_lps : (4, 4) maps ``(i, j, k, 1)`` to LPS mm.
    segments : the named segments; values not listed are unnamed labels.
    id, name : identity inside a case.
    source_volume_id : the volume whose grid this is ("" when imported on its own).
    provenance : how the label map was made; JSON-serialisable.
    """

    array: NDArray[Any]
    ijk_to_lps: NDArray[np.float64]
    segments: tuple[Segment, ...] = ()
    id: str = ""
    name: str = ""
    source_volume_id: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    coordinate_system: str = "LPS"

    def __post_init__(self) -> None:
        array = frozen_array(self.array)
        if array.ndim != 3:
            raise ValueError(f"LabelMap array must be 3-D [k, j, i], got shape {array.shape}")
        if not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"LabelMap array must hold integers, got {array.dtype}")
        object.__setattr__(self, "array", array)
        object.__setattr__(self, "ijk_to_lps", checked_affine(self.ijk_to_lps, what="LabelMap"))
        segments = tuple(self.segments)
        values = [s.value for s in segments]
        if len(set(values)) != len(values):
            raise ValueError(f"LabelMap segments repeat a value: {sorted(values)}")
        object.__setattr__(self, "segments", segments)

    def segment(self, name_or_value: str | int) -> Segment:
        """The segment with this name or value (``KeyError`` naming what exists otherwise)."""
        for s in self.segments:
            if s.name == name_or_value or s.value == name_or_value:
                return s
        raise KeyError(f"no segment {name_or_value!r}; segments: {[s.name for s in self.segments]}")

    def mask(self, name_or_value: str | int) -> NDArray[np.bool_]:
        """(K, J, I) boolean mask of one segment."""
        return self.array == self.segment(name_or_value).value

    @property
    def spacing_mm(self) -> NDArray[np.float64]:
        """(3,) voxel size along i, j, k in mm."""
        return np.linalg.norm(np.asarray(self.ijk_to_lps, dtype=float)[:3, :3], axis=0)

    def present_values(self) -> NDArray[Any]:
        """Sorted non-zero values that occur in the array."""
        values = np.unique(self.array)
        return values[values != 0]

    def with_array(self, array: ArrayLike, **changes: Any) -> LabelMap:
        """A new label map on the same grid holding ``array``."""
        array = np.asarray(array)
        if array.shape != self.array.shape:
            raise ValueError(f"with_array: shape {array.shape} differs from the grid's {self.array.shape}")
        return replace(self, array=array, **changes)

    def __repr__(self) -> str:
        names = ", ".join(s.name for s in self.segments)
        return f"LabelMap(id={self.id!r}, shape[k,j,i]={self.array.shape}, segments=[{names}], LPS)"
