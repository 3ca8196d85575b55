"""Cameras in LPS: standard views, probe's-eye, fly-through, orbit, and saving them in a case."""

from __future__ import annotations

import numpy as np
import pytest

from tests.workstation.render.phantom import TRAJECTORY, phantom_case
from workstation.bundle import load_case, save_case
from workstation.errors import InputError
from workstation.render.cameras import (
    CameraPose,
    direction_letters,
    flythrough_poses,
    orbit_poses,
    probe_view,
    standard_view,
    trajectory_flythrough,
)

BOUNDS = (-50.0, 50.0, -30.0, 30.0, -100.0, 100.0)


@pytest.mark.parametrize(("view", "side", "letters"), [
    ("anterior", (0, -1, 0), {"right": "L", "left": "R", "top": "S", "bottom": "I"}),
    ("posterior", (0, 1, 0), {"right": "R", "left": "L", "top": "S", "bottom": "I"}),
    ("left", (1, 0, 0), {"right": "P", "left": "A", "top": "S", "bottom": "I"}),
    ("right", (-1, 0, 0), {"right": "A", "left": "P", "top": "S", "bottom": "I"}),
    ("superior", (0, 0, 1), {"right": "R", "left": "L", "top": "A", "bottom": "P"}),
    ("inferior", (0, 0, -1), {"right": "L", "left": "R", "top": "A", "bottom": "P"}),
])
def test_standard_views_stand_on_the_named_side(view: str, side: tuple[int, int, int],
                                                letters: dict[str, str]) -> None:
    pose = standard_view(view, BOUNDS)
    offset = np.subtract(pose.position_lps, pose.focal_point_lps)
    np.testing.assert_allclose(offset / np.linalg.norm(offset), side, atol=1e-12)
    np.testing.assert_allclose(pose.focal_point_lps, (0, 0, 0))
    assert pose.edge_letters() == letters
    assert pose.parallel_scale_mm is not None


def test_standard_view_fits_the_box() -> None:
    # Anterior view of a box 100 wide (x) and 200 tall (z) at aspect 4:3: the height decides.
    pose = standard_view("anterior", BOUNDS, aspect=4 / 3, margin=1.0)
    assert pose.parallel_scale_mm == pytest.approx(100.0)
    wide = standard_view("anterior", (-400, 400, -30, 30, -10, 10), aspect=2.0, margin=1.0)
    assert wide.parallel_scale_mm == pytest.approx(200.0)  # width 800 / aspect 2 / 2


def test_probe_view_looks_from_entry_to_target() -> None:
    pose = probe_view(TRAJECTORY)
    np.testing.assert_allclose(pose.position_lps, TRAJECTORY.entry_lps)
    np.testing.assert_allclose(pose.focal_point_lps, TRAJECTORY.target_lps)
    assert abs(np.dot(pose.direction, pose.view_up)) < 1e-12


def test_flythrough_moves_at_constant_speed_along_the_path_looking_ahead() -> None:
    path = np.array([[0.0, 0.0, 0.0], [0.0, 30.0, 0.0], [40.0, 30.0, 0.0]])
    poses = flythrough_poses(path, 15, look_ahead_mm=5.0)
    positions = np.array([p.position_lps for p in poses])
    np.testing.assert_allclose(positions[0], path[0])
    np.testing.assert_allclose(positions[-1], path[-1], atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(np.diff(positions, axis=0), axis=1), 5.0, atol=1e-9)
    assert np.allclose(poses[0].direction, [0, 1, 0]) and np.allclose(poses[-1].direction, [1, 0, 0])


def test_trajectory_flythrough_approaches_then_reaches_the_target() -> None:
    poses = trajectory_flythrough(TRAJECTORY, 20)
    direction = np.subtract(TRAJECTORY.target_lps, TRAJECTORY.entry_lps) / TRAJECTORY.length_mm
    np.testing.assert_allclose(poses[0].position_lps, np.asarray(TRAJECTORY.entry_lps) - direction *
                               TRAJECTORY.length_mm)
    np.testing.assert_allclose(poses[-1].position_lps, TRAJECTORY.target_lps, atol=1e-9)
    for pose in poses:
        np.testing.assert_allclose(pose.direction, direction, atol=1e-9)


def test_orbit_circles_at_one_distance_starting_in_front() -> None:
    poses = orbit_poses(BOUNDS, 12, elevation_deg=0.0)
    center = np.asarray(poses[0].focal_point_lps)
    distances = [np.linalg.norm(np.subtract(p.position_lps, center)) for p in poses]
    np.testing.assert_allclose(distances, distances[0])
    np.testing.assert_allclose(-poses[0].direction, (0, -1, 0), atol=1e-12)
    np.testing.assert_allclose(-poses[3].direction, (1, 0, 0), atol=1e-12)  # a quarter turn: at the left


def test_direction_letters() -> None:
    assert direction_letters((1, 0, 0)) == "L"
    assert direction_letters((0, -1, 1)) in ("AS", "SA")
    assert direction_letters((0.1, 0, -1)) == "I"


def test_camera_saved_in_the_case_bundle(tmp_path) -> None:
    case = phantom_case()
    pose = CameraPose((10, -200, 30), (0, 0, 0), view_up=(0, 0, 1), view_angle_deg=25)
    case.add_record(pose.to_record("my-view"))
    save_case(case, tmp_path / "case")
    loaded = load_case(tmp_path / "case")
    again = CameraPose.from_meta(loaded.record("camera", "my-view").meta)
    assert again == pose


def test_bad_cameras_are_input_errors() -> None:
    with pytest.raises(InputError, match="coincide"):
        CameraPose((1, 2, 3), (1, 2, 3))
    with pytest.raises(InputError, match="view_angle_deg"):
        CameraPose((0, 0, 0), (0, 1, 0), view_angle_deg=0)
    with pytest.raises(InputError, match="--view"):
        standard_view("sideways", BOUNDS)
    with pytest.raises(InputError, match="two LPS points"):
        flythrough_poses([[0, 0, 0]], 5)
