"""Static solvers: linear elastic, co-rotational (large rotation, small strain), compressible neo-Hookean.

Nonlinear models apply loads (forces and prescribed displacements) in ``load_steps`` equal increments.
The neo-Hookean solver uses Newton-Raphson with a backtracking line search on the total potential energy;
the co-rotational solver iterates with the rotated (warped) stiffness as tangent. The linear systems are
solved by :class:`~mechanics.fem.linsolve.TangentSolver` (an earlier tangent's factorisation reused as PCG
preconditioner) to an inexact-Newton forcing term (at most 1e-2 relative, shrinking as the iteration
converges); the convergence test is on the true nonlinear residual, as with exact solves. A step that does not
converge stops the solve: the result keeps the displacement of the last converged step, ``status`` says
``"diverged"`` (or ``"max-iterations"``) and ``load_steps_completed`` the step reached.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from mechanics.fem import kernels
from mechanics.fem.elements import linear_stress_mpa, small_strain, voigt6, von_mises
from mechanics.fem.linsolve import TangentSolver, factorise
from mechanics.fem.problem import MODELS, Problem, prepare
from mechanics.materials import MaterialSpec
from mechanics.results import SimulationResult, StepHistory
from workstation.errors import InputError
from workstation.model import TetMesh
from workstation.progress import ProgressCallback, report


def _identity_rotations(m: int) -> NDArray[np.float64]:
    return np.repeat(np.eye(3)[None], m, axis=0)


def assemble_corotated(problem: Problem, u: NDArray, rot: NDArray, *, update_rotations: bool,
                       want_matrix: bool = True, coef: float = 1.0) -> tuple[NDArray, NDArray]:
    """(internal force (3N,), CSR data of coef*K_R on free dofs) at displacement u (N, 3)."""
    data = np.zeros(problem.pattern.nnz)
    x = problem.points + u
    fint = kernels.corotated_assemble(x, problem.tets, problem.grads, problem.volume, problem.lam, problem.mu,
                                      problem.pattern.positions, coef, data, rot, update_rotations, want_matrix)
    return fint, data


def _neo(problem: Problem, u: NDArray, want_matrix: bool) -> tuple[NDArray, NDArray, float]:
    data = np.zeros(problem.pattern.nnz if want_matrix else 0)
    fint, energy, _ = kernels.neo_hookean_assemble(problem.points + u, problem.tets, problem.grads, problem.volume,
                                                   problem.lam, problem.mu, problem.pattern.positions, data,
                                                   want_matrix)
    return fint, data, energy


def _post(problem: Problem, u: NDArray, model: str, rot: NDArray | None) -> tuple[NDArray, NDArray, str]:
    """Per-element strain (M, 6) and von Mises stress (M,) in Pa."""
    ue = u[problem.tets]
    h = np.einsum("mai,maj->mij", ue, problem.grads)  # displacement gradient
    if model == "linear":
        eps = small_strain(problem.grads, ue)
        sig = linear_stress_mpa(eps, problem.lam, problem.mu)
        return voigt6(eps), von_mises(sig) * 1e6, "small"
    f = np.eye(3) + h
    if model == "corotational":
        assert rot is not None
        rtf = np.einsum("mki,mkj->mij", rot, f)
        local = 0.5 * (rtf + rtf.transpose(0, 2, 1)) - np.eye(3)
        sig = linear_stress_mpa(local, problem.lam, problem.mu)
        eps_global = np.einsum("mik,mkl,mjl->mij", rot, local, rot)
        return voigt6(eps_global), von_mises(sig) * 1e6, "corotated-small"
    j = np.linalg.det(f)
    b = np.einsum("mik,mjk->mij", f, f)
    lnj = np.log(np.where(j > 0, j, 1.0))
    sig = (problem.mu[:, None, None] * (b - np.eye(3)) + (problem.lam * lnj)[:, None, None] * np.eye(3)) / j[:, None,
                                                                                                              None]
    green = 0.5 * (np.einsum("mki,mkj->mij", f, f) - np.eye(3))
    return voigt6(green), von_mises(sig) * 1e6, "green-lagrange"


def _result(problem: Problem, u: NDArray, model: str, rot: NDArray | None, history: list[StepHistory], status: str,
            message: str, load_steps: int, completed: int) -> SimulationResult:
    if model == "neo-hookean":
        fint, _, _ = _neo(problem, u, False)
    else:
        fint, _ = assemble_corotated(problem, u, rot if rot is not None else _identity_rotations(len(problem.tets)),
                                     update_rotations=False, want_matrix=False)
    factor = completed / load_steps
    reactions = (fint - factor * problem.forces).reshape(-1, 3)
    reactions[~problem.fixed] = 0.0
    strain, vm, measure = _post(problem, u, model, rot)
    return SimulationResult(displacement_mm=u, von_mises_pa=vm, strain=strain, reaction_forces_n=reactions,
                            model=model, materials=problem.materials, history=tuple(history), status=status,
                            message=message, load_steps=load_steps, load_steps_completed=completed,
                            strain_measure=measure)


def _reference_force(problem: Problem, fint: NDArray, factor: float) -> float:
    """Force scale of the convergence test: loads, reactions, or (for stress-free states) modulus x area."""
    constrained = ~problem.free
    extent = float(np.ptp(problem.points, axis=0).max())
    floor = 1e-4 * float((problem.lam + 2 * problem.mu).max()) * extent ** 2
    return max(float(np.linalg.norm(factor * problem.forces)), float(np.linalg.norm(fint[constrained])), floor)


def solve_problem_linear(problem: Problem) -> SimulationResult:
    """Small-strain linear elasticity: one assembly, one factorisation."""
    rot = _identity_rotations(len(problem.tets))
    u = problem.prescribed.copy()
    fint_c, data = assemble_corotated(problem, u, rot, update_rotations=False)
    free = problem.free
    rhs = (problem.forces - fint_c)[free]
    factor = factorise(problem.pattern.matrix(data))
    try:
        u.ravel()[free] = factor.solve(rhs)
    finally:
        factor.release()  # its symbolic analysis serves the next solve on this mesh
    fint, _ = assemble_corotated(problem, u, rot, update_rotations=False, want_matrix=False)
    residual = float(np.linalg.norm((problem.forces - fint)[free]))
    history = [StepHistory(1, 1.0, (residual,), True)]
    return _result(problem, u, "linear", rot, history, "converged", "linear solve", 1, 1)


def solve_problem_nonlinear(problem: Problem, model: str, *, load_steps: int, max_iterations: int, tolerance: float,
                            progress: ProgressCallback | None = None) -> SimulationResult:
    """Load-stepped co-rotational or neo-Hookean solve (see the module docstring)."""
    # Newton systems solved reusing an earlier tangent's factorisation as PCG preconditioner while that converges
    # fast (see TangentSolver); the symbolic analysis of the pattern is done here, before the Newton loop, or
    # taken from an earlier solve on the same mesh, and handed back for the next one at the end
    with TangentSolver(problem.pattern.indptr, problem.pattern.indices) as solver:
        solver.analyse()
        return _newton_load_steps(problem, model, solver, load_steps=load_steps, max_iterations=max_iterations,
                                  tolerance=tolerance, progress=progress)


def _newton_load_steps(problem: Problem, model: str, solver: TangentSolver, *, load_steps: int, max_iterations: int,
                       tolerance: float, progress: ProgressCallback | None) -> SimulationResult:
    free = problem.free
    fixed_flat = ~free
    presc = problem.prescribed.ravel()
    u = np.zeros((problem.n_points, 3))
    rot = _identity_rotations(len(problem.tets))
    history: list[StepHistory] = []
    completed = 0
    for step in range(1, load_steps + 1):
        factor = step / load_steps
        report(progress, step - 1, load_steps, f"{model}: load step {step}/{load_steps}")
        u_step = u.copy()
        norms: list[float] = []
        converged = False
        status = "max-iterations"
        # predictor: move the prescribed dofs and the free dofs by the tangent response to that motion
        du_c = np.zeros(3 * problem.n_points)
        du_c[fixed_flat] = factor * presc[fixed_flat] - u_step.ravel()[fixed_flat]
        predictor = bool(du_c.any())
        for it in range(max_iterations):
            if model == "neo-hookean":
                fint, data, energy = _neo(problem, u_step, True)
            else:
                fint, data = assemble_corotated(problem, u_step, rot, update_rotations=True)
                energy = 0.0
            residual = factor * problem.forces - fint
            norm = float(np.linalg.norm(residual[free]))
            norms.append(norm)
            if not np.isfinite(norm) or (model == "neo-hookean" and not np.isfinite(energy)):
                status = "diverged"
                break
            if it > 0 and not du_c.any() and norm <= tolerance * _reference_force(problem, fint, factor):
                converged = True
                break
            try:
                solver.set_matrix(data)
                if du_c.any():
                    # tangent times the prescribed increment, by a directional difference of the internal force
                    eps = 1e-7 / max(float(np.abs(du_c).max()), 1e-30)
                    u_probe = u_step + eps * du_c.reshape(-1, 3)
                    f_probe = _neo(problem, u_probe, False)[0] if model == "neo-hookean" else assemble_corotated(
                        problem, u_probe, rot.copy(), update_rotations=False, want_matrix=False)[0]
                    coupling = (f_probe - fint) / eps
                    delta = np.zeros(3 * problem.n_points)
                    delta[fixed_flat] = du_c[fixed_flat]
                    delta[free] = solver.solve((residual - coupling)[free])
                    du_c[:] = 0.0
                else:
                    delta = np.zeros(3 * problem.n_points)
                    delta[free] = solver.solve(residual[free], tolerance=_forcing(norms, tolerance * _reference_force(
                        problem, fint, factor)))
            except (RuntimeError, ValueError, ArithmeticError):  # singular tangent
                status = "diverged"
                break
            if not np.all(np.isfinite(delta)):
                status = "diverged"
                break
            if predictor:
                u_step = _predictor_step(problem, model, u_step, delta.reshape(-1, 3))
                predictor = False
            else:
                u_step = _line_search(problem, model, u_step, delta.reshape(-1, 3), factor, residual, energy)
            if u_step is None:
                status = "diverged"
                break
        if not converged:
            history.append(StepHistory(step, factor, tuple(norms), False))
            msg = (f"{model}: load step {step}/{load_steps} (load factor {factor:.3g}) did not converge "
                   f"({status}, {len(norms)} iterations, residual {norms[-1]:.3g} N); result of step {completed} kept")
            return _result(problem, u, model, rot, history, status if status == "diverged" else "max-iterations",
                           msg, load_steps, completed)
        u = u_step
        completed = step
        history.append(StepHistory(step, factor, tuple(norms), True))
    report(progress, load_steps, load_steps, f"{model}: done")
    return _result(problem, u, model, rot, history, "converged", f"{model}: {load_steps} load step(s) converged",
                   load_steps, completed)


def _forcing(norms: list[float], converged_norm: float) -> float:
    """Relative accuracy to which a Newton system is solved (inexact Newton, Eisenstat-Walker choice 2).

    Far from convergence a loose solve (at most 1e-2) gives nearly the same step as an exact one; as the
    iteration converges the term shrinks with the square of the residual reduction, which keeps Newton's
    fast local convergence (Eisenstat & Walker 1996, SIAM J. Sci. Comput. 17:16). Solving below a tenth of
    the converged residual is never asked for (it would not change the outcome of the convergence test).
    """
    norm = max(norms[-1], 1e-300)
    # a previous residual of zero (the state before a predictor step) gives no rate: start loose
    ratio = norm / norms[-2] if len(norms) >= 2 and norms[-2] > 0 else 1.0
    eta = min(1e-2, 0.9 * min(ratio, 1.0) ** 2)
    return max(eta, min(1e-2, 0.1 * converged_norm / norm), 1e-10)


def _predictor_step(problem: Problem, model: str, u: NDArray, delta: NDArray) -> NDArray | None:
    """Apply the prescribed increment in full; shorten the free part until no element inverts."""
    if model != "neo-hookean":
        return u + delta
    free = problem.free.reshape(-1, 3)
    for alpha in (1.0, 0.5, 0.25, 0.125, 0.0):
        trial = u + np.where(free, alpha * delta, delta)
        if np.isfinite(_neo(problem, trial, False)[2]):
            return trial
    return None


def _line_search(problem: Problem, model: str, u: NDArray, delta: NDArray, factor: float, residual: NDArray,
                 energy: float) -> NDArray | None:
    """Backtracking on the potential energy (neo-Hookean) or full steps (co-rotational). None: no admissible step."""
    if model != "neo-hookean":
        return u + delta
    forces = factor * problem.forces
    pot0 = energy - float(forces @ u.ravel())
    slope = -float(residual @ delta.ravel())
    r0 = float(np.linalg.norm(residual[problem.free]))
    alpha = 1.0
    for _ in range(12):
        trial = u + alpha * delta
        fint, _, e_trial = _neo(problem, trial, False)
        if np.isfinite(e_trial):
            pot = e_trial - float(forces @ trial.ravel())
            r_trial = float(np.linalg.norm((forces - fint)[problem.free]))
            if pot <= pot0 + 1e-4 * alpha * slope + 1e-12 * abs(pot0) or r_trial < r0:
                return trial
        alpha *= 0.5
    return None


def solve_static(mesh: TetMesh, material: MaterialSpec, *, fixed_dofs: Any, prescribed_displacement_mm: Any = None,
                 nodal_forces_n: Any = None, model: str = "linear", load_steps: int = 1, gravity_m_s2: Any = None,
                 max_iterations: int = 30, tolerance: float = 1e-8, allow_locking: bool = False,
                 progress: ProgressCallback | None = None) -> SimulationResult:
    """Solve a static load case on a linear tetrahedral mesh.

    Parameters
    ----------
    mesh : :class:`mechanics.TetMesh` with points in mm.
    material : a :class:`mechanics.Material` or a mapping ``region_id -> Material`` (per-region assignment).
    fixed_dofs : (N, 3) bool (or (N,) bool for all three components): True where the displacement component is
        prescribed (zero, or the value in ``prescribed_displacement_mm``).
    prescribed_displacement_mm : (N, 3) mm, used where ``fixed_dofs`` is True.
    nodal_forces_n : (N, 3) N; see :mod:`mechanics.fem.loads` for pressure, traction, area and point forces.
    model : ``"linear"``, ``"corotational"`` or ``"neo-hookean"``.
    load_steps : equal load increments for the nonlinear models.
    gravity_m_s2 : (3,) gravity vector in m/s^2 (LPS axes), weight from each material's density.
    max_iterations, tolerance : per load step; convergence when ||residual|| <= tolerance * reference force.
    allow_locking : accept Poisson ratios above 0.49 (linear tets lock; right only for homogeneous checks).

    Returns
    -------
    SimulationResult with ``displacement_mm`` (N, 3), ``von_mises_pa`` (M,), ``strain`` (M, 6),
    ``reaction_forces_n`` (N, 3), ``history``, ``status``. A nonlinear step that does not converge returns the
    partial result (``status != "converged"``) instead of raising.

    Raises
    ------
    InputError : bad material, inverted/degenerate elements, a model free to move as a rigid body, bad shapes.
    """
    if model not in MODELS:
        raise InputError(f"model: {model!r} is not one of {', '.join(MODELS)}")
    if int(load_steps) < 1:
        raise InputError(f"load_steps: must be >= 1 (got {load_steps})")
    problem = prepare(mesh, material, fixed_dofs=fixed_dofs, prescribed_displacement_mm=prescribed_displacement_mm,
                      nodal_forces_n=nodal_forces_n, gravity_m_s2=gravity_m_s2, allow_locking=allow_locking)
    if model == "linear":
        report(progress, 0, 1, "linear: solving")
        result = solve_problem_linear(problem)
        report(progress, 1, 1, "linear: done")
        return result
    return solve_problem_nonlinear(problem, model, load_steps=int(load_steps), max_iterations=int(max_iterations),
                                   tolerance=float(tolerance), progress=progress)
