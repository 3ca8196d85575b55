"""Outline rasterisation and level tracing (``segmentation.editing``) against independent references."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.path import Path
from scipy import ndimage

from segmentation.editing import polygon_mask, trace_region


def _centres_inside(vertices: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]]
    return Path(vertices).contains_points(np.stack([rows.ravel(), cols.ravel()], 1)).reshape(shape)


def test_polygon_mask_takes_the_pixel_centres_inside_the_polygon() -> None:
    rng = np.random.default_rng(5)
    for _ in range(300):  # vertices off the grid: no centre on an edge, so matplotlib's answer is exact
        shape = (int(rng.integers(1, 40)), int(rng.integers(1, 40)))
        vertices = rng.uniform(-10.0, 50.0, (int(rng.integers(3, 30)), 2))  # self-intersecting ones too
        np.testing.assert_array_equal(polygon_mask(vertices, shape), _centres_inside(vertices, shape))
    # a long freehand loop, partly outside the image
    angle = np.linspace(0.0, 2 * np.pi, 5000, endpoint=False)
    loop = np.stack([40 + 60 * np.sin(angle) + rng.normal(0, 0.3, angle.size), 50 + 45 * np.cos(angle)], 1)
    np.testing.assert_array_equal(polygon_mask(loop, (90, 100)), _centres_inside(loop, (90, 100)))


def test_centres_on_the_outline_are_decided_the_same_whichever_way_round_it_runs() -> None:
    # half-open: a square from centre to centre holds its low rows and columns, not its high ones
    square = np.array([[2.0, 3.0], [2.0, 7.0], [6.0, 7.0], [6.0, 3.0]])
    expected = np.zeros((10, 10), dtype=bool)
    expected[2:6, 3:7] = True
    for vertices in (square, square[::-1]):
        np.testing.assert_array_equal(polygon_mask(vertices, (10, 10)), expected)
    # crossings that land exactly on centres (one-decimal vertices): the same pixels reversed
    triangle = np.array([[0.6, 4.7], [6.8, 1.6], [5.0, 4.6]])  # a crossing at (4, 3) exactly
    np.testing.assert_array_equal(polygon_mask(triangle, (12, 12)), polygon_mask(triangle[::-1], (12, 12)))
    rng = np.random.default_rng(6)
    for _ in range(2000):
        vertices = rng.integers(0, 120, (int(rng.integers(3, 12)), 2)) / 10.0
        np.testing.assert_array_equal(polygon_mask(vertices, (12, 12)), polygon_mask(vertices[::-1], (12, 12)))
    with pytest.raises(ValueError, match="finite"):
        polygon_mask(np.array([[0.0, 0.0], [np.nan, 3.0], [3.0, 3.0]]), (5, 5))


def test_level_tracing_is_the_seeds_iso_contour_piece_with_its_holes_filled() -> None:
    rng = np.random.default_rng(7)
    for _ in range(200):
        image = ndimage.gaussian_filter(rng.normal(size=(40, 50)), 2.0)
        seed = (int(rng.integers(0, 40)), int(rng.integers(0, 50)))
        darker = bool(rng.integers(0, 2))
        level = image[seed]
        pieces, _ = ndimage.label(image <= level if darker else image >= level)
        np.testing.assert_array_equal(trace_region(image, seed, darker=darker),
                                      ndimage.binary_fill_holes(pieces == pieces[seed]))
    with pytest.raises(ValueError, match="finite"):
        trace_region(np.full((4, 4), np.nan), (1, 1))
