"""The patient's body: everything inside the skin, without the table, cushions or air."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

from segmentation.morphology import fill_holes
from segmentation.structuring import voxel_volume_mm3
from workstation.model.volume import Volume


def body_mask(volume: Volume, *, threshold_hu: float = -400.0, detach_mm: float = 3.0,
              min_part_ml: float = 20.0) -> NDArray[np.bool_]:
    """(K, J, I) mask of the patient's body in a CT.

    Voxels above ``threshold_hu`` are opened in each slice with a square of half-side ``detach_mm``: this
    detaches the thin shells of the table and cushions. Every piece of at least ``min_part_ml``
    (the trunk and the arms) is kept, its holes filled per slice (lungs and bowel gas belong to
    the body), then grown back within the thresholded voxels.
    """
    if volume.modality not in ("CT", "OT"):
        raise ValueError(f"body_mask needs a CT in Hounsfield units, got modality {volume.modality}")
    dense = volume.array > threshold_hu
    # Opening with a square of side 2 * detach_mm in each slice: min/max filters are separable,
    # about 20x faster than a binary opening with a disc on a 512 x 512 x 300 CT.
    half = np.maximum(np.round(detach_mm / np.asarray(volume.spacing_mm[:2])), 1).astype(int)
    window = (1, 2 * half[1] + 1, 2 * half[0] + 1)
    as_bytes = dense.view(np.uint8)
    opened = ndi.maximum_filter(ndi.minimum_filter(as_bytes, size=window), size=window).astype(bool)
    labels, count = ndi.label(opened, structure=np.ones((3, 3, 3), dtype=bool))
    if count == 0:
        return np.zeros(volume.shape, dtype=bool)
    sizes_ml = np.bincount(labels.ravel())[1:] * voxel_volume_mm3(volume.spacing_mm) / 1000.0
    keep = np.zeros(count + 1, dtype=bool)
    keep[1:] = sizes_ml >= min(min_part_ml, sizes_ml.max())
    body = fill_holes(keep[labels], per_slice=True)
    grown = ndi.maximum_filter(body.view(np.uint8), size=window).astype(bool)
    return grown & dense | body
