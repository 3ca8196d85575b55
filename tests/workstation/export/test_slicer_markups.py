"""3D Slicer markups JSON export and import (LPS and RAS files)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from tests.workstation.export.plan_samples import max_plan_difference, sample_plan
from workstation.errors import InputError
from workstation.export import slicer_markups as sm
from workstation.model import Plan


def slicer_subset(plan: Plan) -> Plan:
    """The part of a plan that markups carry: landmarks, trajectories, planes."""
    return Plan(landmarks=plan.landmarks, trajectories=plan.trajectories, resection_planes=plan.resection_planes)


def test_export_follows_the_markups_format(tmp_path) -> None:
    plan = sample_plan()
    path = tmp_path / "plan.mrk.json"
    sm.write_markups(plan, path)
    document = json.loads(path.read_text())
    assert document["@schema"].endswith("markups-schema-v1.0.3.json#")
    kinds = [m["type"] for m in document["markups"]]
    assert kinds == ["Fiducial"] + ["Line"] * len(plan.trajectories) + ["Plane"] * len(plan.resection_planes)
    for markup in document["markups"]:
        assert markup["coordinateSystem"] == "LPS" and markup["coordinateUnits"] == "mm"
        for cp in markup["controlPoints"]:
            assert len(cp["position"]) == 3 and len(cp["orientation"]) == 9
            assert cp["positionStatus"] == "defined"
    line = document["markups"][1]
    assert [cp["label"] for cp in line["controlPoints"]] == ["entry", "target"]
    assert line["controlPoints"][0]["position"] == list(plan.trajectories[0].entry_lps)
    plane = document["markups"][-2]
    assert plane["planeType"] == "pointNormal" and len(plane["objectToBase"]) == 16
    object_to_base = np.array(plane["objectToBase"]).reshape(4, 4)
    assert np.allclose(object_to_base[:3, 2], plan.resection_planes[0].normal_lps)


def test_round_trip_is_unchanged(tmp_path) -> None:
    plan = sample_plan()
    path = tmp_path / "plan.mrk.json"
    sm.write_markups(plan, path)
    back = sm.read_markups(path)
    assert back.skipped == ()
    assert back.trajectories == plan.trajectories  # bit for bit, diameters included
    assert back.landmarks == plan.landmarks
    assert max_plan_difference(back.as_plan(), slicer_subset(plan)) <= 1e-12
    assert [p.kept_side for p in back.resection_planes] == [p.kept_side for p in plan.resection_planes]


def to_ras(document: dict) -> dict:
    """What Slicer writes with coordinateSystem RAS: x and y negated."""
    ras = copy.deepcopy(document)
    for markup in ras["markups"]:
        markup["coordinateSystem"] = "RAS"
        for cp in markup["controlPoints"]:
            cp["position"] = [-cp["position"][0], -cp["position"][1], cp["position"][2]]
        for key in ("normal", "center"):
            if key in markup:
                markup[key] = [-markup[key][0], -markup[key][1], markup[key][2]]
    return ras


def test_ras_files_are_converted_to_lps(tmp_path) -> None:
    plan = sample_plan()
    path = tmp_path / "ras.mrk.json"
    path.write_text(json.dumps(to_ras(sm.plan_to_markups(plan))))
    back = sm.read_markups(path)
    assert max_plan_difference(back.as_plan(), slicer_subset(plan)) <= 1e-9


def test_a_file_as_slicer_writes_it(tmp_path) -> None:
    """Markups made in Slicer: RAS, no labels, 3-point plane, um units, an unknown type, an undefined point."""
    document = {"@schema": sm.MARKUPS_SCHEMA, "markups": [
        {"type": "Line", "name": "needle", "coordinateSystem": "RAS",
         "controlPoints": [{"position": [-10.0, 20.0, 30.0]}, {"position": [-12.0, 25.0, 0.0]}]},
        {"type": "Fiducial", "name": "F", "coordinateSystem": "LPS", "coordinateUnits": "um",
         "controlPoints": [{"label": "", "position": [1000.0, 2000.0, 3000.0]},
                           {"label": "x", "position": [0.0, 0.0, 0.0], "positionStatus": "undefined"}]},
        {"type": "Plane", "name": "cut", "planeType": "3points", "coordinateSystem": "LPS",
         "controlPoints": [{"position": [0.0, 0.0, 5.0]}, {"position": [1.0, 0.0, 5.0]},
                           {"position": [0.0, 1.0, 5.0]}]},
        {"type": "ROI", "name": "box", "controlPoints": []},
    ]}
    path = tmp_path / "slicer.mrk.json"
    path.write_text(json.dumps(document))
    items = sm.read_markups(path, default_diameter_mm=3.0)
    (needle,) = items.trajectories
    assert needle.entry_lps == (10.0, -20.0, 30.0) and needle.target_lps == (12.0, -25.0, 0.0)
    assert needle.tool_diameter_mm == 3.0
    assert [(lm.name, lm.position_lps) for lm in items.landmarks] == [("F-1", (1.0, 2.0, 3.0))]
    (cut,) = items.resection_planes
    assert np.allclose(cut.normal_lps, (0, 0, 1)) and cut.origin_lps == (0.0, 0.0, 5.0)
    assert items.skipped == ("box (ROI)",)


@pytest.mark.parametrize("content, message", [
    ("{oops", "not valid JSON"),
    ('{"markups": 3}', "not a Slicer markups file"),
    ('{"markups": [{"type": "Line", "name": "l", "controlPoints": [{"position": [0, 0, 0]}]}]}', "2 defined"),
    ('{"markups": [{"type": "Fiducial", "coordinateSystem": "XYZ", "controlPoints": []}]}', "coordinateSystem"),
    ('{"markups": [{"type": "Fiducial", "controlPoints": [{"position": [0, "a", 1]}]}]}', "three finite"),
])
def test_bad_markups_files_raise_input_errors(tmp_path, content, message) -> None:
    path = tmp_path / "bad.mrk.json"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        sm.read_markups(path)
