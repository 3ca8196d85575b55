"""Structuring elements and voxel sizes in millimetres, respecting anisotropic spacing."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


def kji_spacing(spacing_mm: ArrayLike) -> NDArray[np.float64]:
    """Spacing ``[x, y, z]`` (along i, j, k) reordered to the array's ``[k, j, i]`` axes."""
    return np.asarray(spacing_mm, dtype=float).reshape(3)[::-1].copy()


def ball(radius_mm: float, spacing_mm: ArrayLike, *, planar: bool = False) -> NDArray[np.bool_]:
    """Boolean ellipsoidal structuring element ``[k, j, i]`` of a ``radius_mm`` ball on this grid.

    ``planar=True`` gives the in-slice disc (one slice thick). The element always holds at
    least the centre voxel and its face neighbours along axes whose spacing is <= the radius.
    """
    if radius_mm < 0:
        raise ValueError(f"radius_mm must be >= 0, got {radius_mm}")
    sp = kji_spacing(spacing_mm)
    half = np.floor(radius_mm / sp + 1e-9).astype(int)
    if planar:
        half[0] = 0
    grids = np.meshgrid(*(np.arange(-h, h + 1) * s for h, s in zip(half, sp, strict=True)), indexing="ij")
    return (grids[0] ** 2 + grids[1] ** 2 + grids[2] ** 2) <= radius_mm**2 + 1e-9


def voxel_volume_mm3(spacing_mm: ArrayLike) -> float:
    return float(np.prod(np.asarray(spacing_mm, dtype=float)))
