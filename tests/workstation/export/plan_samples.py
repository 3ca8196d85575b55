"""A plan and a case with awkward floats (many digits, large LPS coordinates) for export tests."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from workstation.model import (
    Case,
    Implant,
    Landmark,
    Measurement,
    Plan,
    Registration,
    ResectionPlane,
    SeriesIdentity,
    Trajectory,
    Volume,
)


def sample_plan(seed: int = 7) -> Plan:
    rng = np.random.default_rng(seed)
    centre = np.array([12.345678901234, -187.65432109876, -812.3456789012345])
    plan = Plan()
    for n in range(3):
        target = centre + rng.uniform(-40, 40, 3)
        entry = target + rng.uniform(-70, 70, 3)
        plan = plan.with_item(Trajectory(f"T12-screw-{n}", entry, target, tool_diameter_mm=float(rng.uniform(2, 6))))
    plan = plan.with_item(Trajectory("T12-left", (18.6, -65.2, -790.5), (-6.4, -120.2, -790.5), tool_diameter_mm=4.5))
    for n in range(4):
        plan = plan.with_item(Landmark(f"fiducial {n}", centre + rng.normal(0, 50, 3)))
    plan = plan.with_item(ResectionPlane("liver cut", centre + rng.normal(0, 9, 3), rng.normal(size=3), kept_side=-1))
    plan = plan.with_item(ResectionPlane("axial", centre, (0.0, 0.0, 1.0), kept_side=1))
    pose = np.eye(4)
    pose[:3, :3] = Rotation.from_rotvec(rng.normal(size=3)).as_matrix()
    pose[:3, 3] = centre + 1.0 / 3.0
    plan = plan.with_item(Implant("screw L", "pedicle_screw", pose, 5.5, 45.0))
    plan = plan.with_item(Measurement("gap", "distance", (centre, centre + 10.0 / 7.0)))
    return plan.with_item(Measurement("angle", "angle", (centre + (1, 0, 0), centre, centre + (0.3, 1, 0))))


def sample_registration(seed: int = 11) -> Registration:
    rng = np.random.default_rng(seed)
    matrix = np.eye(4)
    matrix[:3, :3] = Rotation.from_rotvec(rng.normal(size=3)).as_matrix()
    matrix[:3, 3] = [412.0, -37.5, 950.0]
    return Registration(matrix, from_frame="image_lps", to_frame="robot", fre_mm=0.1234, fre_per_point_mm=(0.1, 0.15),
                        predicted_tre_mm=(0.21, 0.3))


def sample_case(*, with_registration: bool = True) -> Case:
    case = Case(name="export-test")
    case.add_volume(Volume.from_geometry(np.zeros((3, 4, 5), dtype=np.int16), spacing_mm=(0.8, 0.8, 2.5),
                                         origin_lps=(-200.0, -350.0, -830.0), modality="CT", name="ct",
                                         series=SeriesIdentity("2.25.1", "2.25.2", "2.25.3", 4, "abdomen")))
    case.deidentification = {"deidentified": True, "method": "test"}
    case.set_plan(sample_plan())
    if with_registration:
        case.add_registration(sample_registration())
    return case


def plan_numbers(plan: Plan) -> dict[str, np.ndarray]:
    """Every number of a plan keyed by item, for comparisons with a tolerance."""
    out: dict[str, np.ndarray] = {}
    for t in plan.trajectories:
        out[f"trajectory {t.name}"] = np.array([*t.entry_lps, *t.target_lps, t.tool_diameter_mm])
    for lm in plan.landmarks:
        out[f"landmark {lm.name}"] = np.array(lm.position_lps)
    for p in plan.resection_planes:
        out[f"plane {p.name}"] = np.array([*p.origin_lps, *p.normal_lps, p.kept_side])
    for i in plan.implants:
        out[f"implant {i.name} {i.kind}"] = np.array([*np.ravel(i.pose_lps), i.diameter_mm, i.length_mm])
    for m in plan.measurements:
        out[f"measurement {m.name} {m.kind}"] = np.ravel(m.points_lps)
    return out


def max_plan_difference(a: Plan, b: Plan) -> float:
    """Largest absolute difference (mm, or unit-vector components) between two plans with the same items."""
    na, nb = plan_numbers(a), plan_numbers(b)
    assert set(na) == set(nb), f"items differ: {sorted(set(na) ^ set(nb))}"
    return max((float(np.max(np.abs(na[k] - nb[k]))) for k in na), default=0.0)
