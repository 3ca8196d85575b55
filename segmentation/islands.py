"""Connected pieces of a mask: keep the largest, keep the one under a point, drop small ones."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage as ndi

from segmentation.structuring import voxel_volume_mm3

_FULL = np.ones((3, 3, 3), dtype=bool)  # 26-connectivity
_FACES = ndi.generate_binary_structure(3, 1)  # 6-connectivity


def _label(mask: NDArray[np.bool_], connectivity: int) -> tuple[NDArray[np.int32], int]:
    if connectivity not in (6, 26):
        raise ValueError(f"connectivity must be 6 or 26, got {connectivity}")
    return ndi.label(mask, structure=_FACES if connectivity == 6 else _FULL)


def keep_largest(mask: ArrayLike, *, n: int = 1, connectivity: int = 26) -> NDArray[np.bool_]:
    """The ``n`` largest connected pieces of ``mask`` (K, J, I)."""
    mask = np.asarray(mask, dtype=bool)
    labels, count = _label(mask, connectivity)
    if count <= n:
        return mask.copy()
    sizes = np.bincount(labels.ravel())[1:]
    keep = np.argsort(sizes)[::-1][:n] + 1
    return np.isin(labels, keep)


def keep_at_points(mask: ArrayLike, points_kji: ArrayLike, *, connectivity: int = 26) -> NDArray[np.bool_]:
    """The connected pieces of ``mask`` under the voxel indices ``points_kji`` (N, 3) as ``[k, j, i]``.

    Raises ``ValueError`` when a point lies outside the grid or on no piece.
    """
    mask = np.asarray(mask, dtype=bool)
    points = np.atleast_2d(np.asarray(points_kji, dtype=int))
    if np.any(points < 0) or np.any(points >= mask.shape):
        raise ValueError("a point lies outside the volume")
    labels, _ = _label(mask, connectivity)
    hit = labels[tuple(points.T)]
    if np.any(hit == 0):
        raise ValueError("a point lies outside the segment (no piece under it)")
    return np.isin(labels, np.unique(hit))


def remove_small(mask: ArrayLike, *, min_ml: float, spacing_mm: ArrayLike, connectivity: int = 26) -> NDArray[np.bool_]:
    """``mask`` without the connected pieces smaller than ``min_ml`` millilitres."""
    if min_ml < 0:
        raise ValueError(f"min_ml must be >= 0, got {min_ml}")
    mask = np.asarray(mask, dtype=bool)
    labels, count = _label(mask, connectivity)
    if count == 0:
        return mask.copy()
    sizes_ml = np.bincount(labels.ravel())[1:] * voxel_volume_mm3(spacing_mm) / 1000.0
    return np.isin(labels, np.flatnonzero(sizes_ml >= min_ml) + 1)
