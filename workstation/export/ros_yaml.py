"""A ROS-friendly export: the plan's tool poses as a geometry_msgs/PoseArray-style YAML.

Units follow ROS REP-103: positions in **metres**, orientations as unit quaternions
``x, y, z, w``. ``header`` and ``poses`` form a ``geometry_msgs/PoseArray`` message
(``header.frame_id`` = the robot base frame); the other top-level keys are metadata: the name of
each pose, units, the chain of transforms used and the tool-axis convention.

For each trajectory two poses are written, both with the tool orientation (+z along the
insertion direction, origin convention of :mod:`workstation.export.tool_pose`): the ``entry``
pose (tool tip at the entry point) then the ``target`` pose (tool tip at the target).

Frames: plan points (image LPS mm) are mapped by the case's registration (image -> patient),
then by an optional rigid ``patient_to_base`` (mm) into the robot base frame. Without
``patient_to_base`` the registration's ``to_frame`` is taken as the robot base frame.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from numpy.typing import ArrayLike, NDArray
from scipy.spatial.transform import Rotation

from workstation.errors import InputError
from workstation.export.tool_pose import TOOL_AXIS_CONVENTION, trajectory_pose
from workstation.io.atomic import write_text_atomic
from workstation.model import Plan, Registration

MM_PER_M = 1000.0


def _rigid(matrix: ArrayLike, what: str) -> NDArray[np.float64]:
    m = np.asarray(matrix, dtype=float)
    if m.shape != (4, 4) or not np.all(np.isfinite(m)) or not np.allclose(m[3], [0, 0, 0, 1]):
        raise InputError(f"{what}: expected a finite 4x4 matrix with last row 0 0 0 1")
    r = m[:3, :3]
    if not (np.allclose(r.T @ r, np.eye(3), atol=1e-6) and np.linalg.det(r) > 0):
        raise InputError(f"{what}: the rotation part is not a proper rotation (orthonormal, det +1)")
    return m


def read_matrix_file(path: str | os.PathLike[str]) -> NDArray[np.float64]:
    """A rigid 4x4 (mm) from a text file of 16 numbers (rows; commas or whitespace)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    try:
        values = [float(v) for v in text.replace(",", " ").replace("[", " ").replace("]", " ").split()]
    except ValueError as exc:
        raise InputError(f"{path}: expected 16 numbers (a 4x4 matrix in mm)") from exc
    if len(values) != 16:
        raise InputError(f"{path}: expected 16 numbers (a 4x4 matrix in mm), found {len(values)}")
    return _rigid(np.array(values).reshape(4, 4), str(path))


def _pose_entry(pose_mm: NDArray[np.float64]) -> dict[str, dict[str, float]]:
    x, y, z, w = Rotation.from_matrix(pose_mm[:3, :3]).as_quat()  # scipy order: x, y, z, w
    if w < 0:  # one of the two equal quaternions, w >= 0, for stable files
        x, y, z, w = -x, -y, -z, -w
    px, py, pz = (float(v) / MM_PER_M for v in pose_mm[:3, 3])
    return {"position": {"x": px, "y": py, "z": pz},
            "orientation": {"x": float(x), "y": float(y), "z": float(z), "w": float(w)}}


def pose_array_document(plan: Plan, registration: Registration, *, patient_to_base: ArrayLike | None = None,
                        base_frame: str | None = None, stamp: datetime | None = None) -> dict[str, Any]:
    """The YAML-ready PoseArray document (see the module docstring)."""
    if registration.kind != "rigid":
        raise InputError(f"registration {registration.id!r} is {registration.kind}; robot poses need a rigid one")
    if not plan.trajectories:
        raise InputError("plan: no trajectory to export")
    chain = [f"{registration.from_frame} -> {registration.to_frame} (registration {registration.id!r})"]
    image_to_base = np.asarray(registration.matrix, dtype=float)
    frame_id = base_frame or registration.to_frame
    if patient_to_base is not None:
        image_to_base = _rigid(patient_to_base, "patient_to_base") @ image_to_base
        frame_id = base_frame or "base_link"
        chain.append(f"{registration.to_frame} -> {frame_id} (patient_to_base)")
    poses, names = [], []
    for t in plan.trajectories:
        entry = image_to_base[:3, :3] @ np.asarray(t.entry_lps) + image_to_base[:3, 3]
        target = image_to_base[:3, :3] @ np.asarray(t.target_lps) + image_to_base[:3, 3]
        at_target = trajectory_pose(entry, target)
        at_entry = at_target.copy()
        at_entry[:3, 3] = entry
        poses += [_pose_entry(at_entry), _pose_entry(at_target)]
        names += [f"{t.name}/entry", f"{t.name}/target"]
    stamp = stamp or datetime.now(UTC)
    seconds = stamp.timestamp()
    return {
        "header": {"stamp": {"sec": int(seconds), "nanosec": int(round((seconds % 1) * 1e9)) % 1_000_000_000},
                   "frame_id": frame_id},
        "poses": poses,
        "pose_names": names,
        "tool_diameters_mm": [float(t.tool_diameter_mm) for t in plan.trajectories for _ in (0, 1)],
        "units": {"position": "m (REP-103)", "orientation": "unit quaternion x, y, z, w",
                  "tool_diameters_mm": "mm"},
        "frames": {"source": registration.from_frame, "chain": chain, "frame_id": frame_id},
        "tool_axis_convention": TOOL_AXIS_CONVENTION.replace("(mm)", "(m)").replace("-length_mm", "-length"),
    }


def write_pose_array(document: dict[str, Any], path: str | os.PathLike[str]) -> None:
    header = ("# geometry_msgs/PoseArray-style plan export: 'header' + 'poses' form the message;\n"
              "# positions in metres (ROS REP-103), orientations as quaternions x, y, z, w.\n")
    write_text_atomic(path, header + yaml.safe_dump(document, sort_keys=False, default_flow_style=None))


def read_pose_array(path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: not a readable YAML file ({exc})") from exc
    if not isinstance(data, dict) or "poses" not in data or "header" not in data:
        raise InputError(f"{path}: not a PoseArray YAML (needs header and poses)")
    return data
