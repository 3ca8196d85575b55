"""Can a robot arm hold the tool along each trajectory? Inverse kinematics with roboticstoolbox.

The arm (``panda``: Franka Emika Panda from rtb-data's xacro; ``ur5``: Universal Robots UR5 as a
standard-DH model) stands at ``base_pose_mm`` (4x4, robot base frame -> plan frame, mm). A
straight tool of ``tool_length_mm`` is fixed on the flange along the flange's +z; its tip is put
at ``samples`` points from entry to target with the tool axis along the insertion direction
(tool-axis convention of :mod:`workstation.export.tool_pose`). The tool is symmetric, so
``rolls`` rotations about its axis are tried; the first roll for which every point has an IK
solution within the joint limits (Levenberg-Marquardt ``ik_LM``, seeded with the previous
point's solution) makes the trajectory reachable.

Reasons when unreachable, checked in this order:

* ``out of workspace``: a flange position is farther from the shoulder than the arm's reach
  (the largest shoulder-to-flange distance over 2000 random joint configurations, +2 %);
* ``joint limit``: IK succeeds only when joint limits are ignored (the joint and angle are named);
* ``IK failed``: no solution from the solver's random restarts (residual reported).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial.transform import Rotation

from workstation.errors import InputError
from workstation.export.tool_pose import trajectory_pose
from workstation.model import Plan, Trajectory
from workstation.progress import ProgressCallback, report

ROBOTS = ("panda", "ur5")
_REACH_MARGIN = 1.02
# ik_LM stops when 0.5 * e.T @ e < tol (e: metres and radians): 1e-12 means about 1.4 um / 1.4 urad.
_IK_TOLERANCE = 1e-12
_POSITION_TOLERANCE_MM = 0.01
_AXIS_TOLERANCE_RAD = 1e-4


@dataclass(frozen=True)
class ReachResult:
    """Reachability of one trajectory; ``reason`` is empty when reachable."""

    trajectory: str
    robot: str
    reachable: bool
    reason: str
    samples: int
    tool_roll_deg: float | None = None
    joint_positions_deg: tuple[tuple[float, ...], ...] = ()
    min_joint_limit_margin_deg: float | None = None
    max_tool_tip_error_mm: float | None = None
    max_distance_from_shoulder_mm: float = 0.0
    reach_mm: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["joint_positions_deg"] = [list(q) for q in self.joint_positions_deg]
        return data


@dataclass(frozen=True)
class _Arm:
    name: str
    model: Any
    end: str | None
    shoulder_m: NDArray[np.float64]
    reach_m: float

    def fkine(self, q: ArrayLike) -> NDArray[np.float64]:
        pose = self.model.fkine(q, end=self.end) if self.end else self.model.fkine(q)
        return np.asarray(pose.A, dtype=float)

    def ik(self, flange_m: NDArray[np.float64], q0: NDArray[np.float64] | None, *, joint_limits: bool) -> Any:
        kwargs: dict[str, Any] = {"q0": q0, "joint_limits": joint_limits, "tol": _IK_TOLERANCE, "slimit": 60}
        if self.end:
            kwargs["end"] = self.end
        return self.model.ik_LM(flange_m, **kwargs)


@lru_cache(maxsize=4)
def _arm(name: str) -> _Arm:
    try:
        import roboticstoolbox as rtb
    except ImportError as exc:  # an optional backend: say so clearly
        raise InputError("reachability needs roboticstoolbox-python and rtb-data (pip install "
                         "roboticstoolbox-python rtb-data)") from exc
    if name == "panda":
        model, end = rtb.models.Panda(), "panda_link8"
    elif name == "ur5":
        model, end = rtb.models.DH.UR5(), None
    else:
        raise InputError(f"--robot {name!r}: expected one of {', '.join(ROBOTS)}")
    q = np.random.default_rng(0).uniform(model.qlim[0], model.qlim[1], (2000, model.n))
    poses = model.fkine(q, end=end) if end else model.fkine(q)
    flange = np.array([p.t for p in poses])
    shoulder = np.asarray((model.fkine(np.zeros(model.n), end=model.links[1].name) if end
                           else model.A(0, np.zeros(model.n))).t, dtype=float)
    reach = float(np.linalg.norm(flange - shoulder, axis=1).max())
    return _Arm(name, model, end, shoulder, reach)


def parse_base_pose(text: str, *, option: str = "--base") -> NDArray[np.float64]:
    """``x,y,z[:rx,ry,rz]`` (mm in the plan frame; degrees, extrinsic rotations about x, y, z) -> 4x4."""
    position_text, _, rotation_text = text.partition(":")
    try:
        position = [float(v) for v in position_text.split(",")]
        angles = [float(v) for v in rotation_text.split(",")] if rotation_text else [0.0, 0.0, 0.0]
    except ValueError:
        position, angles = [], []
    if len(position) != 3 or len(angles) != 3 or not np.all(np.isfinite(position + angles)):
        raise InputError(f"{option} {text!r}: expected x,y,z in mm, optionally :rx,ry,rz in degrees")
    pose = np.eye(4)
    pose[:3, :3] = Rotation.from_euler("xyz", angles, degrees=True).as_matrix()
    pose[:3, 3] = position
    return pose


def default_base_pose(plan: Plan) -> NDArray[np.float64]:
    """A table-side mount for the plan's trajectories (plan frame, mm).

    Base +z ("up") = the mean outward tool direction (target to entry); the base origin is 300 mm
    below the mean target along that axis and 450 mm to the side, perpendicular to it (towards the
    plan frame's +x, or +y when up is nearly along x). Its +x points back towards the targets.
    """
    if not plan.trajectories:
        raise InputError("plan: no trajectory to place a robot for")
    targets = np.array([t.target_lps for t in plan.trajectories])
    outward = np.array([np.subtract(t.entry_lps, t.target_lps) / t.length_mm for t in plan.trajectories]).mean(0)
    up = outward / np.linalg.norm(outward) if np.linalg.norm(outward) > 1e-6 else np.array([0.0, 0.0, 1.0])
    side_ref = np.eye(3)[0] if abs(up[0]) < 0.9 else np.eye(3)[1]
    side = side_ref - (side_ref @ up) * up
    side /= np.linalg.norm(side)
    pose = np.eye(4)
    x_axis = -side
    pose[:3, :3] = np.column_stack([x_axis, np.cross(up, x_axis), up])
    pose[:3, 3] = targets.mean(0) - 300.0 * up + 450.0 * side
    return pose


def _pose_error(arm: _Arm, q: NDArray[np.float64], flange_m: NDArray[np.float64]) -> tuple[float, float]:
    """Position error (mm) and rotation error (rad) of the flange at ``q`` against ``flange_m``."""
    reached = arm.fkine(q)
    position_mm = float(np.linalg.norm(reached[:3, 3] - flange_m[:3, 3])) * 1000.0
    rotation = Rotation.from_matrix(reached[:3, :3].T @ flange_m[:3, :3]).magnitude()
    return position_mm, float(rotation)


def _margin_deg(arm: _Arm, q: NDArray[np.float64]) -> float:
    return float(np.degrees(np.min(np.minimum(q - arm.model.qlim[0], arm.model.qlim[1] - q))))


def _wrapped_within_limits(arm: _Arm, q: NDArray[np.float64]) -> NDArray[np.float64] | None:
    """``q`` with each joint moved by a multiple of 360 degrees into its limits, or None."""
    out = np.array(q, dtype=float)
    low, high = arm.model.qlim
    for j in range(len(out)):
        for shift in (0.0, 2 * np.pi, -2 * np.pi):
            if low[j] - 1e-9 <= out[j] + shift <= high[j] + 1e-9:
                out[j] += shift
                break
        else:
            return None
    return out


def _tcp_poses_m(trajectory: Trajectory, base_inv: NDArray[np.float64], samples: int,
                 roll_deg: float) -> list[NDArray[np.float64]]:
    target_pose = trajectory_pose(trajectory.entry_lps, trajectory.target_lps)
    roll = np.eye(4)
    roll[:3, :3] = Rotation.from_euler("z", roll_deg, degrees=True).as_matrix()
    poses = []
    for f in np.linspace(0.0, 1.0, samples):
        pose = target_pose @ roll
        pose[:3, 3] = np.asarray(trajectory.entry_lps) + f * np.subtract(trajectory.target_lps, trajectory.entry_lps)
        in_base = base_inv @ pose
        in_base[:3, 3] /= 1000.0
        poses.append(in_base)
    return poses


def check_trajectory(trajectory: Trajectory, *, robot: str = "panda", base_pose_mm: ArrayLike,
                     tool_length_mm: float = 100.0, samples: int = 3, rolls: int = 4) -> ReachResult:
    """Reachability of one trajectory (see the module docstring)."""
    if samples < 2 or rolls < 1 or not tool_length_mm >= 0:
        raise InputError("reachability: samples >= 2, rolls >= 1 and tool_length_mm >= 0 are needed")
    arm = _arm(robot)
    base_inv = np.linalg.inv(np.asarray(base_pose_mm, dtype=float))
    flange_from_tcp = np.eye(4)
    flange_from_tcp[2, 3] = -tool_length_mm / 1000.0
    common = {"trajectory": trajectory.name, "robot": robot, "samples": samples, "reach_mm": arm.reach_m * 1000.0}

    first = [p @ flange_from_tcp for p in _tcp_poses_m(trajectory, base_inv, samples, 0.0)]
    distance = max(float(np.linalg.norm(f[:3, 3] - arm.shoulder_m)) for f in first)
    common["max_distance_from_shoulder_mm"] = distance * 1000.0
    if distance > arm.reach_m * _REACH_MARGIN:
        reason = (f"out of workspace: the flange would be {distance * 1000:.0f} mm from the shoulder, "
                  f"the {robot} reaches {arm.reach_m * 1000:.0f} mm")
        return ReachResult(reachable=False, reason=reason, **common)
    best_residual = np.inf
    for k in range(rolls):
        roll_deg = 360.0 * k / rolls
        flanges = [p @ flange_from_tcp for p in _tcp_poses_m(trajectory, base_inv, samples, roll_deg)]
        q_prev, solutions, tip_errors = None, [], []
        for flange in flanges:
            sol = arm.ik(flange, q_prev, joint_limits=True)
            q = _wrapped_within_limits(arm, np.asarray(sol.q)) if sol.success else None
            if q is not None:
                position_mm, rotation_rad = _pose_error(arm, q, flange)
                if position_mm > _POSITION_TOLERANCE_MM or rotation_rad > _AXIS_TOLERANCE_RAD:
                    q = None
            if q is None:
                best_residual = min(best_residual, float(sol.residual))
                break
            solutions.append(q)
            # The tool tip is tool_length_mm along the flange z: its error adds the rotation's lever arm.
            tip_errors.append(position_mm + rotation_rad * tool_length_mm)
            q_prev = q
        if len(solutions) == len(flanges):
            return ReachResult(reachable=True, reason="", tool_roll_deg=roll_deg,
                               joint_positions_deg=tuple(tuple(float(np.degrees(v)) for v in q) for q in solutions),
                               min_joint_limit_margin_deg=min(_margin_deg(arm, q) for q in solutions),
                               max_tool_tip_error_mm=max(tip_errors), **common)
    # Unreachable within limits: would it be reachable without them?
    for flange in first:
        sol = arm.ik(flange, None, joint_limits=False)
        if sol.success and _wrapped_within_limits(arm, np.asarray(sol.q)) is None:
            q = np.asarray(sol.q)
            low, high = arm.model.qlim
            j = int(np.argmax(np.maximum(low - q, q - high)))
            return ReachResult(reachable=False, reason=f"joint limit: joint {j + 1} would need "
                                                       f"{np.degrees(q[j]):.1f} deg, limits [{np.degrees(low[j]):.1f}, "
                                                       f"{np.degrees(high[j]):.1f}] deg", **common)
    return ReachResult(reachable=False, reason=f"IK failed: no joint solution for {rolls} tool rolls "
                                               f"(best residual {best_residual:.3g})", **common)


def check_reachability(plan: Plan, *, robot: str = "panda", base_pose_mm: ArrayLike | None = None,
                       tool_length_mm: float = 100.0, samples: int = 3, rolls: int = 4,
                       progress: ProgressCallback | None = None) -> list[ReachResult]:
    """One :class:`ReachResult` per trajectory of ``plan``; ``base_pose_mm`` defaults to
    :func:`default_base_pose`."""
    base = default_base_pose(plan) if base_pose_mm is None else np.asarray(base_pose_mm, dtype=float)
    results = []
    for n, trajectory in enumerate(plan.trajectories):
        report(progress, n, len(plan.trajectories), f"reachability of {trajectory.name}")
        results.append(check_trajectory(trajectory, robot=robot, base_pose_mm=base, tool_length_mm=tool_length_mm,
                                        samples=samples, rolls=rolls))
    report(progress, len(plan.trajectories), len(plan.trajectories), "reachability done")
    return results
