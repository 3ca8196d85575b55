"""The PoseArray-style YAML in the robot base frame (metres, quaternions x y z w)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from scipy.spatial.transform import Rotation

from tests.workstation.export.plan_samples import sample_plan, sample_registration
from workstation.errors import InputError
from workstation.export import ros_yaml


def pose_matrix_mm(entry: dict) -> np.ndarray:
    q = entry["orientation"]
    matrix = np.eye(4)
    matrix[:3, :3] = Rotation.from_quat([q["x"], q["y"], q["z"], q["w"]]).as_matrix()
    matrix[:3, 3] = [entry["position"][k] * 1000.0 for k in "xyz"]
    return matrix


@pytest.mark.parametrize("with_base", [False, True])
def test_poses_are_in_the_robot_base_frame_in_metres(tmp_path, with_base) -> None:
    plan, registration = sample_plan(), sample_registration()
    base = np.eye(4)
    base[:3, :3] = Rotation.from_euler("z", 30, degrees=True).as_matrix()
    base[:3, 3] = [-500.0, 200.0, -900.0]
    matrix_file = tmp_path / "patient_to_base.txt"
    np.savetxt(matrix_file, base)
    path = tmp_path / "poses.yaml"
    patient_to_base = ros_yaml.read_matrix_file(matrix_file) if with_base else None
    ros_yaml.write_pose_array(ros_yaml.pose_array_document(plan, registration, patient_to_base=patient_to_base,
                                                           base_frame="table_base" if with_base else None), path)
    data = yaml.safe_load(path.read_text())
    assert set(data["header"]) == {"stamp", "frame_id"}
    assert data["header"]["frame_id"] == ("table_base" if with_base else "robot")
    assert data["units"]["position"].startswith("m")
    image_to_base = (base if with_base else np.eye(4)) @ registration.matrix
    assert len(data["poses"]) == 2 * len(plan.trajectories)
    for n, t in enumerate(plan.trajectories):
        entry_pose, target_pose = (pose_matrix_mm(p) for p in data["poses"][2 * n: 2 * n + 2])
        assert data["pose_names"][2 * n: 2 * n + 2] == [f"{t.name}/entry", f"{t.name}/target"]
        expected_entry = image_to_base[:3, :3] @ t.entry_lps + image_to_base[:3, 3]
        expected_target = image_to_base[:3, :3] @ t.target_lps + image_to_base[:3, 3]
        assert np.abs(entry_pose[:3, 3] - expected_entry).max() < 1e-9
        assert np.abs(target_pose[:3, 3] - expected_target).max() < 1e-9
        direction = (expected_target - expected_entry) / np.linalg.norm(expected_target - expected_entry)
        assert np.allclose(target_pose[:3, 2], direction, atol=1e-12)
        q = data["poses"][2 * n]["orientation"]
        assert abs(np.linalg.norm([q["x"], q["y"], q["z"], q["w"]]) - 1.0) < 1e-12 and q["w"] >= 0


def test_bad_transforms_are_refused(tmp_path) -> None:
    path = tmp_path / "m.txt"
    path.write_text("1 2 3")
    with pytest.raises(InputError, match="16 numbers"):
        ros_yaml.read_matrix_file(path)
    path.write_text(" ".join(str(v) for v in np.diag([2.0, 1.0, 1.0, 1.0]).ravel()))
    with pytest.raises(InputError, match="proper rotation"):
        ros_yaml.read_matrix_file(path)
