"""Sparse solvers: single-precision factors under PCG, reuse of factors across Newton tangents, indefinite tangents."""

from __future__ import annotations

import numpy as np
import pytest

from mechanics.fem.linsolve import TangentSolver, available_backends, factorise, pcg
from mechanics.fem.problem import prepare
from mechanics.fem.static import assemble_corotated
from mechanics.fem.structured import box_tet_mesh
from mechanics.materials import Material


def _stiffness() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR (indptr, indices, data) of the clamped stiffness of a soft 30 mm block (E = 5 kPa, nu = 0.45)."""
    mesh = box_tet_mesh((5, 5, 5), (30.0, 30.0, 30.0))
    fixed = np.zeros((mesh.n_points, 3), dtype=bool)
    fixed[mesh.points_lps[:, 2] < 1e-9] = True
    problem = prepare(mesh, Material(youngs_modulus_pa=5000.0, poisson_ratio=0.45), fixed_dofs=fixed)
    _, data = assemble_corotated(problem, np.zeros((mesh.n_points, 3)), np.repeat(np.eye(3)[None], mesh.n_tets, 0),
                                 update_rotations=False)
    return problem.pattern.indptr, problem.pattern.indices, data


def _relative_residual(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, x: np.ndarray,
                       b: np.ndarray) -> float:
    from scipy.sparse import csr_matrix

    a = csr_matrix((data, indices, indptr), shape=(len(indptr) - 1,) * 2)
    return float(np.linalg.norm(a @ x - b) / np.linalg.norm(b))


BACKENDS = available_backends()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_single_precision_factor_preconditions_pcg_to_double_accuracy(backend: str) -> None:
    indptr, indices, data = _stiffness()
    from scipy.sparse import csr_matrix

    a = csr_matrix((data, indices, indptr), shape=(len(indptr) - 1,) * 2)
    factor = factorise(a, backend=backend, single=True)
    assert factor.single == (backend == "pardiso")  # only PARDISO offers single precision
    b = np.random.default_rng(3).standard_normal(a.shape[0])
    x, iterations, rel = pcg(a.dot, b, factor, np.zeros_like(b), 1e-12, 0.0, 50)
    assert rel <= 1e-12 and _relative_residual(indptr, indices, data, x, b) < 1e-11
    assert iterations <= 8  # the factor is of this very matrix: only its rounding is left to correct


@pytest.mark.parametrize("backend", BACKENDS)
def test_newton_tangents_are_solved_to_tolerance_with_fewer_factorisations_than_solves(backend: str) -> None:
    indptr, indices, data = _stiffness()
    n = len(indptr) - 1
    diagonal = indices == np.repeat(np.arange(n), np.diff(indptr))
    rng = np.random.default_rng(5)
    solver = TangentSolver(indptr, indices, tolerance=1e-10, backend=backend)
    scale = 0.3
    for _ in range(6):  # SPD tangents of a converging Newton iteration: changes shrinking from 30% to 0.01%
        stiffer = np.zeros(len(data))
        stiffer[diagonal] = scale * rng.uniform(0.0, 1.0, n) * data[diagonal]
        tangent = (1.0 + 0.5 * scale) * data + stiffer
        scale *= 0.2
        b = rng.standard_normal(len(indptr) - 1)
        solver.set_matrix(tangent)
        x = solver.solve(b)
        assert _relative_residual(indptr, indices, tangent, x, b) <= 1.01e-10
    assert solver.stats["solves"] == 6
    assert solver.stats["factorisations"] < 6  # later tangents reuse an earlier factor as preconditioner
    assert solver.stats["indefinite_factorisations"] == 0
    # a looser forcing term is honoured, never a tighter one than asked
    solver.set_matrix(data)
    b = rng.standard_normal(len(indptr) - 1)
    assert _relative_residual(indptr, indices, data, solver.solve(b, tolerance=1e-3), b) <= 1e-3


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_indefinite_tangent_is_solved_by_a_pivoting_factorisation(backend: str) -> None:
    indptr, indices, data = _stiffness()
    n = len(indptr) - 1
    rows = np.repeat(np.arange(n), np.diff(indptr))
    diagonal = indices == rows
    shift = np.sort(data[diagonal])[n // 2]  # pushes about half the spectrum below zero
    indefinite = data - shift * diagonal
    b = np.random.default_rng(9).standard_normal(n)
    solver = TangentSolver(indptr, indices, backend=backend)
    solver.set_matrix(indefinite)
    x = solver.solve(b)
    assert _relative_residual(indptr, indices, indefinite, x, b) < 1e-8
    if backend == "pardiso":  # a positive-definite factorisation is refused; SuperLU's LU may still serve PCG
        assert solver.stats["indefinite_factorisations"] == 1
    for _ in range(3):  # positive definite again: back to the positive-definite route (PARDISO: after its inertia)
        solver.set_matrix(data)
        x = solver.solve(b)
        assert _relative_residual(indptr, indices, data, x, b) <= 1.01e-10
    assert solver.stats["factorisations"] >= 1 and solver.stats["indefinite_factorisations"] <= 2

