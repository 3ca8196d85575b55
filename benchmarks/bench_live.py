"""Benchmark: live-twin latency at 60 Hz OpenIGTLink input, and dropped messages, against a naive baseline.

A separate process (the tracker simulator) streams a simulated execution of a planned trajectory as
numbered TRANSFORM messages at 60 Hz over loopback to :class:`workstation.live.igtl_stream.TransformReceiver`;
the headless live loop (:func:`workstation.live.live_loop.run_live`) maps each pose through the case's
registration and computes distance to target, lateral and angular deviation and the tool cylinder's
distance to every critical surface. Latency is measured per message from its arrival (the moment its last
byte was read) to the updated numbers, queueing included. Dropped = sequence numbers never processed.

* ours: :class:`workstation.live.live_twin.LiveTwin` with its precomputed structures (``--method hybrid``:
  KD-trees over the vertices for every structure, the planning helper's exact ``SurfaceIndex`` segment
  distance near the margin; or ``exact`` / ``vertices`` alone);
* baseline: the same loop with a naive brute-force distance: every shaft sample point (1 mm apart) against
  every surface vertex per pose (numpy, chunked).

Runs alternate (ours, baseline, ours, ...); the check compares both answers' structure distances per pose.
Surfaces: an analytic phantom (default ~``--vertices`` per structure, 4 structures) or ``--case BUNDLE``
(its surfaces and first trajectory, e.g. ``twin demo`` output).

    .venv/bin/python benchmarks/bench_live.py [--seconds 5] [--runs 2] [--vertices 40000] [--case BUNDLE]

Last lines (compute time per pose without the network, then latency over the network at 60 Hz)::

    BENCH name=live_compute_per_pose ours_s=... peer=naive-bruteforce peer_s=... ratio=... check=same_poses
    BENCH name=live_latency_60hz ours_s=<median latency> peer=naive-bruteforce peer_s=... ratio=... check=...
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workstation.live.igtl_stream import TransformReceiver, stream_poses
from workstation.live.live_loop import run_live
from workstation.live.live_twin import LiveTwin
from workstation.live.session import SessionRecorder
from workstation.live.structure_distance import brute_force_min_distances
from workstation.live.tracker_sim import simulate_execution
from workstation.model import Case, Plan, Registration, SurfaceMesh, Trajectory

RATE_HZ = 60.0


def sphere(name: str, center: tuple[float, float, float], radius: float, vertices: int) -> SurfaceMesh:
    import pyvista as pv

    res = max(8, int(np.sqrt(vertices)))
    s = pv.Sphere(radius=radius, center=center, theta_resolution=res, phi_resolution=res).triangulate()
    return SurfaceMesh(np.asarray(s.points, dtype=float), s.faces.reshape(-1, 4)[:, 1:], name=name)


def phantom(vertices: int) -> Case:
    """Four critical spheres around a 120 mm trajectory, and a rigid registration to a tracker frame."""
    case = Case(name="bench-live")
    for name, center, radius in (("aorta", (17.0, 0.0, 60.0), 12.0), ("vertebra", (0.0, 45.0, 90.0), 20.0),
                                 ("kidney", (-35.0, 10.0, 70.0), 18.0), ("spleen", (40.0, 30.0, 100.0), 22.0)):
        case.add_mesh(sphere(name, center, radius, vertices))
    case.set_plan(Plan(trajectories=(Trajectory("biopsy", (0.0, 0.0, 0.0), (2.0, 5.0, 120.0), tool_diameter_mm=2.0),)))
    m = np.eye(4)
    m[:3, :3] = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    m[:3, 3] = [100.0, 50.0, 800.0]
    case.add_registration(Registration(m, from_frame="image_lps", to_frame="tracker"))
    return case


class BruteForceDistances:
    """The baseline: every shaft point against every vertex, per pose (unsigned vertex distance)."""

    def __init__(self, meshes: list[SurfaceMesh], step_mm: float = 1.0) -> None:
        self.meshes = meshes
        self.names = tuple(m.name or m.id for m in meshes)
        self.step_mm = step_mm

    def tool_distances(self, tip: np.ndarray, tail: np.ndarray) -> np.ndarray:
        n = int(np.ceil(np.linalg.norm(tail - tip) / self.step_mm)) + 1
        return brute_force_min_distances(self.meshes, tip + np.linspace(0.0, 1.0, n)[:, None] * (tail - tip))


def _sender(poses: np.ndarray, port: int) -> None:
    stream_poses(poses, host="127.0.0.1", port=port, rate_hz=RATE_HZ, connect_timeout_s=30.0)


def one_run(twin: LiveTwin, poses: np.ndarray) -> dict[str, float]:
    recorder = SessionRecorder(plan=twin.describe(), structure_names=twin.structure_names)
    ctx = multiprocessing.get_context("spawn")
    with TransformReceiver(0) as receiver:
        sender = ctx.Process(target=_sender, args=(poses, receiver.port))
        sender.start()
        summary = run_live(twin, receiver, recorder, duration_s=600.0, stop_on_disconnect=True, out=None)
        sender.join()
    arrays = recorder.arrays()
    lat = arrays["latency_ms"]
    return {"median_ms": float(np.median(lat)), "p95_ms": float(np.percentile(lat, 95)), "max_ms": float(lat.max()),
            "received": summary.poses, "dropped": summary.dropped + (len(poses) - summary.poses),
            "distances": arrays["structure_distance_mm"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="stream length per run (s)")
    parser.add_argument("--runs", type=int, default=2, help="runs of each (alternating)")
    parser.add_argument("--vertices", type=int, default=40000, help="vertices per phantom structure")
    parser.add_argument("--method", choices=["hybrid", "exact", "vertices"], default="hybrid")
    parser.add_argument("--case", help="case bundle with surfaces and a planned trajectory instead of the phantom")
    args = parser.parse_args()

    if args.case:
        from workstation.bundle import load_case

        case = load_case(args.case)
    else:
        case = phantom(args.vertices)
    t0 = time.perf_counter()
    ours = LiveTwin(case, margin_mm=2.0, distance_method=args.method)
    build_s = time.perf_counter() - t0
    naive = LiveTwin(case, margin_mm=2.0, distance_method="vertices")
    naive.distances = BruteForceDistances(naive.critical)  # type: ignore[assignment]
    n_vertices = sum(m.n_vertices for m in ours.critical)
    print(f"INFO structures={','.join(ours.structure_names)} vertices={n_vertices} method={ours.distances.method} "
          f"build_s={build_s:.3f} trajectory={ours.trajectory.name} frame={ours.tracker_frame}")
    registration = ours.registration.matrix if ours.registration is not None else np.eye(4)
    execution = simulate_execution(ours.trajectory, rate_hz=RATE_HZ, duration_s=args.seconds, noise_mm=0.3,
                                   offset_mm=(2.0, -1.0, 0.0), angle_deg=3.0, to_tracker=registration)
    poses = execution.poses

    # warm-up (numba kernels, caches) on a few poses
    for pose in poses[:: max(1, len(poses) // 10)]:
        ours.update(pose)
        naive.update(pose)
    # compute time per pose without the network, alternating, on every 5th pose
    compute: dict[str, list[float]] = {"ours": [], "naive": []}
    for pose in poses[::5]:
        for label, twin in (("ours", ours), ("naive", naive)):
            t0 = time.perf_counter()
            twin.update(pose)
            compute[label].append((time.perf_counter() - t0) * 1000)
    for label in compute:
        c = np.asarray(compute[label])
        print(f"INFO compute per pose {label}: median={np.median(c):.2f} ms p95={np.percentile(c, 95):.2f} ms "
              f"max={c.max():.2f} ms")
    results: dict[str, list[dict[str, float]]] = {"ours": [], "naive": []}
    for run in range(args.runs):
        for label, twin in (("ours", ours), ("naive", naive)):
            r = one_run(twin, poses)
            results[label].append(r)
            print(f"INFO run={run} {label}: received={r['received']}/{len(poses)} dropped={r['dropped']} "
                  f"latency_ms median={r['median_ms']:.2f} p95={r['p95_ms']:.2f} max={r['max_ms']:.2f}")

    def med(label: str, key: str) -> float:
        return float(np.median([r[key] for r in results[label]]))

    a, b = results["ours"][-1]["distances"], results["naive"][-1]["distances"]
    n = min(len(a), len(b))
    # the baseline is unsigned and vertex-based (+ tool radius); compare where ours sees the tool outside:
    # near the margin ours is exact (the baseline errs by up to about 1 mm: vertex spacing, 1 mm samples),
    # far away ours allows 5 % relative error
    a, b = a[:n], b[:n] - ours.tool_radius_mm
    near = (a >= 0) & (a < ours.margin_mm + 5.0)
    far = a >= ours.margin_mm + 5.0
    near_diff = float(np.max(np.abs(a[near] - b[near]))) if near.any() else float("nan")
    far_rel = float(np.max(np.abs(a[far] - b[far]) / np.maximum(b[far], 1e-9))) if far.any() else float("nan")
    ours_s, peer_s = med("ours", "median_ms") / 1000, med("naive", "median_ms") / 1000
    target_ok = med("ours", "p95_ms") <= 30.0
    dropped = sum(r["dropped"] for r in results["ours"])
    print(f"INFO ours p95={med('ours', 'p95_ms'):.2f} ms (target <= 30 ms: {'met' if target_ok else 'NOT met'}), "
          f"dropped {dropped} of {args.runs * len(poses)}; naive p95={med('naive', 'p95_ms'):.2f} ms, "
          f"dropped {sum(r['dropped'] for r in results['naive'])}")
    c_ours, c_naive = float(np.median(compute["ours"])) / 1000, float(np.median(compute["naive"])) / 1000
    print(f"BENCH name=live_compute_per_pose ours_s={c_ours:.5f} peer=naive-bruteforce peer_s={c_naive:.5f} "
          f"ratio={c_naive / c_ours:.2f} check=same_poses")
    print(f"BENCH name=live_latency_60hz ours_s={ours_s:.5f} peer=naive-bruteforce peer_s={peer_s:.5f} "
          f"ratio={peer_s / ours_s:.2f} check=near_max_diff_mm={near_diff:.3f},far_max_rel_diff={far_rel:.3f},"
          f"dropped={dropped}")


if __name__ == "__main__":
    main()
