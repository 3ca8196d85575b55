"""FEM core benchmark: linear static against scikit-fem, interactive step rates, neo-Hookean Newton iteration.

Run: ``OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_fem.py`` (BLAS limited to one thread is set
below before numpy loads); ``--quick`` skips the 80k preview and scikit-fem, ``--only interactive|linear|neo``
runs one part. Step times: every step after the one-off set-up (which runs a warm-up step).
Targets (issue 4): linear static >= 3x faster than scikit-fem with max displacement
difference <= 1e-6 relative; interactive co-rotational backward-Euler step at 20k tets >= 30 Hz, worst step
<= 33 ms, within 0.1 mm of the exactly solved step; 5k tets >= 200 Hz; 80k reported; neo-Hookean Newton
iteration at 20k <= 50 ms (judged on the RATE ``ms``: Newton loop / iterations of the first solve on a fresh mesh,
PARDISO's symbolic analysis of the mesh's pattern done once in the set-up; ``second_solve_ms``: the next solve on
the same mesh, analysis reused).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mechanics
from mechanics.fem import static
from mechanics.fem.linsolve import TangentSolver, analysis_count, clear_analysis_cache, factorise
from mechanics.fem.problem import prepare
from mechanics.fem.static import _neo
from mechanics.fem.structured import box_tet_mesh

REPEATS = 3


def linear_case(cells: tuple[int, int, int]) -> tuple[mechanics.TetMesh, np.ndarray, np.ndarray, mechanics.Material]:
    """A 60 mm block, bottom clamped, a 200 Pa shear and 100 Pa normal traction on the top face."""
    mesh = box_tet_mesh(cells, (60.0, 60.0, 60.0))
    p = mesh.points_lps
    fixed = np.zeros((mesh.n_points, 3), dtype=bool)
    fixed[p[:, 2] < 1e-9] = True
    faces = mechanics.boundary_faces(mesh)
    top = faces[np.all(np.isclose(p[faces][:, :, 2], 60.0), axis=1)]
    loads = mechanics.traction_forces_n(mesh, top, [200.0, 0.0, -100.0])
    return mesh, fixed, loads, mechanics.Material(youngs_modulus_pa=5000.0, poisson_ratio=0.45)


def ours_linear(mesh, fixed, loads, mat) -> np.ndarray:
    return mechanics.solve_static(mesh, mat, fixed_dofs=fixed, nodal_forces_n=loads).displacement_mm


def skfem_linear(mesh, fixed, loads, mat) -> np.ndarray:
    import skfem
    from skfem.models.elasticity import linear_elasticity

    tet = skfem.MeshTet(np.asarray(mesh.points_lps, dtype=float).T.copy(), np.asarray(mesh.tets).T.copy())
    basis = skfem.Basis(tet, skfem.ElementVector(skfem.ElementTetP1()))
    stiffness = skfem.asm(linear_elasticity(mat.lame_lambda_pa * 1e-6, mat.shear_modulus_pa * 1e-6), basis)
    dofs = basis.nodal_dofs  # (3, N)
    f = np.zeros(basis.N)
    f[dofs.T.ravel()] = loads.ravel()
    clamped = dofs.T[fixed].ravel()
    u = skfem.solve(*skfem.condense(stiffness, f, D=clamped))
    return u[dofs].T


def timed(fn, *args) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def bench_linear_static() -> None:
    case = linear_case((15, 15, 15))
    mesh = case[0]
    ours_linear(*case)  # warm-up (numba, PARDISO library load)
    skfem_linear(*case)
    ours_t, peer_t = [], []
    u_ours = u_peer = None
    for _ in range(REPEATS):  # alternate
        t, u_ours = timed(ours_linear, *case)
        ours_t.append(t)
        t, u_peer = timed(skfem_linear, *case)
        peer_t.append(t)
    scale = float(np.abs(u_peer).max())
    diff = float(np.abs(u_ours - u_peer).max()) / scale
    o, p = statistics.median(ours_t), statistics.median(peer_t)
    print(f"linear static {mesh.n_tets} tets ({mesh.n_points} nodes): ours {o:.3f} s, scikit-fem {p:.3f} s, "
          f"ratio {p / o:.2f}, max |du| / max|u| = {diff:.1e} (max |u| {scale:.2f} mm)")
    print(f"BENCH name=fem_linear_static_{mesh.n_tets}tets ours_s={o:.4f} peer=scikit-fem peer_s={p:.4f} "
          f"ratio={p / o:.2f} check=max_rel_diff={diff:.1e}")


def bench_interactive(cells: tuple[int, int, int], *, steps: int, check_every: int) -> None:
    mesh = box_tet_mesh(cells, (60.0, 60.0, 60.0))
    p = mesh.points_lps
    anchors = p[:, 2] < 1e-9
    handles = np.flatnonzero(np.isclose(p[:, 2], 60.0) & (np.hypot(p[:, 0] - 30, p[:, 1] - 30) < 12))
    start = time.perf_counter()
    sim = mechanics.InteractiveSimulation(mesh, mechanics.Material(youngs_modulus_pa=5000.0, poisson_ratio=0.45,
                                                                   density_kg_m3=1000.0),
                                          fixed_nodes=anchors, handle_nodes=handles, time_step_s=0.02)
    setup = time.perf_counter() - start
    times, deviations, iterations = [], [], []
    for k in range(steps):
        # the surgeon drags 12 mm down and 8 mm sideways over 1 s (50 frames), then back
        phase = k / 50.0 if k < 50 else max(0.0, 2.0 - k / 50.0)
        info = sim.step(np.array([8.0, 0.0, -12.0]) * phase, check_exact=(k % check_every == check_every - 1))
        times.append(info.step_time_s)
        iterations.append(info.iterations)
        if info.exact_deviation_mm is not None:
            deviations.append(info.exact_deviation_mm)
    steps_ms = np.array(times) * 1e3  # every step after set-up, the first included
    mean = float(steps_ms.mean())
    p95, p99 = np.percentile(steps_ms, [95, 99])
    slowest = int(np.argmax(steps_ms))
    factor = f"{sim.rest_factor.kind}{' single-precision' if sim.rest_factor.single else ''}"
    print(f"interactive {mesh.n_tets} tets ({sim.n_dofs_free} free dofs): set-up {setup:.2f} s ({factor} "
          f"rest-state factor); {len(times)} steps: mean {mean:.1f} ms = {1e3 / mean:.1f} Hz, p95 {p95:.1f} ms, "
          f"p99 {p99:.1f} ms, worst {steps_ms.max():.1f} ms (step {slowest}, {iterations[slowest]} PCG iterations); "
          f"PCG iterations mean {np.mean(iterations):.2f} max {max(iterations)}; max deviation from the exactly "
          f"solved step {max(deviations):.4f} mm over {len(deviations)} checked steps")
    print(f"RATE name=fem_interactive_{mesh.n_tets}tets hz={1e3 / mean:.1f} worst_ms={steps_ms.max():.1f} "
          f"p99_ms={p99:.1f} max_dev_mm={max(deviations):.4f}")


def bench_neo_hookean_iteration() -> None:
    """Newton iterations of the compressible neo-Hookean solve at 20k tets.

    One Newton iteration = assemble the internal force and the tangent (numba, into the fixed pattern) + solve
    the Newton system K_t du = r to 1e-10 relative residual. Measured two ways: (a) with a fresh factorisation
    of every tangent (numeric refactorisation reusing the symbolic analysis): the double-precision
    symmetric-indefinite refactorisation + direct solve used before, and the single-precision
    positive-definite refactorisation + PCG now used; (b) the iterations of a full ``solve_static`` (which
    reuses an earlier tangent's factor as PCG preconditioner while that converges fast, see TangentSolver):
    Newton-loop time / Newton iterations (assembly, solves, line search), twice on the same mesh: the first
    solve on a fresh mesh runs PARDISO's symbolic analysis of the pattern (a one-off per mesh) in its set-up,
    the second takes it from the cache (as the next load step / next retractor push in the app does).
    """
    mesh, fixed, loads, mat = linear_case((15, 15, 15))
    problem = prepare(mesh, mat, fixed_dofs=fixed, nodal_forces_n=loads)
    u0 = mechanics.solve_static(mesh, mat, fixed_dofs=fixed, nodal_forces_n=loads).displacement_mm
    # tangents along the way to the solution: at rest, and at 50% and 100% of the linear solution
    states = [f * u0 for f in (0.0, 0.5, 1.0, 0.5, 1.0)]
    _, data, _ = _neo(problem, states[0], True)
    indefinite = factorise(problem.pattern.matrix(data), spd=False)
    spd = TangentSolver(problem.pattern.indptr, problem.pattern.indices)
    spd.set_matrix(data)
    spd.solve(problem.forces[problem.free])  # symbolic analysis, as the first iteration of a solve does
    rows = {"double-indefinite-direct": [], "single-spd-pcg": []}
    for u in states:
        for name in rows:
            t0 = time.perf_counter()
            fint, data, _ = _neo(problem, u, True)
            rhs = (problem.forces - fint)[problem.free]
            t1 = time.perf_counter()
            if name == "double-indefinite-direct":
                indefinite.refactor(data)
                t2 = time.perf_counter()
                x = indefinite.solve(rhs)
            else:
                spd.set_matrix(data)
                t2 = t1
                x = spd.solve(rhs, refactor=True)
            t3 = time.perf_counter()
            res = float(np.linalg.norm(problem.pattern.matrix(data) @ x - rhs) / np.linalg.norm(rhs))
            assert res < 1e-9, (name, res)
            rows[name].append((t0, t1, t2, t3))
    fresh = {}
    for name, marks in rows.items():
        total = [(t3 - t0) * 1e3 for t0, _, _, t3 in marks]
        assembly = statistics.median((t1 - t0) * 1e3 for t0, t1, _, _ in marks)
        fresh[name] = statistics.median(total)
        print(f"neo-Hookean Newton iteration with a fresh factorisation of the tangent, {mesh.n_tets} tets, {name}: "
              f"median {fresh[name]:.1f} ms, max {max(total):.1f} ms (assembly {assembly:.1f} + numeric "
              f"refactorisation + solve to 1e-10 relative residual)")
    clear_analysis_cache()  # a fresh mesh: no analysis of this pattern cached by the runs above
    first = _instrumented_neo_solve(mesh, mat, fixed, loads)
    second = _instrumented_neo_solve(mesh, mat, fixed, loads)  # the next solve on the same mesh
    assert second["analyses"] == 0, "the second solve on the same mesh analysed the pattern again"
    for label, run in (("first solve on a fresh mesh (symbolic analysis in the set-up)", first),
                       ("second solve on the same mesh (symbolic analysis reused from the first)", second)):
        print(f"neo-Hookean solve_static {mesh.n_tets} tets, {label}: {run['status']}, {run['newton']} Newton "
              f"iterations, {run['total_ms']:.0f} ms in all = set-up {run['setup_ms']:.0f} (of which symbolic "
              f"analysis {run['analysis_ms']:.0f}, {run['analyses']} new) + Newton loop {run['loop_ms']:.0f} + "
              f"post-processing {run['post_ms']:.0f}: {run['per_iteration_ms']:.1f} ms per Newton iteration "
              f"(assembly, Newton-system solve to an inexact-Newton forcing term, line search); residuals (N) "
              + " ".join(f"{r:.1e}" for r in run["norms"]))
        print("  Newton-system solves (ms / PCG iterations / refactorised): "
              + ", ".join(f"{t:.0f}/{i}/{'yes' if r else 'no'}" for t, i, r in run["log"]))
    with_analysis = (first["loop_ms"] + first["analysis_ms"]) / first["newton"]
    print(f"  first solve with its analysis counted in the Newton loop (as measured before the analysis moved to "
          f"the set-up): {with_analysis:.1f} ms per Newton iteration")
    print("  RATE ms = Newton loop / Newton iterations of the FIRST solve on a fresh mesh (symbolic analysis, a "
          "one-off per mesh, in the set-up); second_solve_ms = same for the next solve on that mesh")
    print(f"RATE name=fem_neohookean_iteration_{mesh.n_tets}tets ms={first['per_iteration_ms']:.1f} "
          f"second_solve_ms={second['per_iteration_ms']:.1f} analysis_ms={first['analysis_ms']:.1f} "
          f"ms_with_analysis_in_loop={with_analysis:.1f} fresh_factor_ms={fresh['single-spd-pcg']:.1f}")


def _instrumented_neo_solve(mesh: mechanics.TetMesh, mat: mechanics.Material, fixed: np.ndarray,
                            loads: np.ndarray) -> dict[str, Any]:
    """One neo-Hookean ``solve_static`` timed in parts: set-up (prepare + symbolic analysis), Newton loop,
    post-processing; with each Newton-system solve's time, PCG iterations and refactorisation."""
    solver_log: list[tuple[float, int, bool]] = []
    original = TangentSolver.solve

    def logged(self: TangentSolver, b: np.ndarray, **options: object) -> np.ndarray:
        t = time.perf_counter()
        x = original(self, b, **options)
        solver_log.append(((time.perf_counter() - t) * 1e3, self.last_iterations, self.last_refactorised))
        return x

    outside: dict[str, float] = {"set-up": 0.0, "analysis": 0.0, "post-processing": 0.0}

    def timed_part(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                outside[name] += time.perf_counter() - t
        return run

    saved = (static.prepare, static._result, TangentSolver.analyse)
    TangentSolver.solve = logged  # type: ignore[method-assign]
    TangentSolver.analyse = timed_part("analysis", TangentSolver.analyse)  # type: ignore[method-assign]
    static.prepare = timed_part("set-up", static.prepare)
    static._result = timed_part("post-processing", static._result)
    analyses = analysis_count()
    try:
        start = time.perf_counter()
        result = mechanics.solve_static(mesh, mat, fixed_dofs=fixed, nodal_forces_n=loads, model="neo-hookean")
        elapsed = time.perf_counter() - start
    finally:
        TangentSolver.solve = original  # type: ignore[method-assign]
        static.prepare, static._result, TangentSolver.analyse = saved  # type: ignore[method-assign]
    newton = len(solver_log)
    loop = elapsed - sum(outside.values())
    return {"status": result.status, "newton": newton, "total_ms": elapsed * 1e3,
            "setup_ms": (outside["set-up"] + outside["analysis"]) * 1e3, "analysis_ms": outside["analysis"] * 1e3,
            "analyses": analysis_count() - analyses, "loop_ms": loop * 1e3, "post_ms": outside["post-processing"] * 1e3,
            "per_iteration_ms": loop * 1e3 / newton, "norms": result.history[0].residual_norms_n, "log": solver_log}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 80k preview and the scikit-fem comparison")
    parser.add_argument("--only", choices=("linear", "interactive", "neo"), help="run one part")
    args = parser.parse_args()
    print(f"cpu count {os.cpu_count()}, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}, "
          f"MKL_NUM_THREADS={os.environ.get('MKL_NUM_THREADS')}, load average {os.getloadavg()[0]:.1f}")
    if args.only in (None, "linear") and not args.quick:
        bench_linear_static()
    if args.only in (None, "interactive"):
        bench_interactive((10, 10, 8), steps=100, check_every=5)
        bench_interactive((15, 15, 15), steps=100, check_every=10)
        if not args.quick:
            bench_interactive((24, 24, 23), steps=30, check_every=15)
    if args.only in (None, "neo"):
        bench_neo_hookean_iteration()


if __name__ == "__main__":
    main()
