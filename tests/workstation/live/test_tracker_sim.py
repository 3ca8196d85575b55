"""The simulated tracker's executions: known geometry of the deviations it is asked for."""

from __future__ import annotations

import numpy as np
import pytest

from tests.workstation.live.phantom import phantom_case, registration_matrix
from workstation.live.pose import angle_between_deg, tips_and_axes
from workstation.live.tracker_sim import REST_FRACTION, expected_deviations, simulate_execution


def test_noise_free_execution_follows_the_plan() -> None:
    trajectory = phantom_case().plan.trajectories[0]
    ex = simulate_execution(trajectory, rate_hz=50, duration_s=2.0)
    assert len(ex.t_s) == 101 and ex.t_s[1] == pytest.approx(0.02)
    tips, axes = tips_and_axes(ex.poses)
    np.testing.assert_allclose(tips[0], trajectory.entry_lps, atol=1e-12)
    np.testing.assert_allclose(tips[-1], trajectory.target_lps, atol=1e-12)
    resting = ex.t_s <= REST_FRACTION * 2.0
    np.testing.assert_allclose(tips[resting], np.broadcast_to(trajectory.entry_lps, tips[resting].shape))
    np.testing.assert_allclose(axes, np.broadcast_to([0.0, 0.0, 1.0], axes.shape), atol=1e-12)
    for pose in ex.poses:  # proper rigid poses
        np.testing.assert_allclose(pose[:3, :3].T @ pose[:3, :3], np.eye(3), atol=1e-12)
        assert np.linalg.det(pose[:3, :3]) == pytest.approx(1.0)
    assert ex.insertion_time_s == pytest.approx(1.6)


@pytest.mark.parametrize("pivot", ["target", "entry"])
def test_angle_about_a_pivot_and_offset(pivot: str) -> None:
    trajectory = phantom_case().plan.trajectories[0]
    ex = simulate_execution(trajectory, angle_deg=10.0, pivot=pivot, offset_mm=(1.0, 2.0, 2.0))
    fixed = np.asarray(trajectory.target_lps if pivot == "target" else trajectory.entry_lps)
    moved = ex.true_target_lps if pivot == "entry" else ex.true_entry_lps
    kept = ex.true_target_lps if pivot == "target" else ex.true_entry_lps
    np.testing.assert_allclose(kept, fixed + (1.0, 2.0, 2.0), atol=1e-9)
    # the other end moved on a circle of radius 100 mm by a 10 degree chord, plus the offset
    assert np.linalg.norm(moved - (1.0, 2.0, 2.0) - np.asarray(
        trajectory.entry_lps if pivot == "target" else trajectory.target_lps)) == pytest.approx(
        2 * 100.0 * np.sin(np.radians(5.0)))
    _, axes = tips_and_axes(ex.poses)
    np.testing.assert_allclose(angle_between_deg(axes, (0, 0, 1)), 10.0, atol=1e-9)
    truth = expected_deviations(trajectory, ex)
    assert truth["angle_deg"] == pytest.approx(10.0)


def test_tracker_frame_noise_and_bad_parameters() -> None:
    trajectory = phantom_case().plan.trajectories[0]
    plain = simulate_execution(trajectory, noise_mm=0.5, seed=1)
    moved = simulate_execution(trajectory, noise_mm=0.5, seed=1, to_tracker=registration_matrix())
    np.testing.assert_allclose(moved.poses, registration_matrix() @ plain.poses, atol=1e-9)
    clean = simulate_execution(trajectory)
    residual = plain.poses[:, :3, 3] - clean.poses[:, :3, 3]
    assert np.std(residual) == pytest.approx(0.5, rel=0.1) and abs(np.mean(residual)) < 0.1
    for bad in ({"rate_hz": 0}, {"duration_s": -1}, {"noise_mm": -0.1}, {"pivot": "middle"}):
        with pytest.raises(ValueError):
            simulate_execution(trajectory, **bad)
