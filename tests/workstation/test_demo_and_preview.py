"""The headless demo on the bundled sample, and the patient-aligned previews it draws."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from workstation.bundle import load_case
from workstation.demo import run_demo
from workstation.export.plan_json import verify_plan
from workstation.model import Volume
from workstation.preview import resample_plane, write_previews

SEGMENTS = ["aorta", "bone", "liver", "spinal_cord", "vertebra_T12"]


def test_demo_makes_case_segments_surfaces_and_pictures(tmp_path: Path) -> None:
    import trimesh

    lines: list[str] = []
    made = run_demo(tmp_path / "out", say=lines.append)
    names = sorted(p.relative_to(tmp_path / "out").as_posix() for p, _ in made)
    assert names == sorted(["case", "preview-axial.png", "preview-coronal.png", "preview-sagittal.png",
                            "summary.json", "anatomy.3mf", "anatomy.png", "plan.json", "demo-site.key",
                            "liver-retraction.vtu", "liver-retraction.png", "report.html",
                            *(f"surfaces/{s}.stl" for s in SEGMENTS)])
    case = load_case(tmp_path / "out" / "case")
    assert case.volume().shape == (20, 512, 512)
    labels = case.label_maps["ct-labels"]
    assert sorted(s.name for s in labels.segments) == SEGMENTS
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["volume"]["shape"] == [20, 512, 512] and summary["coordinate_system"] == "LPS"
    assert summary["hounsfield_units"]["min"] == -1024 and summary["hounsfield_units"]["max"] == 1839
    stats = {s["name"]: s for s in summary["segments"]}
    assert stats["liver"]["mean"] == pytest.approx(90, abs=25) and stats["liver"]["volume_ml"] > 500
    assert stats["bone"]["mean"] > 250 and stats["aorta"]["mean"] == pytest.approx(150, abs=40)
    assert stats["spinal_cord"]["mean"] < 100 < stats["vertebra_T12"]["mean"]
    for segment in SEGMENTS:
        mesh = trimesh.load(tmp_path / "out" / "surfaces" / f"{segment}.stl", force="mesh")
        assert mesh.is_watertight, segment
    assert any("importing series 1" in line for line in lines)
    # The pedicle screws were checked against the aorta and the spinal cord, and the signed plan verifies.
    safety = {r.name: r.meta for r in case.records_of("safety")}
    assert sorted(safety) == ["T12 left pedicle screw", "T12 right pedicle screw"]
    for meta in safety.values():
        assert sorted(s["segment"] for s in meta["structures"]) == ["aorta", "spinal_cord"]
        assert meta["safe"] and meta["min_clearance_mm"] > 2.0
    simulation = case.record("simulation", case.records_of("simulation")[0].name)
    assert simulation.meta["max_displacement_mm"] == pytest.approx(10.0, abs=0.5)  # the retractor's 10 mm push
    assert simulation.arrays["displacement_mm"].shape == (case.tet_meshes[simulation.meta["tet_mesh_id"]].n_points, 3)
    report = (tmp_path / "out" / "report.html").read_text()
    assert report.count("data:image/png;base64,") >= 4 and "pedicle screw" in report
    key = (tmp_path / "out" / "demo-site.key").read_bytes()
    assert verify_plan(tmp_path / "out" / "plan.json", key).verified
    assert not verify_plan(tmp_path / "out" / "plan.json", bytes(32)).verified
    # Running it again updates the same bundle in place.
    run_demo(tmp_path / "out", say=lines.append)
    assert load_case(tmp_path / "out" / "case").volume().shape == (20, 512, 512)


def asymmetric_volume(direction: np.ndarray) -> Volume:
    """A 40 mm cube with a bright block in the patient's left-anterior-superior corner."""
    vol = Volume.from_geometry(np.zeros((40, 40, 40), np.int16), spacing_mm=[1, 1, 1], direction=direction,
                               origin_lps=[0, 0, 0], modality="CT")
    k, j, i = np.meshgrid(*(np.arange(40),) * 3, indexing="ij")
    lps = vol.ijk_to_lps_points(np.stack([i, j, k], -1))
    center = vol.corners_lps().mean(0)
    rel = lps - center
    block = (rel[..., 0] > 5) & (rel[..., 1] < -5) & (rel[..., 2] > 5)  # left, anterior, superior
    return vol.with_array(np.where(block, 1000, 0).astype(np.int16))


@pytest.mark.parametrize("direction", [np.eye(3), np.diag([-1.0, -1.0, 1.0]), np.diag([1.0, -1.0, -1.0])])
def test_planes_put_patient_directions_on_the_right_sides(direction: np.ndarray) -> None:
    vol = asymmetric_volume(direction)
    probe = vol.corners_lps().mean(0) + np.array([10.0, -10.0, 10.0])  # inside the block
    axial = resample_plane(vol, "axial", center_lps=probe)
    rows, cols = axial.pixels.shape
    # Radiological convention: patient left on screen right, anterior at the top.
    assert axial.letters == ("R", "L", "A", "P")
    assert axial.pixels[: rows // 2, cols // 2 :].mean() > 100 and axial.pixels[rows // 2 :, : cols // 2].max() == 0
    coronal = resample_plane(vol, "coronal", center_lps=probe)
    assert coronal.letters == ("R", "L", "S", "I")
    assert coronal.pixels[: rows // 2, cols // 2 :].mean() > 100 and coronal.pixels[rows // 2 :, :].max() == 0
    sagittal = resample_plane(vol, "sagittal", center_lps=probe)
    assert sagittal.letters == ("A", "P", "S", "I")
    assert sagittal.pixels[: rows // 2, : cols // 2].mean() > 100 and sagittal.pixels[:, cols // 2 :].max() == 0


def test_preview_pngs_show_the_image(tmp_path: Path) -> None:
    import matplotlib.image as mpimg

    paths = write_previews(asymmetric_volume(np.eye(3)), tmp_path)
    assert [p.name for p in paths] == ["preview-axial.png", "preview-coronal.png", "preview-sagittal.png"]
    pixels = mpimg.imread(paths[0])
    yellow = (pixels[..., 0] > 0.8) & (pixels[..., 1] > 0.8) & (pixels[..., 2] < 0.3)
    white = pixels[..., :3].min(axis=-1) > 0.95
    assert yellow.sum() > 50  # orientation letters
    assert white.sum() > 1000  # the bright block at W400/L40
