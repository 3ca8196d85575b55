"""Tissue mechanics on a case: tet meshes of segments (one and two regions, voxel fallback), simulations
stored as records, VTU export, deformed surfaces, bad input; and the demo stage on the real sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mechanics.quality import tet_quality
from mechanics.selection import boundary_nodes
from workstation import simulate_case
from workstation.bundle import load_case, save_case
from workstation.errors import InputError, OutputError
from workstation.model import Case, LabelMap, Segment, Volume

SPACING = (1.5, 1.5, 2.0)


def phantom_case() -> Case:
    """A 'liver' ellipsoid resting on a 'bone' slab (they touch), plus a separate 'aorta' cylinder."""
    shape = (24, 40, 44)  # k, j, i
    volume = Volume.from_geometry(np.zeros(shape, np.int16), spacing_mm=SPACING, origin_lps=(-30, -30, -20),
                                  modality="CT")
    case = Case(name="phantom")
    volume = case.add_volume(volume)
    k, j, i = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    lps = volume.ijk_to_lps_points(np.stack([i, j, k], -1))
    x, y, z = lps[..., 0], lps[..., 1], lps[..., 2]
    labels = np.zeros(shape, np.uint8)
    labels[((x / 22) ** 2 + (y / 16) ** 2 + ((z - 4) / 12) ** 2 <= 1) & (z >= -4)] = 4  # liver, flat base at z = -4
    labels[(np.abs(x) <= 25) & (np.abs(y) <= 20) & (z >= -14) & (z < -4)] = 2    # bone slab just below
    labels[(np.hypot(x - 24, y + 20) <= 4) & (z > 0)] = 9                         # aorta, apart
    segments = (Segment(4, "liver"), Segment(2, "bone"), Segment(9, "aorta"))
    case.add_label_map(LabelMap(labels, volume.ijk_to_lps, segments=segments, id=f"{volume.id}-labels",
                                source_volume_id=volume.id))
    return case


def voxel_volume(case: Case, value: int) -> float:
    label_map = next(iter(case.label_maps.values()))
    return float(np.sum(label_map.array == value) * np.prod(SPACING))


def test_tetmesh_segment_is_stored_with_provenance_and_the_segment_volume() -> None:
    case = phantom_case()
    mesh = simulate_case.tetmesh_segment(case, "liver", size_mm=4.0)
    assert mesh.id == "tet-liver" and case.tet_meshes["tet-liver"] is mesh
    assert any(m.segment == "liver" or m.name == "liver" for m in case.meshes.values())  # surface built too
    q = tet_quality(mesh)
    assert q.n_inverted == 0 and q.n_degenerate == 0
    # The surface keeps the voxel volume; coarsening to 4 mm loses a little (stated bound 3%).
    assert q.volume_mm3 == pytest.approx(voxel_volume(case, 4), rel=0.03)
    assert set(np.unique(mesh.region_ids)) == {4}
    assert mesh.provenance["segments"] == ["liver"] and mesh.provenance["quality"]["n_tets"] == mesh.n_tets


def test_two_touching_segments_make_one_conforming_mesh() -> None:
    case = phantom_case()
    mesh = simulate_case.tetmesh_segments(case, ["liver", "bone"], size_mm=5.0)
    volumes = mesh.signed_volumes_mm3()
    assert mesh.id == "tet-liver+bone" and volumes.min() > 0
    assert set(np.unique(mesh.region_ids)) == {2, 4}
    for value in (2, 4):
        assert volumes[mesh.region_ids == value].sum() == pytest.approx(voxel_volume(case, value), rel=0.02)
    from mechanics.selection import interface_faces

    assert len(interface_faces(mesh, 4, 2)) > 20  # the liver rests on the bone: a shared, conforming interface


def test_union_mesh_with_regions_from_the_label_map() -> None:
    """The fallback for touching segments whose surfaces TetGen refuses: mesh the union, label each tet."""
    from mechanics.meshing import regions_from_labels, tetrahedralize
    from segmentation.surface import label_to_surface

    case = phantom_case()
    label_map = next(iter(case.label_maps.values()))
    union = label_map.with_array(np.where(np.isin(label_map.array, [4, 2]), 4, 0).astype(np.uint8))
    mesh = regions_from_labels(tetrahedralize(label_to_surface(union, 4), size_mm=3.0, repair=True), label_map, [4, 2])
    volumes = mesh.signed_volumes_mm3()
    assert set(np.unique(mesh.region_ids)) == {2, 4}
    for value in (2, 4):  # the interface is a staircase of tet faces: volumes within 5% at 3 mm elements
        assert volumes[mesh.region_ids == value].sum() == pytest.approx(voxel_volume(case, value), rel=0.05)
    assert mesh.provenance["regions"]["conforming_interfaces"] is False


def test_from_labels_volume_is_exact() -> None:
    case = phantom_case()
    mesh = simulate_case.tetmesh_segments(case, ["liver", "bone"], size_mm=1.0, from_labels=True)
    volumes = mesh.signed_volumes_mm3()
    for value in (2, 4):
        assert volumes[mesh.region_ids == value].sum() == pytest.approx(voxel_volume(case, value), rel=1e-12)
    assert mesh.provenance["source"] == "labels"


def test_simulate_stores_a_result_with_the_boundary_conditions_applied(tmp_path: Path) -> None:
    case = phantom_case()
    simulate_case.tetmesh_segment(case, "liver", size_mm=5.0)
    mesh = case.tet_meshes["tet-liver"]
    top = mesh.points_lps[np.argmax(mesh.points_lps[:, 2])]
    record, result = simulate_case.simulate(case, segment="liver", material="liver", fix=["bone"],
                                            pushes=[(top, (0.0, 0.0, -3.0))], push_radius_mm=6.0, name="press")
    assert case.record("simulation", "press") is record and record.meta["tet_mesh_id"] == "tet-liver"
    u = result.displacement_mm
    pushed = np.linalg.norm(mesh.points_lps - top, axis=1) <= 6.0
    pushed &= boundary_nodes(mesh)
    np.testing.assert_allclose(u[pushed], np.tile([0, 0, -3.0], (pushed.sum(), 1)), atol=1e-9)
    extra = record.meta["extra"]
    assert extra["n_fixed_nodes"] > 10 and extra["pushes"][0]["n_nodes"] == pushed.sum()
    fixed = np.linalg.norm(u, axis=1) == 0
    assert fixed.sum() >= extra["n_fixed_nodes"]
    assert 0 < result.max_displacement_mm <= 3.0 + 1e-9 and result.max_von_mises_pa > 0

    vtu = simulate_case.export_vtu(case, "press", tmp_path / "press.vtu")
    import pyvista as pv

    grid = pv.read(vtu)
    np.testing.assert_allclose(grid.point_data["displacement_mm"], u)
    np.testing.assert_allclose(grid.cell_data["von_mises_pa"], result.von_mises_pa)
    surface = result.deformed_surface(mesh)
    ids = np.asarray(surface.point_data["vtkOriginalPointIds"])
    np.testing.assert_allclose(surface.points, mesh.points_lps[ids] + u[ids])

    save_case(case, tmp_path / "case")
    loaded = load_case(tmp_path / "case")
    np.testing.assert_allclose(loaded.record("simulation", "press").arrays["displacement_mm"], u)
    assert loaded.tet_meshes["tet-liver"].n_tets == mesh.n_tets

    # Re-meshing drops results computed on the old mesh.
    simulate_case.tetmesh_segment(case, "liver", size_mm=6.0)
    assert case.records_of("simulation") == []


def test_plane_fix_and_bad_input_leave_the_case_unchanged(tmp_path: Path) -> None:
    case = phantom_case()
    simulate_case.tetmesh_segment(case, "liver", size_mm=6.0)
    mesh = case.tet_meshes["tet-liver"]
    mask = simulate_case.fix_mask(case, mesh, "plane:0,0,0:0,0,-1")
    np.testing.assert_array_equal(mask, mesh.points_lps[:, 2] <= 0)
    top = mesh.points_lps[np.argmax(mesh.points_lps[:, 2])]
    before = (dict(case.tet_meshes), dict(case.records))
    bad = [
        dict(segment="nope", material="liver", fix=["bone"], pushes=[(top, (0, 0, 1))]),
        dict(segment="liver", material="unobtainium", fix=["bone"], pushes=[(top, (0, 0, 1))]),
        dict(segment="liver", material="liver", fix=["plane:0,0,0"], pushes=[(top, (0, 0, 1))]),
        dict(segment="liver", material="liver", fix=["plane:0,0,500:0,0,1"], pushes=[(top, (0, 0, 1))]),
        dict(segment="liver", material="liver", fix=["aorta"], pushes=[(top, (0, 0, 1))]),
        dict(segment="liver", material="liver", fix=["bone"], pushes=[((0, 0, 900), (0, 0, 1))]),
        dict(segment="liver", material="liver", fix=[], pushes=[(top, (0, 0, 1))]),
    ]
    for kwargs in bad:
        with pytest.raises(InputError) as err:
            simulate_case.simulate(case, **kwargs)
        assert "\n" not in str(err.value)
    for size in (0.0, -1.0, float("nan"), 0.001):
        with pytest.raises(InputError):
            simulate_case.tetmesh_segment(case, "liver", size_mm=size)
    with pytest.raises(InputError, match=r"empty|no segment"):
        simulate_case.tetmesh_segment(case, "spleen")
    assert (dict(case.tet_meshes), dict(case.records)) == before
    with pytest.raises(InputError, match=r"\.vtu"):
        simulate_case.export_vtu(case, "x", tmp_path / "x.vtk")
    with pytest.raises(OutputError):
        simulate_case.export_vtu(case, "x", tmp_path / "missing" / "x.vtu")
    with pytest.raises(InputError, match="no simulation"):
        simulate_case.export_vtu(case, "x", tmp_path / "x.vtu")


def sample_liver_case() -> Case:
    """ct-abdomen-20 from ../shared/data with the liver grown from the sample's shipped seed points
    (the same steps as the demo, without its other outputs)."""
    import json

    from tests.conftest import shared_path
    from workstation import segment_case
    from workstation.demo import BACKGROUND, seed_strokes
    from workstation.importer import import_path
    from workstation.samples import SAMPLES_DIR

    case = import_path(shared_path("ct-abdomen-20", "dicom"), name="ct-abdomen-20").case
    plan = json.loads((SAMPLES_DIR / "ct-abdomen-20" / "seeds.json").read_text(encoding="utf-8"))
    step = next(s for s in plan["steps"] if s["tool"] == "grow_from_seeds")
    seeds, names = seed_strokes(step, case.volume())
    segment_case.grow_segments(case, seeds, background=BACKGROUND, names=names)
    return case


def test_demo_stage_on_the_real_sample_liver(tmp_path: Path) -> None:
    """The lead's demo calls this after segmentation; here on the real liver segment of ct-abdomen-20."""
    case = sample_liver_case()
    lines: list[str] = []
    outputs = simulate_case.mechanics_demo_stage(case, tmp_path, progress=None, say=lines.append)
    names = {p.name for p, _ in outputs}
    assert names == {"liver-retraction.vtu", "liver-retraction.png"}
    record = case.record("simulation", simulate_case.DEMO_RESULT)
    # Pushed 10 mm; neighbours of the pushed patch may move slightly more (Poisson effect), nothing far more.
    assert record.meta["converged"] and 10.0 - 1e-9 <= record.meta["max_displacement_mm"] < 11.0
    q = tet_quality(case.tet_meshes["tet-liver"])
    assert q.n_inverted == 0 and q.n_degenerate == 0
    # The liver segment keeps its voxel volume within 1% through surface, coarsening to 10 mm and TetGen.
    assert q.volume_mm3 == pytest.approx(voxel_volume_of(case, "liver"), rel=0.01)
    assert (tmp_path / "liver-retraction.png").stat().st_size > 10_000


def voxel_volume_of(case: Case, name: str) -> float:
    label_map = next(iter(case.label_maps.values()))
    value = label_map.segment(name).value
    return float(np.sum(label_map.array == value) * abs(np.linalg.det(label_map.ijk_to_lps[:3, :3])))


def test_the_mesher_can_be_chosen() -> None:
    case = phantom_case()
    envelope = simulate_case.tetmesh_segments(case, ["liver"], size_mm=5.0, mesher="ftetwild")
    assert envelope.provenance["meshing"]["mesher"] == "fTetWild"
    quality = tet_quality(envelope)
    assert quality.n_inverted == 0 and quality.min_dihedral_deg > 10.0
    assert quality.volume_mm3 == pytest.approx(voxel_volume(case, 4), rel=0.01)  # boundary offset to the volume
    both = simulate_case.tetmesh_segments(case, ["liver", "bone"], size_mm=5.0, mesher="tetgen")
    assert both.provenance["meshing"]["mesher"] == "tetgen"
    assert both.provenance["envelope_mesh_failed"].startswith("not tried")
    with pytest.raises(InputError, match="--mesher 'gmsh': one of auto, tetgen, ftetwild"):
        simulate_case.tetmesh_segments(case, ["liver"], mesher="gmsh")
