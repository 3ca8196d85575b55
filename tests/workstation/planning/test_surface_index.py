"""Exact segment/point-to-surface distances against analytic geometry and brute force."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from workstation.model import SurfaceMesh
from workstation.planning.distance_kernels import segment_to_segments, segment_to_triangles
from workstation.planning.surface_index import SurfaceIndex


def box_mesh(lo: tuple[float, float, float], hi: tuple[float, float, float], *, subdivisions: int = 3) -> SurfaceMesh:
    """An axis-aligned box (exact polyhedron), finely triangulated, outward oriented."""
    lo_a, hi_a = np.asarray(lo, float), np.asarray(hi, float)
    box = trimesh.creation.box(extents=hi_a - lo_a)
    box.apply_translation((lo_a + hi_a) / 2)
    for _ in range(subdivisions):
        box = box.subdivide()
    return SurfaceMesh(box.vertices, box.faces, name="box")


def sphere_mesh(centre: tuple[float, float, float], radius: float, *, subdivisions: int = 6) -> SurfaceMesh:
    s = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return SurfaceMesh(s.vertices + np.asarray(centre), s.faces, name="sphere")


def test_segment_segment_known_cases() -> None:
    p0, p1 = np.array([0.0, 0, 0]), np.array([10.0, 0, 0])
    q0 = np.array([[5.0, 3, -4], [12.0, 0, 1], [5.0, 2, 0]])
    q1 = np.array([[5.0, 3, 4], [14.0, 0, 1], [5.0, 2, 0]])  # crossing above, beyond the end, a point
    a, b = segment_to_segments(p0, p1, q0, q1)
    np.testing.assert_allclose(np.linalg.norm(a - b, axis=1), [3.0, np.hypot(2, 1), 2.0], atol=1e-12)
    np.testing.assert_allclose(a, [[5, 0, 0], [10, 0, 0], [5, 0, 0]], atol=1e-12)


def test_segment_triangle_crossing_and_parallel() -> None:
    tri = np.array([[[0.0, 0, 0], [10, 0, 0], [0, 10, 0]]])
    d, on_seg, on_tri = segment_to_triangles(np.array([2.0, 2, -3]), np.array([2.0, 2, 5]), tri)
    assert d[0] == 0.0
    np.testing.assert_allclose(on_seg[0], [2, 2, 0], atol=1e-12)
    d, on_seg, on_tri = segment_to_triangles(np.array([1.0, 1, 4]), np.array([3.0, 3, 4]), tri)
    assert d[0] == pytest.approx(4.0)
    np.testing.assert_allclose(on_tri[0][2], 0.0, atol=1e-12)


def test_axis_parallel_to_box_face_has_the_analytic_distance() -> None:
    index = SurfaceIndex(box_mesh((0, 0, 0), (40, 30, 20)))
    hit = index.segment_distance([5, 10, 27.5], [35, 20, 27.5])  # 7.5 mm above the top face
    assert hit.distance_mm == pytest.approx(7.5, abs=1e-9)
    assert hit.point_on_surface_lps[2] == pytest.approx(20.0, abs=1e-9)
    assert not hit.crosses
    # a corner: closest from (45, 35, 25) to the box corner (40, 30, 20)
    hit = index.segment_distance([45, 35, 25], [60, 50, 40])
    assert hit.distance_mm == pytest.approx(np.sqrt(75.0), abs=1e-9)
    np.testing.assert_allclose(hit.point_on_surface_lps, [40, 30, 20], atol=1e-9)
    # crossing the box wall
    hit = index.segment_distance([20, 15, 10], [20, 15, 50])
    assert hit.crosses and hit.distance_mm == 0.0
    np.testing.assert_allclose(hit.point_on_segment_lps, [20, 15, 20], atol=1e-9)


def test_sphere_distances_match_the_analytic_sphere() -> None:
    centre, radius = np.array([10.0, -20.0, 5.0]), 25.0
    index = SurfaceIndex(sphere_mesh(tuple(centre), radius))
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = centre + rng.uniform(-80, 80, 3)
        b = centre + rng.uniform(-80, 80, 3)
        # analytic: distance of the segment to the centre, minus the radius (when the segment stays outside)
        d = b - a
        t = np.clip((centre - a) @ d / (d @ d), 0, 1)
        axis_to_centre = np.linalg.norm(a + t * d - centre)
        far_end = max(np.linalg.norm(a - centre), np.linalg.norm(b - centre))
        hit = index.segment_distance(a, b)
        if axis_to_centre >= radius:
            # the faceted sphere lies inside the true one by at most its sagitta (< 0.01 mm here)
            assert axis_to_centre - radius - 1e-9 <= hit.distance_mm <= axis_to_centre - radius + 0.01
        elif far_end > radius:
            assert hit.crosses
        np.testing.assert_allclose(np.linalg.norm(hit.point_on_surface_lps - centre), radius, atol=0.01)


def test_pruned_search_equals_brute_force_on_an_irregular_surface() -> None:
    rng = np.random.default_rng(5)
    s = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
    bumps = 1.0 + 0.25 * np.sin(3 * s.vertices[:, 0]) * np.cos(2 * s.vertices[:, 1])
    mesh = SurfaceMesh(s.vertices * bumps[:, None] * [30, 20, 15], s.faces)
    index = SurfaceIndex(mesh)
    for _ in range(40):
        a, b = rng.uniform(-70, 70, (2, 3))
        hit = index.segment_distance(a, b)
        brute, _, _ = segment_to_triangles(a, b, index.triangles)
        assert hit.distance_mm == pytest.approx(float(brute.min()), abs=1e-9)
    points = rng.uniform(-50, 50, (200, 3))
    dist, closest, _ = index.closest_points(points)
    brute = [np.min(np.linalg.norm(np.asarray(trimesh.triangles.closest_point(index.triangles, np.repeat(p[None],
             len(index.triangles), 0))) - p, axis=1)) for p in points[:20]]
    np.testing.assert_allclose(dist[:20], brute, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(closest - points, axis=1), dist, atol=1e-9)


def test_contains_inside_and_outside() -> None:
    index = SurfaceIndex(sphere_mesh((0, 0, 0), 10.0, subdivisions=4))
    inside = index.contains([[0, 0, 0], [9.5, 0, 0], [0, 0, -9.0], [10.5, 0, 0], [30, 30, 30], [0, 0, 12]])
    assert inside.tolist() == [True, True, True, False, False, False]
    box = SurfaceIndex(box_mesh((0, 0, 0), (10, 10, 10), subdivisions=1))
    # closest feature a vertex or an edge: the pseudo-normal must still decide correctly
    assert box.contains([[9.9, 9.9, 9.9], [10.1, 10.1, 10.1], [9.95, 9.95, 5], [10.05, 10.05, 5]]).tolist() == [
        True, False, True, False]
