"""``twin plan`` and ``twin register`` on a small phantom case: JSON shapes, stored results, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from workstation.bundle import load_case, save_case
from workstation.cli.main import main
from workstation.model import Case, LabelMap, Segment, Volume


@pytest.fixture(scope="module")
def phantom_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64 x 64 x 48 mm case (1 mm voxels, origin (-32, -32, -24) LPS): a 'vertebra' box at the centre, an
    'aorta' cylinder (radius 6 mm) along z at x = 20, y = 0 and a 'spinal_cord' cylinder (radius 3) at y = 14."""
    shape = (48, 64, 64)
    k, j, i = np.indices(shape)
    x, y = i - 32.0, j - 32.0
    labels = np.zeros(shape, np.uint8)
    labels[(np.abs(x) <= 8) & (np.abs(y) <= 8) & (np.abs(k - 24.0) <= 10)] = 1
    labels[(x - 20) ** 2 + y**2 <= 36] = 2
    labels[x**2 + (y - 14) ** 2 <= 9] = 3
    affine = np.eye(4)
    affine[:3, 3] = [-32, -32, -24]
    case = Case(name="phantom")
    volume = case.add_volume(Volume(np.where(labels > 0, 300, 0).astype(np.int16), affine, modality="CT",
                                    id="ct", name="ct"))
    case.add_label_map(LabelMap(labels, affine, segments=(Segment(1, "vertebra"), Segment(2, "aorta"),
                                                          Segment(3, "spinal_cord")), id=f"{volume.id}-labels"))
    path = tmp_path_factory.mktemp("plan") / "case"
    save_case(case, path)
    return path


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(list(args)) == 0
    return json.loads(capsys.readouterr().out)


def test_trajectory_check_and_list(phantom_case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = str(phantom_case)
    # along y at x = 0, z = 0: from y = -30 into the vertebra centre; the cord (y = 14) is beyond the target
    assert main(["plan", case, "add-trajectory", "--name", "left", "--entry", "0,-30,0", "--target", "0,-2,0",
                 "--diameter-mm", "4", "-q"]) == 0
    assert main(["plan", case, "add-landmark", "--name", "tip", "--point", "0,-2,0", "-q"]) == 0
    data = run_json(capsys, "plan", case, "check", "--critical", "aorta,spinal_cord", "--margin-mm", "3",
                    "--entry-surface", "vertebra", "--json")
    (t,) = data["trajectories"]
    by = {s["segment"]: s for s in t["structures"]}
    assert set(by) == {"aorta", "spinal_cord"}
    # analytic: aorta surface at x = 14 -> axis distance 14; cord surface at y = 11 -> 13 (voxel surfaces: +-1 mm)
    assert by["aorta"]["min_distance_mm"] == pytest.approx(14.0, abs=1.0)
    assert by["spinal_cord"]["min_distance_mm"] == pytest.approx(13.0, abs=1.0)
    assert by["aorta"]["clearance_mm"] == pytest.approx(by["aorta"]["min_distance_mm"] - 2.0)
    assert len(by["aorta"]["closest_point_tool_lps"]) == 3 and not by["aorta"]["violated"]
    assert t["entry_angle_deg"] is not None and t["safe"] is True
    stored = load_case(phantom_case).record("safety", "left")
    assert stored.meta["margin_mm"] == 3.0 and len(stored.meta["structures"]) == 2
    listing = run_json(capsys, "plan", case, "list", "--json")
    assert [x["name"] for x in listing["trajectories"]] == ["left"]
    assert listing["landmarks"][0]["position_lps"] == [0.0, -2.0, 0.0]
    assert listing["coordinate_system"] == "LPS" and listing["safety"][0]["name"] == "left"
    # a tool through the cord is a violation
    assert main(["plan", case, "add-trajectory", "--name", "bad", "--entry", "0,30,0", "--target", "0,0,0",
                 "--diameter-mm", "2", "-q"]) == 0
    data = run_json(capsys, "plan", case, "check", "--critical", "spinal_cord", "--trajectory", "bad", "--json")
    assert data["safe"] is False and data["trajectories"][0]["violations"] == ["spinal_cord"]
    assert main(["plan", case, "remove", "bad", "-q"]) == 0
    assert [t.name for t in load_case(phantom_case).plan.trajectories] == ["left"]


def test_propose_json(phantom_case: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    entries = tmp_path / "entries.csv"
    entries.write_text("# x,y,z\n-30,0,0\n30,-5,0\n0,-30,0\n")
    data = run_json(capsys, "plan", str(phantom_case), "propose", "--target", "0,0,0", "--entry-region",
                    str(entries), "--critical", "aorta", "--diameter-mm", "2", "--top", "3", "--json")
    ranked = data["proposals"]
    assert len(ranked) == 3
    assert ranked[0]["entry_lps"] == [-30.0, 0.0, 0.0]  # straight away from the aorta at +x
    assert ranked[-1]["entry_lps"] == [30.0, -5.0, 0.0] and ranked[-1]["safe"] is False  # through the aorta
    assert [p["min_clearance_mm"] for p in ranked] == sorted((p["min_clearance_mm"] for p in ranked), reverse=True)


def test_register_json_and_stored(phantom_case: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    image = rng.uniform(-30, 30, (8, 3))
    angle = np.radians(20)
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    patient = image @ rot.T + [10, 20, 30] + rng.normal(0, 0.05, image.shape)
    files = {name: tmp_path / f"{name}.csv" for name in ("img", "pat", "tgt")}
    np.savetxt(files["img"], image, delimiter=",")
    np.savetxt(files["pat"], patient, delimiter=",")
    np.savetxt(files["tgt"], [[0, 0, 0], [5, 5, 5]], delimiter=",")
    data = run_json(capsys, "register", str(phantom_case), "--image-points", str(files["img"]), "--patient-points",
                    str(files["pat"]), "--targets", str(files["tgt"]), "--json")
    m = np.array(data["image_to_patient"])
    assert m.shape == (4, 4)
    np.testing.assert_allclose(m[:3, :3], rot, atol=5e-3)
    assert len(data["fre_per_point_mm"]) == 8 and len(data["predicted_tre_mm"]) == 2 and data["fre_mm"] > 0
    stored = load_case(phantom_case).registrations["image-to-patient"]
    assert stored.from_frame == "image" and stored.to_frame == "patient"
    np.testing.assert_allclose(stored.matrix, m, atol=1e-12)
    assert stored.predicted_tre_mm == pytest.approx(data["predicted_tre_mm"])


@pytest.mark.parametrize("problem", ["collinear", "mismatched", "garbage", "missing"])
def test_register_refuses_bad_points(phantom_case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     problem: str) -> None:
    img, pat = tmp_path / "img.csv", tmp_path / "pat.csv"
    img.write_text("0,0,0\n1,1,1\n2,2,2\n3,3,3\n" if problem == "collinear" else "0,0,0\n10,0,0\n0,10,0\n0,0,10\n")
    pat.write_text({"mismatched": "0,0,0\n10,0,0\n0,10,0\n", "garbage": "0,0,0\n10,0\n0,10,0\n0,0,10\n"}.get(
        problem, "0,0,0\n10,0,0\n0,10,0\n0,0,10\n"))
    before = (phantom_case / "manifest.json").read_bytes()
    code = main(["register", str(phantom_case), "--image-points", str(img), "--patient-points",
                 str(tmp_path / "absent.csv") if problem == "missing" else str(pat)])
    err = capsys.readouterr().err
    assert code == 3 and len(err.strip().splitlines()) == 1, err
    assert {"collinear": "collinear", "mismatched": "paired by order", "garbage": "line 2",
            "missing": "cannot be read"}[problem] in err
    assert (phantom_case / "manifest.json").read_bytes() == before  # nothing saved


def test_plan_refusals(phantom_case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = str(phantom_case)
    assert main(["plan", case, "add-trajectory", "--name", "z", "--entry", "0,0,0", "--target", "0,0,0",
                 "--diameter-mm", "2"]) == 3
    assert main(["plan", case, "add-trajectory", "--name", "z", "--entry", "0,0", "--target", "0,0,5",
                 "--diameter-mm", "2"]) == 3
    assert main(["plan", case, "add-trajectory", "--name", "z", "--entry", "0,0,9", "--target", "0,0,5",
                 "--diameter-mm", "-1"]) == 3
    assert main(["plan", case, "check", "--critical", "pancreas"]) == 3
    assert main(["plan", case, "remove", "nothing-called-this"]) == 3
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 5 and "pancreas" in errors[3]


def test_resection_plane_check(tmp_path: Path, phantom_case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    case = tmp_path / "case"
    shutil.copytree(phantom_case, case)
    # keep x <= 9.5 (normal -x, kept side +1): removes the aorta (x 14..26) entirely and no vertebra (|x| <= 8)
    assert main(["plan", str(case), "add-plane", "--name", "cut", "--origin", "9.5,0,0", "--normal", "-1,0,0",
                 "-q"]) == 0
    data = run_json(capsys, "plan", str(case), "check", "--target-segment", "aorta", "--json")
    (plane,) = data["resection_planes"]
    assert plane["removed_ml"]["vertebra"] == 0.0
    assert plane["removed_ml"]["aorta"] == pytest.approx(plane["total_ml"]["aorta"]) and plane["total_ml"]["aorta"] > 0
    assert plane["target_margin_mm"] == pytest.approx(14 - 9.5)  # first aorta voxel centre at x = 14
    assert load_case(case).record("safety", "cut").meta["resection_plane"] == "cut"
