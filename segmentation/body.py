"""The patient's body: everything inside the skin, without the table, cushions or air."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

from segmentation.morphology import fill_holes
from segmentation.structuring import ball, voxel_volume_mm3
from workstation.model.volume import Volume


def body_mask(volume: Volume, *, threshold_hu: float = -400.0, detach_mm: float = 3.0,
              min_part_ml: float = 20.0) -> NDArray[np.bool_]:
    """(K, J, I) mask of the patient's body in a CT.

    Voxels above ``threshold_hu`` are opened in each slice with a disc of ``detach_mm``: this
    detaches the thin shells of the table and cushions. Every piece of at least ``min_part_ml``
    (the trunk and the arms) is kept, its holes filled per slice (lungs and bowel gas belong to
    the body), then grown back within the thresholded voxels.
    """
    if volume.modality not in ("CT", "OT"):
        raise ValueError(f"body_mask needs a CT in Hounsfield units, got modality {volume.modality}")
    dense = volume.array > threshold_hu
    disc = ball(detach_mm, volume.spacing_mm, planar=True)
    opened = ndi.binary_opening(dense, structure=disc)
    labels, count = ndi.label(opened, structure=np.ones((3, 3, 3), dtype=bool))
    if count == 0:
        return np.zeros(volume.shape, dtype=bool)
    sizes_ml = np.bincount(labels.ravel())[1:] * voxel_volume_mm3(volume.spacing_mm) / 1000.0
    keep = np.flatnonzero(sizes_ml >= min(min_part_ml, sizes_ml.max())) + 1
    body = fill_holes(np.isin(labels, keep), per_slice=True)
    return ndi.binary_dilation(body, structure=disc) & dense | body
