"""Tool clearance, entry angle and resection analysis against analytic geometry; proposals ranking."""

from __future__ import annotations

import numpy as np
import pytest

from tests.workstation.planning.test_surface_index import box_mesh, sphere_mesh
from workstation.model import LabelMap, ResectionPlane, Segment, Trajectory
from workstation.planning.planner import entry_points_in_sphere, propose_trajectories
from workstation.planning.safety import SafetyChecker, resection_analysis


def test_tool_clearance_to_sphere_plane_and_box() -> None:
    checker = SafetyChecker({
        "vessel": sphere_mesh((0, 30, 0), 10.0),           # sphere: axis passes 30 mm from its centre
        "cord": box_mesh((-50, -50, -30), (50, 50, -20)),  # a slab whose top face is the plane z = -20
        "nerve": box_mesh((-5, -5, 5), (5, 5, 15)),        # a box the axis runs through
    })
    tool = Trajectory("t", entry_lps=(-40, 0, 0), target_lps=(40, 0, 0), tool_diameter_mm=4.0)
    result = checker.check(tool, margin_mm=3.0)
    by = {s.segment: s for s in result.structures}
    assert by["vessel"].min_distance_mm == pytest.approx(20.0, abs=0.01)     # 30 - 10 (faceting < 0.01)
    assert by["vessel"].clearance_mm == pytest.approx(18.0, abs=0.01)        # minus the 2 mm tool radius
    np.testing.assert_allclose(by["vessel"].closest_point_tool_lps, [0, 0, 0], atol=0.05)
    np.testing.assert_allclose(by["vessel"].closest_point_structure_lps, [0, 20, 0], atol=0.05)
    assert by["cord"].min_distance_mm == pytest.approx(20.0, abs=1e-9)       # plane z = -20, exact
    assert by["cord"].clearance_mm == pytest.approx(18.0, abs=1e-9)
    assert by["nerve"].min_distance_mm == pytest.approx(5.0, abs=1e-9)      # box bottom at z = 5
    assert not result.violations
    near = Trajectory("near", entry_lps=(-40, 0, 2), target_lps=(40, 0, 2), tool_diameter_mm=4.0)
    r = checker.check(near, margin_mm=3.0)
    nerve = next(s for s in r.structures if s.segment == "nerve")
    assert nerve.clearance_mm == pytest.approx(1.0, abs=1e-9) and nerve.violated
    assert [s.segment for s in r.violations] == ["nerve"] and not r.safe
    through = Trajectory("through", entry_lps=(0, 0, 30), target_lps=(0, 0, 10), tool_diameter_mm=2.0)
    r = checker.check(through, margin_mm=0.0)
    nerve = next(s for s in r.structures if s.segment == "nerve")
    assert nerve.crosses and nerve.min_distance_mm == 0.0 and nerve.clearance_mm == -1.0 and nerve.violated
    np.testing.assert_allclose(nerve.closest_point_tool_lps, [0, 0, 15], atol=1e-9)
    inside = Trajectory("inside", entry_lps=(0, 0, 9), target_lps=(0, 0, 11), tool_diameter_mm=1.0)
    nerve = next(s for s in checker.check(inside).structures if s.segment == "nerve")
    assert nerve.inside and nerve.min_distance_mm == pytest.approx(-4.0) and nerve.violated
    meta = result.to_meta()
    assert set(meta["structures"][0]) >= {"segment", "min_distance_mm", "clearance_mm", "closest_point_tool_lps",
                                          "closest_point_structure_lps", "violated"}


def test_entry_angle_to_a_flat_skin() -> None:
    skin = box_mesh((-100, -100, -80), (100, 100, 0))  # skin is the top face z = 0
    checker = SafetyChecker({}, entry_surface=skin)
    for angle in (0.0, 30.0, 60.0):
        a = np.radians(angle)
        tool = Trajectory("t", entry_lps=(0, 0, 0), target_lps=(50 * np.sin(a), 0, -50 * np.cos(a)))
        assert checker.check(tool).entry_angle_deg == pytest.approx(angle, abs=1e-6)


def test_resection_volumes_and_target_margin() -> None:
    # 1 x 1 x 2 mm voxels; an "organ" box of 20 x 20 x 10 voxels and a "tumour" of 4 x 4 x 2 inside it
    labels = np.zeros((20, 40, 40), np.uint8)
    labels[5:15, 10:30, 10:30] = 1
    labels[8:10, 20:24, 22:26] = 2
    lm = LabelMap(labels, np.diag([1.0, 1.0, 2.0, 1.0]), segments=(Segment(1, "organ"), Segment(2, "tumour")))
    # keep x < 19.5 (normal -x, kept side +1): removes columns i = 20..29 of the organ and the whole tumour
    plane = ResectionPlane("cut", origin_lps=(19.5, 0, 0), normal_lps=(-1, 0, 0), kept_side=1)
    r = resection_analysis(plane, lm, target="tumour")
    assert r.removed_ml["organ"] == pytest.approx((10 * 20 * 10 - 2 * 4 * 4) * 2 / 1000)
    assert r.removed_ml["tumour"] == pytest.approx(2 * 4 * 4 * 2 / 1000)
    assert r.total_ml["organ"] == pytest.approx((10 * 20 * 20 - 2 * 4 * 4) * 2 / 1000)
    assert r.target_margin_mm == pytest.approx(22 - 19.5)  # first tumour voxel centre at x = 22
    flipped = resection_analysis(ResectionPlane("c2", (23.5, 0, 0), (1, 0, 0), kept_side=-1), lm, target="tumour")
    assert flipped.target_margin_mm == pytest.approx(-(25 - 23.5))  # part of the tumour stays


def test_proposals_ranked_by_clearance() -> None:
    # target at the origin; vessels (spheres r = 8) 30 mm away at 0, 90, 180 and 240 degrees in the z = 0
    # plane: the widest gap is 240..360, so the best path leaves at 300 degrees
    vessels = {f"v{a}": sphere_mesh((30 * np.cos(np.radians(a)), 30 * np.sin(np.radians(a)), 0), 8.0,
                                    subdivisions=4) for a in (0, 90, 180, 240)}
    checker = SafetyChecker(vessels)
    angles = np.radians(np.arange(0, 360, 15))
    entries = np.stack([60 * np.cos(angles), 60 * np.sin(angles), np.zeros_like(angles)], axis=1)
    proposals = propose_trajectories((0, 0, 0), entries, checker, tool_diameter_mm=2.0, margin_mm=2.0, top=3)
    assert len(proposals) == 3
    clearances = [p.min_clearance_mm for p in proposals]
    assert clearances == sorted(clearances, reverse=True)
    np.testing.assert_allclose(proposals[0].trajectory.entry_lps, entries[20], atol=1e-9)  # 300 degrees
    # analytic: 30 sin(60 deg) - 8 - 1 (the faceted spheres lie inside the true ones by < 0.1 mm)
    assert 30 * np.sin(np.radians(60)) - 9 <= proposals[0].min_clearance_mm <= 30 * np.sin(np.radians(60)) - 9 + 0.1
    assert proposals[0].limiting_segment in ("v0", "v240") and proposals[0].safety.safe
    worst = propose_trajectories((0, 0, 0), entries, checker, tool_diameter_mm=2.0, top=len(entries))[-1]
    assert worst.min_clearance_mm < 0 and not worst.safety.safe  # a path through a vessel comes last


def test_entry_points_in_sphere_and_bad_region() -> None:
    skin = box_mesh((-100, -100, -80), (100, 100, 0), subdivisions=5)
    pts = entry_points_in_sphere(skin, (0, 0, 0), 20.0, max_points=50)
    assert 0 < len(pts) <= 80 and np.all(np.linalg.norm(pts, axis=1) <= 20.0)
    from workstation.errors import InputError

    with pytest.raises(InputError, match="no point"):
        entry_points_in_sphere(skin, (0, 0, 500), 5.0)
