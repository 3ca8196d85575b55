"""The numba kernels of the surface and mask pipeline give exactly what the code they replaced gives.

Each kernel is checked against its plain reference on inputs that reach its special cases:
numpy's ``unique`` corner numbering of the voxel faces, scipy's connected-component numbering,
the slice-window restriction of the body mask (pieces touching the slice borders, anisotropic
boxes), in-place hole filling, run extraction and the threshold's skipped infinite bounds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import ndimage as ndi

from segmentation.body import body_mask
from segmentation.components import fill_slice_holes, fill_slices_in_place
from segmentation.structuring import voxel_volume_mm3
from segmentation.surface import (
    _face_pieces,
    _voxel_faces,
    _well_compose,
)
from segmentation.threshold import threshold
from workstation.model import Volume


def voxel_faces_numpy(compact: NDArray[Any], offset: NDArray[np.int64]
                      ) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """The voxel-face surface written with numpy (``np.unique`` numbers the corners)."""
    _, nj, ni = compact.shape
    stride = np.array([1, ni + 1, (ni + 1) * (nj + 1)], dtype=np.int64)
    quads, quad_sides = [], []
    for axis in range(3):
        a = compact[:, :, :-1] if axis == 0 else compact[:, :-1, :] if axis == 1 else compact[:-1]
        b = compact[:, :, 1:] if axis == 0 else compact[:, 1:, :] if axis == 1 else compact[1:]
        k, j, i = np.nonzero(a != b)
        la, lb = a[k, j, i].astype(np.int64), b[k, j, i].astype(np.int64)
        base = np.stack([i, j, k], axis=1).astype(np.int64)
        base[:, axis] += 1
        du, dw = np.eye(3, dtype=np.int64)[(axis + 1) % 3], np.eye(3, dtype=np.int64)[(axis + 2) % 3]
        key0 = base @ stride
        corners = np.stack([key0, key0 + du @ stride, key0 + (du + dw) @ stride, key0 + dw @ stride], axis=1)
        first = np.where(lb == 0, la, np.where(la == 0, lb, np.minimum(la, lb)))
        second = np.where((la == 0) | (lb == 0), 0, np.maximum(la, lb))
        corners[first != la] = corners[first != la][:, ::-1]
        quads.append(corners)
        quad_sides.append(np.stack([first, second], axis=1))
    keys, inverse = np.unique(np.concatenate(quads).ravel(), return_inverse=True)
    q = inverse.reshape(-1, 4)
    triangles = np.empty((2 * len(q), 3), dtype=np.int64)
    triangles[0::2] = q[:, [0, 1, 2]]
    triangles[1::2] = q[:, [0, 2, 3]]
    points = np.stack([keys % (ni + 1), keys // (ni + 1) % (nj + 1), keys // ((ni + 1) * (nj + 1))], axis=1)
    return points - 0.5 + offset, triangles, np.repeat(np.concatenate(quad_sides), 2, axis=0)


def blob_labels(seed: int, shape: tuple[int, int, int], n_labels: int) -> NDArray[np.uint8]:
    rng = np.random.default_rng(seed)
    smooth = ndi.gaussian_filter(rng.random(shape), 1.5)
    labels = np.digitize(smooth, np.quantile(smooth, np.linspace(0.55, 1.0, n_labels + 1)[:-1]))
    return np.pad(labels.astype(np.uint8), 2)


def test_voxel_faces_equal_the_numpy_construction() -> None:
    for seed, n_labels, dtype in ((3, 1, np.uint8), (4, 3, np.uint8), (5, 2, np.uint16)):
        compact = blob_labels(seed, (11, 13, 17), n_labels).astype(dtype)
        offset = np.array([2, -3, 5])
        for ours, reference in zip(_voxel_faces(compact, offset), voxel_faces_numpy(compact, offset), strict=True):
            np.testing.assert_array_equal(ours, reference)
    empty = _voxel_faces(np.zeros((4, 5, 6), np.uint8), np.zeros(3, np.int64))
    assert [a.shape for a in empty] == [(0, 3), (0, 3), (0, 2)]


def test_face_pieces_number_like_scipy() -> None:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    compact = blob_labels(6, (16, 18, 20), 1).clip(0, 1)
    _, triangles, _ = _voxel_faces(compact, np.zeros(3, np.int64))
    rng = np.random.default_rng(7)
    for tris in (triangles, triangles[rng.random(len(triangles)) < 0.4], triangles[::-1].copy()):
        n = int(triangles.max()) + 1
        rows, cols = np.concatenate([tris[:, 0], tris[:, 1]]), np.concatenate([tris[:, 1], tris[:, 2]])
        graph = coo_matrix((np.ones(rows.size, dtype=np.int8), (rows, cols)), shape=(n, n))
        _, vertex_piece = connected_components(graph, directed=False)
        _, expected = np.unique(vertex_piece[tris[:, 0]], return_inverse=True)
        np.testing.assert_array_equal(_face_pieces(tris, n), expected)


def scipy_body_mask(volume: Volume, threshold_hu: float = -400.0, detach_mm: float = 3.0,
                    min_part_ml: float = 20.0) -> NDArray[np.bool_]:
    dense = volume.array > threshold_hu
    half = np.maximum(np.round(detach_mm / np.asarray(volume.spacing_mm[:2])), 1).astype(int)
    window = (1, 2 * int(half[1]) + 1, 2 * int(half[0]) + 1)
    opened = ndi.maximum_filter(ndi.minimum_filter(dense.view(np.uint8), size=window), size=window).astype(bool)
    labels, n = ndi.label(opened, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return np.zeros(volume.shape, dtype=bool)
    sizes_ml = np.bincount(labels.ravel())[1:] * voxel_volume_mm3(volume.spacing_mm) / 1000.0
    keep = np.concatenate([[False], sizes_ml >= min(min_part_ml, sizes_ml.max())])
    body = np.stack([ndi.binary_fill_holes(plane) for plane in keep[labels]])
    return ndi.maximum_filter(body.view(np.uint8), size=window).astype(bool) & dense | body


def test_body_mask_slice_windows_change_nothing() -> None:
    rng = np.random.default_rng(8)
    for spacing, shape in (((0.7, 0.9, 2.0), (6, 40, 52)), ((1.6, 0.5, 1.0), (5, 61, 33))):
        hu = np.where(ndi.gaussian_filter(rng.random(shape), (0, 2.5, 2.5)) > 0.5, 40, -1000).astype(np.int16)
        hu[1, :, :3] = 300  # a piece on the slice border
        hu[2, -4:, :] = 300  # a table across the bottom rows
        hu[3] = -1000  # an empty slice
        volume = Volume.from_geometry(hu, spacing_mm=spacing, origin_lps=(0, 0, 0), modality="CT")
        np.testing.assert_array_equal(body_mask(volume, min_part_ml=0.0), scipy_body_mask(volume, min_part_ml=0.0))


def test_fill_slices_in_place_equals_fill_slice_holes() -> None:
    rng = np.random.default_rng(9)
    mask = rng.random((7, 30, 31)) < 0.45
    mask[2] = False
    expected = np.stack([ndi.binary_fill_holes(plane) for plane in mask])
    work = mask.astype(np.uint8)
    fill_slices_in_place(work)
    np.testing.assert_array_equal(work.view(bool), expected)
    np.testing.assert_array_equal(fill_slice_holes(mask), expected)
    with pytest.raises(ValueError):
        fill_slices_in_place(mask)


def test_threshold_equals_both_comparisons() -> None:
    rng = np.random.default_rng(10)
    arrays = [rng.integers(-1024, 3000, (4, 9, 11)).astype(np.int16), rng.integers(0, 255, (3, 5, 7)).astype(np.uint8),
              np.where(rng.random((3, 6, 5)) < 0.2, np.nan, rng.normal(0, 100, (3, 6, 5))).astype(np.float32)]
    for array in arrays:
        volume = Volume.from_geometry(array, spacing_mm=(1.0, 1.0, 1.0), origin_lps=(0, 0, 0), modality="CT")
        within = rng.random(array.shape) < 0.5
        for lower, upper in ((200.0, np.inf), (-50.5, 100.2), (-1e9, 1e9), (5000.0, 6000.0), (-np.inf, -2000.0),
                             (-np.inf, np.inf), (np.inf, np.inf)):
            expected = (array >= lower) & (array <= upper)
            np.testing.assert_array_equal(threshold(volume, lower=lower, upper=upper), expected)
            np.testing.assert_array_equal(threshold(volume, lower=lower, upper=upper, within=within), expected & within)


def test_runs_skip_empty_rows_and_equal_a_plain_scan() -> None:
    from segmentation.components import _runs

    rng = np.random.default_rng(11)
    mask = (rng.random((5, 9, 23)) < 0.3).astype(np.uint8)
    mask[1] = 0
    mask[2, :, 0] = 1
    mask[3, 4] = 1
    row_ptr, starts, ends = _runs(mask)
    for k in range(mask.shape[0]):
        for j in range(mask.shape[1]):
            row = k * mask.shape[1] + j
            padded = np.concatenate([[0], mask[k, j], [0]]).astype(int)
            edges = np.flatnonzero(np.diff(padded))
            np.testing.assert_array_equal(starts[row_ptr[row]:row_ptr[row + 1]], edges[0::2])
            np.testing.assert_array_equal(ends[row_ptr[row]:row_ptr[row + 1]], edges[1::2])


def test_select_into_overwrites_a_work_array_with_the_selection() -> None:
    from segmentation.components import run_components

    rng = np.random.default_rng(12)
    pieces = run_components(rng.random((6, 11, 13)) < 0.3)
    keep = rng.random(pieces.count) < 0.5
    work = np.ones((6, 11, 13), dtype=np.uint8)
    pieces.select_into(keep, work)
    np.testing.assert_array_equal(work.view(bool), pieces.select(keep))
    with pytest.raises(ValueError):
        pieces.select_into(keep, np.zeros((6, 11, 13), dtype=bool))


def test_well_compose_marks_exactly_the_voxels_it_fills() -> None:
    for seed, n_labels in ((13, 1), (14, 3)):
        labels = blob_labels(seed, (12, 14, 16), n_labels)
        added = np.zeros(labels.shape, dtype=bool)
        out, count = _well_compose(labels, added=added)
        assert count > 0
        np.testing.assert_array_equal(added, out != labels)
        assert count == int(added.sum())
