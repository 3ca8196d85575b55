"""Robot reachability with roboticstoolbox arm models (Panda, UR5) placed at a base pose."""

from __future__ import annotations

import numpy as np
import pytest

from workstation.errors import InputError
from workstation.export.tool_pose import trajectory_pose
from workstation.model import Plan, Trajectory
from workstation.planning import reachability as reach

# Base at 100, -400, -900 mm (image LPS), turned 90 deg about z: the robot's +x is LPS +y.
BASE = reach.parse_base_pose("100,-400,-900:0,0,90")


def in_front(distance_mm: float, *, height_mm: float = 250.0) -> Trajectory:
    """A downward (robot -z) insertion ``distance_mm`` in front of the base (robot +x = LPS +y)."""
    target = BASE[:3, 3] + np.array([0.0, distance_mm, height_mm])
    return Trajectory(f"at {distance_mm:.0f} mm", target + (0.0, 0.0, 60.0), target, tool_diameter_mm=3.0)


def test_parse_base_pose() -> None:
    assert np.allclose(BASE[:3, 0], [0, 1, 0]) and np.allclose(BASE[:3, 3], [100, -400, -900])
    assert np.allclose(reach.parse_base_pose("1,2,3"), [[1, 0, 0, 1], [0, 1, 0, 2], [0, 0, 1, 3], [0, 0, 0, 1]])
    for bad in ("1,2", "1,2,3:4", "a,b,c", "1,2,nan"):
        with pytest.raises(InputError, match="--base"):
            reach.parse_base_pose(bad)


@pytest.mark.parametrize("robot", ["panda", "ur5"])
def test_near_reachable_far_unreachable(robot) -> None:
    import roboticstoolbox as rtb

    plan = Plan(trajectories=(in_front(450.0), in_front(2500.0)))
    near, far = reach.check_reachability(plan, robot=robot, base_pose_mm=BASE, tool_length_mm=100.0)
    assert near.reachable and near.reason == "" and len(near.joint_positions_deg) == 3
    assert near.max_tool_tip_error_mm < 0.01
    assert far.reason.startswith("out of workspace") and not far.reachable
    assert far.max_distance_from_shoulder_mm > far.reach_mm > 800
    # The joint solutions really put the tool tip on the path with the tool axis along it.
    model = rtb.models.Panda() if robot == "panda" else rtb.models.DH.UR5()
    qlim = np.degrees(model.qlim)
    t = plan.trajectories[0]
    tcp_pose = trajectory_pose(t.entry_lps, t.target_lps)
    for f, q_deg in zip(np.linspace(0, 1, 3), near.joint_positions_deg, strict=True):
        assert np.all(qlim[0] - 1e-6 <= q_deg) and np.all(np.array(q_deg) <= qlim[1] + 1e-6)
        flange = (model.fkine(np.radians(q_deg), end="panda_link8") if robot == "panda"
                  else model.fkine(np.radians(q_deg))).A
        tip_m = flange[:3, :3] @ [0, 0, 0.1] + flange[:3, 3]
        tip_mm = BASE[:3, :3] @ (tip_m * 1000.0) + BASE[:3, 3]
        expected = np.asarray(t.entry_lps) + f * np.subtract(t.target_lps, t.entry_lps)
        assert np.linalg.norm(tip_mm - expected) < 0.01  # mm
        axis = BASE[:3, :3] @ flange[:3, 2]
        assert np.dot(axis, tcp_pose[:3, 2]) > 1 - 1e-6


def test_unreachable_inside_the_workspace_gets_a_kinematic_reason() -> None:
    # Straight down onto the base itself: within reach of the shoulder, but the arm cannot fold there.
    target = BASE[:3, 3] + np.array([0.0, 0.0, 20.0])
    plan = Plan(trajectories=(Trajectory("onto the base", target + (0, 0, 60.0), target),))
    (result,) = reach.check_reachability(plan, robot="panda", base_pose_mm=BASE)
    assert not result.reachable
    assert result.reason.startswith(("joint limit", "IK failed"))


def test_default_base_places_the_robot_within_reach() -> None:
    plan = Plan(trajectories=(Trajectory("T12-left", (18.6, -65.2, -790.5), (-6.4, -120.2, -790.5), 4.5),))
    base = reach.default_base_pose(plan)
    assert np.allclose(base[:3, :3].T @ base[:3, :3], np.eye(3)) and np.isclose(np.linalg.det(base[:3, :3]), 1)
    (result,) = reach.check_reachability(plan, robot="panda")
    assert result.reachable, result.reason
    with pytest.raises(InputError, match="--robot"):
        reach.check_reachability(plan, robot="kuka")
