"""Case events and ids, label maps, meshes, plans and registrations."""

from __future__ import annotations

import numpy as np
import pytest

from workstation.model import (
    Case,
    LabelMap,
    Landmark,
    Measurement,
    Plan,
    Registration,
    ResectionPlane,
    Segment,
    SurfaceMesh,
    TetMesh,
    Trajectory,
    Volume,
)


def small_volume(name: str = "ct") -> Volume:
    return Volume.from_geometry(np.zeros((2, 3, 4), dtype=np.int16), spacing_mm=[1, 1, 2], modality="CT", name=name)


def test_case_assigns_unique_ids_and_emits_events() -> None:
    case = Case()
    seen: list[str] = []
    case.events.volume_added.connect(lambda v: seen.append(v.id))
    first = case.add_volume(small_volume())
    second = case.add_volume(small_volume())
    assert (first.id, second.id) == ("ct", "ct-2")
    assert seen == ["ct", "ct-2"]
    assert case.volume() is first and case.volume("ct-2") is second
    removed: list[str] = []
    case.events.volume_removed.connect(removed.append)
    case.remove_volume("ct")
    assert removed == ["ct"] and list(case.volumes) == ["ct-2"]
    with pytest.raises(KeyError, match="no volume 'ct'"):
        case.volume("ct")


def test_replacing_a_label_map_invalidates_its_meshes() -> None:
    case = Case()
    vol = case.add_volume(small_volume())
    labels = case.add_label_map(LabelMap(array=np.zeros(vol.shape, np.uint8), ijk_to_lps=vol.ijk_to_lps,
                                         segments=(Segment(1, "liver", (0.8, 0.4, 0.3)),), name="seg"))
    mesh = case.add_mesh(SurfaceMesh(vertices_lps=np.eye(3), triangles=[[0, 1, 2]], name="liver",
                                     provenance={"label_map_id": labels.id}))
    dropped: list[str] = []
    case.events.mesh_removed.connect(dropped.append)
    case.replace_label_map(labels.with_array(np.ones(vol.shape, np.uint8)))
    assert dropped == [mesh.id] and not case.meshes
    assert case.label_maps[labels.id].array.all()


def test_label_map_validation_and_lookup() -> None:
    affine = np.eye(4)
    with pytest.raises(ValueError, match="integers"):
        LabelMap(array=np.zeros((2, 2, 2)), ijk_to_lps=affine)
    with pytest.raises(ValueError, match="repeat a value"):
        LabelMap(array=np.zeros((2, 2, 2), np.uint8), ijk_to_lps=affine,
                 segments=(Segment(1, "a"), Segment(1, "b")))
    with pytest.raises(ValueError, match=r"0\.\.1"):
        Segment(1, "a", (2.0, 0.0, 0.0))
    lm = LabelMap(array=np.array([[[0, 1], [2, 2]]], np.uint8), ijk_to_lps=affine,
                  segments=(Segment(1, "liver"), Segment(2, "spleen")))
    assert lm.mask("spleen").sum() == 2 and lm.segment(1).name == "liver"
    np.testing.assert_array_equal(lm.present_values(), [1, 2])


def test_meshes_validate_and_adapt() -> None:
    with pytest.raises(ValueError, match="indices"):
        SurfaceMesh(vertices_lps=np.eye(3), triangles=[[0, 1, 3]])
    tet = TetMesh(points_lps=[[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], tets=[[0, 1, 2, 3]])
    assert tet.signed_volumes_mm3()[0] == pytest.approx(1 / 6)
    grid = tet.to_pyvista()
    assert grid.n_cells == 1 and grid.cell_data["region_id"][0] == 0
    surface = SurfaceMesh(vertices_lps=[[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]],
                          triangles=[[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    assert surface.to_trimesh().is_watertight
    assert SurfaceMesh.from_pyvista(surface.to_pyvista()).n_triangles == 4


def test_plan_round_trip_and_validation() -> None:
    plan = Plan()
    plan = plan.with_item(Landmark("nasion", (1, 2, 3)))
    plan = plan.with_item(Trajectory("screw-l", (0, 0, 0), (0, 30, 40), tool_diameter_mm=5.5))
    plan = plan.with_item(ResectionPlane("cut", (0, 0, 0), (0, 0, 2)))
    plan = plan.with_item(Measurement("angle", "angle", ((1, 0, 0), (0, 0, 0), (0, 1, 0))))
    assert plan.trajectories[0].length_mm == pytest.approx(50.0)
    assert plan.resection_planes[0].normal_lps == (0.0, 0.0, 1.0)
    assert plan.measurements[0].value == pytest.approx(90.0)
    again = Plan.from_dict(plan.to_dict())
    assert again == plan
    moved = plan.with_item(Landmark("nasion", (4, 5, 6)))
    assert len(moved.landmarks) == 1 and moved.landmarks[0].position_lps == (4.0, 5.0, 6.0)
    with pytest.raises(ValueError, match="coincide"):
        Trajectory("bad", (1, 1, 1), (1, 1, 1))
    with pytest.raises(ValueError, match="LPS"):
        Plan.from_dict({"coordinate_system": "RAS"})


def test_registration_requires_a_rotation_and_inverts() -> None:
    with pytest.raises(ValueError, match="rotation"):
        Registration(matrix=np.diag([2.0, 1, 1, 1]))
    angle = np.radians(30)
    m = np.eye(4)
    m[:3, :3] = [[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]]
    m[:3, 3] = [5, 6, 7]
    reg = Registration(matrix=m, fre_mm=0.2)
    p = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(reg.inverse().apply(reg.apply(p)), p, atol=1e-12)
    assert Registration.from_dict(reg.to_dict()).fre_mm == 0.2


def test_records_replace_by_name_and_refuse_bad_meta() -> None:
    from workstation.model import Record

    case = Case()
    first = case.add_record(Record(kind="camera", name="probe", meta={"view_angle_deg": 30}))
    second = case.add_record(Record(kind="camera", name="probe", meta={"view_angle_deg": 40}), replace_same_name=True)
    assert second.id == first.id and len(case.records) == 1
    assert case.record("camera", "probe").meta["view_angle_deg"] == 40
    case.add_record(Record(kind="camera", name="probe"))
    assert len(case.records_of("camera")) == 2
    with pytest.raises(KeyError, match="no session"):
        case.record("session", "probe")
    with pytest.raises(ValueError, match="kind"):
        Record(kind="movie")
    with pytest.raises(ValueError, match="JSON"):
        Record(kind="other", meta={"x": float("nan")})
    assert not Record(kind="other", arrays={"a": np.zeros(3)}).arrays["a"].flags.writeable
