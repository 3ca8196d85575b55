"""Fill between slices: a structure outlined on every few slices becomes a solid (shape-based interpolation).

The usual manual workflow of 3D Slicer's "Fill between slices" and ITK-SNAP's interpolation: the
user outlines a structure on some slices, leaving the slices between empty, and the empty slices
between two outlined ones are filled. Each empty slice gets the zero level of the signed distance
maps (in mm, on the slice's own spacing) of the two outlined slices around it, interpolated
linearly by position (Raya & Udupa 1990; Herman, Zheng & Bucholtz 1992).

Why not ITK's ``MorphologicalContourInterpolator`` (what 3D Slicer uses): it is not in SimpleITK,
and the ``itk`` wheels it needs install 1.6 GB and take about 10 s to load in each process
(measured here); on a sphere outlined every 4th slice both give a Dice of 0.98 in the filled
slices. Known limit of distance interpolation: a cross-section that moves by more than its own
width between two outlined slices (a vessel running obliquely) splits into two shrinking pieces
instead of moving; outline such structures on closer slices.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

__all__ = ["fill_between_slices", "outlined_slices"]


def outlined_slices(mask: NDArray[np.bool_], *, axis: int) -> NDArray[np.intp]:
    """Indices along ``axis`` of the slices of ``mask`` that hold any voxel, ascending."""
    others = tuple(a for a in range(mask.ndim) if a != axis)
    return np.flatnonzero(mask.any(axis=others))


def _signed_distance(slice_mask: NDArray[np.bool_], spacing_mm: tuple[float, float]) -> NDArray[np.float64]:
    """Signed distance (mm) to the outline of a 2-D mask: negative inside, positive outside."""
    outside = ndimage.distance_transform_edt(~slice_mask, sampling=spacing_mm)
    inside = ndimage.distance_transform_edt(slice_mask, sampling=spacing_mm)
    return np.asarray(outside - inside, dtype=np.float64)


def fill_between_slices(mask: NDArray[np.bool_], *, axis: int, spacing_mm: ArrayLike) -> NDArray[np.bool_]:
    """``mask`` with every empty slice between two outlined slices along ``axis`` filled.

    Parameters
    ----------
    mask : (K, J, I) bool array
        The outlined slices (any voxels); not modified.
    axis : {0, 1, 2}
        Array axis across which the slices are stacked (0 = k).
    spacing_mm : (3,) float
        Voxel size in mm along i, j, k (the in-slice distances use the two axes other than ``axis``).

    Returns
    -------
    (K, J, I) bool array
        A new mask: the outlined slices as they were, the empty slices between them filled, the
        slices outside the first and last outlined ones left empty.
    """
    mask = np.asarray(mask, dtype=bool)
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, got {axis}")
    spacing_kji = np.asarray(spacing_mm, dtype=float)[::-1]
    in_slice = tuple(float(s) for a, s in enumerate(spacing_kji) if a != axis)
    out = mask.copy()
    moved = np.moveaxis(out, axis, 0)  # a view: writing into it fills ``out``
    source = np.moveaxis(mask, axis, 0)
    outlined = outlined_slices(mask, axis=axis)
    for low, high in pairwise(outlined):
        if high - low < 2:
            continue
        d_low = _signed_distance(source[low], in_slice)  # type: ignore[arg-type]
        d_high = _signed_distance(source[high], in_slice)  # type: ignore[arg-type]
        for index in range(low + 1, high):
            weight = (index - low) / (high - low)
            moved[index] = (1.0 - weight) * d_low + weight * d_high <= 0.0
    return out
