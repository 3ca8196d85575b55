"""Run-based connected pieces, per-slice hole filling and the body mask against scipy.ndimage."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from segmentation.body import body_mask
from segmentation.components import fill_slice_holes, run_components
from segmentation.islands import keep_at_points, keep_largest, remove_small
from segmentation.structuring import voxel_volume_mm3
from workstation.model import Volume


@pytest.mark.parametrize("connectivity", [6, 26])
def test_pieces_equal_scipy_label(connectivity: int) -> None:
    rng = np.random.default_rng(connectivity)
    structure = ndi.generate_binary_structure(3, 1 if connectivity == 6 else 3)
    for _ in range(25):
        shape = tuple(int(n) for n in rng.integers(1, 14, 3))
        mask = rng.random(shape) < rng.uniform(0.05, 0.9)
        labels, count = ndi.label(mask, structure=structure)
        pieces = run_components(mask, connectivity=connectivity)
        assert pieces.count == count
        np.testing.assert_array_equal(pieces.sizes, np.bincount(labels.ravel())[1:])  # same numbering
        for piece in range(min(count, 4)):
            keep = np.zeros(count, dtype=bool)
            keep[piece] = True
            np.testing.assert_array_equal(pieces.select(keep), labels == piece + 1)
        for k, j, i in np.argwhere(mask)[:5]:
            assert pieces.piece_at(k, j, i) == labels[k, j, i] - 1
        if (~mask).any():
            assert pieces.piece_at(*np.argwhere(~mask)[0]) == -1


def test_islands_equal_scipy_selection() -> None:
    rng = np.random.default_rng(5)
    mask = ndi.binary_opening(rng.random((20, 30, 25)) < 0.55)
    labels, _ = ndi.label(mask, structure=np.ones((3, 3, 3), bool))
    sizes = np.bincount(labels.ravel())[1:]
    spacing = (0.5, 0.8, 2.0)
    min_ml = float(np.median(sizes)) * voxel_volume_mm3(spacing) / 1000.0
    expected = np.isin(labels, np.flatnonzero(sizes * voxel_volume_mm3(spacing) / 1000.0 >= min_ml) + 1)
    np.testing.assert_array_equal(remove_small(mask, min_ml=min_ml, spacing_mm=spacing), expected)
    np.testing.assert_array_equal(keep_largest(mask, n=2), np.isin(labels, np.argsort(sizes)[::-1][:2] + 1))
    points = np.argwhere(mask)[[0, -1]]
    np.testing.assert_array_equal(keep_at_points(mask, points), np.isin(labels, labels[tuple(points.T)]))
    plane = mask[3]  # 2-D masks are accepted, as with ndimage.label
    labels_2d, _ = ndi.label(plane, structure=np.ones((3, 3), bool))
    np.testing.assert_array_equal(keep_largest(plane), labels_2d == np.argmax(np.bincount(labels_2d.ravel())[1:]) + 1)


def test_fill_slice_holes_equals_scipy_per_slice() -> None:
    rng = np.random.default_rng(2)
    for _ in range(10):
        shape = tuple(int(n) for n in rng.integers(1, 25, 3))
        mask = rng.random(shape) < rng.uniform(0.3, 0.8)
        expected = np.stack([ndi.binary_fill_holes(plane) for plane in mask])
        np.testing.assert_array_equal(fill_slice_holes(mask), expected)


def _scipy_body_mask(volume: Volume, threshold_hu: float = -400.0, detach_mm: float = 3.0,
                     min_part_ml: float = 20.0) -> np.ndarray:
    """The body mask written with scipy.ndimage (the implementation the numba kernels replaced)."""
    dense = volume.array > threshold_hu
    half = np.maximum(np.round(detach_mm / np.asarray(volume.spacing_mm[:2])), 1).astype(int)
    window = (1, 2 * half[1] + 1, 2 * half[0] + 1)
    opened = ndi.maximum_filter(ndi.minimum_filter(dense.view(np.uint8), size=window), size=window).astype(bool)
    labels, count = ndi.label(opened, structure=np.ones((3, 3, 3), dtype=bool))
    if count == 0:
        return np.zeros(volume.shape, dtype=bool)
    sizes_ml = np.bincount(labels.ravel())[1:] * voxel_volume_mm3(volume.spacing_mm) / 1000.0
    keep = np.zeros(count + 1, dtype=bool)
    keep[1:] = sizes_ml >= min(min_part_ml, sizes_ml.max())
    body = np.stack([ndi.binary_fill_holes(plane) for plane in keep[labels]])
    grown = ndi.maximum_filter(body.view(np.uint8), size=window).astype(bool)
    return grown & dense | body


def test_body_mask_equals_scipy_pipeline() -> None:
    rng = np.random.default_rng(4)
    for _ in range(12):
        shape = tuple(int(n) for n in rng.integers(2, 28, 3))
        hu = ndi.uniform_filter(np.where(rng.random(shape) < rng.uniform(0.3, 0.95), 40.0, -1000.0), 2)
        spacing = (float(rng.uniform(0.4, 2.0)), float(rng.uniform(0.4, 2.0)), float(rng.uniform(0.5, 3.0)))
        volume = Volume.from_geometry(hu.astype(np.int16), spacing_mm=spacing, modality="CT")
        min_ml = float(rng.uniform(0.001, 0.5))
        np.testing.assert_array_equal(body_mask(volume, min_part_ml=min_ml),
                                      _scipy_body_mask(volume, min_part_ml=min_ml))
    # A trunk on a table: the table is detached by the opening and left out.
    hu = np.full((6, 60, 70), -1000, np.int16)
    yy, xx = np.mgrid[0:60, 0:70]
    hu[:, ((yy - 25) / 18.0) ** 2 + ((xx - 35) / 28.0) ** 2 <= 1] = 40
    hu[:, 25:30, 30:40] = -800  # lung: a hole, filled
    hu[:, 50:52, 5:65] = 300  # table, 2 voxels thick
    volume = Volume.from_geometry(hu, spacing_mm=(1.0, 1.0, 2.0), modality="CT")
    body = body_mask(volume)
    assert body[:, 27, 35].all() and not body[:, 51, 35].any()
    np.testing.assert_array_equal(body, _scipy_body_mask(volume))
