"""Co-rotational and neo-Hookean static solvers: rotation invariance, small-load agreement, divergence."""

from __future__ import annotations

import numpy as np
import pytest

import mechanics
from mechanics.fem.structured import box_tet_mesh


def _rotation_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def test_rigid_rotation_is_stress_free_for_corotational_and_neo_hookean_not_for_linear() -> None:
    mesh = box_tet_mesh((3, 3, 3), (30.0, 30.0, 30.0))
    p = mesh.points_lps
    boundary = np.any((p < 1e-9) | (p > 30 - 1e-9), axis=1)
    moved = (p - 15.0) @ _rotation_z(np.radians(60)).T + 15.0 + np.array([5.0, -2.0, 1.0])
    fixed = np.zeros((mesh.n_points, 3), dtype=bool)
    fixed[boundary] = True
    prescribed = np.where(fixed, moved - p, 0.0)
    mat = mechanics.material("liver")
    linear = mechanics.solve_static(mesh, mat, fixed_dofs=fixed, prescribed_displacement_mm=prescribed)
    assert linear.max_von_mises_pa > 0.1 * mat.youngs_modulus_pa  # small strain sees a rotation as strain
    for model in ("corotational", "neo-hookean"):
        result = mechanics.solve_static(mesh, mat, fixed_dofs=fixed, prescribed_displacement_mm=prescribed,
                                        model=model, load_steps=3)
        assert result.converged, result.message
        assert np.abs(result.displacement_mm - (moved - p)).max() < 1e-6
        assert result.max_von_mises_pa < 1e-6 * mat.youngs_modulus_pa


def test_models_agree_for_small_loads_and_record_convergence() -> None:
    mesh = box_tet_mesh((8, 2, 2), (40.0, 10.0, 10.0))
    p = mesh.points_lps
    fixed = np.zeros((mesh.n_points, 3), dtype=bool)
    fixed[p[:, 0] < 1e-9] = True
    loads = np.zeros((mesh.n_points, 3))
    tip = np.isclose(p[:, 0], 40.0)
    loads[tip, 2] = -1e-6 / tip.sum()
    mat = mechanics.material("muscle")
    linear = mechanics.solve_static(mesh, mat, fixed_dofs=fixed, nodal_forces_n=loads)
    for model in ("corotational", "neo-hookean"):
        result = mechanics.solve_static(mesh, mat, fixed_dofs=fixed, nodal_forces_n=loads, model=model,
                                        load_steps=2)
        assert result.converged and len(result.history) == 2
        assert all(h.converged and len(h.residual_norms_n) >= 2 for h in result.history)
        assert np.abs(result.displacement_mm - linear.displacement_mm).max() < 1e-3 * linear.max_displacement_mm


def test_large_deflection_corotational_matches_neo_hookean_and_differs_from_linear() -> None:
    """A cantilever (100 x 10 x 10 mm) bent by a tip load to ~40% of its length.

    Linear elasticity moves the tip straight down; co-rotational and neo-Hookean swing it back towards the
    root (the chord shortens) and agree with each other within 1 mm.
    """
    mesh = box_tet_mesh((20, 2, 2), (100.0, 10.0, 10.0))
    p = mesh.points_lps
    fixed = np.zeros((mesh.n_points, 3), dtype=bool)
    fixed[p[:, 0] < 1e-9] = True
    loads = np.zeros((mesh.n_points, 3))
    tip = np.isclose(p[:, 0], 100.0)
    loads[tip, 2] = -0.005 / tip.sum()
    mat = mechanics.Material(youngs_modulus_pa=20000.0, poisson_ratio=0.3)
    linear = mechanics.solve_static(mesh, mat, fixed_dofs=fixed, nodal_forces_n=loads)
    corot = mechanics.solve_static(mesh, mat, fixed_dofs=fixed, nodal_forces_n=loads, model="corotational",
                                   load_steps=4, max_iterations=60, tolerance=1e-6)
    neo = mechanics.solve_static(mesh, mat, fixed_dofs=fixed, nodal_forces_n=loads, model="neo-hookean",
                                 load_steps=4)
    assert corot.converged and neo.converged, (corot.message, neo.message)
    assert linear.displacement_mm[tip, 2].mean() < -45
    assert abs(linear.displacement_mm[tip, 0].mean()) < 0.1
    assert corot.displacement_mm[tip, 0].mean() < -10.0
    assert np.abs(corot.displacement_mm[tip].mean(axis=0) - neo.displacement_mm[tip].mean(axis=0)).max() < 1.0


def test_newton_divergence_keeps_the_last_converged_step() -> None:
    """Squashing a cube to zero thickness: step 1 (half way) converges, step 2 cannot."""
    mesh = box_tet_mesh((2, 2, 2), (1.0, 1.0, 1.0))
    p = mesh.points_lps
    fixed = np.zeros((mesh.n_points, 3), dtype=bool)
    prescribed = np.zeros((mesh.n_points, 3))
    fixed[p[:, 0] < 1e-9] = True
    end = np.isclose(p[:, 0], 1.0)
    fixed[end] = True
    prescribed[end, 0] = -1.5
    result = mechanics.solve_static(mesh, mechanics.Material(youngs_modulus_pa=3000.0, poisson_ratio=0.3),
                                    fixed_dofs=fixed, prescribed_displacement_mm=prescribed, model="neo-hookean",
                                    load_steps=3)
    assert result.status == "diverged" and not result.converged
    assert result.load_steps_completed == 1
    assert "load step 2/3" in result.message
    assert result.displacement_mm[end, 0] == pytest.approx(np.full(int(end.sum()), -0.5))
    assert [h.converged for h in result.history] == [True, False]
