"""Result object: case record contract, VTU export, deformed surface."""

from __future__ import annotations

import json

import numpy as np
import pytest

import mechanics
from mechanics.fem.structured import box_tet_mesh
from workstation.errors import InputError
from workstation.model import Record


def _solved() -> tuple[mechanics.TetMesh, mechanics.SimulationResult]:
    mesh = box_tet_mesh((4, 2, 2), (40.0, 10.0, 10.0))
    fixed = np.zeros((mesh.n_points, 3), dtype=bool)
    fixed[mesh.points_lps[:, 0] < 1e-9] = True
    loads = np.zeros((mesh.n_points, 3))
    loads[np.isclose(mesh.points_lps[:, 0], 40.0), 2] = -1e-4
    result = mechanics.solve_static(mesh, mechanics.material("liver"), fixed_dofs=fixed, nodal_forces_n=loads,
                                    model="neo-hookean", load_steps=2)
    return mesh, result


def test_record_round_trip_keeps_arrays_meta_and_units() -> None:
    mesh, result = _solved()
    record = result.to_record("press", "tet-1", extra={"fixed": "x = 0 face"})
    assert isinstance(record, Record) and record.kind == "simulation" and record.name == "press"
    meta = json.loads(json.dumps(record.meta))
    assert meta["tet_mesh_id"] == "tet-1" and meta["coordinate_system"] == "LPS"
    assert meta["model"] == "neo-hookean" and meta["converged"] is True and meta["load_steps"] == 2
    assert meta["materials"][0]["name"] == "liver" and meta["materials"][0]["youngs_modulus_pa"] == 5500.0
    assert meta["max_displacement_mm"] == pytest.approx(result.max_displacement_mm)
    assert meta["max_von_mises_pa"] == pytest.approx(result.max_von_mises_pa)
    assert len(meta["convergence"]) == 2 and meta["extra"]["fixed"] == "x = 0 face"
    assert record.arrays["displacement_mm"].shape == (mesh.n_points, 3)
    assert record.arrays["von_mises_pa"].shape == (mesh.n_tets,)
    assert record.arrays["strain"].shape == (mesh.n_tets, 6)
    assert "tool_force_n" not in record.arrays
    back = mechanics.SimulationResult.from_record(record)
    assert np.array_equal(back.displacement_mm, result.displacement_mm)
    assert np.array_equal(back.von_mises_pa, result.von_mises_pa)
    assert back.history[1].residual_norms_n == pytest.approx(result.history[1].residual_norms_n)
    assert back.status == "converged" and back.model == "neo-hookean"
    with pytest.raises(InputError, match="not a mechanics simulation"):
        mechanics.SimulationResult.from_record(Record(kind="simulation", meta={}, name="x"))


def test_tool_curve_is_part_of_the_record() -> None:
    _, result = _solved()
    from dataclasses import replace

    with_tool = replace(result, tool_displacement_mm=np.array([0.0, 1.0]),
                        tool_force_n=np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.1]]), tool={"kind": "sphere"})
    record = with_tool.to_record("probe", "tet-1")
    assert record.arrays["tool_force_n"].shape == (2, 3)
    assert record.meta["tool"]["force_convention"].startswith("force the tissue exerts on the tool")
    back = mechanics.SimulationResult.from_record(record)
    assert np.array_equal(back.tool_force_n, with_tool.tool_force_n)


def test_vtu_export_reads_back_in_pyvista(tmp_path) -> None:
    pv = pytest.importorskip("pyvista")
    mesh, result = _solved()
    path = tmp_path / "result.vtu"
    result.save_vtu(mesh, path)
    grid = pv.read(str(path))
    assert grid.n_points == mesh.n_points and grid.n_cells == mesh.n_tets
    assert np.allclose(grid.point_data["displacement_mm"], result.displacement_mm)
    assert np.allclose(grid.cell_data["von_mises_pa"], result.von_mises_pa)
    assert [p.name for p in tmp_path.iterdir()] == ["result.vtu"]  # atomic: no temporary left behind
    with pytest.raises(InputError, match=r"\.vtu"):
        result.save_vtu(mesh, tmp_path / "result.vtk")
    surface = result.deformed_surface(mesh)
    assert surface.n_cells == len(mechanics.boundary_faces(mesh))
    assert np.allclose(surface.points, result.deformed_points_mm(mesh)[surface.point_data["vtkOriginalPointIds"]])
