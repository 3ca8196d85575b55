"""Surface clean-up before TetGen: cap flips, short-edge collapses, speck detection, on hand-built surfaces."""

from __future__ import annotations

import math

import numpy as np
import pytest
import pyvista as pv

from mechanics.meshing import check_surface, enclosed_volume_mm3
from mechanics.surface_cleanup import collapse_short_edges, flip_edges, small_components

SCALE_MM = 40.0


def folded_cap_pyramid(lift_mm: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """A square (side 40 mm) on top of a pyramid, triangulated with a folded cap.

    M lies 0.85 mm from the diagonal AC on D's side and ``lift_mm`` above the square, so the triangle
    (C, A, M) is a cap (angle ~176 deg at M) folded over (A, C, D): the surface makes a wedge of
    atan(lift / 0.85 mm) along AC, what ACVD left on the sample liver.
    """
    a, b, c, d = (0.0, 0.0, 0.0), (1.0, 0.0, 0.0), (1.0, 1.0, 0.0), (0.0, 1.0, 0.0)
    m = (0.485, 0.515, lift_mm / SCALE_MM)
    e = (0.5, 0.5, -0.8)
    points = np.array([a, b, c, d, m, e]) * SCALE_MM
    triangles = np.array([(0, 1, 4), (1, 2, 4), (2, 0, 4), (0, 2, 3), (1, 0, 5), (2, 1, 5), (3, 2, 5), (0, 3, 5)])
    return points, triangles


def edges_of(triangles: np.ndarray) -> set[tuple[int, int]]:
    rows = np.asarray(triangles).tolist()
    return {(min(p, q), max(p, q)) for t in rows for p, q in zip(t, t[1:] + t[:1], strict=True)}


def test_the_folded_cap_is_flipped_to_the_other_diagonal() -> None:
    points, triangles = folded_cap_pyramid()
    assert check_surface(points, triangles).closed
    flipped, flips = flip_edges(points, triangles)
    assert flips == 1
    assert (3, 4) not in edges_of(triangles) and (3, 4) in edges_of(flipped)  # AC (0-2) replaced by MD (3-4)
    assert (0, 2) in edges_of(triangles) and (0, 2) not in edges_of(flipped)
    assert check_surface(points, flipped).closed  # still closed and consistently wound
    # The volume changes by exactly the flat tetrahedron (A, C, M, D) between the two diagonals.
    a, c, m, d = points[[0, 2, 4, 3]]
    wedge = abs(np.dot(np.cross(c - a, m - a), d - a)) / 6.0
    assert abs(enclosed_volume_mm3(points, flipped) - enclosed_volume_mm3(points, triangles)) == pytest.approx(wedge)
    assert wedge < 1e-3 * enclosed_volume_mm3(points, triangles)  # 2.7 of 17,069 mm^3


def test_flips_leave_a_delaunay_surface_and_ridges_alone() -> None:
    """A triangulated box: every pair across a face diagonal is Delaunay (90 + 90 deg), every other edge a ridge."""
    box = pv.Box(bounds=(-20, 20, -15, 15, -10, 10), level=2).triangulate()
    points = np.asarray(box.points, dtype=float)
    triangles = np.asarray(box.faces).reshape(-1, 4)[:, 1:]
    flipped, flips = flip_edges(points, triangles)
    assert flips == 0 and np.array_equal(flipped, triangles)
    # A sphere's edges across its creases stay: the flip would fold or cut the surface (coplanarity test).
    ridge = pv.Icosphere(radius=10.0, nsub=0)
    points, triangles = np.asarray(ridge.points), np.asarray(ridge.faces).reshape(-1, 4)[:, 1:]
    assert flip_edges(points, triangles)[1] == 0


def test_a_short_edge_is_collapsed_and_the_surface_stays_closed() -> None:
    sphere = pv.Icosphere(radius=20.0, nsub=3)
    points = np.asarray(sphere.points, dtype=float).copy()
    triangles = np.asarray(sphere.faces).reshape(-1, 4)[:, 1:]
    a, b = triangles[0, :2]
    points[b] = points[a] + 0.02 * (points[b] - points[a])  # a needle: edge 2% of its neighbours'
    new_points, new_triangles, collapses = collapse_short_edges(points, triangles, min_edge_mm=0.5)
    assert collapses == 1
    assert (len(new_points), len(new_triangles)) == (len(points) - 1, len(triangles) - 2)
    assert check_surface(new_points, new_triangles).closed
    euler = len(new_points) - len(edges_of(new_triangles)) + len(new_triangles)
    assert euler == 2  # still a sphere
    assert enclosed_volume_mm3(new_points, new_triangles) == pytest.approx(enclosed_volume_mm3(points, triangles),
                                                                           rel=1e-3)


def test_a_collapse_that_would_pinch_the_surface_is_refused() -> None:
    """Every edge of a tetrahedron fails the link condition (collapsing it leaves two triangles back to back)."""
    points = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    triangles = np.array([[0, 2, 1], [0, 1, 3], [1, 2, 3], [0, 3, 2]])
    new_points, new_triangles, collapses = collapse_short_edges(points, triangles, min_edge_mm=10.0)
    assert collapses == 0 and np.array_equal(new_triangles, triangles) and len(new_points) == 4


def test_a_needle_triangles_short_edge_is_collapsed_when_asked() -> None:
    sphere = pv.Icosphere(radius=20.0, nsub=3)
    points = np.asarray(sphere.points, dtype=float).copy()
    triangles = np.asarray(sphere.faces).reshape(-1, 4)[:, 1:]
    a, b = triangles[0, :2]
    points[b] = points[a] + 0.2 * (points[b] - points[a])  # edge ~0.5 mm next to ~2.5 mm ones
    assert collapse_short_edges(points, triangles, min_edge_mm=0.1)[2] == 0
    _, _, collapses = collapse_short_edges(points, triangles, min_edge_mm=0.1, sliver_angle_deg=15.0,
                                           max_sliver_edge_mm=1.0)
    assert collapses == 1


def test_small_components_are_found_by_volume_and_size() -> None:
    big = pv.Icosphere(radius=20.0, nsub=2)
    small = pv.Icosphere(radius=1.0, nsub=2, center=(50.0, 0, 0))  # 4.2 mm^3
    both = big.merge(small)
    points, triangles = np.asarray(both.points), np.asarray(both.faces).reshape(-1, 4)[:, 1:]
    mask = small_components(points, triangles, min_volume_mm3=10.0)
    assert mask.sum() == small.n_cells
    assert np.all(points[triangles[mask]][..., 0] > 40)
    # A void (inward winding, negative volume) counts by its size too.
    void = np.vstack([triangles[~mask], triangles[mask][:, ::-1]])
    assert small_components(points, void, min_volume_mm3=10.0).sum() == small.n_cells
    assert small_components(points, triangles, min_volume_mm3=0.9 * 4 / 3 * math.pi).sum() == 0
