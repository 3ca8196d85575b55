"""Connected pieces of a mask: keep the largest, keep the one under a point, drop small ones.

Pieces are found from the mask's runs (:func:`segmentation.components.run_components`, numba):
the same pieces as ``scipy.ndimage.label`` without an int32 label per voxel.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from segmentation.components import RunComponents, run_components
from segmentation.structuring import voxel_volume_mm3


def _pieces(mask: ArrayLike, connectivity: int) -> tuple[NDArray[np.bool_], RunComponents]:
    if connectivity not in (6, 26):
        raise ValueError(f"connectivity must be 6 or 26, got {connectivity}")
    mask = np.asarray(mask, dtype=bool)
    if not 1 <= mask.ndim <= 3:
        raise ValueError(f"a (K, J, I) mask is needed, got {mask.ndim} dimensions")
    return mask, run_components(mask.reshape((1,) * (3 - mask.ndim) + mask.shape), connectivity=connectivity)


def keep_largest(mask: ArrayLike, *, n: int = 1, connectivity: int = 26) -> NDArray[np.bool_]:
    """The ``n`` largest connected pieces of ``mask`` (K, J, I)."""
    mask, pieces = _pieces(mask, connectivity)
    if pieces.count <= n:
        return mask.copy()
    keep = np.zeros(pieces.count, dtype=bool)
    keep[np.argsort(pieces.sizes)[::-1][:n]] = True
    return pieces.select(keep).reshape(mask.shape)


def keep_at_points(mask: ArrayLike, points_kji: ArrayLike, *, connectivity: int = 26) -> NDArray[np.bool_]:
    """The connected pieces of ``mask`` under the voxel indices ``points_kji`` (N, 3) as ``[k, j, i]``.

    Raises ``ValueError`` when a point lies outside the grid or on no piece.
    """
    mask = np.asarray(mask, dtype=bool)
    points = np.atleast_2d(np.asarray(points_kji, dtype=int))
    if np.any(points < 0) or np.any(points >= mask.shape):
        raise ValueError("a point lies outside the volume")
    mask, pieces = _pieces(mask, connectivity)
    padded = np.concatenate([np.zeros((len(points), 3 - mask.ndim), dtype=int), points], axis=1)
    hit = [pieces.piece_at(int(k), int(j), int(i)) for k, j, i in padded]
    if min(hit) < 0:
        raise ValueError("a point lies outside the segment (no piece under it)")
    keep = np.zeros(pieces.count, dtype=bool)
    keep[hit] = True
    return pieces.select(keep).reshape(mask.shape)


def remove_small(mask: ArrayLike, *, min_ml: float, spacing_mm: ArrayLike, connectivity: int = 26) -> NDArray[np.bool_]:
    """``mask`` without the connected pieces smaller than ``min_ml`` millilitres."""
    if min_ml < 0:
        raise ValueError(f"min_ml must be >= 0, got {min_ml}")
    mask, pieces = _pieces(mask, connectivity)
    if pieces.count == 0:
        return mask.copy()
    return pieces.select(pieces.sizes * voxel_volume_mm3(spacing_mm) / 1000.0 >= min_ml).reshape(mask.shape)
