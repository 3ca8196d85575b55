"""FEM core benchmark: linear static against scikit-fem, interactive step rates, neo-Hookean Newton iteration.

Run: ``OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_fem.py`` (BLAS limited to one thread is set
below before numpy loads). Targets (issue 4): linear static >= 3x faster than scikit-fem with max displacement
difference <= 1e-6 relative; interactive co-rotational backward-Euler step at 20k tets >= 30 Hz, worst step
<= 33 ms, within 0.1 mm of the exactly solved step; 5k tets >= 200 Hz; 80k reported; neo-Hookean Newton
iteration at 20k <= 50 ms.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mechanics
from mechanics.fem.linsolve import factorise
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
    steady = np.array(times[3:])
    mean = float(steady.mean())
    print(f"interactive {mesh.n_tets} tets ({sim.n_dofs_free} free dofs): set-up {setup:.2f} s "
          f"({sim.rest_factor.kind}); step mean {mean * 1e3:.1f} ms = {1 / mean:.1f} Hz, worst "
          f"{steady.max() * 1e3:.1f} ms, PCG iterations mean {np.mean(iterations):.1f} max {max(iterations)}, "
          f"max deviation from exact step {max(deviations):.4f} mm over {len(deviations)} checked steps")
    print(f"RATE name=fem_interactive_{mesh.n_tets}tets hz={1 / mean:.1f} worst_ms={steady.max() * 1e3:.1f} "
          f"max_dev_mm={max(deviations):.4f}")


def bench_neo_hookean_iteration() -> None:
    """One Newton iteration as solve_static runs it: tangent assembly (numba, into the fixed pattern),
    numeric refactorisation reusing the symbolic analysis (PARDISO, symmetric indefinite), solve."""
    mesh, fixed, loads, mat = linear_case((15, 15, 15))
    problem = prepare(mesh, mat, fixed_dofs=fixed, nodal_forces_n=loads)
    u = np.zeros((mesh.n_points, 3))
    _, data, _ = _neo(problem, u, True)
    solver = factorise(problem.pattern.matrix(data), spd=False)
    assemble, refactor, solve = [], [], []
    for _ in range(5):
        t0 = time.perf_counter()
        fint, data, _ = _neo(problem, u, True)
        t1 = time.perf_counter()
        solver.refactor(data)
        t2 = time.perf_counter()
        delta = solver.solve((problem.forces - fint)[problem.free])
        t3 = time.perf_counter()
        assemble.append(t1 - t0)
        refactor.append(t2 - t1)
        solve.append(t3 - t2)
        u = u.copy()
        u.ravel()[problem.free] += delta
    total = [a + r + s for a, r, s in zip(assemble, refactor, solve, strict=True)]
    start = time.perf_counter()
    result = mechanics.solve_static(mesh, mat, fixed_dofs=fixed, nodal_forces_n=loads, model="neo-hookean")
    elapsed = time.perf_counter() - start
    med = {name: statistics.median(values) * 1e3 for name, values in
           (("total", total), ("assembly", assemble), ("refactor", refactor), ("solve", solve))}
    print(f"neo-Hookean Newton iteration, {mesh.n_tets} tets ({solver.kind}): median {med['total']:.1f} ms = "
          f"assembly {med['assembly']:.1f} + refactorisation {med['refactor']:.1f} + solve {med['solve']:.1f}; "
          f"full solve_static {result.status} in {len(result.history[0].residual_norms_n)} residual evaluations, "
          f"{elapsed:.2f} s")
    print(f"RATE name=fem_neohookean_iteration_{mesh.n_tets}tets ms={statistics.median(total) * 1e3:.1f}")


def main() -> None:
    print(f"cpu count {os.cpu_count()}, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}, "
          f"MKL_NUM_THREADS={os.environ.get('MKL_NUM_THREADS')}, load average {os.getloadavg()[0]:.1f}")
    bench_linear_static()
    bench_interactive((10, 10, 8), steps=100, check_every=5)
    bench_interactive((15, 15, 15), steps=100, check_every=10)
    bench_interactive((24, 24, 23), steps=30, check_every=15)
    bench_neo_hookean_iteration()


if __name__ == "__main__":
    main()
