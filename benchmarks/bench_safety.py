"""Benchmark: trajectory safety update against a 200k-triangle structure, as while dragging a trajectory.

The structure is a closed, curved vessel-like tube (radius 12 mm, 300 mm long, ~200k triangles,
outward oriented). A trajectory is dragged: its entry moves along an arc while the target stays near
the vessel, giving axis-to-surface distances from crossing to ~40 mm. Per position:

* ours: ``SafetyChecker.check`` (exact capsule clearance, closest points, inside test) with the
  structure prepared once (:class:`workstation.planning.surface_index.SurfaceIndex`; build time printed);
* peer 1: VTK's ``vtkImplicitPolyDataDistance`` (a static cell locator inside) evaluated in one
  vectorised call at samples every 0.1 mm along the axis: the usual "sample the tool" approach,
  approximate to at most half a sample spacing;
* peer 2: brute force, the same exact segment-triangle kernel over every triangle (numpy).

Runs alternate in one process after a warm-up; medians per update. Run from the project root::

    .venv/bin/python benchmarks/bench_safety.py [--triangles 200000] [--positions 60]

The last lines have the form collected by the benchmark scripts (see DESIGN.md, "Benchmarks")::

    BENCH name=... ours_s=... peer=... peer_s=... ratio=... check=...
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from workstation.model import SurfaceMesh, Trajectory
from workstation.planning.distance_kernels import segment_to_triangles
from workstation.planning.safety import SafetyChecker


def vessel_tube(n_triangles: int = 200_000, radius_mm: float = 12.0, length_mm: float = 300.0) -> SurfaceMesh:
    """A closed tube around a curved centre line, capped at both ends, ~``n_triangles`` triangles."""
    n_around = int(np.sqrt(n_triangles / 2 * 250 / 400))
    n_along = max(2, int(n_triangles / (2 * n_around)))
    s = np.linspace(0.0, length_mm, n_along)
    centre = np.stack([30 * np.sin(s / 50), 20 * np.cos(s / 70), s], axis=1)
    tangent = np.gradient(centre, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1)[:, None]
    ref = np.array([1.0, 0.0, 0.0])
    u = np.cross(tangent, ref)
    u /= np.linalg.norm(u, axis=1)[:, None]
    v = np.cross(tangent, u)
    phi = np.linspace(0, 2 * np.pi, n_around, endpoint=False)
    ring = np.cos(phi)[None, :, None] * u[:, None] + np.sin(phi)[None, :, None] * v[:, None]
    vertices = (centre[:, None] + radius_mm * ring).reshape(-1, 3)
    a = np.arange(n_along - 1)[:, None] * n_around + np.arange(n_around)[None]
    b = np.arange(n_along - 1)[:, None] * n_around + (np.arange(n_around)[None] + 1) % n_around
    quads = np.stack([a, b, b + n_around, a + n_around], axis=-1).reshape(-1, 4)
    tris = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    first, last = len(vertices), len(vertices) + 1
    vertices = np.vstack([vertices, centre[0], centre[-1]])
    ring0 = np.arange(n_around)
    ring1 = (n_along - 1) * n_around + np.arange(n_around)
    cap0 = np.stack([np.full(n_around, first), np.roll(ring0, -1), ring0], axis=1)
    cap1 = np.stack([np.full(n_around, last), ring1, np.roll(ring1, -1)], axis=1)
    tris = np.concatenate([tris, cap0, cap1])
    # orient outward: the signed volume must be positive
    p = vertices[tris]
    volume = np.einsum("ij,ij->i", p[:, 0], np.cross(p[:, 1], p[:, 2])).sum() / 6
    if volume < 0:
        tris = tris[:, ::-1]
    return SurfaceMesh(vertices, tris, name="vessel", segment="vessel")


def drag_path(n: int) -> list[Trajectory]:
    """Positions of a dragged trajectory beside the vessel's middle: the target moves from 2 to ~40 mm off
    the wall while the entry swings from pointing away from the vessel, through tangent, to across it."""
    centre = np.array([30 * np.sin(3.0), 20 * np.cos(150 / 70), 150.0])
    out = []
    for k, f in enumerate(np.linspace(0.0, 1.0, n)):
        target = centre + [14.0 + 38.0 * np.sin(np.pi * f), 0.0, 0.0]
        b = np.pi * (1.05 * f) ** 1.5
        entry = target + 80.0 * np.array([np.cos(b), np.sin(b), 0.4])
        out.append(Trajectory(f"p{k}", tuple(entry), tuple(target), tool_diameter_mm=3.0))
    return out


def vtk_peer(mesh: SurfaceMesh, spacing_mm: float) -> Callable[[Trajectory], float]:
    import vtk
    from vtk.util import numpy_support

    implicit = vtk.vtkImplicitPolyDataDistance()
    implicit.SetInput(mesh.to_pyvista())

    def distance(t: Trajectory) -> float:
        a, b = np.asarray(t.entry_lps), np.asarray(t.target_lps)
        n = int(np.ceil(np.linalg.norm(b - a) / spacing_mm)) + 1
        pts = a + np.linspace(0, 1, n)[:, None] * (b - a)
        out = vtk.vtkDoubleArray()
        implicit.FunctionValue(numpy_support.numpy_to_vtk(pts, deep=True), out)
        values = numpy_support.vtk_to_numpy(out)
        return float(np.min(values))  # signed: negative inside

    return distance


def brute_peer(mesh: SurfaceMesh) -> Callable[[Trajectory], float]:
    triangles = mesh.vertices_lps[mesh.triangles]

    def distance(t: Trajectory) -> float:
        d, _, _ = segment_to_triangles(np.asarray(t.entry_lps), np.asarray(t.target_lps), triangles)
        return float(d.min())

    return distance


def median_ms(samples: list[float]) -> float:
    return 1e3 * statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--triangles", type=int, default=200_000)
    parser.add_argument("--positions", type=int, default=60)
    parser.add_argument("--brute-every", type=int, default=6, help="time brute force on every n-th position")
    args = parser.parse_args()

    mesh = vessel_tube(args.triangles)
    print(f"INFO structure: {mesh.n_triangles} triangles, {mesh.n_vertices} vertices")
    t0 = time.perf_counter()
    checker = SafetyChecker([mesh])
    print(f"INFO ours: index build {1e3 * (time.perf_counter() - t0):.0f} ms (once per structure)")
    t0 = time.perf_counter()
    vtk_distance = vtk_peer(mesh, 0.1)
    path = drag_path(args.positions)
    vtk_distance(path[0])  # builds the locator
    print(f"INFO vtk: implicit distance + locator build {1e3 * (time.perf_counter() - t0):.0f} ms")
    brute = brute_peer(mesh)
    checker.check(path[0])  # warm-up

    ours_t, vtk_t, brute_t = [], [], []
    diffs_vtk, diffs_brute, distances = [], [], []
    for k, t in enumerate(path):
        t0 = time.perf_counter()
        result = checker.check(t, margin_mm=2.0)
        ours_t.append(time.perf_counter() - t0)
        ours = result.structures[0].min_distance_mm
        distances.append(ours)
        t0 = time.perf_counter()
        peer = vtk_distance(t)
        vtk_t.append(time.perf_counter() - t0)
        # sampled distance is >= the exact one by at most half a sample spacing; 0 when crossing -> sign
        diffs_vtk.append(abs(max(peer, 0.0) - max(ours, 0.0)) if ours >= 0 else abs(min(peer, 0.0) - ours))
        if k % args.brute_every == 0:
            t0 = time.perf_counter()
            exact = brute(t)
            brute_t.append(time.perf_counter() - t0)
            diffs_brute.append(abs(exact - abs(ours)) if ours >= 0 else abs(exact + ours))
    d = np.asarray(distances)
    print(f"INFO axis distances over the drag: min {d.min():.2f} mm, max {d.max():.2f} mm, "
          f"{int(np.sum(d == 0))} of {len(d)} positions cross the vessel")
    print(f"INFO per update: ours median {median_ms(ours_t):.2f} ms (max {1e3 * max(ours_t):.2f} ms); "
          f"vtk {median_ms(vtk_t):.2f} ms; brute force {median_ms(brute_t):.1f} ms; target <= 20 ms")
    ratio_vtk = statistics.median(vtk_t) / statistics.median(ours_t)
    ratio_brute = statistics.median(brute_t) / statistics.median(ours_t)
    print(f"BENCH name=safety_update_{mesh.n_triangles // 1000}k_triangles ours_s={statistics.median(ours_t):.5f} "
          f"peer=vtkImplicitPolyDataDistance_0.1mm_samples peer_s={statistics.median(vtk_t):.5f} "
          f"ratio={ratio_vtk:.2f} check=max_diff_mm={max(diffs_vtk):.4f}(sampling_bound=0.05)")
    print(f"BENCH name=safety_update_{mesh.n_triangles // 1000}k_triangles_exact ours_s="
          f"{statistics.median(ours_t):.5f} peer=numpy_brute_force_exact peer_s={statistics.median(brute_t):.5f} "
          f"ratio={ratio_brute:.1f} check=max_diff_mm={max(diffs_brute):.1e}")


if __name__ == "__main__":
    main()
