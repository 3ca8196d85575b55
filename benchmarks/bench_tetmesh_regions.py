"""Benchmark: a conforming tet mesh of two touching segments, fTetWild (ours) against TetGen, same surfaces.

Input: the liver and the inferior vena cava of ``../shared/data/ct-abdomen-20`` (the reference
label map's shapes, used only as mesher input), surfaces built together so that they share their
interface (``segmentation.surface.label_map_surfaces``, decimated as ``twin tetmesh`` does for the
element size). Without the shared data, a synthetic pair: an ellipsoid "organ" with a tube
"vessel" running along its side, on a 0.8 x 0.8 x 2 mm grid.

Timed, alternating, median of ``--runs`` after a warm-up:

* ours: :func:`mechanics.envelope_meshing.tetrahedralize_regions_envelope` (fTetWild in a child
  process, regions by enclosing surface, outer boundary offset to the surfaces' volumes);
* peer: :func:`mechanics.meshing.tetrahedralize_regions` (TetGen on the same shared-interface
  surfaces, quality switches, boundary ears peeled): what the product used before.

The comparison is of mesh quality as much as of time; both are printed (INFO lines), and the
check reports each mesh's smallest dihedral angle, slivers (< 5 deg) and worst region volume error.
Run from the project root::

    .venv/bin/python benchmarks/bench_tetmesh_regions.py [--size-mm 8] [--runs 2]

Output lines (see DESIGN.md, "Benchmarks")::

    INFO mesher=... tets=... min_dihedral_deg=... slivers=... volume_error=...
    BENCH name=... ours_s=... peer=... peer_s=... ratio=... check=...
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from mechanics.envelope_meshing import tetrahedralize_regions_envelope
from mechanics.meshing import enclosed_volume_mm3, tetrahedralize_regions
from mechanics.quality import tet_quality
from segmentation.surface import label_map_surfaces
from workstation.model import LabelMap, SurfaceMesh, Volume
from workstation.simulate_case import _envelope_mm, _surface_reduction

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TWIN_SHARED_DATA", ROOT.parent / "shared" / "data"))


def load_labels() -> tuple[LabelMap, list[int], str]:
    """(label map, the two label values, source) for liver + vena cava, or a synthetic pair."""
    reference = SHARED / "ct-abdomen-20" / "reference" / "labels.nii.gz"
    if reference.is_file():
        from workstation.dicom.load import load_candidate
        from workstation.dicom.scan import scan_path
        from workstation.io.volume_files import read_label_map

        ct = load_candidate(scan_path(SHARED / "ct-abdomen-20" / "dicom").default())[0]
        labels = read_label_map(reference, reference=ct)
        array = np.where(np.isin(labels.array, [5, 63]), labels.array, 0).astype(np.uint8)
        return labels.with_array(array), [5, 63], "ct-abdomen-20 liver + inferior vena cava"
    shape = (40, 160, 160)
    grid = Volume.from_geometry(np.zeros(shape, np.int16), spacing_mm=(0.8, 0.8, 2.0), origin_lps=(-64, -64, -40))
    k, j, i = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    lps = grid.ijk_to_lps_points(np.stack([i, j, k], -1))
    x, y, z = lps[..., 0], lps[..., 1], lps[..., 2]
    array = np.zeros(shape, np.uint8)
    array[(x / 55) ** 2 + (y / 40) ** 2 + (z / 30) ** 2 <= 1] = 1
    array[np.hypot(x - 30, y - 25) <= 8] = 2
    return LabelMap(array, grid.ijk_to_lps), [1, 2], "synthetic organ + vessel"


def measure(mesh: Any, surfaces: list[SurfaceMesh], values: list[int]) -> dict[str, float]:
    quality = tet_quality(mesh)
    errors = [abs(quality.region_volumes_mm3.get(v, 0.0) - enclosed_volume_mm3(s.vertices_lps, s.triangles))
              / enclosed_volume_mm3(s.vertices_lps, s.triangles) for s, v in zip(surfaces, values, strict=True)]
    return {"tets": mesh.n_tets, "min_dihedral_deg": quality.min_dihedral_deg, "slivers": quality.n_slivers,
            "volume_error": max(errors)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mm", type=float, default=8.0)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    labels, values, source = load_labels()
    surfaces = list(label_map_surfaces(labels, segments=values,
                                       target_reduction=_surface_reduction(labels, args.size_mm)).values())
    triangles = sum(s.n_triangles for s in surfaces)
    print(f"input: {source}; {triangles} surface triangles; elements {args.size_mm:g} mm", flush=True)

    def ours() -> Any:
        return tetrahedralize_regions_envelope(surfaces, values, size_mm=args.size_mm, epsilon_mm=_envelope_mm(labels))

    def peer() -> Any:
        return tetrahedralize_regions(surfaces, values, size_mm=args.size_mm)

    times: dict[str, list[float]] = {"ours": [], "peer": []}
    results: dict[str, list[dict[str, float]]] = {"ours": [], "peer": []}
    for run in range(args.runs + 1):  # run 0 warms up (imports, numba)
        for name, function in (("ours", ours), ("peer", peer)):
            start = time.perf_counter()
            mesh = function()
            elapsed = time.perf_counter() - start
            if run:
                times[name].append(elapsed)
                results[name].append(measure(mesh, surfaces, values))
    for name, mesher in (("ours", "fTetWild"), ("peer", "TetGen")):
        for r in results[name]:
            print(f"INFO mesher={mesher} tets={r['tets']} min_dihedral_deg={r['min_dihedral_deg']:.2f} "
                  f"slivers={r['slivers']} volume_error={r['volume_error']:.4f}", flush=True)
    ours_s, peer_s = statistics.median(times["ours"]), statistics.median(times["peer"])
    worst = {name: min(r["min_dihedral_deg"] for r in results[name]) for name in results}
    slivers = {name: max(r["slivers"] for r in results[name]) for name in results}
    print(f"BENCH name=tetmesh_two_regions_{args.size_mm:g}mm ours_s={ours_s:.2f} peer=tetgen peer_s={peer_s:.2f} "
          f"ratio={peer_s / ours_s:.2f} check=min_dihedral_deg:{worst['ours']:.1f}_vs_{worst['peer']:.1f},"
          f"slivers:{slivers['ours']}_vs_{slivers['peer']}")


if __name__ == "__main__":
    main()
