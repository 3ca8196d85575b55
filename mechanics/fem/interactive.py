"""Interactive co-rotational implicit dynamics: set up once, then ``step()`` at frame rate.

Each step solves one linearised backward-Euler step of co-rotational elasticity (rotations frozen at the
start of the step, Rayleigh damping ``D = a M + b K_R``)::

    (M (1/dt^2 + a/dt) + (1 + b/dt) K_R) dx = f_ext - f_int(x_n) + M v_n / dt

with the handle nodes (the tool) and the anchors prescribed. The matrix changes every step (K_R), so it
is not refactorised: conjugate gradients preconditioned by the *rest-state* factorisation (computed
once in the constructor, in single precision where PARDISO offers it) converge in a few iterations while
rotations stay moderate, starting from the Galerkin solution in the span of the last increments. The
stopping test is on the relative residual and the size of the last update; ``step(check_exact=True)``
also solves the same system directly (double precision) and reports the largest nodal difference (mm) so
accuracy can be measured (outside the timed part). The constructor runs a warm-up step (numba and MKL
first-call costs) and restores the rest state; the garbage collector is held off during a step.

Before numpy/scipy start BLAS threads, set ``OPENBLAS_NUM_THREADS=1``: BLAS and numba threads fight over
few cores (steps became 15-30x slower in measurements on 2 cores).
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mechanics.fem import kernels
from mechanics.fem.assembly import add_diagonal
from mechanics.fem.elements import lumped_mass
from mechanics.fem.linsolve import factorise, pcg
from mechanics.fem.problem import prepare
from mechanics.materials import MaterialSpec
from mechanics.results import SimulationResult
from workstation.errors import InputError
from workstation.model import TetMesh


@dataclass(frozen=True)
class StepInfo:
    """What one interactive step did.

    tool_force_n : (3,) force the tissue exerts on the tool (sum over handle nodes), N.
    iterations : PCG iterations; relative_residual : final ||r|| / ||b||.
    step_time_s : wall time of the step (excluding the exact check).
    exact_deviation_mm : max nodal distance to the directly solved step (only with ``check_exact``).
    """

    tool_force_n: NDArray[np.float64]
    iterations: int
    relative_residual: float
    step_time_s: float
    exact_deviation_mm: float | None = None


class InteractiveSimulation:
    """A tissue with anchors and tool-driven handle nodes, stepped in time.

    Parameters
    ----------
    mesh : tetrahedral mesh (mm).
    material : Material or mapping region id -> Material.
    fixed_nodes : (N,) bool or indices: anchored nodes (zero displacement).
    handle_nodes : indices of nodes moved by the tool (all three components prescribed each step).
    time_step_s : dt of backward Euler.
    mass_damping_per_s, stiffness_damping_s : Rayleigh coefficients a (1/s) and b (s).
    tolerance : relative residual at which PCG stops; update_tolerance_mm : PCG also stops when the last
        correction moved no node by more than this (the remaining error is then of that order: the
        rest-state preconditioner contracts the error strongly per iteration); max_iterations : PCG cap.
    gravity_m_s2 : optional (3,) gravity vector.
    """

    def __init__(self, mesh: TetMesh, material: MaterialSpec, *, fixed_nodes: Any, handle_nodes: Any,
                 time_step_s: float = 0.02, mass_damping_per_s: float = 5.0, stiffness_damping_s: float = 0.0,
                 tolerance: float = 1e-6, update_tolerance_mm: float = 0.01, max_iterations: int = 30,
                 gravity_m_s2: Any = None) -> None:
        n = mesh.n_points
        anchors = _node_mask(fixed_nodes, n, what="fixed_nodes")
        handles = np.flatnonzero(_node_mask(handle_nodes, n, what="handle_nodes"))
        if len(handles) == 0:
            raise InputError("handle_nodes: at least one node must be moved by the tool")
        if time_step_s <= 0:
            raise InputError(f"time_step_s: must be > 0 (got {time_step_s})")
        fixed = anchors.copy()
        fixed[handles] = True
        self.problem = prepare(mesh, material, fixed_dofs=fixed, gravity_m_s2=gravity_m_s2, require_supports=False)
        p = self.problem
        self.handles = handles
        self.dt = float(time_step_s)
        self.a = float(mass_damping_per_s)
        self.b = float(stiffness_damping_s)
        self.tolerance = float(tolerance)
        self.update_tolerance_mm = float(update_tolerance_mm)
        self.max_iterations = int(max_iterations)
        self.mass = np.repeat(lumped_mass(p.n_points, p.tets, p.volume, p.rho), 3)  # (3N,) t
        self._mass_coef = 1.0 / self.dt ** 2 + self.a / self.dt
        self._k_coef = 1.0 + self.b / self.dt
        self._free = p.free
        self._mass_free = self.mass[self._free] * self._mass_coef
        self.u = np.zeros((p.n_points, 3))
        self.v = np.zeros((p.n_points, 3))
        self.rot = np.repeat(np.eye(3)[None], len(p.tets), axis=0)
        self._tool_travel: list[float] = []
        self._tool_force: list[NDArray] = []
        self._hgrad = np.array(p.grads)
        self._all_elements = np.arange(len(p.tets))
        self._handle_elements = np.flatnonzero(np.isin(p.tets, handles).any(axis=1))
        data = self._assemble(self.u, update_rotations=False)[1]
        # single precision where PARDISO offers it: the solve (the main cost of a PCG iteration) reads half
        # the bytes; PCG on the double-precision operator corrects the factor's ~1e-4 relative error
        self.rest_factor = factorise(p.pattern.matrix(data), spd=True, single=True)
        self._basis: list[NDArray] = []  # recent free increments: the subspace of the initial guess
        self._warm_up()

    def _warm_up(self) -> None:
        """Run every kernel of a step once (numba cache loading, MKL buffers) so the first real step is not slow."""
        saved = (self.u.copy(), self.v.copy(), self.rot.copy())
        for depth_mm in (1e-3, 2e-3):  # a tiny push: every kernel, the factor solve and the initial guess run
            self.step(np.array([0.0, 0.0, -depth_mm]))
        self.u, self.v, self.rot = saved
        self._basis = []
        self._tool_travel.clear()
        self._tool_force.clear()

    @property
    def n_dofs_free(self) -> int:
        return self.problem.pattern.n_free

    def _assemble(self, u: NDArray, *, update_rotations: bool, want_matrix: bool = True) -> tuple[NDArray, NDArray]:
        """Internal force and the CSR data of the step matrix (used for the rest-state factor and exact checks)."""
        p = self.problem
        data = np.zeros(p.pattern.nnz if want_matrix else 0)
        fint = kernels.corotated_assemble(p.points + u, p.tets, p.grads, p.volume, p.lam, p.mu, p.pattern.positions,
                                          self._k_coef, data, self.rot, update_rotations, want_matrix)
        if want_matrix:
            add_diagonal(p.pattern.indptr, p.pattern.indices, self._mass_free, data)
        return fint, data

    def _stiffness_times(self, d_full: NDArray, elements: NDArray) -> NDArray:
        p = self.problem
        return kernels.corotated_matvec(p.tets, self._hgrad, p.volume, p.lam, p.mu, d_full, elements)

    def _operator(self, d_free: NDArray) -> NDArray:
        """Step matrix times a free-dof vector, matrix-free (rotated gradients of this step)."""
        full = np.zeros(3 * self.problem.n_points)
        full[self._free] = d_free
        out = self._mass_coef * self.mass * full + self._k_coef * self._stiffness_times(full, self._all_elements)
        return out[self._free]

    def step(self, handle_displacement_mm: Any, *, check_exact: bool = False) -> StepInfo:
        """Advance one time step with the handle nodes displaced (from rest) by ``handle_displacement_mm``.

        ``handle_displacement_mm``: (3,) for a rigid tool translation or (K, 3) per handle node, mm.
        """
        target = np.broadcast_to(np.asarray(handle_displacement_mm, dtype=float), (len(self.handles), 3))
        if not np.all(np.isfinite(target)):
            raise InputError("handle_displacement_mm: values must be finite")
        # the cyclic garbage collector is held off during the step (a collection of a large application's
        # objects takes milliseconds to tens of milliseconds); it runs at the next allocation after the step
        gc_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._step(target, check_exact)
        finally:
            if gc_enabled:
                gc.enable()

    def _step(self, target: NDArray, check_exact: bool) -> StepInfo:
        start = time.perf_counter()
        p = self.problem
        free = self._free
        fint_n = kernels.corotated_force_and_gradients(p.points + self.u, p.tets, p.grads, p.volume, p.lam, p.mu,
                                                       self.rot, self._hgrad)
        dx_c = np.zeros((p.n_points, 3))
        dx_c[self.handles] = target - self.u[self.handles]
        coupling = self._k_coef * self._stiffness_times(dx_c.ravel(), self._handle_elements)
        rhs = (p.forces - fint_n + self.mass * self.v.ravel() / self.dt - coupling)[free]
        guess, guess_product = self._initial_guess(rhs)
        dx_f, iterations, rel = pcg(self._operator, rhs, self.rest_factor, guess, self.tolerance,
                                     self.update_tolerance_mm, self.max_iterations, guess_product=guess_product)
        paused = time.perf_counter()
        deviation = None
        if check_exact:
            _, data = self._assemble(self.u, update_rotations=False)
            exact = factorise(p.pattern.matrix(data), spd=True).solve(rhs)
            deviation = float(np.linalg.norm(_per_node(exact - dx_f, free, p.n_points), axis=1).max())
        resumed = time.perf_counter()
        self._basis = [dx_f, *self._basis[:_GUESS_SUBSPACE - 1]]
        dx = dx_c.ravel().copy()
        dx[free] = dx_f
        v_new = dx / self.dt
        # forces at the handle nodes after the step (rotations frozen: f_int is affine in x)
        fint_new = fint_n + self._stiffness_times(dx, self._handle_elements)
        reaction = (self.mass * ((v_new - self.v.ravel()) / self.dt + self.a * v_new) + fint_new
                    + self.b * (fint_new - fint_n) / self.dt - p.forces).reshape(-1, 3)
        self.u = self.u + dx.reshape(-1, 3)
        self.v = v_new.reshape(-1, 3)
        tool_force = -reaction[self.handles].sum(axis=0)
        self._tool_travel.append(float(np.linalg.norm(target.mean(axis=0))))
        self._tool_force.append(tool_force)
        step_time = (time.perf_counter() - resumed) + (paused - start)
        return StepInfo(tool_force_n=tool_force, iterations=iterations, relative_residual=rel,
                        step_time_s=step_time, exact_deviation_mm=deviation)

    def _initial_guess(self, rhs: NDArray) -> tuple[NDArray, NDArray]:
        """Galerkin solution of this step's system in the span of the last few free increments.

        The step matrix changes only through the rotations, and a dragged tool moves along a smooth path,
        so this step's increment is close to a combination of the last ones (including through reversals
        and stops, where the last increment alone is a poor start). Minimising the energy norm of the error
        over that span costs one matrix-free product per basis vector, far less than a PCG iteration (one
        triangular solve), and never gives a worse start than any vector of the span. Returns the guess and
        the step matrix times it.
        """
        zero = np.zeros_like(rhs)
        if not self._basis:
            return zero, zero
        q, r = np.linalg.qr(np.column_stack(self._basis))
        keep = np.abs(np.diag(r)) > 1e-8 * max(float(np.abs(np.diag(r)).max()), 1e-300)
        q = q[:, keep]
        if q.shape[1] == 0:
            return zero, zero
        aq = np.column_stack([self._operator(q[:, j]) for j in range(q.shape[1])])
        coef = np.linalg.solve(q.T @ aq, q.T @ rhs)
        return q @ coef, aq @ coef

    @property
    def displacement_mm(self) -> NDArray[np.float64]:
        """(N, 3) current displacement, mm."""
        return self.u.copy()

    def result(self) -> SimulationResult:
        """The current state as a :class:`SimulationResult` (model ``"corotational-dynamic"``).

        Carries the tool curve of all steps so far: ``tool_displacement_mm`` (distance of the mean handle
        displacement from rest) and ``tool_force_n``; reactions are the quasi-static support forces.
        """
        from mechanics.fem.static import _post

        p = self.problem
        fint = kernels.corotated_assemble(p.points + self.u, p.tets, p.grads, p.volume, p.lam, p.mu,
                                          p.pattern.positions, 1.0, np.zeros(0), self.rot.copy(), True, False)
        reactions = (fint - p.forces).reshape(-1, 3)
        reactions[~p.fixed] = 0.0
        strain, von_mises, measure = _post(p, self.u, "corotational", self.rot)
        steps = len(self._tool_force)
        return SimulationResult(
            displacement_mm=self.u.copy(), von_mises_pa=von_mises, strain=strain, reaction_forces_n=reactions,
            model="corotational-dynamic", materials=p.materials, status="converged",
            message=f"{steps} interactive backward-Euler steps of {self.dt:g} s", load_steps=max(steps, 1),
            load_steps_completed=max(steps, 1), strain_measure=measure,
            tool_displacement_mm=np.array(self._tool_travel), tool_force_n=np.array(self._tool_force).reshape(-1, 3),
            tool={"kind": "handle nodes", "n_nodes": len(self.handles), "time_step_s": self.dt})


_GUESS_SUBSPACE = 2  # increments kept for the initial guess (each costs one matrix-free product per step)


def _per_node(diff_free: NDArray, free: NDArray, n_points: int) -> NDArray:
    full = np.zeros(3 * n_points)
    full[free] = diff_free
    return full.reshape(-1, 3)


def _node_mask(nodes: Any, n: int, *, what: str) -> NDArray[np.bool_]:
    arr = np.asarray(nodes)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise InputError(f"{what}: boolean mask must have shape ({n},), got {arr.shape}")
        return arr.copy()
    idx = arr.astype(np.int64).ravel()
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise InputError(f"{what}: node indices must lie in 0..{n - 1}")
    mask = np.zeros(n, dtype=bool)
    mask[idx] = True
    return mask
