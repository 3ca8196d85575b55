"""SimpleITK images <-> the model's arrays and LPS affines (SimpleITK works in LPS too)."""

from __future__ import annotations

from typing import Any

import numpy as np

from workstation.geometry import affine_from_geometry


def to_sitk(array: np.ndarray, ijk_to_lps: np.ndarray) -> Any:
    """A SimpleITK image of ``array`` [k, j, i] placed by ``ijk_to_lps``."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    linear = np.asarray(ijk_to_lps)[:3, :3]
    spacing = np.linalg.norm(linear, axis=0)
    image.SetSpacing([float(s) for s in spacing])
    image.SetOrigin([float(x) for x in np.asarray(ijk_to_lps)[:3, 3]])
    image.SetDirection([float(x) for x in (linear / spacing).ravel()])
    return image


def sitk_affine(image: Any) -> np.ndarray:
    """4x4 ``ijk_to_lps`` of a SimpleITK image."""
    direction = np.array(image.GetDirection(), dtype=float).reshape(3, 3)
    return affine_from_geometry(image.GetSpacing(), image.GetOrigin(), direction)
