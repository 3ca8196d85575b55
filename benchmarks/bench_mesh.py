"""Benchmark: CT -> bone surface mesh, against scipy.ndimage + scikit-image + trimesh.

A synthetic 512 x 512 x 300 CT (0.7 x 0.7 x 1.0 mm, int16 HU: air, a body ellipse with a fat rim,
vertebral bodies with discs and posterior arches, 7 pairs of ribs 7 mm thick, a patient table
below the body, Gaussian noise) goes through the same steps, alternating, in one process:

1. body mask, 2. bone = HU >= 200 inside the body, 3. the bone's islands of at least 0.5 ml,
4. surface, 5. smoothing, 6. decimation to about half the triangles.

* ours: ``segmentation.body.body_mask``, ``segmentation.threshold.threshold`` and
  ``segmentation.islands.remove_small`` (the project's mask tools), then
  ``segmentation.surface.label_to_surface`` with its defaults (surface nets geometry, windowed sinc
  with shrinkage compensation and voxel-volume restoration,
  fast-simplification decimation, watertight 2-manifold check);
* peer: the usual scipy pipeline -- ``ndimage.label`` of HU > -400, the largest piece, holes
  filled per slice, ``ndimage.label`` of the bone and its piece sizes,
  ``skimage.measure.marching_cubes``, ``trimesh.smoothing.filter_taubin`` (20 iterations),
  ``fast_simplification.simplify`` (50%).

Both answers are checked: the same bone voxels, mesh volumes against the voxel volume and each
other. A second comparison times the surface stage alone (steps 4-6 on the same bone mask).
Per-stage medians are printed as INFO lines.

Run from the project root::

    .venv/bin/python benchmarks/bench_mesh.py [--slices 300] [--size 512] [--runs 3]

The last lines have the form collected by the benchmark scripts (see DESIGN.md, "Benchmarks")::

    BENCH name=bone_surface_512x512x300 ours_s=... peer=scipy+skimage peer_s=... ratio=... check=...
"""

from __future__ import annotations

import os

os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")  # before vtk is imported anywhere
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

SPACING_MM = (0.7, 0.7, 1.0)  # x, y, z along i, j, k
BONE_HU = 200.0
MIN_ISLAND_ML = 0.5


# ------------------------------------------------------------------------------------------------
# phantom
# ------------------------------------------------------------------------------------------------

def ct_phantom(n_slices: int = 300, size: int = 512, seed: int = 3) -> NDArray[np.int16]:
    """(K, J, I) int16 Hounsfield units of a trunk with spine, ribs and a table (see the module notes)."""
    rng = np.random.default_rng(seed)
    px, dz = SPACING_MM[0], SPACING_MM[2]
    s = size / 512
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    cy, cx = 270 * s, 256 * s
    volume = np.empty((n_slices, size, size), np.int16)
    body = ((yy - cy) / (150 * s)) ** 2 + ((xx - cx) / (205 * s)) ** 2 <= 1
    muscle = ((yy - cy) / (135 * s)) ** 2 + ((xx - cx) / (190 * s)) ** 2 <= 1
    table_r = np.hypot(yy - (cy - 250 * s), xx - cx)
    table = (table_r > 420 * s) & (table_r < 427 * s) & (np.abs(xx - cx) < 200 * s)
    r_body = np.hypot(yy - (cy + 95 * s), xx - cx)
    r_arch = np.hypot(yy - (cy + 128 * s), xx - cx)
    arch = ((r_arch >= 10 * s) & (r_arch <= 17 * s) & (yy >= cy + 120 * s)) | (
        (np.abs(xx - cx) <= 4 * s) & (yy >= cy + 140 * s) & (yy <= cy + 146 * s))
    outside_fov = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 > (size / 2) ** 2
    for k in range(n_slices):
        hu = np.full((size, size), -1000.0, np.float32)
        hu[body] = -100.0
        hu[muscle] = 40.0
        hu[table] = 350.0
        if (k * dz) % 33.0 < 25.0:  # vertebral body: cortex and cancellous bone; else a disc
            hu[r_body <= 26 * s] = 750.0
            hu[r_body <= 23 * s] = 260.0
        else:
            hu[r_body <= 26 * s] = 80.0
        hu[arch] = 900.0
        hu += rng.normal(0.0, 20.0, hu.shape).astype(np.float32)
        hu[outside_fov] = -3024.0
        volume[k] = np.clip(np.rint(hu), -3024, 3071)
    # Ribs: tubes of radius 3.5 mm (cortex 1100 HU, marrow 300 HU) along curved, descending centre lines.
    radius = 3.5
    t = np.linspace(0.0, 1.0, 400)
    for z0 in np.arange(0.0, n_slices * dz, 33.0)[1:-1]:
        for side in (-1, 1):
            xc = cx + side * (180 * s * np.sin(np.pi * t) + 30 * s * (1 - t))
            yc = cy + 95 * s - 205 * s * t ** 1.3 + 25 * s * np.sin(np.pi * t)
            zc = (z0 - 20 * t ** 1.2) / dz
            rk, rp = int(np.ceil(radius / dz)) + 1, int(np.ceil(radius / px)) + 1
            for y0, x0, z in zip(yc, xc, zc, strict=True):
                k0, k1 = max(int(z) - rk, 0), min(int(z) + rk + 1, n_slices)
                j0, j1 = max(int(y0) - rp, 0), min(int(y0) + rp + 1, size)
                i0, i1 = max(int(x0) - rp, 0), min(int(x0) + rp + 1, size)
                if k0 >= k1:
                    continue
                kk, jj, ii = np.mgrid[k0:k1, j0:j1, i0:i1]
                d = np.sqrt(((kk - z) * dz) ** 2 + ((jj - y0) * px) ** 2 + ((ii - x0) * px) ** 2)
                block = volume[k0:k1, j0:j1, i0:i1]
                block[d <= radius] = np.maximum(block[d <= radius], 1100)
                block[d <= radius - 1.5] = 300
    return volume


# ------------------------------------------------------------------------------------------------
# the two pipelines
# ------------------------------------------------------------------------------------------------

def ours(volume: Any, stages: dict[str, list[float]]) -> tuple[NDArray[np.bool_], Any]:
    from segmentation.body import body_mask
    from segmentation.islands import remove_small
    from segmentation.surface import label_to_surface
    from segmentation.threshold import threshold
    from workstation.model import LabelMap, Segment

    t0 = time.perf_counter()
    body = body_mask(volume)
    t1 = time.perf_counter()
    bone = threshold(volume, lower=BONE_HU, within=body)
    bone = remove_small(bone, min_ml=MIN_ISLAND_ML, spacing_mm=SPACING_MM)
    t2 = time.perf_counter()
    label_map = LabelMap(bone.view(np.uint8), volume.ijk_to_lps, (Segment(1, "bone", (0.95, 0.92, 0.84)),),
                         id="bench-bone")
    mesh = label_to_surface(label_map, "bone")
    t3 = time.perf_counter()
    stages["ours_body"].append(t1 - t0)
    stages["ours_bone_islands"].append(t2 - t1)
    stages["ours_surface"].append(t3 - t2)
    return bone, mesh


def peer_surface(bone: NDArray[np.bool_]) -> Any:
    """marching cubes + Taubin smoothing + fast-simplification, vertices in mm (x, y, z = i, j, k)."""
    import fast_simplification
    import trimesh
    from skimage.measure import marching_cubes

    # Padded so that bone touching the first or last slice gives a closed surface, as ours does.
    verts, faces, _, _ = marching_cubes(np.pad(bone.view(np.uint8), 1), 0.5, spacing=SPACING_MM[::-1],
                                        allow_degenerate=False)
    verts = verts[:, ::-1] - np.asarray(SPACING_MM)  # (k, j, i) -> (x, y, z) mm, padding removed
    mesh = trimesh.Trimesh(verts, faces, process=False)
    trimesh.smoothing.filter_taubin(mesh, iterations=20)
    points, triangles = fast_simplification.simplify(np.asarray(mesh.vertices), np.asarray(mesh.faces), 0.5)
    return trimesh.Trimesh(points, triangles, process=False)


def peer(hu: NDArray[np.int16], stages: dict[str, list[float]]) -> tuple[NDArray[np.bool_], Any]:
    from scipy import ndimage as ndi

    full = np.ones((3, 3, 3), dtype=bool)
    t0 = time.perf_counter()
    labels, _ = ndi.label(hu > -400, structure=full)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    body = labels == int(np.argmax(sizes))
    body = np.stack([ndi.binary_fill_holes(plane) for plane in body])
    t1 = time.perf_counter()
    bone = (hu >= BONE_HU) & body
    labels, _ = ndi.label(bone, structure=full)
    sizes_ml = np.bincount(labels.ravel()) * np.prod(SPACING_MM) / 1000.0
    keep = sizes_ml >= MIN_ISLAND_ML
    keep[0] = False
    bone = keep[labels]
    t2 = time.perf_counter()
    mesh = peer_surface(bone)
    t3 = time.perf_counter()
    stages["peer_body"].append(t1 - t0)
    stages["peer_bone_islands"].append(t2 - t1)
    stages["peer_surface"].append(t3 - t2)
    return bone, mesh


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each pipeline (median reported)")
    args = parser.parse_args()

    from segmentation.surface import label_to_surface, surface_quality
    from workstation.model import LabelMap, Segment, Volume

    start = time.perf_counter()
    hu = ct_phantom(args.slices, args.size)
    volume = Volume.from_geometry(hu, spacing_mm=SPACING_MM, origin_lps=(-179.0, -179.0, -300.0),
                                  direction=np.eye(3), modality="CT")
    name = f"bone_surface_{hu.shape[2]}x{hu.shape[1]}x{hu.shape[0]}"
    print(f"phantom {hu.shape[2]}x{hu.shape[1]}x{hu.shape[0]} int16 in {time.perf_counter() - start:.1f} s")

    stages: dict[str, list[float]] = {k: [] for k in ("ours_body", "ours_bone_islands", "ours_surface",
                                                      "peer_body", "peer_bone_islands", "peer_surface")}
    # Warm-up (imports, numba caches, VTK) and the correctness check.
    our_bone, our_mesh = ours(volume, stages)
    peer_bone, peer_mesh = peer(hu, stages)
    for values in stages.values():
        values.clear()
    voxel_mm3 = float(our_bone.sum()) * float(np.prod(SPACING_MM))
    quality = surface_quality(our_mesh)
    peer_volume = float(peer_mesh.volume)
    same_voxels = int(np.count_nonzero(our_bone != peer_bone))
    check = (f"bone_voxel_mismatch={same_voxels} ours_volume_diff={100 * (quality.volume_mm3 / voxel_mm3 - 1):+.2f}% "
             f"peer_volume_diff={100 * (peer_volume / voxel_mm3 - 1):+.2f}% "
             f"ours_vs_peer={100 * (quality.volume_mm3 / peer_volume - 1):+.2f}% "
             f"ours_watertight={quality.watertight} ours_manifold={quality.manifold} "
             f"peer_watertight={bool(peer_mesh.is_watertight)}")
    print(f"bone {int(our_bone.sum())} voxels; ours {our_mesh.n_triangles} triangles, peer {len(peer_mesh.faces)}")

    ours_times: list[float] = []
    peer_times: list[float] = []
    for run in range(args.runs):
        order = [(ours_times, lambda: ours(volume, stages)), (peer_times, lambda: peer(hu, stages))]
        for times, function in order if run % 2 == 0 else order[::-1]:
            seconds, result = timed(function)
            times.append(seconds)
            del result
    print(f"runs ours: {' '.join(f'{t:.2f}' for t in ours_times)}")
    print(f"runs peer: {' '.join(f'{t:.2f}' for t in peer_times)}")

    # The surface stage alone, on the same bone mask.
    label_map = LabelMap(our_bone.view(np.uint8), volume.ijk_to_lps, (Segment(1, "bone"),), id="bench-bone")
    surface_ours: list[float] = []
    surface_peer: list[float] = []
    for run in range(args.runs):
        order = [(surface_ours, lambda: label_to_surface(label_map, "bone")),
                 (surface_peer, lambda: peer_surface(our_bone))]
        for times, function in order if run % 2 == 0 else order[::-1]:
            seconds, result = timed(function)
            times.append(seconds)
            del result

    for key, values in stages.items():
        print(f"INFO name=stage_{key} seconds={statistics.median(values):.3f}")
    ours_s, peer_s = statistics.median(ours_times), statistics.median(peer_times)
    s_ours, s_peer = statistics.median(surface_ours), statistics.median(surface_peer)
    print(f"INFO mvox_per_s={hu.size / 1e6 / ours_s:.2f} (whole pipeline, ours) "
          f"surface_mvox_per_s={hu.size / 1e6 / s_ours:.2f}")
    print(f"BENCH name={name}_surface_stage ours_s={s_ours:.3f} peer=skimage+trimesh+fast_simplification "
          f"peer_s={s_peer:.3f} ratio={s_peer / s_ours:.3f} check=same_bone_mask ours_watertight={quality.watertight}")
    print(f"BENCH name={name} ours_s={ours_s:.3f} peer=scipy+skimage peer_s={peer_s:.3f} "
          f"ratio={peer_s / ours_s:.3f} check={check}")


if __name__ == "__main__":
    main()
