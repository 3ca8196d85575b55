"""Linear static solver: patch test, units, loads, reactions, per-region materials, bad input."""

from __future__ import annotations

import numpy as np
import pytest

import mechanics
from mechanics.fem.structured import box_tet_mesh
from mechanics.fem.verification import mirrored_box_mesh
from workstation.errors import InputError


def _distorted_patch() -> tuple[mechanics.TetMesh, np.ndarray]:
    box = mirrored_box_mesh((3, 3, 3), (3.0, 2.0, 1.5))
    p = np.array(box.points_lps)
    boundary = np.zeros(len(p), dtype=bool)
    for axis, size in enumerate((3.0, 2.0, 1.5)):
        boundary |= np.isclose(p[:, axis], 0.0) | np.isclose(p[:, axis], size)
    rng = np.random.default_rng(7)
    p[~boundary] += rng.uniform(-0.15, 0.15, (int((~boundary).sum()), 3))
    return mechanics.TetMesh(p, box.tets), boundary


def test_patch_test_is_exact_to_round_off() -> None:
    """A linear displacement field prescribed on the boundary is reproduced inside a distorted mesh."""
    mesh, boundary = _distorted_patch()
    grad = np.array([[1e-3, 2e-4, -3e-4], [5e-4, -2e-3, 1e-4], [0.0, 3e-4, 1.5e-3]])
    exact = mesh.points_lps @ grad.T + np.array([0.01, -0.02, 0.03])
    fixed = np.zeros((mesh.n_points, 3), dtype=bool)
    fixed[boundary] = True
    mat = mechanics.Material(youngs_modulus_pa=1e6, poisson_ratio=0.3)
    result = mechanics.solve_static(mesh, mat, fixed_dofs=fixed, prescribed_displacement_mm=np.where(fixed, exact, 0))
    assert np.abs(result.displacement_mm - exact).max() < 1e-13
    eps = 0.5 * (grad + grad.T)
    sigma = mat.lame_lambda_pa * np.trace(eps) * np.eye(3) + 2 * mat.shear_modulus_pa * eps
    dev = sigma - np.trace(sigma) / 3 * np.eye(3)
    von_mises = np.sqrt(1.5 * np.sum(dev * dev))
    assert np.allclose(result.von_mises_pa, von_mises, rtol=1e-10)
    assert np.allclose(result.strain, [eps[0, 0], eps[1, 1], eps[2, 2], eps[0, 1], eps[1, 2], eps[0, 2]], atol=1e-15)
    # interior nodes carry no reaction; reactions balance (no external load)
    assert np.abs(result.reaction_forces_n[~boundary]).max() == 0.0
    assert np.abs(result.reaction_forces_n.sum(axis=0)).max() < 1e-12


def _bar(shape: tuple[int, int, int] = (10, 2, 2)) -> tuple[mechanics.TetMesh, np.ndarray]:
    """A 100 x 10 x 10 mm bar along x, held at x = 0 by rollers plus three points against rigid motion."""
    mesh = box_tet_mesh(shape, (100.0, 10.0, 10.0))
    p = mesh.points_lps
    left = p[:, 0] < 1e-9
    fixed = np.zeros((mesh.n_points, 3), dtype=bool)
    fixed[left, 0] = True
    fixed[left & (p[:, 1] < 1e-9) & (p[:, 2] < 1e-9)] = True
    fixed[left & (p[:, 1] < 1e-9) & (p[:, 2] > 9.99), 1] = True
    fixed[left & (p[:, 1] > 9.99) & (p[:, 2] < 1e-9), 2] = True
    return mesh, fixed


def test_units_uniaxial_bar_mm_newton_pascal() -> None:
    """10 N on a 100 mm^2 section (0.1 MPa) with E = 1 MPa over 100 mm stretches the bar 10 mm."""
    mesh, fixed = _bar()
    faces = mechanics.boundary_faces(mesh)
    right = faces[np.all(np.isclose(mesh.points_lps[faces][:, :, 0], 100.0), axis=1)]
    loads = mechanics.area_force_n(mesh, right, [10.0, 0.0, 0.0])
    assert loads.sum(axis=0) == pytest.approx([10.0, 0.0, 0.0])
    result = mechanics.solve_static(mesh, mechanics.Material(youngs_modulus_pa=1e6, poisson_ratio=0.3),
                                    fixed_dofs=fixed, nodal_forces_n=loads)
    tip = np.isclose(mesh.points_lps[:, 0], 100.0)
    assert result.displacement_mm[tip, 0] == pytest.approx(10.0, rel=1e-10)
    assert result.von_mises_pa == pytest.approx(np.full(mesh.n_tets, 1e5), rel=1e-9)
    assert result.strain[:, 0] == pytest.approx(np.full(mesh.n_tets, 0.1), rel=1e-9)
    assert result.strain[:, 1] == pytest.approx(np.full(mesh.n_tets, -0.03), rel=1e-9)
    assert result.reaction_forces_n.sum(axis=0) == pytest.approx([-10.0, 0.0, 0.0], abs=1e-9)


def test_pressure_and_traction_loads_integrate_to_the_total_force() -> None:
    mesh, _ = _bar((4, 2, 2))
    faces = mechanics.boundary_faces(mesh)
    assert len(faces) == 2 * (4 * 2 + 4 * 2 + 2 * 2) * 2
    right = faces[np.all(np.isclose(mesh.points_lps[faces][:, :, 0], 100.0), axis=1)]
    push = mechanics.pressure_forces_n(mesh, right, 2000.0)  # 2 kPa on 100 mm^2 = 0.2 N into the body
    assert push.sum(axis=0) == pytest.approx([-0.2, 0.0, 0.0])
    pull = mechanics.traction_forces_n(mesh, right, [0.0, 1000.0, 0.0])
    assert pull.sum(axis=0) == pytest.approx([0.0, 0.1, 0.0])
    point = mechanics.point_force_n(mesh, 3, [1.0, 2.0, 3.0])
    assert point[3].tolist() == [1.0, 2.0, 3.0] and np.abs(point).sum() == 6.0
    with pytest.raises(InputError, match="node"):
        mechanics.point_force_n(mesh, mesh.n_points, [1.0, 0.0, 0.0])


def test_gravity_reaction_equals_weight() -> None:
    mesh = box_tet_mesh((4, 4, 4), (40.0, 40.0, 40.0))
    fixed = np.zeros((mesh.n_points, 3), dtype=bool)
    fixed[mesh.points_lps[:, 2] < 1e-9] = True
    mat = mechanics.Material(youngs_modulus_pa=5000.0, poisson_ratio=0.45, density_kg_m3=1000.0)
    result = mechanics.solve_static(mesh, mat, fixed_dofs=fixed, gravity_m_s2=[0.0, 0.0, -9.81])
    weight_n = 1000.0 * (0.04 ** 3) * 9.81
    assert result.reaction_forces_n.sum(axis=0) == pytest.approx([0.0, 0.0, weight_n], rel=1e-9, abs=1e-12)
    assert result.displacement_mm[:, 2].max() <= 1e-12 and result.displacement_mm[:, 2].min() < -0.1


def test_per_region_materials_in_series() -> None:
    """Two halves of a bar with E and 3E: the stiff half stretches a third as much."""
    mesh, fixed = _bar((10, 2, 2))
    centroid_x = mesh.points_lps[mesh.tets].mean(axis=1)[:, 0]
    regions = np.where(centroid_x < 50.0, 1, 2)
    mesh = mechanics.TetMesh(mesh.points_lps, mesh.tets, regions)
    faces = mechanics.boundary_faces(mesh)
    right = faces[np.all(np.isclose(mesh.points_lps[faces][:, :, 0], 100.0), axis=1)]
    loads = mechanics.area_force_n(mesh, right, [10.0, 0.0, 0.0])
    soft = mechanics.Material(youngs_modulus_pa=1e6, poisson_ratio=0.0, name="soft")
    stiff = mechanics.Material(youngs_modulus_pa=3e6, poisson_ratio=0.0, name="stiff")
    result = mechanics.solve_static(mesh, {1: soft, 2: stiff}, fixed_dofs=fixed, nodal_forces_n=loads)
    mid = np.isclose(mesh.points_lps[:, 0], 50.0)
    tip = np.isclose(mesh.points_lps[:, 0], 100.0)
    assert result.displacement_mm[mid, 0] == pytest.approx(5.0, rel=1e-9)
    assert result.displacement_mm[tip, 0] == pytest.approx(5.0 + 5.0 / 3.0, rel=1e-9)
    assert [m["name"] for m in result.materials] == ["soft", "stiff"]
    with pytest.raises(InputError, match="region id"):
        mechanics.solve_static(mesh, {1: soft}, fixed_dofs=fixed, nodal_forces_n=loads)


def test_unconstrained_model_is_refused_with_the_free_modes_named() -> None:
    mesh, _ = _bar((3, 1, 1))
    mat = mechanics.material("liver")
    with pytest.raises(InputError, match="rigid-body motion: 6 of 6"):
        mechanics.solve_static(mesh, mat, fixed_dofs=np.zeros((mesh.n_points, 3), dtype=bool))
    only_x = np.zeros((mesh.n_points, 3), dtype=bool)
    only_x[mesh.points_lps[:, 0] < 1e-9, 0] = True  # a roller face: y, z translation and rotation about x free
    with pytest.raises(InputError, match=r"3 of 6.*rotation about x.*translation along y.*translation along z"):
        mechanics.solve_static(mesh, mat, fixed_dofs=only_x)
    one_node = np.zeros((mesh.n_points, 3), dtype=bool)
    one_node[0] = True  # a ball joint: rotations free
    with pytest.raises(InputError, match="3 of 6 rigid modes"):
        mechanics.solve_static(mesh, mat, fixed_dofs=one_node)


def test_each_disconnected_part_must_be_held() -> None:
    a = box_tet_mesh((1, 1, 1), (1.0, 1.0, 1.0))
    b = box_tet_mesh((1, 1, 1), (1.0, 1.0, 1.0), origin_mm=(5.0, 0.0, 0.0))
    mesh = mechanics.TetMesh(np.vstack([a.points_lps, b.points_lps]), np.vstack([a.tets, b.tets + a.n_points]))
    fixed = np.zeros((mesh.n_points, 3), dtype=bool)
    fixed[: a.n_points] = True
    with pytest.raises(InputError, match="mesh part 2 of 2"):
        mechanics.solve_static(mesh, mechanics.material("liver"), fixed_dofs=fixed)


def test_inverted_and_degenerate_elements_are_named_before_solving() -> None:
    mesh = box_tet_mesh((2, 1, 1), (2.0, 1.0, 1.0))
    tets = np.array(mesh.tets)
    tets[3] = tets[3][[0, 2, 1, 3]]  # inverted
    points = np.array(mesh.points_lps)
    flat = mechanics.TetMesh(np.vstack([points, [[0.5, 0.5, 0.0], [0.6, 0.5, 0.0]]]),
                             np.vstack([tets, [[0, 4, mesh.n_points, mesh.n_points + 1]]]))  # all at z = 0
    fixed = np.ones((flat.n_points, 3), dtype=bool)
    with pytest.raises(InputError, match=r"1 inverted and 1 degenerate tetrahedra \(indices 3, 12\)"):
        mechanics.solve_static(flat, mechanics.material("liver"), fixed_dofs=fixed)


def test_bad_arguments_are_input_errors() -> None:
    mesh, fixed = _bar((2, 1, 1))
    mat = mechanics.material("liver")
    with pytest.raises(InputError, match="model"):
        mechanics.solve_static(mesh, mat, fixed_dofs=fixed, model="plastic")
    with pytest.raises(InputError, match="fixed_dofs: expected shape"):
        mechanics.solve_static(mesh, mat, fixed_dofs=np.ones((2, 3), dtype=bool))
    with pytest.raises(InputError, match="nodal_forces_n"):
        mechanics.solve_static(mesh, mat, fixed_dofs=fixed, nodal_forces_n=np.full((mesh.n_points, 3), np.nan))
    with pytest.raises(InputError, match="prescribed_displacement_mm: non-zero"):
        mechanics.solve_static(mesh, mat, fixed_dofs=fixed, prescribed_displacement_mm=np.ones((mesh.n_points, 3)))
    with pytest.raises(InputError, match="load_steps"):
        mechanics.solve_static(mesh, mat, fixed_dofs=fixed, load_steps=0)
    with pytest.raises(InputError, match="mesh"):
        mechanics.solve_static("mesh.vtu", mat, fixed_dofs=fixed)
