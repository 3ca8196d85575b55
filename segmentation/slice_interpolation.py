"""Fill between slices: a structure outlined on every few slices becomes a solid (shape-based interpolation).

The usual manual workflow of 3D Slicer's "Fill between slices" and ITK-SNAP's interpolation: the
user outlines a structure on some slices, leaving the slices between empty, and the empty slices
between two outlined ones are filled. Each empty slice gets the zero level of the signed distance
maps (in mm, on the slice's own spacing) of the two outlined slices around it, interpolated
linearly by position (Raya & Udupa 1990; Herman, Zheng & Bucholtz 1992).

A piece (8-connected) of one outline that overlaps nothing in the other is paired with the
nearest such piece there (centroids within twice their summed radii) and the pair is interpolated
in a frame that moves with its centroid: a vessel running obliquely, whose cross-sections do not
overlap from one outlined slice to the next, then moves instead of splitting into two shrinking
pieces (the alignment idea of Albu et al. 2008, which ITK's MorphologicalContourInterpolator
implements). Pieces that overlap are interpolated together, as above: on real organs, whose
pieces change shape and number from slice to slice, aligning every piece separately lowered the
Dice of the filled slices (vertebra T12 outlined every third slice: 0.71 against 0.85).

Why not ITK's ``MorphologicalContourInterpolator`` (what 3D Slicer uses): it is not in SimpleITK,
and the ``itk`` wheels it needs install 1.6 GB and take about 10 s to load in each process
(measured here); on a sphere outlined every 4th slice both give a Dice of 0.98 in the filled
slices.
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


def _pieces(slice_mask: NDArray[np.bool_]) -> list[NDArray[np.bool_]]:
    labels, count = ndimage.label(slice_mask, structure=np.ones((3, 3), dtype=bool))
    return [labels == n for n in range(1, count + 1)]


def _moving_pairs(low: list[NDArray[np.bool_]], high: list[NDArray[np.bool_]],
                  spacing_mm: tuple[float, float]) -> list[tuple[int, int]]:
    """Pairs (index in ``low``, index in ``high``) of pieces that overlap no piece of the other slice,
    by nearest centroid within twice their summed radii (greedy, nearest first)."""
    lone_low = [i for i, a in enumerate(low) if not any((a & b).any() for b in high)]
    lone_high = [j for j, b in enumerate(high) if not any((a & b).any() for a in low)]
    scale = np.asarray(spacing_mm, dtype=float)

    def centre_radius(piece: NDArray[np.bool_]) -> tuple[NDArray[np.float64], float]:
        return (np.asarray(ndimage.center_of_mass(piece)) * scale,
                float(np.sqrt(piece.sum() * np.prod(scale) / np.pi)))

    low_cr = {i: centre_radius(low[i]) for i in lone_low}
    high_cr = {j: centre_radius(high[j]) for j in lone_high}
    candidates = sorted((float(np.linalg.norm(low_cr[i][0] - high_cr[j][0])), i, j)
                        for i in lone_low for j in lone_high)
    pairs: list[tuple[int, int]] = []
    used_low: set[int] = set()
    used_high: set[int] = set()
    for distance, i, j in candidates:
        if i not in used_low and j not in used_high and distance <= 2.0 * (low_cr[i][1] + high_cr[j][1]):
            pairs.append((i, j))
            used_low.add(i)
            used_high.add(j)
    return pairs


def _between(low: NDArray[np.bool_], high: NDArray[np.bool_], weights: list[float],
             spacing_mm: tuple[float, float]) -> list[NDArray[np.bool_]]:
    """The slices at ``weights`` (0 = ``low``, 1 = ``high``) between two outlines."""
    pieces_low, pieces_high = _pieces(low), _pieces(high)
    moving = _moving_pairs(pieces_low, pieces_high, spacing_mm)
    still_low, still_high = low.copy(), high.copy()
    for i, j in moving:
        still_low &= ~pieces_low[i]
        still_high &= ~pieces_high[j]
    d_low, d_high = _signed_distance(still_low, spacing_mm), _signed_distance(still_high, spacing_mm)
    out = [(1.0 - w) * d_low + w * d_high <= 0.0 for w in weights]
    for i, j in moving:  # interpolated in a frame that moves with the pair's centroid
        a, b = pieces_low[i], pieces_high[j]
        shift = np.asarray(ndimage.center_of_mass(b)) - np.asarray(ndimage.center_of_mass(a))  # pixels
        d_a, d_b = _signed_distance(a, spacing_mm), _signed_distance(b, spacing_mm)
        for n, weight in enumerate(weights):
            moved_a = ndimage.shift(d_a, weight * shift, order=1, mode="nearest")
            moved_b = ndimage.shift(d_b, -(1.0 - weight) * shift, order=1, mode="nearest")
            out[n] |= (1.0 - weight) * moved_a + weight * moved_b <= 0.0
    return out


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
        weights = [(index - low) / (high - low) for index in range(low + 1, high)]
        for index, filled in zip(range(low + 1, high), _between(source[low], source[high], weights, in_slice),
                                 strict=True):
            moved[index] = filled
    return out
