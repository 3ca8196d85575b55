"""``twin plan CASE add-implant`` and :func:`workstation.plan_case.add_implant`: poses, refusals, save/load."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from workstation import plan_case
from workstation.bundle import load_case, save_case
from workstation.cli.main import main
from workstation.errors import InputError
from workstation.export.tool_pose import trajectory_pose
from workstation.model import Case, Volume


@pytest.fixture()
def small_case(tmp_path: Path) -> Path:
    case = Case(name="implants")
    case.add_volume(Volume(np.zeros((8, 8, 8), np.int16), np.eye(4), modality="CT", id="ct", name="ct"))
    path = tmp_path / "case"
    save_case(case, path)
    return path


def test_add_implant_along_a_trajectory_and_by_head_and_tip() -> None:
    case = Case(name="c")
    plan_case.add_trajectory(case, "t", (10.0, -40.0, 5.0), (2.0, 0.0, 1.0), tool_diameter_mm=3.0)
    screw = plan_case.add_implant(case, "screw", from_trajectory="t", diameter_mm=6.5, length_mm=45.0)
    pose = np.asarray(screw.pose_lps)
    np.testing.assert_allclose(pose, trajectory_pose((10.0, -40.0, 5.0), (2.0, 0.0, 1.0)), atol=1e-12)
    head, tip = plan_case.implant_ends(screw)
    assert np.linalg.norm(tip - (2.0, 0.0, 1.0)) < 1e-6
    direction = np.subtract((2.0, 0.0, 1.0), (10.0, -40.0, 5.0))
    np.testing.assert_allclose(pose[:3, 2], direction / np.linalg.norm(direction), atol=1e-12)
    assert np.linalg.norm(tip - head) == pytest.approx(45.0)
    assert (screw.kind, screw.diameter_mm, screw.length_mm) == ("pedicle_screw", 6.5, 45.0)

    second = plan_case.add_implant(case, "s2", head_lps=(0, 0, 0), tip_lps=(0, 0, -30), diameter_mm=5.0)
    assert second.length_mm == pytest.approx(30.0)
    np.testing.assert_allclose(plan_case.implant_ends(second)[0], (0, 0, 0), atol=1e-12)
    np.testing.assert_allclose(np.asarray(second.pose_lps)[:3, 2], (0, 0, -1), atol=1e-12)
    assert [i.name for i in case.plan.implants] == ["screw", "s2"]
    for bad in ({"from_trajectory": "nope", "length_mm": 40.0}, {"head_lps": (0, 0, 0), "tip_lps": (0, 0, 0)},
                {"head_lps": (0, 0, 0)}, {"length_mm": 40.0},
                {"from_trajectory": "t", "head_lps": (0, 0, 0), "tip_lps": (1, 0, 0)},
                {"from_trajectory": "t"}, {"from_trajectory": "t", "length_mm": -1.0}):
        with pytest.raises(InputError, match=r"implant|trajectory"):
            plan_case.add_implant(case, "bad", diameter_mm=5.0, **bad)  # type: ignore[arg-type]
    assert plan_case.remove_item(case, "screw") == "implants"
    assert [i.name for i in case.plan.implants] == ["s2"]


def test_cli_add_implant_saved_listed_and_refused(small_case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = str(small_case)
    assert main(["plan", case, "add-trajectory", "--name", "t", "--entry", "0,-50,0", "--target", "3,-5,2",
                 "--diameter-mm", "2", "-q"]) == 0
    assert main(["plan", case, "add-implant", "--name", "L1", "--diameter-mm", "6.5", "--length-mm", "40",
                 "--trajectory", "t", "-q"]) == 0
    assert main(["plan", case, "add-implant", "--name", "R1", "--diameter-mm", "5", "--head", "10,-30,0",
                 "--tip", "10,-5,0", "--length-mm", "20", "-q"]) == 0
    loaded = load_case(small_case)
    by = {i.name: i for i in loaded.plan.implants}
    head, tip = plan_case.implant_ends(by["L1"])
    assert np.linalg.norm(tip - (3.0, -5.0, 2.0)) < 1e-6 and by["L1"].length_mm == 40.0
    np.testing.assert_allclose(np.asarray(by["L1"].pose_lps), trajectory_pose((0, -50, 0), (3, -5, 2)), atol=1e-9)
    head, tip = plan_case.implant_ends(by["R1"])
    np.testing.assert_allclose(tip, (10, -5, 0), atol=1e-9)
    np.testing.assert_allclose(head, (10, -25, 0), atol=1e-9)  # 20 mm back from the tip, towards the head click
    capsys.readouterr()
    assert main(["plan", case, "list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [(i["name"], i["diameter_mm"], i["length_mm"]) for i in listing["implants"]] == [
        ("L1", 6.5, 40.0), ("R1", 5.0, 20.0)]
    # refusals: one line, exit 3, the case unchanged
    for extra in (["--trajectory", "nope", "--length-mm", "40"], ["--trajectory", "t"], ["--head", "1,2,3"],
                  ["--head", "1,2,3", "--tip", "1,2,3"], ["--head", "1,2", "--tip", "1,2,3"],
                  ["--trajectory", "t", "--length-mm", "-4"]):
        run = subprocess.run([sys.executable, "-m", "workstation.cli.main", "plan", case, "add-implant", "--name",
                              "X", "--diameter-mm", "5", *extra], capture_output=True, text=True)
        assert run.returncode == 3, (extra, run.stderr)
        assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
    assert [i.name for i in load_case(small_case).plan.implants] == ["L1", "R1"]
