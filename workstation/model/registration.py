"""Rigid or affine transforms between named frames, with their error estimates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from workstation.geometry import apply_affine
from workstation.model.volume import frozen_array


@dataclass(frozen=True, eq=False)
class Registration:
    """``matrix`` (4x4) maps points in ``from_frame`` to ``to_frame`` (both mm).

    ``fre_mm`` is the RMS fiducial registration error, ``fre_per_point_mm`` one value per
    fiducial and ``predicted_tre_mm`` the predicted target registration error per target.
    """

    matrix: NDArray[np.float64]
    from_frame: str = "image_lps"
    to_frame: str = "patient"
    fre_mm: float | None = None
    fre_per_point_mm: tuple[float, ...] = ()
    predicted_tre_mm: tuple[float, ...] = ()
    id: str = ""
    kind: str = "rigid"

    def __post_init__(self) -> None:
        m = np.asarray(self.matrix, dtype=float)
        if m.shape != (4, 4) or not np.allclose(m[3], [0, 0, 0, 1]) or not np.all(np.isfinite(m)):
            raise ValueError("Registration matrix must be a finite 4x4 with last row (0, 0, 0, 1)")
        if self.kind == "rigid":
            r = m[:3, :3]
            if not (np.allclose(r.T @ r, np.eye(3), atol=1e-6) and np.linalg.det(r) > 0):
                raise ValueError("a rigid Registration needs a proper rotation (orthonormal, det +1)")
        object.__setattr__(self, "matrix", frozen_array(m))

    def apply(self, points: ArrayLike) -> NDArray[np.float64]:
        """Map points (..., 3) from ``from_frame`` to ``to_frame``."""
        return apply_affine(self.matrix, points)

    def inverse(self) -> Registration:
        return Registration(np.linalg.inv(self.matrix), from_frame=self.to_frame, to_frame=self.from_frame,
                            fre_mm=self.fre_mm, fre_per_point_mm=self.fre_per_point_mm,
                            predicted_tre_mm=self.predicted_tre_mm, kind=self.kind)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "from_frame": self.from_frame, "to_frame": self.to_frame,
                "matrix": self.matrix.tolist(), "fre_mm": self.fre_mm,
                "fre_per_point_mm": list(self.fre_per_point_mm), "predicted_tre_mm": list(self.predicted_tre_mm),
                "units": "mm"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Registration:
        return cls(matrix=np.asarray(data["matrix"], dtype=float), from_frame=data["from_frame"],
                   to_frame=data["to_frame"], fre_mm=data.get("fre_mm"),
                   fre_per_point_mm=tuple(data.get("fre_per_point_mm", ())),
                   predicted_tre_mm=tuple(data.get("predicted_tre_mm", ())), id=data.get("id", ""),
                   kind=data.get("kind", "rigid"))
