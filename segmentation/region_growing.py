"""Seeded region growing through SimpleITK (connected threshold and confidence connected)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from workstation.model.volume import Volume


def _seeds_ijk(volume: Volume, seeds_lps: ArrayLike) -> list[tuple[int, int, int]]:
    ijk = np.rint(np.atleast_2d(volume.lps_to_ijk_points(np.asarray(seeds_lps, dtype=float)))).astype(int)
    size = np.array(volume.size_ijk)
    if np.any(ijk < 0) or np.any(ijk >= size):
        raise ValueError("a seed point lies outside the volume")
    return [tuple(int(x) for x in p) for p in ijk]  # type: ignore[misc]


def connected_threshold(volume: Volume, seeds_lps: ArrayLike, *, lower: float, upper: float) -> NDArray[np.bool_]:
    """(K, J, I) voxels within ``lower..upper`` connected (6-connectivity) to the seed points (LPS mm)."""
    import SimpleITK as sitk

    from workstation.sitk_image import to_sitk

    if lower > upper:
        raise ValueError(f"lower ({lower}) is above upper ({upper})")
    image = to_sitk(volume.array.astype(np.float32), volume.ijk_to_lps)
    out = sitk.ConnectedThreshold(image, seedList=_seeds_ijk(volume, seeds_lps), lower=float(lower),
                                  upper=float(upper))
    return sitk.GetArrayFromImage(out).astype(bool)


def confidence_connected(volume: Volume, seeds_lps: ArrayLike, *, multiplier: float = 2.5, iterations: int = 3,
                         radius_voxels: int = 1) -> NDArray[np.bool_]:
    """(K, J, I) region grown from the seeds with a range of mean +- ``multiplier`` standard deviations,
    re-estimated from the region ``iterations`` times (SimpleITK ConfidenceConnected)."""
    import SimpleITK as sitk

    from workstation.sitk_image import to_sitk

    image = to_sitk(volume.array.astype(np.float32), volume.ijk_to_lps)
    out = sitk.ConfidenceConnected(image, seedList=_seeds_ijk(volume, seeds_lps), numberOfIterations=iterations,
                                   multiplier=multiplier, initialNeighborhoodRadius=radius_voxels, replaceValue=1)
    return sitk.GetArrayFromImage(out).astype(bool)
