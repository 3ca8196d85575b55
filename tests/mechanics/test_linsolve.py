"""Sparse solvers: single-precision factors under PCG, reuse of factors across Newton tangents, indefinite tangents."""

from __future__ import annotations

import numpy as np
import pytest

from mechanics.fem.linsolve import (
    ANALYSIS_CACHE,
    TangentSolver,
    analysis_count,
    available_backends,
    clear_analysis_cache,
    factorise,
    pcg,
)
from mechanics.fem.problem import prepare
from mechanics.fem.static import assemble_corotated, solve_static
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



needs_pardiso = pytest.mark.skipif("pardiso" not in BACKENDS, reason="pypardiso (MKL PARDISO) not installed")


def _tangents(data: np.ndarray, indptr: np.ndarray, indices: np.ndarray) -> list[np.ndarray]:
    """SPD tangents of a converging Newton iteration on one pattern (diagonal stiffening shrinking 30% -> 0.2%)."""
    n = len(indptr) - 1
    diagonal = indices == np.repeat(np.arange(n), np.diff(indptr))
    rng = np.random.default_rng(11)
    return [(1.0 + 0.5 * s) * data + np.where(diagonal, s * rng.uniform(0.0, 1.0, len(data)) * data, 0.0)
            for s in (0.3, 0.06, 0.012, 0.002)]


def _solve_all(solver: TangentSolver, tangents: list[np.ndarray], b: np.ndarray) -> list[np.ndarray]:
    out = []
    for tangent in tangents:
        solver.set_matrix(tangent)
        out.append(solver.solve(b))
    return out


@needs_pardiso
def test_the_symbolic_analysis_is_done_once_per_pattern_and_reused_by_later_solvers() -> None:
    indptr, indices, data = _stiffness()
    tangents = _tangents(data, indptr, indices)
    b = np.random.default_rng(2).standard_normal(len(indptr) - 1)
    clear_analysis_cache()
    before = analysis_count()
    with TangentSolver(indptr, indices) as first:
        first.analyse()  # set-up: the analysis happens here, not in the first solve
        assert analysis_count() == before + 1 and first.stats["analyses"] == 1
        x_first = _solve_all(first, tangents, b)
        assert analysis_count() == before + 1  # refactorisations of later tangents reuse it
    # a later solve on the same mesh (new arrays, same pattern): analysis taken from the cache
    with TangentSolver(indptr.copy(), indices.copy()) as second:
        second.analyse()
        x_second = _solve_all(second, tangents, b)
        assert second.stats["analyses"] == 0 and second.stats["factorisations"] >= 1
    assert analysis_count() == before + 1
    # the same answers as a solver that analysed afresh, to round-off
    clear_analysis_cache()
    with TangentSolver(indptr, indices) as fresh:
        x_fresh = _solve_all(fresh, tangents, b)
        assert fresh.stats["analyses"] == 1
    for xs, xf, tangent in zip(x_second, x_fresh, tangents, strict=True):
        assert np.abs(xs - xf).max() <= 1e-8 * np.abs(xf).max()
        assert _relative_residual(indptr, indices, tangent, xs, b) <= 1.01e-10
    for xs, xf in zip(x_first, x_second, strict=True):
        assert np.abs(xs - xf).max() <= 1e-8 * np.abs(xf).max()
    clear_analysis_cache()


@needs_pardiso
def test_a_different_pattern_of_the_same_size_is_not_given_a_stale_analysis() -> None:
    from scipy.sparse import csr_matrix

    indptr, indices, data = _stiffness()
    n = len(indptr) - 1
    # the same matrix with rows and columns permuted: same size and nonzero count, different pattern
    perm = np.random.default_rng(4).permutation(n)
    a = csr_matrix((data, indices, indptr), shape=(n, n))[perm][:, perm].tocsr()
    a.sort_indices()
    assert a.nnz == len(data) and not np.array_equal(a.indices, indices)
    b = np.random.default_rng(6).standard_normal(n)
    clear_analysis_cache()
    with TangentSolver(indptr, indices) as original:
        original.analyse()
        _solve_all(original, [data], b)
    before = analysis_count()
    with TangentSolver(a.indptr, a.indices) as permuted:
        permuted.analyse()
        assert permuted.stats["analyses"] == 1 and analysis_count() == before + 1
        permuted.set_matrix(a.data)
        x = permuted.solve(b)
    assert _relative_residual(a.indptr, a.indices, a.data, x, b) <= 1.01e-10
    assert len(ANALYSIS_CACHE) == 2  # both analyses are now cached, each under its own pattern
    clear_analysis_cache()


@needs_pardiso
def test_a_cached_analysis_is_owned_by_one_solver_at_a_time() -> None:
    indptr, indices, data = _stiffness()
    b = np.random.default_rng(8).standard_normal(len(indptr) - 1)
    clear_analysis_cache()
    with TangentSolver(indptr, indices) as first:
        first.analyse()
    # two solvers alive at once (two worker threads): one takes the cached analysis, the other makes its own
    with TangentSolver(indptr, indices) as second, TangentSolver(indptr, indices) as third:
        second.analyse()
        third.analyse()
        assert (second.stats["analyses"], third.stats["analyses"]) == (0, 1)
        for solver, scale in ((second, 1.0), (third, 2.0)):
            solver.set_matrix(scale * data)
        for solver, scale in ((second, 1.0), (third, 2.0)):  # interleaved: neither factor clobbers the other
            x = solver.solve(b)
            assert _relative_residual(indptr, indices, scale * data, x, b) <= 1.01e-10
    clear_analysis_cache()


@pytest.mark.parametrize("backend", BACKENDS)
def test_release_and_analyse_keep_every_backend_working(backend: str) -> None:
    from scipy.sparse import csr_matrix

    indptr, indices, data = _stiffness()
    b = np.random.default_rng(1).standard_normal(len(indptr) - 1)
    for _ in range(2):  # the second round on the same pattern (cached analysis with PARDISO)
        with TangentSolver(indptr, indices, backend=backend) as solver:
            solver.analyse()  # a no-op without PARDISO
            solver.set_matrix(data)
            x = solver.solve(b)
            assert _relative_residual(indptr, indices, data, x, b) <= 1.01e-10
    factor = factorise(csr_matrix((data, indices, indptr), shape=(len(b),) * 2), backend=backend)
    assert _relative_residual(indptr, indices, data, factor.solve(b), b) < 1e-10
    factor.release()
    factor.release()  # harmless twice
    with pytest.raises(RuntimeError, match="released"):
        factor.solve(b)
    clear_analysis_cache()


@needs_pardiso
def test_a_second_neo_hookean_solve_on_the_same_mesh_reuses_the_analysis_and_gives_the_same_result() -> None:
    mesh = box_tet_mesh((4, 4, 4), (30.0, 30.0, 30.0))
    p = mesh.points_lps
    fixed = np.zeros((mesh.n_points, 3), dtype=bool)
    fixed[p[:, 2] < 1e-9] = True
    loads = np.zeros((mesh.n_points, 3))
    loads[np.isclose(p[:, 2], 30.0), 0] = 0.05
    material = Material(youngs_modulus_pa=5000.0, poisson_ratio=0.45)
    clear_analysis_cache()
    first = solve_static(mesh, material, fixed_dofs=fixed, nodal_forces_n=loads, model="neo-hookean", load_steps=2)
    count = analysis_count()
    second = solve_static(mesh, material, fixed_dofs=fixed, nodal_forces_n=loads, model="neo-hookean", load_steps=2)
    assert first.status == second.status == "converged"
    assert analysis_count() == count  # nothing analysed again
    scale = np.abs(first.displacement_mm).max()
    assert scale > 0.1 and np.abs(second.displacement_mm - first.displacement_mm).max() <= 1e-9 * scale
    clear_analysis_cache()
