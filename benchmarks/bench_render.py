"""Benchmark: frames per second of a 500k-triangle scene and time per MPR slice update on a 512x512x300
volume, ours beside a plain pyvista baseline of the same data, alternating, in one run.

* Scene: a bumpy closed surface of about 500k triangles. Ours: :class:`RehearsalScene` (the surface with
  smooth shading, orientation marker and edge letters) rendering frames along an orbit and reading each
  back (``scene.image()``, what a movie or a report does). Baseline: ``pyvista.Plotter`` with
  ``add_mesh(smooth_shading=True)`` and ``screenshot(return_img=True)`` for the same cameras.
* Slice: a synthetic CT (int16, 512x512x300, 0.8x0.8x1 mm). Ours: :class:`MprSlice.move` (values taken
  from the voxel slab and written into the existing grid, same actor) then a render; baseline: the
  usual pyvista way, ``ImageData.slice(normal="z", origin=...)`` and ``add_mesh(..., name="slice")``
  (replacing the actor) then a render. Both draw the same axial plane; the check compares the values.

Run from the project root::

    .venv/bin/python benchmarks/bench_render.py [--runs 5]

Output (see DESIGN.md, "Benchmarks"); ratio = peer_s / ours_s (above 1: ours is faster)::

    BENCH name=... ours_s=... peer=... peer_s=... ratio=... check=...
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workstation.model import SurfaceMesh, Volume
from workstation.render.cameras import orbit_poses
from workstation.render.mpr import standard_plane
from workstation.render.scene import RehearsalScene
from workstation.render.snapshot import require_offscreen_gl

SIZE = (800, 600)


def bumpy_surface(n_triangles: int = 500_000):
    import pyvista as pv

    res = int(np.sqrt(n_triangles / 2)) + 2
    sphere = pv.Sphere(radius=80.0, theta_resolution=res, phi_resolution=res)
    p = np.asarray(sphere.points)
    bump = 1.0 + 0.08 * np.sin(p[:, 0] / 6.0) * np.sin(p[:, 1] / 7.0) * np.sin(p[:, 2] / 5.0)
    sphere.points = p * bump[:, None]
    return sphere


def bench_scene(runs: int, frames: int) -> None:
    import pyvista as pv

    poly = bumpy_surface()
    mesh = SurfaceMesh.from_pyvista(poly, name="bone", color_rgb=(0.95, 0.92, 0.84))
    poses = orbit_poses(poly.bounds, frames, aspect=SIZE[0] / SIZE[1])

    ours = RehearsalScene(size=SIZE)
    ours.add_surface(mesh)
    peer = pv.Plotter(off_screen=True, window_size=list(SIZE))
    peer.add_mesh(mesh.to_pyvista(), color=mesh.color_rgb, smooth_shading=True)

    def run_ours() -> np.ndarray:
        img = None
        for pose in poses:
            ours.set_camera(pose)
            img = ours.image()
        return img

    def run_peer() -> np.ndarray:
        img = None
        for pose in poses:
            peer.camera.position, peer.camera.focal_point = pose.position_lps, pose.focal_point_lps
            peer.camera.up, peer.camera.view_angle = pose.view_up, pose.view_angle_deg
            peer.renderer.ResetCameraClippingRange()
            peer.render()
            img = peer.screenshot(None, return_img=True)
        return img

    run_ours(), run_peer()  # warm-up (shader compilation, normals)
    t_ours, t_peer = [], []
    for n in range(runs):  # alternate which goes first, so that neither always follows the other
        for which in ((run_ours, run_peer) if n % 2 == 0 else (run_peer, run_ours)):
            t = time.perf_counter()
            img = which()
            (t_ours if which is run_ours else t_peer).append((time.perf_counter() - t) / frames)
            if which is run_ours:
                a = img
            else:
                b = img
    fg_ours = float(np.mean(np.abs(a.astype(int) - a[0, 0]).sum(-1) > 30))
    fg_peer = float(np.mean(np.abs(b[..., :3].astype(int) - b[0, 0, :3]).sum(-1) > 30))
    s_ours, s_peer = float(np.median(t_ours)), float(np.median(t_peer))
    print(f"INFO scene triangles={poly.n_cells} size={SIZE[0]}x{SIZE[1]} ours_fps={1 / s_ours:.1f} "
          f"peer_fps={1 / s_peer:.1f}")
    print(f"BENCH name=scene_500k_triangles_frame ours_s={s_ours:.4f} peer=pyvista peer_s={s_peer:.4f} "
          f"ratio={s_peer / s_ours:.2f} check=foreground_fraction_ours={fg_ours:.3f},peer={fg_peer:.3f}")
    ours.close()
    peer.close()


def bench_slice(runs: int, steps: int) -> None:
    import pyvista as pv

    rng = np.random.default_rng(0)
    shape = (300, 512, 512)
    array = (rng.normal(40, 30, size=shape)).astype(np.int16)
    array[:, 200:300, 200:300] = 900
    volume = Volume.from_geometry(array, spacing_mm=(0.8, 0.8, 1.0), origin_lps=(-204.4, -204.4, -150.0),
                                  modality="CT")
    wl = (400.0, 40.0)
    clim = (wl[1] - wl[0] / 2, wl[1] + wl[0] / 2)
    z_values = np.linspace(-100.0, 100.0, steps) + 0.5  # between voxel planes: interpolated

    ours = RehearsalScene(size=SIZE)
    mpr = ours.add_slice(volume, standard_plane(volume, "axial", center_lps=(0, 0, float(z_values[0]))),
                         window_level=wl)
    ours.view("inferior")
    peer = pv.Plotter(off_screen=True, window_size=list(SIZE))
    image = pv.ImageData(dimensions=volume.size_ijk, spacing=tuple(volume.spacing_mm),
                         origin=tuple(volume.origin_lps))
    image.point_data["hu"] = array.ravel()
    peer.add_mesh(image.slice(normal="z", origin=(0, 0, float(z_values[0]))), scalars="hu", cmap="gray",
                  clim=clim, show_scalar_bar=False, lighting=False, name="slice")
    peer.camera = ours.plotter.camera.copy()

    def run_ours(render: bool) -> np.ndarray:
        for z in z_values:
            mpr.move_to((0.0, 0.0, float(z)))
            if render:
                ours.plotter.render()
        return mpr.values

    def run_peer(render: bool) -> np.ndarray:
        cut = None
        for z in z_values:
            cut = image.slice(normal="z", origin=(0, 0, float(z)))
            peer.add_mesh(cut, scalars="hu", cmap="gray", clim=clim, show_scalar_bar=False, lighting=False,
                          name="slice", render=False)
            if render:
                peer.render()
        return cut

    run_ours(True), run_peer(True)
    for render in (False, True):
        t_ours, t_peer = [], []
        for n in range(runs):
            for mine in ((True, False) if n % 2 == 0 else (False, True)):
                t = time.perf_counter()
                if mine:
                    ours_values = run_ours(render)
                    t_ours.append((time.perf_counter() - t) / steps)
                else:
                    cut = run_peer(render)
                    t_peer.append((time.perf_counter() - t) / steps)
        # Same answer: the peer's cut values at its points against ours at the same LPS points.
        pts = np.asarray(cut.points)
        ijk = np.rint(volume.lps_to_ijk_points(pts)).astype(int)
        # Our axial rows run anterior-upwards (row r is voxel row j = 511 - r), columns are i.
        ours_at = ours_values[511 - ijk[:, 1], ijk[:, 0]] if ours_values.shape == (512, 512) else None
        check = "n/a" if ours_at is None else f"max_diff_hu={np.abs(ours_at - np.asarray(cut['hu'])).max():.2f}"
        s_ours, s_peer = float(np.median(t_ours)), float(np.median(t_peer))
        what = "update_and_render" if render else "update"
        print(f"BENCH name=mpr_512x512x300_slice_{what} ours_s={s_ours:.4f} peer=pyvista.slice+add_mesh "
              f"peer_s={s_peer:.4f} ratio={s_peer / s_ours:.2f} check={check}")
    ours.close()
    peer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    require_offscreen_gl()  # before any plotter, ours or the baseline's: both use the EGL window
    bench_scene(args.runs, args.frames)
    bench_slice(args.runs, args.steps)


if __name__ == "__main__":
    main()
