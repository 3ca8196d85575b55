"""The patient's body: everything inside the skin, without the table, cushions or air."""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

from segmentation.components import fill_slice_holes, run_components
from segmentation.structuring import voxel_volume_mm3
from workstation.model.volume import Volume


@njit(cache=True, nogil=True, inline="always")
def _box_pass(src: NDArray[np.uint8], dst: NDArray[np.uint8], counts: NDArray[np.int32], hj: int, hi: int,
              erode: bool) -> None:  # pragma: no cover - compiled
    """2-D min (``erode``) or max filter of a 0/1 slice over a (2 hj + 1) x (2 hi + 1) box clipped to the slice.

    A box clipped to the slice equals scipy's ``mode="reflect"`` for min and max (reflected
    voxels lie inside the clipped box). Separable: running counts along i, then along j.
    """
    nj, ni = src.shape
    for j in range(nj):  # along i: how many set voxels in the clipped window
        total = 0
        for i in range(min(hi, ni)):
            total += src[j, i]
        for i in range(ni):
            if i + hi < ni:
                total += src[j, i + hi]
            if i - hi - 1 >= 0:
                total -= src[j, i - hi - 1]
            width = min(i + hi, ni - 1) - max(i - hi, 0) + 1
            counts[j, i] = 1 if (total == width if erode else total > 0) else 0
    column = np.zeros(ni, dtype=np.int32)  # along j: the same with a running count per column
    for j in range(min(hj, nj)):
        for i in range(ni):
            column[i] += counts[j, i]
    for j in range(nj):
        if j + hj < nj:
            for i in range(ni):
                column[i] += counts[j + hj, i]
        if j - hj - 1 >= 0:
            for i in range(ni):
                column[i] -= counts[j - hj - 1, i]
        height = min(j + hj, nj - 1) - max(j - hj, 0) + 1
        for i in range(ni):
            dst[j, i] = 1 if (column[i] == height if erode else column[i] > 0) else 0


@njit(cache=True, nogil=True)
def _open_slices(dense: NDArray[np.uint8], hj: int, hi: int) -> NDArray[np.uint8]:  # pragma: no cover - compiled
    """Opening (min then max filter) of every slice with the clipped box of half-sides ``hj``, ``hi``."""
    nk, nj, ni = dense.shape
    out = np.empty_like(dense)
    counts = np.empty((nj, ni), dtype=np.int32)
    eroded = np.empty((nj, ni), dtype=np.uint8)
    for k in range(nk):
        _box_pass(dense[k], eroded, counts, hj, hi, True)
        _box_pass(eroded, out[k], counts, hj, hi, False)
    return out


@njit(cache=True, nogil=True)
def _regrow(body: NDArray[np.uint8], dense: NDArray[np.uint8], hj: int, hi: int
            ) -> NDArray[np.uint8]:  # pragma: no cover - compiled
    """``max_filter(body) & dense | body`` slice by slice (the box of :func:`_open_slices`)."""
    nk, nj, ni = body.shape
    out = np.empty_like(body)
    counts = np.empty((nj, ni), dtype=np.int32)
    for k in range(nk):
        _box_pass(body[k], out[k], counts, hj, hi, False)
        for j in range(nj):
            for i in range(ni):
                out[k, j, i] = (out[k, j, i] & dense[k, j, i]) | body[k, j, i]
    return out


def body_mask(volume: Volume, *, threshold_hu: float = -400.0, detach_mm: float = 3.0,
              min_part_ml: float = 20.0) -> NDArray[np.bool_]:
    """(K, J, I) mask of the patient's body in a CT.

    Voxels above ``threshold_hu`` are opened in each slice with a square of half-side ``detach_mm``: this
    detaches the thin shells of the table and cushions. Every piece of at least ``min_part_ml``
    (the trunk and the arms; 26-connected) is kept, its holes filled per slice (lungs and bowel
    gas belong to the body), then grown back within the thresholded voxels.

    The steps run as numba kernels on uint8 slices (separable running-count box filters, labelling
    of runs, per-slice hole filling): the same mask as ``scipy.ndimage`` min/max filters,
    ``label`` and ``binary_fill_holes``, about ten times faster on a 512 x 512 x 300 CT.
    """
    if volume.modality not in ("CT", "OT"):
        raise ValueError(f"body_mask needs a CT in Hounsfield units, got modality {volume.modality}")
    dense = np.ascontiguousarray(volume.array > threshold_hu).view(np.uint8)
    half = np.maximum(np.round(detach_mm / np.asarray(volume.spacing_mm[:2])), 1).astype(int)
    hi, hj = int(half[0]), int(half[1])
    opened = _open_slices(dense, hj, hi)
    pieces = run_components(opened, connectivity=26)
    del opened
    if pieces.count == 0:
        return np.zeros(volume.shape, dtype=bool)
    sizes_ml = pieces.sizes * voxel_volume_mm3(volume.spacing_mm) / 1000.0
    body = fill_slice_holes(pieces.select(sizes_ml >= min(min_part_ml, sizes_ml.max())))
    return _regrow(body.view(np.uint8), dense, hj, hi).view(np.bool_)
