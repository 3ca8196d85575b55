"""twin tetmesh | simulate | results on a phantom case: output, JSON, stored results, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.workstation.test_simulate_case import phantom_case
from workstation.bundle import load_case, save_case
from workstation.cli.main import main


@pytest.fixture()
def case_path(tmp_path: Path) -> Path:
    return save_case(phantom_case(), tmp_path / "case")


def manifest(path: Path) -> bytes:
    return (path / "manifest.json").read_bytes()


def test_tetmesh_simulate_results(case_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tetmesh", str(case_path), "--segment", "liver", "--size-mm", "5"]) == 0
    out = capsys.readouterr().out
    assert "tet mesh 'tet-liver'" in out and "dihedral" in out and "radius-edge" in out
    assert load_case(case_path).tet_meshes["tet-liver"].n_tets > 100

    vtu = tmp_path / "r.vtu"
    # Negative coordinates after --push are joined by main; the liver's top is near z = 16.
    code = main(["simulate", str(case_path), "--segment", "liver", "--material", "liver", "--fix", "bone",
                 "--fix", "plane:0,-12,0:0,-1,0", "--push", "-2,1,16:0,0,-2.5", "--vtu", str(vtu), "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["result"] == "liver-linear" and data["meta"]["converged"]
    assert data["meta"]["max_displacement_mm"] >= 2.5 - 1e-9
    assert vtu.stat().st_size > 0
    case = load_case(case_path)
    assert case.record("simulation", "liver-linear").meta["extra"]["fix"] == ["bone", "plane:0,-12,0:0,-1,0"]

    assert main(["results", str(case_path), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["results"]
    assert [r["name"] for r in listed] == ["liver-linear"] and listed[0]["tet_mesh_id"] == "tet-liver"


def test_two_segments_and_from_labels(case_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tetmesh", str(case_path), "--segment", "liver", "--segment", "bone", "--from-labels",
                 "--size-mm", "3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["tet_mesh_id"] == "tet-liver+bone" and set(data["quality"]["region_volumes_mm3"]) == {"2", "4"}
    assert data["quality"]["n_inverted"] == 0


def test_touching_segments_by_default_and_one_segment_with_ftetwild(case_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from workstation.bundle import load_case

    assert main(["tetmesh", str(case_path), "--segment", "liver", "--segment", "bone", "--size-mm", "5", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["quality"]["n_slivers"] == 0 and set(data["quality"]["region_volumes_mm3"]) == {"2", "4"}
    assert main(["tetmesh", str(case_path), "--segment", "liver", "--size-mm", "5", "--mesher", "ftetwild", "-q"]) == 0
    meshes = load_case(case_path).tet_meshes
    assert meshes["tet-liver+bone"].provenance["meshing"]["mesher"] == "fTetWild"  # auto: fTetWild for several
    assert meshes["tet-liver"].provenance["meshing"]["mesher"] == "fTetWild"


@pytest.mark.parametrize("argv", [
    ["tetmesh", "{case}", "--segment", "nope"],
    ["tetmesh", "{case}", "--segment", "liver", "--size-mm", "0"],
    ["tetmesh", "{case}", "--segment", "liver", "--size-mm", "0.001"],
    ["simulate", "{case}", "--segment", "liver", "--material", "liver", "--fix", "bone", "--push", "1,2:0,0,1"],
    ["simulate", "{case}", "--segment", "liver", "--material", "liver", "--fix", "bone"],
    ["simulate", "{case}", "--segment", "liver", "--material", "nope", "--fix", "bone", "--push", "0,0,16:0,0,1"],
    ["simulate", "{case}", "--segment", "liver", "--material", "liver", "--fix", "plane:1,2", "--push",
     "0,0,16:0,0,1"],
    ["simulate", "{case}", "--segment", "liver", "--material", "liver", "--fix", "bone", "--push", "0,0,16:0,0,1",
     "--vtu", "out.vtk"],
])
def test_bad_input_is_one_line_exit_3_and_the_case_is_unchanged(case_path: Path, argv: list[str],
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    before = manifest(case_path)
    assert main([a.replace("{case}", str(case_path)) for a in argv]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err and "Traceback" not in err
    assert manifest(case_path) == before


def test_unwritable_vtu_is_exit_4(case_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = manifest(case_path)
    assert main(["simulate", str(case_path), "--segment", "liver", "--material", "liver", "--fix", "bone", "--push",
                 "0,0,16:0,0,1", "--vtu", str(tmp_path / "missing" / "r.vtu")]) == 4
    assert manifest(case_path) == before
